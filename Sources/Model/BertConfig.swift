import Foundation
import Tensor

/// The architecture of a BERT checkpoint: Hugging Face `BertConfig` as stored in `config.json`
/// (the `CodingKeys` are its JSON names), plus videobert's two extra top-level keys for the joint
/// vocabulary. transformers (checked with 5.23) keeps unknown keys as attributes, so a folder we
/// write loads with `BertForPreTraining.from_pretrained(DIR)`, and a plain HF BERT config (no
/// extras) loads here as a text-only model (no visual words).
///
/// Joint vocabulary (docs/ARCHITECTURE.md §3): ids 0..<textVocabSize are WordPieces, visual word i is id
/// textVocabSize + i, and vocabSize = textVocabSize + visualWords.
///
/// Missing optional keys take transformers' BertConfig defaults. What videobert does not
/// implement is an error naming the file (`load(from:)`, `validate(file:)`): an activation other
/// than "gelu" (BERT's erf form), a position embedding other than "absolute".
public struct BertConfig: Codable, Sendable, Equatable {
    /// V: rows of the word embedding (text WordPieces + visual words).
    public var vocabSize: Int
    /// C.
    public var hiddenSize: Int
    /// L.
    public var numHiddenLayers: Int
    /// NH (C must be a multiple).
    public var numAttentionHeads: Int
    /// FF.
    public var intermediateSize: Int
    /// Only "gelu" (x·Φ(x), the erf form) is implemented.
    public var hiddenAct: String = "gelu"
    public var hiddenDropoutProb: Double = 0.1
    public var attentionProbsDropoutProb: Double = 0.1
    /// P: learned absolute positions; sequences longer than this cannot be encoded.
    public var maxPositionEmbeddings: Int = 512
    /// S: segment types (0 text, 1 video in videobert).
    public var typeVocabSize: Int = 2
    /// Standard deviation of the normal initialisation (BERT: 0.02).
    public var initializerRange: Double = 0.02
    public var layerNormEps: Double = 1e-12
    /// The [PAD] id: its word-embedding row starts at zero and gets no gradient from the
    /// embedding lookup (torch `nn.Embedding(padding_idx:)`). nil = none.
    public var padTokenId: Int? = 0
    public var modelType: String = "bert"
    public var architectures: [String] = ["BertForPreTraining"]
    /// The MLM decoder is the word embedding (always true here; written for transformers).
    public var tieWordEmbeddings: Bool = true
    /// Read so that an unsupported value is reported; not written (transformers 5 dropped it,
    /// earlier versions default to "absolute").
    public var positionEmbeddingType: String? = nil
    /// videobert: WordPieces in the joint vocabulary (`videobert_text_vocab_size`); equals
    /// vocabSize for a text-only BERT.
    public var textVocabSize: Int
    /// videobert: visual words in the joint vocabulary (`videobert_visual_words`); 0 for text-only.
    public var visualWords: Int
    /// videobert: audio words in the joint vocabulary after the visual words
    /// (`videobert_audio_words`, written only when > 0); 0 without audio.
    public var audioWords: Int = 0

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size"
        case hiddenSize = "hidden_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case intermediateSize = "intermediate_size"
        case hiddenAct = "hidden_act"
        case hiddenDropoutProb = "hidden_dropout_prob"
        case attentionProbsDropoutProb = "attention_probs_dropout_prob"
        case maxPositionEmbeddings = "max_position_embeddings"
        case typeVocabSize = "type_vocab_size"
        case initializerRange = "initializer_range"
        case layerNormEps = "layer_norm_eps"
        case padTokenId = "pad_token_id"
        case modelType = "model_type"
        case architectures
        case tieWordEmbeddings = "tie_word_embeddings"
        case positionEmbeddingType = "position_embedding_type"
        case textVocabSize = "videobert_text_vocab_size"
        case visualWords = "videobert_visual_words"
        case audioWords = "videobert_audio_words"
    }

    /// A configuration; `textVocabSize` + `visualWords` + `audioWords` gives vocab_size.
    public init(textVocabSize: Int, visualWords: Int, audioWords: Int = 0, hiddenSize: Int, numHiddenLayers: Int, numAttentionHeads: Int,
                intermediateSize: Int, maxPositionEmbeddings: Int = 512, typeVocabSize: Int = 2,
                hiddenDropoutProb: Double = 0.1, attentionProbsDropoutProb: Double = 0.1,
                initializerRange: Double = 0.02, layerNormEps: Double = 1e-12, padTokenId: Int? = 0) {
        self.vocabSize = textVocabSize + visualWords + audioWords
        self.textVocabSize = textVocabSize
        self.visualWords = visualWords
        self.audioWords = audioWords
        self.hiddenSize = hiddenSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.intermediateSize = intermediateSize
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.typeVocabSize = typeVocabSize
        self.hiddenDropoutProb = hiddenDropoutProb
        self.attentionProbsDropoutProb = attentionProbsDropoutProb
        self.initializerRange = initializerRange
        self.layerNormEps = layerNormEps
        self.padTokenId = padTokenId
    }

    /// BERT-base (Devlin et al. 2019): 12 layers × 768, 12 heads, FF 3072, with the joint vocabulary.
    public static func base(textVocabSize: Int = 30_522, visualWords: Int) -> BertConfig {
        BertConfig(textVocabSize: textVocabSize, visualWords: visualWords, hiddenSize: 768, numHiddenLayers: 12,
                   numAttentionHeads: 12, intermediateSize: 3072)
    }

    /// The same architecture with `visualWords` visual words appended to this text vocabulary
    /// (VideoBERT initialised from a pretrained text BERT).
    public func withVisualWords(_ visualWords: Int) -> BertConfig {
        var c = self
        c.visualWords = visualWords
        c.vocabSize = textVocabSize + visualWords + audioWords
        c.architectures = ["BertForPreTraining"]
        return c
    }

    /// The same architecture with `audioWords` audio words after the visual words and a third
    /// token type (audio) when there are any (VideoBERT with audio, docs/ARCHITECTURE.md §3).
    public func withAudioWords(_ audioWords: Int) -> BertConfig {
        var c = self
        c.audioWords = audioWords
        c.vocabSize = textVocabSize + visualWords + audioWords
        if audioWords > 0 { c.typeVocabSize = max(c.typeVocabSize, 3) }
        return c
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        numHiddenLayers = try c.decode(Int.self, forKey: .numHiddenLayers)
        numAttentionHeads = try c.decode(Int.self, forKey: .numAttentionHeads)
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "gelu"
        hiddenDropoutProb = try c.decodeIfPresent(Double.self, forKey: .hiddenDropoutProb) ?? 0.1
        attentionProbsDropoutProb = try c.decodeIfPresent(Double.self, forKey: .attentionProbsDropoutProb) ?? 0.1
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 512
        typeVocabSize = try c.decodeIfPresent(Int.self, forKey: .typeVocabSize) ?? 2
        initializerRange = try c.decodeIfPresent(Double.self, forKey: .initializerRange) ?? 0.02
        layerNormEps = try c.decodeIfPresent(Double.self, forKey: .layerNormEps) ?? 1e-12
        // HF writes `"pad_token_id": null` for "no padding index"; absent means BERT's 0.
        padTokenId = c.contains(.padTokenId) ? try c.decodeIfPresent(Int.self, forKey: .padTokenId) : 0
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? "bert"
        architectures = try c.decodeIfPresent([String].self, forKey: .architectures) ?? ["BertForPreTraining"]
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? true
        positionEmbeddingType = try c.decodeIfPresent(String.self, forKey: .positionEmbeddingType)
        textVocabSize = try c.decodeIfPresent(Int.self, forKey: .textVocabSize) ?? vocabSize
        visualWords = try c.decodeIfPresent(Int.self, forKey: .visualWords) ?? 0
        audioWords = try c.decodeIfPresent(Int.self, forKey: .audioWords) ?? 0
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(hiddenAct, forKey: .hiddenAct)
        try c.encode(hiddenDropoutProb, forKey: .hiddenDropoutProb)
        try c.encode(attentionProbsDropoutProb, forKey: .attentionProbsDropoutProb)
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encode(typeVocabSize, forKey: .typeVocabSize)
        try c.encode(initializerRange, forKey: .initializerRange)
        try c.encode(layerNormEps, forKey: .layerNormEps)
        if let padTokenId { try c.encode(padTokenId, forKey: .padTokenId) } else { try c.encodeNil(forKey: .padTokenId) }
        try c.encode(modelType, forKey: .modelType)
        try c.encode(architectures, forKey: .architectures)
        try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        try c.encode(textVocabSize, forKey: .textVocabSize)
        try c.encode(visualWords, forKey: .visualWords)
        if audioWords > 0 { try c.encode(audioWords, forKey: .audioWords) }
    }

    /// Reads and validates `config.json` (errors name the file).
    public static func load(from path: String) throws -> BertConfig {
        let config = try JSON.decode(BertConfig.self, from: path)
        try config.validate(file: path)
        return config
    }

    /// Writes config.json atomically (sorted keys).
    public func write(to path: String) throws {
        try validate(file: path)
        try JSON.write(self, to: path)
    }

    /// Checks what the model needs; the message names `file` and the key.
    public func validate(file: String? = nil) throws {
        func fail(_ message: String) -> VideoBertError { VideoBertError(message, file: file) }
        guard modelType == "bert" else { throw fail("model_type '\(modelType)' is not supported (only \"bert\")") }
        guard hiddenAct == "gelu" else {
            throw fail("hidden_act '\(hiddenAct)' is not supported (only \"gelu\", BERT's erf form)")
        }
        if let p = positionEmbeddingType, p != "absolute" {
            throw fail("position_embedding_type '\(p)' is not supported (only \"absolute\")")
        }
        guard tieWordEmbeddings else { throw fail("tie_word_embeddings false is not supported (the MLM decoder is the word embedding)") }
        for (key, value) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("num_hidden_layers", numHiddenLayers),
                             ("num_attention_heads", numAttentionHeads), ("intermediate_size", intermediateSize),
                             ("max_position_embeddings", maxPositionEmbeddings), ("type_vocab_size", typeVocabSize)] where value <= 0 {
            throw fail("\(key) must be positive, got \(value)")
        }
        // Upper bounds, so that no size read from a config.json can overflow or ask for terabytes
        // (docs/RELIABILITY.md, "sizes"): far past any BERT (bert-large: 1024, 24, 16, 4096, 512).
        for (key, value, limit) in [("vocab_size", vocabSize, 1 << 24), ("hidden_size", hiddenSize, 1 << 16),
                                    ("num_hidden_layers", numHiddenLayers, 1024), ("num_attention_heads", numAttentionHeads, 1024),
                                    ("intermediate_size", intermediateSize, 1 << 18), ("max_position_embeddings", maxPositionEmbeddings, 1 << 20),
                                    ("type_vocab_size", typeVocabSize, 1024)] where value > limit {
            throw fail("\(key) \(value) is larger than the limit \(limit)")
        }
        let h = hiddenSize
        let perLayer = Bounded.sum(Bounded.product([4, h, h]) ?? -1, Bounded.product([2, h, intermediateSize]) ?? -1)
        let embeddings = Bounded.product([vocabSize + maxPositionEmbeddings + typeVocabSize, h])
        guard let layers = perLayer.flatMap({ Bounded.product([$0, numHiddenLayers]) }), let embeddings,
              let total = Bounded.sum(layers, embeddings), total <= 1 << 36 else {
            throw fail("the sizes (hidden_size \(h), num_hidden_layers \(numHiddenLayers), intermediate_size \(intermediateSize), vocab_size \(vocabSize)) make more than 2^36 parameters")
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw fail("hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads)")
        }
        guard textVocabSize > 0, visualWords >= 0, audioWords >= 0, textVocabSize + visualWords + audioWords == vocabSize else {
            throw fail(audioWords == 0
                       ? "videobert_text_vocab_size \(textVocabSize) + videobert_visual_words \(visualWords) must equal vocab_size \(vocabSize)"
                       : "videobert_text_vocab_size \(textVocabSize) + videobert_visual_words \(visualWords) + videobert_audio_words \(audioWords) must equal vocab_size \(vocabSize)")
        }
        if audioWords > 0 && typeVocabSize < 3 {
            throw fail("videobert_audio_words \(audioWords) needs type_vocab_size 3 (text, video, audio), not \(typeVocabSize)")
        }
        if let pad = padTokenId, !(0..<vocabSize).contains(pad) {
            throw fail("pad_token_id \(pad) is outside the vocabulary 0..<\(vocabSize)")
        }
        for (key, p) in [("hidden_dropout_prob", hiddenDropoutProb), ("attention_probs_dropout_prob", attentionProbsDropoutProb)]
            where !(p >= 0 && p < 1) {
            throw fail("\(key) must be in [0, 1), got \(p)")
        }
        guard layerNormEps > 0, initializerRange >= 0 else { throw fail("layer_norm_eps must be positive and initializer_range not negative") }
    }
}
