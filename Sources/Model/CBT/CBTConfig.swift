import Foundation
import Tensor

/// The architecture of a CBT model besides its text BERT (whose BertConfig is `text/config.json`):
/// `cbt_config.json` in a checkpoint folder, with these JSON names.
public struct CBTConfig: Codable, Sendable, Equatable {
    /// "frames": a ConvFrontEnd over the corpus' stored low-resolution frames; "features": a
    /// FeatureProjection over its stored clip features (e.g. imported S3D).
    public var frontEnd: String
    /// The convolutional front-end (frontEnd "frames"); its output_size must be visualHiddenSize.
    public var conv: ConvFrontEndConfig?
    /// The feature projection (frontEnd "features"); its output_size must be visualHiddenSize.
    public var projection: FeatureProjectionConfig?
    /// D, and the visual transformer's layers, heads and feed-forward size.
    public var visualHiddenSize: Int
    public var visualLayers: Int
    public var visualHeads: Int
    public var visualIntermediateSize: Int
    /// Tv: clips per example at most (the visual transformer's learned positions).
    public var maxClips: Int
    /// Ct: the text BERT's hidden size.
    public var textHiddenSize: Int
    /// Cx and the cross-modal transformer's layers (CBT: shallow, 1–2), heads, feed-forward size.
    public var crossHiddenSize: Int
    public var crossLayers: Int
    public var crossHeads: Int
    public var crossIntermediateSize: Int
    /// E: the pooled text and video embeddings compared by the InfoNCE / ranking losses and
    /// by embedding retrieval.
    public var embeddingSize: Int
    public var hiddenDropoutProb: Double = 0.1
    public var attentionProbsDropoutProb: Double = 0.1
    public var initializerRange: Double = 0.02
    public var layerNormEps: Double = 1e-12

    enum CodingKeys: String, CodingKey {
        case frontEnd = "front_end", conv, projection
        case visualHiddenSize = "visual_hidden_size", visualLayers = "visual_layers", visualHeads = "visual_heads"
        case visualIntermediateSize = "visual_intermediate_size", maxClips = "max_clips"
        case textHiddenSize = "text_hidden_size"
        case crossHiddenSize = "cross_hidden_size", crossLayers = "cross_layers", crossHeads = "cross_heads"
        case crossIntermediateSize = "cross_intermediate_size", embeddingSize = "embedding_size"
        case hiddenDropoutProb = "hidden_dropout_prob", attentionProbsDropoutProb = "attention_probs_dropout_prob"
        case initializerRange = "initializer_range", layerNormEps = "layer_norm_eps"
    }

    public init(frontEnd: String, conv: ConvFrontEndConfig? = nil, projection: FeatureProjectionConfig? = nil,
                visualHiddenSize: Int, visualLayers: Int, visualHeads: Int, visualIntermediateSize: Int, maxClips: Int,
                textHiddenSize: Int, crossHiddenSize: Int, crossLayers: Int, crossHeads: Int, crossIntermediateSize: Int,
                embeddingSize: Int, hiddenDropoutProb: Double = 0.1, attentionProbsDropoutProb: Double = 0.1,
                initializerRange: Double = 0.02) {
        self.frontEnd = frontEnd
        self.conv = conv
        self.projection = projection
        self.visualHiddenSize = visualHiddenSize
        self.visualLayers = visualLayers
        self.visualHeads = visualHeads
        self.visualIntermediateSize = visualIntermediateSize
        self.maxClips = maxClips
        self.textHiddenSize = textHiddenSize
        self.crossHiddenSize = crossHiddenSize
        self.crossLayers = crossLayers
        self.crossHeads = crossHeads
        self.crossIntermediateSize = crossIntermediateSize
        self.embeddingSize = embeddingSize
        self.hiddenDropoutProb = hiddenDropoutProb
        self.attentionProbsDropoutProb = attentionProbsDropoutProb
        self.initializerRange = initializerRange
    }

    /// Throws a one-line error naming `file` (when given) and the key.
    public func validate(file: String? = nil) throws {
        func fail(_ m: String) -> VideoBertError { VideoBertError(m, file: file) }
        switch frontEnd {
        case "frames":
            guard let conv else { throw fail("front_end \"frames\" needs a conv section") }
            try conv.validate()
            guard conv.outputSize == visualHiddenSize else { throw fail("conv.output_size \(conv.outputSize) must equal visual_hidden_size \(visualHiddenSize)") }
        case "features":
            guard let projection else { throw fail("front_end \"features\" needs a projection section") }
            try projection.validate()
            guard projection.outputSize == visualHiddenSize else {
                throw fail("projection.output_size \(projection.outputSize) must equal visual_hidden_size \(visualHiddenSize)")
            }
        default:
            throw fail("front_end must be \"frames\" or \"features\", not \"\(frontEnd)\"")
        }
        for (key, size, heads) in [("visual", visualHiddenSize, visualHeads), ("cross", crossHiddenSize, crossHeads)] {
            guard size > 0, heads > 0, size % heads == 0 else { throw fail("\(key)_hidden_size \(size) must be a positive multiple of \(key)_heads \(heads)") }
        }
        for (key, value) in [("visual_layers", visualLayers), ("visual_intermediate_size", visualIntermediateSize), ("max_clips", maxClips),
                             ("text_hidden_size", textHiddenSize), ("cross_layers", crossLayers),
                             ("cross_intermediate_size", crossIntermediateSize), ("embedding_size", embeddingSize)] where value <= 0 {
            throw fail("\(key) must be positive, got \(value)")
        }
        for (key, p) in [("hidden_dropout_prob", hiddenDropoutProb), ("attention_probs_dropout_prob", attentionProbsDropoutProb)]
            where !(p >= 0 && p < 1) {
            throw fail("\(key) must be in [0, 1), got \(p)")
        }
    }
}

/// The pooled-embedding objective beside the cross-modal NCE (issue 4's options).
public enum PooledObjective: String, Codable, Sendable, CaseIterable {
    /// No pooled objective.
    case none
    /// Symmetric InfoNCE on L2-normalised pooled embeddings with in-batch negatives (CLIP).
    case infonce
    /// Bidirectional hinge ranking on cosine similarities, fixed margin (VSE).
    case hinge
    /// The hinge with margin σ(−x_iᵀx_j)·α per negative j of anchor i, x the L2-normalised pooled
    /// text embeddings, held constant (stop-gradient).
    case variableMargin = "variable_margin"
}

/// The weights and settings of a CBT step's objectives (from the recipe's `cbt:` section).
public struct CBTObjectives: Sendable, Equatable {
    /// Text BERT's MLM.
    public var mlmWeight: Float = 1
    /// Masked-frame NCE and its temperature τ (scores p·e/τ).
    public var nceWeight: Float = 1
    public var nceTemperature: Float = 1
    /// Cross-modal NCE: each text against its candidate videos through the cross-modal transformer.
    public var crossWeight: Float = 1
    /// The pooled objective, its weight, InfoNCE temperature, hinge margin and variable-margin α.
    public var pooled: PooledObjective = .infonce
    public var pooledWeight: Float = 1
    public var pooledTemperature: Float = 0.1
    public var margin: Float = 0.2
    public var marginAlpha: Float = 0.4
    public var reduction: NegativeReduction = .mean

    public init() {}
}
