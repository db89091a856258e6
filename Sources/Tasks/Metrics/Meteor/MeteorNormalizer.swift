/// METEOR 1.5's `-norm` text normalization for English, punctuation kept (what pycocoevalcap runs:
/// `-l en -norm`), i.e. `edu.cmu.meteor.util.Normalizer.normalizeLine(line, en, keepPunctuation)`
/// (the scorer lower-cases afterwards). It is a port of the Moses/NIST tokenizer rules, in order:
///
/// 1. pad every character that is not a letter/digit (its Latin, Cyrillic and phonetic ranges),
///    whitespace, `.` `'` `` ` `` `,` `-` `‘` `’` with spaces;
/// 2. protect runs of dots (`DOTMULTI`);
/// 3. split commas not between two digits;
/// 4. `` ` `` `‘` `’` → `'`; `“` `”` `''` → ` "`; `–` → `-`, `--` → `-`;
/// 5. remove a hyphen between two letters/digits (`stir-fry` → `stir fry`);
/// 6. English contractions: a `'` not between letters is split off on both sides; between letters
///    it starts the next token (`n't` → `n 't`, `o'brien` → `o 'brien`); digit + `'s` → `'s` token;
///    so the PTB token `'s` becomes `' s`;
/// 7. a token's final period is split off unless the token is a non-breaking prefix (Moses'
///    English list: single capitals, titles, `vs`, `i.e`, `e.g`, and `No`/`Art`/`pp` before a
///    number) or the next token starts with a lower-case letter; tokens with an inner period and a
///    letter lose their periods (`u.s.` → `us`);
/// 8. restore dot runs, collapse spaces.
///
/// Checked against the jar's Normalizer on every tokenized fixture caption
/// (Tests/TasksTests/Resources/meteor_normalizer.json).
public enum MeteorNormalizer {
    public static func normalize(_ line: String) -> String {
        var t: [Unicode.Scalar] = [" "] + Array(line.unicodeScalars) + [" "]
        // 1. r_sep_other: ([^alnum\s\.\'\`\,\-\‘\’]) → " $1 "
        t = t.flatMap { c -> [Unicode.Scalar] in
            isAlnum(c) || isJavaSpace(c) || ".'`,-\u{2018}\u{2019}".unicodeScalars.contains(c) ? [c] : [" ", c, " "]
        }
        // 2. r_multi_dot: \.([\.]+) → " DOTMULTI$1"
        t = replaceMultiDot(t)
        while contains(t, "DOTMULTI.") {
            // r_multi_dot2: DOTMULTI\.([^\.]) → "DOTDOTMULTI $1"; then "DOTMULTI." → "DOTDOTMULTI"
            t = replaceDotMulti2(t)
            t = replaceLiteral(t, "DOTMULTI.", "DOTDOTMULTI")
        }
        // 3. commas
        let isDigit: (Unicode.Scalar) -> Bool = { $0.value >= 0x30 && $0.value <= 0x39 }
        let comma: (Unicode.Scalar) -> Bool = { $0 == "," }
        // (each pass only when its character occurs: most lines have none of them)
        if t.contains(",") {
            t = replaceTriples(t, { !isDigit($0) }, comma, { !isDigit($0) }) { a, _, b in [a, " ", ",", " ", b] }
            t = replaceTriples(t, isDigit, comma, { !isDigit($0) }) { a, _, b in [a, " ", ",", " ", b] }
            t = replaceTriples(t, { !isDigit($0) }, comma, isDigit) { a, _, b in [a, " ", ",", " ", b] }
        }
        // 4. quotes and dashes
        t = t.map { $0 == "`" || $0 == "\u{2018}" || $0 == "\u{2019}" ? "'" : $0 }
        t = replaceDoubleQuotes(t)
        t = t.map { $0 == "\u{2013}" ? "-" : $0 }
        if t.contains("-") {
            t = replaceLiteral(t, "--", "-")
            // 5. r_rm_dash: ([alnum\.])[\-]([alnum]) → "$1 $2"
            t = replaceTriples(t, { isAlnum($0) || $0 == "." }, { $0 == "-" }, isAlnum) { a, _, b in [a, " ", b] }
        }
        // 6. English contractions
        if t.contains("'") {
            let apos: (Unicode.Scalar) -> Bool = { $0 == "'" }
            t = replaceTriples(t, { !isAlpha($0) }, apos, { !isAlpha($0) }) { a, q, b in [a, " ", q, " ", b] }
            t = replaceTriples(t, { !isAlpha($0) && !isDigit($0) }, apos, isAlpha) { a, q, b in [a, " ", q, " ", b] }
            t = replaceTriples(t, isAlpha, apos, { !isAlpha($0) }) { a, q, b in [a, " ", q, " ", b] }
            t = replaceTriples(t, isAlpha, apos, isAlpha) { a, q, b in [a, " ", q, b] }
            t = replaceTriples(t, isDigit, apos, { $0 == "s" }) { a, q, b in [a, " ", q, b] }
        }
        // 7. non-breaking prefixes (tokens as java.util.StringTokenizer splits them)
        let words = String(String.UnicodeScalarView(t)).split(whereSeparator: { " \t\n\r\u{000C}".contains($0) }).map(String.init)
        var out = ""
        for (k, w) in words.enumerated() {
            if w.unicodeScalars.count > 1, w.hasSuffix(".") {
                let pre = String(w.dropLast())
                let prefixClass = nonBreakingPrefixes[pre]
                let next = k + 1 < words.count ? words[k + 1] : nil
                if pre.contains("."), pre.unicodeScalars.contains(where: isAlpha) {
                    out += w.replacingAll(".", with: "")
                } else if prefixClass == 1 || (next?.unicodeScalars.first.map { $0.value >= 0x61 && $0.value <= 0x7A } == true) {
                    out += w
                } else if prefixClass == 2, let next, next.unicodeScalars.first.map(isDigit) == true {
                    out += w
                } else {
                    out += pre + " ."
                }
            } else {
                out += w
            }
            out += " "
        }
        var r = Array(out.unicodeScalars)
        while contains(r, "DOTDOTMULTI") { r = replaceLiteral(r, "DOTDOTMULTI", "DOTMULTI.") }
        r = replaceLiteral(r, "DOTMULTI", ".")
        // 8. r_white → " ", trim
        let collapsed = String(String.UnicodeScalarView(r))
            .split(whereSeparator: { ch in ch.unicodeScalars.allSatisfy(isNormalizerSpace) })
            .joined(separator: " ")
        return collapsed.trimmingJavaWhitespace()
    }

    // MARK: Character classes of the Normalizer

    /// alpha: A-Za-z Š Ž š ž Ÿ À-Ö Ø-ö ø-ž Ѐ-ӿ Ԁ-ԧ Ꙁ-ꙮ ꙾-ꚗ ᴀ-ᵿ
    static func isAlpha(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x41...0x5A, 0x61...0x7A, 0x160, 0x17D, 0x161, 0x17E, 0x178, 0xC0...0xD6, 0xD8...0xF6, 0xF8...0x17E,
             0x400...0x4FF, 0x500...0x527, 0xA640...0xA66E, 0xA67E...0xA697, 0x1D00...0x1D7F:
            return true
        default:
            return false
        }
    }

    static func isAlnum(_ c: Unicode.Scalar) -> Bool { (c.value >= 0x30 && c.value <= 0x39) || isAlpha(c) }
    /// Java regex \s: [ \t\n\x0B\f\r]
    static func isJavaSpace(_ c: Unicode.Scalar) -> Bool { [0x20, 0x09, 0x0A, 0x0B, 0x0C, 0x0D].contains(c.value) }
    /// r_white's class: space, U+2000–U+200A, U+202F, U+205F, U+3000, U+00A0.
    static func isNormalizerSpace(_ c: Unicode.Scalar) -> Bool {
        c == " " || (0x2000...0x200A).contains(c.value) || [0x202F, 0x205F, 0x3000, 0xA0].contains(c.value)
    }

    /// Moses' English non-breaking prefixes (nonbreaking/english.prefixes in the METEOR jar):
    /// 1 = always, 2 = only before a number.
    static let nonBreakingPrefixes: [String: Int] = {
        var d: [String: Int] = [:]
        for p in "ABCDEFGHIJKLMNOPQRSTUVWXYZ".map(String.init) { d[p] = 1 }
        for p in ["Adj", "Adm", "Adv", "Asst", "Bart", "Bldg", "Brig", "Bros", "Capt", "Cmdr", "Col", "Comdr", "Con", "Corp",
                  "Cpl", "DR", "Dr", "Drs", "Ens", "Gen", "Gov", "Hon", "Hr", "Hosp", "Insp", "Lt", "MM", "MR", "MRS", "MS",
                  "Maj", "Messrs", "Mlle", "Mme", "Mr", "Mrs", "Ms", "Msgr", "Op", "Ord", "Pfc", "Ph", "Prof", "Pvt", "Rep",
                  "Reps", "Res", "Rev", "Rt", "Sen", "Sens", "Sfc", "Sgt", "Sr", "St", "Supt", "Surg", "v", "vs", "i.e",
                  "rev", "e.g", "Nos", "Nr"] {
            d[p] = 1
        }
        for p in ["No", "Art", "pp"] { d[p] = 2 }
        return d
    }()

    // MARK: Regex-equivalent rewriting (left-to-right, non-overlapping, like Matcher.replaceAll)

    /// Replaces every match of the 3-character pattern (left)(middle)(right).
    static func replaceTriples(_ t: [Unicode.Scalar], _ left: (Unicode.Scalar) -> Bool, _ middle: (Unicode.Scalar) -> Bool,
                               _ right: (Unicode.Scalar) -> Bool,
                               _ replacement: (Unicode.Scalar, Unicode.Scalar, Unicode.Scalar) -> [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(t.count + 8)
        var i = 0
        while i < t.count {
            if i + 2 < t.count, left(t[i]), middle(t[i + 1]), right(t[i + 2]) {
                out.append(contentsOf: replacement(t[i], t[i + 1], t[i + 2]))
                i += 3
            } else {
                out.append(t[i])
                i += 1
            }
        }
        return out
    }

    static func contains(_ t: [Unicode.Scalar], _ literal: String) -> Bool {
        let l = Array(literal.unicodeScalars)
        guard t.count >= l.count else { return false }
        for i in 0...(t.count - l.count) where t[i] == l[0] && Array(t[i..<(i + l.count)]) == l { return true }
        return false
    }

    static func replaceLiteral(_ t: [Unicode.Scalar], _ literal: String, _ with: String) -> [Unicode.Scalar] {
        let l = Array(literal.unicodeScalars), w = Array(with.unicodeScalars)
        var out: [Unicode.Scalar] = []
        var i = 0
        while i < t.count {
            if i + l.count <= t.count, t[i] == l[0], Array(t[i..<(i + l.count)]) == l {
                out.append(contentsOf: w)
                i += l.count
            } else {
                out.append(t[i])
                i += 1
            }
        }
        return out
    }

    /// \.([\.]+) → " DOTMULTI$1"
    static func replaceMultiDot(_ t: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        var i = 0
        while i < t.count {
            if t[i] == ".", i + 1 < t.count, t[i + 1] == "." {
                var j = i + 1
                while j < t.count, t[j] == "." { j += 1 }
                out.append(contentsOf: " DOTMULTI".unicodeScalars)
                out.append(contentsOf: t[(i + 1)..<j])
                i = j
            } else {
                out.append(t[i])
                i += 1
            }
        }
        return out
    }

    /// DOTMULTI\.([^\.]) → "DOTDOTMULTI $1"
    static func replaceDotMulti2(_ t: [Unicode.Scalar]) -> [Unicode.Scalar] {
        let l = Array("DOTMULTI.".unicodeScalars)
        var out: [Unicode.Scalar] = []
        var i = 0
        while i < t.count {
            if i + l.count < t.count, Array(t[i..<(i + l.count)]) == l, t[i + l.count] != "." {
                out.append(contentsOf: "DOTDOTMULTI ".unicodeScalars)
                out.append(t[i + l.count])
                i += l.count + 1
            } else {
                out.append(t[i])
                i += 1
            }
        }
        return out
    }

    /// ([“”]|'') → ` "`
    static func replaceDoubleQuotes(_ t: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        var i = 0
        while i < t.count {
            if t[i] == "\u{201C}" || t[i] == "\u{201D}" {
                out.append(contentsOf: [" ", "\""])
                i += 1
            } else if t[i] == "'", i + 1 < t.count, t[i + 1] == "'" {
                out.append(contentsOf: [" ", "\""])
                i += 2
            } else {
                out.append(t[i])
                i += 1
            }
        }
        return out
    }
}

extension String {
    func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for ch in self { if ch == target { out += replacement } else { out.append(ch) } }
        return out
    }

    /// Java's String.trim(): removes characters ≤ U+0020 at both ends.
    func trimmingJavaWhitespace() -> String {
        let scalars = Array(unicodeScalars)
        var a = 0, b = scalars.count
        while a < b, scalars[a].value <= 0x20 { a += 1 }
        while b > a, scalars[b - 1].value <= 0x20 { b -= 1 }
        return String(String.UnicodeScalarView(scalars[a..<b]))
    }
}
