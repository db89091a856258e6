import Foundation
import Model
import Tensor

// Forward-only 3-D convolution and pooling for the video backbones (S3D.swift): activations are
// NTHWC (channels fastest, torch's `channels_last_3d`), weights stored in the vol2col patch order
// (kt, kh, kw, c) with eval-mode BatchNorm folded in at load, as the 2-D FoldedConv of Conv.swift:
//
//     out[r, oc] = Σ_k col[r, k] · W[oc, k] + b[oc],   r = ((n·OT + ot)·OH + oh)·OW + ow
//
// Three ways to build the product, chosen per layer shape:
// - 1×1×1, stride 1, no padding: the NTHWC input already is col (one sgemm per chunk of rows);
// - temporal only (kt×1×1, spatial stride 1, no spatial padding: the second half of S3D's
//   separable convolutions): no copy at all, out[n, ot] = Σ_kt in[n, ot·st − pt + kt] · W_ktᵀ, one
//   accumulating sgemm per tap over a whole frame's H·W rows;
// - anything else: vol2col of a chunk of output rows into a cache-sized scratch, then sgemm.
// Output rows are cut into chunks handed to Parallel's workers with OpenBLAS held to one thread,
// as in Conv.swift. The output may be a channel slice of a wider tensor (`outStride` ≥ OC), so an
// Inception block's four branches write straight into their concatenation.

/// A 3-D convolution (zero padding, dilation 1, groups 1) with its BatchNorm folded in.
public struct FoldedConv3d: Sendable {
    public let C, OC: Int
    /// Kernel, stride, low and high padding per dimension (t, h, w).
    public let kernel, stride, padLow, padHigh: [Int]
    /// [OC, KT·KH·KW·C] in (kt, kh, kw, c) order, scaled by γ/√(var + ε) per output channel.
    var weight: [Float]
    /// [OC]: β − mean·γ/√(var + ε).
    var bias: [Float]

    public var patch: Int { kernel[0] * kernel[1] * kernel[2] * C }

    /// Folds eval-mode BatchNorm (torch `nn.BatchNorm3d`: y = (x − mean)/√(var + ε)·γ + β) into a
    /// bias-free convolution whose weight has PyTorch's layout [OC, C, KT, KH, KW]. `padHigh`
    /// defaults to `padding` (torch's symmetric padding).
    public init(weight torchWeight: [Float], C: Int, OC: Int, kernel: [Int], stride: [Int], padding: [Int], padHigh: [Int]? = nil,
                gamma: [Float], beta: [Float], mean: [Float], variance: [Float], eps: Double) {
        precondition(kernel.count == 3 && stride.count == 3 && padding.count == 3)
        (self.C, self.OC, self.kernel, self.stride, self.padLow, self.padHigh) = (C, OC, kernel, stride, padding, padHigh ?? padding)
        let (KT, KH, KW) = (kernel[0], kernel[1], kernel[2])
        let K = KT * KH * KW * C
        guard !torchWeight.isEmpty else {   // a placeholder that only has the geometry (S3D.stateDictShapes)
            (weight, bias) = ([], [])
            return
        }
        var w = [Float](repeating: 0, count: OC * K)
        var b = [Float](repeating: 0, count: OC)
        for oc in 0..<OC {
            let scale = Double(gamma[oc]) / (Double(variance[oc]) + eps).squareRoot()
            b[oc] = Float(Double(beta[oc]) - Double(mean[oc]) * scale)
            for c in 0..<C {
                for kt in 0..<KT {
                    for kh in 0..<KH {
                        for kw in 0..<KW {
                            let src = (((oc * C + c) * KT + kt) * KH + kh) * KW + kw
                            w[oc * K + ((kt * KH + kh) * KW + kw) * C + c] = Float(Double(torchWeight[src]) * scale)
                        }
                    }
                }
            }
        }
        weight = w
        bias = b
    }

    public func outputSize(_ T: Int, _ H: Int, _ W: Int) -> (Int, Int, Int) {
        func o(_ d: Int, _ L: Int) -> Int { (L + padLow[d] + padHigh[d] - kernel[d]) / stride[d] + 1 }
        return (o(0, T), o(1, H), o(2, W))
    }

    var isPointwise: Bool { kernel == [1, 1, 1] && stride == [1, 1, 1] && padLow == [0, 0, 0] && padHigh == [0, 0, 0] }
    var isTemporal: Bool {
        kernel[1] == 1 && kernel[2] == 1 && stride[1] == 1 && stride[2] == 1 && padLow[1] == 0 && padLow[2] == 0 && padHigh[1] == 0 && padHigh[2] == 0
    }

    /// out [N, OT, OH, OW, outStride] (channels [0, OC) of each row) = conv(inp [N, T, H, W, C]) + bias (ReLU).
    public func forward(_ inp: UnsafePointer<Float>, N: Int, T: Int, H: Int, W: Int, relu: Bool,
                        out: UnsafeMutablePointer<Float>, outStride: Int? = nil) {
        let ldo = outStride ?? OC
        let (OT, OH, OW) = outputSize(T, H, W)
        guard N > 0, OT > 0, OH > 0, OW > 0 else { return }
        if isTemporal && !isPointwise {
            forwardTemporal(inp, N: N, T: T, HW: H * W, OT: OT, relu: relu, out: out, ldo: ldo)
            return
        }
        let M = N * OT * OH * OW, K = patch
        let direct = isPointwise
        let lanes = Parallel.workers
        var rowsPerChunk = max(64, (1 << 19) / max(K, 1))
        rowsPerChunk = min(rowsPerChunk, max(16, (M + 2 * lanes - 1) / (2 * lanes)))
        let chunks = (M + rowsPerChunk - 1) / rowsPerChunk
        let colScratch = direct ? 0 : rowsPerChunk * K
        let used = min(lanes, chunks)
        var scratch = [Float](repeating: 0, count: max(1, colScratch * used))
        weight.withUnsafeBufferPointer { wb in
            bias.withUnsafeBufferPointer { bb in
                scratch.withUnsafeMutableBufferPointer { sb in
                    let w = wb.baseAddress!, b = bb.baseAddress!, s = sb.baseAddress!
                    Parallel.withSingleThreadedBLAS {
                        Parallel.concurrentPerform(used) { lane in
                            let col = s + lane * colScratch
                            for chunk in Swift.stride(from: lane, to: chunks, by: used) {
                                let r0 = chunk * rowsPerChunk, r1 = min(M, r0 + rowsPerChunk), rows = r1 - r0
                                let a: UnsafePointer<Float>
                                if direct {
                                    a = inp + r0 * C
                                } else {
                                    vol2colRows(col: col, inp: inp, T: T, H: H, W: W, OT: OT, OH: OH, OW: OW, rows: r0..<r1)
                                    a = UnsafePointer(col)
                                }
                                let o = out + r0 * ldo
                                for r in 0..<rows { (o + r * ldo).update(from: b, count: OC) }
                                BLAS.sgemm(transA: false, transB: true, m: rows, n: OC, k: K,
                                           a: a, lda: K, b: w, ldb: K, beta: 1, c: o, ldc: ldo)
                                if relu { Self.relu(o, rows: rows, columns: OC, stride: ldo) }
                            }
                        }
                    }
                }
            }
        }
    }

    static func relu(_ o: UnsafeMutablePointer<Float>, rows: Int, columns: Int, stride: Int) {
        for r in 0..<rows {
            let row = o + r * stride
            for c in 0..<columns where row[c] < 0 { row[c] = 0 }
        }
    }

    /// The temporal-only case: for each output frame, one accumulating sgemm per kernel tap that
    /// lands inside the input (taps in the padding contribute zero), over chunks of the frame's rows.
    func forwardTemporal(_ inp: UnsafePointer<Float>, N: Int, T: Int, HW: Int, OT: Int, relu: Bool,
                         out: UnsafeMutablePointer<Float>, ldo: Int) {
        let KT = kernel[0], st = stride[0], pt = padLow[0], K = patch
        let lanes = Parallel.workers
        let rowsPerPiece = max(64, min(HW, (HW * N * OT + 2 * lanes - 1) / (2 * lanes)))
        let piecesPerFrame = (HW + rowsPerPiece - 1) / rowsPerPiece
        let pieces = N * OT * piecesPerFrame
        weight.withUnsafeBufferPointer { wb in
            bias.withUnsafeBufferPointer { bb in
                let w = wb.baseAddress!, b = bb.baseAddress!
                Parallel.withSingleThreadedBLAS {
                    Parallel.concurrentPerform(min(lanes, pieces)) { lane in
                        for piece in Swift.stride(from: lane, to: pieces, by: min(lanes, pieces)) {
                            let frame = piece / piecesPerFrame, part = piece % piecesPerFrame
                            let n = frame / OT, ot = frame % OT
                            let r0 = part * rowsPerPiece, rows = min(HW, r0 + rowsPerPiece) - r0
                            let o = out + ((n * OT + ot) * HW + r0) * ldo
                            for r in 0..<rows { (o + r * ldo).update(from: b, count: OC) }
                            for kt in 0..<KT {
                                let it = ot * st - pt + kt
                                guard it >= 0 && it < T else { continue }
                                BLAS.sgemm(transA: false, transB: true, m: rows, n: OC, k: C,
                                           a: inp + ((n * T + it) * HW + r0) * C, lda: C, b: w + kt * C, ldb: K,
                                           beta: 1, c: o, ldc: ldo)
                            }
                            if relu { Self.relu(o, rows: rows, columns: OC, stride: ldo) }
                        }
                    }
                }
            }
        }
    }

    /// col[r − r0, ((kt·KH + kh)·KW + kw)·C + c] = inp[n, ot·st − pt + kt, oh·sh − ph + kh, ow·sw − pw + kw, c]
    /// for output rows r in `rows`; zero in the padding.
    func vol2colRows(col: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, T: Int, H: Int, W: Int,
                     OT: Int, OH: Int, OW: Int, rows: Range<Int>) {
        let (KT, KH, KW) = (kernel[0], kernel[1], kernel[2])
        let run = KW * C, K = patch
        var dst = col
        for r in rows {
            let ow = r % OW, oh = (r / OW) % OH, ot = (r / (OW * OH)) % OT, n = r / (OW * OH * OT)
            let video = inp + n * T * H * W * C
            let iw0 = ow * stride[2] - padLow[2]
            let inside = iw0 >= 0 && iw0 + KW <= W
            for kt in 0..<KT {
                let it = ot * stride[0] - padLow[0] + kt
                for kh in 0..<KH {
                    let ih = oh * stride[1] - padLow[1] + kh
                    let d = dst + (kt * KH + kh) * run
                    if it < 0 || it >= T || ih < 0 || ih >= H {
                        d.update(repeating: 0, count: run)
                    } else if inside {
                        d.update(from: video + ((it * H + ih) * W + iw0) * C, count: run)
                    } else {
                        for kw in 0..<KW {
                            let iw = iw0 + kw
                            if iw < 0 || iw >= W {
                                (d + kw * C).update(repeating: 0, count: C)
                            } else {
                                (d + kw * C).update(from: video + ((it * H + ih) * W + iw) * C, count: C)
                            }
                        }
                    }
                }
            }
            dst += K
        }
    }
}

/// The geometry of a 3-D max pool, per dimension (t, h, w): torch `nn.MaxPool3d(kernel, stride,
/// padding, ceil_mode)` (implicit padding never wins: it is −∞; with `ceilMode` the last window
/// may hang over the end, and a window starting in the high padding is dropped, as torch's
/// `pooling_output_shape`), optionally after explicit zero padding `zeroLow`/`zeroHigh` (the
/// `ConstantPad3d(…, 0)` of MIL-NCE's TF-"SAME" max pool, s3dg.py `MaxPool3dTFPadding`).
public struct MaxPool3dSpec: Sendable, Equatable {
    public var kernel, stride, padding: [Int]
    public var ceilMode = false
    public var zeroLow = [0, 0, 0], zeroHigh = [0, 0, 0]

    public init(kernel: [Int], stride: [Int], padding: [Int] = [0, 0, 0], ceilMode: Bool = false) {
        (self.kernel, self.stride, self.padding, self.ceilMode) = (kernel, stride, padding, ceilMode)
    }

    /// TensorFlow's "SAME" padding as s3dg.py `MaxPool3dTFPadding._get_padding_shape` computes it
    /// (zeros: pad_along = max(k − s, 0), low = pad_along / 2, high = the rest), then
    /// `MaxPool3d(kernel, stride, ceil_mode=True)`. (That function hands its (h, w, t) list to
    /// ConstantPad3d, which reads it as (w, h, t): the same here, where h and w always agree.)
    public static func tfSame(kernel: [Int], stride: [Int]) -> MaxPool3dSpec {
        var s = MaxPool3dSpec(kernel: kernel, stride: stride, ceilMode: true)
        for d in 0..<3 {
            let along = max(kernel[d] - stride[d], 0)
            s.zeroLow[d] = along / 2
            s.zeroHigh[d] = along - along / 2
        }
        return s
    }

    /// Output length along dimension d for an input of length L.
    public func outputLength(_ d: Int, _ L: Int) -> Int {
        let ext = L + zeroLow[d] + zeroHigh[d], p = padding[d], k = kernel[d], s = stride[d]
        let span = ext + 2 * p - k
        guard span >= 0 else { return 0 }
        var o = (ceilMode ? (span + s - 1) / s : span / s) + 1
        if ceilMode && (o - 1) * s >= ext + p { o -= 1 }
        return o
    }

    public func outputSize(_ T: Int, _ H: Int, _ W: Int) -> (Int, Int, Int) {
        (outputLength(0, T), outputLength(1, H), outputLength(2, W))
    }

    /// out [N, OT, OH, OW, C] = max pool of inp [N, T, H, W, C].
    public func forward(_ inp: UnsafePointer<Float>, N: Int, T: Int, H: Int, W: Int, C: Int, out: UnsafeMutablePointer<Float>) {
        let (OT, OH, OW) = outputSize(T, H, W)
        let dims = [T, H, W]
        // The window along d for output o, in input coordinates, and whether it touches explicit zeros.
        func window(_ d: Int, _ o: Int) -> (lo: Int, hi: Int, zero: Bool) {
            let ext = dims[d] + zeroLow[d] + zeroHigh[d]
            let start = max(o * stride[d] - padding[d], 0), end = min(o * stride[d] - padding[d] + kernel[d], ext)
            let lo = max(start - zeroLow[d], 0), hi = min(end - zeroLow[d], dims[d])
            return (lo, hi, start < zeroLow[d] || end > zeroLow[d] + dims[d])
        }
        let wins = (0..<3).map { d in (0..<[OT, OH, OW][d]).map { window(d, $0) } }
        Parallel.forEachRange(N * OT * OH, grain: 4) { range in
            for row in range {
                let oh = row % OH, ot = (row / OH) % OT, n = row / (OH * OT)
                let wt = wins[0][ot], wh = wins[1][oh]
                for ow in 0..<OW {
                    let ww = wins[2][ow]
                    let o = out + (((n * OT + ot) * OH + oh) * OW + ow) * C
                    o.update(repeating: wt.zero || wh.zero || ww.zero ? 0 : -.infinity, count: C)
                    for t in wt.lo..<max(wt.lo, wt.hi) {
                        for h in wh.lo..<max(wh.lo, wh.hi) {
                            for w in ww.lo..<max(ww.lo, ww.hi) {
                                let src = inp + (((n * T + t) * H + h) * W + w) * C
                                for c in 0..<C where src[c] > o[c] { o[c] = src[c] }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// MIL-NCE's self-gating (S3D-G; s3dg.py `SelfGating`): x ← sigmoid(fc(mean over T·H·W of x)) · x
/// per channel, on the channel slice [0, C) of rows with `stride` floats, in place.
/// `weight` is torch's Linear [C, C] (out, in), `bias` [C].
func selfGate(_ x: UnsafeMutablePointer<Float>, N: Int, positions: Int, C: Int, stride: Int, weight: [Float], bias: [Float]) {
    for n in 0..<N {
        let base = x + n * positions * stride
        var mean = [Double](repeating: 0, count: C)
        for p in 0..<positions {
            let row = base + p * stride
            for c in 0..<C { mean[c] += Double(row[c]) }
        }
        var gate = [Float](repeating: 0, count: C)
        for o in 0..<C {
            var s = Double(bias[o])
            for i in 0..<C { s += Double(weight[o * C + i]) * mean[i] / Double(positions) }
            gate[o] = Float(1 / (1 + Foundation.exp(-s)))
        }
        Parallel.forEachRange(positions, grain: 256) { range in
            for p in range {
                let row = base + p * stride
                for c in 0..<C { row[c] *= gate[c] }
            }
        }
    }
}
