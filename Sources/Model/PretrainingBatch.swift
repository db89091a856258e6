import Foundation

/// One minibatch for the joint model: ids in the joint vocabulary (text ids 0..<T, visual word
/// i as T + i), padded to the longest example, with the masked positions and their targets.
public struct PretrainingBatch: Sendable {
    /// B examples, each padded to T positions.
    public var B: Int
    public var T: Int
    /// [B, T] joint-vocabulary ids.
    public var inputIDs: [Int32]
    /// [B, T] 0 text (and [CLS], [>]), 1 video (and [>>], or the closing [SEP] without audio),
    /// 2 audio (and the closing [SEP]).
    public var tokenTypeIDs: [Int32]
    /// [B, T] 1 real token, 0 padding.
    public var attentionMask: [Float]
    /// Masked text positions as flat row indices b·T + t, and their true text ids.
    public var textRows: [Int32]
    public var textTargets: [Int32]
    /// Masked video positions as flat row indices, and their true visual words (0..<visual words).
    public var videoRows: [Int32]
    public var videoTargets: [Int32]
    /// Masked audio positions as flat row indices, and their true audio words (0..<audio words);
    /// empty for a model without audio (docs/ARCHITECTURE.md §3: audio word i is id T + Vvis + i).
    public var audioRows: [Int32] = []
    public var audioTargets: [Int32] = []
    /// [B] alignment label: 1 when text and video come from the same segment, 0 when not.
    public var alignLabels: [Int32]
    /// [B] 1 for examples that carry an alignment label (text+video), 0 otherwise.
    public var alignWeights: [Float]
    /// Positions b·T + t whose input is a given vector instead of their id's word embedding
    /// (continuous clip rows of a captioner fine-tuned from a CBT checkpoint), distinct; and
    /// those vectors, [rows, C] in the same order. The id at such a position is ignored (any
    /// valid id; [PAD] by convention); position and token-type embeddings are added as usual.
    public var inputEmbeddingRows: [Int32] = []
    public var inputEmbeddings: [Float] = []

    public init(B: Int, T: Int, inputIDs: [Int32], tokenTypeIDs: [Int32], attentionMask: [Float],
                textRows: [Int32], textTargets: [Int32], videoRows: [Int32], videoTargets: [Int32],
                alignLabels: [Int32], alignWeights: [Float]) {
        self.B = B; self.T = T; self.inputIDs = inputIDs; self.tokenTypeIDs = tokenTypeIDs; self.attentionMask = attentionMask
        self.textRows = textRows; self.textTargets = textTargets; self.videoRows = videoRows; self.videoTargets = videoTargets
        self.alignLabels = alignLabels; self.alignWeights = alignWeights
    }

    /// Tokens that are not padding.
    public var tokenCount: Int { Int(attentionMask.reduce(0, +)) }
}

