import Foundation
import Model
import Recipe
import Report
import Tensor
import Tokenize

/// `videobert pretrain` for VideoBERT (MLM + MFM + alignment, docs/ARCHITECTURE.md §4): the model-specific
/// half of a run; `TrainingLoop` does the rest.
///
/// Every `checkpoint.every` steps (and at the end, and on Ctrl-C) the run writes
/// `<out>/checkpoints/step-NNNNNNN/` — a Hugging Face BERT folder plus our extras — under a
/// temporary name, then renames it; the last `checkpoint.keep` are kept. `--resume` continues
/// from the newest one exactly: parameters, AdamW moments and step, the data position and every
/// random stream are restored, so a run stopped at step n and resumed ends with the same bytes as
/// an uninterrupted run.
///
/// Data-parallel under MPI: with N ranks, rank r trains on slice r of every global batch of
/// N × `train.batch_size` examples; each rank weights its losses by its share of the global
/// masked rows, so the gradients summed over ranks are those of the global means; rank 0 writes
/// checkpoints, metrics and progress.
public final class Trainer: TrainingRun {
    public typealias Summary = PretrainSummary

    public let recipe: PretrainRecipe
    let task: VideoBertTask
    let loop: TrainingLoop<VideoBertTask>

    public var controls: TrainingControls { loop.controls }
    var model: BertForPreTraining { task.model }

    public init(recipe: PretrainRecipe, resume: Bool, communicator: Communicator = SingleProcess()) throws {
        if let p = recipe.problem() { throw VideoBertError(p, file: "recipe") }
        self.recipe = recipe
        // The run folder is locked before anything is read or allocated (a second run is refused).
        if communicator.isRoot { try FolderLock.acquire(recipe.out) }
        task = try VideoBertTask(recipe: recipe, communicator: communicator)
        loop = try TrainingLoop(task: task, settings: .init(out: recipe.out, train: recipe.train.optimization, eval: recipe.eval,
                                                             checkpoint: recipe.checkpoint, logEvery: recipe.logEvery,
                                                             recipeText: try RecipeLoader.yaml(recipe),
                                                             fingerprint: Self.fingerprint(recipe)),
                                resume: resume, communicator: communicator)
    }

    /// What must not change across a resume: the model and the data settings. The optimisation
    /// (batch per rank, number of ranks, schedule, steps), evaluation and logging may.
    static func fingerprint(_ recipe: PretrainRecipe) -> String {
        var r = PretrainRecipe()
        r.model = recipe.model
        r.data = recipe.data
        var yaml = (try? RecipeLoader.yaml(r)) ?? ""
        // The default train section is part of the text hashed; `train.loader` (added later, and
        // free to change across a resume) is left out so earlier runs still resume.
        yaml = yaml.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("  loader:") }.joined(separator: "\n")
        if !recipe.model.hasAudio {
            // Without audio, the text hashed is the recipe as written before the audio keys
            // (issue 17) existed, so runs started then still resume.
            var kept: [Substring] = [], inModalities = false
            for line in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
                if inModalities && line.hasPrefix("  - ") { continue }
                inModalities = line == "  modalities:"
                if inModalities || line.hasPrefix("  max_audio_tokens:") || line.hasPrefix("  align_audio_negative:")
                    || line.hasPrefix("  mam_weight:") { continue }
                kept.append(line)
            }
            yaml = kept.joined(separator: "\n")
        }
        return CorpusBuilder.fnv1a(Array(yaml.utf8))
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
    /// The ranks of a data-parallel run (one process: `SingleProcess`).
    let comm: Communicator

    init(recipe: PretrainRecipe, communicator: Communicator) throws {
        self.recipe = recipe
        comm = communicator
        corpus = try TokenizedCorpus(path: recipe.corpus)
        textVocab = try TextVocabulary.load(corpus.textVocabPath)
        special = try SpecialTokens(vocabulary: textVocab)
        let textSize = corpus.index.textVocab.size
        let visualWords = corpus.index.visualVocab.words
        var audioSeparator: Int32? = nil, audioWords = 0
        if recipe.model.hasAudio {
            guard let vocab = corpus.index.audioVocab, corpus.clipAudioWords != nil, vocab.words > 0 else {
                throw VideoBertError("model.modalities has audio, but the corpus has no audio words (clip_audio_words.npy): tokenize it with audio.enabled: true", file: corpus.path)
            }
            guard let separator = special.audioSeparator else {
                throw VideoBertError("the text vocabulary has no [unused1] token for [>>] (the video/audio separator)", file: corpus.textVocabPath)
            }
            audioSeparator = separator
            audioWords = vocab.words
        }
        let maxSeq = 3 + recipe.data.maxTextTokens + recipe.data.maxVideoTokens + (audioWords > 0 ? 1 + recipe.data.maxAudioTokens : 0)

        var config: BertConfig
        if !recipe.model.initFrom.isEmpty {
            let pretrained = try Checkpoint(folder: recipe.model.initFrom)
            config = try pretrained.bert ?? { throw VideoBertError("has no text BERT", file: recipe.model.initFrom) }()
            // The pretrained model's text vocabulary must be the corpus' (same ids).
            try pretrained.checkVocabularies(textFingerprint: corpus.index.textVocab.fingerprint, visualVocabFolder: nil, corpus: corpus.path)
            guard config.textVocabSize == textSize else {
                throw VideoBertError("has a text vocabulary of \(config.textVocabSize), the corpus \(textSize)", file: recipe.model.initFrom)
            }
            config = config.withVisualWords(visualWords).withAudioWords(audioWords)
            config.hiddenDropoutProb = recipe.model.dropout
            config.attentionProbsDropoutProb = recipe.model.attentionDropout
        } else {
            config = BertConfig(textVocabSize: textSize, visualWords: visualWords, hiddenSize: recipe.model.hiddenSize,
                                numHiddenLayers: recipe.model.numLayers, numAttentionHeads: recipe.model.numHeads,
                                intermediateSize: recipe.model.intermediateSize, maxPositionEmbeddings: recipe.model.maxPositions,
                                hiddenDropoutProb: recipe.model.dropout, attentionProbsDropoutProb: recipe.model.attentionDropout,
                                initializerRange: recipe.model.initializerRange)
            config = config.withAudioWords(audioWords)
        }
        guard maxSeq <= config.maxPositionEmbeddings else {
            throw VideoBertError("sequences of \(maxSeq) tokens exceed max_position_embeddings \(config.maxPositionEmbeddings)", file: "recipe")
        }
        try config.validate(file: recipe.model.initFrom.isEmpty ? "recipe" : recipe.model.initFrom)
        try MemoryEstimate.check(.bertTraining(config: config, batch: recipe.train.batchSize, sequence: maxSeq),
                                 maxGB: recipe.train.maxMemoryGB,
                                 modelKeys: recipe.model.initFrom.isEmpty ? "model.hidden_size, model.num_layers or model.intermediate_size" : "the model (model.init)",
                                 batchKeys: "train.batch_size (train.grad_accum keeps the examples per step) or data.max_text_tokens/max_video_tokens",
                                 file: "recipe")
        model = try BertForPreTraining(config: config, maxBatch: recipe.train.batchSize, maxSeq: maxSeq, training: true)
        sampler = try ExampleSampler(corpus: corpus, split: "train", settings: recipe.data, special: special,
                                     seed: UInt64(recipe.train.seed), audioSeparator: audioSeparator)
    }

    var parameterStores: [(prefix: String, store: ParameterStore)] { [("", model.store)] }
    var runDescription: String { "\(model.config.numHiddenLayers) layers × \(model.config.hiddenSize), \(model.store.count) parameters" }
    var plotKeys: [String] { MetricsLog.videoBertLossKeys + (recipe.model.hasAudio ? ["mam_loss"] : []) }
    /// Whether the examples carry audio words (`model.modalities` has audio).
    var audio: Bool { recipe.model.hasAudio }
    /// Draws rank r's slice of each global batch (`train.loader`: on a thread of its own, or inline).
    lazy var loader: BatchLoader<PretrainingBatch, ExampleSampler.State> = {
        let (N, r, B, s) = (comm.size, comm.rank, recipe.train.batchSize, sampler)
        return BatchLoader(background: recipe.train.loader == "background", state: s.currentState) {
            (s.nextBatch(global: N * B, slice: (r * B)..<((r + 1) * B)), s.currentState)
        }
    }()
    // The data position is the loader's (after the last batch trained on), not the sampler's.
    var samplerState: ExampleSampler.State { loader.consumedState }
    func restoreSampler(_ state: ExampleSampler.State) { loader.reset(to: state); sampler.restore(state) }
    func trainingEnded() { loader.stop() }
    func samplerStateProblem(_ state: ExampleSampler.State) -> String? { sampler.problem(with: state) }

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
                             to: (folder as NSString).appendingPathComponent(Checkpoint.File.textVocab.rawValue))
        try CheckpointFiles.copyFiles(from: corpus.visualVocabPath, to: (folder as NSString).appendingPathComponent(Checkpoint.File.visualVocab.rawValue))
        if audio, let vocab = corpus.index.audioVocab {
            // The audio vocabulary beside the visual one (the audio words' centroids).
            try CheckpointFiles.copyFiles(from: (corpus.path as NSString).appendingPathComponent(vocab.folder),
                                          to: (folder as NSString).appendingPathComponent("audio_vocab"))
        }
    }

    func loadModel(from folder: String) throws { try model.loadPretrained(from: folder) }

    var lossWeights: (mlm: Float, mfm: Float, align: Float) {
        (Float(recipe.train.mlmWeight), Float(recipe.train.mfmWeight), Float(recipe.train.alignWeight))
    }

    /// A micro-batch's measurements: each objective's loss summed over its rows (mean × rows) with
    /// the row count, so a logging window reports each loss as the mean over all its rows, however
    /// they were split into batches or ranks; accuracies over rows.
    static func metrics(_ o: PretrainingOutput, tokens: Int, audio: Bool = false) -> MetricSums {
        var m = MetricSums()
        m.add("mlm_loss", Double(o.mlmLoss) * Double(o.mlmCount), count: Double(o.mlmCount))
        m.add("mfm_loss", Double(o.mfmLoss) * Double(o.mfmCount), count: Double(o.mfmCount))
        m.add("align_loss", Double(o.alignLoss) * Double(o.alignCount), count: Double(o.alignCount))
        m.addRatio("mlm_acc", correct: o.mlmCorrect, count: o.mlmCount)
        m.addRatio("mfm_top1", correct: o.mfmCorrect, count: o.mfmCount)
        m.addRatio("mfm_top5", correct: o.mfmTop5Correct, count: o.mfmCount)
        m.addRatio("align_acc", correct: o.alignCorrect, count: o.alignCount)
        if audio {
            m.add("mam_loss", Double(o.mamLoss) * Double(o.mamCount), count: Double(o.mamCount))
            m.addRatio("mam_top1", correct: o.mamCorrect, count: o.mamCount)
            m.addRatio("mam_top5", correct: o.mamTop5Correct, count: o.mamCount)
        }
        m.tokens = tokens
        return m
    }

    /// The total loss: the recipe's weights times the objectives' means (0 for an objective
    /// without rows).
    func finishMetrics(_ values: inout [String: Double]) {
        for key in ["mlm_loss", "mfm_loss", "align_loss"] where values[key] == nil { values[key] = 0 }
        let w = (recipe.train.mlmWeight, recipe.train.mfmWeight, recipe.train.alignWeight)
        values["loss"] = w.0 * values["mlm_loss"]! + w.1 * values["mfm_loss"]! + w.2 * values["align_loss"]!
        if audio {
            if values["mam_loss"] == nil { values["mam_loss"] = 0 }
            values["loss"]! += recipe.train.mamWeight * values["mam_loss"]!
        }
    }

    func trainMicroBatch(step: Int, micro: Int, dropoutSeed: UInt64, lossScale: Float) -> (loss: Float, metrics: MetricSums) {
        let N = comm.size
        let (batch, wait) = loader.next()
        // Data wait per optimizer step (summed over its micro-batches).
        let waitCount = 1 / Double(recipe.train.gradAccum)
        if N == 1 {
            let out = model.forwardBackward(batch, step: step, dropoutSeed: dropoutSeed, lossWeights: lossWeights,
                                            mamWeight: Float(recipe.train.mamWeight), lossScale: lossScale, training: true)
            var m = Self.metrics(out, tokens: batch.tokenCount, audio: audio)
            m.add("data_wait_s", wait, count: waitCount)
            return (out.loss, m)
        }
        // Each objective's rows over all ranks: weighting this rank's means by its share makes the
        // summed gradients those of the global means.
        let alignRows = batch.alignWeights.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
        let local = [batch.textRows.count, batch.videoRows.count, alignRows, batch.audioRows.count]
        var global = local.map(Int64.init)
        comm.allreduceSum(&global)
        func share(_ k: Int) -> Float { global[k] > 0 ? Float(local[k]) / Float(global[k]) : 0 }
        let w = lossWeights
        let weights = (mlm: w.mlm * share(0), mfm: w.mfm * share(1), align: w.align * share(2))
        let out = model.forwardBackward(batch, step: step, dropoutSeed: dropoutSeed, lossWeights: weights,
                                        mamWeight: Float(recipe.train.mamWeight) * share(3), lossScale: lossScale, training: true)
        let (g, tokens) = globalOutput(out, local: local, global: global, tokens: batch.tokenCount)
        var m = Self.metrics(g, tokens: tokens, audio: audio)
        m.add("data_wait_s", wait, count: waitCount)
        return (g.loss, m)
    }

    /// The micro-batch's losses and counts over all ranks: each objective's mean over the global
    /// rows (Σ_r m_r · mean_r / M), the correct counts and tokens summed.
    func globalOutput(_ o: PretrainingOutput, local: [Int], global: [Int64], tokens: Int) -> (PretrainingOutput, Int) {
        var v: [Double] = [
            Double(o.mlmLoss) * Double(local[0]), Double(o.mfmLoss) * Double(local[1]), Double(o.alignLoss) * Double(local[2]),
            Double(o.mlmCorrect), Double(o.mlmCount), Double(o.mfmCorrect), Double(o.mfmTop5Correct), Double(o.mfmCount),
            Double(o.alignCorrect), Double(o.alignCount), Double(tokens),
        ]
        if audio {
            v += [Double(o.mamLoss) * Double(local[3]), Double(o.mamCorrect), Double(o.mamTop5Correct), Double(o.mamCount)]
        }
        comm.allreduceSum(&v)
        var g = PretrainingOutput()
        g.mlmLoss = global[0] > 0 ? Float(v[0] / Double(global[0])) : 0
        g.mfmLoss = global[1] > 0 ? Float(v[1] / Double(global[1])) : 0
        g.alignLoss = global[2] > 0 ? Float(v[2] / Double(global[2])) : 0
        let w = lossWeights
        g.loss = w.mlm * g.mlmLoss + w.mfm * g.mfmLoss + w.align * g.alignLoss
        g.mlmCorrect = Int(v[3]); g.mlmCount = Int(v[4]); g.mfmCorrect = Int(v[5]); g.mfmTop5Correct = Int(v[6])
        g.mfmCount = Int(v[7]); g.alignCorrect = Int(v[8]); g.alignCount = Int(v[9])
        if audio {
            g.mamLoss = global[3] > 0 ? Float(v[11] / Double(global[3])) : 0
            g.mamCorrect = Int(v[12]); g.mamTop5Correct = Int(v[13]); g.mamCount = Int(v[14])
            if global[3] > 0 { g.loss += Float(recipe.train.mamWeight) * g.mamLoss }
        }
        return (g, Int(v[10]))
    }

    /// Held-out: global batches (all ranks' slices, here in one process), so the numbers do not
    /// depend on the number of ranks; each loss is the mean over all rows.
    func evaluate(step: Int) throws -> [String: Double] {
        let evalSampler = try ExampleSampler(corpus: corpus, split: recipe.eval.split, settings: recipe.data, special: special,
                                             seed: 0x5EED_E7A1, audioSeparator: audio ? special.audioSeparator : nil)
        var meter = MetricSums()
        for _ in 0..<recipe.eval.batches {
            for batch in evalSampler.nextBatches(global: recipe.train.batchSize * comm.size, chunk: recipe.train.batchSize) {
                let out = model.forwardBackward(batch, step: step, dropoutSeed: 0, lossWeights: lossWeights,
                                                mamWeight: Float(recipe.train.mamWeight), lossScale: 1, training: false)
                meter.add(Self.metrics(out, tokens: 0, audio: audio))
            }
        }
        var values = meter.values()
        finishMetrics(&values)
        return values
    }
}
