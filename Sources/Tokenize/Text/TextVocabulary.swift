import Foundation
import Tensor

/// A WordPiece vocabulary: vocab.txt, one token per line, the id of a token is its line index
/// (0-based). Continuation pieces carry the `##` prefix. BERT's specials are ordinary entries.
public struct TextVocabulary: Sendable, Equatable {
    /// Tokens by id.
    public let tokens: [String]
    /// The file it was read from, for messages.
    public let source: String?
    private let ids: [String: Int32]

    public static let unknownToken = "[UNK]"
    /// The specials that HF's BertWordPieceTokenizer matches in raw input text (when present).
    public static let specialTokens = ["[UNK]", "[SEP]", "[CLS]", "[PAD]", "[MASK]"]

    public init(tokens: [String], source: String? = nil) {
        self.tokens = tokens
        self.source = source
        var ids: [String: Int32] = [:]
        ids.reserveCapacity(tokens.count)
        // A token listed twice maps to its last line, as in HF tokenizers and transformers.
        for (i, t) in tokens.enumerated() { ids[t] = Int32(i) }
        self.ids = ids
    }

    public var count: Int { tokens.count }

    /// The id of `token` (exact match), or nil.
    public func id(of token: String) -> Int32? { ids[token] }

    /// The token with `id`, or nil when out of range.
    public func token(_ id: Int32) -> String? {
        id >= 0 && Int(id) < tokens.count ? tokens[Int(id)] : nil
    }

    /// Every token string and its id (the id a lookup of that string returns).
    var entries: [(token: String, id: Int32)] { ids.map { ($0.key, $0.value) } }

    public static func == (a: TextVocabulary, b: TextVocabulary) -> Bool { a.tokens == b.tokens }

    /// Reads vocab.txt. Lines end in LF or CRLF and trailing white space is trimmed (HF
    /// tokenizers' `WordPiece::read_file`). Fails with one line naming the file when it cannot
    /// be read, is not UTF-8, is empty, or has no [UNK] entry (without one, BERT's tokenizer has
    /// nothing to emit for an unknown word).
    public static func load(_ path: String) throws -> TextVocabulary {
        let data: Data
        do {
            guard let d = try InputFile.readIfExists(path) else { throw VideoBertError("no such vocabulary file", file: path) }
            data = d
        } catch let e as VideoBertError where e.message != "no such vocabulary file" {
            throw e
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot read vocabulary" : "no such vocabulary file"
            throw VideoBertError(reason, file: path)
        }
        return try parse(data, source: path)
    }

    /// Parses the contents of a vocab.txt (see `load`).
    public static func parse(_ data: Data, source: String) throws -> TextVocabulary {
        var tokens: [String] = []
        var lineNumber = 0
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let bytes = raw.bindMemory(to: UInt8.self)
            var start = 0
            let n = bytes.count
            while start < n {
                var end = start
                while end < n && bytes[end] != 0x0A { end += 1 }
                lineNumber += 1
                guard let line = String(validating: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self) else {
                    throw VideoBertError(file: source, line: lineNumber, "not valid UTF-8; a vocab.txt has one token per line")
                }
                var scalars = line.unicodeScalars[...]
                while let last = scalars.last, last.properties.isWhitespace { scalars = scalars.dropLast() }
                tokens.append(String(scalars))
                start = end + 1
            }
        }
        if tokens.isEmpty { throw VideoBertError("empty vocabulary; a vocab.txt has one token per line", file: source) }
        let vocabulary = TextVocabulary(tokens: tokens, source: source)
        if vocabulary.id(of: unknownToken) == nil {
            throw VideoBertError("no \(unknownToken) entry in \(tokens.count) lines; not a BERT WordPiece vocabulary", file: source)
        }
        return vocabulary
    }

    /// Writes vocab.txt atomically (one token per line, in id order).
    public func write(to path: String) throws {
        var text = ""
        for t in tokens { text += t; text += "\n" }
        try AtomicFile.write(text, to: path)
    }
}

extension TextVocabulary {
    /// WordPieces back to text: `##` continuations join the previous piece; no space before
    /// closing punctuation, none around an apostrophe inside a word ("let ' s" → "let's").
    public func readableText(_ ids: ArraySlice<Int32>) -> String {
        var out = ""
        var glueNext = false
        for id in ids {
            let piece = token(id) ?? "[?]"
            if piece.hasPrefix("##") {
                out += piece.dropFirst(2)
            } else if piece == "'" && out.last.map({ $0.isLetter }) == true {
                out += piece; glueNext = true; continue
            } else if glueNext || out.isEmpty || [".", ",", "!", "?", ";", ":", ")"].contains(piece) {
                out += piece
            } else {
                out += " " + piece
            }
            glueNext = false
        }
        return out
    }
}
