/// Word n-grams of a tokenized caption, as pycocoevalcap's `precook` counts them.

/// Splits like Python's `str.split()` with no argument: runs of Unicode whitespace separate words
/// (this includes the no-break space CoreNLP puts inside `1 1/2`), no empty words.
func pythonSplit(_ s: String) -> [Substring] {
    s.split(whereSeparator: { ch in ch.unicodeScalars.allSatisfy(isPythonWhitespace) })
}

/// Python's `str.isspace()` for one scalar (White_Space plus the C0 separators 0x1C-0x1F).
func isPythonWhitespace(_ c: Unicode.Scalar) -> Bool {
    switch c.value {
    case 0x09...0x0D, 0x1C...0x1F, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
        return true
    default:
        return false
    }
}

/// An n-gram as a key: its words joined by U+0001 (which never occurs inside a word here, since
/// control characters are dropped by the tokenizer), so counting needs one hash per n-gram.
struct NGram: Hashable {
    let key: String
    let order: Int  // n, 1-based
}

/// Counts of all n-grams of orders 1…n (pycocoevalcap `precook`).
func ngramCounts(_ words: [Substring], maxOrder n: Int) -> [NGram: Int] {
    var counts: [NGram: Int] = [:]
    guard !words.isEmpty else { return counts }
    for k in 1...n where words.count >= k {
        for i in 0...(words.count - k) {
            var key = String(words[i])
            for j in (i + 1)..<(i + k) {
                key.append("\u{1}")
                key.append(contentsOf: words[j])
            }
            counts[NGram(key: key, order: k), default: 0] += 1
        }
    }
    return counts
}
