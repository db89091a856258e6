/// The Snowball English ("Porter2") stemmer, which METEOR 1.5's stem module uses for English
/// (`org.tartarus.snowball.ext.englishStemmer`). Written from the algorithm's definition
/// (snowballstem.org/algorithms/english/stemmer.html, english.sbl): prelude (initial apostrophe,
/// consonant y → Y), regions R1/R2 (with the gener-/commun-/arsen- exceptions), steps 0/1a,
/// 1b, 1c, 2, 3, 4, 5, the two exception lists, postlude (Y → y).
///
/// Works on UTF-16 code units like the Java class, so results agree on any input; only ASCII
/// a, e, i, o, u, y count as vowels. Checked against the jar's stemmer on a few hundred words
/// (Tests/TasksTests/Resources/english_stemmer.json).
public enum EnglishStemmer {
    public static func stem(_ word: String) -> String {
        var w = Word(Array(word.utf16))
        w.stem()
        return String(decoding: w.b, as: UTF16.self)
    }
}

private let cA: UInt16 = 0x61, cE: UInt16 = 0x65, cI: UInt16 = 0x69, cO: UInt16 = 0x6F, cU: UInt16 = 0x75
private let cY: UInt16 = 0x79, cYUpper: UInt16 = 0x59, cApos: UInt16 = 0x27
private let cS: UInt16 = 0x73, cT: UInt16 = 0x74, cL: UInt16 = 0x6C, cW: UInt16 = 0x77, cX: UInt16 = 0x78

private func u(_ s: String) -> [UInt16] { Array(s.utf16) }

private struct Word {
    var b: [UInt16]
    var p1 = 0
    var p2 = 0

    init(_ b: [UInt16]) { self.b = b }

    static func isVowel(_ c: UInt16) -> Bool { c == cA || c == cE || c == cI || c == cO || c == cU || c == cY }
    /// v_WXY = v + w, x, Y
    static func isVowelWXY(_ c: UInt16) -> Bool { isVowel(c) || c == cW || c == cX || c == cYUpper }
    static let validLi: Set<UInt16> = Set("cdeghkmnrt".utf16)
    static func isValidLi(_ c: UInt16) -> Bool { validLi.contains(c) }

    func ends(_ suffix: [UInt16]) -> Bool {
        b.count >= suffix.count && Array(b[(b.count - suffix.count)...]) == suffix
    }

    /// The longest of `suffixes` the word ends with.
    func longestSuffix(_ suffixes: [String]) -> [UInt16]? {
        var best: [UInt16]? = nil
        for s in suffixes {
            let su = u(s)
            if ends(su), su.count > (best?.count ?? -1) { best = su }
        }
        return best
    }

    mutating func replaceSuffix(_ length: Int, with r: String) {
        b.removeLast(length)
        b.append(contentsOf: u(r))
    }

    /// shortv at position `end` (the syllable ends just before `end`): non-v, v, non-v_WXY; or v, non-v at the start.
    func endsInShortSyllable(_ end: Int) -> Bool {
        if end >= 3, !Self.isVowelWXY(b[end - 1]), Self.isVowel(b[end - 2]), !Self.isVowel(b[end - 3]) { return true }
        if end == 2, !Self.isVowel(b[1]), Self.isVowel(b[0]) { return true }
        return false
    }

    func containsVowel(_ range: Range<Int>) -> Bool { range.contains { Self.isVowel(b[$0]) } }

    mutating func stem() {
        if exception1() { return }
        guard b.count >= 3 else { return }  // "not hop 3": words shorter than 3 are left alone
        var yFound = false
        // prelude
        if b.first == cApos { b.removeFirst() }
        if b.first == cY { b[0] = cYUpper; yFound = true }
        var k = 1
        while k < b.count {
            if b[k] == cY, Self.isVowel(b[k - 1]) { b[k] = cYUpper; yFound = true }
            k += 1
        }
        markRegions()
        step1a()
        if !exception2() {
            step1b()
            step1c()
            step2()
            step3()
            step4()
            step5()
        }
        if yFound { b = b.map { $0 == cYUpper ? cY : $0 } }
    }

    mutating func markRegions() {
        p1 = b.count
        p2 = b.count
        var start = -1
        for prefix in ["gener", "commun", "arsen"] where b.starts(with: u(prefix)) { start = prefix.utf16.count }
        if start < 0 {
            guard let r = afterVowelThenNonVowel(from: 0) else { return }
            start = r
        }
        p1 = start
        if let r = afterVowelThenNonVowel(from: p1) { p2 = r }
    }

    /// gopast v gopast non-v: the position just after the first non-vowel that follows a vowel.
    func afterVowelThenNonVowel(from k: Int) -> Int? {
        var p = k
        while p < b.count, !Self.isVowel(b[p]) { p += 1 }
        guard p < b.count else { return nil }
        p += 1
        while p < b.count, Self.isVowel(b[p]) { p += 1 }
        guard p < b.count else { return nil }
        return p + 1
    }

    func inR1(_ suffixLength: Int) -> Bool { b.count - suffixLength >= p1 }
    func inR2(_ suffixLength: Int) -> Bool { b.count - suffixLength >= p2 }

    mutating func exception1() -> Bool {
        let map: [String: String] = ["skis": "ski", "skies": "sky", "dying": "die", "lying": "lie", "tying": "tie",
                                     "idly": "idl", "gently": "gentl", "ugly": "ugli", "early": "earli", "only": "onli",
                                     "singly": "singl", "sky": "sky", "news": "news", "howe": "howe", "atlas": "atlas",
                                     "cosmos": "cosmos", "bias": "bias", "andes": "andes"]
        guard let r = map[String(decoding: b, as: UTF16.self)] else { return false }
        b = u(r)
        return true
    }

    func exception2() -> Bool {
        ["inning", "outing", "canning", "herring", "earring", "proceed", "exceed", "succeed"].contains(String(decoding: b, as: UTF16.self))
    }

    mutating func step1a() {
        // Step 0: apostrophe endings
        if let s = longestSuffix(["'", "'s", "'s'"]) { b.removeLast(s.count) }
        guard let s = longestSuffix(["sses", "ied", "ies", "s", "us", "ss"]) else { return }
        switch String(decoding: s, as: UTF16.self) {
        case "sses":
            replaceSuffix(4, with: "ss")
        case "ied", "ies":
            replaceSuffix(3, with: b.count - 3 >= 2 ? "i" : "ie")
        case "s":
            // delete if a vowel occurs before the letter preceding the s
            if b.count >= 3, containsVowel(0..<(b.count - 2)) { b.removeLast() }
        default:
            break  // us, ss
        }
    }

    mutating func step1b() {
        guard let s = longestSuffix(["eed", "eedly", "ed", "edly", "ing", "ingly"]) else { return }
        let str = String(decoding: s, as: UTF16.self)
        if str == "eed" || str == "eedly" {
            if inR1(s.count) { replaceSuffix(s.count, with: "ee") }
            return
        }
        guard containsVowel(0..<(b.count - s.count)) else { return }
        b.removeLast(s.count)
        if let t = longestSuffix(["at", "bl", "iz"]), t.count == 2 {
            b.append(cE)
        } else if let t = longestSuffix(["bb", "dd", "ff", "gg", "mm", "nn", "pp", "rr", "tt"]), t.count == 2 {
            b.removeLast()
        } else if p1 == b.count, endsInShortSyllable(b.count) {  // "atmark p1": R1 is empty
            b.append(cE)
        }
    }

    mutating func step1c() {
        guard let last = b.last, last == cY || last == cYUpper, b.count >= 3, !Self.isVowel(b[b.count - 2]) else { return }
        b[b.count - 1] = cI
    }

    static let step2Rules: [String: String] = [
        "tional": "tion", "enci": "ence", "anci": "ance", "abli": "able", "entli": "ent", "izer": "ize", "ization": "ize",
        "ational": "ate", "ation": "ate", "ator": "ate", "alism": "al", "aliti": "al", "alli": "al", "fulness": "ful",
        "ousli": "ous", "ousness": "ous", "iveness": "ive", "iviti": "ive", "biliti": "ble", "bli": "ble", "ogi": "og",
        "fulli": "ful", "lessli": "less", "li": "",
    ]
    static let step2Suffixes = Array(step2Rules.keys)
    static let step3Rules: [String: String] = ["tional": "tion", "ational": "ate", "alize": "al", "icate": "ic", "iciti": "ic",
                                               "ical": "ic", "ful": "", "ness": "", "ative": ""]
    static let step3Suffixes = Array(step3Rules.keys)

    mutating func step2() {
        let rules = Self.step2Rules
        guard let s = longestSuffix(Self.step2Suffixes), inR1(s.count) else { return }
        let str = String(decoding: s, as: UTF16.self)
        let before = b.count - s.count
        switch str {
        case "ogi":
            if before >= 1, b[before - 1] == cL { replaceSuffix(3, with: "og") }
        case "li":
            if before >= 1, Self.isValidLi(b[before - 1]) { b.removeLast(2) }
        default:
            replaceSuffix(s.count, with: rules[str]!)
        }
    }

    mutating func step3() {
        let rules = Self.step3Rules
        guard let s = longestSuffix(Self.step3Suffixes), inR1(s.count) else { return }
        let str = String(decoding: s, as: UTF16.self)
        if str == "ative" {
            if inR2(s.count) { b.removeLast(s.count) }
        } else {
            replaceSuffix(s.count, with: rules[str]!)
        }
    }

    mutating func step4() {
        let suffixes = ["al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent", "ism", "ate",
                        "iti", "ous", "ive", "ize", "ion"]
        guard let s = longestSuffix(suffixes), inR2(s.count) else { return }
        if String(decoding: s, as: UTF16.self) == "ion" {
            let before = b.count - 3
            if before >= 1, b[before - 1] == cS || b[before - 1] == cT { b.removeLast(3) }
        } else {
            b.removeLast(s.count)
        }
    }

    mutating func step5() {
        guard let last = b.last else { return }
        if last == cE {
            if inR2(1) || (inR1(1) && !endsInShortSyllable(b.count - 1)) { b.removeLast() }
        } else if last == cL {
            if inR2(1), b.count >= 2, b[b.count - 2] == cL { b.removeLast() }
        }
    }
}
