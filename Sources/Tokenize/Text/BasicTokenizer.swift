import Foundation

/// BERT's basic tokenization (Devlin et al. 2019, google-research/bert tokenization.py
/// `BasicTokenizer`), with the exact behaviour of HF tokenizers 0.23 (`BertNormalizer` +
/// `BertPreTokenizer`, the pipeline of `BertWordPieceTokenizer`):
///
/// 1. text cleaning: NUL, U+FFFD and control/format/private-use characters are dropped, every
///    white-space character becomes a space;
/// 2. CJK ideographs are padded with spaces;
/// 3. uncased only: NFD, non-spacing marks (Mn) dropped, then lower-casing, scalar by scalar;
/// 4. split on white space, and every punctuation character is a word of its own.
///
/// Where transformers' pure-Python tokenizer (`BertTokenizerLegacy` in transformers 5; the
/// original BERT code) disagrees, HF tokenizers wins:
/// - Python lower-cases *before* NFD and applies NFC first; HF strips accents, then lower-cases.
///   The results differ for, e.g., a decomposed "e\u{301}" vs non-Mn combining marks, and
///   `str.lower` maps a final Σ to ς where HF gives σ.
/// - Python's character classes are its unicodedata's (Unicode 14 for Python 3.11); HF's are
///   Unicode 8.0 (categories) and 9.0 (normalization), see `BertUnicodeTables`.
/// - Python treats only Zs (+ tab/LF/CR) as white space; HF uses White_Space, which also
///   contains U+2028/U+2029 (Python keeps those as word characters).
/// - Python drops unassigned code points and noncharacters (category Cn, "C*" counts as control);
///   HF drops only Cc/Cf/Co and keeps the others (they become [UNK]).
/// - Python's ideograph ranges include U+2B820–U+2B91F; HF's skip them.
/// - Python matches special tokens after text cleaning ("[MA\u{200B}SK]" is [MASK]); HF matches
///   them in the raw text (`BertTokenizer` does so too; this type knows no special tokens).
/// - Invalid UTF-8 (only possible through the byte API) decodes to U+FFFD, which cleaning drops.
public struct BasicTokenizer: Sendable {
    /// Lower-case and strip accents (BERT "uncased"); otherwise cased.
    public let lowercase: Bool

    public init(lowercase: Bool = true) {
        self.lowercase = lowercase
    }

    /// The words of `text`.
    public func tokenize(_ text: String) -> [String] {
        var text = text
        return text.withUTF8 { words(utf8: $0) }
    }

    /// The words of UTF-8 text.
    public func words(utf8: UnsafeBufferPointer<UInt8>) -> [String] {
        var sink = WordCollector()
        var splitter = BertWordSplitter(lowercase: lowercase, storedChars: Int.max)
        defer { splitter.deallocate() }
        splitter.run(utf8, specials: nil, sink: &sink)
        return sink.words
    }

    /// Calls `body` with the UTF-8 bytes of each word of every line, reusing one buffer.
    public func forEachWord(inLines lines: [String], _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        withoutActuallyEscaping(body) { body in
            var sink = WordCallback(body: body)
            var splitter = BertWordSplitter(lowercase: lowercase, storedChars: Int.max)
            defer { splitter.deallocate() }
            for var line in lines {
                line.withUTF8 { splitter.run($0, specials: nil, sink: &sink) }
            }
        }
    }
}

/// Receives the words of the splitter.
protocol BertWordSink {
    /// A word's normalized UTF-8 bytes (only the first `storedChars` scalars when it has more)
    /// and its length in scalars.
    mutating func word(_ bytes: UnsafePointer<UInt8>, _ count: Int, chars: Int)
    /// A special token matched in the raw text.
    mutating func special(_ id: Int32)
}

private struct WordCollector: BertWordSink {
    var words: [String] = []
    mutating func word(_ bytes: UnsafePointer<UInt8>, _ count: Int, chars: Int) {
        words.append(String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self))
    }
    mutating func special(_ id: Int32) {}
}

private struct WordCallback: BertWordSink {
    let body: (UnsafeBufferPointer<UInt8>) -> Void
    mutating func word(_ bytes: UnsafePointer<UInt8>, _ count: Int, chars: Int) {
        body(UnsafeBufferPointer(start: bytes, count: count))
    }
    mutating func special(_ id: Int32) {}
}

/// Special tokens matched in the raw text before normalization, as HF's added-tokens pass does
/// for BertWordPieceTokenizer's [UNK] [SEP] [CLS] [PAD] [MASK] (case-sensitive, anywhere, even
/// inside a word: "a[MASK]b" → a [MASK] b). All of them start with "[".
struct SpecialTokenMatcher: Sendable {
    let tokens: [(bytes: [UInt8], id: Int32)]

    init(vocabulary: TextVocabulary) {
        tokens = TextVocabulary.specialTokens.compactMap { t in
            vocabulary.id(of: t).map { (Array(t.utf8), $0) }
        }.sorted { $0.bytes.count > $1.bytes.count }  // longest first: leftmost-longest match
    }

    /// The special token starting at `p` (at most `n` bytes available): its byte length and id.
    @inline(__always)
    func match(_ p: UnsafePointer<UInt8>, _ n: Int) -> (length: Int, id: Int32)? {
        for t in tokens where t.bytes.count <= n {
            var k = 0
            let c = t.bytes.count
            while k < c && p[k] == t.bytes[k] { k += 1 }
            if k == c { return (c, t.id) }
        }
        return nil
    }
}

/// The normalize-and-split loop shared by BasicTokenizer, BertTokenizer and the vocabulary
/// trainer: one pass over UTF-8 bytes, a table lookup per ASCII byte, a two-level table lookup
/// per other scalar, normalized word bytes into one reused buffer, no allocation per word.
struct BertWordSplitter {
    let lowercase: Bool
    let table: BertScalarTable
    /// Words longer than this many scalars keep only their first scalars' bytes (WordPiece
    /// only needs to know they are too long).
    let storedChars: Int
    private var word: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private var blocks = BlockCache()
    private var length = 0
    private var chars = 0
    /// Kept combining marks (class ≠ 0) waiting for canonical reordering (uncased only).
    private var pending: [(ccc: UInt8, scalar: Unicode.Scalar)] = []

    /// ASCII byte → action: a value ≥ 0x30 is a word byte (already lower-cased when uncased);
    /// otherwise one of these codes.
    static let asciiRemoved: UInt8 = 0, asciiSpace: UInt8 = 1, asciiPunct: UInt8 = 2, asciiBracket: UInt8 = 3
    private static func asciiActions(lowercase: Bool) -> [UInt8] {
        (0..<128).map { (b: Int) -> UInt8 in
            switch b {
            case 9, 10, 13, 32: return asciiSpace
            case 0..<32, 127: return asciiRemoved
            case 91: return asciiBracket
            case 33...47, 58...64, 92...96, 123...126: return asciiPunct
            case 65...90: return UInt8(lowercase ? b + 32 : b)
            default: return UInt8(b)
            }
        }
    }
    static let casedASCII = asciiActions(lowercase: false)
    static let uncasedASCII = asciiActions(lowercase: true)

    init(lowercase: Bool, storedChars: Int) {
        self.lowercase = lowercase
        self.table = lowercase ? .uncased : .cased
        self.storedChars = storedChars
        // A scalar's normalized form is at most 31 bytes (checked when the table is built).
        capacity = storedChars == Int.max ? 4096 : (storedChars + 1) * 32
        word = .allocate(capacity: capacity)
    }

    func deallocate() {
        word.deallocate()
        blocks.deallocate()
    }

    @inline(__always)
    private mutating func append(_ bytes: UnsafePointer<UInt8>, _ count: Int, scalars: Int) {
        if chars < storedChars {
            if length + count > capacity { grow(length + count) }
            (word + length).update(from: bytes, count: count)
            length += count
        }
        chars += scalars
    }

    private mutating func grow(_ needed: Int) {
        var c = capacity * 2
        while c < needed { c *= 2 }
        let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: c)
        bigger.update(from: word, count: length)
        word.deallocate()
        word = bigger
        capacity = c
    }

    @inline(__always)
    private mutating func endWord<S: BertWordSink>(_ sink: inout S) {
        if chars > 0 {
            sink.word(word, length, chars: chars)
            length = 0
            chars = 0
        }
    }

    /// A one-scalar word (punctuation, ideograph).
    @inline(__always)
    private mutating func single<S: BertWordSink>(_ bytes: UnsafePointer<UInt8>, _ count: Int, _ sink: inout S) {
        endWord(&sink)
        append(bytes, count, scalars: 1)
        endWord(&sink)
    }

    /// Splits `input` into normalized words and hands them to `sink`.
    mutating func run<S: BertWordSink>(_ input: UnsafeBufferPointer<UInt8>, specials: SpecialTokenMatcher?, sink: inout S) {
        guard let p = input.baseAddress else { return }
        let n = input.count
        let asciiTable = lowercase ? Self.uncasedASCII : Self.casedASCII
        asciiTable.withUnsafeBufferPointer { actionsBuffer in
            let actions = actionsBuffer.baseAddress!
            var i = 0
            while i < n {
                let b = p[i]
                if b < 0x80 {
                    let a = actions[Int(b)]
                    if a >= 0x30 {
                        if !pending.isEmpty { flushPending(&sink) }
                        if chars < storedChars {
                            if length == capacity { grow(length + 1) }
                            word[length] = a
                            length += 1
                        }
                        chars += 1
                        i += 1
                        continue
                    }
                    if a == Self.asciiRemoved { i += 1; continue }
                    if !pending.isEmpty { flushPending(&sink) }
                    if a == Self.asciiSpace {
                        endWord(&sink)
                    } else {
                        if a == Self.asciiBracket, let specials, let m = specials.match(p + i, n - i) {
                            endWord(&sink)
                            sink.special(m.id)
                            i += m.length
                            continue
                        }
                        single(p + i, 1, &sink)
                    }
                    i += 1
                    continue
                }
                // Decode one scalar; an invalid sequence is skipped byte by byte (it would
                // decode to U+FFFD, which text cleaning drops).
                var v: UInt32
                var size: Int
                if b < 0xE0 {
                    guard b >= 0xC2, i + 1 < n, p[i + 1] & 0xC0 == 0x80 else { i += 1; continue }
                    v = UInt32(b & 0x1F) << 6 | UInt32(p[i + 1] & 0x3F)
                    size = 2
                } else if b < 0xF0 {
                    guard i + 2 < n, p[i + 1] & 0xC0 == 0x80, p[i + 2] & 0xC0 == 0x80 else { i += 1; continue }
                    v = UInt32(b & 0x0F) << 12 | UInt32(p[i + 1] & 0x3F) << 6 | UInt32(p[i + 2] & 0x3F)
                    guard v >= 0x800, v & 0xF800 != 0xD800 else { i += 1; continue }
                    size = 3
                } else {
                    guard b < 0xF5, i + 3 < n, p[i + 1] & 0xC0 == 0x80, p[i + 2] & 0xC0 == 0x80, p[i + 3] & 0xC0 == 0x80
                    else { i += 1; continue }
                    v = UInt32(b & 0x07) << 18 | UInt32(p[i + 1] & 0x3F) << 12 | UInt32(p[i + 2] & 0x3F) << 6 | UInt32(p[i + 3] & 0x3F)
                    guard v >= 0x10000, v <= 0x10FFFF else { i += 1; continue }
                    size = 4
                }
                i += size
                let block = blocks.block(table, v)
                let e = BertScalarTable.entry(block, v)
                if BertScalarTable.isSlow(e) || (!pending.isEmpty && BertScalarTable.kind(e) != UInt32(BertScalarKind.removed.rawValue)) {
                    general(Unicode.Scalar(v)!, &sink)
                    continue
                }
                switch BertScalarTable.kind(e) {
                case UInt32(BertScalarKind.word.rawValue):
                    append(BertScalarTable.bytes(block, e), BertScalarTable.byteCount(e), scalars: BertScalarTable.scalarCount(e))
                case UInt32(BertScalarKind.whitespace.rawValue):
                    endWord(&sink)
                case UInt32(BertScalarKind.single.rawValue):
                    single(BertScalarTable.bytes(block, e), BertScalarTable.byteCount(e), &sink)
                default:
                    break  // removed
                }
            }
        }
        if !pending.isEmpty { flushPending(&sink) }
        endWord(&sink)
    }

    // MARK: General path (uncased): canonical reordering and scalars whose output splits

    /// One scalar from first principles: cleaning, padding, NFD with canonical reordering of the
    /// kept marks across scalars, Mn dropped, lower-casing, then the pre-tokenizer's split.
    /// Taken only for scalars whose decomposition keeps a combining mark of class ≠ 0 (a few
    /// hundred rare ones: e.g. musical symbols, marks newer than HF's Mn table) or whose output
    /// holds punctuation among other scalars, and for whatever follows such a mark.
    private mutating func general<S: BertWordSink>(_ s: Unicode.Scalar, _ sink: inout S) {
        let v = s.value
        if BertScalarTable.isRemoved(v) { return }  // dropped before NFD: does not end a run of marks
        if BertScalarTable.isWhitespace(v) {
            flushPending(&sink)
            endWord(&sink)
            return
        }
        if BertScalarTable.isIdeograph(v) {
            flushPending(&sink)
            endWord(&sink)
            for d in BertScalarTable.decomposition(s) where !BertScalarTable.isNonspacingMark(d.value) {
                emit(d, &sink)
            }
            endWord(&sink)
            return
        }
        for d in BertScalarTable.decomposition(s) {
            let ccc = BertScalarTable.combiningClass(d)
            let kept = !BertScalarTable.isNonspacingMark(d.value)
            if ccc == 0 {
                flushPending(&sink)
                if kept { emit(d, &sink) }
            } else if kept {
                pending.append((ccc, d))
            }
        }
    }

    /// Canonical ordering (Unicode §3.11): a stable sort of the run of marks by class.
    private mutating func flushPending<S: BertWordSink>(_ sink: inout S) {
        if pending.isEmpty { return }
        var run = pending
        pending.removeAll(keepingCapacity: true)
        for i in 1..<max(run.count, 1) {
            var j = i
            while j > 0 && run[j - 1].ccc > run[j].ccc {
                run.swapAt(j - 1, j)
                j -= 1
            }
        }
        for m in run { emit(m.scalar, &sink) }
    }

    /// A kept scalar after NFD: lower-case it, then split as the pre-tokenizer does.
    private mutating func emit<S: BertWordSink>(_ s: Unicode.Scalar, _ sink: inout S) {
        for x in lowercase ? BertScalarTable.lowercase(s) : [s] {
            var utf8 = Array(String(x).utf8)
            utf8.withUnsafeMutableBufferPointer { u in
                if BertScalarTable.isPunctuation(x.value) {
                    single(u.baseAddress!, u.count, &sink)
                } else if BertScalarTable.isWhitespace(x.value) {
                    endWord(&sink)
                } else {
                    append(u.baseAddress!, u.count, scalars: 1)
                }
            }
        }
    }
}
