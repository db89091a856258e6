import Model
import Tensor

// Forward-only convolution for the backbones: NHWC activations (channels fastest, torch's
// `channels_last`), weights stored in the im2col patch order (kh, kw, c) with eval-mode
// BatchNorm folded in at load, so a conv → BN (→ + residual) (→ ReLU) is one product per chunk
// of output rows:
//
//     out[r, oc] = Σ_k col[r, k] · W[oc, k] + b[oc]  (+ residual[r, oc]),  r = (n·OH + oh)·OW + ow
//
// with col the im2col rows of Sources/Model/CBT/Convolution.swift (same (kh, kw, c) order); a 1×1
// stride-1 convolution needs no im2col (the NHWC input already is col). Threads as there: the
// output rows are cut into chunks handed to Parallel's workers, each running im2col → sgemm with
// OpenBLAS held to one thread, so the im2col chunk is still in cache when sgemm reads it.

/// A 2-D convolution (zero padding, dilation 1, groups 1) with its BatchNorm folded in.
public struct FoldedConv: Sendable {
    public let C, OC, KH, KW, stride, padding: Int
    /// [OC, KH·KW·C] in (kh, kw, c) order, scaled by γ/√(var + ε) per output channel.
    var weight: [Float]
    /// [OC]: β − mean·γ/√(var + ε) (+ the conv's own bias, scaled, when it has one).
    var bias: [Float]

    public var patch: Int { KH * KW * C }

    /// Folds eval-mode BatchNorm (torch `nn.BatchNorm2d`: y = (x − mean)/√(var + ε)·γ + β) into a
    /// convolution whose weight has PyTorch's layout [OC, C, KH, KW].
    public init(weight torchWeight: [Float], C: Int, OC: Int, KH: Int, KW: Int, stride: Int, padding: Int,
                gamma: [Float], beta: [Float], mean: [Float], variance: [Float], eps: Double = 1e-5) {
        (self.C, self.OC, self.KH, self.KW, self.stride, self.padding) = (C, OC, KH, KW, stride, padding)
        let K = KH * KW * C
        var w = [Float](repeating: 0, count: OC * K)
        var b = [Float](repeating: 0, count: OC)
        for oc in 0..<OC {
            let scale = Double(gamma[oc]) / (Double(variance[oc]) + eps).squareRoot()
            b[oc] = Float(Double(beta[oc]) - Double(mean[oc]) * scale)
            for c in 0..<C {
                for kh in 0..<KH {
                    for kw in 0..<KW {
                        w[oc * K + (kh * KW + kw) * C + c] = Float(Double(torchWeight[((oc * C + c) * KH + kh) * KW + kw]) * scale)
                    }
                }
            }
        }
        weight = w
        bias = b
    }

    public func outputSize(_ H: Int, _ W: Int) -> (Int, Int) {
        ((H + 2 * padding - KH) / stride + 1, (W + 2 * padding - KW) / stride + 1)
    }

    /// out [N, OH, OW, OC] = conv(inp [N, H, W, C]) + bias (+ residual [N, OH, OW, OC]) (ReLU).
    public func forward(_ inp: UnsafePointer<Float>, N: Int, H: Int, W: Int,
                        residual: UnsafePointer<Float>? = nil, relu: Bool,
                        out: UnsafeMutablePointer<Float>) {
        let (OH, OW) = outputSize(H, W)
        let M = N * OH * OW, K = patch
        guard M > 0 else { return }
        let direct = KH == 1 && KW == 1 && stride == 1 && padding == 0
        // Chunks of about 2¹⁹ floats of im2col (2 MB, cache-sized as in Convolution.swift), at
        // least 64 rows, and enough chunks to keep every worker busy.
        let lanes = Parallel.workers
        var rowsPerChunk = max(64, (1 << 19) / max(K, 1))
        rowsPerChunk = min(rowsPerChunk, max(16, (M + 2 * lanes - 1) / (2 * lanes)))
        let chunks = (M + rowsPerChunk - 1) / rowsPerChunk
        let colScratch = direct ? 0 : rowsPerChunk * K
        var scratch = [Float](repeating: 0, count: max(1, colScratch * min(lanes, chunks)))
        weight.withUnsafeBufferPointer { wb in
            bias.withUnsafeBufferPointer { bb in
                scratch.withUnsafeMutableBufferPointer { sb in
                    let w = wb.baseAddress!, b = bb.baseAddress!, s = sb.baseAddress!
                    let used = min(lanes, chunks)
                    Parallel.withSingleThreadedBLAS {
                        Parallel.concurrentPerform(used) { lane in
                            let col = s + lane * colScratch
                            for chunk in Swift.stride(from: lane, to: chunks, by: used) {
                                let r0 = chunk * rowsPerChunk, r1 = min(M, r0 + rowsPerChunk), rows = r1 - r0
                                let a: UnsafePointer<Float>
                                if direct {
                                    a = inp + r0 * C
                                } else {
                                    im2colRows(col: col, inp: inp, H: H, W: W, OH: OH, OW: OW, rows: r0..<r1)
                                    a = UnsafePointer(col)
                                }
                                let o = out + r0 * OC
                                if let residual {
                                    let res = residual + r0 * OC
                                    for r in 0..<rows {
                                        let orow = o + r * OC, rrow = res + r * OC
                                        for c in 0..<OC { orow[c] = rrow[c] + b[c] }
                                    }
                                } else {
                                    for r in 0..<rows { (o + r * OC).update(from: b, count: OC) }
                                }
                                BLAS.sgemm(transA: false, transB: true, m: rows, n: OC, k: K,
                                           a: a, lda: K, b: w, ldb: K, beta: 1, c: o, ldc: OC)
                                if relu {
                                    for i in 0..<(rows * OC) where o[i] < 0 { o[i] = 0 }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// col[r − r0, (kh·KW + kw)·C + c] = inp[n, oh·s − p + kh, ow·s − p + kw, c] for output rows
    /// r = (n·OH + oh)·OW + ow in `rows`; zero in the padding.
    func im2colRows(col: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, H: Int, W: Int, OH: Int, OW: Int, rows: Range<Int>) {
        let run = KW * C, K = patch, s = stride, p = padding
        var dst = col
        for r in rows {
            let n = r / (OH * OW), rem = r % (OH * OW), oh = rem / OW, ow = rem % OW
            let image = inp + n * H * W * C
            let iw0 = ow * s - p
            let inside = iw0 >= 0 && iw0 + KW <= W
            for kh in 0..<KH {
                let ih = oh * s - p + kh
                let d = dst + kh * run
                if ih < 0 || ih >= H {
                    d.update(repeating: 0, count: run)
                } else if inside {
                    d.update(from: image + (ih * W + iw0) * C, count: run)
                } else {
                    for kw in 0..<KW {
                        let iw = iw0 + kw
                        if iw < 0 || iw >= W {
                            (d + kw * C).update(repeating: 0, count: C)
                        } else {
                            (d + kw * C).update(from: image + (ih * W + iw) * C, count: C)
                        }
                    }
                }
            }
            dst += K
        }
    }
}

/// torch `nn.MaxPool2d(kernel, stride, padding)` over NHWC images (padding never wins: it is −∞).
func maxPool(_ inp: UnsafePointer<Float>, N: Int, H: Int, W: Int, C: Int, kernel: Int, stride: Int, padding: Int,
             out: UnsafeMutablePointer<Float>) -> (Int, Int) {
    let OH = (H + 2 * padding - kernel) / stride + 1, OW = (W + 2 * padding - kernel) / stride + 1
    Parallel.forEachRange(N * OH, grain: 8) { range in
        for row in range {
            let n = row / OH, oh = row % OH
            for ow in 0..<OW {
                let o = out + ((n * OH + oh) * OW + ow) * C
                o.update(repeating: -.infinity, count: C)
                for kh in 0..<kernel {
                    let ih = oh * stride - padding + kh
                    if ih < 0 || ih >= H { continue }
                    for kw in 0..<kernel {
                        let iw = ow * stride - padding + kw
                        if iw < 0 || iw >= W { continue }
                        let src = inp + ((n * H + ih) * W + iw) * C
                        for c in 0..<C where src[c] > o[c] { o[c] = src[c] }
                    }
                }
            }
        }
    }
    return (OH, OW)
}

/// out[n, c] = mean over the H·W positions of inp[n, ·, ·, c] (torch `adaptive_avg_pool2d(x, 1)`).
func globalAveragePool(_ inp: UnsafePointer<Float>, N: Int, HW: Int, C: Int, out: UnsafeMutablePointer<Float>) {
    for n in 0..<N {
        let o = out + n * C
        o.update(repeating: 0, count: C)
        for i in 0..<HW {
            let src = inp + (n * HW + i) * C
            for c in 0..<C { o[c] += src[c] }
        }
        let inv = 1 / Float(HW)
        for c in 0..<C { o[c] *= inv }
    }
}
