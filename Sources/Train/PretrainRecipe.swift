import Foundation
import Recipe

/// Every setting of `videobert pretrain`, with its default: the one place defaults live.
/// Recipes (Recipes/tiny.yaml, demo.yaml, videobert-base.yaml, ...) override some and say why.
public struct PretrainRecipe: RecipeSection, Equatable {
    /// The ranges of the numeric settings (checked when a recipe is loaded; docs/RELIABILITY.md).
    public static var limits: [String: RecipeLimit] {
        var l: [String: RecipeLimit] = [
            "model.hidden_size": .int(1...65_536), "model.num_layers": .int(1...1024), "model.num_heads": .int(1...1024),
            "model.intermediate_size": .int(1...262_144), "model.max_positions": .int(1...1_048_576),
            "model.dropout": .number(0...0.99), "model.attention_dropout": .number(0...0.99),
            "model.initializer_range": .number(0...10),
            "log_every": .int(1...(1 << 40)),
        ]
        l.merge(ExampleSettings.limits(prefix: "data."), uniquingKeysWith: { a, _ in a })
        l.merge(Optimization.limits(prefix: "train."), uniquingKeysWith: { a, _ in a })
        l.merge(Evaluation.limits(prefix: "eval."), uniquingKeysWith: { a, _ in a })
        l.merge(Checkpointing.limits(prefix: "checkpoint."), uniquingKeysWith: { a, _ in a })
        return l
    }

    public struct Model: Codable, Sendable, Equatable {
        /// A Hugging Face BERT folder (config.json + model.safetensors + vocab.txt) to start from,
        /// e.g. models/minilm-l6-h384-uncased; empty: random initialisation with the sizes below.
        /// With `init`, the sizes come from its config.json and the ones below are ignored.
        public var initFrom = ""
        public var hiddenSize = 256
        public var numLayers = 4
        public var numHeads = 4
        public var intermediateSize = 1024
        public var maxPositions = 512
        public var dropout = 0.1
        public var attentionDropout = 0.1
        public var initializerRange = 0.02
        /// Visual-word embeddings: `random` (normal, initializer_range) or `centroids` (the k-means
        /// centroids through a fixed random projection).
        public var visualInit = "random"
        enum CodingKeys: String, CodingKey {
            case initFrom = "init", hiddenSize = "hidden_size", numLayers = "num_layers", numHeads = "num_heads"
            case intermediateSize = "intermediate_size", maxPositions = "max_positions", dropout
            case attentionDropout = "attention_dropout", initializerRange = "initializer_range", visualInit = "visual_init"
        }
    }

    public struct Optimization: Codable, Sendable, Equatable {
        public init() {}
        /// Ranges of these settings under `prefix` (shared by the VideoBERT and CBT recipes).
        public static func limits(prefix p: String) -> [String: RecipeLimit] {
            [p + "batch_size": .int(1...1_000_000), p + "grad_accum": .int(1...1_000_000), p + "steps": .int(1...(1 << 40)),
             p + "lr": .positive(max: 10), p + "warmup_steps": .int(0...(1 << 40)), p + "min_lr_ratio": .probability,
             p + "weight_decay": .number(0...10), p + "beta1": .number(0...0.999_999), p + "beta2": .number(0...0.999_999_999),
             p + "eps": .positive(max: 1), p + "clip_grad": .number(0...1e9), p + "seed": .int(0...(1 << 62)),
             p + "mlm_weight": .number(0...1e6), p + "mfm_weight": .number(0...1e6), p + "align_weight": .number(0...1e6),
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
        /// Loss = mlm · L_MLM + mfm · L_MFM + align · L_align.
        public var mlmWeight = 1.0
        public var mfmWeight = 1.0
        public var alignWeight = 1.0
        /// A run whose estimated memory (weights, gradients, AdamW moments, activations of one
        /// micro-batch) exceeds this many GiB is refused before anything is allocated; 0: the
        /// machine's physical memory.
        public var maxMemoryGB = 0.0
        enum CodingKeys: String, CodingKey {
            case batchSize = "batch_size", gradAccum = "grad_accum", steps, lr, warmupSteps = "warmup_steps", schedule
            case minLRRatio = "min_lr_ratio", weightDecay = "weight_decay", beta1, beta2, eps, clipGrad = "clip_grad", seed
            case mlmWeight = "mlm_weight", mfmWeight = "mfm_weight", alignWeight = "align_weight", maxMemoryGB = "max_memory_gb"
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
        func problem() -> String? {
            if batchSize < 1 || gradAccum < 1 { return "train.batch_size and train.grad_accum must be at least 1" }
            if steps < 1 { return "train.steps must be at least 1" }
            if !["linear", "cosine", "constant"].contains(schedule) { return "train.schedule must be linear, cosine or constant" }
            if lr <= 0 { return "train.lr must be positive" }
            return nil
        }
    }

    public struct Evaluation: Codable, Sendable, Equatable {
        public init() {}
        public static func limits(prefix p: String) -> [String: RecipeLimit] {
            [p + "every": .int(0...(1 << 40)), p + "batches": .int(0...1_000_000)]
        }
        /// Held-out evaluation every this many steps (and at the end); 0: only at the end.
        public var every = 100
        /// Batches per evaluation (the same batches every time).
        public var batches = 10
        public var split = "val"
    }

    public struct Checkpointing: Codable, Sendable, Equatable {
        public init() {}
        public static func limits(prefix p: String) -> [String: RecipeLimit] {
            [p + "every": .int(1...(1 << 40)), p + "keep": .int(1...1_000_000)]
        }
        /// A checkpoint every this many steps (and at the end).
        public var every = 500
        /// Checkpoints kept (the oldest are deleted).
        public var keep = 3
    }

    /// Which pretraining: `videobert` (this recipe type); `cbt` recipes are `CBTRecipe`s.
    public var variant = "videobert"
    /// The tokenized corpus folder (from `videobert tokenize`).
    public var corpus = ""
    /// The run folder: checkpoints/, metrics.jsonl, loss.svg.
    public var out = "runs/run"
    public var model = Model()
    public var data = ExampleSettings()
    public var train = Optimization()
    public var eval = Evaluation()
    public var checkpoint = Checkpointing()
    /// Training metrics are logged every this many steps.
    public var logEvery = 10

    public init() {}

    enum CodingKeys: String, CodingKey {
        case variant, corpus, out, model, data, train, eval, checkpoint, logEvery = "log_every"
    }

    /// Checks that types cannot express; the first problem as text.
    public func problem() -> String? {
        if variant != "videobert" { return "variant must be videobert here (cbt recipes are read as CBTRecipe)" }
        if corpus.isEmpty { return "corpus is required (a folder made by `videobert tokenize`)" }
        if !["random", "centroids"].contains(model.visualInit) { return "model.visual_init must be random or centroids" }
        if model.hiddenSize % max(model.numHeads, 1) != 0 { return "model.hidden_size must be a multiple of model.num_heads" }
        if model.numLayers < 1 || model.numHeads < 1 || model.hiddenSize < 1 { return "model sizes must be positive" }
        if let p = train.problem() { return p }
        if checkpoint.every < 1 || checkpoint.keep < 1 { return "checkpoint.every and checkpoint.keep must be at least 1" }
        if logEvery < 1 { return "log_every must be at least 1" }
        let d = data
        if d.maxTextTokens < 1 || d.maxVideoTokens < 1 { return "data.max_text_tokens and data.max_video_tokens must be at least 1" }
        if d.textVideo < 0 || d.textOnly < 0 || d.videoOnly < 0 || d.textVideo + d.textOnly + d.videoOnly <= 0 {
            return "data.text_video, data.text_only and data.video_only must be ≥ 0 with a positive sum"
        }
        if 1 + d.maxTextTokens + 1 + d.maxVideoTokens + 1 > model.maxPositions {
            return "data.max_text_tokens + data.max_video_tokens + 3 exceeds model.max_positions"
        }
        return nil
    }

    /// Learning rate at optimizer step `step` (1-based): linear warm-up, then the schedule.
    public func learningRate(step: Int) -> Double { train.learningRate(step: step) }
}

