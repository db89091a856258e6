import Foundation
import Tensor

/// Trains a WordPiece vocabulary the way HF tokenizers' `WordPieceTrainer` does (it runs its
/// BPE trainer with the continuation prefix "##"; Sennrich et al. 2016 merges over the words of
/// BERT's basic tokenization):
///
/// 1. count the words of the corpus (BasicTokenizer, uncased or cased);
/// 2. vocabulary = special tokens, [unusedN] slots, then the alphabet: every character of the
///    words, limited to the `limitAlphabet` most frequent, sorted by code point;
/// 3. each word becomes its characters, all but the first with "##" (characters outside the
///    alphabet are skipped, as in HF); each "##c" joins the vocabulary when first seen;
/// 4. repeatedly merge the most frequent adjacent pair (ties: the pair of smaller ids first, as
///    HF's heap orders them) into a new token A + B-without-"##", until the vocabulary has
///    `vocabularySize` entries or no pair occurs `minFrequency` times.
///
/// Not byte-identical to HF's output in general: HF numbers the "##c" tokens in the iteration
/// order of a hash map (random per process), and that order breaks ties between pairs of equal
/// count, so HF itself gives different vocabularies from run to run. Here words are visited in
/// byte order, so training is deterministic.
public struct WordPieceTrainer {
    public struct Options: Sendable {
        /// Target number of entries, specials included.
        public var vocabularySize = 30522
        /// Pairs seen fewer times are never merged.
        public var minFrequency = 2
        /// Keep at most this many characters (the most frequent); nil keeps all.
        public var limitAlphabet: Int? = 1000
        /// Characters always in the alphabet.
        public var initialAlphabet: [Unicode.Scalar] = []
        /// Uncased (lower-case, strip accents) or cased basic tokenization.
        public var lowercase = true
        /// First entries, in this order.
        public var specialTokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        /// Number of [unused0] … [unusedN-1] entries after the specials (BERT reserves such slots
        /// for tokens added later, e.g. VideoBERT's text/video separator).
        public var unusedSlots = 0

        public init() {}
    }

    public struct Summary: Sendable, Codable {
        public var entries: Int
        public var words: Int
        public var distinctWords: Int
        public var alphabet: Int
        public var merges: Int
    }

    public let options: Options
    /// Word → occurrences.
    public private(set) var wordCounts: [String: Int] = [:]

    public init(options: Options = Options()) {
        self.options = options
    }

    /// Counts the words of each line.
    public mutating func add(lines: [String]) {
        var counts = wordCounts
        BasicTokenizer(lowercase: options.lowercase).forEachWord(inLines: lines) { bytes in
            counts[String(decoding: bytes, as: UTF8.self), default: 0] += 1
        }
        wordCounts = counts
    }

    /// Trains; `progress` (optional) advances once per merge.
    public func train(progress: ProgressReporter? = nil) -> (vocabulary: TextVocabulary, summary: Summary) {
        var tokens: [String] = []
        var ids: [String: Int32] = [:]
        @discardableResult
        func add(_ t: String) -> Int32 {
            if let id = ids[t] { return id }
            let id = Int32(tokens.count)
            tokens.append(t)
            ids[t] = id
            return id
        }
        for t in options.specialTokens { add(t) }
        for i in 0..<options.unusedSlots { add("[unused\(i)]") }

        // Words in byte order (deterministic ids for the "##c" tokens).
        let words = wordCounts.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let counts = words.map { wordCounts[$0]! }

        // Alphabet: most frequent characters; ties dropped from the highest code point down.
        var charCounts: [Unicode.Scalar: Int] = [:]
        for (w, c) in zip(words, counts) {
            for s in w.unicodeScalars { charCounts[s, default: 0] += c }
        }
        for s in options.initialAlphabet { charCounts[s] = Int.max }
        var alphabet = charCounts.map { ($0.key, $0.value) }
        if let limit = options.limitAlphabet, alphabet.count > limit {
            alphabet.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0.value < $1.0.value }
            alphabet.removeLast(alphabet.count - limit)
        }
        alphabet.sort { $0.0.value < $1.0.value }
        for (s, _) in alphabet { add(String(s)) }

        // Words as symbol ids.
        var symbols: [[Int32]] = []
        symbols.reserveCapacity(words.count)
        for w in words {
            var word: [Int32] = []
            for (i, s) in w.unicodeScalars.enumerated() where ids[String(s)] != nil {
                word.append(add(i == 0 ? String(s) : "##" + String(s)))
            }
            symbols.append(word)
        }

        // Pair statistics. A pair (a, b) is packed as a << 32 | b, so comparing packed values
        // compares (a, b) lexicographically.
        var pairCounts: [UInt64: Int] = [:]
        var pairWords: [UInt64: [Int32]] = [:]
        @inline(__always) func pack(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(a)) << 32 | UInt64(UInt32(b)) }
        for (w, word) in symbols.enumerated() where word.count > 1 {
            for i in 0..<(word.count - 1) {
                let p = pack(word[i], word[i + 1])
                pairCounts[p, default: 0] += counts[w]
                if pairWords[p]?.last != Int32(w) { pairWords[p, default: []].append(Int32(w)) }
            }
        }
        var heap = PairHeap()
        for (p, c) in pairCounts where c > 0 { heap.push(count: c, pair: p) }

        var merges = 0
        var stamp = [Int32](repeating: -1, count: symbols.count)
        var touched: [UInt64: Bool] = [:]
        progress?.setTotal(max(options.vocabularySize - tokens.count, 0))
        while tokens.count < options.vocabularySize, let top = heap.pop() {
            let current = pairCounts[top.pair] ?? 0
            if top.count != current {
                if current > 0 { heap.push(count: current, pair: top.pair) }  // stale entry
                continue
            }
            if current < max(options.minFrequency, 1) { break }
            let a = Int32(truncatingIfNeeded: top.pair >> 32), b = Int32(truncatingIfNeeded: top.pair)
            var right = tokens[Int(b)]
            if right.hasPrefix("##") { right.removeFirst(2) }
            let merged = add(tokens[Int(a)] + right)
            merges += 1
            progress?.advance()

            touched.removeAll(keepingCapacity: true)
            for w in pairWords[top.pair] ?? [] where stamp[Int(w)] != Int32(merges) {
                stamp[Int(w)] = Int32(merges)
                let c = counts[Int(w)]
                var word = symbols[Int(w)]
                var out: [Int32] = []
                out.reserveCapacity(word.count)
                var i = 0
                var lastMerged = false  // out.last was produced by a merge in this pass
                while i < word.count {
                    if i + 1 < word.count && word[i] == a && word[i + 1] == b {
                        pairCounts[top.pair, default: 0] -= c
                        if let prev = out.last {
                            // After a merge, (b, a) was already taken away as that merge's right side.
                            if !lastMerged { pairCounts[pack(prev, a), default: 0] -= c }
                            let p = pack(prev, merged)
                            pairCounts[p, default: 0] += c
                            touched[p] = true
                            if pairWords[p]?.last != w { pairWords[p, default: []].append(w) }
                        }
                        if i + 2 < word.count {
                            pairCounts[pack(b, word[i + 2]), default: 0] -= c
                            // When the next symbols merge too, that merge adds (merged, merged).
                            if !(i + 3 < word.count && word[i + 2] == a && word[i + 3] == b) {
                                let p = pack(merged, word[i + 2])
                                pairCounts[p, default: 0] += c
                                touched[p] = true
                                if pairWords[p]?.last != w { pairWords[p, default: []].append(w) }
                            }
                        }
                        out.append(merged)
                        i += 2
                        lastMerged = true
                    } else {
                        out.append(word[i])
                        i += 1
                        lastMerged = false
                    }
                }
                word = out
                symbols[Int(w)] = word
            }
            pairWords[top.pair] = nil
            for p in touched.keys {
                if let c = pairCounts[p], c > 0 { heap.push(count: c, pair: p) }
            }
        }
        progress?.finish()
        let vocabulary = TextVocabulary(tokens: tokens)
        let summary = Summary(entries: tokens.count, words: counts.reduce(0, +), distinctWords: words.count,
                              alphabet: alphabet.count, merges: merges)
        return (vocabulary, summary)
    }
}

/// Max-heap of (count, pair): higher count first, then the smaller pair (HF's `Merge` order).
struct PairHeap {
    private var items: [(count: Int, pair: UInt64)] = []

    @inline(__always) private static func before(_ x: (count: Int, pair: UInt64), _ y: (count: Int, pair: UInt64)) -> Bool {
        x.count != y.count ? x.count > y.count : x.pair < y.pair
    }

    mutating func push(count: Int, pair: UInt64) {
        items.append((count, pair))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if !Self.before(items[i], items[parent]) { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> (count: Int, pair: UInt64)? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var best = i
                if l < items.count && Self.before(items[l], items[best]) { best = l }
                if r < items.count && Self.before(items[r], items[best]) { best = r }
                if best == i { break }
                items.swapAt(i, best)
                i = best
            }
        }
        return top
    }
}
