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
        l.merge(Training.limits(prefix: "train."), uniquingKeysWith: { a, _ in a })
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
        /// The modalities of the examples: `[text, video]` (VideoBERT), or `[text, video, audio]`:
        /// `[CLS] text [>] video [>>] audio [SEP]`, audio words from the corpus (`audio.enabled`),
        /// masked audio-word modelling (`train.mam_weight`) and alignment negatives with another
        /// video's audio (`data.align_audio_negative`).
        public var modalities = ["text", "video"]
        public var hasAudio: Bool { modalities.contains("audio") }
        enum CodingKeys: String, CodingKey {
            case initFrom = "init", hiddenSize = "hidden_size", numLayers = "num_layers", numHeads = "num_heads"
            case intermediateSize = "intermediate_size", maxPositions = "max_positions", dropout
            case attentionDropout = "attention_dropout", initializerRange = "initializer_range", visualInit = "visual_init"
            case modalities
        }
    }

    /// The `train:` section of a VideoBERT recipe: the optimisation settings every loop shares
    /// (read through as `train.batchSize`, ...) and VideoBERT's objective weights, side by side in
    /// the file (`train.lr`, `train.mlm_weight`).
    @dynamicMemberLookup
    public struct Training: Codable, Sendable, Equatable {
        public var optimization = Optimization()
        /// Loss = mlm · L_MLM + mfm · L_MFM + align · L_align (+ mam · L_MAM with audio).
        public var mlmWeight = 1.0
        public var mfmWeight = 1.0
        public var alignWeight = 1.0
        /// Masked audio-word modelling (only with audio in `model.modalities`).
        public var mamWeight = 1.0

        public init() {}
        public static func limits(prefix p: String) -> [String: RecipeLimit] {
            Optimization.limits(prefix: p).merging([p + "mlm_weight": .number(0...1e6), p + "mfm_weight": .number(0...1e6),
                                                    p + "align_weight": .number(0...1e6), p + "mam_weight": .number(0...1e6)],
                                                   uniquingKeysWith: { a, _ in a })
        }
        enum WeightKeys: String, CodingKey {
            case mlmWeight = "mlm_weight", mfmWeight = "mfm_weight", alignWeight = "align_weight", mamWeight = "mam_weight"
        }
        public init(from decoder: Decoder) throws {
            optimization = try Optimization(from: decoder)
            let c = try decoder.container(keyedBy: WeightKeys.self)
            mlmWeight = try c.decodeIfPresent(Double.self, forKey: .mlmWeight) ?? 1
            mfmWeight = try c.decodeIfPresent(Double.self, forKey: .mfmWeight) ?? 1
            alignWeight = try c.decodeIfPresent(Double.self, forKey: .alignWeight) ?? 1
            mamWeight = try c.decodeIfPresent(Double.self, forKey: .mamWeight) ?? 1
        }
        /// Written in the order recipes always had (the weights before `max_memory_gb`), so a
        /// checkpoint's recipe.yaml and the resume fingerprint (Trainer.fingerprint) keep their
        /// bytes; `mam_weight` (issue 17) last.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: FileKeys.self)
            let o = optimization
            try c.encode(o.batchSize, forKey: .batchSize); try c.encode(o.gradAccum, forKey: .gradAccum)
            try c.encode(o.steps, forKey: .steps); try c.encode(o.lr, forKey: .lr); try c.encode(o.warmupSteps, forKey: .warmupSteps)
            try c.encode(o.schedule, forKey: .schedule); try c.encode(o.minLRRatio, forKey: .minLRRatio)
            try c.encode(o.weightDecay, forKey: .weightDecay); try c.encode(o.beta1, forKey: .beta1); try c.encode(o.beta2, forKey: .beta2)
            try c.encode(o.eps, forKey: .eps); try c.encode(o.clipGrad, forKey: .clipGrad); try c.encode(o.seed, forKey: .seed)
            try c.encode(mlmWeight, forKey: .mlmWeight); try c.encode(mfmWeight, forKey: .mfmWeight)
            try c.encode(alignWeight, forKey: .alignWeight); try c.encode(o.maxMemoryGB, forKey: .maxMemoryGB)
            try c.encode(o.loader, forKey: .loader)
            try c.encode(mamWeight, forKey: .mamWeight)
        }
        enum FileKeys: String, CodingKey {
            case batchSize = "batch_size", gradAccum = "grad_accum", steps, lr, warmupSteps = "warmup_steps", schedule
            case minLRRatio = "min_lr_ratio", weightDecay = "weight_decay", beta1, beta2, eps, clipGrad = "clip_grad", seed
            case mlmWeight = "mlm_weight", mfmWeight = "mfm_weight", alignWeight = "align_weight", maxMemoryGB = "max_memory_gb", loader
            case mamWeight = "mam_weight"
        }
        public subscript<T>(dynamicMember key: WritableKeyPath<Optimization, T>) -> T {
            get { optimization[keyPath: key] }
            set { optimization[keyPath: key] = newValue }
        }
        func problem() -> String? { optimization.problem() }
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
    public var train = Training()
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
        let modalities = Set(model.modalities)
        guard model.modalities.count == modalities.count, modalities == ["text", "video"] || modalities == ["text", "video", "audio"] else {
            return "model.modalities must be [text, video] or [text, video, audio], not [\(model.modalities.joined(separator: ", "))]"
        }
        if model.hasAudio {
            if 1 + d.maxTextTokens + 1 + d.maxVideoTokens + 1 + d.maxAudioTokens + 1 > model.maxPositions {
                return "data.max_text_tokens + data.max_video_tokens + data.max_audio_tokens + 4 exceeds model.max_positions"
            }
        } else if 1 + d.maxTextTokens + 1 + d.maxVideoTokens + 1 > model.maxPositions {
            return "data.max_text_tokens + data.max_video_tokens + 3 exceeds model.max_positions"
        }
        return nil
    }

    /// Learning rate at optimizer step `step` (1-based): linear warm-up, then the schedule.
    public func learningRate(step: Int) -> Double { train.optimization.learningRate(step: step) }
}

