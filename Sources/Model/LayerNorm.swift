import Foundation

// LayerNorm (Ba et al. 2016) as torch.nn.LayerNorm over the last dimension: biased variance,
// eps inside the square root. BERT uses eps = 1e-12 (HF BertConfig.layer_norm_eps).
// The pair follows llm.c's layernorm_forward / layernorm_backward.
//
// Shape letters: N rows (B·T for hidden states), C features.

/// BERT's LayerNorm epsilon (HF `BertConfig.layer_norm_eps`).
public let bertLayerNormEps: Float = 1e-12

/// out[n,:] = (inp[n,:] − mean[n]) · rstd[n] · weight + bias, with rstd = 1/sqrt(var + eps).
/// - Parameters:
///   - out: [N, C] (written). May not alias `inp`.
///   - mean: [N] saved for backward (written).
///   - rstd: [N] saved for backward (written).
///   - inp: [N, C].
///   - weight: [C] gain (`LayerNorm.weight`).
///   - bias: [C] (`LayerNorm.bias`).
///   - eps: added to the variance (BERT: 1e-12).
public func layerNormForward(out: UnsafeMutablePointer<Float>,
                             mean: UnsafeMutablePointer<Float>,
                             rstd: UnsafeMutablePointer<Float>,
                             inp: UnsafePointer<Float>,
                             weight: UnsafePointer<Float>,
                             bias: UnsafePointer<Float>,
                             N: Int, C: Int, eps: Float = bertLayerNormEps) {
    Parallel.forEachRange(N, grain: max(1, 8_192 / max(C, 1))) { rows in
        for n in rows {
            let x = inp + n * C
            let m = vectorSum(x, C) / Float(C)
            let variance = vectorSumSquaredDeviation(x, m, C) / Float(C)
            let s = 1 / (variance + eps).squareRoot()
            let o = out + n * C
            for c in 0..<C { o[c] = (x[c] - m) * s * weight[c] + bias[c] }
            mean[n] = m
            rstd[n] = s
        }
    }
}

/// Backward of `layerNormForward`. With x̂ = (x − mean)·rstd and g = dout·weight:
/// dinp += rstd · (g − mean(g) − x̂ · mean(g · x̂)); dweight += Σₙ dout·x̂; dbias += Σₙ dout.
///
/// Two passes: rows in parallel for dinp, then columns in parallel for dweight/dbias (each column
/// summed over rows in order: deterministic on any number of threads).
/// - Parameters:
///   - dinp: [N, C] accumulated (+=), or overwritten when `accumulate` is false (saves zeroing
///     it). May not alias `dout`.
///   - dweight: [C] accumulated (+=).
///   - dbias: [C] accumulated (+=).
///   - dout: [N, C].
///   - inp: [N, C] the forward input.
///   - weight: [C].
///   - mean, rstd: [N] as saved by forward.
public func layerNormBackward(dinp: UnsafeMutablePointer<Float>,
                              dweight: UnsafeMutablePointer<Float>,
                              dbias: UnsafeMutablePointer<Float>,
                              dout: UnsafePointer<Float>,
                              inp: UnsafePointer<Float>,
                              weight: UnsafePointer<Float>,
                              mean: UnsafePointer<Float>,
                              rstd: UnsafePointer<Float>,
                              N: Int, C: Int, accumulate: Bool = true) {
    Parallel.forEachRange(N, grain: max(1, 4_096 / max(C, 1))) { rows in
        for n in rows {
            let x = inp + n * C, g = dout + n * C, d = dinp + n * C
            let m = mean[n], s = rstd[n]
            // mean(g·w) and mean(g·w·x̂) with 8-lane accumulators.
            var accG = Float8(), accGX = Float8()
            let mv = Float8(repeating: m), sv = Float8(repeating: s)
            var c = 0
            while c + 8 <= C {
                let gw = load8(g + c) * load8(weight + c)
                accG += gw
                accGX += gw * (load8(x + c) - mv) * sv
                c += 8
            }
            var gMean = accG.sum(), gxMean = accGX.sum()
            while c < C {
                let gw = g[c] * weight[c]
                gMean += gw
                gxMean += gw * (x[c] - m) * s
                c += 1
            }
            gMean /= Float(C)
            gxMean /= Float(C)
            if accumulate {
                for c in 0..<C {
                    let xhat = (x[c] - m) * s
                    d[c] += (g[c] * weight[c] - gMean - xhat * gxMean) * s
                }
            } else {
                for c in 0..<C {
                    let xhat = (x[c] - m) * s
                    d[c] = (g[c] * weight[c] - gMean - xhat * gxMean) * s
                }
            }
        }
    }
    let columnGrain = Parallel.columnGrain(rows: N, columns: C)
    Parallel.forEachRange(C, grain: columnGrain) { columns in
        let c0 = columns.lowerBound, width = columns.count
        for n in 0..<N {
            let x = inp + n * C + c0, g = dout + n * C + c0
            let db = dbias + c0, dw = dweight + c0
            let m = mean[n], s = rstd[n]
            for c in 0..<width {
                db[c] += g[c]
                dw[c] += g[c] * (x[c] - m) * s
            }
        }
    }
}
