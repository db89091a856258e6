import Tensor

// 2-D convolution for the CBT visual front-end (issue 4; Sun et al. 2019, "Learning Video
// Representations using Contrastive Bidirectional Transformer", §3: a visual encoder trained end
// to end), as im2col + sgemm (Chellapilla et al. 2006; Caffe's `im2col`/`col2im`), with the
// backward of llm.c's matmul: dweight by sgemm over the recomputed im2col matrix, dinp by sgemm +
// col2im.
//
// Layout: images are NHWC, [N, H, W, C] row-major, channels fastest. That is how frames are stored
// (uint8 [clips, F, H, W, 3], so [clips·F, H, W, 3] is already a batch of NHWC images) and how
// every layer here lays out its activations; it is torch's `channels_last` memory format. With NHWC
// the output of a convolution over a chunk of images is ONE product
//
//     out[n·OH·OW + oh·OW + ow, oc] = Σ_k col[n·OH·OW + oh·OW + ow, k] · W[oc, k] + bias[oc]
//
// i.e. `linearForward` with N = images·OH·OW rows and C = K = KH·KW·C. An im2col row lists its
// patch in (kh, kw, c) order, k = (kh·KW + kw)·C + c, so that it is KH runs of KW·C floats copied
// straight from the input (one run per kernel row when the window is inside the image).
//
// The weight parameter keeps PyTorch's nn.Conv2d layout [OC, C, KH, KW] (a torch state dict maps
// directly). Each call permutes it into the (kh, kw, c) order in the scratch ([OC, K], a few
// hundred kB at most) and backward permutes the weight gradient back.
//
// Threads: the batch is cut into `Conv2DGeometry.imageGroups` contiguous groups of images (a fixed
// number, so results do not depend on the core count). Groups run on Parallel's workers, each doing
// im2col → sgemm on chunks of its images with OpenBLAS held to one thread, so the im2col matrix is
// still in the core's cache when sgemm reads it and BLAS threads never compete with the workers.
// Each group accumulates its own weight gradient; the groups' partial sums are added in group
// order at the end (deterministic).
//
// Shape letters: N images, H/W input height/width, C input channels, OC output channels, KH/KW
// kernel, OH/OW output height/width, K = KH·KW·C the patch length (im2col row), G image groups.

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

    /// G: the batch is split into this many contiguous groups of images, whatever the core count.
    public static let imageGroups = 8
    /// Groups processed at the same time: one per worker, at most G.
    static var concurrentGroups: Int { min(imageGroups, Parallel.workers) }

    /// Floats of scratch that `conv2dForward`/`conv2dBackward` need (an Arena buffer):
    /// the permuted weight [OC, K], G partial weight gradients [G, OC, K], G partial bias
    /// gradients [G, OC], and one im2col matrix [imagesPerChunk·OH·OW, K] per concurrently running group.
    public func scratchCount(imagesPerChunk: Int) -> Int {
        OC * patch * (1 + Self.imageGroups) + Self.imageGroups * OC + Self.concurrentGroups * imagesPerChunk * OH * OW * patch
    }

    /// A chunk size that keeps one im2col matrix near `targetFloats` (default 2¹⁹ floats = 2 MB:
    /// still cached when sgemm reads it right after im2col wrote it, and enough rows for sgemm to
    /// run near its peak; `bench conv --chunk` measured 2¹⁷…2²⁰ on this machine): at least one image,
    /// and no more than a group holds.
    public func imagesPerChunk(images: Int, targetFloats: Int = 1 << 19) -> Int {
        let perGroup = (images + Self.imageGroups - 1) / Self.imageGroups
        return max(1, min(perGroup, targetFloats / max(OH * OW * patch, 1)))
    }

    public var description: String {
        "conv \(C)→\(OC) \(KH)×\(KW) stride \(stride) pad \(padding) on \(H)×\(W) → \(OH)×\(OW)"
    }

    /// Images of group g: a contiguous range, groups as equal as possible.
    @inline(__always)
    func images(ofGroup g: Int, N: Int) -> Range<Int> {
        (N * g / Self.imageGroups)..<(N * (g + 1) / Self.imageGroups)
    }
}

// MARK: - Weight layout

/// out[oc, (kh·KW + kw)·C + c] = weight[oc, c, kh, kw]: PyTorch's layout to the im2col order.
func permuteWeightToPatchOrder(out: UnsafeMutablePointer<Float>, weight: UnsafePointer<Float>, g: Conv2DGeometry) {
    let (C, KH, KW, K) = (g.C, g.KH, g.KW, g.patch)
    for oc in 0..<g.OC {
        let src = weight + oc * K, dst = out + oc * K
        for c in 0..<C {
            for kh in 0..<KH {
                for kw in 0..<KW { dst[(kh * KW + kw) * C + c] = src[(c * KH + kh) * KW + kw] }
            }
        }
    }
}

/// dweight[oc, c, kh, kw] += patchOrder[oc, (kh·KW + kw)·C + c].
func addPatchOrderToWeight(dweight: UnsafeMutablePointer<Float>, patchOrder: UnsafePointer<Float>, g: Conv2DGeometry) {
    let (C, KH, KW, K) = (g.C, g.KH, g.KW, g.patch)
    for oc in 0..<g.OC {
        let src = patchOrder + oc * K, dst = dweight + oc * K
        for c in 0..<C {
            for kh in 0..<KH {
                for kw in 0..<KW { dst[(c * KH + kh) * KW + kw] += src[(kh * KW + kw) * C + c] }
            }
        }
    }
}

// MARK: - im2col / col2im (one chunk of images, on the calling thread)

/// col[(n − n0)·OH·OW + oh·OW + ow, (kh·KW + kw)·C + c] = inp[n, oh·s − p + kh, ow·s − p + kw, c],
/// zero where the window reaches into the padding; for images n0 ..< n0 + count.
/// - Parameters:
///   - col: [count·OH·OW, K] (written).
///   - inp: [N, H, W, C] the whole batch.
func im2col(col: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, g: Conv2DGeometry, firstImage n0: Int, count: Int) {
    let (H, W, C, KH, KW, s, p, OH, OW, K) = (g.H, g.W, g.C, g.KH, g.KW, g.stride, g.padding, g.OH, g.OW, g.patch)
    let run = KW * C
    var row = col
    for n in n0..<(n0 + count) {
        let image = inp + n * H * W * C
        for oh in 0..<OH {
            for ow in 0..<OW {
                let iw0 = ow * s - p
                let inside = iw0 >= 0 && iw0 + KW <= W
                for kh in 0..<KH {
                    let ih = oh * s - p + kh
                    let dst = row + kh * run
                    if ih < 0 || ih >= H {
                        dst.update(repeating: 0, count: run)
                    } else if inside {
                        dst.update(from: image + (ih * W + iw0) * C, count: run)
                    } else {
                        for kw in 0..<KW {
                            let iw = iw0 + kw
                            if iw < 0 || iw >= W {
                                (dst + kw * C).update(repeating: 0, count: C)
                            } else {
                                (dst + kw * C).update(from: image + (ih * W + iw) * C, count: C)
                            }
                        }
                    }
                }
                row += K
            }
        }
    }
}

/// The adjoint of `im2col`: dinp[n, ih, iw, c] += dcol[row, k] for every (row, k) that im2col
/// filled from (n, ih, iw, c); padding taps are dropped. Sums run in a fixed order.
/// - Parameters:
///   - dinp: [N, H, W, C] accumulated (+=) for images n0 ..< n0 + count.
///   - dcol: [count·OH·OW, K].
func col2im(dinp: UnsafeMutablePointer<Float>, dcol: UnsafePointer<Float>, g: Conv2DGeometry, firstImage n0: Int, count: Int) {
    let (H, W, C, KH, KW, s, p, OH, OW, K) = (g.H, g.W, g.C, g.KH, g.KW, g.stride, g.padding, g.OH, g.OW, g.patch)
    var row = dcol
    for n in n0..<(n0 + count) {
        let image = dinp + n * H * W * C
        for oh in 0..<OH {
            for ow in 0..<OW {
                let iw0 = ow * s - p
                let kw0 = max(0, -iw0), kw1 = min(KW, W - iw0)       // taps inside the image
                for kh in 0..<KH {
                    let ih = oh * s - p + kh
                    if ih < 0 || ih >= H || kw0 >= kw1 { continue }
                    // The taps kw0 ..< kw1 of this kernel row are adjacent pixels: one contiguous run.
                    let src = row + (kh * KW + kw0) * C, dst = image + (ih * W + iw0 + kw0) * C
                    addInPlace(dst, src, (kw1 - kw0) * C)
                }
                row += K
            }
        }
    }
}

/// dst[i] += src[i] for i in 0..<n, 8 lanes at a time.
@inline(__always)
func addInPlace(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ n: Int) {
    var i = 0
    while i + 8 <= n {
        store8(load8(dst + i) + load8(src + i), dst + i)
        i += 8
    }
    while i < n { dst[i] += src[i]; i += 1 }
}

// MARK: - Convolution

/// out = conv2d(inp, weight) + bias over NHWC images (torch `F.conv2d` on the NCHW view of the
/// same tensor), optionally followed by ReLU (applied to each chunk while it is in cache; the
/// front-end's conv → ReLU). Per chunk: im2col into the scratch, then one sgemm
/// out[rows, OC] = col[rows, K] · Wᵀ (+ bias).
/// - Parameters:
///   - out: [N, OH, OW, OC] (written).
///   - inp: [N, H, W, C].
///   - weight: [OC, C, KH, KW] (PyTorch layout).
///   - bias: [OC], or nil.
///   - scratch: `geometry.scratchCount(imagesPerChunk:)` floats (contents don't matter).
///   - imagesPerChunk: images per im2col + sgemm round (≥ 1; `geometry.imagesPerChunk(images:)`).
///   - relu: apply max(·, 0) to the output (its backward is `reluBackwardInPlace` on dout).
public func conv2dForward(out: UnsafeMutablePointer<Float>,
                          inp: UnsafePointer<Float>,
                          weight: UnsafePointer<Float>,
                          bias: UnsafePointer<Float>?,
                          scratch: UnsafeMutablePointer<Float>,
                          N: Int, geometry g: Conv2DGeometry, imagesPerChunk: Int, relu: Bool = false) {
    precondition(imagesPerChunk >= 1, "imagesPerChunk must be at least 1")
    let rowsPerImage = g.OH * g.OW, OC = g.OC, K = g.patch
    let permuted = scratch
    let colBase = scratch + OC * K * (1 + Conv2DGeometry.imageGroups) + Conv2DGeometry.imageGroups * OC
    let colCount = imagesPerChunk * rowsPerImage * K
    permuteWeightToPatchOrder(out: permuted, weight: weight, g: g)
    let lanes = Conv2DGeometry.concurrentGroups
    Parallel.withSingleThreadedBLAS {
        Parallel.concurrentPerform(lanes) { lane in
            let col = colBase + lane * colCount
            for group in stride(from: lane, to: Conv2DGeometry.imageGroups, by: lanes) {
                let images = g.images(ofGroup: group, N: N)
                var n0 = images.lowerBound
                while n0 < images.upperBound {
                    let count = min(imagesPerChunk, images.upperBound - n0)
                    im2col(col: col, inp: inp, g: g, firstImage: n0, count: count)
                    let rows = count * rowsPerImage
                    let outChunk = out + n0 * rowsPerImage * OC
                    if let bias {
                        for row in 0..<rows { (outChunk + row * OC).update(from: bias, count: OC) }
                    }
                    BLAS.sgemm(transA: false, transB: true, m: rows, n: OC, k: K,
                               a: col, lda: K, b: permuted, ldb: K,
                               beta: bias == nil ? 0 : 1, c: outChunk, ldc: OC)
                    if relu { reluInPlace(outChunk, rows * OC) }
                    n0 += count
                }
            }
        }
    }
}

/// Backward of `conv2dForward` (without its ReLU: apply `reluBackwardInPlace` to dout first):
/// dbias += Σ_rows dout; dweight += doutᵀ · col, with col recomputed by im2col (not saved: it is
/// K times larger than the input); dinp += col2im(dout · W). Per group and chunk, so dout is
/// read while cached; the groups' bias and weight sums are added in group order.
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
    let rowsPerImage = g.OH * g.OW, OC = g.OC, K = g.patch, G = Conv2DGeometry.imageGroups
    if dweight == nil && dinp == nil && dbias == nil { return }
    let permuted = scratch
    let partials = scratch + OC * K                  // [G, OC, K] each group's weight gradient
    let biasPartials = partials + G * OC * K         // [G, OC] each group's bias gradient
    let colBase = biasPartials + G * OC
    let colCount = imagesPerChunk * rowsPerImage * K
    if dinp != nil { permuteWeightToPatchOrder(out: permuted, weight: weight, g: g) }
    let lanes = Conv2DGeometry.concurrentGroups
    let wantWeight = dweight != nil, wantBias = dbias != nil
    Parallel.withSingleThreadedBLAS {
        Parallel.concurrentPerform(lanes) { lane in
            let col = colBase + lane * colCount
            for group in stride(from: lane, to: G, by: lanes) {
                let partial = partials + group * OC * K, biasPartial = biasPartials + group * OC
                biasPartial.update(repeating: 0, count: OC)
                var started = false
                let images = g.images(ofGroup: group, N: N)
                var n0 = images.lowerBound
                while n0 < images.upperBound {
                    let count = min(imagesPerChunk, images.upperBound - n0)
                    let rows = count * rowsPerImage
                    let doutChunk = dout + n0 * rowsPerImage * OC
                    if wantBias {
                        for row in 0..<rows { addInPlace(biasPartial, doutChunk + row * OC, OC) }
                    }
                    if wantWeight {
                        im2col(col: col, inp: inp, g: g, firstImage: n0, count: count)
                        BLAS.sgemm(transA: true, transB: false, m: OC, n: K, k: rows,
                                   a: doutChunk, lda: OC, b: col, ldb: K, beta: started ? 1 : 0, c: partial, ldc: K)
                        started = true
                    }
                    if let dinp {
                        BLAS.sgemm(transA: false, transB: false, m: rows, n: K, k: OC,
                                   a: doutChunk, lda: OC, b: permuted, ldb: K, beta: 0, c: col, ldc: K)
                        col2im(dinp: dinp, dcol: col, g: g, firstImage: n0, count: count)
                    }
                    n0 += count
                }
                if wantWeight && !started { partial.update(repeating: 0, count: OC * K) }   // an empty group
            }
        }
    }
    if let dbias {
        for group in 0..<G { addInPlace(dbias, biasPartials + group * OC, OC) }
    }
    if let dweight {
        // Σ over groups in group order into the first partial, then back to PyTorch's layout.
        let total = partials
        Parallel.forEachRange(OC * K, grain: 16_384) { r in
            for group in 1..<G {
                let partial = partials + group * OC * K
                for i in r { total[i] += partial[i] }
            }
        }
        addPatchOrderToWeight(dweight: dweight, patchOrder: total, g: g)
    }
}

/// x = max(x, 0) for n floats, 8 lanes at a time.
@inline(__always)
func reluInPlace(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
    let zero = Float8()
    var i = 0
    while i + 8 <= n {
        store8(max8(load8(x + i), zero), x + i)
        i += 8
    }
    while i < n { x[i] = max(x[i], 0); i += 1 }
}
