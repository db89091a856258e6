import Foundation
import Recipe

/// How a model is optimised: batch, schedule, AdamW, clipping, seed — the part of a recipe's
/// `train:` section every training loop reads (`TrainingLoop`). Each recipe keeps its own objective
/// weights beside it (VideoBERT's `train.mlm_weight`..., CBT's `objectives:`); fine-tuning recipes
/// give theirs (`CaptionRecipe.Optimization.optimizer`).
public struct Optimization: Codable, Sendable, Equatable {
    public init() {}
    /// Ranges of these settings under `prefix` (the `train:` section of the VideoBERT and CBT recipes).
    public static func limits(prefix p: String) -> [String: RecipeLimit] {
        [p + "batch_size": .int(1...1_000_000), p + "grad_accum": .int(1...1_000_000), p + "steps": .int(1...(1 << 40)),
         p + "lr": .positive(max: 10), p + "warmup_steps": .int(0...(1 << 40)), p + "min_lr_ratio": .probability,
         p + "weight_decay": .number(0...10), p + "beta1": .number(0...0.999_999), p + "beta2": .number(0...0.999_999_999),
         p + "eps": .positive(max: 1), p + "clip_grad": .number(0...1e9), p + "seed": .int(0...(1 << 62)),
         p + "max_memory_gb": .number(0...1e9)]
    }
    /// Examples per optimizer step = batch_size × grad_accum.
    public var batchSize = 32
    public var gradAccum = 1
    public var steps = 1000
    /// Peak learning rate, reached after `warmup_steps`.
    public var lr = 1e-4
    public var warmupSteps = 100
    /// After warm-up: `linear` or `cosine` decay to lr × min_lr_ratio at `steps`, or `constant`.
    public var schedule = "linear"
    public var minLRRatio = 0.0
    /// AdamW (torch.optim.AdamW semantics); no decay on biases and LayerNorm weights (as BERT).
    public var weightDecay = 0.01
    public var beta1 = 0.9
    public var beta2 = 0.999
    public var eps = 1e-6
    /// Global gradient-norm clipping; 0 turns it off.
    public var clipGrad = 1.0
    public var seed = 0
    /// A run whose estimated memory (weights, gradients, AdamW moments, activations of one
    /// micro-batch) exceeds this many GiB is refused before anything is allocated; 0: the
    /// machine's physical memory.
    public var maxMemoryGB = 0.0
    /// Where batches are drawn (`BatchLoader`): `background`, on a thread of their own while the
    /// step computes (at most 2 ahead), or `inline`, on the training thread. The same batches
    /// and bytes either way.
    public var loader = "background"
    enum CodingKeys: String, CodingKey {
        case batchSize = "batch_size", gradAccum = "grad_accum", steps, lr, warmupSteps = "warmup_steps", schedule
        case minLRRatio = "min_lr_ratio", weightDecay = "weight_decay", beta1, beta2, eps, clipGrad = "clip_grad", seed
        case maxMemoryGB = "max_memory_gb", loader
    }

    /// Learning rate at optimizer step `step` (1-based): linear warm-up, then the schedule.
    /// Every training loop's (`TrainingLoop` reads this section; the captioner's gives one).
    public func learningRate(step: Int) -> Double {
        if warmupSteps > 0 && step <= warmupSteps { return lr * Double(step) / Double(warmupSteps) }
        let span = Double(max(steps - warmupSteps, 1))
        let progress = min(1, Double(step - warmupSteps) / span)
        let floor = lr * minLRRatio
        switch schedule {
        case "cosine": return floor + (lr - floor) * 0.5 * (1 + Foundation.cos(Double.pi * progress))
        case "constant": return lr
        default: return floor + (lr - floor) * (1 - progress)
        }
    }

    /// Checks of the optimisation settings; the first problem as text.
    public func problem() -> String? {
        if batchSize < 1 || gradAccum < 1 { return "train.batch_size and train.grad_accum must be at least 1" }
        if steps < 1 { return "train.steps must be at least 1" }
        if !["linear", "cosine", "constant"].contains(schedule) { return "train.schedule must be linear, cosine or constant" }
        if lr <= 0 { return "train.lr must be positive" }
        if !["background", "inline"].contains(loader) { return "train.loader must be background or inline" }
        return nil
    }
}
