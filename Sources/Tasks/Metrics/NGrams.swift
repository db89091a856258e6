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

/// Word ids for the captions being scored: n-grams are hashed as a few integers, not strings.
struct WordIndex {
    private var ids: [Substring: Int32] = [:]

    /// The words of a tokenized caption (Python `split()`), as ids.
    mutating func words(_ caption: String) -> [Int32] {
        pythonSplit(caption).map { w in
            if let id = ids[w] { return id }
            let id = Int32(ids.count)
            ids[w] = id
            return id
        }
    }
}

/// An n-gram of order 1…4: its word ids (unused slots −1).
struct NGram: Hashable {
    static let maxOrder = 4
    var w0: Int32, w1: Int32, w2: Int32, w3: Int32
    var order: Int

    init(_ words: ArraySlice<Int32>) {
        precondition(words.count >= 1 && words.count <= NGram.maxOrder)
        let b = words.startIndex
        w0 = words[b]
        w1 = words.count > 1 ? words[b + 1] : -1
        w2 = words.count > 2 ? words[b + 2] : -1
        w3 = words.count > 3 ? words[b + 3] : -1
        order = words.count
    }
}

/// Counts of all n-grams of orders 1…n (pycocoevalcap `precook`), kept in insertion order (orders
/// ascending, then position) like the Python dict it mirrors, so that sums over n-grams happen in
/// the same order on every run (Swift dictionaries iterate in a per-process random order).
struct NGramCounts {
    private(set) var grams: [NGram] = []
    private(set) var counts: [Int] = []
    private var index: [NGram: Int] = [:]

    init(_ words: [Int32], maxOrder n: Int) {
        precondition(n >= 1 && n <= NGram.maxOrder, "n-gram orders 1...\(NGram.maxOrder)")
        guard !words.isEmpty else { return }
        index.reserveCapacity(words.count * n)
        for k in 1...n where words.count >= k {
            for i in 0...(words.count - k) {
                let g = NGram(words[i..<(i + k)])
                if let at = index[g] {
                    counts[at] += 1
                } else {
                    index[g] = grams.count
                    grams.append(g)
                    counts.append(1)
                }
            }
        }
    }

    subscript(_ g: NGram) -> Int { index[g].map { counts[$0] } ?? 0 }

    /// (n-gram, count) in insertion order.
    var items: Zip2Sequence<[NGram], [Int]> { zip(grams, counts) }
}
