import Foundation
import Recipe
import Tasks

/// Every setting of `videobert finetune caption`, with its default: the one place defaults live.
/// Recipes/finetune-caption-demo.yaml overrides some and says why.
public struct CaptionRecipe: RecipeSection, Equatable {
    /// The ranges of the numeric settings (checked when a recipe is loaded; docs/RELIABILITY.md).
    public static let limits: [String: RecipeLimit] = [
        "data.max_video_tokens": .int(1...65_536), "data.max_caption_tokens": .int(1...65_536),
        "train.batch_size": .int(1...1_000_000), "train.steps": .int(1...(1 << 40)), "train.lr": .positive(max: 10),
        "train.warmup_steps": .int(0...(1 << 40)), "train.min_lr_ratio": .probability, "train.weight_decay": .number(0...10),
        "train.beta1": .number(0...0.999_999), "train.beta2": .number(0...0.999_999_999), "train.eps": .positive(max: 1),
        "train.clip_grad": .number(0...1e9), "train.seed": .int(0...(1 << 62)), "train.dropout": .number(-1...0.99),
        "train.max_memory_gb": .number(0...1e9), "train.anticipation_weight": .number(0...1e6),
        "eval.every": .int(0...(1 << 40)), "eval.batches": .int(0...1_000_000),
        "checkpoint.every": .int(1...(1 << 40)), "checkpoint.keep": .int(1...1_000_000), "log_every": .int(1...(1 << 40)),
    ]

    public struct DataSettings: Codable, Sendable, Equatable {
        /// Visual words kept per step (the first clips of its span).
        public var maxVideoTokens = 32
        /// Caption WordPieces kept (the head of the sentence); generation stops at this length too.
        public var maxCaptionTokens = 24
        /// Corpus splits trained on and evaluated on.
        public var trainSplit = "train"
        public var evalSplit = "val"
        enum CodingKeys: String, CodingKey {
            case maxVideoTokens = "max_video_tokens", maxCaptionTokens = "max_caption_tokens"
            case trainSplit = "train_split", evalSplit = "eval_split"
        }
    }

    public struct Optimization: Codable, Sendable, Equatable {
        public var batchSize = 32
        public var steps = 1000
        /// Peak learning rate, after `warmup_steps` of linear warm-up; then `linear`, `cosine` or `constant`.
        public var lr = 1e-4
        public var warmupSteps = 100
        public var schedule = "linear"
        public var minLRRatio = 0.0
        /// AdamW (torch.optim.AdamW semantics); no decay on biases and LayerNorm weights.
        public var weightDecay = 0.01
        public var beta1 = 0.9
        public var beta2 = 0.999
        public var eps = 1e-6
        /// Global gradient-norm clipping; 0 turns it off.
        public var clipGrad = 1.0
        public var seed = 0
        /// Dropout during fine-tuning (hidden and attention); negative: keep the checkpoint's.
        public var dropout = -1.0
        /// CBT init only: also train the CBT front-end and visual transformer end to end (the clip
        /// features are recomputed every step, with the CBT's dropout) instead of reading them
        /// frozen, computed once.
        public var tuneVisual = false
        /// A run whose estimated memory exceeds this many GiB is refused before anything is
        /// allocated (MemoryEstimate); 0: the machine's physical memory.
        public var maxMemoryGB = 0.0
        /// `finetune next-step` only: the weight of the verb/noun anticipation head's loss
        /// (AnticipationHead: cross-entropy of the next step's verb plus its noun, from the
        /// current step's video alone) beside the next-sentence generator's; 0 trains no head. The
        /// head exists when the train split's annotations give verb and noun.
        public var anticipationWeight = 1.0
        enum CodingKeys: String, CodingKey {
            case batchSize = "batch_size", steps, lr, warmupSteps = "warmup_steps", schedule, minLRRatio = "min_lr_ratio"
            case weightDecay = "weight_decay", beta1, beta2, eps, clipGrad = "clip_grad", seed, dropout, tuneVisual = "tune_visual"
            case maxMemoryGB = "max_memory_gb", anticipationWeight = "anticipation_weight"
        }

        /// The section the training loop reads (pretraining's, without accumulation; the
        /// objective weights are not read by fine-tuning).
        public var optimizer: Train.Optimization {
            var o = Train.Optimization()
            o.batchSize = batchSize; o.gradAccum = 1; o.steps = steps; o.lr = lr; o.warmupSteps = warmupSteps
            o.schedule = schedule; o.minLRRatio = minLRRatio; o.weightDecay = weightDecay; o.beta1 = beta1; o.beta2 = beta2
            o.eps = eps; o.clipGrad = clipGrad; o.seed = seed; o.maxMemoryGB = maxMemoryGB
            return o
        }
    }

    public struct Evaluation: Codable, Sendable, Equatable {
        /// Held-out next-word loss and accuracy every this many steps (and at the end); 0: only at the end.
        public var every = 100
        /// Batches per evaluation (the same examples every time).
        public var batches = 4
    }

    public struct Checkpointing: Codable, Sendable, Equatable {
        /// A checkpoint every this many steps (and at the end).
        public var every = 500
        /// Checkpoints kept (the oldest are deleted).
        public var keep = 2
    }

    /// The pretrained checkpoint folder to start from (a `videobert pretrain` checkpoint).
    public var initFrom = ""
    /// The tokenized corpus (visual words of the steps).
    public var corpus = ""
    /// Captions: YouCook2 JSON, MSR-VTT JSON or JSONL {"video", "start", "end", "caption"}.
    public var annotations = ""
    /// The run folder: checkpoints/, metrics.jsonl, loss.svg.
    public var out = "runs/caption"
    /// What is generated from a step's video: its own sentence (`caption`, `videobert finetune
    /// caption`) or the next annotated step's (`next-step`, `videobert finetune next-step`, which
    /// sets it). Written to the checkpoint's recipe.yaml: `Checkpoint` tells a forecaster by it.
    public var target = CaptionTarget.caption
    public var data = DataSettings()
    public var train = Optimization()
    public var eval = Evaluation()
    public var checkpoint = Checkpointing()
    /// Training metrics are logged every this many steps.
    public var logEvery = 10

    public init() {}

    enum CodingKeys: String, CodingKey {
        case initFrom = "init", corpus, annotations, out, target, data, train, eval, checkpoint, logEvery = "log_every"
    }

    /// Checks that types cannot express; the first problem as text.
    public func problem() -> String? {
        if initFrom.isEmpty { return "init is required (a pretrained checkpoint folder)" }
        if corpus.isEmpty { return "corpus is required (a folder made by `videobert tokenize`)" }
        if annotations.isEmpty { return "annotations is required (YouCook2 JSON, MSR-VTT JSON or JSONL captions)" }
        if data.maxVideoTokens < 1 || data.maxCaptionTokens < 1 { return "data.max_video_tokens and data.max_caption_tokens must be at least 1" }
        if train.batchSize < 1 { return "train.batch_size must be at least 1" }
        if train.steps < 1 { return "train.steps must be at least 1" }
        if train.lr <= 0 { return "train.lr must be positive" }
        if !["linear", "cosine", "constant"].contains(train.schedule) { return "train.schedule must be linear, cosine or constant" }
        if train.dropout >= 1 { return "train.dropout must be below 1 (negative keeps the checkpoint's)" }
        if eval.batches < 0 || eval.every < 0 { return "eval.every and eval.batches must be ≥ 0" }
        if checkpoint.every < 1 || checkpoint.keep < 1 { return "checkpoint.every and checkpoint.keep must be at least 1" }
        if logEvery < 1 { return "log_every must be at least 1" }
        return nil
    }

    /// Learning rate at optimizer step `step` (1-based): the schedule every training loop shares.
    public func learningRate(step: Int) -> Double { train.optimizer.learningRate(step: step) }

    /// Longest input: [CLS] w1..wk [MASK] [>] v1..vm [SEP] with k ≤ max_caption_tokens, m ≤ max_video_tokens.
    public var maxSequence: Int { data.maxCaptionTokens + data.maxVideoTokens + 4 }
}
