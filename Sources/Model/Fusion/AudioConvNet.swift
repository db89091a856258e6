import Foundation
import Tensor

/// The settings of `AudioConvNet`. Codable with the names a checkpoint's config uses.
public struct AudioConvNetConfig: Codable, Sendable, Hashable {
    /// Log-mel frames per clip (the corpus' `clip_audio.npy` rows per clip).
    public var frames: Int = 96
    /// Mel bins (the corpus' `clip_audio.npy` columns; 64 with the VGGish settings).
    public var mels: Int = 64
    /// Output channels of the 3×3 convolutions; every one but the last is followed by ReLU and
    /// 2×2 max pooling, the last by ReLU and global average pooling.
    public var channels: [Int] = [16, 32, 64]
    /// D: the clip's audio embedding size.
    public var outputSize: Int = 256

    enum CodingKeys: String, CodingKey {
        case frames, mels, channels
        case outputSize = "output_size"
    }

    public init(frames: Int = 96, mels: Int = 64, channels: [Int] = [16, 32, 64], outputSize: Int = 256) {
        (self.frames, self.mels, self.channels, self.outputSize) = (frames, mels, channels, outputSize)
    }

    /// Throws a one-line error for settings the network cannot run with.
    public func validate() throws {
        guard !channels.isEmpty, channels.count <= 8, channels.allSatisfy({ $0 > 0 && $0 <= 4096 }) else {
            throw VideoBertError("audio conv net channels must be 1 to 8 numbers in 1...4096, got \(channels)")
        }
        guard outputSize > 0, outputSize <= 1 << 16 else { throw VideoBertError("audio conv net output_size must be in 1...65536") }
        let pools = channels.count - 1
        guard frames >= 1 << pools, mels >= 1 << pools, frames <= 1 << 16, mels <= 4096 else {
            throw VideoBertError("audio conv net: \(frames) frames × \(mels) mels cannot go through \(pools) 2×2 max-pooling layers")
        }
    }

    /// Parameters: Σ_l (c_{l−1}·9 + 1)·c_l + (c_L + 1)·D with c_0 = 1.
    public var parameterCount: Int {
        var total = 0, previous = 1
        for c in channels { total += (previous * 9 + 1) * c; previous = c }
        return total + (previous + 1) * outputSize
    }
}

/// A small trainable conv net over each clip's log-mel spectrogram (issue 17 item 5: the audio
/// path of the fusion variant, trained end to end through the combinatorial loss). In the spirit
/// of Everything at Once's DAVEnet (https://github.com/ninatu/everything_at_once,
/// everything_at_once/model/utils/davenet.py: convolutions over the spectrogram, ReLU, max pooling),
/// smaller, with one embedding per clip:
///
///     log-mel float [clips, frames, mels] = NHWC images [clips, frames, mels, 1]
///       → conv 3×3 pad 1 (→ c1) → ReLU → max pool 2×2 (floor)          [clips, frames/2, mels/2, c1]
///       → …
///       → conv 3×3 pad 1 (→ cL) → ReLU → global average pool            [clips, cL]
///       → linear (→ D)                                                  out [clips, D]
///
/// Parameters (PyTorch layouts, under `prefix`, "audio." by default):
///
///     <prefix>conv{l}.weight   [c_l, c_{l−1}, 3, 3]   (c_0 = 1)   weight decay
///     <prefix>conv{l}.bias     [c_l]                               no decay
///     <prefix>proj.weight      [D, c_L]                            weight decay
///     <prefix>proj.bias        [D]                                 no decay
///
/// The layers are those of the CBT front-end (Model/CBT/Convolution.swift, ImageLayers.swift);
/// activations live in the caller's Arena, sized for `maxClips` clips.
public final class AudioConvNet {
    public let config: AudioConvNetConfig
    public let prefix: String
    public let maxClips: Int
    public let convolutions: [Conv2DGeometry]
    public let pools: [PoolGeometry]
    public let imagesPerChunk: [Int]

    let store: ParameterStore
    let convWeight: [TensorSlot], convBias: [TensorSlot]
    let projWeight: TensorSlot, projBias: TensorSlot
    /// [N, H_l, W_l, c_l] each convolution's output after its in-place ReLU; pools and argmaxes.
    let conv: [TensorSlot], pooled: [TensorSlot], argmax: [TensorSlot]
    /// [N, c_L] global average pool.
    let clipFeatures: TensorSlot
    /// [maxClips, D] the audio embeddings (forward's result).
    public let output: TensorSlot
    let dconv: [TensorSlot], dpooled: [TensorSlot], dclipFeatures: TensorSlot
    let scratch: TensorSlot
    private var input: UnsafePointer<Float>?

    public static func parameterSpecs(_ config: AudioConvNetConfig, prefix: String = "audio.") -> [ParameterSpec] {
        var specs: [ParameterSpec] = []
        var previous = 1
        for (l, c) in config.channels.enumerated() {
            specs.append(ParameterSpec("\(prefix)conv\(l + 1).weight", [c, previous, 3, 3], weightDecay: true))
            specs.append(ParameterSpec("\(prefix)conv\(l + 1).bias", [c], weightDecay: false))
            previous = c
        }
        specs.append(ParameterSpec("\(prefix)proj.weight", [config.outputSize, previous], weightDecay: true))
        specs.append(ParameterSpec("\(prefix)proj.bias", [config.outputSize], weightDecay: false))
        return specs
    }

    /// He-normal convolutions N(0, 2/fan_in), the projection N(0, 1/c_L), biases 0 (as ConvFrontEnd).
    public static func initializeParameters(_ config: AudioConvNetConfig, store: ParameterStore, prefix: String = "audio.",
                                            rng: inout SeededRNG) {
        var previous = 1
        for (l, c) in config.channels.enumerated() {
            store.fillNormal("\(prefix)conv\(l + 1).weight", std: (2 / Float(previous * 9)).squareRoot(), rng: &rng)
            store.fill("\(prefix)conv\(l + 1).bias", value: 0)
            previous = c
        }
        store.fillNormal("\(prefix)proj.weight", std: 1 / Float(previous).squareRoot(), rng: &rng)
        store.fill("\(prefix)proj.bias", value: 0)
    }

    public init(config: AudioConvNetConfig, store: ParameterStore, prefix: String = "audio.", maxClips: Int,
                layout: inout ArenaLayout, chunkFloats: Int = 1 << 19) throws {
        try config.validate()
        guard maxClips > 0 else { throw VideoBertError("audio conv net needs at least one clip per batch") }
        for spec in Self.parameterSpecs(config, prefix: prefix) {
            guard let slot = store.slot(named: spec.name) else { throw VideoBertError("parameter '\(spec.name)' missing from the parameter store") }
            guard slot.shape == spec.shape else { throw VideoBertError("parameter '\(spec.name)' has shape \(slot.shape), expected \(spec.shape)") }
        }
        self.config = config
        self.prefix = prefix
        self.maxClips = maxClips
        self.store = store
        let L = config.channels.count, N = maxClips
        var convolutions: [Conv2DGeometry] = [], pools: [PoolGeometry] = []
        var (h, w, previous) = (config.frames, config.mels, 1)
        for (l, c) in config.channels.enumerated() {
            convolutions.append(Conv2DGeometry(H: h, W: w, C: previous, OC: c, KH: 3, KW: 3, stride: 1, padding: 1))
            if l < L - 1 {
                let pool = PoolGeometry(H: h, W: w, C: c, kernel: 2)
                pools.append(pool)
                (h, w) = (pool.OH, pool.OW)
            }
            previous = c
        }
        self.convolutions = convolutions
        self.pools = pools
        imagesPerChunk = convolutions.map { $0.imagesPerChunk(images: N, targetFloats: chunkFloats) }
        convWeight = (1...L).map { store.slot("\(prefix)conv\($0).weight") }
        convBias = (1...L).map { store.slot("\(prefix)conv\($0).bias") }
        projWeight = store.slot("\(prefix)proj.weight")
        projBias = store.slot("\(prefix)proj.bias")
        let cL = config.channels[L - 1]
        conv = convolutions.enumerated().map { l, g in layout.add("\(prefix)conv\(l + 1)", [N, g.OH, g.OW, g.OC]) }
        pooled = pools.enumerated().map { l, g in layout.add("\(prefix)pool\(l + 1)", [N, g.OH, g.OW, g.C]) }
        argmax = pools.enumerated().map { l, g in layout.add("\(prefix)pool\(l + 1).argmax", [N, g.OH, g.OW, g.C]) }
        clipFeatures = layout.add(prefix + "clip_features", [N, cL])
        output = layout.add(prefix + "output", [N, config.outputSize])
        dconv = convolutions.enumerated().map { l, g in layout.add("\(prefix)d.conv\(l + 1)", [N, g.OH, g.OW, g.OC]) }
        dpooled = pools.enumerated().map { l, g in layout.add("\(prefix)d.pool\(l + 1)", [N, g.OH, g.OW, g.C]) }
        dclipFeatures = layout.add(prefix + "d.clip_features", [N, cL])
        let scratchCount = zip(convolutions, imagesPerChunk).map { $0.scratchCount(imagesPerChunk: $1) }.max() ?? 0
        scratch = layout.add(prefix + "im2col", [scratchCount])
    }

    @inline(__always) private func w(_ s: TensorSlot) -> UnsafeMutablePointer<Float> { store.parameters + s.offset }
    @inline(__always) private func g(_ s: TensorSlot) -> UnsafeMutablePointer<Float> { store.gradients + s.offset }

    /// Embeds `clips` log-mel spectrograms. Returns arena[output], [clips, D].
    /// - Parameter logMel: float32 [clips, frames, mels]; must stay valid until `backward`.
    public func forward(arena a: Arena, logMel: UnsafePointer<Float>, clips: Int) -> UnsafeMutablePointer<Float> {
        precondition(clips >= 1 && clips <= maxClips, "audio conv net batch of \(clips) clips outside 1...\(maxClips)")
        let L = convolutions.count, N = clips
        input = logMel
        var x = logMel
        for l in 0..<L {
            conv2dForward(out: a[conv[l]], inp: x, weight: w(convWeight[l]), bias: w(convBias[l]), scratch: a[scratch],
                          N: N, geometry: convolutions[l], imagesPerChunk: imagesPerChunk[l], relu: true)
            if l < L - 1 {
                maxPool2DForward(out: a[pooled[l]], argmax: a[argmax[l]], inp: a[conv[l]], N: N, geometry: pools[l])
                x = UnsafePointer(a[pooled[l]])
            }
        }
        let last = convolutions[L - 1]
        globalAvgPoolForward(out: a[clipFeatures], inp: a[conv[L - 1]], N: N, HW: last.OH * last.OW, C: last.OC)
        linearForward(out: a[output], inp: a[clipFeatures], weight: w(projWeight), bias: w(projBias), N: N, C: last.OC,
                      OC: config.outputSize)
        return a[output]
    }

    /// Backward of the last `forward` (same `clips`): accumulates (+=) into the parameters'
    /// gradients; the spectrograms get none.
    /// - Parameter dout: [clips, D].
    public func backward(arena a: Arena, dout: UnsafePointer<Float>, clips: Int) {
        precondition(clips >= 1 && clips <= maxClips, "audio conv net batch of \(clips) clips outside 1...\(maxClips)")
        guard let input else { preconditionFailure("audio conv net: backward needs a preceding forward") }
        let L = convolutions.count, N = clips, last = convolutions[L - 1]
        for (l, geometry) in convolutions.enumerated() { zeroFloats(a[dconv[l]], N * geometry.OH * geometry.OW * geometry.OC) }
        for (l, pool) in pools.enumerated() { zeroFloats(a[dpooled[l]], N * pool.OH * pool.OW * pool.C) }
        zeroFloats(a[dclipFeatures], N * last.OC)
        linearBackward(dinp: a[dclipFeatures], dweight: g(projWeight), dbias: g(projBias), dout: dout, inp: a[clipFeatures],
                       weight: w(projWeight), N: N, C: last.OC, OC: config.outputSize)
        globalAvgPoolBackward(dinp: a[dconv[L - 1]], dout: a[dclipFeatures], N: N, HW: last.OH * last.OW, C: last.OC)
        for l in stride(from: L - 1, through: 0, by: -1) {
            let geometry = convolutions[l]
            reluBackwardInPlace(d: a[dconv[l]], out: a[conv[l]], N: N * geometry.OH * geometry.OW * geometry.OC)
            let inp = l == 0 ? input : UnsafePointer(a[pooled[l - 1]])
            conv2dBackward(dinp: l == 0 ? nil : a[dpooled[l - 1]], dweight: g(convWeight[l]), dbias: g(convBias[l]),
                           dout: a[dconv[l]], inp: inp, weight: w(convWeight[l]), scratch: a[scratch],
                           N: N, geometry: geometry, imagesPerChunk: imagesPerChunk[l])
            if l > 0 {
                maxPool2DBackward(dinp: a[dconv[l - 1]], dout: a[dpooled[l - 1]], argmax: a[argmax[l - 1]], N: N, geometry: pools[l - 1])
            }
        }
    }
}
