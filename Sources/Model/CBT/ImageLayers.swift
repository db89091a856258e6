import Tensor

// The elementwise and pooling layers of the CBT visual front-end (see Convolution.swift for the
// NHWC layout), as forward/backward pairs; backward accumulates (+=) unless named InPlace.
//
// Shape letters: N images, H/W height/width, C channels, OH/OW pooled height/width,
// F frames per clip, D features.

// MARK: - Input normalisation

/// Per-channel normalisation of 8-bit pixels, torchvision's `ToTensor` then `Normalize`:
/// out = (x / 255 − mean[c]) / std[c]. Defaults: the ImageNet statistics every torchvision model
/// uses (mean 0.485, 0.456, 0.406; std 0.229, 0.224, 0.225).
public struct PixelNormalization: Codable, Sendable, Hashable {
    public var mean: [Float]
    public var std: [Float]

    public init(mean: [Float] = [0.485, 0.456, 0.406], std: [Float] = [0.229, 0.224, 0.225]) {
        precondition(mean.count == std.count && !mean.isEmpty, "mean and std need one value per channel")
        precondition(std.allSatisfy { $0 > 0 }, "std must be positive")
        self.mean = mean
        self.std = std
    }

    public static let imageNet = PixelNormalization()
}

/// out[i, c] = (pixels[i, c] / 255 − mean[c]) / std[c] for uint8 pixels, channels fastest (frames
/// stored [clips, F, H, W, 3] give NHWC images directly). Through a 256-entry table per channel
/// whose entries use the same float32 operations as torch, `(x.float() / 255 − mean) / std`.
/// No backward: the pixels are data.
/// - Parameters:
///   - out: [P, C] (written), P = N·H·W pixels.
///   - pixels: [P, C] uint8.
///   - normalization: C = normalization.mean.count channels.
public func normalizePixels(out: UnsafeMutablePointer<Float>, pixels: UnsafePointer<UInt8>, P: Int,
                            normalization: PixelNormalization) {
    let C = normalization.mean.count
    withUnsafeTemporaryAllocation(of: Float.self, capacity: 256 * C) { tableBuffer in
        let table = tableBuffer.baseAddress!
        for c in 0..<C {
            let mean = normalization.mean[c], std = normalization.std[c]
            for x in 0..<256 { table[c * 256 + x] = (Float(x) / 255 - mean) / std }
        }
        Parallel.forEachRange(P, grain: 32_768 / C) { r in
            for i in r {
                for c in 0..<C { out[i * C + c] = table[c * 256 + Int(pixels[i * C + c])] }
            }
        }
    }
}

// MARK: - ReLU

/// out = max(inp, 0).
/// - Parameters:
///   - out: [N] (written). May alias `inp` (in place: backward reads only the output).
///   - inp: [N].
public func reluForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, N: Int) {
    Parallel.forEachRange(N, grain: 32_768) { r in
        let zero = Float8()
        var i = r.lowerBound
        while i + 8 <= r.upperBound {
            store8(max8(load8(inp + i), zero), out + i)
            i += 8
        }
        while i < r.upperBound { out[i] = max(inp[i], 0); i += 1 }
    }
}

/// dinp += dout where out > 0 (torch's `threshold_backward`: no gradient at exactly 0).
/// - Parameters:
///   - dinp: [N] accumulated (+=); not the same memory as `dout`.
///   - dout: [N].
///   - out: [N] the forward output.
public func reluBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, out: UnsafePointer<Float>, N: Int) {
    Parallel.forEachRange(N, grain: 32_768) { r in
        for i in r where out[i] > 0 { dinp[i] += dout[i] }
    }
}

/// The ReLU gradient applied IN PLACE: d ← d where out > 0, else 0. For a ReLU computed in place
/// over a convolution's output, whose gradient buffer then feeds the convolution's backward.
/// - Parameters:
///   - d: [N] gradient with respect to the ReLU's output (overwritten with the input's gradient).
///   - out: [N] the forward output.
public func reluBackwardInPlace(d: UnsafeMutablePointer<Float>, out: UnsafePointer<Float>, N: Int) {
    Parallel.forEachRange(N, grain: 32_768) { r in
        // A select, not a branch: about half the outputs are 0, so a branch would mispredict.
        let zero = Float8()
        var i = r.lowerBound
        while i + 8 <= r.upperBound {
            var g = load8(d + i)
            g.replace(with: zero, where: load8(out + i) .<= zero)
            store8(g, d + i)
            i += 8
        }
        while i < r.upperBound {
            if !(out[i] > 0) { d[i] = 0 }
            i += 1
        }
    }
}

// MARK: - Pooling windows

/// A pooling window over NHWC images without padding, floor mode (torch `max_pool2d` /
/// `avg_pool2d` defaults): OH = ⌊(H − kernel) / stride⌋ + 1.
public struct PoolGeometry: Sendable, Hashable {
    public let H, W, C: Int
    public let kernel: Int
    public let stride: Int

    /// A kernel × kernel window moved by `stride` (torch's default stride is the kernel).
    public init(H: Int, W: Int, C: Int, kernel: Int = 2, stride: Int? = nil) {
        let stride = stride ?? kernel
        precondition(kernel >= 1 && stride >= 1 && H >= kernel && W >= kernel && C >= 1, "invalid pooling geometry")
        (self.H, self.W, self.C, self.kernel, self.stride) = (H, W, C, kernel, stride)
    }

    public var OH: Int { (H - kernel) / stride + 1 }
    public var OW: Int { (W - kernel) / stride + 1 }
}

// MARK: - Max pooling

/// out[n, oh, ow, c] = max over the window of inp[n, oh·s + kh, ow·s + kw, c] (torch `max_pool2d`),
/// saving where the maximum was. Ties go to the first tap in (kh, kw) order, as torch's CPU kernel.
/// - Parameters:
///   - out: [N, OH, OW, C] (written).
///   - argmax: [N, OH, OW, C] (written, saved for backward): the maximum's tap inside its window,
///     kh·kernel + kw, held as a Float (exact: taps < 2²⁴) so that it lives in the Arena.
///   - inp: [N, H, W, C].
public func maxPool2DForward(out: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Float>,
                             inp: UnsafePointer<Float>, N: Int, geometry g: PoolGeometry) {
    let (H, W, C, k, s, OH, OW) = (g.H, g.W, g.C, g.kernel, g.stride, g.OH, g.OW)
    Parallel.forEachRange(N * OH, grain: max(1, 8_192 / max(OW * C * k * k, 1))) { items in
        for item in items {
            let n = item / OH, oh = item % OH
            for ow in 0..<OW {
                let o = out + (item * OW + ow) * C, a = argmax + (item * OW + ow) * C
                let window = inp + ((n * H + oh * s) * W + ow * s) * C
                // 8 channels at a time with selects (comparisons are data-dependent: no branches).
                var c = 0
                while c + 8 <= C {
                    var best = load8(window + c), tap = Float8()
                    for kh in 0..<k {
                        for kw in 0..<k where kh != 0 || kw != 0 {
                            let v = load8(window + (kh * W + kw) * C + c)
                            let greater = v .> best
                            best.replace(with: v, where: greater)
                            tap.replace(with: Float8(repeating: Float(kh * k + kw)), where: greater)
                        }
                    }
                    store8(best, o + c)
                    store8(tap, a + c)
                    c += 8
                }
                while c < C {
                    var best = window[c], tap: Float = 0
                    for kh in 0..<k {
                        for kw in 0..<k where kh != 0 || kw != 0 {
                            let v = window[(kh * W + kw) * C + c]
                            if v > best { best = v; tap = Float(kh * k + kw) }
                        }
                    }
                    o[c] = best
                    a[c] = tap
                    c += 1
                }
            }
        }
    }
}

/// dinp[n, oh·s + kh, ow·s + kw, c] += dout[n, oh, ow, c] at the saved argmax tap. Images are
/// split across workers (overlapping windows of one image are summed in order: deterministic).
/// - Parameters:
///   - dinp: [N, H, W, C] accumulated (+=).
///   - dout: [N, OH, OW, C].
///   - argmax: [N, OH, OW, C] as saved by forward.
public func maxPool2DBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, argmax: UnsafePointer<Float>,
                              N: Int, geometry g: PoolGeometry) {
    let (H, W, C, k, s, OH, OW) = (g.H, g.W, g.C, g.kernel, g.stride, g.OH, g.OW)
    Parallel.forEachRange(N, grain: max(1, 16_384 / max(H * W * C, 1))) { images in
        for n in images {
            for oh in 0..<OH {
                for ow in 0..<OW {
                    let index = ((n * OH + oh) * OW + ow) * C
                    let d = dout + index, a = argmax + index
                    let window = dinp + ((n * H + oh * s) * W + ow * s) * C
                    // 8 channels at a time: every tap of the window takes d where it was the argmax.
                    var c = 0
                    while c + 8 <= C {
                        let g = load8(d + c), taps = load8(a + c)
                        for kh in 0..<k {
                            for kw in 0..<k {
                                let dst = window + (kh * W + kw) * C + c
                                var add = Float8()
                                add.replace(with: g, where: taps .== Float8(repeating: Float(kh * k + kw)))
                                store8(load8(dst) + add, dst)
                            }
                        }
                        c += 8
                    }
                    while c < C {
                        let tap = Int(a[c])
                        window[((tap / k) * W + tap % k) * C + c] += d[c]
                        c += 1
                    }
                }
            }
        }
    }
}

// MARK: - Average pooling

/// out[n, oh, ow, c] = mean over the window of inp[n, oh·s + kh, ow·s + kw, c] (torch `avg_pool2d`,
/// no padding).
/// - Parameters:
///   - out: [N, OH, OW, C] (written).
///   - inp: [N, H, W, C].
public func avgPool2DForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, N: Int, geometry g: PoolGeometry) {
    let (H, W, C, k, s, OH, OW) = (g.H, g.W, g.C, g.kernel, g.stride, g.OH, g.OW)
    let scale = 1 / Float(k * k)
    Parallel.forEachRange(N * OH, grain: max(1, 8_192 / max(OW * C * k * k, 1))) { items in
        for item in items {
            let n = item / OH, oh = item % OH
            for ow in 0..<OW {
                let o = out + (item * OW + ow) * C
                o.update(repeating: 0, count: C)
                for kh in 0..<k {
                    for kw in 0..<k {
                        let src = inp + ((n * H + oh * s + kh) * W + ow * s + kw) * C
                        for c in 0..<C { o[c] += src[c] }
                    }
                }
                for c in 0..<C { o[c] *= scale }
            }
        }
    }
}

/// dinp[n, oh·s + kh, ow·s + kw, c] += dout[n, oh, ow, c] / kernel² for every tap of every window.
/// - Parameters:
///   - dinp: [N, H, W, C] accumulated (+=).
///   - dout: [N, OH, OW, C].
public func avgPool2DBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, N: Int, geometry g: PoolGeometry) {
    let (H, W, C, k, s, OH, OW) = (g.H, g.W, g.C, g.kernel, g.stride, g.OH, g.OW)
    let scale = 1 / Float(k * k)
    Parallel.forEachRange(N, grain: max(1, 16_384 / max(H * W * C, 1))) { images in
        for n in images {
            for oh in 0..<OH {
                for ow in 0..<OW {
                    let d = dout + ((n * OH + oh) * OW + ow) * C
                    for kh in 0..<k {
                        for kw in 0..<k {
                            let dst = dinp + ((n * H + oh * s + kh) * W + ow * s + kw) * C
                            for c in 0..<C { dst[c] += d[c] * scale }
                        }
                    }
                }
            }
        }
    }
}

// MARK: - Means over an axis: global average pooling and the mean over a clip's frames

/// out[n, c] = (1 / L) Σ_l inp[n, l, c]: the mean over the middle axis of [N, L, C].
func meanOverMiddleAxisForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, N: Int, L: Int, C: Int) {
    let scale = 1 / Float(L)
    Parallel.forEachRange(N, grain: max(1, 16_384 / max(L * C, 1))) { rows in
        for n in rows {
            let o = out + n * C
            o.update(repeating: 0, count: C)
            for l in 0..<L {
                let src = inp + (n * L + l) * C
                for c in 0..<C { o[c] += src[c] }
            }
            for c in 0..<C { o[c] *= scale }
        }
    }
}

/// dinp[n, l, c] += dout[n, c] / L.
func meanOverMiddleAxisBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, N: Int, L: Int, C: Int) {
    let scale = 1 / Float(L)
    Parallel.forEachRange(N, grain: max(1, 16_384 / max(L * C, 1))) { rows in
        for n in rows {
            let d = dout + n * C
            for l in 0..<L {
                let dst = dinp + (n * L + l) * C
                for c in 0..<C { dst[c] += d[c] * scale }
            }
        }
    }
}

/// Global average pooling over space, torch `adaptive_avg_pool2d(x, 1)`:
/// out[n, c] = mean over (h, w) of inp[n, h, w, c].
/// - Parameters:
///   - out: [N, C] (written).
///   - inp: [N, H, W, C], passed as HW = H·W.
public func globalAvgPoolForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, N: Int, HW: Int, C: Int) {
    meanOverMiddleAxisForward(out: out, inp: inp, N: N, L: HW, C: C)
}

/// dinp[n, h, w, c] += dout[n, c] / (H·W).
/// - Parameters:
///   - dinp: [N, H, W, C] accumulated (+=).
///   - dout: [N, C].
public func globalAvgPoolBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, N: Int, HW: Int, C: Int) {
    meanOverMiddleAxisBackward(dinp: dinp, dout: dout, N: N, L: HW, C: C)
}

/// The clip's embedding as the mean of its frames' embeddings (issue 4: the front-end is
/// "averaged over the clip's frames"): out[b, d] = (1 / F) Σ_f inp[b, f, d].
/// - Parameters:
///   - out: [clips, D] (written).
///   - inp: [clips, F, D] (frames of a clip adjacent, as the frames are stored).
public func frameMeanForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, clips: Int, F: Int, D: Int) {
    meanOverMiddleAxisForward(out: out, inp: inp, N: clips, L: F, C: D)
}

/// dinp[b, f, d] += dout[b, d] / F.
/// - Parameters:
///   - dinp: [clips, F, D] accumulated (+=).
///   - dout: [clips, D].
public func frameMeanBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, clips: Int, F: Int, D: Int) {
    meanOverMiddleAxisBackward(dinp: dinp, dout: dout, N: clips, L: F, C: D)
}
