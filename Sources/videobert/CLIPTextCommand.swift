import Backbones
import Foundation
import Tensor
import Tokenize

/// `videobert features --backbone clip-… --text …`: CLIP text embeddings (`get_text_features`) of
/// texts given on the command line or one per line of a file, written as one .npy [texts, dim].
enum CLIPTextCommand {
    /// The texts of `--text` (in order), then the lines of `--text-file` (every line, empty ones
    /// included, so row i is line i; a final newline ends the last line).
    static func texts(_ given: [String], file: String?) throws -> [String] {
        var texts = given
        if let file {
            let data = try InputFile.read(file, maxBytes: 256 << 20, what: "text file")
            guard let s = String(data: data, encoding: .utf8) else { throw VideoBertError("is not UTF-8 text", file: file) }
            var lines = s.split(separator: "\n", omittingEmptySubsequences: false).map { String($0.hasSuffix("\r") ? $0.dropLast() : $0) }
            if lines.last == "" { lines.removeLast() }
            guard !lines.isEmpty else { throw VideoBertError("has no lines to embed", file: file) }
            texts += lines
        }
        return texts
    }

    /// The tokenizer: `vocab` (CLIP's merges file or a folder with vocab.json + merges.txt), else
    /// the folder of `weights` (a Hugging Face CLIP folder carries vocab.json + merges.txt).
    static func tokenizer(vocab: String?, weights: String) throws -> CLIPTokenizer {
        if let vocab { return try CLIPTokenizer(path: vocab) }
        var isDirectory: ObjCBool = false
        let folder = FileManager.default.fileExists(atPath: weights, isDirectory: &isDirectory) && isDirectory.boolValue
            ? weights : (weights as NSString).deletingLastPathComponent
        let json = (folder as NSString).appendingPathComponent("vocab.json"), merges = (folder as NSString).appendingPathComponent("merges.txt")
        guard FileManager.default.fileExists(atPath: json), FileManager.default.fileExists(atPath: merges) else {
            throw VideoBertError("has no vocab.json + merges.txt for CLIP's tokenizer: pass --vocab (a bpe_simple_vocab_16e6.txt.gz or a Hugging Face CLIP folder)", file: folder)
        }
        return try CLIPTokenizer(vocabJSON: json, mergesFile: merges)
    }

    static func embed(texts given: [String], textFile: String?, backbone: String, weights: String, vocab: String?, out: String, batch: Int) throws {
        let texts = try texts(given, file: textFile)
        let tokenizer = try tokenizer(vocab: vocab, weights: weights)
        let tower = try CLIPTextTower(checkpoint: try CLIPCheckpoint(path: weights, preset: backbone), endId: tokenizer.endId)
        let ids = texts.map { tokenizer.tokenize($0, contextLength: tower.config.maxPositions) }
        var rows: [Float] = []
        rows.reserveCapacity(texts.count * tower.featureDim)
        var start = 0
        while start < ids.count {
            rows += try tower.features(Array(ids[start..<min(ids.count, start + batch)]))
            start += batch
        }
        try NPY.write(rows, shape: [texts.count, tower.featureDim], to: out)
        struct Line: Encodable { var out: String; var texts: Int; var dim: Int }
        print(try JSON.string(Line(out: out, texts: texts.count, dim: tower.featureDim)))
    }
}
