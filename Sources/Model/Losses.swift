import Foundation

// Heads compute logits only at the selected (masked) positions (VideoBERT/BERT MLM and MFM:
// 15% of tokens), never over every position: gather those hidden rows, run the head on [M, C],
// then a softmax cross-entropy over the M rows. The alignment head is a two-way classifier on
// the pooled [CLS] (BERT's next-sentence head): the same cross-entropy with V = 2, over the rows
// of the examples that take part (text+video ones), or a single-logit binary cross-entropy.
//
// Shape letters: N rows available, M rows selected, C hidden, V classes (vocabulary).

// MARK: - Gather / scatter rows

/// out[m, :] = inp[rows[m], :].
/// - Parameters:
///   - out: [M, C] (written).
///   - inp: [N, C] e.g. the final hidden states [B·T, C].
///   - rows: [M] row indices into inp, each in 0..<N (e.g. b·T + t of each masked position).
public func gatherRowsForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, rows: UnsafePointer<Int32>, M: Int, C: Int) {
    Parallel.forEachRange(M, grain: max(1, 32_768 / max(C, 1))) { r in
        for m in r { (out + m * C).update(from: inp + Int(rows[m]) * C, count: C) }
    }
}

/// dinp[rows[m], :] += dout[m, :] (repeated rows add up; columns split across workers, rows in
/// order: deterministic). Rows of dinp not selected are untouched.
/// - Parameters:
///   - dinp: [N, C] accumulated (+=).
///   - dout: [M, C].
///   - rows: [M] as given to forward.
public func gatherRowsBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, rows: UnsafePointer<Int32>, M: Int, C: Int) {
    let columnGrain = Parallel.columnGrain(rows: M, columns: C)
    Parallel.forEachRange(C, grain: columnGrain) { columns in
        let c0 = columns.lowerBound, width = columns.count
        for m in 0..<M {
            let d = dinp + Int(rows[m]) * C + c0, g = dout + m * C + c0
            for c in 0..<width { d[c] += g[c] }
        }
    }
}

// MARK: - Softmax cross-entropy over selected rows

/// Mean over the M selected rows of −log softmax(logits[row])[target] (torch
/// `F.cross_entropy(logits[rows], targets)`). Returns the mean loss (0 when M = 0).
/// - Parameters:
///   - losses: [M] per-row losses (written).
///   - probs: [M, V] softmax of each selected row (written, saved for backward). May be the
///     same memory as `logits` when `rows` is nil (softmax in place).
///   - logits: [N, V].
///   - rows: [M] distinct row indices into logits, or nil for rows 0..<M.
///   - targets: [M] class ids, each in 0..<V.
public func softmaxCrossEntropyForward(losses: UnsafeMutablePointer<Float>,
                                       probs: UnsafeMutablePointer<Float>,
                                       logits: UnsafePointer<Float>,
                                       rows: UnsafePointer<Int32>?,
                                       targets: UnsafePointer<Int32>,
                                       M: Int, V: Int) -> Float {
    Parallel.forEachRange(M, grain: max(1, 16_384 / max(V, 1))) { r in
        for m in r {
            let row = logits + (rows.map { Int($0[m]) } ?? m) * V
            let p = probs + m * V
            let target = Int(targets[m])
            precondition(target >= 0 && target < V, "cross-entropy target \(target) outside 0..<\(V)")
            // Read before the loop: with probs == logits (in place) the row is overwritten.
            let targetLogit = Double(row[target])
            let mx = vectorMax(row, V)
            // Sum in Double across vectors: V reaches 50k (text + visual words).
            let mv = Float8(repeating: mx)
            var sum: Double = 0
            var v = 0
            while v + 8 <= V {
                let e = exp8(load8(row + v) - mv)
                store8(e, p + v)
                sum += Double(e.sum())
                v += 8
            }
            while v < V {
                let e = exp1(row[v] - mx)
                p[v] = e
                sum += Double(e)
                v += 1
            }
            let inv = Float(1 / sum)
            let logSumExp = Double(mx) + Foundation.log(sum)
            losses[m] = Float(logSumExp - targetLogit)
            for v in 0..<V { p[v] *= inv }
        }
    }
    if M == 0 { return 0 }
    var total: Double = 0
    for m in 0..<M { total += Double(losses[m]) }
    return Float(total / Double(M))
}

/// dlogits[row, :] += (probs[m, :] − onehot(targets[m])) · dloss / M: the gradient of the mean loss.
/// - Parameters:
///   - dlogits: [N, V] accumulated (+=) in the selected rows only; distinct from `probs`
///     (for the in-place form see `softmaxCrossEntropyBackwardInPlace`).
///   - probs: [M, V] as saved by forward.
///   - rows: [M] as given to forward.
///   - targets: [M].
///   - dloss: gradient of the returned mean loss (1, or a loss weight).
public func softmaxCrossEntropyBackward(dlogits: UnsafeMutablePointer<Float>,
                                        probs: UnsafePointer<Float>,
                                        rows: UnsafePointer<Int32>?,
                                        targets: UnsafePointer<Int32>,
                                        M: Int, V: Int, dloss: Float = 1) {
    if M == 0 { return }
    let scale = dloss / Float(M)
    Parallel.forEachRange(M, grain: max(1, 16_384 / max(V, 1))) { r in
        for m in r {
            let d = dlogits + (rows.map { Int($0[m]) } ?? m) * V
            let p = probs + m * V
            for v in 0..<V { d[v] += p[v] * scale }
            d[Int(targets[m])] -= scale
        }
    }
}

/// The gradient of the mean loss written OVER the probabilities (not accumulated):
/// probs[m, :] ← (probs[m, :] − onehot(targets[m])) · dloss / M.
/// Saves two [M, V] buffers in the MLM/MFM heads (V ≈ 50k): forward with `probs` = `logits`
/// (rows nil), then this turns the same buffer into dlogits for the decoder's `linearBackward`.
/// - Parameters:
///   - probs: [M, V] softmax rows as saved by forward (overwritten with dlogits).
///   - targets: [M].
public func softmaxCrossEntropyBackwardInPlace(probs: UnsafeMutablePointer<Float>,
                                               targets: UnsafePointer<Int32>,
                                               M: Int, V: Int, dloss: Float = 1) {
    if M == 0 { return }
    let scale = dloss / Float(M)
    Parallel.forEachRange(M, grain: max(1, 16_384 / max(V, 1))) { r in
        for m in r {
            let p = probs + m * V
            for v in 0..<V { p[v] *= scale }
            p[Int(targets[m])] -= scale
        }
    }
}

// MARK: - Accuracy

/// Number of selected rows whose target is among the k highest scores: fewer than k classes
/// score strictly higher than the target (ties count in the target's favour). k = 1 is accuracy.
/// - Parameters:
///   - scores: [N, V] logits or probabilities (the order is what counts).
///   - rows: [M] row indices into scores, or nil for 0..<M.
///   - targets: [M].
public func topKCorrect(scores: UnsafePointer<Float>, rows: UnsafePointer<Int32>?, targets: UnsafePointer<Int32>,
                        M: Int, V: Int, k: Int) -> Int {
    var correct = 0
    for m in 0..<M {
        let row = scores + (rows.map { Int($0[m]) } ?? m) * V
        let t = row[Int(targets[m])]
        var higher = 0
        for v in 0..<V where row[v] > t { higher += 1 }
        if higher < k { correct += 1 }
    }
    return correct
}

/// out[m] = argmax over v of scores[row m, v] (the first on ties, as torch.argmax).
/// - Parameters:
///   - out: [M] (written).
///   - scores: [N, V].
///   - rows: [M] or nil for 0..<M.
public func argmaxRows(out: UnsafeMutablePointer<Int32>, scores: UnsafePointer<Float>, rows: UnsafePointer<Int32>?, M: Int, V: Int) {
    for m in 0..<M {
        let row = scores + (rows.map { Int($0[m]) } ?? m) * V
        var best = 0
        for v in 1..<max(V, 1) where row[v] > row[best] { best = v }
        out[m] = Int32(best)
    }
}

// MARK: - Binary cross-entropy on one logit

/// Mean over M rows of torch's `binary_cross_entropy_with_logits`:
/// max(x, 0) − x·y + log(1 + exp(−|x|)). Returns the mean (0 when M = 0).
/// - Parameters:
///   - losses: [M] per-row losses (written).
///   - logits: [N] one logit per row.
///   - rows: [M] indices into logits, or nil for 0..<M.
///   - targets: [M] labels in [0, 1] (1 = aligned).
public func binaryCrossEntropyForward(losses: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>,
                                      rows: UnsafePointer<Int32>?, targets: UnsafePointer<Float>, M: Int) -> Float {
    if M == 0 { return 0 }
    var total: Double = 0
    for m in 0..<M {
        let x = logits[rows.map { Int($0[m]) } ?? m], y = targets[m]
        let loss = max(x, 0) - x * y + Foundation.log1p(Foundation.exp(-abs(x)))
        losses[m] = loss
        total += Double(loss)
    }
    return Float(total / Double(M))
}

/// dlogits[row] += (σ(x) − y) · dloss / M.
/// - Parameters:
///   - dlogits: [N] accumulated (+=) at the selected rows.
///   - logits: [N] the forward input.
///   - rows, targets: as given to forward.
public func binaryCrossEntropyBackward(dlogits: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>,
                                       rows: UnsafePointer<Int32>?, targets: UnsafePointer<Float>, M: Int, dloss: Float = 1) {
    if M == 0 { return }
    let scale = dloss / Float(M)
    for m in 0..<M {
        let i = rows.map { Int($0[m]) } ?? m
        let sigmoid = 1 / (1 + Foundation.exp(-logits[i]))
        dlogits[i] += (sigmoid - targets[m]) * scale
    }
}
