import Foundation
import Model
import Recipe
import Report
import Tasks
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
public final class CBTTrainer: TrainingRun {
    public let recipe: CBTRecipe
    let task: CBTTask
    let loop: TrainingLoop<CBTTask>

    public var controls: TrainingControls { loop.controls }
    public var model: CBTModel { task.model }

    public init(recipe: CBTRecipe, resume: Bool) throws {
        if let p = recipe.problem() { throw VideoBertError(p, file: "recipe") }
        self.recipe = recipe
        task = try CBTTask(recipe: recipe)
        loop = try TrainingLoop(task: task, settings: .init(out: recipe.out, train: recipe.train, eval: recipe.eval,
                                                             checkpoint: recipe.checkpoint, logEvery: recipe.logEvery,
                                                             recipeText: try RecipeLoader.yaml(recipe),
                                                             fingerprint: Self.fingerprint(recipe)),
                                resume: resume)
    }

    /// Settings that must not change across a resume (the schedule, run length, evaluation may).
    static func fingerprint(_ recipe: CBTRecipe) -> String {
        var r = recipe
        r.train.steps = 0; r.eval = .init(); r.retrieval = .init(); r.checkpoint = .init(); r.logEvery = 0; r.out = ""
        // The text hashed is the recipe as it was written before VideoBERT's loss weights left the
        // CBT `train:` section (CBTRecipe.retiredKeys): their lines, always 1.0, go back in before
        // `max_memory_gb`, so runs started then still resume.
        // `train.loader` (where batches are drawn) changes nothing computed and may change on a
        // resume; its line is left out, so the text is the one hashed before the key existed.
        let yaml = ((try? RecipeLoader.yaml(r)) ?? "").split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("  loader:") }.joined(separator: "\n").replacingOccurrences(
            of: "\n  max_memory_gb:", with: "\n  mlm_weight: 1e+0\n  mfm_weight: 1e+0\n  align_weight: 1e+0\n  max_memory_gb:")
        return CorpusBuilder.fnv1a(Array(yaml.utf8))
    }

    /// Held-out evaluation (see the type's comment).
    public func evaluate() throws -> [String: Double] { try task.evaluate(step: loop.step) }

    public func run() throws -> PretrainSummary { try loop.run() }
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
    /// Draws the batches (`train.loader`: on a thread of its own, or inline; BatchLoader.swift).
    lazy var loader: BatchLoader<CBTBatch, CBTSampler.State> = {
        let (s, B, K, X) = (sampler, recipe.train.batchSize, recipe.data.nceNegatives, recipe.data.crossCandidates)
        return BatchLoader(background: recipe.train.loader == "background", state: s.currentState) {
            (s.nextBatch(B, nceNegatives: K, crossCandidates: X), s.currentState)
        }
    }()
    // The data position is the loader's (after the last batch trained on), not the sampler's.
    var samplerState: CBTSampler.State { loader.consumedState }
    func restoreSampler(_ state: CBTSampler.State) { loader.reset(to: state); sampler.restore(state) }
    func trainingEnded() { loader.stop() }

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
        let (batch, wait) = loader.next()
        let out = model.forwardBackward(batch, step: step, dropoutSeed: dropoutSeed, objectives: objectives, lossScale: lossScale)
        // Throughput counts text WordPieces and clips; the data wait is per optimizer step.
        var m = Self.metrics(out, tokens: batch.text.tokenCount + batch.clipCount)
        m.add("data_wait_s", wait, count: 1 / Double(recipe.train.gradAccum))
        return (out.loss, m)
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

    /// The retrieval metrics of the sampler's held-out pairs (its split's segments with text and
    /// clips, in corpus order, at most retrieval.max_pairs): by the pooled embeddings' cosine
    /// similarity (unless the recipe trains no pooled objective) and, with `cross`, by the
    /// cross-modal transformer's score over all N² pairs (`CBTScorer`).
    func retrievalMetrics(_ evalSampler: CBTSampler, cross: Bool)
        -> (pairs: Int, pooled: (textToVideo: RetrievalMetrics, videoToText: RetrievalMetrics)?, cross: (textToVideo: RetrievalMetrics, videoToText: RetrievalMetrics)?) {
        let scorer = CBTScorer(model: model, inputs: inputs, special: special, score: .pooled, maxTextTokens: recipe.data.maxTextTokens,
                               batchSize: recipe.train.batchSize)
        var segments = evalSampler.retrievalSegments
        if recipe.retrieval.maxPairs > 0 { segments = Array(segments.prefix(recipe.retrieval.maxPairs)) }
        let encoded = scorer.encode(segments, of: corpus)
        let N = encoded.N
        guard N >= 2 else { return (N, nil, nil) }
        let pooled = objectives.pooled != .none ? RetrievalMetrics.textVideo(similarity: scorer.pooledScores(encoded), N: N) : nil
        let crossMetrics = cross ? RetrievalMetrics.textVideo(similarity: scorer.crossScores(encoded), N: N) : nil
        return (N, pooled, crossMetrics)
    }
}
