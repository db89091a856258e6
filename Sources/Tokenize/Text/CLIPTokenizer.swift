import Foundation
import Tensor

/// CLIP's byte-level BPE tokenizer (Radford et al. 2021; openai/CLIP clip/simple_tokenizer.py),
/// giving the ids of CLIP's reference tokenizer and of Hugging Face's CLIPTokenizer:
///
/// 1. clean the text as CLIP does (`CLIPTextCleaner`: ftfy, HTML entities, whitespace, lower);
/// 2. split it with CLIP's pattern `<|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
///    (case-insensitive; letter and number classes as the Python `regex` module has them);
/// 3. map each piece's UTF-8 bytes to printable characters (`bytes_to_unicode`), mark its last
///    symbol with `</w>`, and merge adjacent symbols by rank until no ranked pair is left.
///
/// The vocabulary comes from CLIP's `bpe_simple_vocab_16e6.txt.gz` (shipped in the PyPI packages
/// clip-anytorch and open-clip-torch; `tools/setup` installs it as Vocab/clip-bpe-16e6.txt.gz) or
/// from a Hugging Face CLIP folder's `vocab.json` + `merges.txt`: 49,408 tokens, of which
/// `<|startoftext|>` = 49406 and `<|endoftext|>` = 49407.
///
/// Two normalizations, because the two references differ: `.clip` is the reference tokenizer's
/// (ftfy, HTML entities, Python's lower-casing; specials recognised anywhere in the cleaned text),
/// `.huggingFace` is transformers' CLIPTokenizer's (the specials split out of the raw text first,
/// then NFC, white space, its own lower-casing and Unicode classes; no ftfy or HTML unescaping).
/// They give the same ids on ordinary text and differ on HTML entities, curly quotes, ligatures,
/// full-width forms and a few scripts. The default follows the vocabulary's source: CLIP's merges
/// file → `.clip`, a Hugging Face folder → `.huggingFace`.
public final class CLIPTokenizer: @unchecked Sendable {
    public enum Normalization: String, Sendable, CaseIterable {
        case clip
        case huggingFace = "huggingface"
    }

    public static let startOfText = "<|startoftext|>"
    public static let endOfText = "<|endoftext|>"
    /// The merges CLIP uses from its merges file: 49,152 − 256 − 2 (the rest of the vocabulary is
    /// 256 bytes, 256 bytes with </w>, and the two specials).
    public static let mergeCount = 49_152 - 256 - 2

    public let normalization: Normalization
    public let startId: Int32
    public let endId: Int32
    /// Tokens by id (for decoding and messages).
    public let tokens: [String]
    private let ids: [String: Int32]
    /// Ranked merges: (left id, right id) → (rank, merged id).
    private let merges: [Pair: (rank: Int32, merged: Int32)]
    /// The ids of each byte's symbol, alone and with </w>.
    private let byteIds: [Int32]
    private let byteEndIds: [Int32]
    private var cache: [[UInt8]: [Int32]] = [:]
    private let lock = NSLock()

    struct Pair: Hashable { let a: Int32, b: Int32 }

    /// CLIP's map from bytes to printable characters: printable Latin-1 bytes stand for
    /// themselves, the others for U+0100 onwards in byte order.
    public static let byteCharacters: [Character] = {
        var printable = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        var chars = printable
        var n = 0
        for b in 0..<256 where !printable.contains(b) {
            printable.append(b)
            chars.append(256 + n)
            n += 1
        }
        var table = [Character](repeating: " ", count: 256)
        for (b, c) in zip(printable, chars) { table[b] = Character(Unicode.Scalar(UInt32(c))!) }
        return table
    }()

    /// Bytes in the order CLIP lists them at the start of its vocabulary.
    static let byteOrder: [Int] = Array(0x21...0x7E) + Array(0xA1...0xAC) + Array(0xAE...0xFF)
        + (0..<256).filter { !(0x21...0x7E).contains($0) && !(0xA1...0xAC).contains($0) && !(0xAE...0xFF).contains($0) }

    /// Opens a vocabulary: CLIP's merges file (`.txt` or `.txt.gz`), or a Hugging Face CLIP folder
    /// (or its `vocab.json` / `merges.txt`).
    public convenience init(path: String, normalization: Normalization? = nil) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw VideoBertError("no such CLIP vocabulary (a bpe_simple_vocab_16e6.txt.gz or a Hugging Face CLIP folder)", file: path)
        }
        let base = isDirectory.boolValue ? path : (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        if isDirectory.boolValue || name == "vocab.json" || name == "merges.txt" {
            let vocab = (base as NSString).appendingPathComponent("vocab.json")
            let merges = (base as NSString).appendingPathComponent("merges.txt")
            try self.init(vocabJSON: vocab, mergesFile: merges, normalization: normalization ?? .huggingFace)
        } else {
            try self.init(bpeFile: path, normalization: normalization ?? .clip)
        }
    }

    /// CLIP's own `bpe_simple_vocab_16e6.txt(.gz)`: a header line, then one merge per line.
    public convenience init(bpeFile: String, normalization: Normalization = .clip) throws {
        let merges = try Self.readMerges(bpeFile)
        var vocab = Self.byteOrder.map { String(Self.byteCharacters[$0]) }
        vocab += vocab.map { $0 + "</w>" }
        vocab += merges.map { $0.0 + $0.1 }
        vocab += [Self.startOfText, Self.endOfText]
        try self.init(tokens: vocab, merges: merges, source: bpeFile, normalization: normalization)
    }

    /// A Hugging Face CLIP folder's `vocab.json` (token → id) and `merges.txt`.
    public convenience init(vocabJSON: String, mergesFile: String, normalization: Normalization = .huggingFace) throws {
        let data = try Self.readBounded(vocabJSON, limit: 64 << 20)
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw VideoBertError("not a JSON object of token → id", file: vocabJSON)
        }
        guard object.count <= 1 << 20 else { throw VideoBertError("\(object.count) tokens: more than a CLIP vocabulary can have", file: vocabJSON) }
        var tokens = [String](repeating: "", count: object.count)
        var seen = [Bool](repeating: false, count: object.count)
        for (token, value) in object {
            guard let n = value as? NSNumber, let id = Int(exactly: n.doubleValue), id >= 0, id < tokens.count, !seen[id] else {
                throw VideoBertError("token \(token.debugDescription): id \(value) is not a unique integer in 0..<\(object.count)", file: vocabJSON)
            }
            tokens[id] = token
            seen[id] = true
        }
        try self.init(tokens: tokens, merges: try Self.readMerges(mergesFile), source: vocabJSON, normalization: normalization)
    }

    private init(tokens: [String], merges: [(String, String)], source: String, normalization: Normalization) throws {
        self.tokens = tokens
        self.normalization = normalization
        var ids: [String: Int32] = [:]
        ids.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() { ids[t] = Int32(i) }
        self.ids = ids
        func id(_ token: String) throws -> Int32 {
            guard let i = ids[token] else { throw VideoBertError("the vocabulary has no token \(token.debugDescription)", file: source) }
            return i
        }
        startId = try id(Self.startOfText)
        endId = try id(Self.endOfText)
        byteIds = try (0..<256).map { try id(String(Self.byteCharacters[$0])) }
        byteEndIds = try (0..<256).map { try id(String(Self.byteCharacters[$0]) + "</w>") }
        var table: [Pair: (rank: Int32, merged: Int32)] = [:]
        table.reserveCapacity(merges.count)
        for (rank, (a, b)) in merges.enumerated() {
            let pair = Pair(a: try id(a), b: try id(b))
            if table[pair] == nil { table[pair] = (Int32(rank), try id(a + b)) }
        }
        self.merges = table
    }

    private static func readBounded(_ path: String, limit: Int) throws -> Data {
        let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? -1
        guard size >= 0 else { throw VideoBertError("cannot read", file: path) }
        guard size <= limit else { throw VideoBertError("\(size) bytes: larger than a CLIP vocabulary file can be (\(limit))", file: path) }
        guard let data = FileManager.default.contents(atPath: path) else { throw VideoBertError("cannot read", file: path) }
        return data
    }

    /// The first `mergeCount` merges after the header line, as CLIP and transformers read them.
    static func readMerges(_ path: String) throws -> [(String, String)] {
        var data = try readBounded(path, limit: 64 << 20)
        if Gzip.isGzip(data) { data = try Gzip.decompress(data, limit: 64 << 20, file: path) }
        guard let text = String(data: data, encoding: .utf8) else { throw VideoBertError("not UTF-8 text", file: path) }
        let lines = text.trimmingCharacters(in: .newlines).split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count > 1 else { throw VideoBertError("no merges (expected a header line, then 'a b' per line)", file: path) }
        return try lines.dropFirst().prefix(mergeCount).enumerated().map { (i, line) in
            let parts = line.split(separator: " ")
            guard parts.count == 2 else { throw VideoBertError(file: path, line: i + 2, "not a merge 'a b': \(line.prefix(80))") }
            return (String(parts[0]), String(parts[1]))
        }
    }

    /// The ids of `text`, without start and end tokens (CLIP's `SimpleTokenizer.encode`, and
    /// transformers' CLIPTokenizer with `add_special_tokens=False`).
    public func encode(_ text: String) -> [Int32] {
        var out: [Int32] = []
        switch normalization {
        case .clip:
            for piece in Self.pieces(CLIPTextCleaner.clean(text), huggingFace: false) {
                let bytes = Array(String(String.UnicodeScalarView(piece)).utf8)
                if bytes.elementsEqual(Self.startOfText.utf8) { out.append(startId); continue }
                if bytes.elementsEqual(Self.endOfText.utf8) { out.append(endId); continue }
                out += bpe(bytes)
            }
        case .huggingFace:
            // The specials are added tokens: split out of the raw text (exact case) first.
            var rest = Substring(text)
            while !rest.isEmpty {
                let start = rest.range(of: Self.startOfText), end = rest.range(of: Self.endOfText)
                let next = [start, end].compactMap { $0 }.min { $0.lowerBound < $1.lowerBound }
                let segment = next.map { rest[..<$0.lowerBound] } ?? rest
                for piece in Self.pieces(CLIPTextCleaner.huggingFaceNormalize(Array(segment.unicodeScalars)), huggingFace: true) {
                    out += bpe(Array(String(String.UnicodeScalarView(piece)).utf8))
                }
                guard let special = next else { break }
                out.append(special == start ? startId : endId)
                rest = rest[special.upperBound...]
            }
        }
        return out
    }

    /// As CLIP's `clip.tokenize`: start + ids + end, cut to `contextLength` (the last kept id
    /// becomes the end token) and padded with 0.
    public func tokenize(_ text: String, contextLength: Int = 77) -> [Int32] {
        var ids = [startId] + encode(text) + [endId]
        if ids.count > contextLength { ids = Array(ids.prefix(contextLength)); ids[contextLength - 1] = endId }
        return ids + [Int32](repeating: 0, count: max(0, contextLength - ids.count))
    }

    /// The text of `ids` (bytes decoded as UTF-8 with replacement; </w> as a space).
    public func decode(_ ids: [Int32]) -> String {
        var reverse: [UInt32: UInt8] = [:]
        for (b, c) in Self.byteCharacters.enumerated() { reverse[c.unicodeScalars.first!.value] = UInt8(b) }
        var bytes: [UInt8] = []
        for id in ids where id >= 0 && Int(id) < tokens.count {
            var token = tokens[Int(id)]
            let end = token.hasSuffix("</w>")
            if end { token.removeLast(4) }
            if id == startId || id == endId {
                bytes += Array(token.utf8)
            } else {
                bytes += token.unicodeScalars.compactMap { reverse[$0.value] }
            }
            if end { bytes.append(0x20) }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// CLIP's pre-tokenizing pattern over cleaned (lower-case) text.
    static func pieces(_ text: [Unicode.Scalar], huggingFace: Bool) -> [ArraySlice<Unicode.Scalar>] {
        let t = CLIPTextCleaner.Tables.shared
        let specials = [Array(startOfText.unicodeScalars), Array(endOfText.unicodeScalars)]
        // `'s|'t|'re|'ve|'m|'ll|'d`, in that order; CLIP's is case-insensitive ("ſ" folds to "s").
        let contractions: [[Unicode.Scalar]] = [["s"], ["t"], ["r", "e"], ["v", "e"], ["m"], ["l", "l"], ["d"]]
        // transformers' pattern is case-sensitive (its text is lower-cased already).
        func folds(_ c: Unicode.Scalar, to x: Unicode.Scalar) -> Bool {
            c == x || (!huggingFace && ((x == "s" && c == "\u{017F}") || (c.value < 0x80 && c.value | 0x20 == x.value)))
        }
        var out: [ArraySlice<Unicode.Scalar>] = []
        var i = 0
        let n = text.count
        scan: while i < n {
            // transformers' ByteLevel step splits the pattern's special alternative again
            // ("<|", letters, "|>"), which is what skipping the alternative gives.
            for s in specials where !huggingFace && i + s.count <= n && zip(text[i..<(i + s.count)], s).allSatisfy({ folds($0, to: $1) }) {
                out.append(text[i..<(i + s.count)]); i += s.count; continue scan
            }
            if text[i] == "'" {
                for c in contractions where i + 1 + c.count <= n && zip(text[(i + 1)...], c).allSatisfy({ folds($0, to: $1) }) {
                    out.append(text[i..<(i + 1 + c.count)]); i += 1 + c.count; continue scan
                }
            }
            let c = text[i]
            if t.isLetter(c, huggingFace: huggingFace) {
                var j = i + 1
                while j < n && t.isLetter(text[j], huggingFace: huggingFace) { j += 1 }
                out.append(text[i..<j]); i = j; continue
            }
            if t.isNumber(c, huggingFace: huggingFace) { out.append(text[i...i]); i += 1; continue }
            // CLIP's pattern is case-insensitive, and under the regex module's IGNORECASE U+0345
            // (combining ypogegrammeni, whose case partners are iotas) is in neither [\p{L}] nor
            // its complement: like white space, it ends a run and is dropped.
            func separates(_ c: Unicode.Scalar) -> Bool { t.regexSpaces.contains(c.value) || (!huggingFace && c == "\u{0345}") }
            if separates(c) { i += 1; continue }
            var j = i + 1
            while j < n && !separates(text[j]) && !t.isLetter(text[j], huggingFace: huggingFace) && !t.isNumber(text[j], huggingFace: huggingFace) { j += 1 }
            out.append(text[i..<j]); i = j
        }
        return out
    }

    /// The BPE ids of one piece (its UTF-8 bytes), cached.
    func bpe(_ bytes: [UInt8]) -> [Int32] {
        lock.lock()
        if let hit = cache[bytes] { lock.unlock(); return hit }
        lock.unlock()
        guard !bytes.isEmpty else { return [] }
        var word = bytes.dropLast().map { byteIds[Int($0)] } + [byteEndIds[Int(bytes.last!)]]
        while word.count > 1 {
            // The ranked pair of lowest rank; then merge its every occurrence, left to right.
            var best: (rank: Int32, merged: Int32, pair: Pair)? = nil
            for k in 0..<(word.count - 1) {
                let pair = Pair(a: word[k], b: word[k + 1])
                if let m = merges[pair], best == nil || m.rank < best!.rank { best = (m.rank, m.merged, pair) }
            }
            guard let b = best else { break }
            var merged: [Int32] = []
            merged.reserveCapacity(word.count)
            var k = 0
            while k < word.count {
                if k + 1 < word.count && word[k] == b.pair.a && word[k + 1] == b.pair.b {
                    merged.append(b.merged); k += 2
                } else {
                    merged.append(word[k]); k += 1
                }
            }
            word = merged
        }
        lock.lock()
        if cache.count > 200_000 { cache.removeAll(keepingCapacity: true) }
        cache[bytes] = word
        lock.unlock()
        return word
    }
}
