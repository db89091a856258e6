import Foundation
import Tensor

// The contrastive losses of the CBT variant (issue 4), as forward/backward pairs over raw
// pointers; backward accumulates (+=) into gradients.
//
// - Masked-frame NCE (Sun et al. 2019, "Learning Video Representations using Contrastive
//   Bidirectional Transformer", §3.2, eq. 5–6): the visual transformer's output at a masked
//   position, after a projection, scores the true clip's embedding against K negatives;
//   softmax cross-entropy over the 1 + K candidates (InfoNCE, van den Oord et al. 2018).
//   Gradients reach the predictions AND every candidate embedding, so the front-end that
//   produced the embeddings trains through the loss.
// - Symmetric InfoNCE on pooled text and video embeddings with in-batch negatives (CLIP, Radford
//   et al. 2021, eq. in Fig. 3; MIL-NCE's symmetric form), optionally on L2-normalised inputs.
// - Hinge (max-margin) ranking over in-batch negatives in both directions (Kiros et al. 2014;
//   Faghri et al. 2018 "VSE++" §3.1, the sum-of-hinges form), and its variable-margin form where
//   the margin for negative j of anchor i is σ(−x_iᵀx_j)·α, held constant (stop-gradient).
//
// Composition (what the CBT trainer does per step):
//   NCE:       gatherRowsForward (masked positions) → linearForward (projection) →
//              maskedFrameNCEForward(predictions, embeddings = the front-end's clip embeddings)
//   InfoNCE:   symmetricInfoNCEForward(text pooled [N, D], video pooled [N, D])
//   ranking:   [l2NormalizeForward] → pairwiseScoresForward (scale 1) → [variableMarginsForward]
//              → rankingHingeForward
//   backward:  the same list read in reverse.
//
// Shape letters: M predictions (masked positions), K1 = 1 + K candidates per prediction, NE
// embeddings (clips in the batch), D features, N pairs in the batch (row i of text and row i of
// video belong together).

/// The value of a contrastive loss and how often the true candidate scored highest.
public struct ContrastiveResult: Sendable, Equatable {
    /// The mean loss.
    public var loss: Float
    /// Rows whose true candidate scored strictly higher than every other candidate (a tie counts
    /// as wrong, so that collapsed embeddings score 0, not 100%).
    public var correct: Int
    /// Rows scored.
    public var count: Int

    public init(loss: Float, correct: Int, count: Int) {
        self.loss = loss
        self.correct = correct
        self.count = count
    }

    /// correct / count (0 when nothing was scored).
    public var accuracy: Double { count == 0 ? 0 : Double(correct) / Double(count) }
}

// MARK: - Masked-frame NCE

/// Masked-frame NCE (CBT §3.2): for prediction m and its candidates c_{m,0} (the true clip),
/// c_{m,1} … c_{m,K} (negatives), scores s_{m,k} = p_m · e_{c_{m,k}} / τ and
/// loss = mean_m [logsumexp_k s_{m,k} − s_{m,0}]: softmax cross-entropy with target 0. Returns the
/// mean loss and the rows where the true clip scored highest.
/// - Parameters:
///   - probs: [M, K1] softmax over each row's candidates (written; saved for backward).
///   - losses: [M] per-prediction losses (written).
///   - predictions: [M, D] p_m: the transformer's outputs at the masked positions after the projection.
///   - embeddings: [NE, D] clip embeddings (the front-end's outputs for the batch).
///   - candidates: [M, K1] row indices into embeddings: column 0 the true clip, then K negatives
///     (clips of other videos; a negative equal to the true clip is allowed but makes that row
///     unwinnable).
///   - temperature: τ > 0.
public func maskedFrameNCEForward(probs: UnsafeMutablePointer<Float>,
                                  losses: UnsafeMutablePointer<Float>,
                                  predictions: UnsafePointer<Float>,
                                  embeddings: UnsafePointer<Float>,
                                  candidates: UnsafePointer<Int32>,
                                  M: Int, K1: Int, D: Int, NE: Int, temperature: Float) -> ContrastiveResult {
    precondition(K1 >= 1 && temperature > 0, "NCE needs at least one candidate and a positive temperature")
    if M == 0 { return ContrastiveResult(loss: 0, correct: 0, count: 0) }
    let inverseTemperature = 1 / temperature
    return withUnsafeTemporaryAllocation(of: Bool.self, capacity: M) { flags in
        let correct = flags.baseAddress!
        Parallel.forEachRange(M, grain: max(1, 16_384 / max(K1 * D, 1))) { rows in
            for m in rows {
                let p = predictions + m * D, row = probs + m * K1
                for k in 0..<K1 {
                    let index = Int(candidates[m * K1 + k])
                    precondition(index >= 0 && index < NE, "NCE candidate \(index) outside 0..<\(NE)")
                    row[k] = vectorDot(p, embeddings + index * D, D) * inverseTemperature
                }
                var best = -Float.infinity
                for k in 1..<K1 { best = max(best, row[k]) }
                correct[m] = row[0] > best
                losses[m] = softmaxInPlace(row, K1, target: 0)
            }
        }
        var total: Double = 0, right = 0
        for m in 0..<M {
            total += Double(losses[m])
            if correct[m] { right += 1 }
        }
        return ContrastiveResult(loss: Float(total / Double(M)), correct: right, count: M)
    }
}

/// Backward of `maskedFrameNCEForward`. With g_{m,k} = (probs[m,k] − [k = 0]) · dloss / M:
/// dpredictions[m] += Σ_k g_{m,k} / τ · e_{c_{m,k}}, dembeddings[c_{m,k}] += g_{m,k} / τ · p_m
/// (candidates repeated across rows add up; columns split across workers, rows in order).
/// - Parameters:
///   - dpredictions: [M, D] accumulated (+=), or nil.
///   - dembeddings: [NE, D] accumulated (+=) at the candidates' rows, or nil.
///   - probs: [M, K1] as saved by forward.
///   - predictions, embeddings, candidates, temperature: as given to forward.
///   - dloss: gradient of the returned mean loss (1, or a loss weight).
public func maskedFrameNCEBackward(dpredictions: UnsafeMutablePointer<Float>?,
                                   dembeddings: UnsafeMutablePointer<Float>?,
                                   probs: UnsafePointer<Float>,
                                   predictions: UnsafePointer<Float>,
                                   embeddings: UnsafePointer<Float>,
                                   candidates: UnsafePointer<Int32>,
                                   M: Int, K1: Int, D: Int, temperature: Float, dloss: Float = 1) {
    if M == 0 { return }
    let scale = dloss / (Float(M) * temperature)
    @inline(__always) func g(_ m: Int, _ k: Int) -> Float { (probs[m * K1 + k] - (k == 0 ? 1 : 0)) * scale }
    if let dpredictions {
        Parallel.forEachRange(M, grain: max(1, 16_384 / max(K1 * D, 1))) { rows in
            for m in rows {
                let d = dpredictions + m * D
                for k in 0..<K1 {
                    let gk = g(m, k)
                    let e = embeddings + Int(candidates[m * K1 + k]) * D
                    for c in 0..<D { d[c] += gk * e[c] }
                }
            }
        }
    }
    if let dembeddings {
        Parallel.forEachRange(D, grain: Parallel.columnGrain(rows: M * K1, columns: D)) { columns in
            let c0 = columns.lowerBound, width = columns.count
            for m in 0..<M {
                let p = predictions + m * D + c0
                for k in 0..<K1 {
                    let gk = g(m, k)
                    let d = dembeddings + Int(candidates[m * K1 + k]) * D + c0
                    for c in 0..<width { d[c] += gk * p[c] }
                }
            }
        }
    }
}

/// row ← softmax(row) over n entries; returns −log softmax(row)[target] (in Double inside).
@inline(__always)
func softmaxInPlace(_ row: UnsafeMutablePointer<Float>, _ n: Int, target: Int) -> Float {
    let mx = vectorMax(row, n)
    var sum: Double = 0
    for k in 0..<n { sum += Foundation.exp(Double(row[k] - mx)) }
    let logSumExp = Double(mx) + Foundation.log(sum)
    let loss = Float(logSumExp - Double(row[target]))
    for k in 0..<n { row[k] = Float(Foundation.exp(Double(row[k]) - logSumExp)) }
    return loss
}

// MARK: - L2 normalisation of rows

/// out[n] = inp[n] / max(‖inp[n]‖₂, eps) (torch `F.normalize(x, dim=1, eps=eps)`).
/// - Parameters:
///   - out: [N, D] (written; saved for backward). May alias `inp`.
///   - norms: [N] ‖inp[n]‖₂ (written; saved for backward).
///   - inp: [N, D].
public func l2NormalizeForward(out: UnsafeMutablePointer<Float>, norms: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                               N: Int, D: Int, eps: Float = 1e-12) {
    Parallel.forEachRange(N, grain: max(1, 16_384 / max(D, 1))) { rows in
        for n in rows {
            let x = inp + n * D, y = out + n * D
            let norm = vectorDot(x, x, D).squareRoot()
            norms[n] = norm
            let inverse = 1 / max(norm, eps)
            for d in 0..<D { y[d] = x[d] * inverse }
        }
    }
}

/// Backward of `l2NormalizeForward`: with y = x/‖x‖, dinp += (dout − y·(y·dout)) / ‖x‖; where the
/// norm was clamped to eps the map is x/eps and dinp += dout/eps.
/// - Parameters:
///   - dinp: [N, D] accumulated (+=); not the same memory as dout.
///   - dout: [N, D].
///   - out: [N, D] the forward output (unit rows).
///   - norms: [N] as saved by forward.
public func l2NormalizeBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, out: UnsafePointer<Float>,
                                norms: UnsafePointer<Float>, N: Int, D: Int, eps: Float = 1e-12) {
    Parallel.forEachRange(N, grain: max(1, 16_384 / max(D, 1))) { rows in
        for n in rows {
            let y = out + n * D, g = dout + n * D, dx = dinp + n * D
            if norms[n] > eps {
                let projection = vectorDot(y, g, D), inverse = 1 / norms[n]
                for d in 0..<D { dx[d] += (g[d] - y[d] * projection) * inverse }
            } else {
                for d in 0..<D { dx[d] += g[d] / eps }
            }
        }
    }
}

// MARK: - Pairwise scores

/// scores[i, j] = scale · a_i · b_j: one sgemm (a cosine-similarity matrix when the rows are unit
/// vectors; scale = 1/τ for InfoNCE logits).
/// - Parameters:
///   - scores: [NA, NB] (written).
///   - a: [NA, D] (text), b: [NB, D] (video).
public func pairwiseScoresForward(scores: UnsafeMutablePointer<Float>, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                                  NA: Int, NB: Int, D: Int, scale: Float = 1) {
    BLAS.sgemm(transA: false, transB: true, m: NA, n: NB, k: D, alpha: scale, a: a, lda: D, b: b, ldb: D,
               beta: 0, c: scores, ldc: NB)
}

/// da += scale · dscores · b; db += scale · dscoresᵀ · a.
/// - Parameters:
///   - da: [NA, D] accumulated (+=), or nil. db: [NB, D] accumulated (+=), or nil.
///   - dscores: [NA, NB].
public func pairwiseScoresBackward(da: UnsafeMutablePointer<Float>?, db: UnsafeMutablePointer<Float>?, dscores: UnsafePointer<Float>,
                                   a: UnsafePointer<Float>, b: UnsafePointer<Float>, NA: Int, NB: Int, D: Int, scale: Float = 1) {
    if let da {
        BLAS.sgemm(transA: false, transB: false, m: NA, n: D, k: NB, alpha: scale, a: dscores, lda: NB, b: b, ldb: D,
                   beta: 1, c: da, ldc: D)
    }
    if let db {
        BLAS.sgemm(transA: true, transB: false, m: NB, n: D, k: NA, alpha: scale, a: dscores, lda: NB, b: a, ldb: D,
                   beta: 1, c: db, ldc: D)
    }
}

// MARK: - Symmetric cross-entropy over a score matrix (true pairs on the diagonal)

/// A symmetric contrastive loss: both directions and their mean.
public struct SymmetricContrastiveResult: Sendable, Equatable {
    /// (textToVideo.loss + videoToText.loss) / 2.
    public var loss: Float
    /// Rows of the score matrix: each text against every video.
    public var textToVideo: ContrastiveResult
    /// Columns: each video against every text.
    public var videoToText: ContrastiveResult
}

/// loss = ½ · (mean_i CE(scores[i, :], i) + mean_j CE(scores[:, j], j)): the symmetric InfoNCE
/// of CLIP over a batch of N aligned pairs with in-batch negatives (torch:
/// `(F.cross_entropy(S, arange(N)) + F.cross_entropy(S.T, arange(N))) / 2`).
/// - Parameters:
///   - probsTextToVideo: [N, N] row-wise softmax of scores (written; saved for backward).
///   - probsVideoToText: [N, N] its row j is the softmax of scores' column j (written; saved).
///   - scores: [N, N] logits, scores[i, j] for text i and video j.
public func symmetricCrossEntropyForward(probsTextToVideo: UnsafeMutablePointer<Float>,
                                         probsVideoToText: UnsafeMutablePointer<Float>,
                                         scores: UnsafePointer<Float>, N: Int) -> SymmetricContrastiveResult {
    let empty = ContrastiveResult(loss: 0, correct: 0, count: 0)
    if N == 0 { return SymmetricContrastiveResult(loss: 0, textToVideo: empty, videoToText: empty) }
    // Transposed copy for the columns, then both are row softmaxes.
    probsTextToVideo.update(from: scores, count: N * N)
    for i in 0..<N { for j in 0..<N { probsVideoToText[j * N + i] = scores[i * N + j] } }
    func direction(_ p: UnsafeMutablePointer<Float>) -> ContrastiveResult {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * N) { buffer in
            let losses = buffer.baseAddress!, correct = losses + N
            Parallel.forEachRange(N, grain: max(1, 8_192 / N)) { rows in
                for i in rows {
                    let row = p + i * N
                    var best = -Float.infinity
                    for j in 0..<N where j != i { best = max(best, row[j]) }
                    correct[i] = row[i] > best ? 1 : 0
                    losses[i] = softmaxInPlace(row, N, target: i)
                }
            }
            var total: Double = 0, right = 0
            for i in 0..<N { total += Double(losses[i]); right += Int(correct[i]) }
            return ContrastiveResult(loss: Float(total / Double(N)), correct: right, count: N)
        }
    }
    let t2v = direction(probsTextToVideo), v2t = direction(probsVideoToText)
    return SymmetricContrastiveResult(loss: (t2v.loss + v2t.loss) / 2, textToVideo: t2v, videoToText: v2t)
}

/// dscores[i, j] += dloss/(2N) · ((probsTextToVideo[i, j] − [i = j]) + (probsVideoToText[j, i] − [i = j])).
/// - Parameters:
///   - dscores: [N, N] accumulated (+=).
///   - probsTextToVideo, probsVideoToText: [N, N] as saved by forward.
public func symmetricCrossEntropyBackward(dscores: UnsafeMutablePointer<Float>,
                                          probsTextToVideo: UnsafePointer<Float>,
                                          probsVideoToText: UnsafePointer<Float>,
                                          N: Int, dloss: Float = 1) {
    if N == 0 { return }
    let scale = dloss / Float(2 * N)
    Parallel.forEachRange(N, grain: max(1, 8_192 / N)) { rows in
        for i in rows {
            let d = dscores + i * N, p = probsTextToVideo + i * N
            for j in 0..<N { d[j] += (p[j] + probsVideoToText[j * N + i]) * scale }
            d[i] -= 2 * scale
        }
    }
}

// MARK: - Symmetric InfoNCE on pooled embeddings

/// Buffers that L2-normalised InfoNCE saves in forward: the unit rows and the norms.
public struct L2NormalizedPairBuffers {
    /// [N, D] text / ‖text‖.
    public var textUnit: UnsafeMutablePointer<Float>
    /// [N, D] video / ‖video‖.
    public var videoUnit: UnsafeMutablePointer<Float>
    /// [N] ‖text_i‖.
    public var textNorms: UnsafeMutablePointer<Float>
    /// [N] ‖video_i‖.
    public var videoNorms: UnsafeMutablePointer<Float>

    public init(textUnit: UnsafeMutablePointer<Float>, videoUnit: UnsafeMutablePointer<Float>,
                textNorms: UnsafeMutablePointer<Float>, videoNorms: UnsafeMutablePointer<Float>) {
        (self.textUnit, self.videoUnit, self.textNorms, self.videoNorms) = (textUnit, videoUnit, textNorms, videoNorms)
    }
}

/// Symmetric InfoNCE over N aligned (text, video) pairs with in-batch negatives:
/// S = t̂ v̂ᵀ / τ with t̂, v̂ the L2-normalised rows when `normalized` is given (cosine similarity,
/// CLIP) or the raw rows when nil; loss = ½ (CE over S's rows + CE over its columns), targets on
/// the diagonal (`symmetricCrossEntropyForward`).
/// - Parameters:
///   - probsTextToVideo, probsVideoToText: [N, N] (written; saved for backward).
///   - scores: [N, N] scratch (the logits; free after forward, e.g. for backward's dscores).
///   - text: [N, D] pooled text embeddings; video: [N, D] pooled video embeddings, row i of each a pair.
///   - normalized: buffers for the normalised rows (written; saved), or nil for raw dot products.
///   - temperature: τ > 0.
public func symmetricInfoNCEForward(probsTextToVideo: UnsafeMutablePointer<Float>,
                                    probsVideoToText: UnsafeMutablePointer<Float>,
                                    scores: UnsafeMutablePointer<Float>,
                                    text: UnsafePointer<Float>, video: UnsafePointer<Float>,
                                    normalized: L2NormalizedPairBuffers?,
                                    N: Int, D: Int, temperature: Float) -> SymmetricContrastiveResult {
    precondition(temperature > 0, "InfoNCE needs a positive temperature")
    var t = text, v = video
    if let normalized {
        l2NormalizeForward(out: normalized.textUnit, norms: normalized.textNorms, inp: text, N: N, D: D)
        l2NormalizeForward(out: normalized.videoUnit, norms: normalized.videoNorms, inp: video, N: N, D: D)
        t = UnsafePointer(normalized.textUnit)
        v = UnsafePointer(normalized.videoUnit)
    }
    pairwiseScoresForward(scores: scores, a: t, b: v, NA: N, NB: N, D: D, scale: 1 / temperature)
    return symmetricCrossEntropyForward(probsTextToVideo: probsTextToVideo, probsVideoToText: probsVideoToText,
                                        scores: scores, N: N)
}

/// Backward of `symmetricInfoNCEForward`.
/// - Parameters:
///   - dtext, dvideo: [N, D] accumulated (+=), or nil.
///   - dscores: [N, N] scratch (overwritten; may be forward's `scores`).
///   - dunit: [N, D] scratch, required when `normalized` is given (overwritten).
///   - probsTextToVideo, probsVideoToText, text, video, normalized, temperature: as for forward.
///   - dloss: gradient of the returned loss.
public func symmetricInfoNCEBackward(dtext: UnsafeMutablePointer<Float>?, dvideo: UnsafeMutablePointer<Float>?,
                                     dscores: UnsafeMutablePointer<Float>, dunit: UnsafeMutablePointer<Float>?,
                                     probsTextToVideo: UnsafePointer<Float>, probsVideoToText: UnsafePointer<Float>,
                                     text: UnsafePointer<Float>, video: UnsafePointer<Float>,
                                     normalized: L2NormalizedPairBuffers?,
                                     N: Int, D: Int, temperature: Float, dloss: Float = 1) {
    if N == 0 { return }
    dscores.update(repeating: 0, count: N * N)
    symmetricCrossEntropyBackward(dscores: dscores, probsTextToVideo: probsTextToVideo, probsVideoToText: probsVideoToText,
                                  N: N, dloss: dloss)
    let scale = 1 / temperature
    guard let normalized else {
        pairwiseScoresBackward(da: dtext, db: dvideo, dscores: dscores, a: text, b: video, NA: N, NB: N, D: D, scale: scale)
        return
    }
    guard let dunit else { preconditionFailure("symmetricInfoNCEBackward with normalisation needs the dunit scratch") }
    if let dtext {
        dunit.update(repeating: 0, count: N * D)
        pairwiseScoresBackward(da: dunit, db: nil, dscores: dscores, a: normalized.textUnit, b: normalized.videoUnit,
                               NA: N, NB: N, D: D, scale: scale)
        l2NormalizeBackward(dinp: dtext, dout: dunit, out: normalized.textUnit, norms: normalized.textNorms, N: N, D: D)
    }
    if let dvideo {
        dunit.update(repeating: 0, count: N * D)
        pairwiseScoresBackward(da: nil, db: dunit, dscores: dscores, a: normalized.textUnit, b: normalized.videoUnit,
                               NA: N, NB: N, D: D, scale: scale)
        l2NormalizeBackward(dinp: dvideo, dout: dunit, out: normalized.videoUnit, norms: normalized.videoNorms, N: N, D: D)
    }
}

// MARK: - Hinge ranking loss, fixed and variable margin

/// How the hinge terms of one anchor are combined over its N − 1 in-batch negatives.
public enum NegativeReduction: String, Codable, Sendable, CaseIterable {
    /// Σ over negatives (VSE's sum of hinges; Kiros et al. 2014, Faghri et al. 2018 "VSE0").
    case sum
    /// Mean over negatives: the sum / (N − 1), so the loss's scale does not grow with the batch.
    case mean
}

/// The bidirectional hinge ranking loss over a score matrix with true pairs on the diagonal:
///
///     loss = (1/N) Σ_i Σ_{j≠i} w · ( [m_ij − s_ii + s_ij]₊  +  [m_ij − s_ii + s_ji]₊ )
///
/// (text i against videos j, then video i against texts j; w = 1 for `.sum`, 1/(N−1) for `.mean`
/// over negatives; always a mean over anchors). The margin m_ij for negative j of anchor i is
/// `margin` when `margins` is nil, else margins[i, j] (e.g. `variableMarginsForward`), used as a
/// constant: no gradient flows into it. Returns the loss; `correct` counts, per direction, anchors
/// whose true pair scores strictly above every negative.
/// - Parameters:
///   - scores: [N, N] s_ij = similarity of text i and video j (`pairwiseScoresForward`).
///   - margins: [N, N] per-pair margins (the diagonal is unused), or nil for the constant `margin`.
public func rankingHingeForward(scores: UnsafePointer<Float>, margins: UnsafePointer<Float>?, margin: Float = 0.2,
                                N: Int, reduction: NegativeReduction = .sum) -> SymmetricContrastiveResult {
    let empty = ContrastiveResult(loss: 0, correct: 0, count: 0)
    if N < 2 { return SymmetricContrastiveResult(loss: 0, textToVideo: empty, videoToText: empty) }
    let weight = reduction == .sum ? 1 : 1 / Double(N - 1)
    var t2vLoss: Double = 0, v2tLoss: Double = 0, t2vCorrect = 0, v2tCorrect = 0
    for i in 0..<N {
        let positive = scores[i * N + i]
        var t2vBest = -Float.infinity, v2tBest = -Float.infinity
        for j in 0..<N where j != i {
            let m = margins.map { $0[i * N + j] } ?? margin
            let textToVideo = scores[i * N + j], videoToText = scores[j * N + i]
            t2vLoss += Double(max(m - positive + textToVideo, 0))
            v2tLoss += Double(max(m - positive + videoToText, 0))
            t2vBest = max(t2vBest, textToVideo)
            v2tBest = max(v2tBest, videoToText)
        }
        if positive > t2vBest { t2vCorrect += 1 }
        if positive > v2tBest { v2tCorrect += 1 }
    }
    let t2v = Float(t2vLoss * weight / Double(N)), v2t = Float(v2tLoss * weight / Double(N))
    return SymmetricContrastiveResult(loss: t2v + v2t,
                                      textToVideo: ContrastiveResult(loss: t2v, correct: t2vCorrect, count: N),
                                      videoToText: ContrastiveResult(loss: v2t, correct: v2tCorrect, count: N))
}

/// Backward of `rankingHingeForward` (active hinges recomputed from the scores): each active
/// term adds +w·dloss/N to its negative's score and −w·dloss/N to the positive s_ii. Nothing
/// flows into the margins (the stop-gradient of the variable-margin form).
/// - Parameters:
///   - dscores: [N, N] accumulated (+=).
///   - scores, margins, margin, reduction: as given to forward.
public func rankingHingeBackward(dscores: UnsafeMutablePointer<Float>, scores: UnsafePointer<Float>,
                                 margins: UnsafePointer<Float>?, margin: Float = 0.2,
                                 N: Int, reduction: NegativeReduction = .sum, dloss: Float = 1) {
    if N < 2 { return }
    let g = dloss / Float(N) * (reduction == .sum ? 1 : 1 / Float(N - 1))
    for i in 0..<N {
        let positive = scores[i * N + i]
        for j in 0..<N where j != i {
            let m = margins.map { $0[i * N + j] } ?? margin
            if m - positive + scores[i * N + j] > 0 {
                dscores[i * N + j] += g
                dscores[i * N + i] -= g
            }
            if m - positive + scores[j * N + i] > 0 {
                dscores[j * N + i] += g
                dscores[i * N + i] -= g
            }
        }
    }
}

/// The variable margins of image-bridged multimodal ranking: margins[i, j] = α · σ(−x_iᵀx_j), so a
/// negative j that already resembles anchor i (large x_iᵀx_j, a likely near-duplicate) is pushed
/// away by a smaller margin, an unrelated one by up to α (α/2 at x_iᵀx_j = 0). x is whatever
/// embedding the recipe bridges through (e.g. the anchors' own modality, L2-normalised). Forward
/// only, by design: the margin is a stop-gradient (torch: computed from `x.detach()`), so there is
/// no backward.
/// - Parameters:
///   - margins: [N, N] (written; the diagonal is computed but unused).
///   - x: [N, D].
///   - alpha: α, the largest margin.
public func variableMarginsForward(margins: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, N: Int, D: Int, alpha: Float) {
    pairwiseScoresForward(scores: margins, a: x, b: x, NA: N, NB: N, D: D, scale: 1)
    Parallel.forEachRange(N * N, grain: 16_384) { r in
        for i in r { margins[i] = alpha / (1 + Foundation.exp(margins[i])) }     // α·σ(−z) = α / (1 + e^z)
    }
}
