import Foundation
import Tensor

/// The settings of `ConvFrontEnd`. Codable with the names a checkpoint's config uses.
public struct ConvFrontEndConfig: Codable, Sendable, Hashable {
    /// S: frames are S×S RGB (the corpus's stored low-resolution frames; 32 or 64).
    public var frameSize: Int = 32
    /// F: frames per clip; the clip's embedding is the mean of its frames' embeddings.
    public var framesPerClip: Int = 4
    /// Output channels of the 3×3 convolutions, c1 … cL. Every convolution but the last is followed
    /// by ReLU and 2×2 max pooling; the last by ReLU and global average pooling.
    public var channels: [Int] = [32, 64, 128]
    /// D: the clip embedding's size (the visual transformer's hidden size).
    public var outputSize: Int = 768
    /// Per-channel pixel statistics of the input normalisation (ImageNet's by default).
    public var pixelMean: [Float] = PixelNormalization.imageNet.mean
    public var pixelStd: [Float] = PixelNormalization.imageNet.std

    enum CodingKeys: String, CodingKey {
        case frameSize = "frame_size"
        case framesPerClip = "frames_per_clip"
        case channels
        case outputSize = "output_size"
        case pixelMean = "pixel_mean"
        case pixelStd = "pixel_std"
    }

    public init(frameSize: Int = 32, framesPerClip: Int = 4, channels: [Int] = [32, 64, 128], outputSize: Int = 768,
                normalization: PixelNormalization = .imageNet) {
        self.frameSize = frameSize
        self.framesPerClip = framesPerClip
        self.channels = channels
        self.outputSize = outputSize
        self.pixelMean = normalization.mean
        self.pixelStd = normalization.std
    }

    /// Missing keys take the defaults above.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = ConvFrontEndConfig()
        frameSize = try c.decodeIfPresent(Int.self, forKey: .frameSize) ?? defaults.frameSize
        framesPerClip = try c.decodeIfPresent(Int.self, forKey: .framesPerClip) ?? defaults.framesPerClip
        channels = try c.decodeIfPresent([Int].self, forKey: .channels) ?? defaults.channels
        outputSize = try c.decodeIfPresent(Int.self, forKey: .outputSize) ?? defaults.outputSize
        pixelMean = try c.decodeIfPresent([Float].self, forKey: .pixelMean) ?? defaults.pixelMean
        pixelStd = try c.decodeIfPresent([Float].self, forKey: .pixelStd) ?? defaults.pixelStd
    }

    public var normalization: PixelNormalization { PixelNormalization(mean: pixelMean, std: pixelStd) }

    /// Throws a one-line error for settings the network cannot run with.
    public func validate() throws {
        guard !channels.isEmpty, channels.allSatisfy({ $0 > 0 }) else {
            throw VideoBertError("front-end channels must be a non-empty list of positive numbers, got \(channels)")
        }
        guard framesPerClip > 0, outputSize > 0 else {
            throw VideoBertError("front-end frames_per_clip and output_size must be positive")
        }
        let pools = channels.count - 1
        guard frameSize > 0, frameSize % (1 << pools) == 0 else {
            throw VideoBertError("front-end frame_size \(frameSize) must be divisible by \(1 << pools) (\(pools) 2×2 max-pooling layers)")
        }
        guard pixelMean.count == 3, pixelStd.count == 3, pixelStd.allSatisfy({ $0 > 0 }) else {
            throw VideoBertError("front-end pixel_mean and pixel_std need 3 values (RGB), std positive")
        }
    }

    /// Parameters: Σ_l (c_{l−1}·9 + 1)·c_l + (c_L + 1)·D with c_0 = 3.
    public var parameterCount: Int {
        var total = 0, previous = 3
        for c in channels { total += (previous * 9 + 1) * c; previous = c }
        return total + (previous + 1) * outputSize
    }
}

/// The trainable visual front-end over a clip's stored low-resolution frames (issue 4 (a); CBT,
/// Sun et al. 2019 §3.2, where the visual features are trained end to end through the NCE loss):
///
///     frames uint8 [clips, F, S, S, 3] = NHWC images [clips·F, S, S, 3]
///       → normalise (x/255 − mean)/std                               x      [clips·F, S, S, 3]
///       → conv 3×3 pad 1 (→ c1) → ReLU → max pool 2×2                  [clips·F, S/2, S/2, c1]
///       → conv 3×3 pad 1 (→ c2) → ReLU → max pool 2×2                  [clips·F, S/4, S/4, c2]
///       → conv 3×3 pad 1 (→ c3) → ReLU → global average pool           [clips·F, c3]
///       → mean over the clip's F frames                                [clips, c3]
///       → linear (→ D)                                                 out    [clips, D]
///
/// (with three entries in `channels`; any number ≥ 1 works, a pool after every conv but the last).
/// A torch equivalent is tools/bench/conv.py's `FrontEnd` (on NCHW or channels_last tensors).
///
/// Parameters (in a ParameterStore, PyTorch layouts, so a torch state dict maps by name):
///
///     <prefix>conv{l}.weight   [c_l, c_{l−1}, 3, 3]   (c_0 = 3)   weight decay
///     <prefix>conv{l}.bias     [c_l]                               no decay
///     <prefix>proj.weight      [D, c_L]                            weight decay
///     <prefix>proj.bias        [D]                                 no decay
///
/// with l = 1 … L and prefix "frontend." by default. Activations and their gradients live in the
/// caller's Arena: `init` adds its buffers (named `<prefix>…`) to an ArenaLayout sized for
/// `maxClips` clips; each step then runs `forward`/`backward` on any clips ≤ maxClips without
/// allocating. ReLU is fused into each convolution (applied per chunk in place; backward needs only the output).
///
/// Threads: convolutions run image groups on Parallel's workers with single-threaded sgemm
/// (Convolution.swift); pooling, means and the ReLU gradient on Parallel's workers.
public final class ConvFrontEnd {
    public let config: ConvFrontEndConfig
    public let prefix: String
    public let maxClips: Int
    /// The convolutions' geometries, layer by layer.
    public let convolutions: [Conv2DGeometry]
    /// The 2×2 max pools after every convolution but the last.
    public let pools: [PoolGeometry]
    /// Images per im2col + sgemm round, per convolution.
    public let imagesPerChunk: [Int]

    let store: ParameterStore
    // Parameter slots.
    let convWeight: [TensorSlot], convBias: [TensorSlot]
    let projWeight: TensorSlot, projBias: TensorSlot
    // Activation slots, N = maxClips·F images.
    /// [N, S, S, 3] the normalised frames.
    let input: TensorSlot
    /// [N, H_l, W_l, c_l] each convolution's output after its in-place ReLU.
    let conv: [TensorSlot]
    /// [N, H_l/2, W_l/2, c_l] max-pool outputs and their argmax taps (l < L).
    let pooled: [TensorSlot], argmax: [TensorSlot]
    /// [N, c_L] global average pool of the last convolution.
    let frameFeatures: TensorSlot
    /// [maxClips, c_L] mean over the clip's frames.
    let clipFeatures: TensorSlot
    /// [maxClips, D] the clip embeddings (forward's result).
    public let output: TensorSlot
    // Gradient slots (same shapes).
    let dconv: [TensorSlot], dpooled: [TensorSlot], dframeFeatures: TensorSlot, dclipFeatures: TensorSlot
    /// im2col scratch, the largest any convolution needs.
    let scratch: TensorSlot

    /// The parameter specs to include in the model's ParameterStore (order as documented above).
    public static func parameterSpecs(_ config: ConvFrontEndConfig, prefix: String = "frontend.") -> [ParameterSpec] {
        var specs: [ParameterSpec] = []
        var previous = 3
        for (l, c) in config.channels.enumerated() {
            specs.append(ParameterSpec("\(prefix)conv\(l + 1).weight", [c, previous, 3, 3], weightDecay: true))
            specs.append(ParameterSpec("\(prefix)conv\(l + 1).bias", [c], weightDecay: false))
            previous = c
        }
        specs.append(ParameterSpec("\(prefix)proj.weight", [config.outputSize, previous], weightDecay: true))
        specs.append(ParameterSpec("\(prefix)proj.bias", [config.outputSize], weightDecay: false))
        return specs
    }

    /// Initialises the front-end's parameters: convolution weights He-normal, N(0, 2/fan_in) with
    /// fan_in = c_{l−1}·9 (He et al. 2015, for ReLU networks trained from scratch); the projection
    /// N(0, 1/c_L) so that the clip embeddings start at unit scale; biases 0.
    public static func initializeParameters(_ config: ConvFrontEndConfig, store: ParameterStore, prefix: String = "frontend.",
                                            rng: inout SeededRNG) {
        var previous = 3
        for (l, c) in config.channels.enumerated() {
            store.fillNormal("\(prefix)conv\(l + 1).weight", std: (2 / Float(previous * 9)).squareRoot(), rng: &rng)
            store.fill("\(prefix)conv\(l + 1).bias", value: 0)
            previous = c
        }
        store.fillNormal("\(prefix)proj.weight", std: 1 / Float(previous).squareRoot(), rng: &rng)
        store.fill("\(prefix)proj.bias", value: 0)
    }

    /// Resolves the parameters in `store` (built with `parameterSpecs`) and adds the activation
    /// buffers for up to `maxClips` clips to `layout`. Create the Arena from the layout afterwards.
    /// - Parameter chunkFloats: one im2col matrix's target size (see `Conv2DGeometry.imagesPerChunk`).
    public init(config: ConvFrontEndConfig, store: ParameterStore, prefix: String = "frontend.", maxClips: Int,
                layout: inout ArenaLayout, chunkFloats: Int = 1 << 19) throws {
        try config.validate()
        guard maxClips > 0 else { throw VideoBertError("front-end needs at least one clip per batch") }
        for spec in Self.parameterSpecs(config, prefix: prefix) {
            guard let slot = store.slot(named: spec.name) else {
                throw VideoBertError("parameter '\(spec.name)' missing from the parameter store")
            }
            guard slot.shape == spec.shape else {
                throw VideoBertError("parameter '\(spec.name)' has shape \(slot.shape), expected \(spec.shape)")
            }
        }
        self.config = config
        self.prefix = prefix
        self.maxClips = maxClips
        self.store = store
        let L = config.channels.count
        let N = maxClips * config.framesPerClip
        var convolutions: [Conv2DGeometry] = [], pools: [PoolGeometry] = []
        var size = config.frameSize, previous = 3
        for (l, c) in config.channels.enumerated() {
            convolutions.append(Conv2DGeometry(H: size, W: size, C: previous, OC: c, KH: 3, KW: 3, stride: 1, padding: 1))
            if l < L - 1 {
                pools.append(PoolGeometry(H: size, W: size, C: c, kernel: 2))
                size /= 2
            }
            previous = c
        }
        self.convolutions = convolutions
        self.pools = pools
        self.imagesPerChunk = convolutions.map { $0.imagesPerChunk(images: N, targetFloats: chunkFloats) }
        convWeight = (1...L).map { store.slot("\(prefix)conv\($0).weight") }
        convBias = (1...L).map { store.slot("\(prefix)conv\($0).bias") }
        projWeight = store.slot("\(prefix)proj.weight")
        projBias = store.slot("\(prefix)proj.bias")

        let S = config.frameSize, D = config.outputSize, cL = config.channels[L - 1]
        input = layout.add(prefix + "input", [N, S, S, 3])
        conv = convolutions.enumerated().map { l, g in layout.add("\(prefix)conv\(l + 1)", [N, g.OH, g.OW, g.OC]) }
        pooled = pools.enumerated().map { l, g in layout.add("\(prefix)pool\(l + 1)", [N, g.OH, g.OW, g.C]) }
        argmax = pools.enumerated().map { l, g in layout.add("\(prefix)pool\(l + 1).argmax", [N, g.OH, g.OW, g.C]) }
        frameFeatures = layout.add(prefix + "frame_features", [N, cL])
        clipFeatures = layout.add(prefix + "clip_features", [maxClips, cL])
        output = layout.add(prefix + "output", [maxClips, D])
        dconv = convolutions.enumerated().map { l, g in layout.add("\(prefix)d.conv\(l + 1)", [N, g.OH, g.OW, g.OC]) }
        dpooled = pools.enumerated().map { l, g in layout.add("\(prefix)d.pool\(l + 1)", [N, g.OH, g.OW, g.C]) }
        dframeFeatures = layout.add(prefix + "d.frame_features", [N, cL])
        dclipFeatures = layout.add(prefix + "d.clip_features", [maxClips, cL])
        let scratchCount = zip(convolutions, imagesPerChunk).map { $0.scratchCount(imagesPerChunk: $1) }.max() ?? 0
        scratch = layout.add(prefix + "im2col", [scratchCount])
    }

    @inline(__always) private func w(_ s: TensorSlot) -> UnsafeMutablePointer<Float> { store.parameters + s.offset }
    @inline(__always) private func g(_ s: TensorSlot) -> UnsafeMutablePointer<Float> { store.gradients + s.offset }

    /// Embeds `clips` clips from their frames. Returns arena[output], [clips, D].
    /// - Parameters:
    ///   - frames: uint8 [clips, F, S, S, 3] (the corpus's stored frames, RGB, rows top to bottom).
    public func forward(arena: Arena, frames: UnsafePointer<UInt8>, clips: Int) -> UnsafeMutablePointer<Float> {
        precondition(clips >= 1 && clips <= maxClips, "front-end batch of \(clips) clips outside 1...\(maxClips)")
        let a = arena, F = config.framesPerClip, S = config.frameSize, D = config.outputSize
        let N = clips * F, L = convolutions.count
        normalizePixels(out: a[input], pixels: frames, P: N * S * S, normalization: config.normalization)
        var x = UnsafePointer(a[input])
        for l in 0..<L {
            let geometry = convolutions[l]
            conv2dForward(out: a[conv[l]], inp: x, weight: w(convWeight[l]), bias: w(convBias[l]), scratch: a[scratch],
                          N: N, geometry: geometry, imagesPerChunk: imagesPerChunk[l], relu: true)
            if l < L - 1 {
                maxPool2DForward(out: a[pooled[l]], argmax: a[argmax[l]], inp: a[conv[l]], N: N, geometry: pools[l])
                x = UnsafePointer(a[pooled[l]])
            }
        }
        let last = convolutions[L - 1]
        globalAvgPoolForward(out: a[frameFeatures], inp: a[conv[L - 1]], N: N, HW: last.OH * last.OW, C: last.OC)
        frameMeanForward(out: a[clipFeatures], inp: a[frameFeatures], clips: clips, F: F, D: last.OC)
        linearForward(out: a[output], inp: a[clipFeatures], weight: w(projWeight), bias: w(projBias),
                      N: clips, C: last.OC, OC: D)
        return a[output]
    }

    /// Backward of `forward` (call after it, same `clips`): accumulates (+=) into the store's
    /// gradients of every front-end parameter. The front-end's own activation gradients are zeroed
    /// here; the frames get no gradient.
    /// - Parameters:
    ///   - dout: [clips, D] the gradient of the loss with respect to the clip embeddings.
    public func backward(arena: Arena, dout: UnsafePointer<Float>, clips: Int) {
        precondition(clips >= 1 && clips <= maxClips, "front-end batch of \(clips) clips outside 1...\(maxClips)")
        let a = arena, F = config.framesPerClip, D = config.outputSize
        let N = clips * F, L = convolutions.count
        let last = convolutions[L - 1]
        for (l, geometry) in convolutions.enumerated() {
            zero(a[dconv[l]], N * geometry.OH * geometry.OW * geometry.OC)
        }
        for (l, pool) in pools.enumerated() { zero(a[dpooled[l]], N * pool.OH * pool.OW * pool.C) }
        zero(a[dframeFeatures], N * last.OC)
        zero(a[dclipFeatures], clips * last.OC)

        linearBackward(dinp: a[dclipFeatures], dweight: g(projWeight), dbias: g(projBias), dout: dout,
                       inp: a[clipFeatures], weight: w(projWeight), N: clips, C: last.OC, OC: D)
        frameMeanBackward(dinp: a[dframeFeatures], dout: a[dclipFeatures], clips: clips, F: F, D: last.OC)
        globalAvgPoolBackward(dinp: a[dconv[L - 1]], dout: a[dframeFeatures], N: N, HW: last.OH * last.OW, C: last.OC)
        for l in stride(from: L - 1, through: 0, by: -1) {
            let geometry = convolutions[l]
            reluBackwardInPlace(d: a[dconv[l]], out: a[conv[l]], N: N * geometry.OH * geometry.OW * geometry.OC)
            let inp = l == 0 ? a[input] : a[pooled[l - 1]]
            conv2dBackward(dinp: l == 0 ? nil : a[dpooled[l - 1]], dweight: g(convWeight[l]), dbias: g(convBias[l]),
                           dout: a[dconv[l]], inp: inp, weight: w(convWeight[l]), scratch: a[scratch],
                           N: N, geometry: geometry, imagesPerChunk: imagesPerChunk[l])
            if l > 0 {
                maxPool2DBackward(dinp: a[dconv[l - 1]], dout: a[dpooled[l - 1]], argmax: a[argmax[l - 1]],
                                  N: N, geometry: pools[l - 1])
            }
        }
    }

    private func zero(_ p: UnsafeMutablePointer<Float>, _ count: Int) {
        Parallel.forEachRange(count, grain: 1 << 18) { r in (p + r.lowerBound).update(repeating: 0, count: r.count) }
    }
}
