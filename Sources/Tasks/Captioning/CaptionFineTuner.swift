import Foundation
import Model
import Recipe
import Tensor
import Tokenize
import Train

/// Set by SIGINT/SIGTERM during fine-tuning; the loop checks it after every step, saves a
/// checkpoint and stops (a C signal handler cannot capture context, hence a global; written only
/// by the handler and reset by `run` before the handler is installed).
nonisolated(unsafe) var captionStopRequested: sig_atomic_t = 0

/// `videobert finetune caption`: trains a captioner from a pretrained checkpoint (see
/// CaptionExamples.swift for the design), with pretraining's machinery — AdamW, the same
/// schedule and clipping, seeded dropout, checkpoints every N steps written atomically and
/// pruned (`CheckpointFiles`), `metrics.jsonl` and `loss.svg` (`MetricsLog`), Ctrl-C saves, and
/// `--resume` that continues bit-exactly.
///
/// A checkpoint folder is a pretraining-style checkpoint (config.json, model.safetensors,
/// vocab.txt, visual_vocab/) plus recipe.yaml (this recipe), trainer_state.json and
/// optimizer.safetensors, so every task command reads it.
public final class CaptionFineTuner {
    public struct Summary: Codable, Sendable {
        public var steps: Int
        public var finalLoss: Double
        public var eval: [String: Double]
        public var checkpoint: String
        public var seconds: Double
        public var stoppedEarly: Bool
        public var trainCaptions: Int
        public var trainPairs: Int
        enum CodingKeys: String, CodingKey {
            case steps, eval, checkpoint, seconds
            case finalLoss = "final_loss", stoppedEarly = "stopped_early", trainCaptions = "train_captions", trainPairs = "train_pairs"
        }
    }

    struct TrainerState: Codable {
        var format = "videobert-caption-trainer-state"
        var version = 1
        var step: Int
        var adamStep: Int
        var examples: CaptionExamples.State
        var recipeFingerprint: String
    }

    public let recipe: CaptionRecipe
    let recipeText: String
    public var showProgress = true
    /// Stop (checkpoint, then return) once this step is done; nil: run to `train.steps`.
    public var stopAtStep: Int?
    let corpus: TaskCorpus
    let model: BertForPreTraining
    var adam: AdamW
    let examples: CaptionExamples
    let evalExamples: CaptionExamples?
    let special: SpecialTokens
    var step = 0
    let checkpointsDir: String

    public init(recipe: CaptionRecipe, resume: Bool) throws {
        if let p = recipe.problem() { throw VideoBertError(p, file: "recipe") }
        self.recipe = recipe
        recipeText = try RecipeLoader.yaml(recipe)
        checkpointsDir = (recipe.out as NSString).appendingPathComponent("checkpoints")
        corpus = try TaskCorpus(path: recipe.corpus)
        try TaskModel.checkVocabularies(checkpoint: recipe.initFrom, corpus: corpus)
        var config = try BertConfig.load(from: (recipe.initFrom as NSString).appendingPathComponent(BertForPreTraining.configFileName))
        guard config.textVocabSize == corpus.textVocabSize, config.visualWords == corpus.visualWords else {
            throw VideoBertError("the checkpoint has \(config.textVocabSize) text ids and \(config.visualWords) visual words, the corpus \(corpus.path) \(corpus.textVocabSize) and \(corpus.visualWords)", file: recipe.initFrom)
        }
        guard recipe.maxSequence <= config.maxPositionEmbeddings else {
            throw VideoBertError("data.max_caption_tokens + data.max_video_tokens + 4 = \(recipe.maxSequence) exceeds the checkpoint's max_position_embeddings \(config.maxPositionEmbeddings)", file: "recipe")
        }
        if recipe.train.dropout >= 0 {
            config.hiddenDropoutProb = recipe.train.dropout
            config.attentionProbsDropoutProb = recipe.train.dropout
        }
        let vocabulary = try TextVocabulary.load(corpus.corpus.textVocabPath)
        special = try SpecialTokens(vocabulary: vocabulary)
        let tokenizer = BertTokenizer(vocabulary: vocabulary, lowercase: !corpus.corpus.index.textVocab.cased)
        let annotations = try StepAnnotations.load(recipe.annotations)
        let resolved = corpus.resolve(annotations)
        func items(_ split: String) -> [CaptionItem] {
            CaptionInput.items(resolved.inSplit(split), encode: tokenizer.encode, maxCaptionTokens: recipe.data.maxCaptionTokens,
                               maxVideoTokens: recipe.data.maxVideoTokens)
        }
        let train = items(recipe.data.trainSplit)
        guard !train.isEmpty else {
            throw VideoBertError("no captions of split '\(recipe.data.trainSplit)' with clips in the corpus \(corpus.path)", file: recipe.annotations)
        }
        examples = CaptionExamples(items: train, special: special, textVocabSize: corpus.textVocabSize, seed: UInt64(recipe.train.seed))
        let held = items(recipe.data.evalSplit)
        evalExamples = held.isEmpty ? nil : CaptionExamples(items: held, special: special, textVocabSize: corpus.textVocabSize, seed: 0x5EED_CA97)

        model = try BertForPreTraining(config: config, maxBatch: recipe.train.batchSize, maxSeq: recipe.maxSequence, training: true)
        adam = AdamW(store: model.store, beta1: recipe.train.beta1, beta2: recipe.train.beta2, eps: recipe.train.eps,
                     weightDecay: recipe.train.weightDecay)
        let latest = CheckpointFiles.latest(in: checkpointsDir)
        if resume, let latest {
            try restore(from: latest)
        } else {
            if resume { logLine("finetune: no checkpoint in \(checkpointsDir); starting from step 0") }
            if !resume, latest != nil {
                throw VideoBertError("holds checkpoints of an earlier run; pass --resume to continue it, or choose another out", file: checkpointsDir)
            }
            model.initializeWeights(seed: UInt64(recipe.train.seed))
            try model.loadPretrained(from: recipe.initFrom, seed: UInt64(recipe.train.seed))
        }
    }

    var recipeFingerprint: String {
        var r = recipe
        r.train.steps = 0; r.eval = .init(); r.checkpoint = .init(); r.logEvery = 0; r.out = ""
        return CorpusBuilder.fnv1a(Array(((try? RecipeLoader.yaml(r)) ?? "").utf8))
    }

    func restore(from dir: String) throws {
        let state = try JSON.decode(TrainerState.self, from: (dir as NSString).appendingPathComponent("trainer_state.json"))
        guard state.format == "videobert-caption-trainer-state" else {
            throw VideoBertError("is not a caption fine-tuning checkpoint", file: dir)
        }
        guard state.recipeFingerprint == recipeFingerprint else {
            throw VideoBertError("was written with different model or data settings; resume with the recipe it was started with", file: dir)
        }
        try model.loadPretrained(from: dir)
        try CheckpointFiles.readOptimizerState(into: model.store, from: (dir as NSString).appendingPathComponent("optimizer.safetensors"))
        adam.step = state.adamStep
        examples.restore(state.examples)
        step = state.step
        logLine("finetune: resumed from \(dir) at step \(step)")
    }

    func saveCheckpoint() throws -> String {
        try CheckpointFiles.write(step: step, in: checkpointsDir, keep: recipe.checkpoint.keep) { tmp in
            try model.save(to: tmp)
            let initVocab = (recipe.initFrom as NSString).appendingPathComponent("vocab.txt")
            let vocab = FileManager.default.fileExists(atPath: initVocab) ? initVocab : corpus.corpus.textVocabPath
            try AtomicFile.write(try Data(contentsOf: URL(fileURLWithPath: vocab)), to: (tmp as NSString).appendingPathComponent("vocab.txt"))
            let initVisual = (recipe.initFrom as NSString).appendingPathComponent("visual_vocab")
            let visual = FileManager.default.fileExists(atPath: initVisual) ? initVisual : corpus.corpus.visualVocabPath
            try CheckpointFiles.copyFiles(from: visual, to: (tmp as NSString).appendingPathComponent("visual_vocab"))
            try AtomicFile.write(recipeText, to: (tmp as NSString).appendingPathComponent("recipe.yaml"))
            let state = TrainerState(step: step, adamStep: adam.step, examples: examples.state, recipeFingerprint: recipeFingerprint)
            try JSON.write(state, to: (tmp as NSString).appendingPathComponent("trainer_state.json"))
            try CheckpointFiles.writeOptimizerState(model.store, to: (tmp as NSString).appendingPathComponent("optimizer.safetensors"))
        }
    }

    static let lossWeights: (mlm: Float, mfm: Float, align: Float) = (1, 0, 0)

    /// Held-out next-word loss and top-1 accuracy over the same examples every time.
    public func evaluate() -> [String: Double] {
        guard let held = evalExamples, recipe.eval.batches > 0 else { return [:] }
        let B = recipe.train.batchSize
        var loss = 0.0, correct = 0, count = 0
        var p = 0
        for _ in 0..<recipe.eval.batches {
            guard p < held.pairCount else { break }
            let pairs = (p..<min(held.pairCount, p + B)).map { Int(held.state.order[$0]) }
            p += pairs.count
            let out = model.forwardBackward(held.batch(pairs), step: step, dropoutSeed: 0, lossWeights: Self.lossWeights, training: false)
            loss += Double(out.mlmLoss) * Double(out.mlmCount)
            correct += out.mlmCorrect
            count += out.mlmCount
        }
        guard count > 0 else { return [:] }
        return ["loss": loss / Double(count), "next_word_acc": Double(correct) / Double(count)]
    }

    /// loss.svg beside metrics.jsonl: train and held-out next-word loss.
    func plotLoss(_ metricsPath: String) throws {
        try AtomicFile.write(MetricsLog.lossPlot(try MetricsLog.read(metricsPath), title: "caption fine-tuning loss").render(),
                             to: (recipe.out as NSString).appendingPathComponent("loss.svg"))
    }

    public func run() throws -> Summary {
        let started = Date()
        try AtomicFile.createDirectory(recipe.out)
        let metricsPath = (recipe.out as NSString).appendingPathComponent("metrics.jsonl")
        if step == 0 { try AtomicFile.write("", to: metricsPath) }
        let metrics = try MetricsLog(path: metricsPath, truncateAfterStep: step)
        let t = recipe.train
        logLine("finetune: captioning from \(recipe.initFrom); \(examples.items.count) training captions, \(examples.pairCount) (caption, prefix) pairs; batch \(t.batchSize); \(t.steps) steps")
        let previous = signal(SIGINT) { _ in captionStopRequested = 1 }
        let previousTerm = signal(SIGTERM) { _ in captionStopRequested = 1 }
        defer { signal(SIGINT, previous); signal(SIGTERM, previousTerm) }
        captionStopRequested = 0

        let progress = ProgressReporter(label: "finetune caption", total: t.steps, unit: "steps", enabled: showProgress)
        progress.advance(step)
        var windowLoss = 0.0, windowCorrect = 0, windowCount = 0, windowTokens = 0
        var windowStart = Date()
        var lastCheckpoint = CheckpointFiles.latest(in: checkpointsDir) ?? ""
        var lastEval: [String: Double] = [:]
        var lastLoss = Double.nan
        var stoppedEarly = false
        while step < t.steps {
            if captionStopRequested != 0 || (stopAtStep.map { step >= $0 } ?? false) { stoppedEarly = true; break }
            step += 1
            model.store.zeroGradients()
            let batch = examples.nextBatch(t.batchSize)
            let out = model.forwardBackward(batch, step: step, dropoutSeed: dropoutSeed(base: UInt64(t.seed), step: step, site: 0),
                                            lossWeights: Self.lossWeights, lossScale: 1, training: true)
            guard out.loss.isFinite else {
                throw VideoBertError("loss is \(out.loss) at step \(step); the last good checkpoint is \(lastCheckpoint.isEmpty ? "none" : lastCheckpoint)", file: recipe.out)
            }
            if let bad = model.store.firstNonFiniteGradient() {
                throw VideoBertError("gradient of \(bad) is not finite at step \(step); the last good checkpoint is \(lastCheckpoint.isEmpty ? "none" : lastCheckpoint)", file: recipe.out)
            }
            let gradNorm = t.clipGrad > 0 ? clipGradientNorm(model.store, maxNorm: t.clipGrad) : gradientNorm(model.store)
            let lr = recipe.learningRate(step: step)
            adam.update(model.store, lr: lr)
            lastLoss = Double(out.loss)
            windowLoss += Double(out.mlmLoss) * Double(out.mlmCount)
            windowCorrect += out.mlmCorrect
            windowCount += out.mlmCount
            windowTokens += batch.tokenCount

            if step % recipe.logEvery == 0 || step == t.steps {
                let secs = Date().timeIntervalSince(windowStart)
                let line: [String: Double] = [
                    "loss": windowLoss / Double(max(windowCount, 1)), "next_word_acc": Double(windowCorrect) / Double(max(windowCount, 1)),
                    "lr": lr, "grad_norm": gradNorm, "tokens_per_s": Double(windowTokens) / max(secs, 1e-9),
                    "seconds": Date().timeIntervalSince(started),
                ]
                try metrics.append(step: step, kind: "train", split: recipe.data.trainSplit, values: line)
                progress.setStatus(String(format: "loss %.3f  acc %.3f", line["loss"]!, line["next_word_acc"]!))
                windowLoss = 0; windowCorrect = 0; windowCount = 0; windowTokens = 0
                windowStart = Date()
            }
            if (recipe.eval.every > 0 && step % recipe.eval.every == 0) || step == t.steps {
                lastEval = evaluate()
                if !lastEval.isEmpty {
                    var line = lastEval
                    line["seconds"] = Date().timeIntervalSince(started)
                    try metrics.append(step: step, kind: "eval", split: recipe.data.evalSplit, values: line)
                    try plotLoss(metricsPath)
                }
                windowStart = Date()
            }
            if step % recipe.checkpoint.every == 0 || step == t.steps {
                lastCheckpoint = try saveCheckpoint()
            }
            progress.advance()
        }
        if stoppedEarly {
            lastCheckpoint = try saveCheckpoint()
            logLine("finetune: stopped at step \(step); saved \(lastCheckpoint) (continue with --resume)")
        }
        progress.finish()
        try plotLoss(metricsPath)
        return Summary(steps: step, finalLoss: lastLoss, eval: lastEval, checkpoint: lastCheckpoint,
                       seconds: Date().timeIntervalSince(started), stoppedEarly: stoppedEarly,
                       trainCaptions: examples.items.count, trainPairs: examples.pairCount)
    }
}
