import Foundation
import Tensor

/// BERT's text tokenizer: `BasicTokenizer` then `WordPieceTokenizer` over a vocab.txt, with
/// the ids of HF tokenizers' `BertWordPieceTokenizer` (tokenizers 0.23) and of transformers'
/// `BertTokenizer` (in transformers 5 a wrapper of the same Rust tokenizer), without [CLS]/[SEP].
/// Special tokens present in the vocabulary ([UNK] [SEP] [CLS] [PAD] [MASK]) written in the input
/// text are matched as such, as both references do. Where the original pure-Python algorithm
/// (transformers' `BertTokenizerLegacy`) disagrees, see `BasicTokenizer`.
///
/// Fast: normalization, splitting and the WordPiece search run fused in one pass over the UTF-8
/// bytes, with vocabulary lookups by byte hash and no allocation per word.
public struct BertTokenizer: Sendable {
    public let vocabulary: TextVocabulary
    /// Uncased (lower-case and strip accents) or cased.
    public let lowercase: Bool
    public let wordPiece: WordPieceTokenizer
    let specials: SpecialTokenMatcher
    /// The id of each one-byte ASCII word (punctuation, digits, letters): skips the search.
    let asciiIDs: [Int32]

    public init(vocabulary: TextVocabulary, lowercase: Bool = true) {
        self.vocabulary = vocabulary
        self.lowercase = lowercase
        self.wordPiece = WordPieceTokenizer(vocabulary: vocabulary)
        self.specials = SpecialTokenMatcher(vocabulary: vocabulary)
        let unk = wordPiece.unknownID
        self.asciiIDs = (0..<128).map { b in vocabulary.id(of: String(UnicodeScalar(UInt8(b)))) ?? unk }
    }

    /// Loads vocab.txt (see `TextVocabulary.load` for the errors).
    public init(vocabularyFile: String, lowercase: Bool = true) throws {
        self.init(vocabulary: try TextVocabulary.load(vocabularyFile), lowercase: lowercase)
    }

    /// The ids of `text`.
    public func encode(_ text: String) -> [Int32] {
        withSession { session in
            var ids: [Int32] = []
            session.encode(text, appendingTo: &ids)
            return ids
        }
    }

    /// The ids of every line, sharing one session's buffers.
    public func encode(lines: [String]) -> [[Int32]] {
        withSession { session in
            lines.map { line in
                var ids: [Int32] = []
                session.encode(line, appendingTo: &ids)
                return ids
            }
        }
    }

    /// The pieces of `text` as strings.
    public func tokenize(_ text: String) -> [String] {
        encode(text).map { vocabulary.tokens[Int($0)] }
    }

    /// Runs `body` with a session: reusable buffers for encoding many texts without allocating.
    public func withSession<R>(_ body: (inout Session) throws -> R) rethrows -> R {
        var session = Session(self)
        defer { session.deallocate() }
        return try body(&session)
    }

    /// Encoding buffers; valid only inside `withSession`.
    public struct Session {
        private var splitter: BertWordSplitter
        private var sink: PieceSink
        private let specials: SpecialTokenMatcher

        fileprivate init(_ tokenizer: BertTokenizer) {
            let maxChars = tokenizer.wordPiece.maxInputCharsPerWord
            splitter = BertWordSplitter(lowercase: tokenizer.lowercase, storedChars: maxChars + 1)
            sink = PieceSink(tokenizer)
            specials = tokenizer.specials
        }

        fileprivate func deallocate() {
            splitter.deallocate()
            sink.deallocate()
        }

        /// Appends the ids of UTF-8 text to `ids`. Invalid UTF-8 is dropped (as U+FFFD would be).
        public mutating func encode(utf8: UnsafeBufferPointer<UInt8>, appendingTo ids: inout [Int32]) {
            swap(&ids, &sink.ids)
            splitter.run(utf8, specials: specials, sink: &sink)
            swap(&ids, &sink.ids)
        }

        /// Appends the ids of `text` to `ids`.
        public mutating func encode(_ text: String, appendingTo ids: inout [Int32]) {
            var text = text
            text.withUTF8 { encode(utf8: $0, appendingTo: &ids) }
        }
    }
}

/// Turns words into WordPiece ids.
private struct PieceSink: BertWordSink {
    var ids: [Int32] = []
    let table: WordPieceTable
    let unknownID: Int32
    let maxChars: Int
    let asciiIDs: [Int32]
    let hashes: UnsafeMutablePointer<UInt64>
    let pieces: UnsafeMutablePointer<Int32>

    init(_ tokenizer: BertTokenizer) {
        table = tokenizer.wordPiece.table
        unknownID = tokenizer.wordPiece.unknownID
        maxChars = tokenizer.wordPiece.maxInputCharsPerWord
        asciiIDs = tokenizer.asciiIDs
        hashes = .allocate(capacity: table.maxKeyBytes + 1)
        pieces = .allocate(capacity: maxChars + 1)
    }

    func deallocate() {
        hashes.deallocate()
        pieces.deallocate()
    }

    @inline(__always)
    mutating func word(_ bytes: UnsafePointer<UInt8>, _ count: Int, chars: Int) {
        if count == 1 && bytes[0] < 0x80 {
            ids.append(asciiIDs[Int(bytes[0])])
            return
        }
        if chars > maxChars {
            ids.append(unknownID)
            return
        }
        let k = table.encodeWord(bytes, count, unknownID: unknownID, hashes: hashes, pieces: pieces)
        if k == 1 {
            ids.append(pieces[0])
        } else {
            ids.append(contentsOf: UnsafeBufferPointer(start: pieces, count: k))
        }
    }

    mutating func special(_ id: Int32) {
        ids.append(id)
    }
}
