import Foundation

/// Greedy longest-match-first WordPiece over one word (Wu et al. 2016; the `WordpieceTokenizer`
/// of google-research/bert, HF tokenizers' `WordPiece::tokenize`): the longest vocabulary entry
/// that prefixes the word, then the longest `##`-prefixed entry that prefixes the rest, and so
/// on; if some rest has no matching entry, or the word has more than
/// `maxInputCharsPerWord` characters, the whole word becomes [UNK].
public struct WordPieceTokenizer: Sendable {
    public let vocabulary: TextVocabulary
    public let unknownID: Int32
    /// BERT's `max_input_chars_per_word`, counted in Unicode scalars.
    public let maxInputCharsPerWord: Int
    public static let continuationPrefix = "##"
    let table: WordPieceTable

    public init(vocabulary: TextVocabulary, maxInputCharsPerWord: Int = 100) {
        self.vocabulary = vocabulary
        self.unknownID = vocabulary.id(of: TextVocabulary.unknownToken) ?? -1
        self.maxInputCharsPerWord = maxInputCharsPerWord
        self.table = WordPieceTable(vocabulary)
    }

    /// The ids of one already basic-tokenized word.
    public func encode(word: String) -> [Int32] {
        var word = word
        let chars = word.unicodeScalars.count
        if chars == 0 { return [] }
        if chars > maxInputCharsPerWord { return [unknownID] }
        return word.withUTF8 { w in
            let hashes = UnsafeMutablePointer<UInt64>.allocate(capacity: table.maxKeyBytes + 1)
            let pieces = UnsafeMutablePointer<Int32>.allocate(capacity: chars)
            defer { hashes.deallocate(); pieces.deallocate() }
            let k = table.encodeWord(w.baseAddress!, w.count, unknownID: unknownID, hashes: hashes, pieces: pieces)
            return Array(UnsafeBufferPointer(start: pieces, count: k))
        }
    }

    /// The pieces of one already basic-tokenized word, as strings.
    public func tokenize(word: String) -> [String] {
        encode(word: word).map { vocabulary.tokens[Int($0)] }
    }
}

/// Vocabulary lookup keyed on UTF-8 bytes, so the greedy search never builds a String per
/// candidate: open addressing over 64-bit FNV-1a hashes. The hash of every prefix of the rest
/// of a word is computed in one forward pass (FNV is incremental), continuation candidates
/// start from the hash state of "##", and candidates are probed from the longest down.
/// Immutable after init.
final class WordPieceTable: @unchecked Sendable {
    // @unchecked Sendable: all storage is written in init and only read afterwards.
    let slots: UnsafeMutablePointer<UInt64>   // [capacity]: tag << 32 | id, 0 = empty
    let mask: Int
    let shift: UInt64
    let keyBytes: UnsafeMutablePointer<UInt8> // token bytes of every id, concatenated
    let keyStart: UnsafeMutablePointer<Int32> // [count + 1]
    /// Longest token in bytes (bounds the search: no longer candidate can match).
    let maxKeyBytes: Int

    static let fnvOffset: UInt64 = 0xcbf2_9ce4_8422_2325
    static let fnvPrime: UInt64 = 0x100_0000_01b3
    /// FNV-1a state after "##".
    static let continuationState: UInt64 = {
        var h = fnvOffset
        for b in "##".utf8 { h = (h ^ UInt64(b)) &* fnvPrime }
        return h
    }()

    init(_ vocabulary: TextVocabulary) {
        let tokens = vocabulary.tokens
        var total = 0
        var longest = 0
        for t in tokens { total += t.utf8.count; longest = max(longest, t.utf8.count) }
        maxKeyBytes = longest
        keyBytes = .allocate(capacity: max(total, 1))
        keyStart = .allocate(capacity: tokens.count + 1)
        var offset = 0
        for (i, t) in tokens.enumerated() {
            keyStart[i] = Int32(offset)
            for b in t.utf8 { keyBytes[offset] = b; offset += 1 }
        }
        keyStart[tokens.count] = Int32(offset)

        // About 4 slots per entry keeps probe sequences short on misses, which are the common
        // case of the longest-first search.
        var capacity = 1024
        while capacity < tokens.count * 4 { capacity *= 2 }
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: 0, count: capacity)
        mask = capacity - 1
        shift = UInt64(64 - capacity.trailingZeroBitCount)
        for (token, id) in vocabulary.entries {
            var h = Self.fnvOffset
            for b in token.utf8 { h = (h ^ UInt64(b)) &* Self.fnvPrime }
            var i = index(h)
            while slots[i] != 0 { i = (i + 1) & mask }
            slots[i] = UInt64(Self.tag(h)) << 32 | UInt64(UInt32(bitPattern: id))
        }
    }

    deinit {
        slots.deallocate()
        keyBytes.deallocate()
        keyStart.deallocate()
    }

    @inline(__always) func index(_ h: UInt64) -> Int {
        Int(truncatingIfNeeded: (h &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    @inline(__always) static func tag(_ h: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: h >> 32) | 1 }

    /// The id of the token whose bytes are ("##" if `continuation`) + bytes[0..<count], whose
    /// FNV-1a hash is `h`; -1 when absent.
    @inline(__always)
    func lookup(_ h: UInt64, _ bytes: UnsafePointer<UInt8>, _ count: Int, continuation: Bool) -> Int32 {
        let tag = UInt64(Self.tag(h))
        var i = index(h)
        while true {
            let s = slots[i]
            if s == 0 { return -1 }
            if s >> 32 == tag {
                let id = Int32(truncatingIfNeeded: s)
                var start = Int(keyStart[Int(id)])
                let length = Int(keyStart[Int(id) + 1]) - start
                if continuation { start += 2 }
                if length == count + (continuation ? 2 : 0) && (continuation ? keyBytes[start - 2] == 0x23 && keyBytes[start - 1] == 0x23 : true) {
                    var k = 0
                    while k < count && keyBytes[start + k] == bytes[k] { k += 1 }
                    if k == count { return id }
                }
            }
            i = (i + 1) & mask
        }
    }

    /// Greedy longest-match-first over the UTF-8 bytes of one word (at most
    /// maxInputCharsPerWord scalars). Writes the piece ids to `pieces` (capacity: the word's
    /// scalar count) and returns how many; a word that cannot be covered gives one [UNK].
    /// `hashes` has room for maxKeyBytes + 1 values.
    @inline(__always)
    func encodeWord(_ word: UnsafePointer<UInt8>, _ n: Int, unknownID: Int32,
                    hashes: UnsafeMutablePointer<UInt64>, pieces: UnsafeMutablePointer<Int32>) -> Int {
        var start = 0
        var count = 0
        while start < n {
            let continuation = start > 0
            let limit = min(n - start, continuation ? maxKeyBytes - 2 : maxKeyBytes)
            var h = continuation ? Self.continuationState : Self.fnvOffset
            let rest = word + start
            var k = 0
            while k < limit {
                h = (h ^ UInt64(rest[k])) &* Self.fnvPrime
                k += 1
                hashes[k] = h
            }
            var length = limit
            var found: Int32 = -1
            while length > 0 {
                // Candidates end on scalar boundaries only (the next byte is not 10xxxxxx).
                if start + length == n || rest[length] & 0xC0 != 0x80 {
                    found = lookup(hashes[length], rest, length, continuation: continuation)
                    if found >= 0 { break }
                }
                length -= 1
            }
            if found < 0 {
                pieces[0] = unknownID
                return 1
            }
            pieces[count] = found
            count += 1
            start += length
        }
        return count
    }
}
