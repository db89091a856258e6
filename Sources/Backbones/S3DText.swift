import Foundation
import Tensor

// MIL-NCE's text tower (Miech et al. 2020), the `text_module` of s3d_howto100m.pth, as
// https://github.com/antoine77340/S3D_HowTo100M/blob/master/s3dg.py `Sentence_Embedding` defines it:
// the sentence is lower-cased, split by `re.findall(r"[\w']+", …)`, each word in the vocabulary
// (s3d_dict.npy, word i ↦ token i + 1) kept and the others dropped, cut or zero-padded to 16
// tokens (no known word: 16 zeros); then word_embd (300-d) → fc1 (2048) → ReLU → max over the 16
// positions (padding included, as the reference) → fc2 → the 512-d text embedding, in the same
// space as the video's `fc(mixed_5c)` (S3D.swift, `joint`).
public struct S3DText: Sendable {
    public static let maxWords = 16
    /// Words as Unicode scalar sequences (Python compares code points, not canonical equivalents).
    let vocabulary: [[UInt32]: Int]
    let embedding: [Float]      // [words, 300]
    let fc1: (weight: [Float], bias: [Float])   // [2048, 300]
    let fc2: (weight: [Float], bias: [Float])   // [512, 2048]
    public let words: Int
    public var dim: Int { fc2.bias.count }

    static let embeddingDim = 300, hiddenDim = 2048, outputDim = 512

    public static func stateDictShapes(words: Int) -> [(String, [Int])] {
        [("text_module.word_embd.weight", [words, embeddingDim]),
         ("text_module.fc1.weight", [hiddenDim, embeddingDim]), ("text_module.fc1.bias", [hiddenDim]),
         ("text_module.fc2.weight", [outputDim, hiddenDim]), ("text_module.fc2.bias", [outputDim])]
    }

    /// The tower from the s3d_howto100m state dict and the vocabulary file (s3d_dict.npy).
    public init(weights: WeightFile, dictionary: String) throws {
        guard let shape = weights.shape("text_module.word_embd.weight"), shape.count == 2 else {
            throw VideoBertError("missing tensor 'text_module.word_embd.weight' (the MIL-NCE text tower; is this s3d_howto100m.pth?)", file: weights.path)
        }
        words = shape[0]
        let shapes = Dictionary(uniqueKeysWithValues: Self.stateDictShapes(words: words))
        func t(_ n: String) throws -> [Float] { try weights.floats(n, shape: shapes[n]!) }
        embedding = try t("text_module.word_embd.weight")
        fc1 = (try t("text_module.fc1.weight"), try t("text_module.fc1.bias"))
        fc2 = (try t("text_module.fc2.weight"), try t("text_module.fc2.bias"))
        let list = try Self.readWords(dictionary)
        guard list.count < words else {
            throw VideoBertError("vocabulary of \(list.count) words needs \(list.count + 1) word embeddings; the weights have \(words)", file: dictionary)
        }
        var vocabulary: [[UInt32]: Int] = [:]
        // The reference builds a dict in order, so a repeated word maps to its last index.
        for (i, w) in list.enumerated() { vocabulary[w] = i + 1 }
        self.vocabulary = vocabulary
    }

    /// The words of a 1-D numpy array of strings ('<U' UTF-32 or '|S' bytes), as s3d_dict.npy.
    public static func readWords(_ path: String) throws -> [[UInt32]] {
        let size = try InputFile.size(path)
        guard size <= 1 << 30 else { throw VideoBertError("vocabulary file of \(size) bytes is larger than 1 GiB", file: path) }
        let data = [UInt8](try InputFile.mapped(path))
        guard data.count >= 10, Array(data[0..<6]) == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59] else {
            throw VideoBertError("not a .npy file (bad magic)", file: path)
        }
        let (start, len): (Int, Int) = data[6] == 1 ? (10, Int(data[8]) | Int(data[9]) << 8)
            : (12, data.count >= 12 ? Int(data[8]) | Int(data[9]) << 8 | Int(data[10]) << 16 | Int(data[11]) << 24 : -1)
        guard data[6] <= 3, len >= 0, len <= 65_536, start + len <= data.count else { throw VideoBertError("bad .npy header", file: path) }
        let header = String(decoding: data[start..<(start + len)], as: UTF8.self)
        func field(_ key: String) -> String? {
            guard let r = header.range(of: "'\(key)'") else { return nil }
            let rest = header[r.upperBound...].drop { $0 == " " || $0 == ":" }
            if rest.first == "(" { return rest.firstIndex(of: ")").map { String(rest[rest.index(after: rest.startIndex)..<$0]) } }
            return String(rest.prefix { $0 != "," && $0 != "}" }).trimmingCharacters(in: CharacterSet(charactersIn: "' "))
        }
        guard let descr = field("descr"), let shapeText = field("shape") else { throw VideoBertError("bad .npy header: \(header)", file: path) }
        if field("fortran_order")?.contains("True") == true { throw VideoBertError("Fortran-order arrays are not supported", file: path) }
        let dims = shapeText.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard dims.count == 1, let n = Int(dims[0]), n >= 0 else {
            throw VideoBertError("vocabulary must be a 1-D array of strings (shape (\(shapeText)))", file: path)
        }
        let utf32: Bool
        if descr.hasPrefix("<U") || descr.hasPrefix("=U") { utf32 = true } else if descr.hasPrefix("|S") { utf32 = false } else {
            throw VideoBertError("vocabulary dtype \(descr) is not a string array ('<U' or '|S'\(descr == "|O" ? "; object arrays are pickles and are not read" : ""))", file: path)
        }
        guard let width = Int(descr.dropFirst(2)), width >= 1, width <= 4096 else { throw VideoBertError("bad string width in dtype \(descr)", file: path) }
        let item = utf32 ? 4 * width : width
        let body = start + len
        guard n <= (data.count - body) / item else {
            throw VideoBertError("truncated .npy: \(n) strings of \(item) bytes need \(n * item) bytes after the header, file has \(data.count - body)", file: path)
        }
        var out: [[UInt32]] = []
        out.reserveCapacity(n)
        for i in 0..<n {
            let o = body + i * item
            var w: [UInt32] = []
            if utf32 {
                for k in 0..<width {
                    let p = o + 4 * k
                    let v = UInt32(data[p]) | UInt32(data[p + 1]) << 8 | UInt32(data[p + 2]) << 16 | UInt32(data[p + 3]) << 24
                    w.append(v)
                }
            } else {
                // Bytes as Latin-1 code points (numpy's `str(bytes)` would differ; such words only match ASCII).
                for k in 0..<width { w.append(UInt32(data[o + k])) }
            }
            while w.last == 0 { w.removeLast() }      // numpy pads with NULs
            out.append(w)
        }
        return out
    }

    /// Python's `\w` for str patterns: '_' or a code point that `str.isalnum()` accepts (letters
    /// Lu/Ll/Lt/Lm/Lo, or any numeric type).
    static func isWord(_ s: Unicode.Scalar) -> Bool {
        if s == "_" { return true }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return s.properties.numericType != nil
        }
    }

    /// The 16 token ids of a sentence (s3dg.py `_words_to_ids` for one sentence).
    public func tokenIDs(_ sentence: String) -> [Int] {
        var ids: [Int] = []
        var word: [UInt32] = []
        func flush() {
            if !word.isEmpty, let id = vocabulary[word] { ids.append(id) }
            word.removeAll(keepingCapacity: true)
        }
        for s in sentence.lowercased().unicodeScalars {
            if Self.isWord(s) || s == "'" { word.append(s.value) } else { flush() }
        }
        flush()
        ids = Array(ids.prefix(Self.maxWords))
        return ids + [Int](repeating: 0, count: Self.maxWords - ids.count)
    }

    /// The 512-d text embedding of each sentence, [n, 512].
    public func embed(_ sentences: [String]) -> [Float] {
        let E = Self.embeddingDim, Hd = Self.hiddenDim, D = dim, L = Self.maxWords
        var out = [Float](repeating: 0, count: sentences.count * D)
        var x = [Float](repeating: 0, count: L * E)
        var h = [Float](repeating: 0, count: L * Hd)
        for (n, sentence) in sentences.enumerated() {
            for (i, id) in tokenIDs(sentence).enumerated() {
                for k in 0..<E { x[i * E + k] = embedding[id * E + k] }
            }
            for i in 0..<L { for k in 0..<Hd { h[i * Hd + k] = fc1.bias[k] } }
            x.withUnsafeBufferPointer { xb in
                fc1.weight.withUnsafeBufferPointer { wb in
                    h.withUnsafeMutableBufferPointer {
                        BLAS.sgemm(transA: false, transB: true, m: L, n: Hd, k: E, a: xb.baseAddress!, lda: E, b: wb.baseAddress!, ldb: E,
                                   beta: 1, c: $0.baseAddress!, ldc: Hd)
                    }
                }
            }
            var pooled = [Float](repeating: -.infinity, count: Hd)
            for i in 0..<L { for k in 0..<Hd { pooled[k] = max(pooled[k], max(h[i * Hd + k], 0)) } }
            for o in 0..<D {
                var s = Double(fc2.bias[o])
                for k in 0..<Hd { s += Double(fc2.weight[o * Hd + k]) * Double(pooled[k]) }
                out[n * D + o] = Float(s)
            }
        }
        return out
    }
}
