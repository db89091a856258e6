import ArgumentParser
import Foundation
import Model
import Tensor
import Tokenize

/// `videobert embed`: last hidden states of a checkpoint for each line of a JSONL file.
struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Last hidden states of a BERT checkpoint for each line of a JSONL file, as float32 [N, T, H] .npy.",
        discussion: """
        Each input line is one JSON object, either ids:
          {"input_ids": [101, 7592, 102], "token_type_ids": [0, 0, 0]}
        (token_type_ids optional: all 0)
        or text and visual words, tokenised with the checkpoint's vocab.txt:
          {"text": "crack the eggs", "visual": [17, 17, 240]}   (either one optional)
        built as the trainer builds examples: [CLS] text [>] visual [SEP], where [>] is [unused0] \
        (only when both parts are present), visual word v is id (text vocabulary size + v), token \
        types 0 for [CLS], the text and [>], 1 for the visual words and the [SEP] after them.

        The output row n holds line n's hidden states in its first len(n) positions and zeros \
        after (T = the longest line). Works on videobert checkpoints and on any Hugging Face BERT \
        folder (config.json + model.safetensors, e.g. models/minilm-l6-h384-uncased). Sequences \
        longer than max_position_embeddings are an error, as are ids outside the vocabulary.

        Example:
          videobert embed --checkpoint runs/demo/checkpoint-2000 --input clips.jsonl \\
              --out clips.npy
          videobert embed --checkpoint models/minilm-l6-h384-uncased \\
              --input sentences.jsonl --out h.npy --batch 32
        """)

    @Option(help: "A checkpoint folder: config.json, model.safetensors (and vocab.txt for text lines).")
    var checkpoint: String
    @Option(help: "JSONL input, one object per line.")
    var input: String
    @Option(help: "Output .npy, float32 [N, T, H].")
    var out: String
    @Option(help: "Sequences per forward pass.")
    var batch: Int = 16
    @Flag(help: "Keep case when tokenising text (for cased vocabularies).")
    var cased = false

    func validate() throws {
        guard batch > 0 else { throw ValidationError("--batch must be positive") }
    }

    func run() throws {
        // Before anything is opened: the output never replaces a folder or an input.
        try AtomicFile.checkOutputFile(out, inputs: [input] + [Checkpoint.File.config, .weights, .textVocab].map {
            (checkpoint as NSString).appendingPathComponent($0.rawValue)
        })
        let opened = try Checkpoint(folder: checkpoint)
        guard let config = opened.bert, opened.kind != .cbt else {
            throw VideoBertError("is a CBT checkpoint: embed reads its text BERT, \((checkpoint as NSString).appendingPathComponent(Checkpoint.File.cbtText.rawValue))", file: checkpoint)
        }
        var builder = SequenceBuilder(config: config, vocabularyFile: opened.path(.textVocab),
                                      lowercase: !cased, input: input)
        let data = try InputFile.read(input, maxBytes: 1 << 30, what: "input")
        var sequences: [(ids: [Int32], types: [Int32])] = []
        var lines = data.split(separator: 0x0A, omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }   // the final newline ends the last line
        for (index, line) in lines.enumerated() {
            sequences.append(try builder.sequence(line: Data(line), number: index + 1))
        }
        let H = config.hiddenSize
        let T = sequences.map(\.ids.count).max() ?? 0
        let writer = try NPYStreamWriter(path: out, dtype: .float32, rowShape: [T, H])
        defer { writer.abandon() }
        if !sequences.isEmpty {
            let model = try BertForPreTraining.load(from: checkpoint, maxBatch: min(batch, sequences.count), maxSeq: T, training: false)
            let progress = ProgressReporter(label: "embed", total: sequences.count, unit: "lines")
            var row = [Float](repeating: 0, count: T * H)       // [T, H] one output row, zero-padded
            var start = 0
            while start < sequences.count {
                let chunk = sequences[start..<min(start + batch, sequences.count)]
                let (B, Tb) = (chunk.count, chunk.map(\.ids.count).max()!)
                var ids = [Int32](repeating: Int32(config.padTokenId ?? 0), count: B * Tb)   // [B, Tb]
                var types = [Int32](repeating: 0, count: B * Tb)                            // [B, Tb]
                var mask = [Float](repeating: 0, count: B * Tb)                             // [B, Tb]
                for (b, s) in chunk.enumerated() {
                    for t in 0..<s.ids.count {
                        ids[b * Tb + t] = s.ids[t]; types[b * Tb + t] = s.types[t]; mask[b * Tb + t] = 1
                    }
                }
                let hidden = model.encode(inputIDs: ids, tokenTypeIDs: types, attentionMask: mask, B: B, T: Tb).hidden   // [B, Tb, H]
                for (b, s) in chunk.enumerated() {
                    let n = s.ids.count * H
                    row.withUnsafeMutableBufferPointer { r in
                        for i in 0..<n { r[i] = hidden[b * Tb * H + i] }
                        for i in n..<(T * H) { r[i] = 0 }
                    }
                    try row.withUnsafeBytes { try writer.append($0) }
                }
                progress.advance(B)
                start += B
            }
            progress.finish()
        }
        try writer.finish()
        logLine("embed: \(sequences.count) sequences → \(out) [\(sequences.count), \(T), \(H)]")
    }
}

/// Turns one JSONL line into (ids, token types), validating everything against the checkpoint.
private struct SequenceBuilder {
    let config: BertConfig
    let vocabularyFile: String
    let lowercase: Bool
    let input: String
    private var tokenizer: BertTokenizer?
    private var specials: (cls: Int32, sep: Int32, separator: Int32)?

    init(config: BertConfig, vocabularyFile: String, lowercase: Bool, input: String) {
        self.config = config
        self.vocabularyFile = vocabularyFile
        self.lowercase = lowercase
        self.input = input
    }

    mutating func sequence(line: Data, number: Int) throws -> (ids: [Int32], types: [Int32]) {
        func fail(_ message: String) -> VideoBertError { VideoBertError(file: input, line: number, message) }
        let object: [String: Any]
        do {
            guard let o = try JSONSerialization.jsonObject(with: line) as? [String: Any] else { throw fail("not a JSON object") }
            object = o
        } catch let e as VideoBertError {
            throw e
        } catch {
            let reason = (error as NSError).userInfo["NSDebugDescription"] as? String ?? "invalid JSON"
            throw fail("bad JSON: \(reason)")
        }
        let known: Set<String> = ["input_ids", "token_type_ids", "text", "visual"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw fail("unknown key '\(unknown)' (expected input_ids [+ token_type_ids], or text and/or visual)")
        }
        func integers(_ key: String) throws -> [Int]? {
            guard let value = object[key] else { return nil }
            guard let array = value as? [Any] else { throw fail("'\(key)' must be an array of integers") }
            return try array.map { element in
                guard let n = element as? NSNumber, n.doubleValue == Double(n.intValue) else {
                    throw fail("'\(key)' must be an array of integers, found \(element)")
                }
                return n.intValue
            }
        }
        var ids: [Int32], types: [Int32]
        if let inputIDs = try integers("input_ids") {
            guard object["text"] == nil && object["visual"] == nil else { throw fail("give either input_ids or text/visual, not both") }
            if let bad = inputIDs.first(where: { $0 < 0 || $0 >= config.vocabSize }) {
                throw fail("input id \(bad) is outside the vocabulary 0..<\(config.vocabSize)")
            }
            let typeIDs = try integers("token_type_ids") ?? [Int](repeating: 0, count: inputIDs.count)
            guard typeIDs.count == inputIDs.count else {
                throw fail("token_type_ids has \(typeIDs.count) values, input_ids \(inputIDs.count)")
            }
            if let bad = typeIDs.first(where: { $0 < 0 || $0 >= config.typeVocabSize }) {
                throw fail("token type \(bad) is outside 0..<\(config.typeVocabSize)")
            }
            ids = inputIDs.map(Int32.init); types = typeIDs.map(Int32.init)
        } else {
            guard object["token_type_ids"] == nil else { throw fail("token_type_ids without input_ids") }
            guard object["text"] != nil || object["visual"] != nil else { throw fail("expected input_ids, or text and/or visual") }
            var textIDs: [Int32] = []
            if let value = object["text"] {
                guard let text = value as? String else { throw fail("'text' must be a string") }
                textIDs = try tokenize(text, line: number)
            }
            let visual = try integers("visual") ?? []
            if let bad = visual.first(where: { $0 < 0 || $0 >= config.visualWords }) {
                throw fail(config.visualWords == 0 ? "visual word \(bad): this checkpoint is text-only (no visual words)"
                                                   : "visual word \(bad) is outside 0..<\(config.visualWords) (the checkpoint's visual vocabulary)")
            }
            let s = try specialIDs(line: number)
            ids = [s.cls] + textIDs
            types = [Int32](repeating: 0, count: ids.count)
            if !textIDs.isEmpty && !visual.isEmpty { ids.append(s.separator); types.append(0) }
            ids += visual.map { Int32(config.textVocabSize + $0) }
            types += [Int32](repeating: 1, count: visual.count)
            ids.append(s.sep); types.append(visual.isEmpty ? 0 : 1)
        }
        guard !ids.isEmpty else { throw fail("empty sequence") }
        guard ids.count <= config.maxPositionEmbeddings else {
            throw fail("\(ids.count) tokens, longer than max_position_embeddings \(config.maxPositionEmbeddings)")
        }
        return (ids, types)
    }

    private mutating func tokenize(_ text: String, line: Int) throws -> [Int32] {
        if tokenizer == nil {
            guard FileManager.default.fileExists(atPath: vocabularyFile) else {
                throw VideoBertError(file: input, line: line, "text needs the checkpoint's vocabulary, but \(vocabularyFile) does not exist")
            }
            let t = try BertTokenizer(vocabularyFile: vocabularyFile, lowercase: lowercase)
            guard t.vocabulary.count == config.textVocabSize else {
                throw VideoBertError("has \(t.vocabulary.count) tokens, the checkpoint's text vocabulary \(config.textVocabSize)", file: vocabularyFile)
            }
            tokenizer = t
        }
        return tokenizer!.encode(text)
    }

    private mutating func specialIDs(line: Int) throws -> (cls: Int32, sep: Int32, separator: Int32) {
        if let specials { return specials }
        if tokenizer == nil { _ = try tokenize("", line: line) }
        let v = tokenizer!.vocabulary
        func id(_ token: String) throws -> Int32 {
            guard let i = v.id(of: token) else { throw VideoBertError("no \(token) token", file: vocabularyFile) }
            return i
        }
        let s = (cls: try id("[CLS]"), sep: try id("[SEP]"), separator: try id("[unused0]"))
        specials = s
        return s
    }
}
