import Foundation
import Model
import Recipe
import Report
import Tensor
import Tokenize

/// `videobert pretrain` for VideoBERT (MLM + MFM + alignment, DESIGN.md §4): the model-specific
/// half of a run; `TrainingLoop` does the rest.
///
/// Every `checkpoint.every` steps (and at the end, and on Ctrl-C) the run writes
/// `<out>/checkpoints/step-NNNNNNN/` — a Hugging Face BERT folder plus our extras — under a
/// temporary name, then renames it; the last `checkpoint.keep` are kept. `--resume` continues
/// from the newest one exactly: parameters, AdamW moments and step, the data position and every
/// random stream are restored, so a run stopped at step n and resumed ends with the same bytes as
/// an uninterrupted run.
public final class Trainer {
    public typealias Summary = PretrainSummary

    public let recipe: PretrainRecipe
    let task: VideoBertTask
    let loop: TrainingLoop<VideoBertTask>

    public var showProgress: Bool {
        get { loop.showProgress }
        set { loop.showProgress = newValue }
    }
    /// Stop (as on Ctrl-C: checkpoint, then return) once this step is done. For tests and for
    /// splitting a run into sessions; nil: run to `train.steps`.
    public var stopAtStep: Int? {
        get { loop.stopAtStep }
        set { loop.stopAtStep = newValue }
    }
    var model: BertForPreTraining { task.model }

    public init(recipe: PretrainRecipe, resume: Bool) throws {
        if let p = recipe.problem() { throw VideoBertError(p, file: "recipe") }
        self.recipe = recipe
        task = try VideoBertTask(recipe: recipe)
        loop = try TrainingLoop(task: task, settings: .init(out: recipe.out, train: recipe.train, eval: recipe.eval,
                                                             checkpoint: recipe.checkpoint, logEvery: recipe.logEvery,
                                                             recipeText: try RecipeLoader.yaml(recipe),
                                                             fingerprint: Self.fingerprint(recipe),
                                                             learningRate: { [recipe] in recipe.learningRate(step: $0) }),
                                resume: resume)
    }

    /// Settings that must not change across a resume (the schedule and run length may).
    static func fingerprint(_ recipe: PretrainRecipe) -> String {
        var r = recipe
        r.train.steps = 0; r.eval = .init(); r.checkpoint = .init(); r.logEvery = 0; r.out = ""
        return CorpusBuilder.fnv1a(Array(((try? RecipeLoader.yaml(r)) ?? "").utf8))
    }

    public static func checkpointName(_ step: Int) -> String { TrainingLoop<VideoBertTask>.checkpointName(step) }
    public static func latestCheckpoint(in dir: String) -> String? { TrainingLoop<VideoBertTask>.latestCheckpoint(in: dir) }

    /// Held-out evaluation: the same batches every time (a sampler with a fixed seed).
    public func evaluate() throws -> [String: Double] { try task.evaluate(step: loop.step) }

    public func run() throws -> Summary { try loop.run() }
}

/// VideoBERT's model, data and metrics for `TrainingLoop`.
final class VideoBertTask: PretrainingTask {
    let recipe: PretrainRecipe
    let corpus: TokenizedCorpus
    let model: BertForPreTraining
    let sampler: ExampleSampler
    let special: SpecialTokens
    let textVocab: TextVocabulary

    init(recipe: PretrainRecipe) throws {
        self.recipe = recipe
        corpus = try TokenizedCorpus(path: recipe.corpus)
        textVocab = try TextVocabulary.load(corpus.textVocabPath)
        special = try SpecialTokens(vocabulary: textVocab)
        let textSize = corpus.index.textVocab.size
        let visualWords = corpus.index.visualVocab.words
        let maxSeq = 3 + recipe.data.maxTextTokens + recipe.data.maxVideoTokens

        var config: BertConfig
        if !recipe.model.initFrom.isEmpty {
            config = try BertConfig.load(from: recipe.model.initFrom)
            // The pretrained model's text vocabulary must be the corpus' (same ids).
            let pretrainedVocab = (recipe.model.initFrom as NSString).appendingPathComponent("vocab.txt")
            if FileManager.default.fileExists(atPath: pretrainedVocab),
               try CorpusBuilder.fingerprint(of: pretrainedVocab) != corpus.index.textVocab.fingerprint {
                throw VideoBertError("its vocab.txt differs from the corpus' text vocabulary; tokenize with text.vocab pointing to it", file: recipe.model.initFrom)
            }
            guard config.textVocabSize == textSize else {
                throw VideoBertError("has a text vocabulary of \(config.textVocabSize), the corpus \(textSize)", file: recipe.model.initFrom)
            }
            config = config.withVisualWords(visualWords)
            config.hiddenDropoutProb = recipe.model.dropout
            config.attentionProbsDropoutProb = recipe.model.attentionDropout
        } else {
            config = BertConfig(textVocabSize: textSize, visualWords: visualWords, hiddenSize: recipe.model.hiddenSize,
                                numHiddenLayers: recipe.model.numLayers, numAttentionHeads: recipe.model.numHeads,
                                intermediateSize: recipe.model.intermediateSize, maxPositionEmbeddings: recipe.model.maxPositions,
                                hiddenDropoutProb: recipe.model.dropout, attentionProbsDropoutProb: recipe.model.attentionDropout,
                                initializerRange: recipe.model.initializerRange)
        }
        guard maxSeq <= config.maxPositionEmbeddings else {
            throw VideoBertError("sequences of \(maxSeq) tokens exceed max_position_embeddings \(config.maxPositionEmbeddings)", file: "recipe")
        }
        model = try BertForPreTraining(config: config, maxBatch: recipe.train.batchSize, maxSeq: maxSeq, training: true)
        sampler = try ExampleSampler(corpus: corpus, split: "train", settings: recipe.data, special: special,
                                     seed: UInt64(recipe.train.seed))
    }

    var parameterStores: [(prefix: String, store: ParameterStore)] { [("", model.store)] }
    var runDescription: String { "\(model.config.numHiddenLayers) layers × \(model.config.hiddenSize), \(model.store.count) parameters" }
    var plotKeys: [String] { MetricsLog.videoBertLossKeys }
    var samplerState: ExampleSampler.State { sampler.currentState }
    func restoreSampler(_ state: ExampleSampler.State) { sampler.restore(state) }

    func initializeParameters() throws {
        let seed = UInt64(recipe.train.seed)
        model.initializeWeights(seed: seed)
        if !recipe.model.initFrom.isEmpty {
            let report = try model.loadPretrained(from: recipe.model.initFrom, seed: seed)
            logLine("pretrain: \(report)")
        }
        if recipe.model.visualInit == "centroids" {
            let vocab = try VisualVocabulary.load(from: corpus.visualVocabPath)
            var centroids: [Float] = []
            for i in 0..<vocab.leaves { centroids += vocab.leafCentroid(i) }
            try model.initVisualEmbeddings(fromCentroids: centroids, dim: vocab.dim, seed: seed)
        }
    }

    func saveModel(to folder: String) throws {
        try model.save(to: folder)
        try AtomicFile.write(try Data(contentsOf: URL(fileURLWithPath: corpus.textVocabPath)),
                             to: (folder as NSString).appendingPathComponent("vocab.txt"))
        try copyFolder(corpus.visualVocabPath, to: (folder as NSString).appendingPathComponent("visual_vocab"))
    }

    func loadModel(from folder: String) throws { try model.loadPretrained(from: folder) }

    var lossWeights: (mlm: Float, mfm: Float, align: Float) {
        (Float(recipe.train.mlmWeight), Float(recipe.train.mfmWeight), Float(recipe.train.alignWeight))
    }

    /// The losses (mean over batches) and accuracies (over rows) of the three objectives.
    static func metrics(_ o: PretrainingOutput, tokens: Int) -> MetricSums {
        var m = MetricSums()
        m.add("loss", Double(o.loss)); m.add("mlm_loss", Double(o.mlmLoss)); m.add("mfm_loss", Double(o.mfmLoss))
        m.add("align_loss", Double(o.alignLoss))
        m.addRatio("mlm_acc", correct: o.mlmCorrect, count: o.mlmCount)
        m.addRatio("mfm_top1", correct: o.mfmCorrect, count: o.mfmCount)
        m.addRatio("mfm_top5", correct: o.mfmTop5Correct, count: o.mfmCount)
        m.addRatio("align_acc", correct: o.alignCorrect, count: o.alignCount)
        m.tokens = tokens
        return m
    }

    func trainMicroBatch(step: Int, micro: Int, dropoutSeed: UInt64, lossScale: Float) -> (loss: Float, metrics: MetricSums) {
        let batch = sampler.nextBatch(recipe.train.batchSize)
        let out = model.forwardBackward(batch, step: step, dropoutSeed: dropoutSeed, lossWeights: lossWeights, lossScale: lossScale, training: true)
        return (out.loss, Self.metrics(out, tokens: batch.tokenCount))
    }

    func evaluate(step: Int) throws -> [String: Double] {
        let evalSampler = try ExampleSampler(corpus: corpus, split: recipe.eval.split, settings: recipe.data, special: special,
                                             seed: 0x5EED_E7A1)
        var meter = MetricSums()
        for _ in 0..<recipe.eval.batches {
            let batch = evalSampler.nextBatch(recipe.train.batchSize)
            let out = model.forwardBackward(batch, step: step, dropoutSeed: 0, lossWeights: lossWeights, lossScale: 1, training: false)
            for (key, s) in Self.metrics(out, tokens: 0).sums { meter.add(key, s.sum, count: s.count) }
        }
        return meter.values()
    }
}
