import Foundation
import Model
import Recipe
import Tensor
import Tokenize

/// Text–video scores of a CBT model (Sun et al. 2019, https://arxiv.org/abs/1906.05743, §3.3–3.4):
/// the cosine similarity of the pooled text and video embeddings (`pooled`: one pass per item),
/// or the cross-modal transformer's score of each (text, video) pair (`cross`: N² pairs).
///
/// A segment's text is `[CLS] its WordPieces (at most maxTextTokens) [SEP]`, its video the
/// stored input (frames or features) of its clips (at most the model's max_clips), nothing
/// masked; segments are encoded `batchSize` at a time, in the order given. `videobert retrieve`
/// builds one from a CBT checkpoint; CBT pretraining's held-out retrieval uses the same code on
/// the model it trains.
public final class CBTScorer: TextVideoScorer {
    public enum Score: String, Sendable, CaseIterable { case pooled, cross }

    public let model: CBTModel
    let inputs: ClipInputs
    let special: SpecialTokens
    public let score: Score
    public let maxTextTokens: Int
    public let batchSize: Int

    /// - Parameters: `model` allocated for `batchSize` examples of `maxTextTokens` + 2 tokens and
    ///   `inputs` the stored clips it reads.
    public init(model: CBTModel, inputs: ClipInputs, special: SpecialTokens, score: Score, maxTextTokens: Int, batchSize: Int) {
        precondition(batchSize >= 1 && batchSize <= model.maxBatch && maxTextTokens + 2 <= model.maxTextLength,
                     "CBTScorer: batch \(batchSize) of \(maxTextTokens) + 2 tokens exceeds the model's arena")
        self.model = model
        self.inputs = inputs
        self.special = special
        self.score = score
        self.maxTextTokens = maxTextTokens
        self.batchSize = batchSize
    }

    /// A CBT checkpoint applied to `corpus` (its vocabulary and the stored clips its front-end
    /// reads); texts cut at `maxTextTokens` (and the text BERT's positions).
    public convenience init(checkpoint: Checkpoint, corpus: TaskCorpus, score: Score, maxTextTokens: Int, batchSize: Int = 16) throws {
        guard checkpoint.kind == .cbt, let text = checkpoint.bert else {
            throw VideoBertError("is not a CBT checkpoint with its text BERT (\(Checkpoint.File.cbtConfig.rawValue) and \(Checkpoint.File.cbtText.rawValue)/)", file: checkpoint.folder)
        }
        if score == .pooled,
           try RecipeLoader.string(at: "objectives.pooled", file: checkpoint.path(.recipe)) == "none" {
            throw VideoBertError("was trained without a pooled objective (objectives.pooled: none): rank with the cross-modal score instead", file: checkpoint.folder)
        }
        try corpus.check(checkpoint)
        guard text.textVocabSize == corpus.textVocabSize else {
            throw VideoBertError("its text BERT has \(text.textVocabSize) text ids, the corpus \(corpus.path) \(corpus.textVocabSize): tokenize with the checkpoint's vocabulary", file: checkpoint.folder)
        }
        let maxText = max(1, min(maxTextTokens, text.maxPositionEmbeddings - 2))
        let model = try CBTModel.load(from: checkpoint.folder, maxBatch: batchSize, maxTextLength: maxText + 2, maxNCECandidates: 1,
                                      maxCrossCandidates: batchSize)
        let inputs = try CBTClipEncoder.inputs(checkpoint: checkpoint.folder, config: model.config, corpus: corpus.corpus)
        self.init(model: model, inputs: inputs, special: try SpecialTokens(vocabulary: TextVocabulary.load(corpus.corpus.textVocabPath)),
                  score: score, maxTextTokens: maxText, batchSize: batchSize)
    }

    public var name: String { score == .cross ? "CBT cross-modal transformer" : "cosine of CBT's pooled embeddings" }

    public func scores(segments: [Int], of corpus: TaskCorpus, progress: ProgressReporter?) throws -> [Float] {
        let encoded = encode(segments, of: corpus.corpus)
        progress?.advance(segments.count)
        return score == .cross ? crossScores(encoded) : pooledScores(encoded)
    }

    // MARK: The two scores

    /// The pooled embeddings and cross-modal inputs of `segments`, `batchSize` at a time, merged.
    public func encode(_ segments: [Int], of corpus: TokenizedCorpus) -> CBTRetrievalInputs {
        var parts: [CBTRetrievalInputs] = []
        var start = 0
        while start < segments.count {
            parts.append(model.encodeForRetrieval(batch(segments[start..<min(start + batchSize, segments.count)], of: corpus)))
            start += batchSize
        }
        return Self.merge(parts, Cx: model.config.crossHiddenSize)
    }

    /// [N, N] cosine similarities of the pooled text (rows) and video (columns) embeddings.
    public func pooledScores(_ inputs: CBTRetrievalInputs) -> [Float] {
        let N = inputs.N, E = model.config.embeddingSize
        func unit(_ x: [Float]) -> [Float] {
            var y = x
            for i in 0..<N {
                var norm: Float = 0
                for e in 0..<E { norm += x[i * E + e] * x[i * E + e] }
                let inv = 1 / max(norm.squareRoot(), 1e-12)
                for e in 0..<E { y[i * E + e] *= inv }
            }
            return y
        }
        let t = unit(inputs.text), v = unit(inputs.video)
        var similarity = [Float](repeating: 0, count: N * N)
        similarity.withUnsafeMutableBufferPointer { s in
            BLAS.sgemm(transA: false, transB: true, m: N, n: N, k: E, a: t, lda: E, b: v, ldb: E, beta: 0, c: s.baseAddress!, ldc: N)
        }
        return similarity
    }

    /// [N, N] cross-modal scores of every (text i, video j).
    public func crossScores(_ inputs: CBTRetrievalInputs) -> [Float] {
        let N = inputs.N
        var pairs: [(Int, Int)] = []
        pairs.reserveCapacity(N * N)
        for i in 0..<N { for j in 0..<N { pairs.append((i, j)) } }
        return model.crossScores(inputs, pairs: pairs)
    }

    // MARK: Inputs

    /// One unmasked batch: `[CLS] text [SEP]` rows padded to the longest, clip rows (−1 padding)
    /// padded to the longest clip sequence.
    func batch(_ segments: ArraySlice<Int>, of corpus: TokenizedCorpus) -> CBTBatch {
        let texts = segments.map { Array(corpus.text(of: $0).prefix(maxTextTokens)) }
        let clips = segments.map { s in Array((Int(corpus.segmentClips[2 * s])..<Int(corpus.segmentClips[2 * s + 1])).prefix(model.config.maxClips)) }
        let B = segments.count
        let T = (texts.map(\.count).max() ?? 0) + 2
        var ids = [Int32](repeating: special.pad, count: B * T), attention = [Float](repeating: 0, count: B * T)
        for (b, text) in texts.enumerated() {
            let row = b * T
            ids[row] = special.cls
            for (i, t) in text.enumerated() { ids[row + 1 + i] = t }
            ids[row + 1 + text.count] = special.sep
            for i in 0..<(text.count + 2) { attention[row + i] = 1 }
        }
        let textBatch = PretrainingBatch(B: B, T: T, inputIDs: ids, tokenTypeIDs: .init(repeating: 0, count: B * T), attentionMask: attention,
                                         textRows: [], textTargets: [], videoRows: [], videoTargets: [],
                                         alignLabels: .init(repeating: 0, count: B), alignWeights: .init(repeating: 0, count: B))
        let Tv = max(1, clips.map(\.count).max() ?? 1)
        var clipRows = [Int32](repeating: -1, count: B * Tv), globalClips: [Int] = []
        for (b, sequence) in clips.enumerated() {
            for (t, c) in sequence.enumerated() {
                clipRows[b * Tv + t] = Int32(globalClips.count)
                globalClips.append(c)
            }
        }
        let (frames, features) = inputs.rows(globalClips)
        return CBTBatch(B: B, text: textBatch, clipCount: globalClips.count, frames: frames, features: features, Tv: Tv, clipRows: clipRows,
                        maskedRows: [], K1: 2, candidates: [], crossCandidates: 1)
    }

    /// One set of retrieval inputs from several batches', padded to the longest text and clip sequence.
    static func merge(_ parts: [CBTRetrievalInputs], Cx: Int) -> CBTRetrievalInputs {
        let N = parts.reduce(0) { $0 + $1.N }, Tt = parts.map(\.Tt).max() ?? 1, Tv = parts.map(\.Tv).max() ?? 1
        var merged = CBTRetrievalInputs(text: [], video: [], crossText: .init(repeating: 0, count: N * Tt * Cx),
                                        textMask: .init(repeating: 0, count: N * Tt), crossVideo: .init(repeating: 0, count: N * Tv * Cx),
                                        videoMask: .init(repeating: 0, count: N * Tv), N: N, Tt: Tt, Tv: Tv)
        var n0 = 0
        for p in parts {
            merged.text += p.text
            merged.video += p.video
            for i in 0..<p.N {
                let row = n0 + i
                for t in 0..<p.Tt {
                    let src = i * p.Tt + t, dst = row * Tt + t
                    merged.textMask[dst] = p.textMask[src]
                    merged.crossText.replaceSubrange((dst * Cx)..<(dst * Cx + Cx), with: p.crossText[(src * Cx)..<(src * Cx + Cx)])
                }
                for t in 0..<p.Tv {
                    let src = i * p.Tv + t, dst = row * Tv + t
                    merged.videoMask[dst] = p.videoMask[src]
                    merged.crossVideo.replaceSubrange((dst * Cx)..<(dst * Cx + Cx), with: p.crossVideo[(src * Cx)..<(src * Cx + Cx)])
                }
            }
            n0 += p.N
        }
        return merged
    }
}
