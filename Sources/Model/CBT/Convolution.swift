import Tensor

// 2-D convolution for the CBT visual front-end (issue 4; Sun et al. 2019, "Learning Video
// Representations using Contrastive Bidirectional Transformer", §3: a visual encoder trained end
// to end), as im2col + one sgemm per chunk of images (Chellapilla et al. 2006; Caffe's
// `im2col`/`col2im`), with the backward of llm.c's matmul: dweight by sgemm, dinp by sgemm + col2im.
//
// Layout: images are NHWC, [N, H, W, C] row-major, channels fastest. That is how frames are stored
// (uint8 [clips, F, H, W, 3], so [clips·F, H, W, 3] is already a batch of NHWC images) and how
// every layer here lays out its activations; it is torch's `channels_last` memory format. With NHWC
// the output of a convolution over a whole chunk of images is ONE product
//
//     out[n·OH·OW + oh·OW + ow, oc] = Σ_k col[n·OH·OW + oh·OW + ow, k] · weight[oc, k] + bias[oc]
//
// i.e. exactly `linearForward` with N = images·OH·OW rows, C = IC·KH·KW and the weight as is.
// The weight keeps PyTorch's nn.Conv2d layout [OC, IC, KH, KW] (a torch state dict maps directly):
// an im2col row therefore lists its patch in (ic, kh, kw) order, k = (ic·KH + kh)·KW + kw.
//
// Shape letters: N images, H/W input height/width, C input channels, OC output channels, KH/KW
// kernel, OH/OW output height/width, K = C·KH·KW the patch length (im2col row).

/// Geometry of one 2-D convolution layer (torch `nn.Conv2d(C, OC, (KH, KW), stride, padding)`,
/// zero padding, dilation 1, groups 1), independent of the number of images.
public struct Conv2DGeometry: Sendable, Hashable, CustomStringConvertible {
    /// Input height and width.
    public let H, W: Int
    /// Input and output channels.
    public let C, OC: Int
    /// Kernel height and width.
    public let KH, KW: Int
    public let stride: Int
    /// Zero padding on every side.
    public let padding: Int

    public init(H: Int, W: Int, C: Int, OC: Int, KH: Int, KW: Int, stride: Int = 1, padding: Int = 0) {
        precondition(H > 0 && W > 0 && C > 0 && OC > 0 && KH > 0 && KW > 0 && stride > 0 && padding >= 0,
                     "invalid convolution geometry")
        precondition(H + 2 * padding >= KH && W + 2 * padding >= KW, "kernel \(KH)×\(KW) larger than the padded \(H)×\(W) input")
        (self.H, self.W, self.C, self.OC, self.KH, self.KW, self.stride, self.padding) = (H, W, C, OC, KH, KW, stride, padding)
    }

    /// Output height: ⌊(H + 2·padding − KH) / stride⌋ + 1 (torch's formula, dilation 1).
    public var OH: Int { (H + 2 * padding - KH) / stride + 1 }
    /// Output width.
    public var OW: Int { (W + 2 * padding - KW) / stride + 1 }
    /// Patch length K = C·KH·KW: the length of an im2col row and of a weight row.
    public var patch: Int { C * KH * KW }
    /// The weight's shape, PyTorch's [OC, IC, KH, KW].
    public var weightShape: [Int] { [OC, C, KH, KW] }

    /// Floats of im2col scratch that `conv2dForward`/`conv2dBackward` need for `imagesPerChunk`
    /// images: [imagesPerChunk·OH·OW, K].
    public func scratchCount(imagesPerChunk: Int) -> Int { imagesPerChunk * OH * OW * patch }

    /// A chunk size that keeps the im2col matrix near `targetFloats` (default 2²⁰ floats = 4 MB,
    /// about the shared cache: the matrix written by im2col is still cached when sgemm reads it),
    /// at least one image and at most `images`.
    public func imagesPerChunk(images: Int, targetFloats: Int = 1 << 20) -> Int {
        max(1, min(images, targetFloats / max(OH * OW * patch, 1)))
    }

    public var description: String {
        "conv \(C)→\(OC) \(KH)×\(KW) stride \(stride) pad \(padding) on \(H)×\(W) → \(OH)×\(OW)"
    }
}

// MARK: - im2col / col2im

/// col[(n − n0)·OH·OW + oh·OW + ow, (c·KH + kh)·KW + kw] = inp[n, oh·s − p + kh, ow·s − p + kw, c],
/// zero where the window reaches into the padding; for images n0 ..< n0 + count.
/// - Parameters:
///   - col: [count·OH·OW, K] (written).
///   - inp: [N, H, W, C] the whole batch.
func im2col(col: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, g: Conv2DGeometry, firstImage n0: Int, count: Int) {
    let (H, W, C, KH, KW, s, p, OH, OW, K) = (g.H, g.W, g.C, g.KH, g.KW, g.stride, g.padding, g.OH, g.OW, g.patch)
    let KHKW = KH * KW
    // One work item per output row (image, oh): it writes OW disjoint im2col rows.
    Parallel.forEachRange(count * OH, grain: max(1, 16_384 / max(OW * K, 1))) { items in
        for item in items {
            let n = n0 + item / OH, oh = item % OH
            let image = inp + n * H * W * C
            for ow in 0..<OW {
                let row = col + (item * OW + ow) * K
                for kh in 0..<KH {
                    let ih = oh * s - p + kh
                    for kw in 0..<KW {
                        let iw = ow * s - p + kw
                        // Channel c of this tap goes to column c·KH·KW + kh·KW + kw: a strided
                        // write inside one row of K ≤ a few thousand floats, i.e. within L1.
                        let dst = row + kh * KW + kw
                        if ih < 0 || ih >= H || iw < 0 || iw >= W {
                            for c in 0..<C { dst[c * KHKW] = 0 }
                        } else {
                            let src = image + (ih * W + iw) * C
                            for c in 0..<C { dst[c * KHKW] = src[c] }
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of `im2col`: dinp[n, ih, iw, c] += dcol[row, k] for every (row, k) that im2col
/// filled from (n, ih, iw, c); padding taps are dropped. Images are independent, so they are
/// split across workers and each image's sums run in a fixed order (deterministic).
/// - Parameters:
///   - dinp: [N, H, W, C] accumulated (+=) for images n0 ..< n0 + count.
///   - dcol: [count·OH·OW, K].
func col2im(dinp: UnsafeMutablePointer<Float>, dcol: UnsafePointer<Float>, g: Conv2DGeometry, firstImage n0: Int, count: Int) {
    let (H, W, C, KH, KW, s, p, OH, OW, K) = (g.H, g.W, g.C, g.KH, g.KW, g.stride, g.padding, g.OH, g.OW, g.patch)
    let KHKW = KH * KW
    Parallel.forEachRange(count, grain: 1) { images in
        for local in images {
            let image = dinp + (n0 + local) * H * W * C
            for oh in 0..<OH {
                for ow in 0..<OW {
                    let row = dcol + ((local * OH + oh) * OW + ow) * K
                    for kh in 0..<KH {
                        let ih = oh * s - p + kh
                        if ih < 0 || ih >= H { continue }
                        for kw in 0..<KW {
                            let iw = ow * s - p + kw
                            if iw < 0 || iw >= W { continue }
                            let src = row + kh * KW + kw
                            let dst = image + (ih * W + iw) * C
                            for c in 0..<C { dst[c] += src[c * KHKW] }
                        }
                    }
                }
            }
        }
    }
}

// MARK: - Convolution

/// out = conv2d(inp, weight) + bias over NHWC images (torch `F.conv2d` on the NCHW view of the
/// same tensor). Per chunk of `imagesPerChunk` images: im2col into `scratch`, then one sgemm
/// (OpenBLAS threads) out[rows, OC] = col[rows, K] · weightᵀ (+ bias). im2col runs on
/// Parallel's workers between the sgemm calls, so the two never oversubscribe the cores.
/// - Parameters:
///   - out: [N, OH, OW, OC] (written).
///   - inp: [N, H, W, C].
///   - weight: [OC, C, KH, KW] (PyTorch layout) = [OC, K].
///   - bias: [OC], or nil.
///   - scratch: `g.scratchCount(imagesPerChunk:)` floats (an Arena buffer; contents don't matter).
///   - imagesPerChunk: images per im2col + sgemm round (≥ 1; `g.imagesPerChunk(images:)`).
public func conv2dForward(out: UnsafeMutablePointer<Float>,
                          inp: UnsafePointer<Float>,
                          weight: UnsafePointer<Float>,
                          bias: UnsafePointer<Float>?,
                          scratch: UnsafeMutablePointer<Float>,
                          N: Int, geometry g: Conv2DGeometry, imagesPerChunk: Int) {
    precondition(imagesPerChunk >= 1, "imagesPerChunk must be at least 1")
    let rowsPerImage = g.OH * g.OW, OC = g.OC, K = g.patch
    var n0 = 0
    while n0 < N {
        let count = min(imagesPerChunk, N - n0)
        im2col(col: scratch, inp: inp, g: g, firstImage: n0, count: count)
        let rows = count * rowsPerImage
        let outChunk = out + n0 * rowsPerImage * OC
        if let bias {
            Parallel.forEachRange(rows, grain: max(1, 32_768 / OC)) { r in
                for row in r { (outChunk + row * OC).update(from: bias, count: OC) }
            }
        }
        BLAS.sgemm(transA: false, transB: true, m: rows, n: OC, k: K,
                   a: scratch, lda: K, b: weight, ldb: K,
                   beta: bias == nil ? 0 : 1, c: outChunk, ldc: OC)
        n0 += count
    }
}

/// Backward of `conv2dForward`, per chunk of images:
/// dbias += Σ_rows dout; dweight += doutᵀ · col (col recomputed by im2col into `scratch`, not
/// saved: it is K times larger than the input); dinp += col2im(dout · weight) (the product
/// written over the same scratch).
/// - Parameters:
///   - dinp: [N, H, W, C] accumulated (+=), or nil (the first layer: images need no gradient).
///   - dweight: [OC, C, KH, KW] accumulated (+=), or nil for a frozen weight.
///   - dbias: [OC] accumulated (+=), or nil.
///   - dout: [N, OH, OW, OC].
///   - inp: [N, H, W, C] the forward input.
///   - weight: [OC, C, KH, KW].
///   - scratch, imagesPerChunk: as for forward.
public func conv2dBackward(dinp: UnsafeMutablePointer<Float>?,
                           dweight: UnsafeMutablePointer<Float>?,
                           dbias: UnsafeMutablePointer<Float>?,
                           dout: UnsafePointer<Float>,
                           inp: UnsafePointer<Float>,
                           weight: UnsafePointer<Float>,
                           scratch: UnsafeMutablePointer<Float>,
                           N: Int, geometry g: Conv2DGeometry, imagesPerChunk: Int) {
    precondition(imagesPerChunk >= 1, "imagesPerChunk must be at least 1")
    let rowsPerImage = g.OH * g.OW, OC = g.OC, K = g.patch
    if let dbias { columnSumsAccumulate(into: dbias, dout, rows: N * rowsPerImage, columns: OC) }
    if dweight == nil && dinp == nil { return }
    var n0 = 0
    while n0 < N {
        let count = min(imagesPerChunk, N - n0)
        let rows = count * rowsPerImage
        let doutChunk = dout + n0 * rowsPerImage * OC
        if let dweight {
            im2col(col: scratch, inp: inp, g: g, firstImage: n0, count: count)
            BLAS.sgemm(transA: true, transB: false, m: OC, n: K, k: rows,
                       a: doutChunk, lda: OC, b: scratch, ldb: K, beta: 1, c: dweight, ldc: K)
        }
        if let dinp {
            BLAS.sgemm(transA: false, transB: false, m: rows, n: K, k: OC,
                       a: doutChunk, lda: OC, b: weight, ldb: K, beta: 0, c: scratch, ldc: K)
            col2im(dinp: dinp, dcol: scratch, g: g, firstImage: n0, count: count)
        }
        n0 += count
    }
}
