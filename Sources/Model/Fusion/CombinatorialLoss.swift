import Foundation
import Tensor

// The combinatorial contrastive loss of "Everything at Once" (Shvetsova et al., CVPR 2022; issue
// 17 item 5; docs/ARCHITECTURE.md §4): InfoNCE between every single modality and every pair of
// the other two, over a batch of N (text, video, audio) samples.
//
// Reference code: https://github.com/ninatu/everything_at_once
//   everything_at_once/loss/combinatorial_loss.py   CombinatorialLoss: the six terms, each over the
//       samples where every modality it involves is present ("nonempty" masks), final loss
//       Σ_k w_k L_k / Σ_k w_k over the terms that are used;
//   everything_at_once/loss/contrastive_losses.py   NormSoftmaxLoss: L = −mean_i log softmax_j(S/τ)[i,i]
//       − mean_j log softmax_i(S/τ)[i,j=i] (the SUM of both directions, not their mean);
//   everything_at_once/model/utils/utils.py         sim_matrix: S = â b̂ᵀ, rows divided by
//       max(‖x‖, 1e-8);
//   configs/pretraining/everything_at_once_tva.yaml  weights tv 1, every other term 0.1; τ 0.05
//       (NormSoftmaxLoss's default).
//
// The six terms, first embedding ↔ second, and the modalities that must be present in a sample
// for it to take part:
//   tv    text ↔ video              t, v
//   ta    text ↔ audio              t, a
//   va    video ↔ audio             v, a
//   t_va  text ↔ fused video+audio  t, v, a
//   v_ta  video ↔ fused text+audio  t, v, a
//   a_tv  audio ↔ fused text+video  t, v, a
// A term with weight 0, or that no sample of the batch can take part in, is skipped (it adds to
// neither sum). The reference would divide by zero on an empty term (NaN); skipping it is what
// lets a batch where audio is missing everywhere train on tv alone (the KAIST half-supervised
// setting: samples with a missing modality still feed the terms they have).
//
// `pooled: variable_margin` (the KAIST image-bridged model's loss, already the CBT variant's
// option: ContrastiveLosses.swift) replaces each term's NormSoftmax by the bidirectional hinge
// ranking over the same cosine similarities with margins α·σ(−x_iᵀx_j), x the term's first
// embedding's unit rows, held constant (stop-gradient); negatives averaged per anchor.
//
// Layout: the six embeddings arrive as one [6, N, D] block in `FusionEmbedding` order and the
// presence flags as [3, N] (1 present, 0 missing) in `FusionModality` order. Backward accumulates
// (+=) into a [6, N, D] gradient block; rows of absent samples get nothing.
//
// Shape letters: N samples in the batch, D embedding width, n ≤ N samples of one term.

/// The three modalities, in the order of the loss' [3, N] presence flags.
public enum FusionModality: Int, CaseIterable, Sendable {
    case text, video, audio

    /// "text", "video", "audio".
    public var name: String { ["text", "video", "audio"][rawValue] }
}

/// The six embeddings the combinatorial loss compares, in the order of its [6, N, D] block.
public enum FusionEmbedding: Int, CaseIterable, Sendable {
    case text, video, audio, textVideo, textAudio, videoAudio
}

/// One of the six InfoNCE terms.
public enum CombinatorialTerm: Int, CaseIterable, Sendable {
    case tv, ta, va, tVa, vTa, aTv

    /// The reference's (and the recipe's) name: tv, ta, va, t_va, v_ta, a_tv.
    public var name: String { ["tv", "ta", "va", "t_va", "v_ta", "a_tv"][rawValue] }

    /// The two embeddings compared (first ↔ second).
    public var embeddings: (FusionEmbedding, FusionEmbedding) {
        switch self {
        case .tv: (.text, .video)
        case .ta: (.text, .audio)
        case .va: (.video, .audio)
        case .tVa: (.text, .videoAudio)
        case .vTa: (.video, .textAudio)
        case .aTv: (.audio, .textVideo)
        }
    }

    /// The modalities a sample must have to take part.
    public var modalities: [FusionModality] {
        switch self {
        case .tv: [.text, .video]
        case .ta: [.text, .audio]
        case .va: [.video, .audio]
        case .tVa, .vTa, .aTv: [.text, .video, .audio]
        }
    }

    /// Whether the term involves audio.
    public var needsAudio: Bool { modalities.contains(.audio) }
}

/// What the combinatorial loss measured on one batch.
public struct CombinatorialResult: Sendable, Equatable {
    /// One term's value.
    public struct Term: Sendable, Equatable {
        /// NormSoftmaxLoss of the term's samples (both directions summed); 0 when skipped.
        public var loss: Float = 0
        /// Samples that took part (0: skipped).
        public var count = 0
        /// Samples whose first embedding scored its own second embedding strictly highest.
        public var correct = 0
        /// The weight the term was used with (0 when skipped).
        public var weight: Float = 0
    }

    /// Σ_k w_k L_k / Σ_k w_k over the used terms (0 when none is used).
    public var loss: Float = 0
    /// Σ_k w_k over the used terms.
    public var weightSum: Float = 0
    /// Indexed by `CombinatorialTerm.rawValue`.
    public var terms = [Term](repeating: Term(), count: CombinatorialTerm.allCases.count)
}

/// What each term computes over its cosine similarities.
public enum CombinatorialObjective: Sendable, Equatable {
    /// NormSoftmaxLoss: InfoNCE over S/τ, both directions summed.
    case infoNCE
    /// Bidirectional hinge ranking with variable margins α·σ(−x_iᵀx_j) (mean over negatives).
    case variableMargin(alpha: Float)
}

/// The combinatorial contrastive loss as a layer with its own saved buffers (see the file
/// comment). Not Sendable: forward writes buffers that backward reads.
public final class CombinatorialContrastiveLoss {
    /// N at most, D.
    public let maxBatch: Int, dimension: Int
    /// τ > 0.
    public let temperature: Float
    /// w_k ≥ 0, indexed by `CombinatorialTerm.rawValue`.
    public let weights: [Float]
    public let objective: CombinatorialObjective
    /// The rows' norm floor (sim_matrix's eps).
    public static let eps: Float = 1e-8

    private let buffer: UnsafeMutablePointer<Float>
    private let rowBuffer: UnsafeMutablePointer<Int32>
    /// [6, N, D] unit rows, [6, N] norms (saved); [T, N, N] ×2 probabilities per term (saved);
    /// [N, D] ×2 gathered rows, [N, N] scores, [6, N, D] d(unit rows) (scratch).
    private let unit, norms, probs1, probs2, gatherA, gatherB, scores, dunit, dA, dB: UnsafeMutablePointer<Float>
    /// [T, N] each term's sample rows.
    private let rows: UnsafeMutablePointer<Int32>
    private var last: (N: Int, result: CombinatorialResult)?

    /// - Parameters:
    ///   - maxBatch: N at most; dimension: D; temperature: τ > 0; weights: six values ≥ 0 in
    ///     `CombinatorialTerm` order.
    public init(maxBatch: Int, dimension: Int, temperature: Float, weights: [Float], objective: CombinatorialObjective = .infoNCE) throws {
        guard maxBatch >= 1, dimension >= 1 else { throw VideoBertError("combinatorial loss: batch and width must be ≥ 1") }
        guard temperature > 0, temperature.isFinite else { throw VideoBertError("combinatorial loss: temperature must be > 0") }
        guard weights.count == CombinatorialTerm.allCases.count, weights.allSatisfy({ $0 >= 0 && $0.isFinite }) else {
            throw VideoBertError("combinatorial loss: six weights ≥ 0 (tv, ta, va, t_va, v_ta, a_tv)")
        }
        if case .variableMargin(let alpha) = objective, !(alpha >= 0 && alpha.isFinite) {
            throw VideoBertError("combinatorial loss: the margin α must be ≥ 0")
        }
        self.maxBatch = maxBatch; self.dimension = dimension; self.temperature = temperature; self.weights = weights
        self.objective = objective
        let N = maxBatch, D = dimension, E = FusionEmbedding.allCases.count, T = CombinatorialTerm.allCases.count
        let sizes = [E * N * D, E * N, T * N * N, T * N * N, N * D, N * D, N * N, E * N * D, N * D, N * D]
        buffer = .allocate(capacity: sizes.reduce(0, +))
        buffer.initialize(repeating: 0, count: sizes.reduce(0, +))
        var offset = 0
        var pointers: [UnsafeMutablePointer<Float>] = []
        for size in sizes { pointers.append(buffer + offset); offset += size }
        (unit, norms, probs1, probs2, gatherA, gatherB) = (pointers[0], pointers[1], pointers[2], pointers[3], pointers[4], pointers[5])
        (scores, dunit, dA, dB) = (pointers[6], pointers[7], pointers[8], pointers[9])
        rowBuffer = .allocate(capacity: T * N)
        rowBuffer.initialize(repeating: 0, count: T * N)
        rows = rowBuffer
    }

    deinit {
        buffer.deallocate()
        rowBuffer.deallocate()
    }

    /// Bytes held.
    public var bytes: Int {
        let N = maxBatch, D = dimension, E = FusionEmbedding.allCases.count, T = CombinatorialTerm.allCases.count
        return (2 * E * N * D + E * N + 2 * T * N * N + 4 * N * D + N * N) * 4 + T * N * 4
    }

    /// The loss of one batch.
    /// - Parameters:
    ///   - embeddings: [6, N, D] in `FusionEmbedding` order (rows of absent samples are ignored).
    ///   - present: [3, N] 1 where the sample has the modality, 0 where it is missing.
    public func forward(embeddings: UnsafePointer<Float>, present: UnsafePointer<Float>, N: Int) -> CombinatorialResult {
        precondition(N >= 1 && N <= maxBatch, "combinatorial loss: \(N) samples outside 1...\(maxBatch)")
        let D = dimension, stride = maxBatch * D
        for e in FusionEmbedding.allCases {
            l2NormalizeForward(out: unit + e.rawValue * stride, norms: norms + e.rawValue * maxBatch,
                               inp: embeddings + e.rawValue * N * D, N: N, D: D, eps: Self.eps)
        }
        var result = CombinatorialResult()
        var weighted: Double = 0
        for term in CombinatorialTerm.allCases where weights[term.rawValue] > 0 {
            let k = term.rawValue, termRows = rows + k * maxBatch
            var n = 0
            for i in 0..<N where term.modalities.allSatisfy({ present[$0.rawValue * N + i] > 0 }) {
                termRows[n] = Int32(i)
                n += 1
            }
            if n == 0 { continue }
            gather(term, n: n)
            let loss: Float, correct: Int
            switch objective {
            case .infoNCE:
                pairwiseScoresForward(scores: scores, a: gatherA, b: gatherB, NA: n, NB: n, D: D, scale: 1 / temperature)
                let ce = symmetricCrossEntropyForward(probsTextToVideo: probs1 + k * maxBatch * maxBatch,
                                                      probsVideoToText: probs2 + k * maxBatch * maxBatch, scores: scores, N: n)
                // NormSoftmaxLoss sums the two directions; symmetricCrossEntropyForward averages them.
                (loss, correct) = (2 * ce.loss, ce.textToVideo.correct)
            case .variableMargin(let alpha):
                let margins = probs1 + k * maxBatch * maxBatch
                pairwiseScoresForward(scores: scores, a: gatherA, b: gatherB, NA: n, NB: n, D: D)
                variableMarginsForward(margins: margins, x: gatherA, N: n, D: D, alpha: alpha)
                let r = rankingHingeForward(scores: scores, margins: margins, N: n, reduction: .mean)
                (loss, correct) = (r.loss, r.textToVideo.correct)
            }
            let w = weights[k]
            result.terms[k] = .init(loss: loss, count: n, correct: correct, weight: w)
            result.weightSum += w
            weighted += Double(w) * Double(loss)
        }
        result.loss = result.weightSum > 0 ? Float(weighted / Double(result.weightSum)) : 0
        last = (N, result)
        return result
    }

    /// Backward of the last `forward`: accumulates (+=) d(loss)·dloss into dembeddings [6, N, D].
    public func backward(dembeddings: UnsafeMutablePointer<Float>, dloss: Float = 1) {
        guard let (N, result) = last else { preconditionFailure("combinatorial loss: backward needs a preceding forward") }
        guard result.weightSum > 0 else { return }
        let D = dimension, stride = maxBatch * D
        zeroFloats(dunit, FusionEmbedding.allCases.count * stride)
        for term in CombinatorialTerm.allCases {
            let k = term.rawValue, t = result.terms[k]
            if t.count == 0 { continue }
            let n = t.count, termRows = rows + k * maxBatch
            gather(term, n: n)
            let dscores = probs2 + k * maxBatch * maxBatch
            switch objective {
            case .infoNCE:
                // d(w_k L_k / W) with L_k = 2 × the symmetric mean.
                zeroFloats(scores, n * n)
                symmetricCrossEntropyBackward(dscores: scores, probsTextToVideo: probs1 + k * maxBatch * maxBatch,
                                              probsVideoToText: probs2 + k * maxBatch * maxBatch, N: n,
                                              dloss: 2 * t.weight / result.weightSum * dloss)
                zeroFloats(dA, n * D)
                zeroFloats(dB, n * D)
                pairwiseScoresBackward(da: dA, db: dB, dscores: scores, a: gatherA, b: gatherB, NA: n, NB: n, D: D, scale: 1 / temperature)
            case .variableMargin:
                // The margins (saved in probs1) are constants; the scores are recomputed.
                pairwiseScoresForward(scores: scores, a: gatherA, b: gatherB, NA: n, NB: n, D: D)
                zeroFloats(dscores, n * n)
                rankingHingeBackward(dscores: dscores, scores: scores, margins: probs1 + k * maxBatch * maxBatch, N: n, reduction: .mean,
                                     dloss: t.weight / result.weightSum * dloss)
                zeroFloats(dA, n * D)
                zeroFloats(dB, n * D)
                pairwiseScoresBackward(da: dA, db: dB, dscores: dscores, a: gatherA, b: gatherB, NA: n, NB: n, D: D)
            }
            let (first, second) = term.embeddings
            let d1 = dunit + first.rawValue * stride, d2 = dunit + second.rawValue * stride
            for r in 0..<n {
                let i = Int(termRows[r])
                let a = dA + r * D, b = dB + r * D, x = d1 + i * D, y = d2 + i * D
                for c in 0..<D { x[c] += a[c]; y[c] += b[c] }
            }
        }
        for e in FusionEmbedding.allCases {
            l2NormalizeBackward(dinp: dembeddings + e.rawValue * N * D, dout: dunit + e.rawValue * stride,
                                out: unit + e.rawValue * stride, norms: norms + e.rawValue * maxBatch, N: N, D: D, eps: Self.eps)
        }
    }

    /// gatherA/B ← the term's unit rows of its first/second embedding.
    private func gather(_ term: CombinatorialTerm, n: Int) {
        let D = dimension, stride = maxBatch * D, termRows = rows + term.rawValue * maxBatch
        let (first, second) = term.embeddings
        let u1 = unit + first.rawValue * stride, u2 = unit + second.rawValue * stride
        for r in 0..<n {
            let i = Int(termRows[r])
            (gatherA + r * D).update(from: u1 + i * D, count: D)
            (gatherB + r * D).update(from: u2 + i * D, count: D)
        }
    }
}
