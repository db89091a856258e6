import Foundation
import Tensor

// VideoBERT's joint model: Hugging Face's BertForPreTraining (post-LayerNorm BERT, Devlin et al.
// 2019; Sun et al. 2019 "VideoBERT" §3.2) assembled from the Model layers as Overview.swift
// describes, with HF's parameter names so that a checkpoint is a valid HF BERT checkpoint.
//
// Heads and the three objectives (VideoBERT §3.2: MLM on text, "masked frame modelling" on
// visual words, and linguistic–visual alignment on [CLS]):
//
// - Logits only at masked positions: the final hidden rows of the masked positions are gathered,
//   go through `cls.predictions.transform` (dense → GELU → LayerNorm), then the tied decoder.
// - DESIGN DECISION, softmax restricted to the token's modality: a masked TEXT position is scored
//   against the text rows [0, Ttext) of the tied decoder (word embeddings) and of
//   `cls.predictions.bias`; a masked VIDEO position against the visual-word rows
//   [Ttext, Ttext + Vvis) only. The modality of a masked position is always known (its segment),
//   so scoring it against the other modality's tokens only adds cost (the text half is ~30k rows)
//   and a trivially learnable nuisance to the loss. CE_text is a cross-entropy over Ttext
//   classes with text-id targets, CE_video over Vvis classes with visual-word targets. The full
//   [V] logits of HF are still available for inference (`predictionLogits(rows:)`); the
//   restricted logits are exactly slices of them.
// - Alignment: BERT's next-sentence head `cls.seq_relationship` (2 logits) on the pooled [CLS]
//   (`bert.pooler`: dense → tanh), over the examples whose alignment weight is > 0 (text+video).
//   transformers' NSP convention: class 0 = "B is a continuation of A", class 1 = "B is random".
//   Our batches say alignLabel 1 = aligned, 0 = not; so the target class is 1 − label, and the
//   alignment score of an example is softmax(logits)[0].
// - Audio (issue 17): with audio words in the vocabulary (rows [Ttext + Vvis, V)), a masked
//   AUDIO position is scored against those rows only: masked audio-word modelling (MAM), CE_audio.
// - Loss = w_mlm·CE_text + w_mfm·CE_video + w_mam·CE_audio + w_align·CE_align, each a mean over
//   its rows; an empty set of rows contributes 0.
//
// Compute: besides logits only at masked rows, the LAST layer runs everything after attention
// (output projection, LayerNorms, feed-forward) only on the rows the heads read — masked
// positions and the [CLS] of aligned examples — since no other row of its output is used
// (exact; `encoderForward`). `encode` computes every row.
//
// Memory: parameters, gradients and AdamW moments in one ParameterStore; every activation and
// activation gradient in one Arena sized once for (maxBatch, maxSeq). A batch with T ≤ maxSeq and
// B·T ≤ maxBatch·maxSeq uses a prefix of each buffer, so a training step allocates nothing.
// A model built with `training: false` holds one layer's activations (reused by every layer) and
// no gradients: the inference footprint.
//
// Shape letters: B batch, T sequence length, N = B·T rows, C hidden, NH heads, FF intermediate,
// L layers, V = Ttext + Vvis vocabulary, P positions, S segment types, M masked rows (Mt text +
// Mv video), Ma examples with an alignment label, R rows of logits per chunk.

/// What one pretraining step measured.
public struct PretrainingOutput: Sendable, Equatable {
    /// w_mlm·mlmLoss + w_mfm·mfmLoss + w_align·alignLoss.
    public var loss: Float = 0
    /// Mean cross-entropy over the masked text positions (text-vocabulary softmax); 0 when none.
    public var mlmLoss: Float = 0
    /// Mean cross-entropy over the masked video positions (visual-word softmax); 0 when none.
    public var mfmLoss: Float = 0
    /// Mean two-way cross-entropy over the examples with an alignment label; 0 when none.
    public var alignLoss: Float = 0
    /// Mean cross-entropy over the masked audio positions (audio-word softmax); 0 when none.
    public var mamLoss: Float = 0
    /// Masked audio positions, with the true audio word ranked first / within the top 5.
    public var mamCount = 0
    public var mamCorrect = 0
    public var mamTop5Correct = 0
    /// Masked text positions and how many had the true WordPiece ranked first.
    public var mlmCount = 0
    public var mlmCorrect = 0
    /// Masked video positions, with the true visual word ranked first / within the top 5.
    public var mfmCount = 0
    public var mfmCorrect = 0
    public var mfmTop5Correct = 0
    /// Examples with an alignment label, and how many were classified right.
    public var alignCount = 0
    public var alignCorrect = 0

    public init() {}
}

/// BERT with HF BertForPreTraining's parameters and heads, for VideoBERT's joint vocabulary.
/// Not Sendable: it owns raw buffers that its methods mutate.
public final class BertForPreTraining {
    public let config: BertConfig
    /// Parameters (HF names, see `parameterSpecs`), gradients and AdamW moments.
    public let store: ParameterStore
    /// The largest batch shape the arena holds: T ≤ maxSeq and B·T ≤ maxBatch·maxSeq.
    public let maxBatch: Int
    public let maxSeq: Int
    /// Whether gradients exist (false: inference only).
    public let training: Bool

    let C, NH, FF, L, V, textVocab, visualWords, P, S: Int
    /// Audio words (rows [textVocab + visualWords, V) of the vocabulary); 0 without audio.
    let audioWords: Int
    let eps: Float
    /// maxBatch·maxSeq.
    let maxRows: Int
    /// R: masked rows scored per decoder chunk (bounds the [R, V] logits buffer).
    let logitRows: Int

    private let p: ParameterOffsets
    /// The L post-LayerNorm layers (`bert.encoder.*`), activations in `arena`.
    let encoder: TransformerEncoder
    private let arena: Arena
    private let a: ActivationSlots
    private let ints: IntBuffers
    /// Counts the batches loaded into the arena, so that a `KeptForward` can check that the
    /// activations it refers to are still there.
    private var generation = 0
    /// What `load(from:…)` / `loadPretrained(from:)` loaded, initialised and ignored.
    public internal(set) var loadReport: CheckpointLoadReport?
    /// When set, each stage of `forwardBackward` adds its wall-clock time here (benchmarks).
    public var profile: StepProfile? { didSet { encoder.profile = profile } }

    /// Builds the model with all parameters zero (call `initializeWeights(seed:)` or load).
    /// Throws when the configuration is invalid or maxSeq exceeds max_position_embeddings.
    public init(config: BertConfig, maxBatch: Int, maxSeq: Int, training: Bool = true) throws {
        try config.validate()
        guard maxBatch > 0, maxSeq > 0 else { throw VideoBertError("maxBatch and maxSeq must be positive") }
        guard maxSeq <= config.maxPositionEmbeddings else {
            throw VideoBertError("sequence length \(maxSeq) exceeds max_position_embeddings \(config.maxPositionEmbeddings)")
        }
        self.config = config
        self.maxBatch = maxBatch
        self.maxSeq = maxSeq
        self.training = training
        C = config.hiddenSize; NH = config.numAttentionHeads; FF = config.intermediateSize; L = config.numHiddenLayers
        V = config.vocabSize; textVocab = config.textVocabSize; visualWords = config.visualWords; audioWords = config.audioWords
        P = config.maxPositionEmbeddings; S = config.typeVocabSize
        eps = Float(config.layerNormEps)
        maxRows = maxBatch * maxSeq
        // 20% of the positions covers BERT's 15% masking in one chunk; more rows take more chunks.
        // An inference model scores few rows per call (evaluation, the tasks): 256-row chunks keep
        // its [R, Ttext] buffer at ~31 MB for BERT's 30,522 WordPieces instead of ~200 MB.
        logitRows = min(maxRows, training ? max(64, (maxRows + 4) / 5) : 256)

        store = try ParameterStore(Self.parameterSpecs(config), training: training)
        p = ParameterOffsets(store: store)
        var layout = ArenaLayout()
        a = ActivationSlots(layout: &layout, N: maxRows, C: C,
                            logitRows: logitRows, logitColumns: max(textVocab, visualWords, audioWords), training: training)
        // Dropout site 0 is the embeddings; the layers use 1 + 3l + k (see `site`).
        encoder = try TransformerEncoder(store: store, prefix: "bert.encoder.", hiddenSize: C, numHeads: NH, intermediateSize: FF,
                                         layers: L, eps: eps, maxBatch: maxBatch, maxSeq: maxSeq, training: training, firstSite: 1,
                                         layout: &layout)
        arena = Arena(layout)
        ints = IntBuffers(rows: maxRows, logitRows: logitRows)
    }

    deinit { ints.deallocate() }

    /// Bytes held by parameters (and gradients and moments) plus activations.
    public var bytes: Int { store.bytes + arena.bytes + ints.bytes }

    // MARK: Parameters

    /// HF BertForPreTraining's tensors, in allocation order. Query, key and value weights are
    /// adjacent (then their biases) so the fused [3C, C] projection is free. The MLM decoder is the
    /// word embedding (tied) and has no tensor of its own; its bias is `cls.predictions.bias`.
    /// Weight decay as BERT's no-decay list: not on biases or LayerNorm weights.
    public static func parameterSpecs(_ c: BertConfig) -> [ParameterSpec] {
        let C = c.hiddenSize, FF = c.intermediateSize
        func weight(_ name: String, _ shape: [Int]) -> ParameterSpec { ParameterSpec(name, shape, weightDecay: true) }
        func plain(_ name: String, _ shape: [Int]) -> ParameterSpec { ParameterSpec(name, shape, weightDecay: false) }
        var specs = [
            weight("bert.embeddings.word_embeddings.weight", [c.vocabSize, C]),
            weight("bert.embeddings.position_embeddings.weight", [c.maxPositionEmbeddings, C]),
            weight("bert.embeddings.token_type_embeddings.weight", [c.typeVocabSize, C]),
            plain("bert.embeddings.LayerNorm.weight", [C]),
            plain("bert.embeddings.LayerNorm.bias", [C]),
        ]
        specs += TransformerEncoder.parameterSpecs(prefix: "bert.encoder.", hiddenSize: C, intermediateSize: FF,
                                                   layers: c.numHiddenLayers)
        specs += [
            weight("bert.pooler.dense.weight", [C, C]),
            plain("bert.pooler.dense.bias", [C]),
            weight("cls.predictions.transform.dense.weight", [C, C]),
            plain("cls.predictions.transform.dense.bias", [C]),
            plain("cls.predictions.transform.LayerNorm.weight", [C]),
            plain("cls.predictions.transform.LayerNorm.bias", [C]),
            plain("cls.predictions.bias", [c.vocabSize]),
            weight("cls.seq_relationship.weight", [2, C]),
            plain("cls.seq_relationship.bias", [2]),
        ]
        return specs
    }

    /// HF BertPreTrainedModel._init_weights: normal(0, initializer_range) for linear and embedding
    /// weights, zero biases (and `cls.predictions.bias`), LayerNorm weight 1 and bias 0, and the
    /// pad row of the word embeddings zero. Tensor i draws from SeededRNG(seed, stream: i), so a
    /// tensor's values do not depend on which others are initialised (see `initialize(_:seed:)`).
    public func initializeWeights(seed: UInt64) {
        initialize(store.slots.map(\.name), seed: seed)
    }

    /// Initialises the named tensors as `initializeWeights(seed:)` would (the rest untouched).
    public func initialize(_ names: [String], seed: UInt64) {
        initializeBertStyle(store, names: names, std: Float(config.initializerRange), seed: seed)
        if names.contains("bert.embeddings.word_embeddings.weight"), let pad = config.padTokenId {
            (store.parameters + store.offset(of: "bert.embeddings.word_embeddings.weight") + pad * C).update(repeating: 0, count: C)
        }
    }

    // MARK: Training

    /// One pretraining forward pass, and in training the backward pass.
    ///
    /// - training true: dropout on (masks from `dropoutSeed` and `step`, reproducible), and the
    ///   gradient of `lossScale · loss` is ADDED to `store.gradients`, so several micro-batches
    ///   accumulate (the caller zeroes the gradients once per optimizer step, and with k
    ///   micro-batches passes lossScale 1/k). Requires a model built with `training: true`.
    /// - training false (evaluation): no dropout, no backward; gradients untouched.
    ///
    /// Batch requirements (programming errors, checked): T ≤ maxSeq, B·T ≤ maxBatch·maxSeq, ids in
    /// 0..<V, token types in 0..<S, masked rows in 0..<B·T, text targets in 0..<Ttext, video
    /// targets in 0..<Vvis, audio targets in 0..<audio words. `mamWeight` weighs masked
    /// audio-word modelling (batches without audio rows: no effect).
    public func forwardBackward(_ batch: PretrainingBatch, step: Int, dropoutSeed: UInt64,
                                lossWeights: (mlm: Float, mfm: Float, align: Float) = (1, 1, 1), mamWeight: Float = 1,
                                lossScale: Float = 1, training: Bool = true) -> PretrainingOutput {
        precondition(!training || self.training, "a model built with training: false cannot run backward")
        return run(batch, dropout: training, backward: training, step: step, seed: dropoutSeed,
                   weights: lossWeights, mamWeight: mamWeight, lossScale: lossScale)
    }

    /// Forward (with or without dropout) and optionally backward: the seam the finite-difference
    /// test uses to evaluate the training loss (dropout on) without touching gradients.
    func run(_ batch: PretrainingBatch, dropout: Bool, backward: Bool, step: Int, seed: UInt64,
             weights: (mlm: Float, mfm: Float, align: Float), mamWeight: Float = 1, lossScale: Float) -> PretrainingOutput {
        let (B, T) = (batch.B, batch.T)
        let inputs = loadInputs(batch.inputIDs, batch.tokenTypeIDs, batch.attentionMask, B: B, T: T,
                                inputEmbeddingRows: batch.inputEmbeddingRows, inputEmbeddings: batch.inputEmbeddings)
        if backward { resetInputEmbeddingGradient(rows: inputs.rows.count) }
        var out = PretrainingOutput()
        let rows = prepareRows(batch, B: B, T: T)
        out.mlmCount = rows.Mt; out.mfmCount = rows.Mv; out.alignCount = rows.Ma; out.mamCount = rows.Mau
        if rows.Ms == 0 { return out }   // no loss term reads any position: nothing to compute
        let pHidden: Float = dropout ? Float(config.hiddenDropoutProb) : 0
        let pAttention: Float = dropout ? Float(config.attentionProbsDropoutProb) : 0
        let hidden = encoderForward(B: B, T: T, inputs: inputs, pHidden: pHidden, pAttention: pAttention, seed: seed, step: step,
                                    selected: rows.Ms)
        if backward { zeroFloats(arena[encoder.dOutput], rows.Ms * C) }
        maskedLanguageHeads(Mt: rows.Mt, Mv: rows.Mv, Mau: rows.Mau, hidden: hidden, dHidden: arena[encoder.dOutput], backward: backward,
                            weights: weights, mamWeight: mamWeight, lossScale: lossScale, output: &out)
        stage("alignment head") {
            alignmentHead(Ma: rows.Ma, hidden: hidden, dHidden: arena[encoder.dOutput], backward: backward,
                          weight: weights.align, lossScale: lossScale, output: &out)
        }
        out.loss = weights.mlm * out.mlmLoss + weights.mfm * out.mfmLoss + weights.align * out.alignLoss
        if rows.Mau > 0 { out.loss += mamWeight * out.mamLoss }
        if backward {
            encoderBackward(B: B, T: T, inputRows: inputs.rows, pHidden: pHidden, pAttention: pAttention, seed: seed, step: step,
                            selected: rows.Ms)
        }
        return out
    }

    // MARK: Every hidden row (CBT's text side)

    /// What `backwardKeepingHidden` needs of its `forwardKeepingHidden`: the batch's shape, its
    /// input-embedding rows, the dropout settings (the masks are redrawn from the seed), and which
    /// arena contents it refers to (valid until the model loads another batch).
    public struct KeptForward: Sendable {
        let B: Int, T: Int
        let inputRows: [Int32]
        let pHidden: Float, pAttention: Float, seed: UInt64, step: Int
        let generation: Int
    }

    /// The first half of a step for a caller that reads EVERY final hidden row (the CBT model's
    /// cross-modal and pooled objectives over the text BERT): embeddings, all L layers (no
    /// pruning), and the heads of `batch` (MLM, MFM, alignment with `lossWeights`), whose
    /// gradient, in training, is written into `hiddenGradient`. The caller then ADDS its own
    /// d(hidden) there and calls `backwardKeepingHidden(kept)` with the returned `kept`.
    /// `dropout` defaults to `training` (false with training true: the finite-difference seam).
    /// - Returns: the heads' output, the final hidden states [B·T, C] (valid until the next call)
    ///   and, in training, what the backward needs (nil otherwise).
    public func forwardKeepingHidden(_ batch: PretrainingBatch, step: Int, dropoutSeed seed: UInt64,
                                     lossWeights weights: (mlm: Float, mfm: Float, align: Float), lossScale: Float = 1,
                                     training: Bool, dropout: Bool? = nil)
        -> (output: PretrainingOutput, hidden: UnsafeMutablePointer<Float>, kept: KeptForward?) {
        precondition(!training || self.training, "a model built with training: false cannot run backward")
        let dropout = dropout ?? training
        let (B, T) = (batch.B, batch.T)
        let inputs = loadInputs(batch.inputIDs, batch.tokenTypeIDs, batch.attentionMask, B: B, T: T,
                                inputEmbeddingRows: batch.inputEmbeddingRows, inputEmbeddings: batch.inputEmbeddings)
        if training { resetInputEmbeddingGradient(rows: inputs.rows.count) }
        let rows = prepareRows(batch, B: B, T: T, compact: false)
        var out = PretrainingOutput()
        out.mlmCount = rows.Mt; out.mfmCount = rows.Mv; out.alignCount = rows.Ma; out.mamCount = rows.Mau
        let pHidden: Float = dropout ? Float(config.hiddenDropoutProb) : 0
        let pAttention: Float = dropout ? Float(config.attentionProbsDropoutProb) : 0
        let hidden = encoderForward(B: B, T: T, inputs: inputs, pHidden: pHidden, pAttention: pAttention, seed: seed, step: step)
        if training { zeroFloats(arena[encoder.dOutput], B * T * C) }
        maskedLanguageHeads(Mt: rows.Mt, Mv: rows.Mv, Mau: rows.Mau, hidden: hidden, dHidden: arena[encoder.dOutput], backward: training,
                            weights: weights, mamWeight: 1, lossScale: lossScale, output: &out)
        alignmentHead(Ma: rows.Ma, hidden: hidden, dHidden: arena[encoder.dOutput], backward: training,
                      weight: weights.align, lossScale: lossScale, output: &out)
        out.loss = weights.mlm * out.mlmLoss + weights.mfm * out.mfmLoss + weights.align * out.alignLoss
        if rows.Mau > 0 { out.loss += out.mamLoss }
        let kept = training ? KeptForward(B: B, T: T, inputRows: inputs.rows, pHidden: pHidden, pAttention: pAttention, seed: seed,
                                          step: step, generation: generation) : nil
        return (out, hidden, kept)
    }

    /// [B·T, C] d(final hidden states) of the last `forwardKeepingHidden` in training: holds the
    /// heads' gradient; add the caller's before `backwardKeepingHidden()`.
    public var hiddenGradient: UnsafeMutablePointer<Float> { arena[encoder.dOutput] }

    /// The second half: backward through the layers and embeddings from `hiddenGradient`,
    /// accumulating (+=) into the store's gradients. `kept` is what the `forwardKeepingHidden`
    /// of this batch returned; no other batch may have been loaded in between.
    public func backwardKeepingHidden(_ kept: KeptForward) {
        precondition(kept.generation == generation, "backwardKeepingHidden: the model ran another batch after its forwardKeepingHidden")
        encoderBackward(B: kept.B, T: kept.T, inputRows: kept.inputRows, pHidden: kept.pHidden, pAttention: kept.pAttention,
                        seed: kept.seed, step: kept.step)
    }

    /// Validates the batch's masked rows, targets and alignment labels and lays them out for the
    /// heads: `ints.headRows`/`headTargets` [M] (text rows, then video rows), `ints.alignRows`/
    /// `alignTargets` [Ma] ([CLS] rows b·T, target class 1 − label). Then the rows any head reads,
    /// sorted and distinct, go to `ints.selected` [Ms], and headRows/alignRows are rewritten as
    /// indices into that list: the last layer computes only those rows (see `encoderForward`).
    /// With `compact` false the rows stay positions b·T + t of the full hidden states (Ms = N).
    private func prepareRows(_ batch: PretrainingBatch, B: Int, T: Int, compact: Bool = true) -> (Mt: Int, Mv: Int, Mau: Int, Ma: Int, Ms: Int) {
        let N = B * T
        let Mt = batch.textRows.count, Mv = batch.videoRows.count, Mau = batch.audioRows.count, M = Mt + Mv + Mau
        precondition(batch.textTargets.count == Mt && batch.videoTargets.count == Mv && batch.audioTargets.count == Mau,
                     "masked rows and targets differ in count")
        precondition(M <= maxRows, "\(M) masked rows exceed the arena's \(maxRows)")
        precondition(batch.alignLabels.count == B && batch.alignWeights.count == B, "alignment labels and weights need B values")
        for (m, r) in batch.textRows.enumerated() {
            precondition(r >= 0 && Int(r) < N, "masked text row \(r) outside 0..<\(N)")
            let t = batch.textTargets[m]
            precondition(t >= 0 && Int(t) < textVocab, "text target \(t) outside 0..<\(textVocab)")
            ints.headRows[m] = r; ints.headTargets[m] = t
        }
        for (m, r) in batch.videoRows.enumerated() {
            precondition(r >= 0 && Int(r) < N, "masked video row \(r) outside 0..<\(N)")
            let t = batch.videoTargets[m]
            precondition(t >= 0 && Int(t) < visualWords, "video target \(t) outside 0..<\(visualWords)")
            ints.headRows[Mt + m] = r; ints.headTargets[Mt + m] = t
        }
        for (m, r) in batch.audioRows.enumerated() {
            precondition(r >= 0 && Int(r) < N, "masked audio row \(r) outside 0..<\(N)")
            let t = batch.audioTargets[m]
            precondition(t >= 0 && Int(t) < audioWords, "audio target \(t) outside 0..<\(audioWords)")
            ints.headRows[Mt + Mv + m] = r; ints.headTargets[Mt + Mv + m] = t
        }
        var Ma = 0
        for b in 0..<B where batch.alignWeights[b] > 0 {
            let label = batch.alignLabels[b]
            precondition(label == 0 || label == 1, "alignment label \(label) is not 0 or 1")
            ints.alignRows[Ma] = Int32(b * T)
            ints.alignTargets[Ma] = 1 - label      // transformers' NSP classes: 0 = aligned ("is next")
            Ma += 1
        }
        if !compact { return (Mt, Mv, Mau, Ma, N) }
        let map = ints.rowMap
        map.update(repeating: -1, count: N)
        for m in 0..<M { map[Int(ints.headRows[m])] = 0 }
        for m in 0..<Ma { map[Int(ints.alignRows[m])] = 0 }
        var Ms = 0
        for i in 0..<N where map[i] == 0 {
            map[i] = Int32(Ms)
            ints.selected[Ms] = Int32(i)
            Ms += 1
        }
        for m in 0..<M { ints.headRows[m] = map[Int(ints.headRows[m])] }
        for m in 0..<Ma { ints.alignRows[m] = map[Int(ints.alignRows[m])] }
        return (Mt, Mv, Mau, Ma, Ms)
    }

    // MARK: Inference

    /// The last hidden states of a batch (inference: no dropout).
    /// - Parameters:
    ///   - inputIDs: [B, T] joint-vocabulary ids.
    ///   - tokenTypeIDs: [B, T], or nil for all 0.
    ///   - attentionMask: [B, T] 1 real / 0 padding, or nil for all real.
    /// - Returns: [B, T, C] (padded positions included, as HF computes them), which the
    ///   inference heads `predictionLogits(_:rows:)` and `alignmentScores(_:)` read.
    ///   - inputEmbeddingRows, inputEmbeddings: positions whose input is a given vector instead of
    ///     their id's word embedding, and the vectors [rows, C] (see PretrainingBatch).
    public func encode(inputIDs: [Int32], tokenTypeIDs: [Int32]?, attentionMask: [Float]?, B: Int, T: Int,
                       inputEmbeddingRows: [Int32] = [], inputEmbeddings: [Float] = []) -> EncodedBatch {
        precondition(inputIDs.count == B * T, "inputIDs has \(inputIDs.count) ids, expected B·T = \(B * T)")
        let types = tokenTypeIDs ?? [Int32](repeating: 0, count: B * T)
        let mask = attentionMask ?? [Float](repeating: 1, count: B * T)
        let inputs = loadInputs(inputIDs, types, mask, B: B, T: T, inputEmbeddingRows: inputEmbeddingRows, inputEmbeddings: inputEmbeddings)
        let hidden = encoderForward(B: B, T: T, inputs: inputs, pHidden: 0, pAttention: 0, seed: 0, step: 0)
        return EncodedBatch(B: B, T: T, hidden: Array(UnsafeBufferPointer(start: hidden, count: B * T * C)))
    }

    /// HF `prediction_logits` over the FULL vocabulary V at the given positions of an encoded
    /// batch (zero-shot template filling).
    /// - Parameter rows: [M] flat positions b·T + t.
    /// - Returns: [M, V].
    public func predictionLogits(_ encoded: EncodedBatch, rows: [Int32]) -> [Float] {
        let (B, T) = (encoded.B, encoded.T)
        precondition(encoded.hidden.count == B * T * C, "encoded batch of another width")
        let M = rows.count
        precondition(M <= maxRows, "at most \(maxRows) rows at a time")
        for r in rows { precondition(r >= 0 && Int(r) < B * T, "row \(r) outside 0..<\(B * T)") }
        rows.withUnsafeBufferPointer { ints.headRows.update(from: $0.baseAddress!, count: M) }
        encoded.hidden.withUnsafeBufferPointer { predictionTransformForward(hidden: $0.baseAddress!, M: M) }
        var logits = [Float](repeating: 0, count: M * V)
        logits.withUnsafeMutableBufferPointer { out in
            linearForward(out: out.baseAddress!, inp: arena[a.headOut], weight: w(p.word), bias: w(p.clsBias), N: M, C: C, OC: V)
        }
        return logits
    }

    /// P(aligned) per example of an encoded batch: softmax of the next-sentence logits,
    /// class 0 ("is next" in transformers' convention = text and video aligned).
    /// - Returns: [B].
    public func alignmentScores(_ encoded: EncodedBatch) -> [Float] {
        let (B, T) = (encoded.B, encoded.T)
        precondition(encoded.hidden.count == B * T * C, "encoded batch of another width")
        for b in 0..<B { ints.alignRows[b] = Int32(b * T) }
        encoded.hidden.withUnsafeBufferPointer { poolerForward(hidden: $0.baseAddress!, Ma: B) }
        let logits = arena[a.nspLogits]
        return (0..<B).map { b in
            let (l0, l1) = (logits[2 * b], logits[2 * b + 1])
            return 1 / (1 + Foundation.exp(l1 - l0))
        }
    }

    // MARK: Inputs

    /// Copies ids, token types and the attention mask into the model's buffers; positions with a
    /// given input vector get id −1 there (no word embedding). Returns those rows and vectors
    /// (the caller's arrays, not copied) for `encoderForward` and `encoderBackward`.
    private func loadInputs(_ ids: [Int32], _ types: [Int32], _ mask: [Float], B: Int, T: Int,
                            inputEmbeddingRows rows: [Int32], inputEmbeddings values: [Float]) -> InputEmbeddings {
        let N = B * T
        precondition(B > 0 && T > 0, "empty batch")
        precondition(T <= maxSeq && N <= maxRows, "batch [\(B), \(T)] does not fit the model's arena (T ≤ \(maxSeq), B·T ≤ \(maxRows))")
        precondition(ids.count == N && types.count == N && mask.count == N, "batch arrays must hold B·T = \(N) values")
        for i in 0..<N {
            precondition(ids[i] >= 0 && Int(ids[i]) < V, "input id \(ids[i]) outside the vocabulary 0..<\(V)")
            precondition(types[i] >= 0 && Int(types[i]) < S, "token type \(types[i]) outside 0..<\(S)")
        }
        precondition(values.count == rows.count * C, "input embeddings: \(rows.count) rows need \(rows.count * C) values, got \(values.count)")
        ids.withUnsafeBufferPointer { ints.ids.update(from: $0.baseAddress!, count: N) }
        types.withUnsafeBufferPointer { ints.types.update(from: $0.baseAddress!, count: N) }
        mask.withUnsafeBufferPointer { arena[encoder.mask].update(from: $0.baseAddress!, count: N) }
        for r in rows {
            precondition(r >= 0 && Int(r) < N, "input-embedding row \(r) outside 0..<\(N)")
            precondition(ints.ids[Int(r)] >= 0, "input-embedding row \(r) given twice")
            ints.ids[Int(r)] = -1
        }
        generation &+= 1
        return InputEmbeddings(rows: rows, values: values)
    }

    /// The input-embedding rows of a batch and their vectors [rows, C] (see `loadInputs`).
    private struct InputEmbeddings {
        var rows: [Int32]
        var values: [Float]
    }

    /// [rows, C] d(loss)/d(input embeddings) of the last backward, in the order of the batch's
    /// `inputEmbeddingRows` (scaled by lossScale like every gradient; empty without such rows).
    public private(set) var inputEmbeddingGradient: [Float] = []

    private func resetInputEmbeddingGradient(rows: Int) {
        let n = rows * C
        if inputEmbeddingGradient.count != n { inputEmbeddingGradient = [Float](repeating: 0, count: n) } else if n > 0 {
            inputEmbeddingGradient.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        }
    }

    // MARK: Encoder

    @inline(__always) private func w(_ offset: Int) -> UnsafeMutablePointer<Float> { store.parameters + offset }
    @inline(__always) private func g(_ offset: Int) -> UnsafeMutablePointer<Float> { store.gradients + offset }

    /// Runs `body`, timed as `name` when a profile is set.
    @inline(__always) private func stage(_ name: String, _ body: () -> Void) {
        if let profile { profile.measure(name, body) } else { body() }
    }

    /// Embeddings → L post-LayerNorm layers (`encoder`). Returns the final hidden states:
    /// [B·T, C], or with `selected` = Ms only the rows `ints.selected[0..<Ms]`, [Ms, C].
    ///
    /// Pruning the last layer (exact): the heads read only the masked positions and the [CLS] of
    /// aligned examples (~15% of rows). The last layer's attention still needs every key and value,
    /// so QKV and attention run on all rows; everything after (output projection, dropout,
    /// residual, LayerNorm, the feed-forward block, LayerNorm), forward and backward, runs on the
    /// selected rows only — about 3/4 of the last layer's matrix work, since no other row's output
    /// is ever used. (Dropout masks there are drawn over the compact rows: still deterministic.)
    private func encoderForward(B: Int, T: Int, inputs external: InputEmbeddings, pHidden: Float, pAttention: Float, seed: UInt64,
                                step: Int, selected: Int? = nil) -> UnsafeMutablePointer<Float> {
        let N = B * T, C = C
        let x0 = arena[encoder.input]
        stage("embeddings") {
            embeddingsForward(out: arena[a.embSum], inputIds: ints.ids, tokenTypeIds: ints.types, wordEmbeddings: w(p.word),
                              positionEmbeddings: w(p.position), tokenTypeEmbeddings: w(p.tokenType), B: B, T: T, C: C)
            if !external.rows.isEmpty {
                let embSum = arena[a.embSum]
                external.values.withUnsafeBufferPointer { v in
                    for (i, r) in external.rows.enumerated() {
                        let o = embSum + Int(r) * C, x = v.baseAddress! + i * C
                        for c in 0..<C { o[c] += x[c] }
                    }
                }
            }
            layerNormForward(out: x0, mean: arena[a.embMean], rstd: arena[a.embRstd], inp: arena[a.embSum],
                             weight: w(p.embLNw), bias: w(p.embLNb), N: N, C: C, eps: eps)
            if pHidden > 0 {
                dropoutForward(out: x0, inp: x0, p: pHidden, seed: dropoutSeed(base: seed, step: step, site: 0), N: N * C)
            }
        }
        return encoder.forward(arena: arena, B: B, T: T, pHidden: pHidden, pAttention: pAttention, seed: seed, step: step,
                               selected: selected == nil ? nil : UnsafePointer(ints.selected), selectedCount: selected ?? 0)
    }

    /// The forward read in reverse, from d(hidden) in `arena[encoder.dOutput]` ([Ms, C] with
    /// `selected`, as forward), accumulating into the store's gradients.
    private func encoderBackward(B: Int, T: Int, inputRows: [Int32], pHidden: Float, pAttention: Float, seed: UInt64, step: Int,
                                 selected: Int? = nil) {
        let N = B * T, C = C, NC = N * C
        let d = encoder.backward(arena: arena, B: B, T: T, pHidden: pHidden, pAttention: pAttention, seed: seed, step: step,
                                 selected: selected == nil ? nil : UnsafePointer(ints.selected), selectedCount: selected ?? 0)
        // x0 = dropout(LN(embSum))
        stage("embeddings bwd") {
            var dEmbLN = d.dInput
            if pHidden > 0 {
                dEmbLN = d.spare
                dropoutBackward(dinp: dEmbLN, dout: d.dInput, p: pHidden, seed: dropoutSeed(base: seed, step: step, site: 0), N: NC,
                                accumulate: false)
            }
            let dEmbSum = d.spare2
            layerNormBackward(dinp: dEmbSum, dweight: g(p.embLNw), dbias: g(p.embLNb), dout: dEmbLN, inp: arena[a.embSum],
                              weight: w(p.embLNw), mean: arena[a.embMean], rstd: arena[a.embRstd], N: N, C: C, accumulate: false)
            embeddingsBackward(dwordEmbeddings: g(p.word), dpositionEmbeddings: g(p.position), dtokenTypeEmbeddings: g(p.tokenType),
                               dout: dEmbSum, inputIds: ints.ids, tokenTypeIds: ints.types,
                               paddingId: config.padTokenId.map { Int32($0) }, B: B, T: T, C: C)
            if !inputRows.isEmpty {
                let rows = inputRows
                inputEmbeddingGradient.withUnsafeMutableBufferPointer { d in
                    for (i, r) in rows.enumerated() { (d.baseAddress! + i * C).update(from: dEmbSum + Int(r) * C, count: C) }
                }
            }
        }
    }

    // MARK: Heads

    /// cls.predictions.transform on the rows `ints.headRows[0..<M]` of `hidden`: gather → dense →
    /// GELU → LayerNorm into `headOut` [M, C].
    private func predictionTransformForward(hidden: UnsafePointer<Float>, M: Int) {
        gatherRowsForward(out: arena[a.headIn], inp: hidden, rows: ints.headRows, M: M, C: C)
        linearForward(out: arena[a.headH], inp: arena[a.headIn], weight: w(p.transformW), bias: w(p.transformB), N: M, C: C, OC: C)
        geluForward(out: arena[a.headG], inp: arena[a.headH], N: M * C)
        layerNormForward(out: arena[a.headOut], mean: arena[a.headMean], rstd: arena[a.headRstd], inp: arena[a.headG],
                         weight: w(p.transformLNw), bias: w(p.transformLNb), N: M, C: C, eps: eps)
    }

    /// MLM and MFM over the rows `prepareRows` laid out: the transform once over all Mt + Mv
    /// masked rows, then the decoder and the cross-entropy per modality in chunks of R rows
    /// (restricted softmax, see the file comment), each chunk's backward done while its logits are
    /// in the buffer. `hidden`/`dHidden` are the compact [Ms, C] rows.
    private func maskedLanguageHeads(Mt: Int, Mv: Int, Mau: Int, hidden: UnsafeMutablePointer<Float>,
                                     dHidden: UnsafeMutablePointer<Float>, backward: Bool,
                                     weights: (mlm: Float, mfm: Float, align: Float), mamWeight: Float, lossScale: Float,
                                     output: inout PretrainingOutput) {
        let M = Mt + Mv + Mau, C = C
        if M == 0 { return }
        stage("prediction transform") { predictionTransformForward(hidden: hidden, M: M) }
        let headOut = arena[a.headOut], dHeadOut = arena[a.dHeadOut]
        if backward { zeroFloats(dHeadOut, M * C) }
        let logits = arena[a.logits], losses = arena[a.losses]
        // Part 0: text rows [0, Mt) against vocabulary rows [0, Ttext); part 1: video rows
        // [Mt, Mt + Mv) against [Ttext, Ttext + Vvis); part 2: audio rows [Mt + Mv, M) against
        // [Ttext + Vvis, V).
        for k in 0..<3 {
            let (first, count, base, classes, weight) = k == 0 ? (0, Mt, 0, textVocab, weights.mlm)
                                                      : k == 1 ? (Mt, Mv, textVocab, visualWords, weights.mfm)
                                                               : (Mt + Mv, Mau, textVocab + visualWords, audioWords, mamWeight)
            if count == 0 { continue }
            let decoder = w(p.word) + base * C, decoderBias = w(p.clsBias) + base
            var lossSum: Double = 0
            var top1 = 0, top5 = 0
            var start = 0
            while start < count {
                let n = min(logitRows, count - start), r0 = first + start
                let targets = ints.headTargets + r0
                // logits [n, classes] = headOut rows · decoder slice ᵀ + bias slice
                stage("decoder (tied embeddings)") {
                    linearForward(out: logits, inp: headOut + r0 * C, weight: decoder, bias: decoderBias, N: n, C: C, OC: classes)
                }
                stage("softmax cross-entropy, ranks") {
                    _ = softmaxCrossEntropyForward(losses: losses, probs: logits, logits: logits, rows: nil, targets: targets, M: n, V: classes)
                    targetRanks(ints.ranks, scores: logits, targets: targets, M: n, V: classes)
                    if backward {
                        // d(mean over `count` rows) of this chunk's n rows, times the loss weight and scale.
                        softmaxCrossEntropyBackwardInPlace(probs: logits, targets: targets, M: n, V: classes,
                                                           dloss: weight * lossScale * Float(n) / Float(count))
                    }
                }
                for i in 0..<n {
                    lossSum += Double(losses[i])
                    if ints.ranks[i] < 1 { top1 += 1 }
                    if ints.ranks[i] < 5 { top5 += 1 }
                }
                if backward {
                    stage("decoder (tied embeddings) bwd") {
                        linearBackward(dinp: dHeadOut + r0 * C, dweight: g(p.word) + base * C, dbias: g(p.clsBias) + base,
                                       dout: logits, inp: headOut + r0 * C, weight: decoder, N: n, C: C, OC: classes)
                    }
                }
                start += n
            }
            let mean = Float(lossSum / Double(count))
            if k == 0 { output.mlmLoss = mean; output.mlmCorrect = top1 }
            else if k == 1 { output.mfmLoss = mean; output.mfmCorrect = top1; output.mfmTop5Correct = top5 }
            else { output.mamLoss = mean; output.mamCorrect = top1; output.mamTop5Correct = top5 }
        }
        if backward {
          stage("prediction transform bwd") {
            let dHeadG = arena[a.dHeadG], dHeadH = arena[a.dHeadH], dHeadIn = arena[a.dHeadIn]
            layerNormBackward(dinp: dHeadG, dweight: g(p.transformLNw), dbias: g(p.transformLNb), dout: dHeadOut, inp: arena[a.headG],
                              weight: w(p.transformLNw), mean: arena[a.headMean], rstd: arena[a.headRstd], N: M, C: C, accumulate: false)
            geluBackward(dinp: dHeadH, inp: arena[a.headH], dout: dHeadG, N: M * C, accumulate: false)
            zeroFloats(dHeadIn, M * C)
            linearBackward(dinp: dHeadIn, dweight: g(p.transformW), dbias: g(p.transformB), dout: dHeadH, inp: arena[a.headIn],
                           weight: w(p.transformW), N: M, C: C, OC: C)
            gatherRowsBackward(dinp: dHidden, dout: dHeadIn, rows: ints.headRows, M: M, C: C)
          }
        }
    }

    /// bert.pooler + cls.seq_relationship on the rows `ints.alignRows[0..<Ma]` (the [CLS] rows):
    /// gather → dense → tanh → dense (2) into `nspLogits` [Ma, 2].
    private func poolerForward(hidden: UnsafePointer<Float>, Ma: Int) {
        gatherRowsForward(out: arena[a.clsIn], inp: hidden, rows: ints.alignRows, M: Ma, C: C)
        linearForward(out: arena[a.poolH], inp: arena[a.clsIn], weight: w(p.poolerW), bias: w(p.poolerB), N: Ma, C: C, OC: C)
        tanhForward(out: arena[a.pooled], inp: arena[a.poolH], N: Ma * C)
        linearForward(out: arena[a.nspLogits], inp: arena[a.pooled], weight: w(p.nspW), bias: w(p.nspB), N: Ma, C: C, OC: 2)
    }

    /// Alignment over the Ma examples `prepareRows` laid out (weight > 0; target class 1 − label,
    /// transformers' NSP convention, see the file comment).
    private func alignmentHead(Ma: Int, hidden: UnsafeMutablePointer<Float>, dHidden: UnsafeMutablePointer<Float>,
                               backward: Bool, weight: Float, lossScale: Float, output: inout PretrainingOutput) {
        if Ma == 0 { return }
        poolerForward(hidden: hidden, Ma: Ma)
        let probs = arena[a.nspProbs]
        output.alignLoss = softmaxCrossEntropyForward(losses: arena[a.nspLosses], probs: probs, logits: arena[a.nspLogits], rows: nil,
                                                      targets: ints.alignTargets, M: Ma, V: 2)
        for m in 0..<Ma {
            let predicted: Int32 = probs[2 * m] >= probs[2 * m + 1] ? 0 : 1   // torch.argmax: the first on ties
            if predicted == ints.alignTargets[m] { output.alignCorrect += 1 }
        }
        if backward {
            let C = C
            let dLogits = arena[a.dNspLogits], dPooled = arena[a.dPooled], dPoolH = arena[a.dPoolH], dCls = arena[a.dCls]
            zeroFloats(dLogits, Ma * 2)
            softmaxCrossEntropyBackward(dlogits: dLogits, probs: probs, rows: nil, targets: ints.alignTargets, M: Ma, V: 2,
                                        dloss: weight * lossScale)
            zeroFloats(dPooled, Ma * C)
            linearBackward(dinp: dPooled, dweight: g(p.nspW), dbias: g(p.nspB), dout: dLogits, inp: arena[a.pooled],
                           weight: w(p.nspW), N: Ma, C: C, OC: 2)
            zeroFloats(dPoolH, Ma * C)
            tanhBackward(dinp: dPoolH, dout: dPooled, out: arena[a.pooled], N: Ma * C)
            zeroFloats(dCls, Ma * C)
            linearBackward(dinp: dCls, dweight: g(p.poolerW), dbias: g(p.poolerB), dout: dPoolH, inp: arena[a.clsIn],
                           weight: w(p.poolerW), N: Ma, C: C, OC: C)
            gatherRowsBackward(dinp: dHidden, dout: dCls, rows: ints.alignRows, M: Ma, C: C)
        }
    }
}

// MARK: - Private pieces

/// Offsets of every tensor, resolved once.
private struct ParameterOffsets {
    /// word [V, C], position [P, C], token type [S, C], embeddings LayerNorm [C], [C].
    let word, position, tokenType, embLNw, embLNb: Int
    /// pooler.dense [C, C], [C]; transform.dense [C, C], [C]; transform.LayerNorm [C], [C];
    /// cls.predictions.bias [V]; seq_relationship [2, C], [2].
    let poolerW, poolerB, transformW, transformB, transformLNw, transformLNb, clsBias, nspW, nspB: Int

    init(store: ParameterStore) {
        func o(_ name: String) -> Int { store.offset(of: name) }
        word = o("bert.embeddings.word_embeddings.weight")
        position = o("bert.embeddings.position_embeddings.weight")
        tokenType = o("bert.embeddings.token_type_embeddings.weight")
        embLNw = o("bert.embeddings.LayerNorm.weight"); embLNb = o("bert.embeddings.LayerNorm.bias")
        poolerW = o("bert.pooler.dense.weight"); poolerB = o("bert.pooler.dense.bias")
        transformW = o("cls.predictions.transform.dense.weight"); transformB = o("cls.predictions.transform.dense.bias")
        transformLNw = o("cls.predictions.transform.LayerNorm.weight"); transformLNb = o("cls.predictions.transform.LayerNorm.bias")
        clsBias = o("cls.predictions.bias")
        nspW = o("cls.seq_relationship.weight"); nspB = o("cls.seq_relationship.bias")
    }
}

/// The arena's buffers besides the encoder's. Sizes use N = maxBatch·maxSeq; a batch uses a prefix of each.
private struct ActivationSlots {
    /// [N, C] embedding sum; [N] its LayerNorm mean, rstd (the LayerNorm's output is the encoder's input).
    let embSum, embMean, embRstd: TensorSlot
    /// MLM head over M ≤ N rows: [M, C] gathered, dense, GELU, LayerNorm out; [M] mean, rstd.
    let headIn, headH, headG, headOut, headMean, headRstd: TensorSlot
    /// [R, max(Ttext, Vvis)] logits (then probabilities, then their gradient) of one chunk; [R] losses.
    let logits, losses: TensorSlot
    /// Alignment over Ma ≤ N examples: [Ma, C] [CLS] rows, pooler dense, tanh; [Ma, 2] logits,
    /// probabilities; [Ma] losses.
    let clsIn, poolH, pooled, nspLogits, nspProbs, nspLosses: TensorSlot
    /// Gradients (training only; empty slots otherwise): [M, C] head gradients; [Ma, C] pooler
    /// gradients; [Ma, 2] d logits.
    let dHeadOut, dHeadG, dHeadH, dHeadIn, dPooled, dPoolH, dCls, dNspLogits: TensorSlot

    init(layout l: inout ArenaLayout, N: Int, C: Int, logitRows R: Int, logitColumns: Int, training: Bool) {
        embSum = l.add("embSum", [N, C]); embMean = l.add("embMean", [N]); embRstd = l.add("embRstd", [N])
        headIn = l.add("headIn", [N, C]); headH = l.add("headH", [N, C]); headG = l.add("headG", [N, C])
        headOut = l.add("headOut", [N, C]); headMean = l.add("headMean", [N]); headRstd = l.add("headRstd", [N])
        logits = l.add("logits", [R, logitColumns]); losses = l.add("losses", [R])
        clsIn = l.add("clsIn", [N, C]); poolH = l.add("poolH", [N, C]); pooled = l.add("pooled", [N, C])
        nspLogits = l.add("nspLogits", [N, 2]); nspProbs = l.add("nspProbs", [N, 2]); nspLosses = l.add("nspLosses", [N])
        func g(_ name: String, _ shape: [Int]) -> TensorSlot { l.add(name, training ? shape : [0]) }
        dHeadOut = g("dHeadOut", [N, C]); dHeadG = g("dHeadG", [N, C]); dHeadH = g("dHeadH", [N, C]); dHeadIn = g("dHeadIn", [N, C])
        dPooled = g("dPooled", [N, C]); dPoolH = g("dPoolH", [N, C]); dCls = g("dCls", [N, C]); dNspLogits = g("dNspLogits", [N, 2])
    }
}

/// Int32 buffers in one allocation: [N] ids, token types, masked rows, their targets, alignment
/// rows ([CLS] positions b·T), alignment targets, the selected rows of a pruned last layer, the
/// map from a position to its selected index (−1: not selected); [R] target ranks of one chunk.
private struct IntBuffers {
    let base: UnsafeMutablePointer<Int32>
    let ids, types, headRows, headTargets, alignRows, alignTargets, selected, rowMap, ranks: UnsafeMutablePointer<Int32>
    let bytes: Int

    init(rows N: Int, logitRows R: Int) {
        let count = 8 * N + R
        base = .allocate(capacity: count)
        base.initialize(repeating: 0, count: count)
        ids = base; types = base + N; headRows = base + 2 * N; headTargets = base + 3 * N
        alignRows = base + 4 * N; alignTargets = base + 5 * N; selected = base + 6 * N; rowMap = base + 7 * N; ranks = base + 8 * N
        bytes = count * MemoryLayout<Int32>.stride
    }

    func deallocate() { base.deallocate() }
}

/// ranks[m] = how many of the V classes score strictly higher than row m's target (0 = top-1;
/// ties count in the target's favour, as `topKCorrect`). Rows in parallel.
/// - Parameters:
///   - ranks: [M] (written).
///   - scores: [M, V] logits or probabilities.
///   - targets: [M].
private func targetRanks(_ ranks: UnsafeMutablePointer<Int32>, scores: UnsafePointer<Float>, targets: UnsafePointer<Int32>, M: Int, V: Int) {
    Parallel.forEachRange(M, grain: max(1, 65_536 / max(V, 1))) { r in
        for m in r {
            let row = scores + m * V
            let t = row[Int(targets[m])]
            var higher: Int32 = 0
            for v in 0..<V { higher &+= row[v] > t ? 1 : 0 }
            ranks[m] = higher
        }
    }
}

/// The final hidden states of a batch from `BertForPreTraining.encode`, which the inference heads
/// (`predictionLogits(_:rows:)`, `alignmentScores(_:)`) read: a value, so that no head depends on
/// which batch the model ran last.
public struct EncodedBatch: Sendable {
    public let B: Int, T: Int
    /// [B·T, C] row-major (padded positions included).
    public let hidden: [Float]
}
