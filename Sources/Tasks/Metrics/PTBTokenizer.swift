import Foundation

/// Penn-Treebank tokenization as pycocoevalcap does it before scoring captions.
///
/// pycocoevalcap's `PTBTokenizer` writes the captions one per line, runs Stanford CoreNLP 3.4.1's
/// `edu.stanford.nlp.process.PTBTokenizer -preserveLines -lowerCase` over them (Java), and then
/// drops the tokens in its punctuation list. This is a Swift re-implementation of the part of
/// CoreNLP's lexer (PTBLexer.flex, a JFlex scanner) that caption text meets, so no Java is needed:
///
/// - The scanner picks, at each position, the longest match among its rules, earlier rules winning
///   ties; trailing context (`r/s` in JFlex) counts towards the length but is not consumed. The
///   rules below are listed in the lexer's priority order.
/// - Words (Unicode letters and combining marks), numbers (`2.5`, `1,000`, `3:30`, `-5`), fractions
///   (`1/2`, and `1 1/2` as one token with a no-break space), dates, hyphenated words (`stir-fry`,
///   `5.5-inch`, `10-15`), `and/or`-style slashes, phone numbers.
/// - Clitics split off: `n't` (`doesn't` → `does n't`, `can't` → `ca n't`), `'s 'm 'd 're 've 'll`,
///   `cannot` → `can not`, `gonna wanna gotta lemme gimme` → `gon na` …, `'tis 'twas` → `'t is`;
///   words with inner apostrophes kept (`o'clock`, `ma'am`, `'n'`, `'em`, `'90s`, `y'` in `y'all`).
/// - Abbreviations that keep their period (single letters, acronyms like `u.s.` `e.g.` `p.m.`,
///   titles, months, states, `etc.`, `no.`, `vs.` …); any other word's final period is split off.
/// - PTB3 escaping: `(` `)` → `-LRB-` `-RRB-`, `[` `]` → `-LSB-` `-RSB-`, `{` `}` → `-LCB-` `-RCB-`,
///   quotes → `` ` `` `` `` `` `'` `''` (opening or closing by context), dashes (–, —, `---`) → `--`,
///   `…` and `. . .` → `...`, `€` → `$`, `£` → `#`, `¢` → `cents`, `½` → `1/2`, `&amp;` → `&`.
/// - Smileys (`:)` → `:-RRB-`), SGML-like tags kept whole (`<unk>`), URLs and e-mail addresses.
/// - Symbols are single tokens; characters the lexer does not know (emoji, controls) are deleted.
///
/// The output is lower-cased, as with `-lowerCase`. pycocoevalcap then removes the tokens in
/// ``removedPunctuation``: note that CoreNLP lower-cases `-LRB-` to `-lrb-`, which is *not* in that
/// list, so bracket tokens survive into the metrics (a well-known quirk kept here for parity).
///
/// Checked against the real tokenizer on every caption of the metric fixtures and on hand-written
/// probes (Tests/TasksTests/Resources/ptb_tokenizer.json, written by tools/fixtures/caption_metrics.py).
/// Not reproduced: CoreNLP's duplicated sentence-final period after abbreviations (`etc. .`) —
/// the extra `.` is removed by pycocoevalcap anyway — and rarely seen rules (American spellings are
/// *not* rewritten by 3.4.1's command line; SGML entities other than `&amp; &quot; &apos; &lt; &gt;`).
/// A caption containing a carriage return is split into two lines by pycocoevalcap (a bug that
/// misaligns its captions); here `\r` is plain whitespace. Differences remain on text glued
/// together without spaces in ways captions do not show (an abbreviation run into a word,
/// `etc.o'clock`; a URL run into a number, `www.food.com2.5`): on 12,000 random lines built from
/// such pieces, compared with the jar while writing this, 18 came out differently (0.15 %).
public enum PTBTokenizer {
    /// pycocoevalcap's PUNCTUATIONS (tokenizer/ptbtokenizer.py), removed after tokenizing.
    public static let removedPunctuation: Set<String> = [
        "''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--", "...", ";",
    ]

    /// Captions as pycocoevalcap hands them to the scorers: PTB tokens, lower-cased, without its
    /// punctuation tokens, joined by single spaces.
    ///
    /// pycocoevalcap tokenizes all references (or all predictions) in one run, one caption per
    /// line, and a few lexer rules look past the end of a line: a single letter's period is split
    /// off when the next line starts with a sentence opener such as "The" (`… at 350°F.` + `The …`).
    /// So pass the captions together, in pycocoevalcap's order, to get its tokens exactly.
    public static func cocoTokenize(_ captions: [String]) -> [String] {
        tokenizeLines(captions).map { tokens in
            // pycocoevalcap: ' '.join(w for w in line.rstrip().split(' ') if w not in PUNCTUATIONS)
            tokens.joined(separator: " ")
                .split(separator: " ", omittingEmptySubsequences: false)
                .map(String.init)
                .filter { !removedPunctuation.contains($0) }
                .joined(separator: " ")
        }
    }

    /// One caption on its own (no following line).
    public static func cocoTokenize(_ caption: String) -> String { cocoTokenize([caption])[0] }

    /// The tokens CoreNLP's PTBTokenizer prints for each line (lower-cased), the lines read as one
    /// text as `-preserveLines` does. Newlines inside a caption become spaces, as pycocoevalcap does.
    public static func tokenizeLines(_ lines: [String]) -> [[String]] {
        var scalars: [Unicode.Scalar] = []
        for (k, line) in lines.enumerated() {
            if k > 0 { scalars.append("\n") }
            scalars.append(contentsOf: line.unicodeScalars.map { $0 == "\n" ? " " : $0 })
        }
        var lexer = PTBLexer(scalars)
        let out = lexer.run().map { $0.map { $0.lowercased() } }
        precondition(out.count == lines.count, "PTBLexer produced \(out.count) lines for \(lines.count)")
        return out
    }

    /// The tokens of one line of text (lower-cased).
    public static func tokens(_ text: String) -> [String] { tokenizeLines([text])[0] }
}

// MARK: - The lexer

/// One rule's match at the current position.
private struct LexMatch {
    /// Length used to pick the longest match (includes trailing context).
    var length: Int
    /// Scalars consumed (≤ length).
    var consumed: Int
    /// The token text, or nil when the matched text is dropped (untokenizable characters);
    /// for the common case — the consumed text itself — built only for the winning rule.
    var text: String?
    var kind: Kind = .given

    enum Kind { case given, slice, sliceWithoutSoftHyphens }

    init(length: Int, consumed: Int, text: String?) {
        self.length = length
        self.consumed = consumed
        self.text = text
    }

    init(length: Int, slice consumed: Int) {
        self.init(length: length, consumed: consumed, text: nil)
        kind = .slice
    }

    init(length: Int, sliceWithoutSoftHyphens consumed: Int) {
        self.init(length: length, consumed: consumed, text: nil)
        kind = .sliceWithoutSoftHyphens
    }
}

private struct PTBLexer {
    let s: [Unicode.Scalar]
    var i = 0

    init(_ scalars: [Unicode.Scalar]) { s = scalars }

    /// Tokens per line; "\n" ends a line (other line separators count as spaces).
    mutating func run() -> [[String]] {
        var lines: [[String]] = [[]]
        while i < s.count {
            if s[i] == "\n" { lines.append([]); i += 1; continue }
            if Self.isSpaceOrNewline(s[i]) { i += 1; continue }
            let m = longestMatch()
            switch m.kind {
            case .given: if let text = m.text { lines[lines.count - 1].append(text) }
            case .slice: lines[lines.count - 1].append(text(i, i + m.consumed))
            case .sliceWithoutSoftHyphens: lines[lines.count - 1].append(removeSoftHyphens(text(i, i + m.consumed)))
            }
            i += max(m.consumed, 1)
        }
        return lines
    }

    // MARK: Character classes (JFlex classes are case-sensitive even in %caseless mode)

    static func isSpaceOrNewline(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x20, 0x09, 0xA0, 0x2000...0x200A, 0x3000: return true               // SPACE
        case 0x0A, 0x0D, 0x2028, 0x2029, 0x0B, 0x0C, 0x85: return true            // NEWLINE
        case 0x00, 0x200B, 0x200E, 0x200F, 0xFEFF: return true                    // ignored
        default: return false
        }
    }

    /// JFlex [:letter:] (Java Character.isLetter), BMP only: JFlex scans UTF-16 units.
    static func isLetter(_ c: Unicode.Scalar) -> Bool {
        if c.value < 0x80 { return isASCIILetter(c) }  // fast path, no table lookup
        guard c.value < 0x10000 else { return false }
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    /// JFlex [:digit:] (Java Character.isDigit).
    static func isDigit(_ c: Unicode.Scalar) -> Bool {
        if c.value < 0x80 { return isASCIIDigit(c) }
        return c.value < 0x10000 && c.properties.generalCategory == .decimalNumber
    }

    static func isASCIIDigit(_ c: Unicode.Scalar) -> Bool { c.value >= 0x30 && c.value <= 0x39 }
    static func isASCIILetter(_ c: Unicode.Scalar) -> Bool {
        (c.value >= 0x41 && c.value <= 0x5A) || (c.value >= 0x61 && c.value <= 0x7A)
    }
    static func isASCIIUpper(_ c: Unicode.Scalar) -> Bool { c.value >= 0x41 && c.value <= 0x5A }
    static func isASCIIAlnum(_ c: Unicode.Scalar) -> Bool { isASCIILetter(c) || isASCIIDigit(c) }

    /// WORD: letters, soft hyphen, and the combining marks / extra letters the lexer lists.
    static func isWordChar(_ c: Unicode.Scalar) -> Bool {
        if c.value < 0x80 { return isASCIILetter(c) }
        if isLetter(c) { return true }
        if c.value == 0xAD { return true }
        guard c.value < 0x10000 else { return false }
        switch c.properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: break
        }
        switch c.value {
        case 0x0237...0x024F, 0x02C2...0x02C5, 0x02D2...0x02DF, 0x02E5...0x02FF, 0x0370...0x037D, 0x0384, 0x0385,
             0x03CF, 0x03F6, 0x03FC...0x03FF, 0x04CF, 0x04F6...0x04FF, 0x0510...0x0525, 0x055A...0x055F:
            return true
        default: return false
        }
    }

    /// APOS: straight apostrophe, CP1252 0x92, right single quote (and the entity &apos;, handled separately).
    static func isApos(_ c: Unicode.Scalar) -> Bool { c == "'" || c.value == 0x92 || c.value == 0x2019 }
    /// APOSETCETERA: APOS plus the quotes that appear inside words.
    static func isAposEtc(_ c: Unicode.Scalar) -> Bool { isApos(c) || c.value == 0x91 || c.value == 0x2018 || c.value == 0x201B }
    static func isHyphenChar(_ c: Unicode.Scalar) -> Bool {
        c == "-" || c == "_" || c.value == 0x058A || c.value == 0x2010 || c.value == 0x2011
    }
    static func isLetterOrDigit(_ c: Unicode.Scalar) -> Bool { isLetter(c) || isDigit(c) }

    // MARK: Helpers

    func at(_ k: Int) -> Unicode.Scalar? { k < s.count ? s[k] : nil }

    func text(_ from: Int, _ to: Int) -> String {
        var r = String.UnicodeScalarView()
        r.append(contentsOf: s[from..<to])
        return String(r)
    }

    /// Case-insensitive literal at position k (ASCII literals only).
    func literal(_ word: String, at k: Int) -> Bool {
        var p = k
        for w in word.unicodeScalars {
            guard let c = at(p), Self.lowerASCII(c) == Self.lowerASCII(w) else { return false }
            p += 1
        }
        return true
    }

    static func lowerASCII(_ c: Unicode.Scalar) -> UInt32 {
        (c.value >= 0x41 && c.value <= 0x5A) ? c.value + 32 : c.value
    }

    /// Length of an APOS at k (1, or 6 for `&apos;`), 0 if none.
    func aposLength(at k: Int) -> Int {
        guard let c = at(k) else { return 0 }
        if Self.isApos(c) { return 1 }
        if c == "&" && literal("&apos;", at: k) { return 6 }
        return 0
    }

    func aposEtcLength(at k: Int) -> Int {
        guard let c = at(k) else { return 0 }
        if Self.isAposEtc(c) { return 1 }
        return aposLength(at: k)
    }

    func run(from k: Int, while pred: (Unicode.Scalar) -> Bool) -> Int {
        var p = k
        while p < s.count, pred(s[p]) { p += 1 }
        return p - k
    }

    /// REDAUX = APOS (s|m|d|re|ve|ll), caseless. Returns its length at k, or 0.
    func redauxLength(at k: Int) -> Int {
        let a = aposLength(at: k)
        guard a > 0 else { return 0 }
        for ending in ["re", "ve", "ll"] where literal(ending, at: k + a) { return a + 2 }
        for ending in ["s", "m", "d"] where literal(ending, at: k + a) { return a + 1 }
        return 0
    }

    /// SREDAUX = n APOSETCETERA t, caseless.
    func sredauxLength(at k: Int) -> Int {
        guard let c = at(k), Self.lowerASCII(c) == 0x6E else { return 0 }
        let a = aposEtcLength(at: k + 1)
        guard a > 0, let t = at(k + 1 + a), Self.lowerASCII(t) == 0x74 else { return 0 }
        return 2 + a
    }

    /// latexQuotes(tok, probablyLeft) of the lexer: the PTB's `` ` `` `` `` `` `'` `''`.
    static func latexQuotes(_ tok: String, probablyLeft: Bool) -> String {
        var out = ""
        var rest = Substring(tok)
        while let c = rest.unicodeScalars.first {
            if rest.hasPrefix("&apos;") { out += probablyLeft ? "`" : "'"; rest = rest.dropFirst(6); continue }
            if rest.hasPrefix("&quot;") { out += probablyLeft ? "``" : "''"; rest = rest.dropFirst(6); continue }
            switch c.value {
            case 0x27: out += probablyLeft ? "`" : "'"
            case 0x22: out += probablyLeft ? "``" : "''"
            case 0x91, 0x2018, 0x201B, 0x2039: out += "`"
            case 0x92, 0x2019, 0x203A: out += "'"
            case 0x93, 0x201C, 0xAB: out += "``"
            case 0x94, 0x201D, 0xBB: out += "''"
            default: out.unicodeScalars.append(c)
            }
            rest = Substring(rest.unicodeScalars.dropFirst())
        }
        return out
    }

    // MARK: Rule selection

    /// All rules at position i; the longest wins, the earliest among equals.
    func longestMatch() -> LexMatch {
        var best: LexMatch? = nil
        func consider(_ m: LexMatch?) {
            guard let m, m.length > 0 else { return }
            if best == nil || m.length > best!.length { best = m }
        }
        consider(assimilation())
        consider(sgml())
        consider(dash())
        consider(entityAmp())
        consider(wordBeforeRedaux())
        consider(swordBeforeNT())
        consider(word())
        consider(apostropheWord())
        consider(url())
        consider(email())
        consider(twitter())
        consider(redauxBeforeNonLetter())
        consider(sredaux())
        consider(date())
        consider(number())
        consider(superSubscriptNumber())
        consider(fraction())
        consider(unicodeFraction())
        consider(treebankSpecial())
        consider(slashThing())
        consider(currency())
        consider(abbreviation())
        consider(wordPeriodBeforeInSentencePunct())
        consider(phone())
        consider(doubleQuote())
        consider(smiley())
        consider(singleSymbols())
        consider(hyphens())
        consider(ellipsis())
        consider(marks())
        consider(hyphenatedThing())
        consider(thing())
        consider(upperAmpersandThing())
        consider(dottedWord())
        consider(openingSingleQuote())
        consider(redaux())
        consider(quotes())
        consider(miscSymbol())
        // Untokenizable (FIRST_DELETE): dropped.
        return best ?? LexMatch(length: 1, consumed: 1, text: nil)
    }

    // MARK: Rules

    /// `cannot` → `can` + `not`; `gonna wanna gotta lemme gimme` → `gon` + `na` …; `'tis 'twas` → `'t` + `is`.
    func assimilation() -> LexMatch? {
        if literal("cannot", at: i) { return LexMatch(length: 6, slice: 3) }
        for w in ["gonna", "gotta", "wanna", "lemme", "gimme"] where literal(w, at: i) {
            return LexMatch(length: 5, slice: 3)
        }
        let a = aposLength(at: i)
        if a > 0 {
            if literal("twas", at: i + a) { return LexMatch(length: a + 4, consumed: a + 1, text: "'" + text(i + a, i + a + 1)) }
            if literal("tis", at: i + a) { return LexMatch(length: a + 3, consumed: a + 1, text: "'" + text(i + a, i + a + 1)) }
        }
        return nil
    }

    /// SGML = <\/?[A-Za-z!][^>]*>
    func sgml() -> LexMatch? { sgmlLength(at: i).map { LexMatch(length: $0, consumed: $0, text: sgmlText(i, i + $0)) } }

    /// An SGML/XML tag as CoreNLP 3.4.1 recognizes it (checked against it): `<name attr attr="v" …>`,
    /// `</name>`, `<name/>`, `<!…>`, `<?…>`. NAME = [A-Za-z][A-Za-z0-9_:.\-]*; only spaces separate attributes.
    func sgmlLength(at start: Int) -> Int? {
        guard at(start) == "<", let first = at(start + 1) else { return nil }
        func name(_ k: Int) -> Int? {
            guard let c = at(k), Self.isASCIILetter(c) else { return nil }
            return k + 1 + run(from: k + 1) { Self.isASCIIAlnum($0) || $0 == "_" || $0 == ":" || $0 == "." || $0 == "-" }
        }
        func spaces(_ k: Int) -> Int { k + run(from: k) { $0 == " " } }
        var p: Int
        if first == "!" || first == "?" {
            guard let c = at(start + 2), Self.isASCIILetter(c) || c == "-" else { return nil }
            p = start + 3 + run(from: start + 3) { $0 != ">" && $0 != "\r" && $0 != "\n" }
        } else if first == "/" {
            guard let e = name(start + 2) else { return nil }
            p = e
        } else {
            guard let e = name(start + 1) else { return nil }
            p = e
            // attributes: [ ]+ NAME ([ ]* = [ ]* ('…' | "…" | NAME))?
            while true {
                let q = spaces(p)
                guard q > p, let n = name(q) else { break }
                p = n
                let eq = spaces(p)
                if at(eq) == "=" {
                    let v = spaces(eq + 1)
                    if let quote = at(v), quote == "'" || quote == "\"" {
                        var w = v + 1
                        while w < s.count, s[w] != quote { w += 1 }
                        guard w < s.count else { return nil }
                        p = w + 1
                    } else if let n2 = name(v) {
                        p = n2
                    } else {
                        return nil
                    }
                }
            }
            p = spaces(p)
            if at(p) == "/" { p += 1 }
        }
        p = spaces(p)
        guard at(p) == ">" else { return nil }
        return p + 1 - start
    }

    /// SGML tags keep their spaces as no-break spaces (normalizeSpace).
    func sgmlText(_ from: Int, _ to: Int) -> String {
        String(String.UnicodeScalarView(s[from..<to].map { $0 == " " ? "\u{00A0}" : $0 }))
    }

    /// SPMDASH: en/em dashes and their entities → `--`.
    func dash() -> LexMatch? {
        switch s[i].value {
        case 0x96, 0x97, 0x2013, 0x2014, 0x2015: return LexMatch(length: 1, consumed: 1, text: "--")
        default: break
        }
        for e in ["&mdash;", "&ndash;", "&MD;"] where literal(e, at: i) {
            let n = e.unicodeScalars.count
            return LexMatch(length: n, consumed: n, text: "--")
        }
        return nil
    }

    /// SPAMP: `&amp;` → `&`.
    func entityAmp() -> LexMatch? {
        literal("&amp;", at: i) ? LexMatch(length: 5, consumed: 5, text: "&") : nil
    }

    /// {WORD}/{REDAUX}: the word before a clitic like 's.
    func wordBeforeRedaux() -> LexMatch? {
        let w = run(from: i, while: Self.isWordChar)
        guard w > 0 else { return nil }
        let r = redauxLength(at: i + w)
        guard r > 0 else { return nil }
        return LexMatch(length: w + r, sliceWithoutSoftHyphens: w)
    }

    /// {SWORD}/{SREDAUX}: `does` in `doesn't`. SWORD = [A-Za-z\u00AD]*[A-MO-Za-mo-z]\u00AD*, so the
    /// n of n't is the last letter of the ASCII run and the word before it may not end in n.
    func swordBeforeNT() -> LexMatch? {
        let w = run(from: i) { Self.isASCIILetter($0) || $0.value == 0xAD }
        guard w >= 2 else { return nil }
        let k = i + w - 1
        let r = sredauxLength(at: k)
        guard r > 0, let last = lastNonSoftHyphen(i, k), Self.isASCIILetter(last), Self.lowerASCII(last) != 0x6E else { return nil }
        return LexMatch(length: k - i + r, sliceWithoutSoftHyphens: k - i)
    }

    private func lastNonSoftHyphen(_ from: Int, _ to: Int) -> Unicode.Scalar? {
        var k = to - 1
        while k >= from, s[k].value == 0xAD { k -= 1 }
        return k >= from ? s[k] : nil
    }

    func removeSoftHyphens(_ t: String) -> String {
        t.unicodeScalars.contains { $0.value == 0xAD } ? String(String.UnicodeScalarView(t.unicodeScalars.filter { $0.value != 0xAD })) : t
    }

    /// {WORD}
    func word() -> LexMatch? {
        let w = run(from: i, while: Self.isWordChar)
        guard w > 0 else { return nil }
        return LexMatch(length: w, sliceWithoutSoftHyphens: w)
    }

    /// {APOWORD} and {APOWORD2}/[:letter:]: words that keep an inner or edge apostrophe.
    func apostropheWord() -> LexMatch? {
        var best = 0
        let a = aposLength(at: i)
        if a > 0 {
            // APOS n APOS?
            if let c = at(i + a), Self.lowerASCII(c) == 0x6E {
                let a2 = aposLength(at: i + a + 1)
                best = max(best, a + 1 + a2)
            }
            if literal("em", at: i + a) { best = max(best, a + 2) }
            if let d = at(i + a), d.value >= 0x32, d.value <= 0x39, literal("0s", at: i + a + 1) { best = max(best, a + 3) }
            if literal("till", at: i + a) { best = max(best, a + 4) } else if literal("til", at: i + a) { best = max(best, a + 3) }
            if literal("cause", at: i + a) { best = max(best, a + 5) }
        }
        // [lLdDjJ] APOS
        if "lLdDjJ".unicodeScalars.contains(s[i]) {
            let a1 = aposLength(at: i + 1)
            if a1 > 0 { best = max(best, 1 + a1) }
        }
        for w in ["dunkin", "somethin", "ol"] where literal(w, at: i) {
            let n = w.unicodeScalars.count
            let a1 = aposLength(at: i + n)
            if a1 > 0 { best = max(best, n + a1) }
        }
        // [A-HJ-XZn] APOSETCETERA [:letter:]{2}[:letter:]*
        let c0 = s[i].value
        if (c0 >= 0x41 && c0 <= 0x48) || (c0 >= 0x4A && c0 <= 0x58) || c0 == 0x5A || c0 == 0x6E {
            let a1 = aposEtcLength(at: i + 1)
            if a1 > 0 {
                let l = run(from: i + 1 + a1, while: Self.isLetter)
                if l >= 2 { best = max(best, 1 + a1 + l) }
            }
        }
        // [:letter:][:letter:]*[aeiouyAEIOUY] APOSETCETERA [aeiouA-Z][:letter:]*
        if Self.isLetter(s[i]) {
            let l = run(from: i, while: Self.isLetter)
            // The vowel must be the last letter before the apostrophe (the letter run is maximal),
            // and at least one letter must precede it (so y'all is y' + all).
            let last = s[i + l - 1]
            if l >= 2, "aeiouyAEIOUY".unicodeScalars.contains(last) {
                let a1 = aposEtcLength(at: i + l)
                if a1 > 0, let n = at(i + l + a1), "aeiou".unicodeScalars.contains(n) || Self.isASCIIUpper(n) {
                    let rest = run(from: i + l + a1 + 1, while: Self.isLetter)
                    best = max(best, l + a1 + 1 + rest)
                }
            }
        }
        // cont'd\.? 'twas nor'easter c'mon e'er s'mores ev'ry li'l nat'l (straight apostrophe)
        if literal("cont'd.", at: i) { best = max(best, 7) } else if literal("cont'd", at: i) { best = max(best, 6) }
        for w in ["'twas", "nor'easter", "c'mon", "e'er", "s'mores", "ev'ry", "li'l", "nat'l"] where literal(w, at: i) {
            best = max(best, w.unicodeScalars.count)
        }
        if best > 0 { return LexMatch(length: best, slice: best) }
        // APOWORD2 = y APOS, followed by a letter
        if Self.lowerASCII(s[i]) == 0x79 {
            let a1 = aposLength(at: i + 1)
            if a1 > 0, let n = at(i + 1 + a1), Self.isLetter(n) {
                return LexMatch(length: 2 + a1, slice: 1 + a1)
            }
        }
        return nil
    }

    /// FULLURL, and LIKELYURL: `www.`-addresses and `….com/net/org/edu`, with an optional path.
    func url() -> LexMatch? {
        let stop: Set<UInt32> = [0x20, 0x09, 0x0A, 0x0C, 0x0D, 0x22, 0x3C, 0x3E, 0x7C, 0x28, 0x29]
        // [^ stop]+ then one character that is not a stop nor a final punctuation: two at least.
        func pathEnd(after start: Int, badEnd: Set<UInt32>) -> Int {
            var q = start + run(from: start) { !stop.contains($0.value) && !PTBLexer.isSpaceOrNewline($0) }
            while q > start, badEnd.contains(s[q - 1].value) { q -= 1 }
            return q - start >= 2 ? q : start
        }
        if literal("http://", at: i) || literal("https://", at: i) {
            let start = i + (literal("https://", at: i) ? 8 : 7)
            let end = pathEnd(after: start, badEnd: [0x2E, 0x21, 0x3F, 0x7B, 0x7D, 0x2C, 0x2D])
            return end > start ? LexMatch(length: end - i, slice: end - i) : nil
        }
        // Labels separated by dots; `labelChar` says what a label may hold.
        func labels(from k: Int, _ labelChar: (Unicode.Scalar) -> Bool) -> [(Int, Int)] {
            var out: [(Int, Int)] = []
            var p = k
            while true {
                let l = run(from: p, while: labelChar)
                guard l > 0 else { break }
                out.append((p, p + l))
                guard at(p + l) == "." else { break }
                p += l + 1
            }
            return out
        }
        var end = 0
        if literal("www.", at: i) {
            // www\.([^ \t\n\f\r"<>|.!?(){},]+\.)+[a-zA-Z]{2,4}
            let wwwStop: Set<UInt32> = [0x20, 0x09, 0x0A, 0x0C, 0x0D, 0x22, 0x3C, 0x3E, 0x7C, 0x2E, 0x21, 0x3F, 0x28, 0x29, 0x7B, 0x7D, 0x2C]
            let ls = labels(from: i + 4) { !wwwStop.contains($0.value) }
            if ls.count >= 2 {
                let t = ls.last!
                let tld = min(run(from: t.0, while: Self.isASCIILetter), 4)
                if tld >= 2 { end = t.0 + tld }
            }
        }
        // ([^ \t\n\f\r"`'<>|.!?(){},-_$]+\.)+(com|net|org|edu): the class holds the range ,-_
        // (U+002C…U+005F: digits, capitals, :;<=>?@[\]^), a quirk kept as is.
        let likely: (Unicode.Scalar) -> Bool = { c in
            let v = c.value
            if v <= 0x20 || (0x2C...0x5F).contains(v) { return false }
            return ![0x22, 0x60, 0x27, 0x7C, 0x21, 0x28, 0x29, 0x7B, 0x7D, 0x24, 0xA0].contains(v)
        }
        let ls = labels(from: i, likely)
        if ls.count >= 2 {
            for (k, l) in ls.enumerated().dropFirst() {
                for tld in ["com", "net", "org", "edu"] where literal(tld, at: l.0) && l.1 - l.0 >= 3 && k >= 1 {
                    end = max(end, l.0 + 3)
                }
            }
        }
        guard end > 0 else { return nil }
        if at(end) == "/" {
            let q = pathEnd(after: end + 1, badEnd: [0x2E, 0x21, 0x3F, 0x7B, 0x7D, 0x2C, 0x2D, 0x28, 0x29])
            if q > end + 1 { end = q }
        }
        return LexMatch(length: end - i, slice: end - i)
    }

    /// Letters joined by single dots, ? or ! (`onion.then`, `mix.it.up`, `done?then`): CoreNLP 3.4.1
    /// keeps them as one token.
    func dottedWord() -> LexMatch? {
        var p = i + run(from: i, while: Self.isLetter)
        guard p > i else { return nil }
        var end = 0
        while let c = at(p), c == "." || c == "?" || c == "!", case let l = run(from: p + 1, while: Self.isLetter), l > 0 {
            p += 1 + l
            end = p
        }
        return end > 0 ? LexMatch(length: end - i, slice: end - i) : nil
    }

    /// EMAIL as CoreNLP 3.4.1 matches it: [a-zA-Z0-9][^ \t\n\f\r"<>|()\u00A0]*@([^ …().]+\.)*[^ …().]+
    /// (loose: whatever follows the @ up to a space or bracket, without a final period).
    func email() -> LexMatch? {
        if s[i] == "<", let n = at(i + 1), Self.isASCIIAlnum(n) {
            // (&lt;|<)? prefix
            var inner = self
            inner.i = i + 1
            return inner.email().map { LexMatch(length: $0.length + 1, consumed: $0.consumed + 1, text: "<" + ($0.text ?? "")) }
        }
        guard Self.isASCIIAlnum(s[i]) else { return nil }
        let stop: Set<UInt32> = [0x20, 0x09, 0x0A, 0x0C, 0x0D, 0x22, 0x3C, 0x3E, 0x7C, 0x28, 0x29, 0xA0]
        let end = i + run(from: i) { !stop.contains($0.value) }
        var best = 0
        for k in (i + 1)..<max(end, i + 1) where s[k] == "@" {
            // (X+\.)*X+ with X = not a stop and not '.': the longest prefix after k ending in X.
            var p = k + 1
            var last = 0
            while p < end {
                let x = run(from: p) { $0 != "." && !stop.contains($0.value) }
                guard x > 0 else { break }
                p += x
                last = p
                guard p < end, s[p] == "." else { break }
                p += 1
            }
            if last > 0 { best = max(best, last - i + (at(last) == ">" ? 1 : 0)) }
        }
        return best > 0 ? LexMatch(length: best, slice: best) : nil
    }

    /// TWITTER: `@name` ([@＠][a-zA-Z_][a-zA-Z_0-9]*) and `#tag` ([#＃] and letters: 3.4.1 ends a
    /// hashtag at a digit, `#tag1` → `#tag` `1`).
    func twitter() -> LexMatch? {
        let c = s[i].value
        if c == 0x40 || c == 0xFF20 {
            guard let f = at(i + 1), Self.isASCIILetter(f) || f == "_" else { return nil }
            let n = 1 + run(from: i + 1) { Self.isASCIIAlnum($0) || $0 == "_" }
            return LexMatch(length: n, slice: n)
        }
        if c == 0x23 || c == 0xFF03 {
            let n = 1 + run(from: i + 1, while: Self.isLetter)
            return n > 1 ? LexMatch(length: n, slice: n) : nil
        }
        return nil
    }

    /// {REDAUX}/[^A-Za-z]: `'s` before a non-letter.
    func redauxBeforeNonLetter() -> LexMatch? {
        let r = redauxLength(at: i)
        guard r > 0 else { return nil }
        if let n = at(i + r) {
            guard !Self.isASCIILetter(n) else { return nil }
            return LexMatch(length: r + 1, consumed: r, text: Self.latexQuotes(text(i, i + r), probablyLeft: false))
        }
        return LexMatch(length: r, consumed: r, text: Self.latexQuotes(text(i, i + r), probablyLeft: false))
    }

    /// {SREDAUX}: `n't`.
    func sredaux() -> LexMatch? {
        let r = sredauxLength(at: i)
        return r > 0 ? LexMatch(length: r, consumed: r, text: Self.latexQuotes(text(i, i + r), probablyLeft: false)) : nil
    }

    /// DATE = {DIGIT}{1,2}[\-\/]{DIGIT}{1,2}[\-\/]{DIGIT}{2,4}
    func date() -> LexMatch? {
        var p = i
        for (minDigits, maxDigits, sep) in [(1, 2, true), (1, 2, true), (2, 4, false)] {
            let d = min(run(from: p, while: Self.isDigit), maxDigits)
            guard d >= minDigits else { return nil }
            p += d
            if sep {
                guard let c = at(p), c == "-" || c == "/" else { return nil }
                p += 1
            }
        }
        return LexMatch(length: p - i, slice: p - i)
    }

    /// NUMBER = [\-+]?({DIGIT}+|{DIGIT}*([.:,\u00AD\u066B\u066C]{DIGIT}+)+)
    func number() -> LexMatch? {
        var p = i
        if s[p] == "-" || s[p] == "+" { p += 1 }
        let start = p
        p += run(from: p, while: Self.isDigit)
        var end = p > start ? p : 0
        while let c = at(p), c == "." || c == ":" || c == "," || c.value == 0xAD || c.value == 0x66B || c.value == 0x66C {
            let d = run(from: p + 1, while: Self.isDigit)
            guard d > 0 else { break }
            p += 1 + d
            end = p
        }
        guard end > start else { return nil }
        return LexMatch(length: end - i, sliceWithoutSoftHyphens: end - i)
    }

    /// SUBSUPNUM: superscript / subscript digits.
    func superSubscriptNumber() -> LexMatch? {
        var p = i
        if [0x207A, 0x207B, 0x208A, 0x208B].contains(s[p].value) { p += 1 }
        let sup = run(from: p) { [0x2070, 0xB9, 0xB2, 0xB3].contains($0.value) || (0x2074...0x2079).contains($0.value) }
        let sub = run(from: p) { (0x2080...0x2089).contains($0.value) }
        let n = max(sup, sub)
        guard n > 0 else { return nil }
        return LexMatch(length: p + n - i, consumed: p + n - i, text: text(i, p + n))
    }

    /// FRAC = ({DIGIT}{1,4}[- \u00A0])?{DIGIT}{1,4}(\\?\/|\u2044){DIGIT}{1,4}; spaces become U+00A0.
    func fraction() -> LexMatch? {
        func simple(_ k: Int) -> Int? {
            let a = run(from: k, while: Self.isDigit)
            guard a >= 1, a <= 4 else { return nil }
            var p = k + a
            if at(p) == "\\", at(p + 1) == "/" { p += 2 } else if let c = at(p), c == "/" || c.value == 0x2044 { p += 1 } else { return nil }
            let b = min(run(from: p, while: Self.isDigit), 4)
            return b >= 1 ? p + b : nil
        }
        var best = simple(i)
        let a = run(from: i, while: Self.isDigit)
        if a >= 1, a <= 4, let c = at(i + a), c == "-" || c == " " || c.value == 0xA0, let e = simple(i + a + 1) {
            best = max(best ?? 0, e)
        }
        guard let end = best else { return nil }
        let t = String(String.UnicodeScalarView(s[i..<end].map { $0 == " " ? "\u{00A0}" : $0 }))
        return LexMatch(length: end - i, consumed: end - i, text: t)
    }

    /// FRAC2: ¼ ½ ¾ ⅓ … (the lexer maps the first four to ASCII; its ⅔ mapping is a no-op typo).
    func unicodeFraction() -> LexMatch? {
        let v = s[i].value
        guard v == 0xBC || v == 0xBD || v == 0xBE || (0x2153...0x215E).contains(v) else { return nil }
        let t: String
        switch v {
        case 0xBC: t = "1/4"
        case 0xBD: t = "1/2"
        case 0xBE: t = "3/4"
        case 0x2153: t = "1/3"
        default: t = text(i, i + 1)
        }
        return LexMatch(length: 1, consumed: 1, text: t)
    }

    /// TBSPEC: -LRB- style tokens and a few fixed forms.
    func treebankSpecial() -> LexMatch? {
        var best = 0
        if s[i] == "-" {
            for b in ["RRB", "LRB", "RCB", "LCB", "RSB", "LSB"] where literal(b, at: i + 1) && at(i + 4) == "-" { best = 5 }
        }
        for w in ["C.D.s", "pro-", "anti-", "S&P-500", "S&amp;P-500", "S&Ls", "S&amp;Ls", "Cap'n", "c'est"] where literal(w, at: i) {
            best = max(best, w.unicodeScalars.count)
        }
        guard best > 0 else { return nil }
        return LexMatch(length: best, consumed: best, text: text(i, i + best).replacingOccurrences(of: "&amp;", with: "&"))
    }

    /// THING3 = [A-Za-z0-9]+(-[A-Za-z]+){0,2}(\\?\/[A-Za-z0-9]+(-[A-Za-z]+){0,2}){1,2}
    func slashThing() -> LexMatch? {
        func part(_ k: Int) -> Int? {
            let a = run(from: k, while: Self.isASCIIAlnum)
            guard a > 0 else { return nil }
            var p = k + a
            for _ in 0..<2 {
                guard at(p) == "-" else { break }
                let l = run(from: p + 1, while: Self.isASCIILetter)
                guard l > 0 else { break }
                p += 1 + l
            }
            return p
        }
        guard var p = part(i) else { return nil }
        var slashes = 0
        while slashes < 2 {
            var q = p
            if at(q) == "\\" { q += 1 }
            guard at(q) == "/", let e = part(q + 1) else { break }
            p = e
            slashes += 1
        }
        guard slashes > 0 else { return nil }
        return LexMatch(length: p - i, slice: p - i)
    }

    /// DOLSIGN = [A-Z]*\$|#; DOLSIGN2 = other currency signs, some normalized.
    func currency() -> LexMatch? {
        let up = run(from: i, while: Self.isASCIIUpper)
        if at(i + up) == "$" { return LexMatch(length: up + 1, slice: up + 1) }
        if s[i] == "#" { return LexMatch(length: 1, consumed: 1, text: "#") }
        switch s[i].value {
        case 0xA2: return LexMatch(length: 1, consumed: 1, text: "cents")
        case 0xA3: return LexMatch(length: 1, consumed: 1, text: "#")
        case 0x80, 0xA4, 0x20A0, 0x20AC: return LexMatch(length: 1, consumed: 1, text: "$")
        case 0xA5, 0x060B, 0x0E3F, 0x20A4, 0xFFE0, 0xFFE1, 0xFFE5, 0xFFE6: return LexMatch(length: 1, slice: 1)
        default: return nil
        }
    }

    // Abbreviations that keep their period. The lists are PTBLexer's (induced from the 1987 WSJ),
    // as CoreNLP 3.4.1 behaves: checked word by word against it (tools/fixtures probes).
    /// ABBREV1: always keep the period (CoreNLP adds a second "." before a sentence start).
    static let abbrev1: Set<String> = {
        let month = ["jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"]
        let days = ["mon", "tue", "tues", "wed", "thu", "thurs", "fri"]
        let states = ["ala", "ariz", "calif", "colo", "conn", "ct", "dak", "fla", "ga", "ind", "kan", "kans", "ky", "md",
                      "mich", "minn", "mo", "mont", "neb", "nev", "okla", "penn", "tenn", "va", "vt", "wis", "wisc", "wyo"]
        let comp = ["inc", "co", "cos", "corp", "pty", "ptys", "pte", "ptes", "ppty", "pptys", "ltd", "plc", "rt",
                    "bancorp", "bhd", "assn", "univ", "intl", "sys"]
        let num = ["tel", "est", "ext", "sq"]
        let ptit = ["jr", "sr", "bros", "ed.d", "ph.d", "blvd", "rd", "esq"]
        return Set(month + days + states + comp + num + ptit + ["etc", "al", "seq", "bldg"])
    }()
    /// Members written with a capital in a character class ([A]rk, [D]el, [I]ll, [L]a, [M]ass, [M]iss,
    /// [O]re, [P]a, [T]ex, [W]ash): the lexer's caseless mode does not reach them.
    static let abbrev1Capitalized: Set<String> = ["Ark", "Az", "Del", "Ill", "La", "Mass", "Miss", "Ore", "Pa", "Tex", "Wash"]
    /// ABBREV2 = ABBREV4 + ".": titles and the like, period kept (a single letter too, see below).
    static let abbrev4: Set<String> = {
        let titles = ["mr", "mrs", "ms", "dr", "drs", "prof", "profs", "sen", "sens", "rep", "reps", "atty", "attys", "lt",
                      "col", "gen", "messrs", "gov", "govs", "adm", "rev", "maj", "sgt", "cpl", "pvt", "capt", "st", "ste",
                      "ave", "pres", "lieut", "hon", "brig", "cmdr", "comdr", "pfc", "spc", "supt", "supts", "det", "mt",
                      "ft", "adj", "adv", "asst", "assoc", "ens", "insp", "mlle", "mme", "msgr", "sfc"]
        let comp2 = ["invt", "elec", "natl", "mfg", "mtg", "dept"]
        return Set(titles + comp2 + ["vs", "alex", "wm", "jos", "cie", "a.k.a", "cf", "treas", "ph"])
    }()
    /// ABBREV3: period kept only before a number (`no. 5`, `fig. 2`).
    static let abbrev3: Set<String> = ["ca", "fig", "figs", "prop", "no", "nos", "art", "pp", "op"]
    /// Capitalized words that start a sentence after an acronym (PTBLexer's list).
    static let sentenceStarters: Set<String> = [
        "About", "According", "Additionally", "After", "An", "A", "As", "At", "But", "Earlier", "He", "Her", "Here",
        "However", "If", "In", "It", "Last", "Many", "More", "Mr.", "Ms.", "Now", "Once", "One", "Other", "Our", "She",
        "Since", "So", "Some", "Such", "That", "The", "Then", "There", "These", "They", "This", "We", "When", "While",
        "What", "Yet", "You",
    ]

    /// After whitespace (newlines included), does a sentence start here: one of the listed words
    /// followed by whitespace, or an SGML tag? (A single letter's period is then split off.)
    func sentenceStartFollows(_ k: Int) -> Bool {
        var p = k
        guard p < s.count, Self.isSpaceOrNewline(s[p]) else { return false }
        while p < s.count, Self.isSpaceOrNewline(s[p]) { p += 1 }
        if let g = sgmlLength(at: p) { return at(p + g).map(Self.isSpaceOrNewline) == true }
        var q = p
        while q < s.count, !Self.isSpaceOrNewline(s[q]) { q += 1 }
        guard q < s.count else { return false }  // the word must be followed by whitespace
        return Self.sentenceStarters.contains(text(p, q))
    }

    /// ABBREV1, ABBREV2, ABBREV3, ACRONYM, ACRO/{SPACENL}, ABBREV4/{SPACE}, TBSPEC2/{SPACENL}.
    func abbreviation() -> LexMatch? {
        var best: LexMatch? = nil
        func take(_ m: LexMatch) { if best == nil || m.length > best!.length { best = m } }
        // ACRO = [A-Za-z](\.[A-Za-z])+
        var acro = 0
        if Self.isASCIILetter(s[i]) {
            var p = i + 1
            while at(p) == ".", let c = at(p + 1), Self.isASCIILetter(c) { p += 2 }
            if p > i + 1 { acro = p - i }
        }
        if acro > 0 {
            if at(i + acro) == "." { take(LexMatch(length: acro + 1, slice: acro + 1)) }
            if let n = at(i + acro), Self.isSpaceOrNewline(n) {
                take(LexMatch(length: acro + 1, slice: acro))
            }
        }
        // Word-like abbreviations: letters (and inner dots for a.k.a, ph.d) then '.'
        var p = i
        while let c = at(p), Self.isASCIILetter(c) || (c == "." && at(p + 1).map(Self.isASCIILetter) == true && p > i) { p += 1 }
        if p > i {
            let w = text(i, p)
            let lw = w.lowercased()
            let capitalized = Self.isASCIIUpper(s[i]) ? String(w.prefix(1)) + w.dropFirst().lowercased() : ""
            let isAbbrev1 = Self.abbrev1.contains(lw) || Self.abbrev1Capitalized.contains(capitalized)
                || (w.hasPrefix("M") && (lw == "miss"))
            let singleLetter = p - i == 1
            let isAbbrev4 = Self.abbrev4.contains(lw) || singleLetter || (w.hasPrefix("M") && lw == "miss")
            if at(p) == "." {
                if singleLetter, sentenceStartFollows(p + 1) {
                    // A single letter ending a sentence ("… 350°F. The …"): the period is split off.
                    take(LexMatch(length: p + 2 - i + 1, consumed: 1, text: w))
                } else if isAbbrev1 || isAbbrev4 {
                    take(LexMatch(length: p + 1 - i, consumed: p + 1 - i, text: text(i, p + 1)))
                } else if Self.abbrev3.contains(lw) {
                    // before a number: an optional whitespace character, then a digit
                    var q = p + 1
                    if let c = at(q), Self.isSpaceOrNewline(c) { q += 1 }
                    if let d = at(q), Self.isDigit(d) {
                        take(LexMatch(length: q + 1 - i, consumed: p + 1 - i, text: text(i, p + 1)))
                    }
                }
            }
            if isAbbrev4, let n = at(p), n == " " || n == "\t" || n.value == 0xA0 || (0x2000...0x200A).contains(n.value) || n.value == 0x3000 {
                take(LexMatch(length: p + 1 - i, consumed: p - i, text: w))
            }
        }
        // TBSPEC2 = APOS[0-9][0-9] before a space
        let a = aposLength(at: i)
        if a > 0, let d1 = at(i + a), let d2 = at(i + a + 1), Self.isASCIIDigit(d1), Self.isASCIIDigit(d2),
           let n = at(i + a + 2), Self.isSpaceOrNewline(n) {
            take(LexMatch(length: a + 3, slice: a + 2))
        }
        return best
    }

    /// {WORD}\./{INSENTP}: `word.` before , ; : keeps its period.
    func wordPeriodBeforeInSentencePunct() -> LexMatch? {
        let w = run(from: i, while: Self.isWordChar)
        guard w > 0, at(i + w) == ".", let n = at(i + w + 1), n == "," || n == ";" || n == ":" else { return nil }
        return LexMatch(length: w + 2, sliceWithoutSoftHyphens: w + 1)
    }

    /// PHONE = (\([0-9]{3}\)[ \u00A0]?|[0-9]{3}[\- \u00A0.])[0-9]{3}[\- \u00A0.][0-9]{4}
    func phone() -> LexMatch? {
        func digits(_ k: Int, _ n: Int) -> Bool { (0..<n).allSatisfy { at(k + $0).map(Self.isASCIIDigit) == true } }
        func sep(_ k: Int) -> Bool { at(k).map { $0 == "-" || $0 == " " || $0.value == 0xA0 || $0 == "." } == true }
        var p = i
        if s[i] == "(" {
            guard digits(i + 1, 3), at(i + 4) == ")" else { return nil }
            p = i + 5
            if let c = at(p), c == " " || c.value == 0xA0 { p += 1 }
        } else {
            guard digits(i, 3), sep(i + 3) else { return nil }
            p = i + 4
        }
        guard digits(p, 3), sep(p + 3), digits(p + 4, 4) else { return nil }
        let end = p + 8
        var t = String(String.UnicodeScalarView(s[i..<end].map { $0 == " " ? "\u{00A0}" : $0 }))
        t = t.replacingOccurrences(of: "(", with: "-LRB-").replacingOccurrences(of: ")", with: "-RRB-")
        return LexMatch(length: end - i, consumed: end - i, text: t)
    }

    /// {DBLQUOT}/[A-Za-z0-9$] → `` ; {DBLQUOT} → ''.
    func doubleQuote() -> LexMatch? {
        var n = 0
        if s[i] == "\"" { n = 1 } else if literal("&quot;", at: i) { n = 6 }
        guard n > 0 else { return nil }
        if let c = at(i + n), Self.isASCIIAlnum(c) || c == "$" { return LexMatch(length: n + 1, consumed: n, text: "``") }
        return LexMatch(length: n, consumed: n, text: "''")
    }

    /// Smileys `:)` `;-)` `:D` … before a non-letter; parentheses escaped as usual.
    func smiley() -> LexMatch? {
        var p = i
        if s[p] == "<" || s[p] == ">" { p += 1 }
        guard let c = at(p), c == ":" || c == ";" || c == "=" else { return nil }
        p += 1
        if let n = at(p), n == "-" || n == "o" || n == "*" || n == "'" {
            if let m = at(p + 1), Self.isSmileyMouth(m) { p += 1 }
        }
        guard let m = at(p), Self.isSmileyMouth(m) else { return nil }
        p += 1
        if let n = at(p), Self.isLetterOrDigit(n) { return nil }
        let t = text(i, p).replacingOccurrences(of: "(", with: "-LRB-").replacingOccurrences(of: ")", with: "-RRB-")
        return LexMatch(length: p - i + (at(p) == nil ? 0 : 1), consumed: p - i, text: t)
    }

    static func isSmileyMouth(_ c: Unicode.Scalar) -> Bool {
        "()DPdpO\\{@|[]".unicodeScalars.contains(c)
    }

    /// Single-character rules: + % & ‰ ‱ ~ ^ | \ < > brackets, , ; : ? ! . = /
    func singleSymbols() -> LexMatch? {
        // FAKEDUCKFEET
        if (s[i] == "<" && at(i + 1) == "<") || (s[i] == ">" && at(i + 1) == ">") { return LexMatch(length: 2, slice: 2) }
        if literal("&lt;", at: i) { return LexMatch(length: 4, consumed: 4, text: "<") }
        if literal("&gt;", at: i) { return LexMatch(length: 4, consumed: 4, text: ">") }
        let c = s[i]
        switch c {
        case "(": return LexMatch(length: 1, consumed: 1, text: "-LRB-")
        case ")": return LexMatch(length: 1, consumed: 1, text: "-RRB-")
        case "[": return LexMatch(length: 1, consumed: 1, text: "-LSB-")
        case "]": return LexMatch(length: 1, consumed: 1, text: "-RSB-")
        case "{": return LexMatch(length: 1, consumed: 1, text: "-LCB-")
        case "}": return LexMatch(length: 1, consumed: 1, text: "-RCB-")
        case "?", "!":
            let n = run(from: i) { $0 == "?" || $0 == "!" }
            return LexMatch(length: n, slice: n)
        case "+", "%", "&", "~", "^", "|", "\\", "<", ">", ",", ";", ":", ".", "=", "/":
            break
        default:
            switch c.value {
            case 0x2030, 0x2031, 0xA1, 0xBF, 0x37E, 0x589, 0x61F, 0x6D4, 0x700...0x702, 0x7FA: break
            default:
                return nil
            }
        }
        return LexMatch(length: 1, slice: 1)
    }

    /// HYPHENS = \-+ : three or four become `--`.
    func hyphens() -> LexMatch? {
        let n = run(from: i) { $0 == "-" }
        guard n > 0 else { return nil }
        return LexMatch(length: n, consumed: n, text: (n == 3 || n == 4) ? "--" : text(i, i + n))
    }

    /// LDOTS = \.{3,5}|(\.[ \u00A0]){2,4}\.|[\u0085\u2026] → `...`
    func ellipsis() -> LexMatch? {
        if s[i].value == 0x85 || s[i].value == 0x2026 { return LexMatch(length: 1, consumed: 1, text: "...") }
        guard s[i] == "." else { return nil }
        let n = min(run(from: i) { $0 == "." }, 5)
        var best = n >= 3 ? n : 0
        // spaced dots: ". . ." up to ". . . . ."
        var p = i
        var pairs = 0
        while pairs < 4, at(p) == ".", let sp = at(p + 1), sp == " " || sp.value == 0xA0, at(p + 2) == "." {
            pairs += 1
            p += 2
        }
        if pairs >= 2 { best = max(best, p + 1 - i) }
        return best > 0 ? LexMatch(length: best, consumed: best, text: "...") : nil
    }

    /// FNMARKS (@+ #+ _+) and ASTS (\*+).
    func marks() -> LexMatch? {
        for m in ["@", "#", "_", "*"] as [Unicode.Scalar] where s[i] == m {
            let n = run(from: i) { $0 == m }
            return LexMatch(length: n, slice: n)
        }
        return nil
    }

    /// HTHING = [A-Za-z0-9][A-Za-z0-9.,\u00AD]*(-([A-Za-z0-9\u00AD]+|{ACRO}\.))+ , and {HTHING}\./{INSENTP}.
    func hyphenatedThing() -> LexMatch? {
        guard Self.isASCIIAlnum(s[i]) else { return nil }
        var p = i + 1 + run(from: i + 1) { Self.isASCIIAlnum($0) || $0 == "." || $0 == "," || $0.value == 0xAD }
        var end = 0
        while at(p) == "-" {
            // {ACRO}\. alternative
            var acroEnd = 0
            if let c = at(p + 1), Self.isASCIILetter(c) {
                var q = p + 2
                while at(q) == ".", let d = at(q + 1), Self.isASCIILetter(d) { q += 2 }
                if q > p + 2, at(q) == "." { acroEnd = q + 1 }
            }
            let l = run(from: p + 1) { Self.isASCIIAlnum($0) || $0.value == 0xAD }
            let plainEnd = l > 0 ? p + 1 + l : 0
            let e = max(acroEnd, plainEnd)
            guard e > 0 else { break }
            p = e
            end = e
        }
        guard end > 0 else { return nil }
        if at(end) == ".", let n = at(end + 1), n == "," || n == ";" || n == ":" {
            return LexMatch(length: end + 2 - i, consumed: end + 1 - i, text: removeSoftHyphens(text(i, end + 1)))
        }
        return LexMatch(length: end - i, sliceWithoutSoftHyphens: end - i)
    }

    /// THING = ([dDoOlL]{APOSETCETERA}([:letter:]|[:digit:]))?([:letter:]|[:digit:])+({HYPHEN}(…)?([:letter:]|[:digit:])+)*
    /// and {THING}\./{INSENTP}.
    func thing() -> LexMatch? {
        func segment(_ k: Int) -> Int? {
            var p = k
            if let c = at(p), "dDoOlL".unicodeScalars.contains(c) {
                let a = aposEtcLength(at: p + 1)
                if a > 0, let n = at(p + 1 + a), Self.isLetterOrDigit(n) {
                    let rest = run(from: p + 2 + a, while: Self.isLetterOrDigit)
                    if rest > 0 { return p + 2 + a + rest }
                }
            }
            let l = run(from: p, while: Self.isLetterOrDigit)
            guard l > 0 else { return nil }
            p += l
            return p
        }
        guard var end = segment(i) else { return nil }
        while let h = at(end), Self.isHyphenChar(h), let e = segment(end + 1) { end = e }
        if at(end) == ".", let n = at(end + 1), n == "," || n == ";" || n == ":" {
            return LexMatch(length: end + 2 - i, consumed: end + 1 - i, text: text(i, end + 1))
        }
        return LexMatch(length: end - i, slice: end - i)
    }

    /// THINGA = [A-Z]+(([+&]|&amp;)[A-Z]+)+ (capitals only: `AT&T`), and {THINGA}\./{INSENTP}.
    func upperAmpersandThing() -> LexMatch? {
        var p = i + run(from: i, while: Self.isASCIIUpper)
        guard p > i else { return nil }
        var end = 0
        while true {
            var q = p
            if let c = at(q), c == "+" || c == "&" { q += literal("&amp;", at: q) ? 5 : 1 } else { break }
            let u = run(from: q, while: Self.isASCIIUpper)
            guard u > 0 else { break }
            p = q + u
            end = p
        }
        guard end > 0 else { return nil }
        let t = text(i, end).replacingOccurrences(of: "&amp;", with: "&")
        if at(end) == ".", let n = at(end + 1), n == "," || n == ";" || n == ":" {
            return LexMatch(length: end + 2 - i, consumed: end + 1 - i, text: t + ".")
        }
        return LexMatch(length: end - i, consumed: end - i, text: t)
    }

    /// '/[A-Za-z][^ \t\n\r\u00A0] → an opening single quote.
    func openingSingleQuote() -> LexMatch? {
        guard s[i] == "'", let a = at(i + 1), Self.isASCIILetter(a), let b = at(i + 2),
              ![0x20, 0x09, 0x0A, 0x0D, 0xA0].contains(b.value) else { return nil }
        return LexMatch(length: 3, consumed: 1, text: "`")
    }

    /// {REDAUX}
    func redaux() -> LexMatch? {
        let r = redauxLength(at: i)
        return r > 0 ? LexMatch(length: r, consumed: r, text: Self.latexQuotes(text(i, i + r), probablyLeft: false)) : nil
    }

    /// QUOTES = {APOS}|''|[`\u2018\u2019\u201A\u201B\u201C\u201D\u0091-\u0094\u201E\u201F\u2039\u203A\u00AB\u00BB]{1,2}
    func quotes() -> LexMatch? {
        func isQuoteChar(_ c: Unicode.Scalar) -> Bool {
            switch c.value {
            case 0x60, 0x2018, 0x2019, 0x201A, 0x201B, 0x201C, 0x201D, 0x91...0x94, 0x201E, 0x201F, 0x2039, 0x203A, 0xAB, 0xBB: return true
            default: return false
            }
        }
        var best = aposLength(at: i)
        if s[i] == "'", at(i + 1) == "'" { best = max(best, 2) }
        if isQuoteChar(s[i]) { best = max(best, (at(i + 1).map(isQuoteChar) == true) ? 2 : 1) }
        guard best > 0 else { return nil }
        return LexMatch(length: best, consumed: best, text: Self.latexQuotes(text(i, i + best), probablyLeft: false))
    }

    /// MISCSYMBOL and other symbols (math, arrows, dingbats, °, ×, ™ …): single tokens.
    func miscSymbol() -> LexMatch? {
        let c = s[i]
        guard c.value < 0x10000 else { return nil }
        switch c.properties.generalCategory {
        case .mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol:
            return LexMatch(length: 1, slice: 1)
        default: break
        }
        switch c.value {
        case 0xA7, 0xB6, 0xB7, 0x387, 0x2020...0x2023, 0x2032...0x2038, 0x2044, 0xFF01...0xFF0F, 0xFF1A...0xFF20,
             0xFF3B...0xFF40, 0xFF5B...0xFF65, 0x30FB, 0x3012:
            return LexMatch(length: 1, slice: 1)
        default:
            return nil
        }
    }
}
