import Foundation
import Model
import Recipe
import Report
import Tensor
import Tokenize

/// Set by SIGINT/SIGTERM; the training loop checks it after every step, saves a checkpoint and stops.
nonisolated(unsafe) var stopRequested: sig_atomic_t = 0

/// `videobert pretrain`: the training loop of VideoBERT (MLM + MFM + alignment, DESIGN.md §4).
///
/// Every `checkpoint.every` steps (and at the end, and on Ctrl-C) the run writes
/// `<out>/checkpoints/step-NNNNNNN/` — a Hugging Face BERT folder plus our extras — under a
/// temporary name, then renames it; the last `checkpoint.keep` are kept. `--resume` continues
/// from the newest one exactly: parameters, AdamW moments and step, the data position and every
/// random stream are restored, so a run stopped at step n and resumed ends with the same bytes as
/// an uninterrupted run.
public final class Trainer {
    public struct Summary: Codable, Sendable {
        public var steps: Int
        public var finalLoss: Double
        public var eval: [String: Double]
        public var checkpoint: String
        public var seconds: Double
        public var stoppedEarly: Bool
        enum CodingKeys: String, CodingKey {
            case steps, eval, checkpoint, seconds
            case finalLoss = "final_loss", stoppedEarly = "stopped_early"
        }
    }

    /// Saved as trainer_state.json in every checkpoint (no wall-clock values, so that identical
    /// runs write identical bytes).
    struct TrainerState: Codable {
        var format = "videobert-trainer-state"
        var version = 1
        var step: Int
        var adamStep: Int
        var sampler: ExampleSampler.State
        var recipeFingerprint: String
    }

    public let recipe: PretrainRecipe
    let recipeText: String
    public var showProgress = true
    /// Stop (as on Ctrl-C: checkpoint, then return) once this step is done. For tests and for
    /// splitting a run into sessions; nil: run to `train.steps`.
    public var stopAtStep: Int?
    let corpus: TokenizedCorpus
    let model: BertForPreTraining
    var adam: AdamW
    let sampler: ExampleSampler
    let special: SpecialTokens
    let textVocab: TextVocabulary
    var step = 0
    let runDir: String
    let checkpointsDir: String

    /// The ranks of a data-parallel run (one process: `SingleProcess`).
    let comm: Communicator

    /// - Parameter communicator: with N ranks, rank r trains on slice r of every global batch of
    ///   N × `train.batch_size` examples; gradients are summed over ranks (each rank weights its
    ///   losses by its share of the global masked rows, so the sum is the gradient of the global
    ///   mean); rank 0 writes checkpoints, metrics and progress.
    public init(recipe: PretrainRecipe, resume: Bool, communicator: Communicator = SingleProcess()) throws {
        comm = communicator
        if let p = recipe.problem() { throw VideoBertError(p, file: "recipe") }
        self.recipe = recipe
        recipeText = try RecipeLoader.yaml(recipe)
        runDir = recipe.out
        checkpointsDir = (recipe.out as NSString).appendingPathComponent("checkpoints")
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
        adam = AdamW(store: model.store, beta1: recipe.train.beta1, beta2: recipe.train.beta2, eps: recipe.train.eps,
                     weightDecay: recipe.train.weightDecay)
        sampler = try ExampleSampler(corpus: corpus, split: "train", settings: recipe.data, special: special,
                                     seed: UInt64(recipe.train.seed))

        let latest = Self.latestCheckpoint(in: checkpointsDir)
        if resume, let latest {
            try restore(from: latest)
        } else {
            if resume { logLine("pretrain: no checkpoint in \(checkpointsDir); starting from step 0") }
            if !resume, latest != nil {
                throw VideoBertError("holds checkpoints of an earlier run; pass --resume to continue it, or choose another out", file: checkpointsDir)
            }
            try initializeModel()
        }
    }

    // MARK: - initialisation and checkpoints

    func initializeModel() throws {
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

    /// What must not change across a resume: the model and the data settings. The optimisation
    /// (batch per rank, number of ranks, schedule, steps), evaluation and logging may.
    var recipeFingerprint: String {
        var r = PretrainRecipe()
        r.model = recipe.model
        r.data = recipe.data
        return CorpusBuilder.fnv1a(Array(((try? RecipeLoader.yaml(r)) ?? "").utf8))
    }

    public static func checkpointName(_ step: Int) -> String { CheckpointFiles.name(step: step) }

    public static func latestCheckpoint(in dir: String) -> String? { CheckpointFiles.latest(in: dir) }

    /// Writes a checkpoint folder atomically (temporary folder, then rename) and prunes old ones.
    func saveCheckpoint() throws -> String {
        try CheckpointFiles.write(step: step, in: checkpointsDir, keep: recipe.checkpoint.keep) { tmp in
            try model.save(to: tmp)
            try AtomicFile.write(try Data(contentsOf: URL(fileURLWithPath: corpus.textVocabPath)),
                                 to: (tmp as NSString).appendingPathComponent("vocab.txt"))
            try CheckpointFiles.copyFiles(from: corpus.visualVocabPath, to: (tmp as NSString).appendingPathComponent("visual_vocab"))
            try AtomicFile.write(recipeText, to: (tmp as NSString).appendingPathComponent("recipe.yaml"))
            let state = TrainerState(step: step, adamStep: adam.step, sampler: sampler.currentState, recipeFingerprint: recipeFingerprint)
            try JSON.write(state, to: (tmp as NSString).appendingPathComponent("trainer_state.json"))
            try CheckpointFiles.writeOptimizerState(model.store, to: (tmp as NSString).appendingPathComponent("optimizer.safetensors"))
        }
    }

    func restore(from dir: String) throws {
        let statePath = (dir as NSString).appendingPathComponent("trainer_state.json")
        let state = try JSON.decode(TrainerState.self, from: statePath)
        guard state.recipeFingerprint == recipeFingerprint else {
            throw VideoBertError("was written with different model or data settings; resume with the recipe it was started with", file: dir)
        }
        try model.loadPretrained(from: dir)
        try CheckpointFiles.readOptimizerState(into: model.store, from: (dir as NSString).appendingPathComponent("optimizer.safetensors"))
        adam.step = state.adamStep
        sampler.restore(state.sampler)
        step = state.step
        logLine("pretrain: resumed from \(dir) at step \(step)")
    }

    // MARK: - training

    /// Sums over the batches of a logging window (or an evaluation): each loss is a mean over
    /// all its rows in the window (batch means weighted by their row counts), so the numbers do
    /// not depend on how the rows were split into batches or ranks.
    struct Meter {
        var mlm = 0.0, mfm = 0.0, align = 0.0
        var mlmCorrect = 0, mlmCount = 0, mfmTop1 = 0, mfmTop5 = 0, mfmCount = 0, alignCorrect = 0, alignCount = 0
        var batches = 0, tokens = 0
        var weights: (mlm: Double, mfm: Double, align: Double) = (1, 1, 1)

        mutating func add(_ o: PretrainingOutput, tokens t: Int) {
            mlm += Double(o.mlmLoss) * Double(o.mlmCount)
            mfm += Double(o.mfmLoss) * Double(o.mfmCount)
            align += Double(o.alignLoss) * Double(o.alignCount)
            mlmCorrect += o.mlmCorrect; mlmCount += o.mlmCount
            mfmTop1 += o.mfmCorrect; mfmTop5 += o.mfmTop5Correct; mfmCount += o.mfmCount
            alignCorrect += o.alignCorrect; alignCount += o.alignCount
            batches += 1; tokens += t
        }

        func values(prefix: String = "") -> [String: Double] {
            func mean(_ sum: Double, _ n: Int) -> Double { n > 0 ? sum / Double(n) : 0 }
            func ratio(_ a: Int, _ b: Int) -> Double { b > 0 ? Double(a) / Double(b) : .nan }
            let (l1, l2, l3) = (mean(mlm, mlmCount), mean(mfm, mfmCount), mean(align, alignCount))
            var out: [String: Double] = [
                prefix + "loss": weights.mlm * l1 + weights.mfm * l2 + weights.align * l3,
                prefix + "mlm_loss": l1, prefix + "mfm_loss": l2, prefix + "align_loss": l3,
            ]
            if mlmCount > 0 { out[prefix + "mlm_acc"] = ratio(mlmCorrect, mlmCount) }
            if mfmCount > 0 { out[prefix + "mfm_top1"] = ratio(mfmTop1, mfmCount); out[prefix + "mfm_top5"] = ratio(mfmTop5, mfmCount) }
            if alignCount > 0 { out[prefix + "align_acc"] = ratio(alignCorrect, alignCount) }
            return out
        }
    }

    /// Held-out evaluation: the same batches every time (a sampler with a fixed seed).
    public func evaluate() throws -> [String: Double] {
        let evalSampler = try ExampleSampler(corpus: corpus, split: recipe.eval.split, settings: recipe.data, special: special,
                                             seed: 0x5EED_E7A1)
        var meter = Meter()
        // Global batches (all ranks' slices, here in one process), so held-out numbers do not
        // depend on the number of ranks; their mean over the chunks is weighted by rows.
        for _ in 0..<recipe.eval.batches {
            for batch in evalSampler.nextBatches(global: recipe.train.batchSize * comm.size, chunk: recipe.train.batchSize) {
                let out = model.forwardBackward(batch, step: step, dropoutSeed: 0, lossWeights: lossWeights, lossScale: 1, training: false)
                meter.add(out, tokens: batch.tokenCount)
            }
        }
        return meter.values(prefix: "")
    }

    func newMeter() -> Meter {
        var m = Meter()
        m.weights = (recipe.train.mlmWeight, recipe.train.mfmWeight, recipe.train.alignWeight)
        return m
    }

    var lossWeights: (mlm: Float, mfm: Float, align: Float) {
        (Float(recipe.train.mlmWeight), Float(recipe.train.mfmWeight), Float(recipe.train.alignWeight))
    }

    public func run() throws -> Summary {
        let started = Date()
        let root = comm.isRoot
        try AtomicFile.createDirectory(runDir)
        let metricsPath = (runDir as NSString).appendingPathComponent("metrics.jsonl")
        if step == 0 && root { try AtomicFile.write("", to: metricsPath) }
        let metrics = root ? try MetricsLog(path: metricsPath, truncateAfterStep: step) : nil
        let t = recipe.train
        let N = comm.size
        if root {
            logLine("pretrain: \(model.config.numHiddenLayers) layers × \(model.config.hiddenSize), \(model.store.count) parameters; "
                    + "\(N) rank\(N == 1 ? "" : "s") × batch \(t.batchSize) × \(t.gradAccum) accumulation = \(N * t.batchSize * t.gradAccum) examples per step; \(t.steps) steps")
        }
        let previous = signal(SIGINT) { _ in stopRequested = 1 }
        let previousTerm = signal(SIGTERM) { _ in stopRequested = 1 }
        defer { signal(SIGINT, previous); signal(SIGTERM, previousTerm) }
        stopRequested = 0

        let progress = ProgressReporter(label: "pretrain", total: t.steps, unit: "steps", enabled: showProgress && root)
        progress.advance(step)
        var meter = newMeter()
        var windowStart = Date()
        var lastCheckpoint = Self.latestCheckpoint(in: checkpointsDir) ?? ""
        var lastEval: [String: Double] = [:]
        var lastLoss = Double.nan
        var stoppedEarly = false
        let scale = 1 / Float(t.gradAccum)
        let slice = (comm.rank * t.batchSize)..<((comm.rank + 1) * t.batchSize)
        let gradients = UnsafeMutableBufferPointer(start: model.store.gradients, count: model.store.count)
        while step < t.steps {
            // Every rank stops at the same step (Ctrl-C reaches the ranks at different moments).
            var stop = [Double(stopRequested != 0 || (stopAtStep.map { step >= $0 } ?? false) ? 1 : 0)]
            stop.withUnsafeMutableBufferPointer { comm.allreduceMax($0) }
            if stop[0] > 0 { stoppedEarly = true; break }
            step += 1
            model.store.zeroGradients()
            var stepLoss = 0.0
            for micro in 0..<t.gradAccum {
                let batch = sampler.nextBatch(global: N * t.batchSize, slice: slice)
                let seed = dropoutSeed(base: UInt64(t.seed), step: step, site: micro)
                // Each objective's rows over all ranks: weighting this rank's means by its share
                // makes the summed gradients those of the global means.
                let alignRows = batch.alignWeights.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
                let local = [batch.textRows.count, batch.videoRows.count, alignRows]
                var global = local.map(Int64.init)
                comm.allreduceSum(&global)
                func share(_ k: Int) -> Float { global[k] > 0 ? Float(local[k]) / Float(global[k]) : 0 }
                let w = lossWeights
                let weights = N == 1 ? w : (mlm: w.mlm * share(0), mfm: w.mfm * share(1), align: w.align * share(2))
                let out = model.forwardBackward(batch, step: step, dropoutSeed: seed, lossWeights: weights, lossScale: scale, training: true)
                let g = N == 1 ? out : globalOutput(out, local: local, global: global, tokens: batch.tokenCount)
                guard g.loss.isFinite else {
                    throw VideoBertError("loss is \(g.loss) at step \(step) (mlm \(g.mlmLoss), mfm \(g.mfmLoss), align \(g.alignLoss)); the last good checkpoint is \(lastCheckpoint.isEmpty ? "none" : lastCheckpoint)", file: runDir)
                }
                meter.add(g, tokens: N == 1 ? batch.tokenCount : globalTokens)
                stepLoss += Double(g.loss) / Double(t.gradAccum)
            }
            comm.allreduceSum(gradients)
            if let bad = model.store.firstNonFiniteGradient() {
                throw VideoBertError("gradient of \(bad) is not finite at step \(step); the last good checkpoint is \(lastCheckpoint.isEmpty ? "none" : lastCheckpoint)", file: runDir)
            }
            let gradNorm = t.clipGrad > 0 ? clipGradientNorm(model.store, maxNorm: t.clipGrad) : gradientNorm(model.store)
            let lr = recipe.learningRate(step: step)
            adam.update(model.store, lr: lr)
            lastLoss = stepLoss

            if step % recipe.logEvery == 0 || step == t.steps {
                let secs = Date().timeIntervalSince(windowStart)
                var line = meter.values()
                line["lr"] = lr
                line["grad_norm"] = gradNorm
                line["tokens_per_s"] = Double(meter.tokens) / max(secs, 1e-9)
                line["seconds"] = Date().timeIntervalSince(started)
                if N > 1 { line["bytes_communicated"] = Double(comm.bytesCommunicated) }
                try metrics?.append(step: step, kind: "train", split: "train", values: line)
                progress.setStatus(String(format: "loss %.3f  %.0f tok/s", line["loss"] ?? .nan, line["tokens_per_s"] ?? 0))
                meter = newMeter()
                windowStart = Date()
            }
            if root && ((recipe.eval.every > 0 && step % recipe.eval.every == 0) || step == t.steps) {
                lastEval = try evaluate()
                var line = lastEval
                line["seconds"] = Date().timeIntervalSince(started)
                try metrics?.append(step: step, kind: "eval", split: recipe.eval.split, values: line)
                try metrics?.plot(to: (runDir as NSString).appendingPathComponent("loss.svg"))
                windowStart = Date()
            }
            if root && (step % recipe.checkpoint.every == 0 || step == t.steps) {
                lastCheckpoint = try saveCheckpoint()
            }
            progress.advance()
        }
        if stoppedEarly && root {
            lastCheckpoint = try saveCheckpoint()
            logLine("pretrain: stopped at step \(step); saved \(lastCheckpoint) (continue with --resume)")
        }
        progress.finish()
        try metrics?.plot(to: (runDir as NSString).appendingPathComponent("loss.svg"))
        comm.barrier()
        return Summary(steps: step, finalLoss: lastLoss, eval: lastEval, checkpoint: lastCheckpoint,
                       seconds: Date().timeIntervalSince(started), stoppedEarly: stoppedEarly)
    }

    /// Tokens of the last micro-batch over all ranks (set by `globalOutput`).
    private var globalTokens = 0

    /// The micro-batch's losses and counts over all ranks: each objective's mean over the global
    /// rows (Σ_r m_r · mean_r / M), the correct counts summed.
    func globalOutput(_ o: PretrainingOutput, local: [Int], global: [Int64], tokens: Int) -> PretrainingOutput {
        var v: [Double] = [
            Double(o.mlmLoss) * Double(local[0]), Double(o.mfmLoss) * Double(local[1]), Double(o.alignLoss) * Double(local[2]),
            Double(o.mlmCorrect), Double(o.mlmCount), Double(o.mfmCorrect), Double(o.mfmTop5Correct), Double(o.mfmCount),
            Double(o.alignCorrect), Double(o.alignCount), Double(tokens),
        ]
        comm.allreduceSum(&v)
        var g = PretrainingOutput()
        g.mlmLoss = global[0] > 0 ? Float(v[0] / Double(global[0])) : 0
        g.mfmLoss = global[1] > 0 ? Float(v[1] / Double(global[1])) : 0
        g.alignLoss = global[2] > 0 ? Float(v[2] / Double(global[2])) : 0
        let w = lossWeights
        g.loss = w.mlm * g.mlmLoss + w.mfm * g.mfmLoss + w.align * g.alignLoss
        g.mlmCorrect = Int(v[3]); g.mlmCount = Int(v[4]); g.mfmCorrect = Int(v[5]); g.mfmTop5Correct = Int(v[6])
        g.mfmCount = Int(v[7]); g.alignCorrect = Int(v[8]); g.alignCount = Int(v[9])
        globalTokens = Int(v[10])
        return g
    }
}
