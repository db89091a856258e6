import Foundation
import Model
import Tensor
import Tokenize

/// A checkpoint loaded for inference by the downstream tasks, checked against the corpus it is
/// applied to, with the pieces every task needs: the text vocabulary and tokenizer, BERT's
/// special tokens and the sequence layout of pretraining (`[CLS] text [>] video [SEP]`,
/// token type 0 for [CLS], the text and [>], 1 for the visual words and the closing [SEP]; see
/// Train/Examples.swift).
public final class TaskModel {
    public let folder: String
    public let model: BertForPreTraining
    public let vocabulary: TextVocabulary
    public let tokenizer: BertTokenizer
    public let special: SpecialTokens
    /// Ttext: joint-vocabulary ids below this are WordPieces.
    public let textVocabSize: Int
    /// Vvis: visual word i is id Ttext + i (0 for a clip-feature captioner).
    public let visualWords: Int
    /// For a captioner fine-tuned from a CBT checkpoint: the CBT visual path that turns clips
    /// into features (the checkpoint's cbt/ folder) and the trained projection into the BERT's
    /// embeddings. nil for VideoBERT checkpoints (visual words in).
    public let clipInput: ClipFeatureInput?

    /// - Parameters:
    ///   - checkpoint: a checkpoint folder (config.json, model.safetensors, vocab.txt, visual_vocab/).
    ///   - corpus: the corpus the tasks read; its vocabularies must be the checkpoint's.
    ///   - maxBatch, maxSeq: the arena (B·T ≤ maxBatch·maxSeq rows per forward; maxSeq is capped
    ///     at the checkpoint's max_position_embeddings).
    ///   - allowClipFeatures: accept a captioner fine-tuned from a CBT checkpoint (only captioning
    ///     can use one: it has no visual words to score).
    public init(checkpoint: String, corpus: TaskCorpus, maxBatch: Int = 64, maxSeq: Int = 128, allowClipFeatures: Bool = false) throws {
        folder = checkpoint
        let opened = try Checkpoint(folder: checkpoint)
        if opened.kind == .cbt {
            throw VideoBertError("is a CBT checkpoint: `videobert retrieve` reads it directly; for captions fine-tune a captioner from it (`videobert finetune caption` with init: this folder)", file: checkpoint)
        }
        let config = opened.bert!
        let seq = min(maxSeq, config.maxPositionEmbeddings)
        if opened.kind.readsClipFeatures {
            guard allowClipFeatures else {
                throw VideoBertError("is a captioner fine-tuned from a CBT checkpoint (clip features in, no visual words): this task needs a VideoBERT checkpoint", file: checkpoint)
            }
            guard config.textVocabSize == corpus.textVocabSize else {
                throw VideoBertError("the checkpoint has \(config.textVocabSize) text ids, the corpus \(corpus.path) \(corpus.textVocabSize): tokenize with the checkpoint's vocabulary", file: checkpoint)
            }
            clipInput = try ClipFeatureInput(checkpoint: opened, corpus: corpus, hiddenSize: config.hiddenSize)
        } else {
            guard config.textVocabSize == corpus.textVocabSize, config.visualWords == corpus.visualWords else {
                throw VideoBertError("the checkpoint has \(config.textVocabSize) text ids and \(config.visualWords) visual words, the corpus \(corpus.path) \(corpus.textVocabSize) and \(corpus.visualWords): tokenize with the checkpoint's vocabularies", file: checkpoint)
            }
            clipInput = nil
        }
        try corpus.check(opened)
        model = try BertForPreTraining.load(from: checkpoint, maxBatch: maxBatch, maxSeq: seq, training: false)
        let vocabPath = opened.path(.textVocab)
        vocabulary = try TextVocabulary.load(FileManager.default.fileExists(atPath: vocabPath) ? vocabPath : corpus.corpus.textVocabPath)
        tokenizer = BertTokenizer(vocabulary: vocabulary, lowercase: !corpus.corpus.index.textVocab.cased)
        special = try SpecialTokens(vocabulary: vocabulary)
        textVocabSize = config.textVocabSize
        visualWords = config.visualWords
    }

    public var maxSeq: Int { model.maxSeq }
    /// Rows (B·T) one forward pass may hold.
    public var maxRows: Int { model.maxBatch * model.maxSeq }

    /// The joint-vocabulary id of visual word `w`.
    @inline(__always) public func visualID(_ w: Int32) -> Int32 { Int32(textVocabSize) + w }

    /// WordPieces of `text` (lower-cased when the corpus is uncased).
    public func encode(_ text: String) -> [Int32] { tokenizer.encode(text) }

    /// Text from WordPiece ids: pieces joined with spaces, `##` continuations glued on.
    public func decode(_ ids: [Int32]) -> String { WordPieceText.join(ids.compactMap { vocabulary.token($0) }) }
}

/// The clip-feature input of a captioner fine-tuned from a CBT checkpoint (see
/// CaptionExamples.swift): the checkpoint's `cbt/` folder (the CBT front-end and visual
/// transformer, frozen) and `clip_projection.safetensors`.
public final class ClipFeatureInput {
    public let encoder: CBTClipEncoder
    public let projection: ClipProjection

    init(checkpoint: Checkpoint, corpus: TaskCorpus, hiddenSize: Int) throws {
        encoder = try CBTClipEncoder(checkpoint: checkpoint.path(.captionerCBT), corpus: corpus.corpus)
        projection = try ClipProjection.load(from: checkpoint.folder)
        guard projection.inputSize == encoder.featureSize, projection.outputSize == hiddenSize else {
            throw VideoBertError("\(ClipProjection.fileName) maps \(projection.inputSize) → \(projection.outputSize) values; the CBT features are \(encoder.featureSize) wide and the BERT \(hiddenSize)", file: checkpoint.folder)
        }
    }

    /// The projected features ([count, C] row-major) of each clip sequence, each cut to its
    /// first `limit` clips (and the CBT's max_clips).
    public func vectors(_ clips: [[Int32]], limit: Int, progress: ProgressReporter? = nil) -> [[Float]] {
        let states = encoder.encode(clips.map { $0.prefix(limit).map { Int($0) } }, progress: progress)
        return states.map { projection.forward($0, rows: $0.count / projection.inputSize) }
    }
}

/// One input sequence and where things are in it.
public struct TaskSequence: Sendable, Equatable {
    public var ids: [Int32]
    public var types: [Int32]
    /// Positions whose input is a vector (projected clip features) instead of their id's word
    /// embedding, and the vectors ([positions, C] row-major); see PretrainingBatch.
    public var inputRows: [Int32] = []
    public var inputVectors: [Float] = []

    public init(ids: [Int32] = [], types: [Int32] = []) {
        self.ids = ids
        self.types = types
    }

    public var count: Int { ids.count }

    mutating func append(_ id: Int32, type: Int32) {
        ids.append(id)
        types.append(type)
    }

    /// `[CLS] text [>] video [SEP]` as pretraining builds it (Train/Examples.swift): the separator
    /// only when both parts are present; token type 1 for the video and, when there is video, the
    /// closing [SEP]. `text` may hold [MASK]s; `video` holds joint ids (Ttext + word) or [MASK]s.
    public static func joint(text: [Int32], video: [Int32], special: SpecialTokens) -> TaskSequence {
        var s = TaskSequence()
        s.append(special.cls, type: 0)
        for t in text { s.append(t, type: 0) }
        if !text.isEmpty && !video.isEmpty { s.append(special.videoSeparator, type: 0) }
        for v in video { s.append(v, type: 1) }
        s.append(special.sep, type: video.isEmpty ? 0 : 1)
        return s
    }
}

extension TaskModel {
    /// Runs sequences through the encoder in packed batches (each batch: T = its longest
    /// sequence ≤ maxSeq and B·T ≤ the arena's rows), in order. `body` gets the batch's first
    /// sequence index, B, T and its hidden states, for the heads (`withTextLogProbabilities`,
    /// rows b·T + position; `model.alignmentScores`).
    public func forEachBatch(_ sequences: [TaskSequence],
                             _ body: (_ first: Int, _ B: Int, _ T: Int, _ encoded: EncodedBatch) throws -> Void) rethrows {
        var i = 0
        while i < sequences.count {
            var T = 0, B = 0
            while i + B < sequences.count {
                let t = max(T, sequences[i + B].count)
                precondition(t <= maxSeq, "sequence of \(t) tokens exceeds the model's \(maxSeq)")
                if (B + 1) * t > maxRows { break }
                T = t
                B += 1
            }
            var ids = [Int32](repeating: special.pad, count: B * T)
            var types = [Int32](repeating: 0, count: B * T)
            var mask = [Float](repeating: 0, count: B * T)
            var inputRows: [Int32] = [], inputVectors: [Float] = []
            for b in 0..<B {
                let s = sequences[i + b]
                for t in 0..<s.count {
                    ids[b * T + t] = s.ids[t]
                    types[b * T + t] = s.types[t]
                    mask[b * T + t] = 1
                }
                inputRows += s.inputRows.map { Int32(b * T) + $0 }
                inputVectors += s.inputVectors
            }
            let encoded = model.encode(inputIDs: ids, tokenTypeIDs: types, attentionMask: mask, B: B, T: T,
                                       inputEmbeddingRows: inputRows, inputEmbeddings: inputVectors)
            try body(i, B, T, encoded)
            i += B
        }
    }

    /// Log-probabilities over the text vocabulary (the softmax pretraining's MLM is trained with:
    /// text positions are scored against the Ttext WordPieces only, see BertForPreTraining.swift)
    /// at flat rows of an encoded batch: `body(i, row)` for each rows[i], in order; `row`
    /// holds Ttext values and is valid only during the call (logits are made 256 rows at a time,
    /// so memory stays bounded whatever the batch).
    public func withTextLogProbabilities(_ encoded: EncodedBatch, rows: [Int32], _ body: (Int, UnsafeBufferPointer<Float>) -> Void) {
        withRestrictedLogSoftmax(encoded, rows: rows, from: 0, count: textVocabSize, body)
    }

    /// The same over the visual words (MFM's softmax): rows of Vvis values.
    public func withVisualLogProbabilities(_ encoded: EncodedBatch, rows: [Int32], _ body: (Int, UnsafeBufferPointer<Float>) -> Void) {
        withRestrictedLogSoftmax(encoded, rows: rows, from: textVocabSize, count: visualWords, body)
    }

    /// [rows.count, Ttext] text log-probabilities as one array (for a few rows).
    public func textLogProbabilities(_ encoded: EncodedBatch, rows: [Int32]) -> [Float] {
        var out = [Float](repeating: 0, count: rows.count * textVocabSize)
        withTextLogProbabilities(encoded, rows: rows) { i, row in
            out.withUnsafeMutableBufferPointer { o in (o.baseAddress! + i * row.count).update(from: row.baseAddress!, count: row.count) }
        }
        return out
    }

    /// [rows.count, Vvis] visual log-probabilities as one array.
    public func visualLogProbabilities(_ encoded: EncodedBatch, rows: [Int32]) -> [Float] {
        var out = [Float](repeating: 0, count: rows.count * visualWords)
        withVisualLogProbabilities(encoded, rows: rows) { i, row in
            out.withUnsafeMutableBufferPointer { o in (o.baseAddress! + i * row.count).update(from: row.baseAddress!, count: row.count) }
        }
        return out
    }

    private func withRestrictedLogSoftmax(_ encoded: EncodedBatch, rows: [Int32], from lo: Int, count n: Int, _ body: (Int, UnsafeBufferPointer<Float>) -> Void) {
        let V = model.config.vocabSize  // the row stride of predictionLogits (audio words too, when the checkpoint has them)
        let row = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { row.deallocate() }
        var start = 0
        while start < rows.count {
            let chunk = Array(rows[start..<min(rows.count, start + 256)])
            let logits = model.predictionLogits(encoded, rows: chunk)
            logits.withUnsafeBufferPointer { l in
                for m in 0..<chunk.count {
                    logSoftmax(l.baseAddress! + m * V + lo, into: row, count: n)
                    body(start + m, UnsafeBufferPointer(start: row, count: n))
                }
            }
            start += chunk.count
        }
    }
}

/// out[i] = x[i] − log Σ exp(x) (max-shifted, sums in Double).
func logSoftmax(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count n: Int) {
    var m = -Float.infinity
    for i in 0..<n where x[i] > m { m = x[i] }
    var sum = 0.0
    for i in 0..<n { sum += Foundation.exp(Double(x[i] - m)) }
    let lse = m + Float(Foundation.log(sum))
    for i in 0..<n { out[i] = x[i] - lse }
}

/// Indices of the k largest values, largest first; ties broken by the lower index.
public func topIndices(_ scores: UnsafeBufferPointer<Float>, k: Int) -> [Int] {
    var best: [Int] = []
    best.reserveCapacity(k + 1)
    for i in 0..<scores.count {
        let v = scores[i]
        if best.count == k, let last = best.last, !(v > scores[last]) { continue }
        var at = best.count
        while at > 0 && v > scores[best[at - 1]] { at -= 1 }
        best.insert(i, at: at)
        if best.count > k { best.removeLast() }
    }
    return best
}

public func topIndices(_ scores: [Float], k: Int) -> [Int] {
    scores.withUnsafeBufferPointer { topIndices($0, k: k) }
}

/// Turning WordPieces back into text.
public enum WordPieceText {
    /// Pieces joined by spaces, `##` pieces glued to the previous one; then BERT's punctuation
    /// splits undone where English writes no space: "let ' s" → "let's", "word ." → "word.".
    public static func join(_ pieces: [String]) -> String {
        var words: [String] = []
        for p in pieces {
            if p.hasPrefix("##"), !words.isEmpty { words[words.count - 1] += p.dropFirst(2) } else { words.append(p) }
        }
        var out = ""
        var glueNext = false
        for (i, w) in words.enumerated() {
            let closing = [".", ",", "!", "?", ";", ":", ")"].contains(w)
            let apostrophe = w == "'" && i > 0 && i + 1 < words.count
            if out.isEmpty || closing || glueNext || apostrophe { out += w } else { out += " " + w }
            glueNext = apostrophe || w == "("
        }
        return out
    }
}
