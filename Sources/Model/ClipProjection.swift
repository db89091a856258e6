import Foundation
import Tensor

/// The linear map from continuous clip features (D wide: a CBT checkpoint's visual transformer
/// outputs) into a BERT's embedding space (C wide), for captioners fine-tuned from CBT
/// checkpoints: y = x·Wᵀ + b, whose rows become BertForPreTraining input-embedding rows (the
/// BERT adds position and token-type embeddings and its embedding LayerNorm, as for a word).
///
/// Parameters, in their own ParameterStore (trained beside the BERT's), saved as
/// `clip_projection.safetensors` (metadata {"format": "videobert-clip-projection"}):
///
///   clip_projection.weight   [C, D]
///   clip_projection.bias     [C]
///
/// Not Sendable: it owns a store whose buffers its methods mutate.
public final class ClipProjection {
    public static let fileName = Checkpoint.File.clipProjection.rawValue
    public static let weightName = "clip_projection.weight"
    public static let biasName = "clip_projection.bias"

    /// D and C.
    public let inputSize, outputSize: Int
    public let store: ParameterStore

    public init(inputSize: Int, outputSize: Int, training: Bool = true) throws {
        guard inputSize > 0, outputSize > 0 else { throw VideoBertError("clip projection sizes must be positive") }
        self.inputSize = inputSize
        self.outputSize = outputSize
        store = try ParameterStore([ParameterSpec(Self.weightName, [outputSize, inputSize], weightDecay: true),
                                    ParameterSpec(Self.biasName, [outputSize], weightDecay: false)], training: training)
    }

    /// BERT's initialisation: weight normal(0, std) (the BERT's initializer_range), bias 0.
    public func initialize(std: Float, seed: UInt64) {
        initializeBertStyle(store, names: [Self.weightName, Self.biasName], std: std, seed: seed)
    }

    private var weight: UnsafeMutablePointer<Float> { store.parameters + store.offset(of: Self.weightName) }
    private var bias: UnsafeMutablePointer<Float> { store.parameters + store.offset(of: Self.biasName) }

    /// y [rows, C] of x [rows, D].
    public func forward(_ x: [Float], rows: Int) -> [Float] {
        precondition(x.count == rows * inputSize, "clip projection: \(rows) rows need \(rows * inputSize) values, got \(x.count)")
        var y = [Float](repeating: 0, count: rows * outputSize)
        guard rows > 0 else { return y }
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                linearForward(out: yp.baseAddress!, inp: xp.baseAddress!, weight: weight, bias: bias, N: rows, C: inputSize, OC: outputSize)
            }
        }
        return y
    }

    /// Accumulates (+=) d(weight) and d(bias) from dy [rows, C] and the forward's x [rows, D];
    /// with `inputGradient`, also returns d(x) [rows, D] (when the features train too).
    @discardableResult
    public func backward(dout dy: [Float], input x: [Float], rows: Int, inputGradient: Bool = false) -> [Float]? {
        precondition(store.training, "a clip projection built with training: false has no gradients")
        precondition(dy.count == rows * outputSize && x.count == rows * inputSize, "clip projection backward: shapes do not match \(rows) rows")
        var dx: [Float]? = inputGradient ? [Float](repeating: 0, count: rows * inputSize) : nil
        guard rows > 0 else { return dx }
        let gw = store.gradients + store.offset(of: Self.weightName), gb = store.gradients + store.offset(of: Self.biasName)
        dy.withUnsafeBufferPointer { d in
            x.withUnsafeBufferPointer { xp in
                if dx == nil {
                    linearBackward(dinp: nil, dweight: gw, dbias: gb, dout: d.baseAddress!, inp: xp.baseAddress!, weight: weight,
                                   N: rows, C: inputSize, OC: outputSize)
                } else {
                    dx!.withUnsafeMutableBufferPointer { g in
                        linearBackward(dinp: g.baseAddress!, dweight: gw, dbias: gb, dout: d.baseAddress!, inp: xp.baseAddress!, weight: weight,
                                       N: rows, C: inputSize, OC: outputSize)
                    }
                }
            }
        }
        return dx
    }

    public func save(to folder: String) throws {
        let store = store
        let tensors = store.slots.map { slot in
            (name: slot.name, shape: slot.shape, values: UnsafeBufferPointer(start: store.parameters + slot.offset, count: slot.count))
        }
        try SafeTensors.write(tensors, metadata: ["format": "videobert-clip-projection"],
                              to: (folder as NSString).appendingPathComponent(Self.fileName))
    }

    /// The projection saved in `folder` (its sizes from the file).
    public static func load(from folder: String, training: Bool = false) throws -> ClipProjection {
        let path = (folder as NSString).appendingPathComponent(fileName)
        let file = try SafeTensors.read(path)
        guard let shape = file.shape(weightName), shape.count == 2, file.shape(biasName) == [shape[0]] else {
            throw VideoBertError("expected \(weightName) [C, D] and \(biasName) [C]", file: path)
        }
        let projection = try ClipProjection(inputSize: shape[1], outputSize: shape[0], training: training)
        try projection.loadWeights(from: folder)
        return projection
    }

    /// Loads the weights saved in `folder` into this projection (same sizes).
    public func loadWeights(from folder: String) throws {
        let path = (folder as NSString).appendingPathComponent(Self.fileName)
        let file = try SafeTensors.read(path)
        for slot in store.slots {
            guard file.shape(slot.name) == slot.shape else {
                throw VideoBertError("\(slot.name) is \(file.shape(slot.name).map { "\($0)" } ?? "missing"), expected \(slot.shape)", file: path)
            }
            let values = try file.floats(slot.name)
            values.withUnsafeBufferPointer { (store.parameters + slot.offset).update(from: $0.baseAddress!, count: slot.count) }
        }
    }
}
