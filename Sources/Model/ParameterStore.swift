import Tensor

/// A named tensor carved out of a flat Float buffer: elements `offset ..< offset + count`,
/// row-major with `shape`.
public struct TensorSlot: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let shape: [Int]
    /// Index of the first element, in floats, from the start of the buffer.
    public let offset: Int
    public let count: Int

    public init(name: String, shape: [Int], offset: Int) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(name) \(shape)")
        self.name = name
        self.shape = shape
        self.offset = offset
        self.count = shape.reduce(1, *)
    }

    public var range: Range<Int> { offset..<(offset + count) }
    public var description: String { "\(name) \(shape) @\(offset)" }
}

/// One parameter tensor to allocate: its checkpoint name, its shape, and whether AdamW's weight
/// decay applies to it (BERT: weights of linear layers and embeddings decay; biases and
/// LayerNorm weights do not, Devlin et al. 2019 / HF `run_pretraining`'s no-decay list).
public struct ParameterSpec: Sendable, Hashable {
    public var name: String
    public var shape: [Int]
    public var weightDecay: Bool

    public init(_ name: String, _ shape: [Int], weightDecay: Bool) {
        self.name = name
        self.shape = shape
        self.weightDecay = weightDecay
    }
}

/// All parameters of a model in ONE flat Float allocation carved by a size table (the specs, in
/// their given order, without padding), as llm.c's `ParameterTensors`. Gradients mirror it in one
/// allocation, and AdamW's two moment buffers likewise, so the optimizer, gradient clipping and
/// zeroing are single passes over flat memory.
///
/// Fusing trick: tensors that are adjacent in the spec order are adjacent in memory. Listing
/// Hugging Face's `query.weight`, `key.weight`, `value.weight` ([C, C] each) one after another
/// gives the fused [3C, C] projection weight of `attentionForward` for free (`contiguous(_:)`),
/// while each keeps its own checkpoint name.
///
/// Not Sendable: it owns raw memory that kernels mutate in place.
public final class ParameterStore {
    /// The tensors, in allocation order.
    public let slots: [TensorSlot]
    /// `weightDecay[i]` says whether AdamW decays `slots[i]`.
    public let weightDecay: [Bool]
    /// `frozen[i]`: AdamW leaves `slots[i]` as it is (no update, no decay) — parts of a model a
    /// fine-tuning run does not train. Set before the optimizer is made (AdamW reads it once).
    public var frozen: [Bool]
    /// Total number of parameters (floats in each buffer).
    public let count: Int
    /// Whether gradient and moment buffers exist (false for inference-only stores).
    public let training: Bool

    /// [count] the parameters.
    public let parameters: UnsafeMutablePointer<Float>
    private let gradientStorage: UnsafeMutablePointer<Float>?
    private let firstMomentStorage: UnsafeMutablePointer<Float>?
    private let secondMomentStorage: UnsafeMutablePointer<Float>?
    private let indexByName: [String: Int]

    /// Allocates zeroed buffers for `specs`. With `training: false` only parameters are allocated.
    /// Throws on an empty or duplicate name.
    public init(_ specs: [ParameterSpec], training: Bool = true) throws {
        var slots: [TensorSlot] = []
        var index: [String: Int] = [:]
        var offset = 0
        for spec in specs {
            guard !spec.name.isEmpty else { throw VideoBertError("parameter with an empty name") }
            guard index[spec.name] == nil else { throw VideoBertError("duplicate parameter name '\(spec.name)'") }
            guard spec.shape.allSatisfy({ $0 >= 0 }) else {
                throw VideoBertError("parameter '\(spec.name)' has a negative dimension \(spec.shape)")
            }
            index[spec.name] = slots.count
            let slot = TensorSlot(name: spec.name, shape: spec.shape, offset: offset)
            slots.append(slot)
            offset += slot.count
        }
        self.slots = slots
        self.weightDecay = specs.map(\.weightDecay)
        self.frozen = [Bool](repeating: false, count: specs.count)
        self.count = offset
        self.training = training
        self.indexByName = index
        self.parameters = allocateFloats(offset)
        self.gradientStorage = training ? allocateFloats(offset) : nil
        self.firstMomentStorage = training ? allocateFloats(offset) : nil
        self.secondMomentStorage = training ? allocateFloats(offset) : nil
    }

    deinit {
        freeFloats(parameters)
        if let p = gradientStorage { freeFloats(p) }
        if let p = firstMomentStorage { freeFloats(p) }
        if let p = secondMomentStorage { freeFloats(p) }
    }

    /// [count] gradients, same layout as `parameters`. Requires `training`.
    public var gradients: UnsafeMutablePointer<Float> {
        guard let p = gradientStorage else { preconditionFailure("ParameterStore built with training: false has no gradients") }
        return p
    }
    /// [count] AdamW first moments (torch `exp_avg`). Requires `training`.
    public var firstMoment: UnsafeMutablePointer<Float> {
        guard let p = firstMomentStorage else { preconditionFailure("ParameterStore built with training: false has no optimizer state") }
        return p
    }
    /// [count] AdamW second moments (torch `exp_avg_sq`). Requires `training`.
    public var secondMoment: UnsafeMutablePointer<Float> {
        guard let p = secondMomentStorage else { preconditionFailure("ParameterStore built with training: false has no optimizer state") }
        return p
    }

    /// Bytes held by all buffers.
    public var bytes: Int { count * MemoryLayout<Float>.stride * (training ? 4 : 1) }

    // MARK: Lookup (resolve once, outside hot loops)

    /// The slot named `name`, or nil.
    public func slot(named name: String) -> TensorSlot? {
        indexByName[name].map { slots[$0] }
    }

    /// The slot named `name`; a missing name is a programming error.
    public func slot(_ name: String) -> TensorSlot {
        guard let s = slot(named: name) else { preconditionFailure("no parameter named '\(name)'") }
        return s
    }

    /// Offset in floats of `name` in every buffer.
    public func offset(of name: String) -> Int { slot(name).offset }

    /// The parameter tensor `name` as a buffer over the flat storage (no copy).
    public func parameter(_ name: String) -> UnsafeMutableBufferPointer<Float> {
        let s = slot(name)
        return UnsafeMutableBufferPointer(start: parameters + s.offset, count: s.count)
    }

    /// The gradient of `name` as a buffer over the flat storage (no copy).
    public func gradient(_ name: String) -> UnsafeMutableBufferPointer<Float> {
        let s = slot(name)
        return UnsafeMutableBufferPointer(start: gradients + s.offset, count: s.count)
    }

    /// A slot spanning `names` when they are stored back to back in this order (e.g. query, key
    /// and value weights → the fused [3C, C] projection), else nil. Its shape is the first
    /// tensor's with the leading dimension summed; all must agree on the remaining dimensions.
    public func contiguous(_ names: [String]) -> TensorSlot? {
        guard let first = names.first, let head = slot(named: first) else { return nil }
        var end = head.offset + head.count
        var leading = head.shape.first ?? 1
        for name in names.dropFirst() {
            guard let s = slot(named: name), s.offset == end,
                  Array(s.shape.dropFirst()) == Array(head.shape.dropFirst()) else { return nil }
            end += s.count
            leading += s.shape.first ?? 1
        }
        let shape = head.shape.isEmpty ? [names.count] : [leading] + head.shape.dropFirst()
        return TensorSlot(name: names.joined(separator: "+"), shape: shape, offset: head.offset)
    }

    // MARK: Whole-buffer operations

    /// Sets every gradient to zero (before a step's backward, which accumulates).
    public func zeroGradients() {
        let g = gradients
        Parallel.forEachRange(count, grain: 1 << 18) { r in
            (g + r.lowerBound).update(repeating: 0, count: r.count)
        }
    }

    /// Name of the first tensor whose gradient holds a NaN or an infinity, or nil. A serial scan:
    /// call it when `gradientNorm` (computed for clipping anyway) is not finite, to name the tensor.
    public func firstNonFiniteGradient() -> String? {
        let g = gradients
        for s in slots {
            var finite = true
            for i in s.range where !g[i].isFinite { finite = false; break }
            if !finite { return s.name }
        }
        return nil
    }

    /// Name of the first parameter tensor holding a NaN or an infinity, or nil.
    public func firstNonFiniteParameter() -> String? {
        for s in slots {
            for i in s.range where !parameters[i].isFinite { return s.name }
        }
        return nil
    }

    /// Fills parameter `name` with N(0, std²) draws (BERT's initializer_range 0.02) in element order.
    public func fillNormal(_ name: String, std: Float, rng: inout SeededRNG) {
        let p = parameter(name)
        for i in 0..<p.count { p[i] = rng.nextGaussian() * std }
    }

    /// Fills parameter `name` with `value` (LayerNorm weight 1, biases 0).
    public func fill(_ name: String, value: Float) {
        let p = parameter(name)
        p.update(repeating: value)
    }
}

/// 64-byte aligned, zeroed storage for `count` floats (cache-line alignment for sgemm and SIMD).
func allocateFloats(_ count: Int) -> UnsafeMutablePointer<Float> {
    let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
    let p = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    p.initialize(repeating: 0, count: max(count, 1))
    return p
}

func freeFloats(_ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).deallocate()
}
