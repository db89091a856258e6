import Foundation
import Tensor

// Multi-head scaled dot-product self-attention (Vaswani et al. 2017, §3.2.2) with BERT's padding
// mask, matching HF BertSelfAttention (eager): scores = Q·Kᵀ · 1/sqrt(HS), plus the "extended
// attention mask" (1 − mask) · torch.finfo(float32).min on padded key positions, softmax over
// keys, dropout on the probabilities (attention_probs_dropout_prob), then · V.
//
// Q, K and V come from ONE fused projection: `linearForward(out: qkv, inp: x, weight: Wqkv,
// bias: bqkv, N: B·T, C: C, OC: 3·C)` with
//     Wqkv [3C, C] = [query.weight; key.weight; value.weight]   (rows stacked)
//     bqkv [3C]    = [query.bias;   key.bias;   value.bias]
// Storing HF's separate query/key/value tensors back to back in the ParameterStore (weights
// together, then biases together) makes this stacking free (`ParameterStore.contiguous`), and
// each tensor keeps its Hugging Face name in checkpoints. Head h uses columns h·HS..<(h+1)·HS
// of each of Q, K and V, as HF's `view(B, T, NH, HS)`.
//
// Per (batch, head) the work is two small sgemms forward and four backward, run on the
// concurrentPerform workers with single-threaded OpenBLAS (docs/ARCHITECTURE.md §8: never oversubscribe).
// The T×T probabilities are saved; the pre-softmax scores are not (backward needs only P).
// Keys after a sequence's last real token are left out of the products (their probability is
// exactly 0 either way), so padded batches cost in proportion to their real lengths.
//
// Shape letters: B batch, T sequence length, C hidden, NH heads, HS = C / NH head size.

/// HF's additive mask value: torch.finfo(torch.float32).min.
public let attentionMaskValue: Float = -Float.greatestFiniteMagnitude

/// Forward of multi-head self-attention over a fused QKV projection.
/// - Parameters:
///   - out: [B, T, C] context vectors, heads concatenated (written).
///   - att: [B, NH, T, T] softmax probabilities, before dropout (written, saved for backward).
///   - qkv: [B, T, 3C] the fused projection: Q in columns 0..<C, K in C..<2C, V in 2C..<3C.
///   - mask: [B, T] HF `attention_mask` as floats: 1 = real token, 0 = padding (a key position
///     that no query attends to). nil = attend everywhere.
///   - dropout: attention-probability dropout p (BERT: 0.1 in training); 0 in evaluation.
///   - seed: the dropout mask's seed (one per call site and step, see `dropoutSeed`).
///   - scratch: [B, NH, T, T] workspace, required when dropout > 0 (can be shared by all
///     layers, e.g. with `attentionBackward`'s scratch).
public func attentionForward(out: UnsafeMutablePointer<Float>,
                             att: UnsafeMutablePointer<Float>,
                             qkv: UnsafePointer<Float>,
                             mask: UnsafePointer<Float>?,
                             B: Int, T: Int, C: Int, NH: Int,
                             dropout: Float = 0, seed: UInt64 = 0,
                             scratch: UnsafeMutablePointer<Float>? = nil) {
    precondition(NH > 0 && C % NH == 0, "hidden size \(C) is not a multiple of the head count \(NH)")
    precondition(dropout >= 0 && dropout < 1, "attention dropout must be in [0, 1)")
    precondition(dropout == 0 || scratch != nil, "attention dropout needs a scratch buffer")
    let HS = C / NH, C3 = 3 * C, TT = T * T
    let scale = 1 / Float(HS).squareRoot()
    Parallel.withSingleThreadedBLAS {
        Parallel.concurrentPerform(B * NH) { bh in
            let b = bh / NH, h = bh % NH
            let q = qkv + b * T * C3 + h * HS, k = q + C, v = q + 2 * C
            let p = att + bh * TT
            let keys = attendedKeyCount(mask, b: b, T: T)
            // p[i, j] = scale · q_i · k_j for the keys up to the last real token
            BLAS.sgemm(transA: false, transB: true, m: T, n: keys, k: HS, alpha: scale,
                       a: q, lda: C3, b: k, ldb: C3, beta: 0, c: p, ldc: T)
            for i in 0..<T {
                let row = p + i * T
                if let mask {
                    let m = mask + b * T
                    for j in 0..<keys { row[j] += (1 - m[j]) * attentionMaskValue }
                }
                softmaxInPlace(row, keys)
                // Trailing padded keys: exactly the 0 that exp(finfo.min − max) gives.
                (row + keys).update(repeating: 0, count: T - keys)
            }
            var probs = UnsafePointer(p)
            if dropout > 0 {
                let dropped = scratch! + bh * TT
                var rng = SeededRNG(seed: seed, stream: UInt64(bh))
                applyDropoutMask(out: dropped, inp: p, count: TT, p: dropout, rng: &rng)
                probs = UnsafePointer(dropped)
            }
            // out[b, :, h·HS..<(h+1)·HS] = probs · v
            BLAS.sgemm(transA: false, transB: false, m: T, n: HS, k: keys,
                       a: probs, lda: T, b: v, ldb: C3, beta: 0, c: out + b * T * C + h * HS, ldc: C)
        }
    }
}

/// Keys that can receive attention in sequence b: up to the last real token. Trailing padding
/// (the usual layout) is skipped by the products; padding before it goes through the additive
/// mask. A sequence with no real token keeps all T keys, so that, as in HF, its queries attend
/// uniformly (every score is finfo.min) instead of dividing by zero.
@inline(__always)
func attendedKeyCount(_ mask: UnsafePointer<Float>?, b: Int, T: Int) -> Int {
    guard let mask else { return T }
    let m = mask + b * T
    var keys = T
    while keys > 0 && m[keys - 1] == 0 { keys -= 1 }
    return keys == 0 ? T : keys
}

/// Backward of `attentionForward` (read in reverse): with P the saved probabilities, P' = dropout(P),
/// dV += P'ᵀ·dO; dP = dropout'(dO·Vᵀ); dS = P ⊙ (dP − rowsum(dP ⊙ P)); dQ += scale·dS·K; dK += scale·dSᵀ·Q.
/// Masked keys have P = 0, hence zero gradient.
/// - Parameters:
///   - dqkv: [B, T, 3C] accumulated (+=).
///   - scratch: [B, NH, T, T] workspace (overwritten).
///   - dout: [B, T, C] gradient of the context vectors.
///   - qkv: [B, T, 3C] the forward input.
///   - att: [B, NH, T, T] the probabilities saved by forward.
///   - mask: [B, T] as given to forward (only its trailing padding is used, to skip those keys).
///   - dropout, seed: exactly as given to forward (the mask is regenerated, not stored).
public func attentionBackward(dqkv: UnsafeMutablePointer<Float>,
                              scratch: UnsafeMutablePointer<Float>,
                              dout: UnsafePointer<Float>,
                              qkv: UnsafePointer<Float>,
                              att: UnsafePointer<Float>,
                              mask: UnsafePointer<Float>?,
                              B: Int, T: Int, C: Int, NH: Int,
                              dropout: Float = 0, seed: UInt64 = 0) {
    precondition(NH > 0 && C % NH == 0, "hidden size \(C) is not a multiple of the head count \(NH)")
    let HS = C / NH, C3 = 3 * C, TT = T * T
    let scale = 1 / Float(HS).squareRoot()
    Parallel.withSingleThreadedBLAS {
        Parallel.concurrentPerform(B * NH) { bh in
            let b = bh / NH, h = bh % NH
            let q = qkv + b * T * C3 + h * HS, k = q + C, v = q + 2 * C
            let dq = dqkv + b * T * C3 + h * HS, dk = dq + C, dv = dq + 2 * C
            let dO = dout + b * T * C + h * HS
            let p = att + bh * TT
            let s = scratch + bh * TT
            let keys = attendedKeyCount(mask, b: b, T: T)
            if dropout > 0 {
                var rng = SeededRNG(seed: seed, stream: UInt64(bh))
                applyDropoutMask(out: s, inp: p, count: TT, p: dropout, rng: &rng)
                // dV += P'ᵀ · dO  (rows of the attended keys)
                BLAS.sgemm(transA: true, transB: false, m: keys, n: HS, k: T,
                           a: s, lda: T, b: dO, ldb: C, beta: 1, c: dv, ldc: C3)
                // dP' = dO · Vᵀ, then through the same mask: dP = dP' ⊙ keep / (1 − p)
                BLAS.sgemm(transA: false, transB: true, m: T, n: keys, k: HS,
                           a: dO, lda: C, b: v, ldb: C3, beta: 0, c: s, ldc: T)
                var again = SeededRNG(seed: seed, stream: UInt64(bh))
                applyDropoutMask(out: s, inp: s, count: TT, p: dropout, rng: &again)
            } else {
                BLAS.sgemm(transA: true, transB: false, m: keys, n: HS, k: T,
                           a: p, lda: T, b: dO, ldb: C, beta: 1, c: dv, ldc: C3)
                BLAS.sgemm(transA: false, transB: true, m: T, n: keys, k: HS,
                           a: dO, lda: C, b: v, ldb: C3, beta: 0, c: s, ldc: T)
            }
            // Softmax backward, row by row: dS = P ⊙ (dP − Σⱼ dP ⊙ P) over the attended keys
            // (columns beyond them are never read).
            for i in 0..<T {
                let pr = p + i * T, sr = s + i * T
                let dot = vectorDot(pr, sr, keys)
                for j in 0..<keys { sr[j] = pr[j] * (sr[j] - dot) }
            }
            // dQ += scale · dS · K;  dK += scale · dSᵀ · Q
            BLAS.sgemm(transA: false, transB: false, m: T, n: HS, k: keys, alpha: scale,
                       a: s, lda: T, b: k, ldb: C3, beta: 1, c: dq, ldc: C3)
            BLAS.sgemm(transA: true, transB: false, m: keys, n: HS, k: T, alpha: scale,
                       a: s, lda: T, b: q, ldb: C3, beta: 1, c: dk, ldc: C3)
        }
    }
}

/// row ← softmax(row), subtracting the maximum first (vectorized exp, see `exp8`).
@inline(__always)
func softmaxInPlace(_ row: UnsafeMutablePointer<Float>, _ n: Int) {
    let m = vectorMax(row, n)
    let mv = Float8(repeating: m)
    var acc = Float8()
    var j = 0
    while j + 8 <= n {
        let e = exp8(load8(row + j) - mv)
        store8(e, row + j)
        acc += e
        j += 8
    }
    var sum = acc.sum()
    while j < n {
        let e = exp1(row[j] - m)
        row[j] = e
        sum += e
        j += 1
    }
    let inv = 1 / sum
    for j in 0..<n { row[j] *= inv }
}
