import Tensor

/// The settings of `FeatureProjection`. Codable with the names a checkpoint's config uses.
public struct FeatureProjectionConfig: Codable, Sendable, Hashable {
    /// dim: the imported features' size (S3D: 1024, CLIP ViT-B/32: 512).
    public var inputSize: Int
    /// D: the clip embedding's size (the visual transformer's hidden size).
    public var outputSize: Int
    /// H: the hidden layer of the 2-layer MLP; 0 for a single linear layer.
    public var hiddenSize: Int

    enum CodingKeys: String, CodingKey {
        case inputSize = "input_size"
        case outputSize = "output_size"
        case hiddenSize = "hidden_size"
    }

    public init(inputSize: Int, outputSize: Int, hiddenSize: Int = 0) {
        self.inputSize = inputSize
        self.outputSize = outputSize
        self.hiddenSize = hiddenSize
    }

    public var isMLP: Bool { hiddenSize > 0 }

    public func validate() throws {
        guard inputSize > 0, outputSize > 0, hiddenSize >= 0 else {
            throw VideoBertError("feature projection needs positive input_size and output_size and hidden_size ≥ 0")
        }
    }
}

/// The trainable front-end over imported clip features (issue 4 (b): S3D or CLIP vectors from
/// .npy files, one per clip): a linear layer, or a 2-layer MLP with GELU (erf), to the visual
/// transformer's size D. CBT (Sun et al. 2019 §4) feeds pre-extracted S3D features through a
/// learned projection in exactly this place.
///
///     linear:  features [clips, dim] → linear → out [clips, D]
///     MLP:     features [clips, dim] → linear (→ H) → GELU → linear (→ D) → out [clips, D]
///
/// Parameters (PyTorch nn.Linear layout [out, in]):
///
///     linear:  <prefix>proj.weight [D, dim], <prefix>proj.bias [D]
///     MLP:     <prefix>fc1.weight [H, dim], <prefix>fc1.bias [H], <prefix>fc2.weight [D, H], <prefix>fc2.bias [D]
///
/// with prefix "frontend." by default; weights decay, biases do not. Activations live in the
/// caller's Arena (buffers added by `init`, sized for `maxClips`).
public final class FeatureProjection {
    public let config: FeatureProjectionConfig
    public let prefix: String
    public let maxClips: Int
    let store: ParameterStore
    /// Linear: [proj]; MLP: [fc1, fc2].
    let weights: [TensorSlot], biases: [TensorSlot]
    /// MLP only: [maxClips, H] pre-activation, GELU output, and their gradients.
    let hidden: TensorSlot?, activated: TensorSlot?, dhidden: TensorSlot?, dactivated: TensorSlot?
    /// [maxClips, D] the clip embeddings.
    public let output: TensorSlot

    public static func parameterSpecs(_ config: FeatureProjectionConfig, prefix: String = "frontend.") -> [ParameterSpec] {
        let (dim, D, H) = (config.inputSize, config.outputSize, config.hiddenSize)
        if !config.isMLP {
            return [ParameterSpec(prefix + "proj.weight", [D, dim], weightDecay: true),
                    ParameterSpec(prefix + "proj.bias", [D], weightDecay: false)]
        }
        return [ParameterSpec(prefix + "fc1.weight", [H, dim], weightDecay: true),
                ParameterSpec(prefix + "fc1.bias", [H], weightDecay: false),
                ParameterSpec(prefix + "fc2.weight", [D, H], weightDecay: true),
                ParameterSpec(prefix + "fc2.bias", [D], weightDecay: false)]
    }

    /// Weights N(0, 1/fan_in) (unit-scale outputs for unit-scale inputs), biases 0.
    public static func initializeParameters(_ config: FeatureProjectionConfig, store: ParameterStore, prefix: String = "frontend.",
                                            rng: inout SeededRNG) {
        for spec in parameterSpecs(config, prefix: prefix) {
            if spec.shape.count == 2 {
                store.fillNormal(spec.name, std: 1 / Float(spec.shape[1]).squareRoot(), rng: &rng)
            } else {
                store.fill(spec.name, value: 0)
            }
        }
    }

    public init(config: FeatureProjectionConfig, store: ParameterStore, prefix: String = "frontend.", maxClips: Int,
                layout: inout ArenaLayout) throws {
        try config.validate()
        guard maxClips > 0 else { throw VideoBertError("feature projection needs at least one clip per batch") }
        let specs = Self.parameterSpecs(config, prefix: prefix)
        for spec in specs {
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
        weights = specs.filter { $0.shape.count == 2 }.map { store.slot($0.name) }
        biases = specs.filter { $0.shape.count == 1 }.map { store.slot($0.name) }
        if config.isMLP {
            hidden = layout.add(prefix + "hidden", [maxClips, config.hiddenSize])
            activated = layout.add(prefix + "hidden.gelu", [maxClips, config.hiddenSize])
            dhidden = layout.add(prefix + "d.hidden", [maxClips, config.hiddenSize])
            dactivated = layout.add(prefix + "d.hidden.gelu", [maxClips, config.hiddenSize])
        } else {
            (hidden, activated, dhidden, dactivated) = (nil, nil, nil, nil)
        }
        output = layout.add(prefix + "output", [maxClips, config.outputSize])
    }

    @inline(__always) private func w(_ s: TensorSlot) -> UnsafeMutablePointer<Float> { store.parameters + s.offset }
    @inline(__always) private func g(_ s: TensorSlot) -> UnsafeMutablePointer<Float> { store.gradients + s.offset }

    /// Projects `clips` feature vectors. Returns arena[output], [clips, D].
    /// - Parameter features: [clips, dim] float32 (convert float16 files on loading).
    public func forward(arena: Arena, features: UnsafePointer<Float>, clips: Int) -> UnsafeMutablePointer<Float> {
        precondition(clips >= 1 && clips <= maxClips, "projection batch of \(clips) clips outside 1...\(maxClips)")
        let (dim, D, H) = (config.inputSize, config.outputSize, config.hiddenSize)
        let a = arena
        if let hidden, let activated {
            linearForward(out: a[hidden], inp: features, weight: w(weights[0]), bias: w(biases[0]), N: clips, C: dim, OC: H)
            geluForward(out: a[activated], inp: a[hidden], N: clips * H)
            linearForward(out: a[output], inp: a[activated], weight: w(weights[1]), bias: w(biases[1]), N: clips, C: H, OC: D)
        } else {
            linearForward(out: a[output], inp: features, weight: w(weights[0]), bias: w(biases[0]), N: clips, C: dim, OC: D)
        }
        return a[output]
    }

    /// Backward of `forward` (same features and clips): accumulates (+=) into the store's
    /// gradients; the projection's own activation gradients are zeroed here.
    /// - Parameters:
    ///   - dout: [clips, D].
    ///   - features: [clips, dim] as given to forward.
    ///   - dfeatures: [clips, dim] accumulated (+=), or nil (imported features are data).
    public func backward(arena: Arena, dout: UnsafePointer<Float>, features: UnsafePointer<Float>, clips: Int,
                         dfeatures: UnsafeMutablePointer<Float>? = nil) {
        precondition(clips >= 1 && clips <= maxClips, "projection batch of \(clips) clips outside 1...\(maxClips)")
        let (dim, D, H) = (config.inputSize, config.outputSize, config.hiddenSize)
        let a = arena
        if let hidden, let activated, let dhidden, let dactivated {
            a[dhidden].update(repeating: 0, count: clips * H)
            a[dactivated].update(repeating: 0, count: clips * H)
            linearBackward(dinp: a[dactivated], dweight: g(weights[1]), dbias: g(biases[1]), dout: dout, inp: a[activated],
                           weight: w(weights[1]), N: clips, C: H, OC: D)
            geluBackward(dinp: a[dhidden], inp: a[hidden], dout: a[dactivated], N: clips * H)
            linearBackward(dinp: dfeatures, dweight: g(weights[0]), dbias: g(biases[0]), dout: a[dhidden], inp: features,
                           weight: w(weights[0]), N: clips, C: dim, OC: H)
        } else {
            linearBackward(dinp: dfeatures, dweight: g(weights[0]), dbias: g(biases[0]), dout: dout, inp: features,
                           weight: w(weights[0]), N: clips, C: dim, OC: D)
        }
    }
}
