import Model
import Recipe
import Tensor

/// Every setting of a CBT pretraining run (`videobert pretrain` with `variant: cbt`), with its
/// default: the one place these defaults live. Recipes/cbt-*.yaml override some and say why.
///
/// The optimisation (`train:`), evaluation (`eval:`), checkpoint (`checkpoint:`) sections and
/// `log_every` mean what they mean for VideoBERT (PretrainRecipe); the CBT objective weights are
/// under `objectives:` (VideoBERT's `train.mlm_weight`, `mfm_weight` and `align_weight` are not
/// CBT settings: `retiredKeys`).
public struct CBTRecipe: RecipeSection, Equatable {
    /// Recipes saved in CBT checkpoints before the optimisation section lost VideoBERT's weights
    /// hold `train.mlm_weight: 1.0` (and mfm, align): they still load.
    public static var retiredKeys: [String: RetiredRecipeKey] {
        let message = "is not a CBT setting (VideoBERT's); the CBT loss weights are objectives.mlm_weight, nce_weight, cross_weight and pooled_weight"
        return ["train.mlm_weight": .init(value: 1, message: message), "train.mfm_weight": .init(value: 1, message: message),
                "train.align_weight": .init(value: 1, message: message)]
    }
    /// The ranges of the numeric settings (checked when a recipe is loaded; docs/RELIABILITY.md).
    public static var limits: [String: RecipeLimit] {
        var l: [String: RecipeLimit] = [
            "text.hidden_size": .int(1...65_536), "text.num_layers": .int(1...1024), "text.num_heads": .int(1...1024),
            "text.intermediate_size": .int(1...262_144), "text.max_positions": .int(1...1_048_576),
            "frontend.channels": .int(1...4096), "frontend.mlp_hidden": .int(0...65_536),
            "model.embedding_size": .int(1...65_536), "model.dropout": .number(0...0.99),
            "model.attention_dropout": .number(0...0.99), "model.initializer_range": .number(0...10),
            "data.max_text_tokens": .int(1...65_536), "data.max_clips": .int(1...65_536), "data.concat_max": .int(1...1024),
            "data.mask_prob": .probability, "data.mask_token_prob": .probability, "data.random_token_prob": .probability,
            "data.clip_mask_prob": .probability, "data.nce_negatives": .int(1...1_000_000), "data.cross_candidates": .int(0...1_000_000),
            "objectives.mlm_weight": .number(0...1e6), "objectives.nce_weight": .number(0...1e6),
            "objectives.cross_weight": .number(0...1e6), "objectives.pooled_weight": .number(0...1e6),
            "objectives.nce_temperature": .positive(max: 1e6), "objectives.pooled_temperature": .positive(max: 1e6),
            "objectives.margin": .number(0...1e6), "objectives.margin_alpha": .number(0...1e6),
            "retrieval.max_pairs": .int(0...10_000_000), "log_every": .int(1...(1 << 40)),
        ]
        for t in ["visual.", "cross."] {
            l[t + "hidden_size"] = .int(1...65_536); l[t + "num_layers"] = .int(1...1024)
            l[t + "num_heads"] = .int(1...1024); l[t + "intermediate_size"] = .int(1...262_144)
        }
        l.merge(Optimization.limits(prefix: "train."), uniquingKeysWith: { a, _ in a })
        l.merge(PretrainRecipe.Evaluation.limits(prefix: "eval."), uniquingKeysWith: { a, _ in a })
        l.merge(PretrainRecipe.Checkpointing.limits(prefix: "checkpoint."), uniquingKeysWith: { a, _ in a })
        return l
    }

    /// The text BERT (MLM). With `init`, its sizes come from that folder's config.json.
    public struct Text: Codable, Sendable, Equatable {
        /// A Hugging Face BERT folder to start from (e.g. models/minilm-l6-h384-uncased); its
        /// vocab.txt must be the corpus' text vocabulary. Empty: random initialisation.
        public var initFrom = ""
        public var hiddenSize = 128
        public var numLayers = 2
        public var numHeads = 2
        public var intermediateSize = 512
        public var maxPositions = 64
        enum CodingKeys: String, CodingKey {
            case initFrom = "init", hiddenSize = "hidden_size", numLayers = "num_layers", numHeads = "num_heads"
            case intermediateSize = "intermediate_size", maxPositions = "max_positions"
        }
    }

    /// The trainable visual front-end: one embedding per clip.
    public struct FrontEnd: Codable, Sendable, Equatable {
        /// `frames`: a conv net over the corpus' stored frames (tokenize with store.frames);
        /// `features`: a projection of its stored clip features (store.features; e.g. imported S3D).
        public var source = "frames"
        /// frames: output channels of the 3×3 convolutions (ReLU, 2×2 max pooling between them,
        /// global average pooling after the last; the clip is the mean over its frames).
        public var channels = [16, 32, 64]
        /// features: the MLP's hidden size (GELU); 0 for a single linear layer.
        public var mlpHidden = 0
        /// frames: `video` feeds each frame's difference from its video's mean frame (what moves
        /// rather than the static background); `none` the frames as stored.
        public var center = "none"
        enum CodingKeys: String, CodingKey { case source, channels, mlpHidden = "mlp_hidden", center }
    }

    /// A transformer's sizes.
    public struct Transformer: Codable, Sendable, Equatable {
        public var hiddenSize = 128
        public var numLayers = 2
        public var numHeads = 4
        public var intermediateSize = 512
        enum CodingKeys: String, CodingKey {
            case hiddenSize = "hidden_size", numLayers = "num_layers", numHeads = "num_heads", intermediateSize = "intermediate_size"
        }
    }

    /// Settings shared by the parts.
    public struct Model: Codable, Sendable, Equatable {
        /// E: the pooled text and video embeddings (InfoNCE / ranking, embedding retrieval).
        public var embeddingSize = 128
        public var dropout = 0.1
        public var attentionDropout = 0.1
        public var initializerRange = 0.02
        enum CodingKeys: String, CodingKey {
            case embeddingSize = "embedding_size", dropout, attentionDropout = "attention_dropout", initializerRange = "initializer_range"
        }
    }

    /// How examples are built: one (text, clip sequence) per video of the batch.
    public struct Data: Codable, Sendable, Equatable {
        /// WordPieces kept per text (the head; the rest is cut).
        public var maxTextTokens = 32
        /// Clips kept per example (the first ones; the rest are cut). Also the visual
        /// transformer's positions.
        public var maxClips = 8
        /// An example joins 1 to this many consecutive segments of its video (text and clips).
        public var concatMax = 2
        /// BERT's masking of the text (MLM): chosen fraction; of those 80% [MASK], 10% random, 10% kept.
        public var maskProb = 0.15
        public var maskTokenProb = 0.8
        public var randomTokenProb = 0.1
        /// Fraction of clips replaced by the mask embedding (masked-frame NCE). An example of ≥ 2
        /// clips has at least one masked and one visible.
        public var clipMaskProb = 0.15
        /// K: negatives per masked clip, drawn from the clips of the batch's OTHER videos.
        public var nceNegatives = 16
        /// Videos each text is scored against in the cross-modal NCE (its own + the next ones of
        /// the batch); 0: every video of the batch (CBT's in-batch softmax).
        public var crossCandidates = 0
        enum CodingKeys: String, CodingKey {
            case maxTextTokens = "max_text_tokens", maxClips = "max_clips", concatMax = "concat_max"
            case maskProb = "mask_prob", maskTokenProb = "mask_token_prob", randomTokenProb = "random_token_prob"
            case clipMaskProb = "clip_mask_prob", nceNegatives = "nce_negatives", crossCandidates = "cross_candidates"
        }
    }

    /// The loss: mlm·MLM + nce·NCE + cross·cross-modal NCE + pooled·(pooled objective).
    public struct Objectives: Codable, Sendable, Equatable {
        public var mlmWeight = 1.0
        public var nceWeight = 1.0
        /// τ of the masked-frame NCE (scores = prediction · embedding / τ).
        public var nceTemperature = 1.0
        public var crossWeight = 1.0
        /// `infonce` (symmetric, on L2-normalised pooled embeddings), `hinge` (bidirectional
        /// ranking on cosine similarities), `variable_margin` (margin σ(−x_iᵀx_j)·α,
        /// stop-gradient), or `none`.
        public var pooled = "infonce"
        public var pooledWeight = 1.0
        public var pooledTemperature = 0.1
        /// Hinge margin; variable-margin α (the largest margin).
        public var margin = 0.2
        public var marginAlpha = 0.4
        /// Hinge terms of an anchor: `mean` or `sum` over its negatives.
        public var reduction = "mean"
        enum CodingKeys: String, CodingKey {
            case mlmWeight = "mlm_weight", nceWeight = "nce_weight", nceTemperature = "nce_temperature", crossWeight = "cross_weight"
            case pooled, pooledWeight = "pooled_weight", pooledTemperature = "pooled_temperature", margin, marginAlpha = "margin_alpha"
            case reduction
        }
    }

    /// Held-out retrieval at each evaluation.
    public struct Retrieval: Codable, Sendable, Equatable {
        /// Held-out (text, video) pairs ranked: the eval split's segments that have both, in
        /// corpus order, at most this many (0: all).
        public var maxPairs = 200
        /// Also rank by the cross-modal transformer's score (N² pairs), beside the pooled
        /// embeddings' cosine similarity.
        public var cross = true
        enum CodingKeys: String, CodingKey { case maxPairs = "max_pairs", cross }
    }

    /// Must be `cbt`.
    public var variant = "cbt"
    /// The tokenized corpus folder; it must store frames or features as `frontend.source` needs.
    public var corpus = ""
    /// The run folder: checkpoints/, metrics.jsonl, loss.svg.
    public var out = "runs/cbt"
    public var text = Text()
    public var frontend = FrontEnd()
    public var visual = Transformer()
    public var cross = Transformer(hiddenSize: 128, numLayers: 1, numHeads: 4, intermediateSize: 512)
    public var model = Model()
    public var data = Data()
    public var objectives = Objectives()
    public var train = Optimization()
    public var eval = PretrainRecipe.Evaluation()
    public var retrieval = Retrieval()
    public var checkpoint = PretrainRecipe.Checkpointing()
    public var logEvery = 10

    public init() {
        train.batchSize = 16
        train.lr = 5e-4
    }

    enum CodingKeys: String, CodingKey {
        case variant, corpus, out, text, frontend, visual, cross, model, data, objectives, train, eval, retrieval, checkpoint
        case logEvery = "log_every"
    }

    /// Checks that types cannot express; the first problem as text.
    public func problem() -> String? {
        if variant != "cbt" { return "variant must be cbt" }
        if corpus.isEmpty { return "corpus is required (a folder made by `videobert tokenize` with store.frames or store.features)" }
        if !["frames", "features"].contains(frontend.source) { return "frontend.source must be frames or features" }
        if frontend.channels.isEmpty || frontend.channels.contains(where: { $0 < 1 }) { return "frontend.channels must be positive numbers" }
        if frontend.mlpHidden < 0 { return "frontend.mlp_hidden must be ≥ 0" }
        if !["none", "video"].contains(frontend.center) { return "frontend.center must be none or video" }
        for (name, t) in [("visual", visual), ("cross", cross)] {
            if t.hiddenSize < 1 || t.numLayers < 1 || t.numHeads < 1 || t.intermediateSize < 1 { return "\(name) sizes must be positive" }
            if t.hiddenSize % t.numHeads != 0 { return "\(name).hidden_size must be a multiple of \(name).num_heads" }
        }
        if text.initFrom.isEmpty {
            if text.hiddenSize < 1 || text.numLayers < 1 || text.numHeads < 1 || text.hiddenSize % text.numHeads != 0 {
                return "text sizes must be positive, text.hidden_size a multiple of text.num_heads"
            }
            if data.maxTextTokens + 2 > text.maxPositions { return "data.max_text_tokens + 2 exceeds text.max_positions" }
        }
        if model.embeddingSize < 1 { return "model.embedding_size must be positive" }
        if data.maxTextTokens < 1 || data.maxClips < 1 || data.concatMax < 1 { return "data.max_text_tokens, max_clips and concat_max must be at least 1" }
        if data.nceNegatives < 1 { return "data.nce_negatives must be at least 1" }
        if data.crossCandidates < 0 { return "data.cross_candidates must be ≥ 0 (0: the whole batch)" }
        if !(0...1).contains(data.clipMaskProb) || !(0...1).contains(data.maskProb) { return "data.clip_mask_prob and data.mask_prob must be in [0, 1]" }
        if PooledObjective(rawValue: objectives.pooled) == nil { return "objectives.pooled must be infonce, hinge, variable_margin or none" }
        if NegativeReduction(rawValue: objectives.reduction) == nil { return "objectives.reduction must be mean or sum" }
        if objectives.nceTemperature <= 0 || objectives.pooledTemperature <= 0 { return "objectives temperatures must be positive" }
        if let p = train.problem() { return p }
        if train.batchSize < 2 { return "train.batch_size must be at least 2 (negatives come from the batch's other videos)" }
        if checkpoint.every < 1 || checkpoint.keep < 1 { return "checkpoint.every and checkpoint.keep must be at least 1" }
        if logEvery < 1 { return "log_every must be at least 1" }
        if retrieval.maxPairs < 0 { return "retrieval.max_pairs must be ≥ 0" }
        return nil
    }

    /// The memory a CBT run needs (MemoryEstimate): the text BERT over text + 2 positions, the
    /// visual transformer over the clips, and the cross transformer over every scored (text,
    /// clips) pair of a batch, and the convolutional front-end over every frame of the batch's
    /// clips when `frames` (the corpus' frames per clip F and side S) is given. `textConfig`: the
    /// `text.init` folder's config, when there is one.
    public func memoryEstimate(textConfig: BertConfig?, frames: (perClip: Int, size: Int)? = nil) -> MemoryEstimate? {
        let b = train.batchSize
        let textSeq = data.maxTextTokens + 2
        let text: MemoryEstimate?
        if let c = textConfig {
            text = MemoryEstimate.bertTraining(config: c, batch: b, sequence: textSeq)
        } else {
            text = MemoryEstimate.transformer(hidden: self.text.hiddenSize, layers: self.text.numLayers, heads: self.text.numHeads,
                                              intermediate: self.text.intermediateSize, embeddings: 30_522 + self.text.maxPositions + 2,
                                              logits: 30_522, batch: b, sequence: textSeq)
        }
        let clips = data.maxClips
        let visualPart = MemoryEstimate.transformer(hidden: visual.hiddenSize, layers: visual.numLayers, heads: visual.numHeads,
                                                    intermediate: visual.intermediateSize, embeddings: clips + 1, logits: 0,
                                                    batch: b, sequence: clips)
        let pairs = Bounded.product([b, data.crossCandidates > 0 ? data.crossCandidates + 1 : b]) ?? -1
        let crossPart = pairs < 0 ? nil : MemoryEstimate.transformer(hidden: cross.hiddenSize, layers: cross.numLayers, heads: cross.numHeads,
                                                                       intermediate: cross.intermediateSize, embeddings: 2, logits: 0,
                                                                       batch: pairs, sequence: textSeq + clips)
        var conv: MemoryEstimate? = MemoryEstimate(parameterBytes: 0, activationBytes: 0)
        if frontend.source == "frames", let f = frames {
            conv = Bounded.product([b, clips, f.perClip]).flatMap { MemoryEstimate.convFrontEnd(channels: frontend.channels, size: f.size, frames: $0) }
        }
        return MemoryEstimate.sum([text, visualPart, crossPart, conv])
    }

    /// The model's objective settings.
    public var objectiveSettings: CBTObjectives {
        var o = CBTObjectives()
        o.mlmWeight = Float(objectives.mlmWeight); o.nceWeight = Float(objectives.nceWeight)
        o.nceTemperature = Float(objectives.nceTemperature); o.crossWeight = Float(objectives.crossWeight)
        o.pooled = PooledObjective(rawValue: objectives.pooled) ?? .infonce
        o.pooledWeight = Float(objectives.pooledWeight); o.pooledTemperature = Float(objectives.pooledTemperature)
        o.margin = Float(objectives.margin); o.marginAlpha = Float(objectives.marginAlpha)
        o.reduction = NegativeReduction(rawValue: objectives.reduction) ?? .mean
        return o
    }
}
