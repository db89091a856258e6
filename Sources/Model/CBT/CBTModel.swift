import Foundation
import Tensor

// The CBT variant (Sun et al. 2019, "Learning Video Representations using Contrastive
// Bidirectional Transformer"; docs/ARCHITECTURE.md §4, issue 4): continuous clip embeddings from a
// trainable front-end instead of visual words, so the whole visual path trains end to end.
//
//   text   [CLS] w… [SEP] ──► text BERT (BertForPreTraining, MLM) ──► Ht [B·Tt, Ct]
//   frames/features of the batch's NE clips ──► front-end ──► E [NE, D]
//   clip sequence b: E rows, masked ones replaced by visual.embeddings.mask_embedding,
//     + learned positions, LayerNorm ──► visual transformer ──► Hv [B·Tv, D]
//   masked-frame NCE (CBT §3.2 eq. 5–6): p_m = nce_head(Hv[masked m]) scores the true clip's
//     E row against K negatives (clips of OTHER examples = other videos in the batch); softmax
//     cross-entropy over the 1 + K candidates; gradients reach Hv AND the candidates' E rows.
//   cross-modal (CBT §3.3 eq. 8): for text i and each candidate video j (j = i, then the next
//     K1x − 1 examples of the batch, cyclically; K1x = B: every video of the batch), the sequence
//     [cross CLS; text_proj(Ht_i) + type 0; video_proj(Hv_j) + type 1] → LayerNorm → shallow
//     transformer → pooler (dense, tanh) on [CLS] → score s(i, j); softmax cross-entropy over
//     j with the true video as target ("MI" of CBT's cross-modal NCE).
//   pooled (options): zt = pooled.text_proj(Ht[CLS]), zv = pooled.video_proj(mean of Hv over
//     the real clips); symmetric InfoNCE, hinge ranking or variable-margin ranking (PooledObjective).
//   loss = w_mlm·MLM + w_nce·NCE + w_cross·cross + w_pooled·pooled.
//
// The cross-modal transformer gets no position embeddings of its own: its inputs are outputs of
// transformers that already encode position. Padding (shorter texts and clip sequences) is masked
// everywhere; padded rows neither attend nor are read.
//
// Parameters: the text BERT keeps its own ParameterStore (HF BertForPreTraining names; saved as
// the Hugging Face folder `text/`). Everything else is one ParameterStore (`store`), names:
//
//   frontend.*                                        ConvFrontEnd (conv{l}.weight/bias, proj.*) or
//                                                     FeatureProjection (proj.* | fc1.*, fc2.*)
//   visual.embeddings.position_embeddings.weight      [maxClips, D]
//   visual.embeddings.mask_embedding                  [D]    the masked clip's input
//   visual.embeddings.LayerNorm.weight / .bias        [D]
//   visual.encoder.layer.{l}.*                        TransformerEncoder (HF BertLayer names), D wide
//   visual.nce_head.weight / .bias                    [D, D], [D]
//   cross.text_proj.weight / .bias                    [Cx, Ct], [Cx]
//   cross.video_proj.weight / .bias                   [Cx, D], [Cx]
//   cross.embeddings.cls_embedding                    [Cx]
//   cross.embeddings.token_type_embeddings.weight     [2, Cx]   0 text (and [CLS]), 1 video
//   cross.embeddings.LayerNorm.weight / .bias         [Cx]
//   cross.encoder.layer.{l}.*                         TransformerEncoder, Cx wide
//   cross.pooler.dense.weight / .bias                 [Cx, Cx], [Cx]
//   cross.score.weight / .bias                        [1, Cx], [1]
//   pooled.text_proj.weight / .bias                   [E, Ct], [E]
//   pooled.video_proj.weight / .bias                  [E, D], [E]
//
// Shape letters: B examples, Tt text length, Ct text hidden, NE clips in the batch, D visual
// hidden, Tv clips per example (padded), Nv = B·Tv, M masked clips, K1 = 1 + K NCE candidates,
// Cx cross hidden, K1x videos per text in the cross-modal NCE, Q = B·K1x pairs, Tx = 1 + Tt + Tv,
// E pooled embedding size.

/// One CBT minibatch: B (text, clip sequence) examples from B different videos.
public struct CBTBatch: Sendable {
    public var B: Int
    /// [B, Tt] the texts ([CLS] w… [SEP], token type 0) with their MLM rows; no video, no alignment.
    public var text: PretrainingBatch
    /// NE: clips in the batch (rows of `frames` / `features`).
    public var clipCount: Int
    /// uint8 [NE, F, S, S, 3] the clips' stored frames (front-end "frames").
    public var frames: [UInt8]
    /// float32 [NE, dim] the clips' stored features (front-end "features").
    public var features: [Float]
    /// Tv: positions per clip sequence (the longest example's clip count).
    public var Tv: Int
    /// [B·Tv] position b·Tv + t → its clip (row of frames/features), −1 for padding.
    public var clipRows: [Int32]
    /// [M] positions b·Tv + t whose clip is replaced by the mask embedding (each a real clip).
    public var maskedRows: [Int32]
    /// K1 = 1 + K: NCE candidates per masked position.
    public var K1: Int
    /// [M, K1] clip rows: column 0 the masked position's own clip, then K negatives.
    public var candidates: [Int32]
    /// K1x: videos each text is scored against in the cross-modal NCE (1 ≤ K1x ≤ B).
    public var crossCandidates: Int

    public init(B: Int, text: PretrainingBatch, clipCount: Int, frames: [UInt8], features: [Float], Tv: Int, clipRows: [Int32],
                maskedRows: [Int32], K1: Int, candidates: [Int32], crossCandidates: Int) {
        self.B = B; self.text = text; self.clipCount = clipCount; self.frames = frames; self.features = features
        self.Tv = Tv; self.clipRows = clipRows; self.maskedRows = maskedRows; self.K1 = K1; self.candidates = candidates
        self.crossCandidates = crossCandidates
    }
}

/// What one CBT step measured: each objective's mean loss and how often the true candidate was
/// ranked first (strictly; ties count as wrong).
public struct CBTOutput: Sendable, Equatable {
    public var loss: Float = 0
    public var mlmLoss: Float = 0, mlmCount = 0, mlmCorrect = 0
    public var nceLoss: Float = 0, nceCount = 0, nceCorrect = 0
    public var crossLoss: Float = 0, crossCount = 0, crossCorrect = 0
    /// Pooled objective; correct counts text→video.
    public var pooledLoss: Float = 0, pooledCount = 0, pooledCorrect = 0
    public init() {}
}

/// Pooled embeddings and cross-modal inputs of a set of examples, for retrieval (`CBTModel.encodeForRetrieval`).
public struct CBTRetrievalInputs: Sendable {
    /// [N, E] pooled text and video embeddings.
    public var text: [Float], video: [Float]
    /// [N, Tt, Cx] projected text rows and [N, Tt] their mask; [N, Tv, Cx] projected video rows, [N, Tv] mask.
    public var crossText: [Float], textMask: [Float], crossVideo: [Float], videoMask: [Float]
    public var N: Int, Tt: Int, Tv: Int

    public init(text: [Float], video: [Float], crossText: [Float], textMask: [Float], crossVideo: [Float], videoMask: [Float],
                N: Int, Tt: Int, Tv: Int) {
        self.text = text; self.video = video; self.crossText = crossText; self.textMask = textMask
        self.crossVideo = crossVideo; self.videoMask = videoMask; self.N = N; self.Tt = Tt; self.Tv = Tv
    }
}

/// The CBT model: text BERT, visual front-end, visual transformer, cross-modal transformer and
/// the pooled projections (see the file comment for the computation and the parameter names).
/// Not Sendable: it owns raw buffers that its methods mutate.
public final class CBTModel {
    public let config: CBTConfig
    /// The text BERT (its own store; HF names). A visual-only model (built without a text
    /// config, see `visualStates`) has none: asking for it is a programming error.
    public var text: BertForPreTraining {
        guard let textModel else { preconditionFailure("a visual-only CBT model has no text BERT") }
        return textModel
    }
    let textModel: BertForPreTraining?
    /// Every other parameter (names in the file comment).
    public let store: ParameterStore
    /// B, Tt, NE (= B·maxClips), K1, K1x at most.
    public let maxBatch, maxTextLength, maxClipsPerBatch, maxNCECandidates, maxCrossCandidates: Int
    public let training: Bool

    let D, Ct, Cx, E, P: Int
    let eps: Float
    let conv: ConvFrontEnd?
    let projection: FeatureProjection?
    let visual: TransformerEncoder
    let cross: TransformerEncoder
    private let arena: Arena
    private let s: CBTSlots
    private let w: CBTParameterOffsets
    private let ints: CBTInts

    /// Builds the model with zero parameters (call `initializeWeights(seed:)` or load).
    /// - Parameters:
    ///   - textConfig: the text BERT (visual_words 0; its hidden size must be config.textHiddenSize);
    ///     nil builds a visual-only model (front-end and visual transformer for `visualStates`;
    ///     the cross-modal buffers sized for one text of one token).
    ///   - maxBatch: B; maxTextLength: Tt (≤ the text BERT's positions); maxNCECandidates: 1 + K;
    ///     maxCrossCandidates: K1x (≤ maxBatch).
    public init(config: CBTConfig, textConfig: BertConfig?, maxBatch: Int, maxTextLength: Int, maxNCECandidates: Int,
                maxCrossCandidates: Int, training: Bool = true) throws {
        try config.validate()
        if let textConfig, textConfig.hiddenSize != config.textHiddenSize {
            throw VideoBertError("the text BERT is \(textConfig.hiddenSize) wide, cbt text_hidden_size is \(config.textHiddenSize)")
        }
        let maxTextLength = textConfig == nil ? 1 : maxTextLength
        guard maxBatch >= 1, maxNCECandidates >= 1, maxCrossCandidates >= 1, maxCrossCandidates <= maxBatch else {
            throw VideoBertError("CBT sizes: batch ≥ 1, NCE candidates ≥ 1, 1 ≤ cross candidates ≤ batch")
        }
        self.config = config
        self.training = training
        self.maxBatch = maxBatch
        self.maxTextLength = maxTextLength
        self.maxNCECandidates = maxNCECandidates
        self.maxCrossCandidates = maxCrossCandidates
        D = config.visualHiddenSize; Ct = config.textHiddenSize; Cx = config.crossHiddenSize; E = config.embeddingSize
        P = config.maxClips
        eps = Float(config.layerNormEps)
        maxClipsPerBatch = maxBatch * P
        textModel = try textConfig.map { try BertForPreTraining(config: $0, maxBatch: maxBatch, maxSeq: maxTextLength, training: training) }
        store = try ParameterStore(Self.parameterSpecs(config), training: training)
        w = CBTParameterOffsets(store: store)
        var layout = ArenaLayout()
        if config.frontEnd == "frames" {
            conv = try ConvFrontEnd(config: config.conv!, store: store, maxClips: maxClipsPerBatch, layout: &layout)
            projection = nil
        } else {
            projection = try FeatureProjection(config: config.projection!, store: store, maxClips: maxClipsPerBatch, layout: &layout)
            conv = nil
        }
        visual = try TransformerEncoder(store: store, prefix: "visual.encoder.", hiddenSize: D, numHeads: config.visualHeads,
                                        intermediateSize: config.visualIntermediateSize, layers: config.visualLayers, eps: eps,
                                        maxBatch: maxBatch, maxSeq: P, training: training, firstSite: 1,
                                        layout: &layout, arenaPrefix: "visual.")
        let Q = maxBatch * maxCrossCandidates, Tx = 1 + maxTextLength + P
        cross = try TransformerEncoder(store: store, prefix: "cross.encoder.", hiddenSize: Cx, numHeads: config.crossHeads,
                                       intermediateSize: config.crossIntermediateSize, layers: config.crossLayers, eps: eps,
                                       maxBatch: Q, maxSeq: Tx, training: training, firstSite: 1,
                                       layout: &layout, arenaPrefix: "cross.")
        s = CBTSlots(layout: &layout, B: maxBatch, NE: maxClipsPerBatch, Nv: maxBatch * P, Nt: maxBatch * maxTextLength,
                     K1: maxNCECandidates, K1x: maxCrossCandidates, Q: Q, Nx: Q * Tx, D: D, Ct: Ct, Cx: Cx, E: E, training: training)
        arena = Arena(layout)
        ints = CBTInts(Nv: maxBatch * P, K1: maxNCECandidates, B: maxBatch, Q: Q)
    }

    deinit { ints.deallocate() }

    /// Bytes held (both stores, parameters + gradients + moments, and activations).
    public var bytes: Int { (textModel?.bytes ?? 0) + store.bytes + arena.bytes + ints.bytes }

    // MARK: Parameters

    /// The CBT store's tensors, in allocation order (see the file comment).
    public static func parameterSpecs(_ c: CBTConfig) -> [ParameterSpec] {
        let D = c.visualHiddenSize, Ct = c.textHiddenSize, Cx = c.crossHiddenSize, E = c.embeddingSize
        func weight(_ name: String, _ shape: [Int]) -> ParameterSpec { ParameterSpec(name, shape, weightDecay: true) }
        func plain(_ name: String, _ shape: [Int]) -> ParameterSpec { ParameterSpec(name, shape, weightDecay: false) }
        var specs = c.frontEnd == "frames" ? ConvFrontEnd.parameterSpecs(c.conv!) : FeatureProjection.parameterSpecs(c.projection!)
        specs += [
            weight("visual.embeddings.position_embeddings.weight", [c.maxClips, D]),
            weight("visual.embeddings.mask_embedding", [D]),
            plain("visual.embeddings.LayerNorm.weight", [D]),
            plain("visual.embeddings.LayerNorm.bias", [D]),
        ]
        specs += TransformerEncoder.parameterSpecs(prefix: "visual.encoder.", hiddenSize: D, intermediateSize: c.visualIntermediateSize,
                                                   layers: c.visualLayers)
        specs += [
            weight("visual.nce_head.weight", [D, D]), plain("visual.nce_head.bias", [D]),
            weight("cross.text_proj.weight", [Cx, Ct]), plain("cross.text_proj.bias", [Cx]),
            weight("cross.video_proj.weight", [Cx, D]), plain("cross.video_proj.bias", [Cx]),
            weight("cross.embeddings.cls_embedding", [Cx]),
            weight("cross.embeddings.token_type_embeddings.weight", [2, Cx]),
            plain("cross.embeddings.LayerNorm.weight", [Cx]),
            plain("cross.embeddings.LayerNorm.bias", [Cx]),
        ]
        specs += TransformerEncoder.parameterSpecs(prefix: "cross.encoder.", hiddenSize: Cx, intermediateSize: c.crossIntermediateSize,
                                                   layers: c.crossLayers)
        specs += [
            weight("cross.pooler.dense.weight", [Cx, Cx]), plain("cross.pooler.dense.bias", [Cx]),
            weight("cross.score.weight", [1, Cx]), plain("cross.score.bias", [1]),
            weight("pooled.text_proj.weight", [E, Ct]), plain("pooled.text_proj.bias", [E]),
            weight("pooled.video_proj.weight", [E, D]), plain("pooled.video_proj.bias", [E]),
        ]
        return specs
    }

    /// The text BERT as `BertForPreTraining.initializeWeights`; the front-end as its own
    /// `initializeParameters` (He-normal convolutions); everything else BERT-style
    /// (normal(0, initializer_range), LayerNorm 1, biases 0).
    public func initializeWeights(seed: UInt64) {
        textModel?.initializeWeights(seed: seed)
        var rng = SeededRNG(seed: seed, stream: 0xF407)
        if let c = config.conv { ConvFrontEnd.initializeParameters(c, store: store, rng: &rng) }
        if let p = config.projection { FeatureProjection.initializeParameters(p, store: store, rng: &rng) }
        let rest = store.slots.map(\.name).filter { !$0.hasPrefix("frontend.") }
        initializeBertStyle(store, names: rest, std: Float(config.initializerRange), seed: seed ^ 0xCB7)
    }

    /// Both stores, with the name prefix each uses in a trainer's optimizer state.
    public var parameterStores: [(prefix: String, store: ParameterStore)] { [("", store)] + (textModel.map { [("text.", $0.store)] } ?? []) }

    @inline(__always) private func wp(_ offset: Int) -> UnsafeMutablePointer<Float> { store.parameters + offset }
    @inline(__always) private func gp(_ offset: Int) -> UnsafeMutablePointer<Float> { store.gradients + offset }

    // MARK: Training step

    /// One CBT step: forward, and in training the backward pass, whose gradient of
    /// `lossScale · loss` is ADDED to both stores' gradients (zero them once per optimizer step).
    /// Dropout (training only) draws from `dropoutSeed` and `step`.
    public func forwardBackward(_ batch: CBTBatch, step: Int, dropoutSeed seed: UInt64, objectives o: CBTObjectives,
                                lossScale: Float = 1, training: Bool = true) -> CBTOutput {
        precondition(!training || self.training, "a CBT model built with training: false cannot run backward")
        return run(batch, step: step, seed: seed, objectives: o, lossScale: lossScale, dropout: training, backward: training)
    }

    /// The loss with dropout as in training but no backward: the finite-difference tests' seam.
    func forwardForCheck(_ batch: CBTBatch, o: CBTObjectives) -> Float {
        run(batch, step: 7, seed: 11, objectives: o, lossScale: 1, dropout: true, backward: false).loss
    }

    /// Forward (with or without dropout) and optionally backward.
    func run(_ batch: CBTBatch, step: Int, seed: UInt64, objectives o: CBTObjectives, lossScale: Float,
             dropout: Bool, backward training: Bool) -> CBTOutput {
        let B = batch.B, Tv = batch.Tv, Nv = B * Tv, NE = batch.clipCount, Tt = batch.text.T
        let M = batch.maskedRows.count, K1 = batch.K1, K1x = batch.crossCandidates
        precondition(B >= 1 && B <= maxBatch && batch.text.B == B, "CBT batch of \(B) outside 1...\(maxBatch)")
        precondition(Tv >= 1 && Tv <= P && batch.clipRows.count == Nv, "clip sequences of \(Tv) outside 1...\(P)")
        precondition(NE >= 1 && NE <= maxClipsPerBatch, "\(NE) clips outside 1...\(maxClipsPerBatch)")
        precondition(K1 >= 1 && K1 <= maxNCECandidates && batch.candidates.count == M * K1, "NCE candidates do not match")
        precondition(K1x >= 1 && K1x <= min(B, maxCrossCandidates), "cross candidates \(K1x) outside 1...\(min(B, maxCrossCandidates))")
        var out = CBTOutput()
        let pHidden: Float = dropout ? Float(config.hiddenDropoutProb) : 0
        let pAttention: Float = dropout ? Float(config.attentionProbsDropoutProb) : 0
        let textSeed = dropoutSeedFor(seed, 1), visualSeed = dropoutSeedFor(seed, 2), crossSeed = dropoutSeedFor(seed, 3)

        // Text BERT (MLM head's gradient lands in text.hiddenGradient).
        let (textOut, Ht, textKept) = text.forwardKeepingHidden(batch.text, step: step, dropoutSeed: textSeed, lossWeights: (o.mlmWeight, 0, 0),
                                                      lossScale: lossScale, training: training, dropout: dropout)
        out.mlmLoss = textOut.mlmLoss; out.mlmCount = textOut.mlmCount; out.mlmCorrect = textOut.mlmCorrect

        // Front-end: E [NE, D].
        let embeddings = frontEndForward(batch)
        // Visual transformer over the clip sequences.
        loadVisualInputs(batch)
        let Hv = visualForward(B: B, Tv: Tv, pHidden: pHidden, pAttention: pAttention, seed: visualSeed, step: step)
        let dHv = arena[visual.dOutput], dE = arena[s.dE]
        if training {
            zeroFloats(dHv, Nv * D)
            zeroFloats(dE, NE * D)
        }

        // Masked-frame NCE.
        if M > 0 {
            batch.maskedRows.withUnsafeBufferPointer { ints.masked.update(from: $0.baseAddress!, count: M) }
            batch.candidates.withUnsafeBufferPointer { ints.candidates.update(from: $0.baseAddress!, count: M * K1) }
            for i in 0..<(M * K1) { precondition(ints.candidates[i] >= 0 && Int(ints.candidates[i]) < NE, "NCE candidate outside the batch's clips") }
            gatherRowsForward(out: arena[s.nceIn], inp: Hv, rows: ints.masked, M: M, C: D)
            linearForward(out: arena[s.ncePred], inp: arena[s.nceIn], weight: wp(w.nceW), bias: wp(w.nceB), N: M, C: D, OC: D)
            let r = maskedFrameNCEForward(probs: arena[s.nceProbs], losses: arena[s.nceLosses], predictions: arena[s.ncePred],
                                          embeddings: embeddings, candidates: ints.candidates, M: M, K1: K1, D: D, NE: NE,
                                          temperature: o.nceTemperature)
            out.nceLoss = r.loss; out.nceCount = r.count; out.nceCorrect = r.correct
            if training {
                zeroFloats(arena[s.dNcePred], M * D)
                maskedFrameNCEBackward(dpredictions: arena[s.dNcePred], dembeddings: dE, probs: arena[s.nceProbs],
                                       predictions: arena[s.ncePred], embeddings: embeddings, candidates: ints.candidates,
                                       M: M, K1: K1, D: D, temperature: o.nceTemperature, dloss: o.nceWeight * lossScale)
                zeroFloats(arena[s.dNceIn], M * D)
                linearBackward(dinp: arena[s.dNceIn], dweight: gp(w.nceW), dbias: gp(w.nceB), dout: arena[s.dNcePred],
                               inp: arena[s.nceIn], weight: wp(w.nceW), N: M, C: D, OC: D)
                gatherRowsBackward(dinp: dHv, dout: arena[s.dNceIn], rows: ints.masked, M: M, C: D)
            }
        }

        // Pooled embeddings.
        if o.pooled != .none {
            let dHt: UnsafeMutablePointer<Float>? = training ? text.hiddenGradient : nil
            pooledObjective(B: B, Tt: Tt, Tv: Tv, Ht: Ht, Hv: Hv, dHt: dHt, dHv: training ? dHv : nil, o: o,
                            dloss: o.pooledWeight * lossScale, output: &out)
        }

        // Cross-modal NCE.
        if o.crossWeight != 0 || !training {
            let Pt = arena[s.pt], Pv = arena[s.pv]
            linearForward(out: Pt, inp: Ht, weight: wp(w.crossTextW), bias: wp(w.crossTextB), N: B * Tt, C: Ct, OC: Cx)
            linearForward(out: Pv, inp: Hv, weight: wp(w.crossVideoW), bias: wp(w.crossVideoB), N: Nv, C: D, OC: Cx)
            let Q = B * K1x
            for i in 0..<B {
                for k in 0..<K1x { ints.pairs[2 * (i * K1x + k)] = Int32(i); ints.pairs[2 * (i * K1x + k) + 1] = Int32((i + k) % B) }
            }
            let scores = batch.text.attentionMask.withUnsafeBufferPointer { textMask in
                crossScoresForward(pt: Pt, textMask: textMask.baseAddress!, Tt: Tt, pv: Pv, videoMask: arena[visual.mask], Tv: Tv,
                                   pairs: ints.pairs, Q: Q, pHidden: pHidden, pAttention: pAttention, seed: crossSeed, step: step)
            }
            for i in 0..<B { ints.zeros[i] = 0 }
            out.crossLoss = softmaxCrossEntropyForward(losses: arena[s.crossLosses], probs: arena[s.crossProbs], logits: scores,
                                                       rows: nil, targets: ints.zeros, M: B, V: K1x)
            out.crossCount = B
            for i in 0..<B {
                let row = scores + i * K1x
                var best = -Float.infinity
                for k in 1..<K1x { best = max(best, row[k]) }
                if row[0] > best { out.crossCorrect += 1 }
            }
            if training && o.crossWeight != 0 {
                let dScores = arena[s.dScores]
                zeroFloats(dScores, Q)
                softmaxCrossEntropyBackward(dlogits: dScores, probs: arena[s.crossProbs], rows: nil, targets: ints.zeros, M: B, V: K1x,
                                            dloss: o.crossWeight * lossScale)
                let dPt = arena[s.dPt], dPv = arena[s.dPv]
                zeroFloats(dPt, B * Tt * Cx)
                zeroFloats(dPv, Nv * Cx)
                crossScoresBackward(dScores: dScores, dpt: dPt, dpv: dPv, Tt: Tt, Tv: Tv, pairs: ints.pairs, Q: Q,
                                    pHidden: pHidden, pAttention: pAttention, seed: crossSeed, step: step)
                linearBackward(dinp: text.hiddenGradient, dweight: gp(w.crossTextW), dbias: gp(w.crossTextB), dout: dPt, inp: Ht,
                               weight: wp(w.crossTextW), N: B * Tt, C: Ct, OC: Cx)
                linearBackward(dinp: dHv, dweight: gp(w.crossVideoW), dbias: gp(w.crossVideoB), dout: dPv, inp: Hv,
                               weight: wp(w.crossVideoW), N: Nv, C: D, OC: Cx)
            }
        }
        out.loss = o.mlmWeight * out.mlmLoss + o.nceWeight * out.nceLoss + o.crossWeight * out.crossLoss
            + (o.pooled == .none ? 0 : o.pooledWeight * out.pooledLoss)
        if training {
            visualBackward(B: B, Tv: Tv, pHidden: pHidden, pAttention: pAttention, seed: visualSeed, step: step)
            frontEndBackward(batch, dE: dE)
            if let textKept { text.backwardKeepingHidden(textKept) }
        }
        return out
    }

    private func dropoutSeedFor(_ seed: UInt64, _ component: Int) -> UInt64 { dropoutSeed(base: seed, step: -1, site: component) }

    // MARK: Front-end

    private func frontEndForward(_ batch: CBTBatch) -> UnsafeMutablePointer<Float> {
        frontEndForward(clips: batch.clipCount, frames: batch.frames, features: batch.features)
    }

    private func frontEndForward(clips NE: Int, frames: [UInt8], features: [Float]) -> UnsafeMutablePointer<Float> {
        if let conv {
            let c = conv.config, perClip = c.framesPerClip * c.frameSize * c.frameSize * 3
            precondition(frames.count == NE * perClip, "frames: expected \(NE) clips of \(perClip) bytes, got \(frames.count) bytes")
            return frames.withUnsafeBufferPointer { conv.forward(arena: arena, frames: $0.baseAddress!, clips: NE) }
        }
        let projection = projection!
        precondition(features.count == NE * projection.config.inputSize, "features: expected \(NE) × \(projection.config.inputSize) values")
        return features.withUnsafeBufferPointer { projection.forward(arena: arena, features: $0.baseAddress!, clips: NE) }
    }

    private func frontEndBackward(_ batch: CBTBatch, dE: UnsafeMutablePointer<Float>) {
        frontEndBackward(clips: batch.clipCount, features: batch.features, dE: dE)
    }

    private func frontEndBackward(clips: Int, features: [Float], dE: UnsafeMutablePointer<Float>) {
        if let conv {
            conv.backward(arena: arena, dout: dE, clips: clips)
        } else {
            features.withUnsafeBufferPointer {
                projection!.backward(arena: arena, dout: dE, features: $0.baseAddress!, clips: clips)
            }
        }
    }

    // MARK: Visual transformer

    /// clipRows → ints.clipRows; masked flags → ints.isMasked; attention mask → visual.mask.
    private func loadVisualInputs(_ batch: CBTBatch) {
        loadVisualInputs(B: batch.B, Tv: batch.Tv, clipRows: batch.clipRows, maskedRows: batch.maskedRows, clips: batch.clipCount)
    }

    private func loadVisualInputs(B: Int, Tv: Int, clipRows: [Int32], maskedRows: [Int32], clips: Int) {
        let Nv = B * Tv
        let mask = arena[visual.mask]
        for r in 0..<Nv {
            let c = clipRows[r]
            precondition(c >= -1 && Int(c) < clips, "clip row \(c) outside the batch's \(clips) clips")
            ints.clipRows[r] = c
            ints.isMasked[r] = 0
            mask[r] = c >= 0 ? 1 : 0
        }
        for r in maskedRows {
            precondition(r >= 0 && Int(r) < Nv && clipRows[Int(r)] >= 0, "masked row \(r) is not a real clip position")
            ints.isMasked[Int(r)] = 1
        }
    }

    /// embSum[b·Tv + t] = (masked ? mask embedding : E[clip]) + position[t] (padding: position only);
    /// x0 = dropout(LN(embSum)); Hv = visual encoder(x0).
    private func visualForward(B: Int, Tv: Int, pHidden: Float, pAttention: Float, seed: UInt64, step: Int) -> UnsafeMutablePointer<Float> {
        let Nv = B * Tv, D = D
        let embSum = arena[s.vEmbSum], E = arena[conv?.output ?? projection!.output]
        let position = wp(w.vPosition), maskEmbedding = wp(w.vMask)
        let clipRows = ints.clipRows, isMasked = ints.isMasked
        Parallel.forEachRange(Nv, grain: max(1, 16_384 / D)) { rows in
            for r in rows {
                let o = embSum + r * D, pos = position + (r % Tv) * D
                if isMasked[r] != 0 {
                    for c in 0..<D { o[c] = maskEmbedding[c] + pos[c] }
                } else if clipRows[r] >= 0 {
                    let e = E + Int(clipRows[r]) * D
                    for c in 0..<D { o[c] = e[c] + pos[c] }
                } else {
                    o.update(from: pos, count: D)
                }
            }
        }
        let x0 = arena[visual.input]
        layerNormForward(out: x0, mean: arena[s.vEmbMean], rstd: arena[s.vEmbRstd], inp: embSum, weight: wp(w.vLNw), bias: wp(w.vLNb),
                         N: Nv, C: D, eps: eps)
        if pHidden > 0 { dropoutForward(out: x0, inp: x0, p: pHidden, seed: dropoutSeed(base: seed, step: step, site: 0), N: Nv * D) }
        return visual.forward(arena: arena, B: B, T: Tv, pHidden: pHidden, pAttention: pAttention, seed: seed, step: step)
    }

    /// From d(Hv) in arena[visual.dOutput]: the encoder, the embeddings' dropout and LayerNorm, then
    /// the sum: positions and the mask embedding get their rows' gradients, unmasked clips' rows go
    /// to dE (+=) and so to the front-end.
    private func visualBackward(B: Int, Tv: Int, pHidden: Float, pAttention: Float, seed: UInt64, step: Int) {
        let Nv = B * Tv, D = D
        let d = visual.backward(arena: arena, B: B, T: Tv, pHidden: pHidden, pAttention: pAttention, seed: seed, step: step)
        var dLN = d.dInput
        if pHidden > 0 {
            dLN = d.spare
            dropoutBackward(dinp: dLN, dout: d.dInput, p: pHidden, seed: dropoutSeed(base: seed, step: step, site: 0), N: Nv * D, accumulate: false)
        }
        let dEmbSum = d.spare2
        layerNormBackward(dinp: dEmbSum, dweight: gp(w.vLNw), dbias: gp(w.vLNb), dout: dLN, inp: arena[s.vEmbSum], weight: wp(w.vLNw),
                          mean: arena[s.vEmbMean], rstd: arena[s.vEmbRstd], N: Nv, C: D, accumulate: false)
        let dPosition = gp(w.vPosition), dMask = gp(w.vMask), dE = arena[s.dE]
        let clipRows = ints.clipRows, isMasked = ints.isMasked
        // Columns split across workers, rows in order: deterministic sums into shared rows.
        Parallel.forEachRange(D, grain: Parallel.columnGrain(rows: Nv, columns: D)) { columns in
            for r in 0..<Nv where clipRows[r] >= 0 {
                let g = dEmbSum + r * D, pos = dPosition + (r % Tv) * D
                let target = isMasked[r] != 0 ? dMask : dE + Int(clipRows[r]) * D
                for c in columns { pos[c] += g[c]; target[c] += g[c] }
            }
        }
    }

    // MARK: Pooled objective

    private func pooledForward(B: Int, Tt: Int, Tv: Int, Ht: UnsafePointer<Float>, Hv: UnsafePointer<Float>) {
        let D = D, mask = arena[visual.mask], vMean = arena[s.vMean]
        for b in 0..<B { ints.textCls[b] = Int32(b * Tt) }
        gatherRowsForward(out: arena[s.tCls], inp: Ht, rows: ints.textCls, M: B, C: Ct)
        for b in 0..<B {
            let o = vMean + b * D
            o.update(repeating: 0, count: D)
            var n: Float = 0
            for t in 0..<Tv where mask[b * Tv + t] > 0 {
                let h = Hv + (b * Tv + t) * D
                for c in 0..<D { o[c] += h[c] }
                n += 1
            }
            let inv = 1 / max(n, 1)
            for c in 0..<D { o[c] *= inv }
        }
        linearForward(out: arena[s.zt], inp: arena[s.tCls], weight: wp(w.pooledTextW), bias: wp(w.pooledTextB), N: B, C: Ct, OC: E)
        linearForward(out: arena[s.zv], inp: vMean, weight: wp(w.pooledVideoW), bias: wp(w.pooledVideoB), N: B, C: D, OC: E)
    }

    private func pooledObjective(B: Int, Tt: Int, Tv: Int, Ht: UnsafePointer<Float>, Hv: UnsafePointer<Float>,
                                 dHt: UnsafeMutablePointer<Float>?, dHv: UnsafeMutablePointer<Float>?, o: CBTObjectives, dloss: Float,
                                 output: inout CBTOutput) {
        pooledForward(B: B, Tt: Tt, Tv: Tv, Ht: Ht, Hv: Hv)
        let zt = arena[s.zt], zv = arena[s.zv], E = E
        let unit = L2NormalizedPairBuffers(textUnit: arena[s.ut], videoUnit: arena[s.uv], textNorms: arena[s.tNorms], videoNorms: arena[s.vNorms])
        let scores = arena[s.scores], margins: UnsafeMutablePointer<Float>? = o.pooled == .variableMargin ? arena[s.margins] : nil
        let result: SymmetricContrastiveResult
        switch o.pooled {
        case .infonce:
            result = symmetricInfoNCEForward(probsTextToVideo: arena[s.probsT2V], probsVideoToText: arena[s.probsV2T], scores: scores,
                                             text: zt, video: zv, normalized: unit, N: B, D: E, temperature: o.pooledTemperature)
        default:
            l2NormalizeForward(out: unit.textUnit, norms: unit.textNorms, inp: zt, N: B, D: E)
            l2NormalizeForward(out: unit.videoUnit, norms: unit.videoNorms, inp: zv, N: B, D: E)
            pairwiseScoresForward(scores: scores, a: unit.textUnit, b: unit.videoUnit, NA: B, NB: B, D: E)
            if let margins { variableMarginsForward(margins: margins, x: unit.textUnit, N: B, D: E, alpha: o.marginAlpha) }
            result = rankingHingeForward(scores: scores, margins: margins, margin: o.margin, N: B, reduction: o.reduction)
        }
        output.pooledLoss = result.loss; output.pooledCount = result.textToVideo.count; output.pooledCorrect = result.textToVideo.correct
        guard let dHt, let dHv else { return }
        let dzt = arena[s.dzt], dzv = arena[s.dzv]
        zeroFloats(dzt, B * E); zeroFloats(dzv, B * E)
        switch o.pooled {
        case .infonce:
            symmetricInfoNCEBackward(dtext: dzt, dvideo: dzv, dscores: scores, dunit: arena[s.dUnit], probsTextToVideo: arena[s.probsT2V],
                                     probsVideoToText: arena[s.probsV2T], text: zt, video: zv, normalized: unit, N: B, D: E,
                                     temperature: o.pooledTemperature, dloss: dloss)
        default:
            let dScores = arena[s.probsT2V]   // free in the hinge forms
            zeroFloats(dScores, B * B)
            rankingHingeBackward(dscores: dScores, scores: scores, margins: margins, margin: o.margin, N: B, reduction: o.reduction, dloss: dloss)
            let dut = arena[s.dUnit], duv = arena[s.probsV2T]   // [B, E] scratch; probsV2T is [B, max(B, E)]
            zeroFloats(dut, B * E); zeroFloats(duv, B * E)
            pairwiseScoresBackward(da: dut, db: duv, dscores: dScores, a: unit.textUnit, b: unit.videoUnit, NA: B, NB: B, D: E)
            l2NormalizeBackward(dinp: dzt, dout: dut, out: unit.textUnit, norms: unit.textNorms, N: B, D: E)
            l2NormalizeBackward(dinp: dzv, dout: duv, out: unit.videoUnit, norms: unit.videoNorms, N: B, D: E)
        }
        let dtCls = arena[s.dtCls], dvMean = arena[s.dvMean], D = D
        zeroFloats(dtCls, B * Ct); zeroFloats(dvMean, B * D)
        linearBackward(dinp: dtCls, dweight: gp(w.pooledTextW), dbias: gp(w.pooledTextB), dout: dzt, inp: arena[s.tCls],
                       weight: wp(w.pooledTextW), N: B, C: Ct, OC: E)
        linearBackward(dinp: dvMean, dweight: gp(w.pooledVideoW), dbias: gp(w.pooledVideoB), dout: dzv, inp: arena[s.vMean],
                       weight: wp(w.pooledVideoW), N: B, C: D, OC: E)
        gatherRowsBackward(dinp: dHt, dout: dtCls, rows: ints.textCls, M: B, C: Ct)
        let mask = arena[visual.mask]
        for b in 0..<B {
            var n: Float = 0
            for t in 0..<Tv where mask[b * Tv + t] > 0 { n += 1 }
            let inv = 1 / max(n, 1), g = dvMean + b * D
            for t in 0..<Tv where mask[b * Tv + t] > 0 {
                let d = dHv + (b * Tv + t) * D
                for c in 0..<D { d[c] += g[c] * inv }
            }
        }
    }

    // MARK: Cross-modal transformer

    /// Scores Q (text i, video j) pairs: builds [CLS; pt rows of i + type 0; pv rows of j + type 1]
    /// (length Tx = 1 + Tt + Tv, padding masked), LayerNorm, dropout, the cross encoder pruned to
    /// the [CLS] rows, pooler dense + tanh, score. Returns arena[scores] [Q].
    /// - Parameters:
    ///   - pt: [·, Cx] projected text rows, row i·Tt + t; textMask [·] the same rows' mask.
    ///   - pv: [·, Cx] projected video rows, row j·Tv + v; videoMask [·].
    ///   - pairs: [Q, 2] (i, j).
    private func crossScoresForward(pt: UnsafePointer<Float>, textMask: UnsafePointer<Float>, Tt: Int,
                                    pv: UnsafePointer<Float>, videoMask: UnsafePointer<Float>, Tv: Int,
                                    pairs: UnsafePointer<Int32>, Q: Int, pHidden: Float, pAttention: Float, seed: UInt64, step: Int) -> UnsafeMutablePointer<Float> {
        let Cx = Cx, Tx = 1 + Tt + Tv, Nx = Q * Tx
        precondition(Q <= maxBatch * maxCrossCandidates && Tt <= maxTextLength && Tv <= P, "cross-modal batch too large")
        let xSum = arena[s.xSum], mask = arena[cross.mask]
        let cls = wp(w.crossCls), type0 = wp(w.crossType), type1 = wp(w.crossType) + Cx
        Parallel.forEachRange(Nx, grain: max(1, 16_384 / Cx)) { rows in
            for r in rows {
                let q = r / Tx, t = r % Tx, o = xSum + r * Cx
                let i = Int(pairs[2 * q]), j = Int(pairs[2 * q + 1])
                if t == 0 {
                    for c in 0..<Cx { o[c] = cls[c] + type0[c] }
                    mask[r] = 1
                } else if t <= Tt {
                    let row = i * Tt + t - 1, src = pt + row * Cx
                    for c in 0..<Cx { o[c] = src[c] + type0[c] }
                    mask[r] = textMask[row]
                } else {
                    let row = j * Tv + t - 1 - Tt, src = pv + row * Cx
                    for c in 0..<Cx { o[c] = src[c] + type1[c] }
                    mask[r] = videoMask[row]
                }
            }
        }
        let x0 = arena[cross.input]
        layerNormForward(out: x0, mean: arena[s.xMean], rstd: arena[s.xRstd], inp: xSum, weight: wp(w.crossLNw), bias: wp(w.crossLNb),
                         N: Nx, C: Cx, eps: eps)
        if pHidden > 0 { dropoutForward(out: x0, inp: x0, p: pHidden, seed: dropoutSeed(base: seed, step: step, site: 0), N: Nx * Cx) }
        for q in 0..<Q { ints.crossCls[q] = Int32(q * Tx) }
        let clsOut = cross.forward(arena: arena, B: Q, T: Tx, pHidden: pHidden, pAttention: pAttention, seed: seed, step: step,
                                   selected: ints.crossCls, selectedCount: Q)
        linearForward(out: arena[s.poolH], inp: clsOut, weight: wp(w.crossPoolerW), bias: wp(w.crossPoolerB), N: Q, C: Cx, OC: Cx)
        tanhForward(out: arena[s.pooledX], inp: arena[s.poolH], N: Q * Cx)
        linearForward(out: arena[s.scores1], inp: arena[s.pooledX], weight: wp(w.crossScoreW), bias: wp(w.crossScoreB), N: Q, C: Cx, OC: 1)
        clsOutput = clsOut
        return arena[s.scores1]
    }

    /// The [CLS] rows the cross encoder returned in the last `crossScoresForward` ([Q, Cx]).
    private var clsOutput: UnsafeMutablePointer<Float>?

    /// Backward of `crossScoresForward` from d(scores) [Q]: accumulates into the cross-modal
    /// parameters' gradients and into dpt [·, Cx], dpv [·, Cx] (+=).
    private func crossScoresBackward(dScores: UnsafePointer<Float>, dpt: UnsafeMutablePointer<Float>, dpv: UnsafeMutablePointer<Float>,
                                     Tt: Int, Tv: Int, pairs: UnsafePointer<Int32>, Q: Int,
                                     pHidden: Float, pAttention: Float, seed: UInt64, step: Int) {
        let Cx = Cx, Tx = 1 + Tt + Tv, Nx = Q * Tx
        let dPooled = arena[s.dPooledX], dPoolH = arena[s.dPoolH], dCls = arena[cross.dOutput]
        zeroFloats(dPooled, Q * Cx)
        linearBackward(dinp: dPooled, dweight: gp(w.crossScoreW), dbias: gp(w.crossScoreB), dout: dScores, inp: arena[s.pooledX],
                       weight: wp(w.crossScoreW), N: Q, C: Cx, OC: 1)
        zeroFloats(dPoolH, Q * Cx)
        tanhBackward(dinp: dPoolH, dout: dPooled, out: arena[s.pooledX], N: Q * Cx)
        zeroFloats(dCls, Q * Cx)
        linearBackward(dinp: dCls, dweight: gp(w.crossPoolerW), dbias: gp(w.crossPoolerB), dout: dPoolH, inp: clsOutput!,
                       weight: wp(w.crossPoolerW), N: Q, C: Cx, OC: Cx)
        let d = cross.backward(arena: arena, B: Q, T: Tx, pHidden: pHidden, pAttention: pAttention, seed: seed, step: step,
                               selected: ints.crossCls, selectedCount: Q)
        var dLN = d.dInput
        if pHidden > 0 {
            dLN = d.spare
            dropoutBackward(dinp: dLN, dout: d.dInput, p: pHidden, seed: dropoutSeed(base: seed, step: step, site: 0), N: Nx * Cx, accumulate: false)
        }
        let dSum = d.spare2
        layerNormBackward(dinp: dSum, dweight: gp(w.crossLNw), dbias: gp(w.crossLNb), dout: dLN, inp: arena[s.xSum], weight: wp(w.crossLNw),
                          mean: arena[s.xMean], rstd: arena[s.xRstd], N: Nx, C: Cx, accumulate: false)
        let dClsEmb = gp(w.crossCls), dType0 = gp(w.crossType), dType1 = gp(w.crossType) + Cx, mask = arena[cross.mask]
        // Columns split across workers, rows in order: deterministic sums into shared rows.
        Parallel.forEachRange(Cx, grain: Parallel.columnGrain(rows: Nx, columns: Cx)) { columns in
            for r in 0..<Nx where mask[r] > 0 {
                let q = r / Tx, t = r % Tx, g = dSum + r * Cx
                if t == 0 {
                    for c in columns { dClsEmb[c] += g[c]; dType0[c] += g[c] }
                } else if t <= Tt {
                    let dst = dpt + (Int(pairs[2 * q]) * Tt + t - 1) * Cx
                    for c in columns { dst[c] += g[c]; dType0[c] += g[c] }
                } else {
                    let dst = dpv + (Int(pairs[2 * q + 1]) * Tv + t - 1 - Tt) * Cx
                    for c in columns { dst[c] += g[c]; dType1[c] += g[c] }
                }
            }
        }
    }

    // MARK: Clip features (downstream)

    /// The visual transformer's final hidden states of B clip sequences (inference: no dropout,
    /// nothing masked): the contextual clip features that captioners fine-tuned from a CBT
    /// checkpoint read.
    /// - Parameters:
    ///   - Tv: positions per sequence (1...max_clips); clipRows: [B·Tv] position → clip row of
    ///     frames/features, −1 for padding.
    ///   - clips: rows of `frames` (uint8 [clips, F, S, S, 3], front-end "frames") or of
    ///     `features` (float32 [clips, dim], front-end "features"); the other array is empty.
    /// - Returns: [B·Tv, D] (padding rows included, as computed).
    public func visualStates(B: Int, Tv: Int, clipRows: [Int32], clips: Int, frames: [UInt8], features: [Float]) -> [Float] {
        visualStates(B: B, Tv: Tv, clipRows: clipRows, clips: clips, frames: frames, features: features, dropout: false, dropoutSeed: 0, step: 0)
    }

    /// What `visualStatesBackward` needs of the last `visualStates(…dropout:…)`.
    private var keptVisual: (B: Int, Tv: Int, clips: Int, features: [Float], pHidden: Float, pAttention: Float, seed: UInt64, step: Int)?

    /// `visualStates` for a caller that trains the visual path (a captioner tuning it): with
    /// `dropout` the config's dropout drawn from `dropoutSeed` and `step`; in a training model the
    /// state for `visualStatesBackward` is kept.
    public func visualStates(B: Int, Tv: Int, clipRows: [Int32], clips: Int, frames: [UInt8], features: [Float],
                             dropout: Bool, dropoutSeed seed: UInt64, step: Int) -> [Float] {
        precondition(B >= 1 && B <= maxBatch, "\(B) clip sequences outside 1...\(maxBatch)")
        precondition(Tv >= 1 && Tv <= P && clipRows.count == B * Tv, "clip sequences of \(Tv) outside 1...\(P)")
        precondition(clips >= 1 && clips <= maxClipsPerBatch, "\(clips) clips outside 1...\(maxClipsPerBatch)")
        let pHidden: Float = dropout ? Float(config.hiddenDropoutProb) : 0
        let pAttention: Float = dropout ? Float(config.attentionProbsDropoutProb) : 0
        let visualSeed = dropoutSeedFor(seed, 2)
        _ = frontEndForward(clips: clips, frames: frames, features: features)
        loadVisualInputs(B: B, Tv: Tv, clipRows: clipRows, maskedRows: [], clips: clips)
        let Hv = visualForward(B: B, Tv: Tv, pHidden: pHidden, pAttention: pAttention, seed: visualSeed, step: step)
        keptVisual = training ? (B, Tv, clips, features, pHidden, pAttention, visualSeed, step) : nil
        return Array(UnsafeBufferPointer(start: Hv, count: B * Tv * D))
    }

    /// Backward of the last `visualStates` of a training model from d(states) [B·Tv, D] (padding
    /// rows' values are ignored): the visual transformer, its embeddings and the front-end,
    /// accumulating (+=) into the store's gradients.
    public func visualStatesBackward(_ dStates: [Float]) {
        guard let k = keptVisual else { preconditionFailure("visualStatesBackward needs a preceding visualStates of a training model") }
        keptVisual = nil
        let Nv = k.B * k.Tv
        precondition(dStates.count == Nv * D, "d(states): expected \(Nv) × \(D) values")
        let dHv = arena[visual.dOutput], dE = arena[s.dE], mask = arena[visual.mask]
        dStates.withUnsafeBufferPointer { dHv.update(from: $0.baseAddress!, count: Nv * D) }
        for r in 0..<Nv where mask[r] == 0 { (dHv + r * D).update(repeating: 0, count: D) }
        zeroFloats(dE, k.clips * D)
        visualBackward(B: k.B, Tv: k.Tv, pHidden: k.pHidden, pAttention: k.pAttention, seed: k.seed, step: k.step)
        frontEndBackward(clips: k.clips, features: k.features, dE: dE)
    }

    // MARK: Retrieval

    /// Pooled embeddings and cross-modal inputs of the batch's examples (inference: no dropout,
    /// no masking — pass a batch without masked rows).
    public func encodeForRetrieval(_ batch: CBTBatch) -> CBTRetrievalInputs {
        let B = batch.B, Tv = batch.Tv, Tt = batch.text.T, Nv = B * Tv
        let (_, Ht, _) = text.forwardKeepingHidden(batch.text, step: 0, dropoutSeed: 0, lossWeights: (0, 0, 0), training: false)
        _ = frontEndForward(batch)
        loadVisualInputs(batch)
        let Hv = visualForward(B: B, Tv: Tv, pHidden: 0, pAttention: 0, seed: 0, step: 0)
        pooledForward(B: B, Tt: Tt, Tv: Tv, Ht: Ht, Hv: Hv)
        linearForward(out: arena[s.pt], inp: Ht, weight: wp(w.crossTextW), bias: wp(w.crossTextB), N: B * Tt, C: Ct, OC: Cx)
        linearForward(out: arena[s.pv], inp: Hv, weight: wp(w.crossVideoW), bias: wp(w.crossVideoB), N: Nv, C: D, OC: Cx)
        func copy(_ p: UnsafePointer<Float>, _ n: Int) -> [Float] { Array(UnsafeBufferPointer(start: p, count: n)) }
        return CBTRetrievalInputs(text: copy(arena[s.zt], B * E), video: copy(arena[s.zv], B * E),
                                  crossText: copy(arena[s.pt], B * Tt * Cx), textMask: batch.text.attentionMask,
                                  crossVideo: copy(arena[s.pv], Nv * Cx), videoMask: copy(arena[visual.mask], Nv), N: B, Tt: Tt, Tv: Tv)
    }

    /// Cross-modal scores s(i, j) for the given (text i, video j) pairs of `inputs` (inference),
    /// in chunks of at most maxBatch·maxCrossCandidates pairs.
    /// - Parameter pairs: [(i, j)] indices into inputs' N examples.
    public func crossScores(_ inputs: CBTRetrievalInputs, pairs: [(Int, Int)]) -> [Float] {
        let chunk = maxBatch * maxCrossCandidates
        var scores: [Float] = []
        scores.reserveCapacity(pairs.count)
        var start = 0
        while start < pairs.count {
            let Q = min(chunk, pairs.count - start)
            for q in 0..<Q {
                ints.pairs[2 * q] = Int32(pairs[start + q].0)
                ints.pairs[2 * q + 1] = Int32(pairs[start + q].1)
            }
            let out = inputs.crossText.withUnsafeBufferPointer { pt in
                inputs.textMask.withUnsafeBufferPointer { tm in
                    inputs.crossVideo.withUnsafeBufferPointer { pv in
                        inputs.videoMask.withUnsafeBufferPointer { vm in
                            crossScoresForward(pt: pt.baseAddress!, textMask: tm.baseAddress!, Tt: inputs.Tt, pv: pv.baseAddress!,
                                               videoMask: vm.baseAddress!, Tv: inputs.Tv, pairs: ints.pairs, Q: Q,
                                               pHidden: 0, pAttention: 0, seed: 0, step: 0)
                        }
                    }
                }
            }
            scores += UnsafeBufferPointer(start: out, count: Q)
            start += Q
        }
        return scores
    }
}

// MARK: - Private pieces

/// Offsets of the CBT store's tensors outside the front-end and the encoders.
private struct CBTParameterOffsets {
    let vPosition, vMask, vLNw, vLNb, nceW, nceB: Int
    let crossTextW, crossTextB, crossVideoW, crossVideoB, crossCls, crossType, crossLNw, crossLNb: Int
    let crossPoolerW, crossPoolerB, crossScoreW, crossScoreB: Int
    let pooledTextW, pooledTextB, pooledVideoW, pooledVideoB: Int

    init(store: ParameterStore) {
        func o(_ name: String) -> Int { store.offset(of: name) }
        vPosition = o("visual.embeddings.position_embeddings.weight"); vMask = o("visual.embeddings.mask_embedding")
        vLNw = o("visual.embeddings.LayerNorm.weight"); vLNb = o("visual.embeddings.LayerNorm.bias")
        nceW = o("visual.nce_head.weight"); nceB = o("visual.nce_head.bias")
        crossTextW = o("cross.text_proj.weight"); crossTextB = o("cross.text_proj.bias")
        crossVideoW = o("cross.video_proj.weight"); crossVideoB = o("cross.video_proj.bias")
        crossCls = o("cross.embeddings.cls_embedding"); crossType = o("cross.embeddings.token_type_embeddings.weight")
        crossLNw = o("cross.embeddings.LayerNorm.weight"); crossLNb = o("cross.embeddings.LayerNorm.bias")
        crossPoolerW = o("cross.pooler.dense.weight"); crossPoolerB = o("cross.pooler.dense.bias")
        crossScoreW = o("cross.score.weight"); crossScoreB = o("cross.score.bias")
        pooledTextW = o("pooled.text_proj.weight"); pooledTextB = o("pooled.text_proj.bias")
        pooledVideoW = o("pooled.video_proj.weight"); pooledVideoB = o("pooled.video_proj.bias")
    }
}

/// The CBT model's arena buffers besides the front-end's and the encoders'.
private struct CBTSlots {
    /// [NE, D] d(clip embeddings).
    let dE: TensorSlot
    /// Visual embeddings: [Nv, D] sum; [Nv] LayerNorm mean, rstd.
    let vEmbSum, vEmbMean, vEmbRstd: TensorSlot
    /// NCE over M ≤ Nv masked positions: [M, D] gathered rows, predictions, their gradients;
    /// [M, K1] probabilities; [M] losses.
    let nceIn, ncePred, nceProbs, nceLosses, dNcePred, dNceIn: TensorSlot
    /// Pooled: [B, Ct] text [CLS] rows; [B, D] mean clip rows; [B, E] embeddings, unit rows; [B]
    /// norms; [B, B] scores, margins, probabilities (both directions; reused as scratch in
    /// backward, hence [B, max(B, E)]); gradients.
    let tCls, vMean, zt, zv, ut, uv, tNorms, vNorms, scores, margins, probsT2V, probsV2T, dUnit, dzt, dzv, dtCls, dvMean: TensorSlot
    /// Cross-modal: [B·Tt, Cx] projected text rows, [Nv, Cx] projected video rows, their gradients;
    /// [Nx, Cx] input sum, [Nx] its LayerNorm mean, rstd; [Q, Cx] pooler dense, tanh, their
    /// gradients; [Q] scores = logits [B, K1x], their gradient; [B, K1x] probabilities; [B] losses.
    let pt, pv, dPt, dPv, xSum, xMean, xRstd, poolH, pooledX, dPoolH, dPooledX, scores1, dScores, crossProbs, crossLosses: TensorSlot

    init(layout l: inout ArenaLayout, B: Int, NE: Int, Nv: Int, Nt: Int, K1: Int, K1x: Int, Q: Int, Nx: Int,
         D: Int, Ct: Int, Cx: Int, E: Int, training: Bool) {
        func g(_ name: String, _ shape: [Int]) -> TensorSlot { l.add("cbt." + name, training ? shape : [0]) }
        func a(_ name: String, _ shape: [Int]) -> TensorSlot { l.add("cbt." + name, shape) }
        dE = g("dE", [NE, D])
        vEmbSum = a("vEmbSum", [Nv, D]); vEmbMean = a("vEmbMean", [Nv]); vEmbRstd = a("vEmbRstd", [Nv])
        nceIn = a("nceIn", [Nv, D]); ncePred = a("ncePred", [Nv, D]); nceProbs = a("nceProbs", [Nv, K1]); nceLosses = a("nceLosses", [Nv])
        dNcePred = g("dNcePred", [Nv, D]); dNceIn = g("dNceIn", [Nv, D])
        tCls = a("tCls", [B, Ct]); vMean = a("vMean", [B, D]); zt = a("zt", [B, E]); zv = a("zv", [B, E])
        ut = a("ut", [B, E]); uv = a("uv", [B, E]); tNorms = a("tNorms", [B]); vNorms = a("vNorms", [B])
        scores = a("scores", [B, B]); margins = a("margins", [B, B])
        probsT2V = a("probsT2V", [B, max(B, E)]); probsV2T = a("probsV2T", [B, max(B, E)])
        dUnit = g("dUnit", [B, E]); dzt = g("dzt", [B, E]); dzv = g("dzv", [B, E]); dtCls = g("dtCls", [B, Ct]); dvMean = g("dvMean", [B, D])
        pt = a("pt", [Nt, Cx]); pv = a("pv", [Nv, Cx]); dPt = g("dPt", [Nt, Cx]); dPv = g("dPv", [Nv, Cx])
        xSum = a("xSum", [Nx, Cx]); xMean = a("xMean", [Nx]); xRstd = a("xRstd", [Nx])
        poolH = a("poolH", [Q, Cx]); pooledX = a("pooledX", [Q, Cx]); dPoolH = g("dPoolH", [Q, Cx]); dPooledX = g("dPooledX", [Q, Cx])
        scores1 = a("crossScores", [Q]); dScores = g("dCrossScores", [Q]); crossProbs = a("crossProbs", [B, K1x]); crossLosses = a("crossLosses", [B])
    }
}

/// Int32 buffers: [Nv] clip rows, masked flags, masked rows; [Nv, K1] candidates; [B] text [CLS]
/// rows, zero targets; [Q] cross [CLS] rows; [Q, 2] pairs.
private struct CBTInts {
    let base: UnsafeMutablePointer<Int32>
    let clipRows, isMasked, masked, candidates, textCls, zeros, crossCls, pairs: UnsafeMutablePointer<Int32>
    let bytes: Int

    init(Nv: Int, K1: Int, B: Int, Q: Int) {
        let count = 3 * Nv + Nv * K1 + 2 * B + 3 * Q
        base = .allocate(capacity: count)
        base.initialize(repeating: 0, count: count)
        clipRows = base; isMasked = base + Nv; masked = base + 2 * Nv; candidates = base + 3 * Nv
        textCls = candidates + Nv * K1; zeros = textCls + B; crossCls = zeros + B; pairs = crossCls + Q
        bytes = count * MemoryLayout<Int32>.stride
    }

    func deallocate() { base.deallocate() }
}
