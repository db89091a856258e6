import ArgumentParser
import Foundation
import Model
import Tasks
import Tensor

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
        var builder = EmbedSequenceBuilder(config: config, vocabularyFile: opened.path(.textVocab),
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
