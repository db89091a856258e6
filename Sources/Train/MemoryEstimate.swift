import Foundation
import Model
import Tensor

/// What a training configuration needs in memory, estimated before anything is allocated
/// (docs/RELIABILITY.md, "absurd settings"), so that a recipe asking for terabytes is a one-line
/// error naming the keys instead of an allocation abort.
///
/// BERT training (Sources/Model/BertForPreTraining.swift): four Float32 copies of every
/// parameter (weights, gradients, AdamW m and v), and per position of a micro-batch the saved
/// activations and their gradients (the arena of BertForPreTraining): about 10·H + 2·I values per
/// layer, the attention probabilities (heads × T) twice, and the logits over the vocabulary.
public struct MemoryEstimate: Sendable, Equatable {
    public var parameterBytes: Int
    public var activationBytes: Int
    public var total: Int { parameterBytes &+ activationBytes }

    /// nil when the sizes overflow `Int` (which is far past any machine anyway).
    public static func bertTraining(config c: BertConfig, batch: Int, sequence t: Int) -> MemoryEstimate? {
        transformer(hidden: c.hiddenSize, layers: c.numHiddenLayers, heads: c.numAttentionHeads, intermediate: c.intermediateSize,
                    embeddings: c.vocabSize + c.maxPositionEmbeddings + c.typeVocabSize, logits: c.vocabSize, batch: batch, sequence: t)
    }

    /// A post-LayerNorm transformer encoder trained with AdamW: `embeddings` rows of width `hidden`,
    /// `logits` outputs per position.
    public static func transformer(hidden h: Int, layers l: Int, heads: Int, intermediate i: Int, embeddings: Int, logits: Int,
                                   batch: Int, sequence t: Int) -> MemoryEstimate? {
        guard let perLayer = Bounded.sum(Bounded.product([4, h, h]) ?? -1, Bounded.product([2, h, i]) ?? -1),
              let layerParams = Bounded.product([perLayer, l]),
              let emb = Bounded.product([embeddings, h]),
              let params = Bounded.sum(layerParams, emb),
              let paramBytes = Bounded.product([params, 4, 4]) else { return nil }
        guard let attn = Bounded.product([2, heads, t]),
              let perPos = Bounded.sum(Bounded.sum(Bounded.product([10, h]) ?? -1, Bounded.product([2, i]) ?? -1) ?? -1, attn),
              let perPosLayers = Bounded.product([perPos, l]),
              let withLogits = Bounded.sum(perPosLayers, Bounded.product([2, logits]) ?? -1),
              let actBytes = Bounded.product([withLogits, batch, t, 4, 2]) else { return nil }
        return MemoryEstimate(parameterBytes: paramBytes, activationBytes: actBytes)
    }

    /// The CBT convolutional front-end (Sources/Model/CBT/ConvFrontEnd.swift) over `frames`
    /// S×S RGB frames: per 3×3 convolution at side S_l (halved after each but the last), its
    /// im2col buffer (9·c_in·S_l²), its output before and after ReLU (2·c·S_l²) and the pooled
    /// output (c·S_l²/4), each with its gradient; parameters with gradients and AdamW moments.
    public static func convFrontEnd(channels: [Int], size: Int, frames: Int) -> MemoryEstimate? {
        var perFrame = 0, params = 0
        var (side, inputs) = (size, 3)
        for c in channels {
            guard let area = Bounded.product([side, side]),
                  let values = Bounded.sum(Bounded.product([9 * inputs, area]) ?? -1, Bounded.product([2 * c, area]) ?? -1),
                  let all = Bounded.sum(values, Bounded.product([c, area / 4]) ?? -1),
                  let total = Bounded.sum(perFrame, all),
                  let p = Bounded.sum(params, Bounded.product([9 * inputs + 1, c]) ?? -1) else { return nil }
            (perFrame, params) = (total, p)
            (side, inputs) = (max(side / 2, 1), c)
        }
        guard let paramBytes = Bounded.product([params, 4, 4]), let actBytes = Bounded.product([perFrame, frames, 4, 2]) else { return nil }
        return MemoryEstimate(parameterBytes: paramBytes, activationBytes: actBytes)
    }

    /// The sum of several estimates (nil if any is nil or the sum overflows).
    public static func sum(_ parts: [MemoryEstimate?]) -> MemoryEstimate? {
        var p = 0, a = 0
        for part in parts {
            guard let part, let np = Bounded.sum(p, part.parameterBytes), let na = Bounded.sum(a, part.activationBytes) else { return nil }
            p = np; a = na
        }
        return MemoryEstimate(parameterBytes: p, activationBytes: a)
    }

    /// The limit in bytes: `gb` GiB, or the machine's physical memory when `gb` is 0.
    public static func limit(gb: Double) -> Int {
        gb > 0 ? Int(min(gb, 1e9) * Double(1 << 30)) : Int(clamping: ProcessInfo.processInfo.physicalMemory)
    }

    static func gib(_ bytes: Int) -> String {
        let g = Double(bytes) / Double(1 << 30)
        return g >= 10 ? String(format: "%.0f GiB", g) : String(format: "%.2f GiB", g)
    }

    /// Throws when `estimate` (nil: overflowed) exceeds the limit. `modelKeys` and `batchKeys`
    /// name the settings that drive the parameter and activation parts.
    public static func check(_ estimate: MemoryEstimate?, maxGB: Double, modelKeys: String, batchKeys: String, file: String?) throws {
        let limit = limit(gb: maxGB)
        let machine = maxGB > 0 ? "train.max_memory_gb (\(gib(limit)))" : "this machine's \(gib(limit)) of memory"
        guard let e = estimate else {
            throw VideoBertError("the model and batch sizes overflow any memory estimate; lower \(modelKeys) or \(batchKeys)", file: file)
        }
        guard e.total > limit else { return }
        let keys = e.parameterBytes >= e.activationBytes ? modelKeys : batchKeys
        throw VideoBertError("training needs about \(gib(e.total)) (parameters and optimizer \(gib(e.parameterBytes)), activations \(gib(e.activationBytes))), more than \(machine); lower \(keys), or set train.max_memory_gb", file: file)
    }
}
