import Model
import Recipe
import Tensor

/// Every setting of a fusion pretraining run (`videobert pretrain` with `variant: fusion`, the
/// Everything-at-Once variant, issue 17), with its default: the one place these defaults live.
/// Recipes/fusion-demo.yaml overrides some and says why.
///
/// `train:`, `eval:`, `checkpoint:` and `log_every` mean what they mean for VideoBERT
/// (PretrainRecipe); the loss is under `loss:`.
public struct FusionRecipe: RecipeSection, Equatable {
    /// The ranges of the numeric settings (checked when a recipe is loaded; docs/RELIABILITY.md).
    public static var limits: [String: RecipeLimit] {
        var l: [String: RecipeLimit] = [
            "text.hidden_size": .int(1...65_536), "text.num_layers": .int(1...1024), "text.num_heads": .int(1...1024),
            "text.intermediate_size": .int(1...262_144), "text.max_positions": .int(1...1_048_576),
            "audio.channels": .int(1...4096), "audio.output_size": .int(1...65_536),
            "fusion.hidden_size": .int(1...16_384), "fusion.num_layers": .int(1...64), "fusion.num_heads": .int(1...256),
            "fusion.intermediate_size": .int(1...65_536), "fusion.embedding_size": .int(1...16_384),
            "fusion.dropout": .number(0...0.99), "fusion.attention_dropout": .number(0...0.99),
            "fusion.initializer_range": .number(0...10),
            "data.max_text_tokens": .int(1...4094), "data.max_clips": .int(1...4096), "data.concat_max": .int(1...1024),
            "loss.temperature": .positive(max: 1e6), "loss.margin_alpha": .number(0...1e6),
            "retrieval.max_pairs": .int(0...10_000_000), "log_every": .int(1...(1 << 40)),
        ]
        for term in CombinatorialTerm.allCases { l["loss.\(term.name)"] = .number(0...1e6) }
        l.merge(Optimization.limits(prefix: "train."), uniquingKeysWith: { a, _ in a })
        l.merge(PretrainRecipe.Evaluation.limits(prefix: "eval."), uniquingKeysWith: { a, _ in a })
        l.merge(PretrainRecipe.Checkpointing.limits(prefix: "checkpoint."), uniquingKeysWith: { a, _ in a })
        return l
    }

    /// The audio tokens: one per clip.
    public struct Audio: Codable, Sendable, Equatable {
        /// `auto`: `logmel` when the corpus stores log-mel spectrograms (store.audio), else `words`
        /// when it has audio words (audio.enabled), else `none`. `logmel`: a small conv net over
        /// each clip's spectrogram, trained end to end (AudioConvNet); `words`: the clip's audio
        /// word (one-hot into the token projection); `none`: no audio (only text ↔ video is trained).
        public var source = "auto"
        /// logmel: output channels of the conv net's 3×3 convolutions.
        public var channels = [16, 32, 64]
        /// logmel: the conv net's embedding size.
        public var outputSize = 128
        enum CodingKeys: String, CodingKey { case source, channels, outputSize = "output_size" }
    }

    /// The fusion transformer and the embeddings.
    public struct Fusion: Codable, Sendable, Equatable {
        public var hiddenSize = 128
        public var numLayers = 1
        public var numHeads = 4
        public var intermediateSize = 256
        /// E: the embeddings compared by the loss (and by retrieval).
        public var embeddingSize = 128
        public var dropout = 0.1
        public var attentionDropout = 0.1
        public var initializerRange = 0.02
        enum CodingKeys: String, CodingKey {
            case hiddenSize = "hidden_size", numLayers = "num_layers", numHeads = "num_heads", intermediateSize = "intermediate_size"
            case embeddingSize = "embedding_size", dropout, attentionDropout = "attention_dropout", initializerRange = "initializer_range"
        }
    }

    /// How samples are built: one (text, clips, the clips' audio) per video of the batch.
    public struct Data: Codable, Sendable, Equatable {
        /// WordPieces kept per text (the head; the rest is cut).
        public var maxTextTokens = 32
        /// Clips kept per sample (video and audio tokens).
        public var maxClips = 8
        /// A sample joins 1 to this many consecutive segments of its video.
        public var concatMax = 2
        enum CodingKeys: String, CodingKey { case maxTextTokens = "max_text_tokens", maxClips = "max_clips", concatMax = "concat_max" }
    }

    /// The combinatorial loss (Model/Fusion/CombinatorialLoss.swift). Defaults: Everything at
    /// Once's configs/pretraining/everything_at_once_tva.yaml (tv 1, the rest 0.1) and
    /// NormSoftmaxLoss's τ 0.05 (https://github.com/ninatu/everything_at_once).
    public struct Loss: Codable, Sendable, Equatable {
        public var temperature = 0.05
        public var tv = 1.0, ta = 0.1, va = 0.1, tVa = 0.1, vTa = 0.1, aTv = 0.1
        /// `infonce` (NormSoftmax: both directions summed) or `variable_margin` (the
        /// bidirectional hinge ranking with margins α·σ(−x_iᵀx_j), stop-gradient; x the first
        /// embedding's unit rows).
        public var pooled = "infonce"
        public var marginAlpha = 0.4
        enum CodingKeys: String, CodingKey {
            case temperature, tv, ta, va, tVa = "t_va", vTa = "v_ta", aTv = "a_tv", pooled, marginAlpha = "margin_alpha"
        }
        /// The six weights in `CombinatorialTerm` order.
        public var weights: [Float] { [tv, ta, va, tVa, vTa, aTv].map { Float($0) } }
    }

    /// Held-out retrieval at each evaluation.
    public struct Retrieval: Codable, Sendable, Equatable {
        /// Held-out samples ranked: the eval split's segments with text and clips, in corpus
        /// order, at most this many (0: all).
        public var maxPairs = 200
        enum CodingKeys: String, CodingKey { case maxPairs = "max_pairs" }
    }

    /// Must be `fusion`.
    public var variant = "fusion"
    /// The tokenized corpus folder; it must store clip features (store.features).
    public var corpus = ""
    public var out = "runs/fusion"
    /// The text BERT (its final hidden states are the text tokens), as CBT's `text:`.
    public var text = CBTRecipe.Text()
    public var audio = Audio()
    public var fusion = Fusion()
    public var data = Data()
    public var loss = Loss()
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
        case variant, corpus, out, text, audio, fusion, data, loss, train, eval, retrieval, checkpoint
        case logEvery = "log_every"
    }

    /// Checks that types cannot express; the first problem as text.
    public func problem() -> String? {
        if variant != "fusion" { return "variant must be fusion" }
        if corpus.isEmpty { return "corpus is required (a folder made by `videobert tokenize` with store.features)" }
        if !["auto", "logmel", "words", "none"].contains(audio.source) { return "audio.source must be auto, logmel, words or none" }
        if audio.channels.isEmpty || audio.channels.count > 8 { return "audio.channels must be 1 to 8 positive numbers" }
        if fusion.hiddenSize % fusion.numHeads != 0 { return "fusion.hidden_size must be a multiple of fusion.num_heads" }
        if text.initFrom.isEmpty {
            if text.hiddenSize % text.numHeads != 0 { return "text.hidden_size must be a multiple of text.num_heads" }
            if data.maxTextTokens + 2 > text.maxPositions { return "data.max_text_tokens + 2 exceeds text.max_positions" }
        }
        if !["infonce", "variable_margin"].contains(loss.pooled) { return "loss.pooled must be infonce or variable_margin" }
        if loss.weights.allSatisfy({ $0 == 0 }) { return "loss: at least one of tv, ta, va, t_va, v_ta, a_tv must be positive" }
        if let p = train.problem() { return p }
        if train.batchSize < 2 { return "train.batch_size must be at least 2 (negatives come from the batch's other videos)" }
        return nil
    }

    /// The memory a fusion run needs (MemoryEstimate): the text BERT over text + 2 positions and
    /// the fusion transformer over every run's sequences (six runs of text + 2·clips tokens).
    public func memoryEstimate(textConfig: BertConfig?) -> MemoryEstimate? {
        let b = train.batchSize, textSeq = data.maxTextTokens + 2
        let text: MemoryEstimate?
        if let c = textConfig {
            text = MemoryEstimate.bertTraining(config: c, batch: b, sequence: textSeq)
        } else {
            text = MemoryEstimate.transformer(hidden: self.text.hiddenSize, layers: self.text.numLayers, heads: self.text.numHeads,
                                              intermediate: self.text.intermediateSize, embeddings: 30_522 + self.text.maxPositions + 2,
                                              logits: 30_522, batch: b, sequence: textSeq)
        }
        let runs = Bounded.product([6, b]) ?? -1
        let fusionPart = runs < 0 ? nil : MemoryEstimate.transformer(hidden: fusion.hiddenSize, layers: fusion.numLayers, heads: fusion.numHeads,
                                                                     intermediate: fusion.intermediateSize, embeddings: 0, logits: 0,
                                                                     batch: runs, sequence: textSeq + 2 * data.maxClips)
        return MemoryEstimate.sum([text, fusionPart])
    }
}
