import Foundation
import Model
import Recipe
import Report
import Tensor
import Tokenize

/// `videobert pretrain` for a `variant: cbt` recipe: the CBT model (CBTModel.swift) trained by
/// the same `TrainingLoop` as VideoBERT (AdamW over both of its parameter stores with one global
/// clipping norm, schedule, accumulation, NaN checks, metrics.jsonl, loss.svg, atomic
/// checkpoints, exact resume, Ctrl-C).
///
/// A checkpoint folder `<out>/checkpoints/step-NNNNNNN/` holds the CBT model's files
/// (`cbt_config.json`, `model.safetensors` with `frontend.*`, `visual.*`, `cross.*`, `pooled.*`,
/// and the text BERT as the Hugging Face folder `text/` with its vocab.txt), plus recipe.yaml,
/// trainer_state.json and optimizer.safetensors (text BERT moments under `m.text.` / `v.text.`).
///
/// Held-out evaluation (eval split): the losses and accuracies of `eval.batches` fixed batches
/// (masked-frame NCE accuracy = the true clip ranked first among its 1 + K candidates, chance
/// 1/(1 + K)), and text→video / video→text retrieval over the split's segments — R@1, R@5, R@10
/// and median rank, by the pooled embeddings' cosine similarity (`t2v_*`, `v2t_*`) and by the
/// cross-modal score (`cross_t2v_*`, `cross_v2t_*`), with chance (`chance_r1` = 1/N, …,
/// `chance_median_rank` = (N + 1)/2).
public final class CBTTrainer {
    public let recipe: CBTRecipe
    let task: CBTTask
    let loop: TrainingLoop<CBTTask>

    public var showProgress: Bool {
        get { loop.showProgress }
        set { loop.showProgress = newValue }
    }
    /// Stop (checkpoint, then return) once this step is done; nil: run to `train.steps`.
    public var stopAtStep: Int? {
        get { loop.stopAtStep }
        set { loop.stopAtStep = newValue }
    }
    public var model: CBTModel { task.model }

    public init(recipe: CBTRecipe, resume: Bool) throws {
        if let p = recipe.problem() { throw VideoBertError(p, file: "recipe") }
        self.recipe = recipe
        task = try CBTTask(recipe: recipe)
        loop = try TrainingLoop(task: task, settings: .init(out: recipe.out, train: recipe.train, eval: recipe.eval,
                                                             checkpoint: recipe.checkpoint, logEvery: recipe.logEvery,
                                                             recipeText: try RecipeLoader.yaml(recipe),
                                                             fingerprint: Self.fingerprint(recipe),
                                                             learningRate: { [train = recipe.train] in train.learningRate(step: $0) }),
                                resume: resume)
    }

    /// Settings that must not change across a resume (the schedule, run length, evaluation may).
    static func fingerprint(_ recipe: CBTRecipe) -> String {
        var r = recipe
        r.train.steps = 0; r.eval = .init(); r.retrieval = .init(); r.checkpoint = .init(); r.logEvery = 0; r.out = ""
        return CorpusBuilder.fnv1a(Array(((try? RecipeLoader.yaml(r)) ?? "").utf8))
    }

    /// Held-out evaluation (see the type's comment).
    public func evaluate() throws -> [String: Double] { try task.evaluate(step: loop.step) }

    public func run() throws -> PretrainSummary { try loop.run() }

    /// Text↔video retrieval with a CBT checkpoint over the segments of `split` that have text and
    /// video (corpus order, at most `maxPairs`; 0: all): every text against every video, scored by
    /// the pooled embeddings' cosine similarity (`cross` false) or the cross-modal transformer's
    /// score (`cross` true). The checkpoint's recipe.yaml gives the model; `corpus` must be the
    /// corpus it was trained on (or one with the same vocabularies and stored clips).
    public static func retrieval(checkpoint: String, corpus: String, split: String, maxPairs: Int, cross: Bool) throws
        -> (pairs: Int, textToVideo: RetrievalMetrics, videoToText: RetrievalMetrics) {
        var recipe = try RecipeLoader.load(CBTRecipe.self, file: try Checkpoint(folder: checkpoint).path(.recipe))
        recipe.corpus = corpus
        recipe.eval.split = split
        recipe.retrieval.maxPairs = maxPairs
        let task = try CBTTask(recipe: recipe)
        try task.loadModel(from: checkpoint)
        if !cross && task.objectives.pooled == .none {
            throw VideoBertError("was trained without a pooled objective (objectives.pooled: none): rank with the cross-modal score instead", file: checkpoint)
        }
        let sampler = try CBTSampler(corpus: task.corpus, split: split, settings: recipe.data, special: task.special,
                                     inputs: task.inputs, seed: 0x5EED_E7A1)
        let r = task.retrievalMetrics(sampler, cross: cross)
        guard let m = cross ? r.cross : r.pooled else {
            throw VideoBertError("split '\(split)' has \(r.pairs) segment\(r.pairs == 1 ? "" : "s") with both text and video; retrieval needs at least 2", file: corpus)
        }
        return (r.pairs, m.textToVideo, m.videoToText)
    }
}

/// The CBT model, data and metrics for `TrainingLoop`.
final class CBTTask: PretrainingTask {
    let recipe: CBTRecipe
    let corpus: TokenizedCorpus
    let special: SpecialTokens
    let inputs: ClipInputs
    let model: CBTModel
    let sampler: CBTSampler
    let objectives: CBTObjectives

    init(recipe: CBTRecipe) throws {
        self.recipe = recipe
        corpus = try TokenizedCorpus(path: recipe.corpus)
        let textVocab = try TextVocabulary.load(corpus.textVocabPath)
        special = try SpecialTokens(vocabulary: textVocab)
        inputs = try ClipInputs.load(corpus: corpus, source: recipe.frontend.source, centerFrames: recipe.frontend.center == "video")
        objectives = recipe.objectiveSettings
        let textSize = corpus.index.textVocab.size
        var textConfig: BertConfig
        let initFrom = recipe.text.initFrom
        if !initFrom.isEmpty {
            let pretrained = try Checkpoint(folder: initFrom)
            textConfig = try pretrained.bert ?? { throw VideoBertError("has no text BERT", file: initFrom) }()
            try pretrained.checkVocabularies(textFingerprint: corpus.index.textVocab.fingerprint, visualVocabFolder: nil, corpus: corpus.path)
            guard textConfig.textVocabSize == textSize, textConfig.visualWords == 0 else {
                throw VideoBertError("has a vocabulary of \(textConfig.vocabSize), the corpus' text vocabulary \(textSize)", file: initFrom)
            }
            textConfig.architectures = ["BertForPreTraining"]
            guard recipe.data.maxTextTokens + 2 <= textConfig.maxPositionEmbeddings else {
                throw VideoBertError("data.max_text_tokens + 2 exceeds its max_position_embeddings \(textConfig.maxPositionEmbeddings)", file: initFrom)
            }
        } else {
            textConfig = BertConfig(textVocabSize: textSize, visualWords: 0, hiddenSize: recipe.text.hiddenSize,
                                    numHiddenLayers: recipe.text.numLayers, numAttentionHeads: recipe.text.numHeads,
                                    intermediateSize: recipe.text.intermediateSize, maxPositionEmbeddings: recipe.text.maxPositions,
                                    initializerRange: recipe.model.initializerRange)
        }
        textConfig.hiddenDropoutProb = recipe.model.dropout
        textConfig.attentionProbsDropoutProb = recipe.model.attentionDropout
        let D = recipe.visual.hiddenSize
        var conv: ConvFrontEndConfig?, projection: FeatureProjectionConfig?
        switch inputs {
        case .frames(_, let F, let S):
            conv = ConvFrontEndConfig(frameSize: S, framesPerClip: F, channels: recipe.frontend.channels, outputSize: D)
        case .features(_, let dim):
            projection = FeatureProjectionConfig(inputSize: dim, outputSize: D, hiddenSize: recipe.frontend.mlpHidden)
        }
        let config = CBTConfig(frontEnd: recipe.frontend.source, conv: conv, projection: projection,
                               visualHiddenSize: D, visualLayers: recipe.visual.numLayers, visualHeads: recipe.visual.numHeads,
                               visualIntermediateSize: recipe.visual.intermediateSize, maxClips: recipe.data.maxClips,
                               textHiddenSize: textConfig.hiddenSize, crossHiddenSize: recipe.cross.hiddenSize,
                               crossLayers: recipe.cross.numLayers, crossHeads: recipe.cross.numHeads,
                               crossIntermediateSize: recipe.cross.intermediateSize, embeddingSize: recipe.model.embeddingSize,
                               hiddenDropoutProb: recipe.model.dropout, attentionProbsDropoutProb: recipe.model.attentionDropout,
                               initializerRange: recipe.model.initializerRange)
        try config.validate(file: "recipe")
        sampler = try CBTSampler(corpus: corpus, split: "train", settings: recipe.data, special: special, inputs: inputs,
                                 seed: UInt64(recipe.train.seed))
        // The held-out split must hold two videos too: fail now, not at the first evaluation.
        _ = try CBTSampler(corpus: corpus, split: recipe.eval.split, settings: recipe.data, special: special, inputs: inputs, seed: 0)
        let B = recipe.train.batchSize
        model = try CBTModel(config: config, textConfig: textConfig, maxBatch: B, maxTextLength: recipe.data.maxTextTokens + 2,
                             maxNCECandidates: 1 + recipe.data.nceNegatives, maxCrossCandidates: recipe.data.crossCandidates == 0 ? B : min(recipe.data.crossCandidates, B),
                             training: true)
    }

    var parameterStores: [(prefix: String, store: ParameterStore)] { model.parameterStores }
    var runDescription: String {
        let c = model.config
        return "CBT: text \(model.text.config.numHiddenLayers) × \(model.text.config.hiddenSize), \(c.frontEnd) front-end, visual \(c.visualLayers) × \(c.visualHiddenSize), cross \(c.crossLayers) × \(c.crossHiddenSize); \(model.store.count + model.text.store.count) parameters"
    }
    var plotKeys: [String] { ["loss", "mlm_loss", "nce_loss", "cross_loss", "pooled_loss"] }
    var samplerState: CBTSampler.State { sampler.currentState }
    func restoreSampler(_ state: CBTSampler.State) { sampler.restore(state) }

    func initializeParameters() throws {
        let seed = UInt64(recipe.train.seed)
        model.initializeWeights(seed: seed)
        if !recipe.text.initFrom.isEmpty {
            let report = try model.text.loadPretrained(from: recipe.text.initFrom, seed: seed)
            logLine("pretrain: text BERT: \(report)")
        }
    }

    func saveModel(to folder: String) throws {
        try model.save(to: folder)
        try AtomicFile.write(try Data(contentsOf: URL(fileURLWithPath: corpus.textVocabPath)),
                             to: ((folder as NSString).appendingPathComponent(Checkpoint.File.cbtText.rawValue) as NSString)
                                .appendingPathComponent(Checkpoint.File.textVocab.rawValue))
    }

    func loadModel(from folder: String) throws { try model.loadWeights(from: folder) }

    static func metrics(_ o: CBTOutput, tokens: Int) -> MetricSums {
        var m = MetricSums()
        m.add("loss", Double(o.loss)); m.add("mlm_loss", Double(o.mlmLoss)); m.add("nce_loss", Double(o.nceLoss))
        m.add("cross_loss", Double(o.crossLoss)); m.add("pooled_loss", Double(o.pooledLoss))
        m.addRatio("mlm_acc", correct: o.mlmCorrect, count: o.mlmCount)
        m.addRatio("nce_acc", correct: o.nceCorrect, count: o.nceCount)
        m.addRatio("cross_acc", correct: o.crossCorrect, count: o.crossCount)
        m.addRatio("pooled_acc", correct: o.pooledCorrect, count: o.pooledCount)
        m.tokens = tokens
        return m
    }

    func trainMicroBatch(step: Int, micro: Int, dropoutSeed: UInt64, lossScale: Float) -> (loss: Float, metrics: MetricSums) {
        let batch = sampler.nextBatch(recipe.train.batchSize, nceNegatives: recipe.data.nceNegatives,
                                      crossCandidates: recipe.data.crossCandidates)
        let out = model.forwardBackward(batch, step: step, dropoutSeed: dropoutSeed, objectives: objectives, lossScale: lossScale)
        // Throughput counts text WordPieces and clips.
        return (out.loss, Self.metrics(out, tokens: batch.text.tokenCount + batch.clipCount))
    }

    func evaluate(step: Int) throws -> [String: Double] {
        let evalSampler = try CBTSampler(corpus: corpus, split: recipe.eval.split, settings: recipe.data, special: special,
                                         inputs: inputs, seed: 0x5EED_E7A1)
        var meter = MetricSums()
        var crossChance = 0.0
        for _ in 0..<recipe.eval.batches {
            let batch = evalSampler.nextBatch(recipe.train.batchSize, nceNegatives: recipe.data.nceNegatives,
                                              crossCandidates: recipe.data.crossCandidates)
            let out = model.forwardBackward(batch, step: step, dropoutSeed: 0, objectives: objectives, training: false)
            meter.add(Self.metrics(out, tokens: 0))
            crossChance += 1 / Double(batch.crossCandidates) / Double(recipe.eval.batches)
        }
        var values = meter.values()
        values["nce_chance"] = 1 / Double(1 + recipe.data.nceNegatives)
        values["cross_chance"] = crossChance
        for (key, value) in try retrieval(evalSampler) { values[key] = value }
        return values
    }

    /// Text↔video retrieval over the eval split's segments (see CBTTrainer's comment).
    func retrieval(_ evalSampler: CBTSampler) throws -> [String: Double] {
        let r = retrievalMetrics(evalSampler, cross: recipe.retrieval.cross)
        let N = r.pairs
        guard N >= 2 else { return [:] }
        var out: [String: Double] = ["retrieval_pairs": Double(N), "chance_r1": 1 / Double(N), "chance_r5": min(1, 5 / Double(N)),
                                     "chance_r10": min(1, 10 / Double(N)), "chance_median_rank": Double(N + 1) / 2]
        func record(_ prefix: String, _ m: (textToVideo: RetrievalMetrics, videoToText: RetrievalMetrics)) {
            for (direction, r) in [("t2v", m.textToVideo), ("v2t", m.videoToText)] {
                out["\(prefix)\(direction)_r1"] = r.recallAt1
                out["\(prefix)\(direction)_r5"] = r.recallAt5
                out["\(prefix)\(direction)_r10"] = r.recallAt10
                out["\(prefix)\(direction)_median_rank"] = r.medianRank
            }
        }
        if let p = r.pooled { record("", p) }
        if let c = r.cross { record("cross_", c) }
        return out
    }

    /// The retrieval metrics of the sampler's held-out pairs: by the pooled embeddings' cosine
    /// similarity (unless the recipe trains no pooled objective) and, with `cross`, by the
    /// cross-modal transformer's score over all N² pairs.
    func retrievalMetrics(_ evalSampler: CBTSampler, cross: Bool)
        -> (pairs: Int, pooled: (textToVideo: RetrievalMetrics, videoToText: RetrievalMetrics)?, cross: (textToVideo: RetrievalMetrics, videoToText: RetrievalMetrics)?) {
        let parts = evalSampler.retrievalBatches(recipe.train.batchSize, maxPairs: recipe.retrieval.maxPairs).map { model.encodeForRetrieval($0) }
        let inputs = Self.merge(parts, Cx: model.config.crossHiddenSize, E: model.config.embeddingSize)
        let N = inputs.N, E = model.config.embeddingSize
        guard N >= 2 else { return (N, nil, nil) }
        var pooled: (textToVideo: RetrievalMetrics, videoToText: RetrievalMetrics)?
        if objectives.pooled != .none {
            // Cosine similarity of the pooled embeddings.
            func unit(_ x: [Float]) -> [Float] {
                var y = x
                for i in 0..<N {
                    var norm: Float = 0
                    for e in 0..<E { norm += x[i * E + e] * x[i * E + e] }
                    let inv = 1 / max(norm.squareRoot(), 1e-12)
                    for e in 0..<E { y[i * E + e] *= inv }
                }
                return y
            }
            let t = unit(inputs.text), v = unit(inputs.video)
            var similarity = [Float](repeating: 0, count: N * N)
            similarity.withUnsafeMutableBufferPointer { s in
                BLAS.sgemm(transA: false, transB: true, m: N, n: N, k: E, a: t, lda: E, b: v, ldb: E, beta: 0, c: s.baseAddress!, ldc: N)
            }
            pooled = RetrievalMetrics.textVideo(similarity: similarity, N: N)
        }
        var crossMetrics: (textToVideo: RetrievalMetrics, videoToText: RetrievalMetrics)?
        if cross {
            var pairs: [(Int, Int)] = []
            pairs.reserveCapacity(N * N)
            for i in 0..<N { for j in 0..<N { pairs.append((i, j)) } }
            crossMetrics = RetrievalMetrics.textVideo(similarity: model.crossScores(inputs, pairs: pairs), N: N)
        }
        return (N, pooled, crossMetrics)
    }

    /// One set of retrieval inputs from several batches', padded to the longest text and clip sequence.
    static func merge(_ parts: [CBTRetrievalInputs], Cx: Int, E: Int) -> CBTRetrievalInputs {
        let N = parts.reduce(0) { $0 + $1.N }, Tt = parts.map(\.Tt).max() ?? 1, Tv = parts.map(\.Tv).max() ?? 1
        var merged = CBTRetrievalInputs(text: [], video: [], crossText: .init(repeating: 0, count: N * Tt * Cx),
                                        textMask: .init(repeating: 0, count: N * Tt), crossVideo: .init(repeating: 0, count: N * Tv * Cx),
                                        videoMask: .init(repeating: 0, count: N * Tv), N: N, Tt: Tt, Tv: Tv)
        var n0 = 0
        for p in parts {
            merged.text += p.text
            merged.video += p.video
            for i in 0..<p.N {
                let row = n0 + i
                for t in 0..<p.Tt {
                    let src = i * p.Tt + t, dst = row * Tt + t
                    merged.textMask[dst] = p.textMask[src]
                    merged.crossText.replaceSubrange((dst * Cx)..<(dst * Cx + Cx), with: p.crossText[(src * Cx)..<(src * Cx + Cx)])
                }
                for t in 0..<p.Tv {
                    let src = i * p.Tv + t, dst = row * Tv + t
                    merged.videoMask[dst] = p.videoMask[src]
                    merged.crossVideo.replaceSubrange((dst * Cx)..<(dst * Cx + Cx), with: p.crossVideo[(src * Cx)..<(src * Cx + Cx)])
                }
            }
            n0 += p.N
        }
        return merged
    }
}
