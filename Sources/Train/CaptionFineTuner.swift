import Foundation
import Model
import Recipe
import Tensor
import Tokenize
import Tasks

/// `videobert finetune caption`: trains a captioner from a pretrained checkpoint (see
/// CaptionExamples.swift for the design), on pretraining's own `TrainingLoop` — AdamW, the
/// same schedule and clipping, seeded dropout, checkpoints every N steps written atomically and
/// pruned, `metrics.jsonl` and `loss.svg`, Ctrl-C saves, and `--resume` that continues
/// bit-exactly.
///
/// `init` is a VideoBERT checkpoint (visual words in) or a CBT checkpoint (clip features in:
/// the CBT's text BERT becomes the captioner and reads the frozen CBT visual transformer's clip
/// features through a trained ClipProjection; design note in CaptionExamples.swift).
///
/// A checkpoint folder is a pretraining-style checkpoint (config.json, model.safetensors,
/// vocab.txt, and visual_vocab/ — or for a CBT init clip_projection.safetensors and cbt/, the
/// CBT's visual path) plus recipe.yaml (this recipe), trainer_state.json and
/// optimizer.safetensors; `videobert caption` reads either kind.
public final class CaptionFineTuner: TrainingRun {
    public struct Summary: Codable, Sendable {
        public var steps: Int
        public var finalLoss: Double
        public var eval: [String: Double]
        public var checkpoint: String
        public var seconds: Double
        public var stoppedEarly: Bool
        public var trainCaptions: Int
        public var trainPairs: Int
        /// "visual words" or "CBT clip features".
        public var input: String
        enum CodingKeys: String, CodingKey {
            case steps, eval, checkpoint, seconds, input
            case finalLoss = "final_loss", stoppedEarly = "stopped_early", trainCaptions = "train_captions", trainPairs = "train_pairs"
        }
    }

    public let recipe: CaptionRecipe
    let task: CaptionTrainingTask
    let loop: TrainingLoop<CaptionTrainingTask>

    public var controls: TrainingControls { loop.controls }

    public init(recipe: CaptionRecipe, resume: Bool) throws {
        if let p = recipe.problem() { throw VideoBertError(p, file: "recipe") }
        self.recipe = recipe
        task = try CaptionTrainingTask(recipe: recipe)
        var eval = PretrainRecipe.Evaluation()
        eval.every = recipe.eval.every; eval.batches = recipe.eval.batches; eval.split = recipe.data.evalSplit
        var checkpoint = PretrainRecipe.Checkpointing()
        checkpoint.every = recipe.checkpoint.every; checkpoint.keep = recipe.checkpoint.keep
        var settings = TrainingLoop<CaptionTrainingTask>.Settings(
            out: recipe.out, train: recipe.train.optimizer, eval: eval, checkpoint: checkpoint, logEvery: recipe.logEvery,
            recipeText: try RecipeLoader.yaml(recipe), fingerprint: Self.fingerprint(recipe))
        settings.label = "finetune \(recipe.target.rawValue)"
        settings.trainSplit = recipe.data.trainSplit
        settings.stateFormat = "videobert-caption-trainer-state"
        settings.plotTitle = recipe.target == .caption ? "caption fine-tuning loss" : "next-step fine-tuning loss"
        loop = try TrainingLoop(task: task, settings: settings, resume: resume)
    }

    /// Settings that must not change across a resume (the run length, evaluation and
    /// checkpointing may).
    static func fingerprint(_ recipe: CaptionRecipe) -> String {
        var r = recipe
        r.train.steps = 0; r.eval = .init(); r.checkpoint = .init(); r.logEvery = 0; r.out = ""
        var text = (try? RecipeLoader.yaml(r)) ?? ""
        // A captioner's fingerprint stays what it was before `target` existed (runs started then resume).
        if r.target == .caption { text = text.replacingOccurrences(of: "target: caption\n", with: "") }
        return CorpusBuilder.fnv1a(Array(text.utf8))
    }

    /// Held-out next-word loss and top-1 accuracy over the same examples every time.
    public func evaluate() -> [String: Double] { task.evaluate(step: loop.step) }

    public func run() throws -> Summary {
        let s = try loop.run()
        return Summary(steps: s.steps, finalLoss: s.finalLoss, eval: s.eval, checkpoint: s.checkpoint, seconds: s.seconds,
                       stoppedEarly: s.stoppedEarly, trainCaptions: task.examples.items.count, trainPairs: task.examples.pairCount,
                       input: task.clips == nil ? "visual words" : recipe.train.tuneVisual ? "CBT clip features (tuned)" : "CBT clip features")
    }
}

/// The captioner's model, examples and metrics for `TrainingLoop`.
final class CaptionTrainingTask: PretrainingTask {
    let recipe: CaptionRecipe
    let corpus: TaskCorpus
    let model: BertForPreTraining
    let examples: CaptionExamples
    let evalExamples: CaptionExamples?
    let special: SpecialTokens
    /// With a CBT init: the CBT visual path (frozen; run once over every step's clips) and the
    /// trained projection of its features. nil with a VideoBERT init.
    let clips: (encoder: CBTClipEncoder, projection: ClipProjection)?
    /// The BERT's folder: the init itself, or a CBT init's text/.
    let bertFolder: String

    init(recipe: CaptionRecipe) throws {
        self.recipe = recipe
        corpus = try TaskCorpus(path: recipe.corpus)
        let initial = try Checkpoint(folder: recipe.initFrom)
        let fromCBT = initial.kind == .cbt
        bertFolder = initial.bertFolder
        try corpus.check(initial)
        var config = try initial.bert ?? { throw VideoBertError("has no text BERT (\(Checkpoint.File.cbtText.rawValue)/)", file: recipe.initFrom) }()
        if fromCBT {
            guard config.textVocabSize == corpus.textVocabSize, config.visualWords == 0 else {
                throw VideoBertError("the CBT text BERT has \(config.textVocabSize) text ids, the corpus \(corpus.path) \(corpus.textVocabSize)", file: recipe.initFrom)
            }
            let encoder = try CBTClipEncoder(checkpoint: recipe.initFrom, corpus: corpus.corpus, maxBatch: max(16, recipe.train.batchSize),
                                             training: recipe.train.tuneVisual)
            if recipe.train.tuneVisual { encoder.freezeUnused() }
            clips = (encoder, try ClipProjection(inputSize: encoder.featureSize, outputSize: config.hiddenSize))
        } else {
            guard !recipe.train.tuneVisual else {
                throw VideoBertError("train.tune_visual needs a CBT checkpoint as init (a VideoBERT checkpoint has no visual path to tune)", file: "recipe")
            }
            guard config.textVocabSize == corpus.textVocabSize, config.visualWords == corpus.visualWords else {
                throw VideoBertError("the checkpoint has \(config.textVocabSize) text ids and \(config.visualWords) visual words, the corpus \(corpus.path) \(corpus.textVocabSize) and \(corpus.visualWords)", file: recipe.initFrom)
            }
            clips = nil
        }
        guard recipe.maxSequence <= config.maxPositionEmbeddings else {
            throw VideoBertError("data.max_caption_tokens + data.max_video_tokens + 4 = \(recipe.maxSequence) exceeds the checkpoint's max_position_embeddings \(config.maxPositionEmbeddings)", file: "recipe")
        }
        // Refused before anything is allocated (docs/RELIABILITY.md, "absurd settings").
        try MemoryEstimate.check(.bertTraining(config: config, batch: recipe.train.batchSize, sequence: recipe.maxSequence),
                                 maxGB: recipe.train.maxMemoryGB, modelKeys: "the sizes of the init checkpoint (\(recipe.initFrom))",
                                 batchKeys: "train.batch_size, data.max_caption_tokens or data.max_video_tokens", file: "recipe")
        if recipe.train.dropout >= 0 {
            config.hiddenDropoutProb = recipe.train.dropout
            config.attentionProbsDropoutProb = recipe.train.dropout
        }
        let vocabulary = try TextVocabulary.load(corpus.corpus.textVocabPath)
        special = try SpecialTokens(vocabulary: vocabulary)
        let tokenizer = BertTokenizer(vocabulary: vocabulary, lowercase: !corpus.corpus.index.textVocab.cased)
        let annotations = try StepAnnotations.load(recipe.annotations)
        let resolved = corpus.resolve(annotations)
        let (textVocabSize, data, clips, special, tune, target) = (corpus.textVocabSize, recipe.data, self.clips, self.special, recipe.train.tuneVisual,
                                                                    recipe.target)
        func makeExamples(_ split: String, seed: UInt64) -> CaptionExamples? {
            let steps = resolved.inSplit(split)
            if let clips, tune {
                let items = CaptionInput.clipItems(steps, encode: tokenizer.encode, maxCaptionTokens: data.maxCaptionTokens,
                                                   maxClips: min(data.maxVideoTokens, clips.encoder.maxClips), target: target)
                return items.isEmpty ? nil : CaptionExamples(items: items, special: special, textVocabSize: textVocabSize, seed: seed,
                                                             video: .clips)
            }
            if let clips {
                let limit = min(data.maxVideoTokens, clips.encoder.maxClips)
                let progress = ProgressReporter(label: "clip features (CBT, \(split))", total: steps.count, unit: "steps", enabled: isatty(2) != 0)
                let features = clips.encoder.encode(steps.map { $0.clips.prefix(limit).map { Int($0) } }, progress: progress)
                progress.finish()
                let (items, table) = CaptionInput.featureItems(steps, features: features, featureSize: clips.encoder.featureSize,
                                                               encode: tokenizer.encode, maxCaptionTokens: data.maxCaptionTokens, target: target)
                return items.isEmpty ? nil : CaptionExamples(items: items, special: special, textVocabSize: textVocabSize, seed: seed,
                                                             video: .features(table, width: clips.encoder.featureSize))
            }
            let items = CaptionInput.items(steps, encode: tokenizer.encode, maxCaptionTokens: data.maxCaptionTokens, maxVideoTokens: data.maxVideoTokens,
                                           target: target)
            return items.isEmpty ? nil : CaptionExamples(items: items, special: special, textVocabSize: textVocabSize, seed: seed)
        }
        guard let train = makeExamples(recipe.data.trainSplit, seed: UInt64(recipe.train.seed)) else {
            let what = recipe.target == .caption ? "captions" : "steps followed by a next step in the same video"
            throw VideoBertError("no \(what) of split '\(recipe.data.trainSplit)' with clips in the corpus \(corpus.path)", file: recipe.annotations)
        }
        self.examples = train
        evalExamples = makeExamples(recipe.data.evalSplit, seed: 0x5EED_CA97)

        model = try BertForPreTraining(config: config, maxBatch: recipe.train.batchSize, maxSeq: recipe.maxSequence, training: true)
    }

    static let lossWeights: (mlm: Float, mfm: Float, align: Float) = (1, 0, 0)

    var parameterStores: [(prefix: String, store: ParameterStore)] {
        var stores = [("", model.store)]
        if let clips {
            stores.append(("", clips.projection.store))
            if recipe.train.tuneVisual { stores.append(("cbt.", clips.encoder.store)) }
        }
        return stores
    }
    var runDescription: String {
        let input = clips.map {
            "CBT clip features (\($0.encoder.featureSize) wide, \(recipe.train.tuneVisual ? "front-end and visual transformer tuned" : "frozen")) projected to \(model.config.hiddenSize)"
        } ?? "visual words"
        let what = recipe.target == .caption ? "captioning" : "next-step forecasting (the next step's sentence generated)"
        return "\(what) from \(recipe.initFrom) (\(input) in); \(examples.items.count) training captions, \(examples.pairCount) (caption, prefix) pairs"
    }
    var plotKeys: [String] { ["loss"] }
    var samplerState: CaptionExamples.State { examples.state }
    func restoreSampler(_ state: CaptionExamples.State) { examples.restore(state) }

    func initializeParameters() throws {
        model.initializeWeights(seed: UInt64(recipe.train.seed))
        try model.loadPretrained(from: bertFolder, seed: UInt64(recipe.train.seed))
        clips?.projection.initialize(std: Float(model.config.initializerRange), seed: UInt64(recipe.train.seed) ^ 0xC11F)
    }

    /// The pretrained checkpoint's vocabularies (the corpus' when it has none) beside the weights;
    /// with a CBT init, the projection and the CBT visual path (cbt/) instead of visual_vocab/.
    func saveModel(to folder: String) throws {
        try model.save(to: folder)
        let initVocab = (bertFolder as NSString).appendingPathComponent(Checkpoint.File.textVocab.rawValue)
        let vocab = FileManager.default.fileExists(atPath: initVocab) ? initVocab : corpus.corpus.textVocabPath
        try AtomicFile.write(try Data(contentsOf: URL(fileURLWithPath: vocab)), to: (folder as NSString).appendingPathComponent(Checkpoint.File.textVocab.rawValue))
        if let clips {
            try clips.projection.save(to: folder)
            let cbt = (folder as NSString).appendingPathComponent(Checkpoint.File.captionerCBT.rawValue)
            if recipe.train.tuneVisual { try clips.encoder.save(to: cbt) } else { try clips.encoder.copyFiles(to: cbt) }
            return
        }
        let initVisual = (recipe.initFrom as NSString).appendingPathComponent(Checkpoint.File.visualVocab.rawValue)
        let visual = FileManager.default.fileExists(atPath: initVisual) ? initVisual : corpus.corpus.visualVocabPath
        try CheckpointFiles.copyFiles(from: visual, to: (folder as NSString).appendingPathComponent(Checkpoint.File.visualVocab.rawValue))
    }

    func loadModel(from folder: String) throws {
        try model.loadPretrained(from: folder)
        try clips?.projection.loadWeights(from: folder)
        if let clips, recipe.train.tuneVisual {
            try clips.encoder.loadWeights(from: (folder as NSString).appendingPathComponent(Checkpoint.File.captionerCBT.rawValue))
        }
    }

    /// One forward (and in training backward) pass over the given pairs: for a clip-feature
    /// captioner the video positions get the projected features — read from the examples' table
    /// (frozen), or computed now by the CBT visual path (tuned), whose gradient then flows back
    /// through the projection into the front-end.
    func step(_ pairs: [Int], of examples: CaptionExamples, step: Int, dropoutSeed: UInt64, lossScale: Float, training: Bool) -> (PretrainingOutput, PretrainingBatch) {
        var batch = examples.batch(pairs)
        guard let clips else {
            return (model.forwardBackward(batch, step: step, dropoutSeed: dropoutSeed, lossWeights: Self.lossWeights, lossScale: lossScale,
                                          training: training), batch)
        }
        let rows = batch.inputEmbeddingRows.count
        var features = batch.inputEmbeddings, counts: [Int] = []
        let tuning = if case .clips = examples.video { true } else { false }
        if tuning {
            let sequences = pairs.map { examples.item(ofPair: $0).clips.map { Int($0) } }
            let states = clips.encoder.trainingForward(sequences, dropout: training, dropoutSeed: dropoutSeed, step: step)
            counts = states.map { $0.count }
            features = states.flatMap { $0 }
        }
        batch.inputEmbeddings = clips.projection.forward(features, rows: rows)
        let out = model.forwardBackward(batch, step: step, dropoutSeed: dropoutSeed, lossWeights: Self.lossWeights, lossScale: lossScale,
                                        training: training)
        if training {
            let dFeatures = clips.projection.backward(dout: model.inputEmbeddingGradient, input: features, rows: rows,
                                                      inputGradient: tuning)
            if let dFeatures {
                var at = 0
                clips.encoder.backward(counts.map { n in defer { at += n }; return Array(dFeatures[at..<(at + n)]) })
            }
        }
        return (out, batch)
    }

    /// Next-word loss (summed over the predicted words, so a window reports the mean per word)
    /// and accuracy.
    static func metrics(_ o: PretrainingOutput, tokens: Int) -> MetricSums {
        var m = MetricSums()
        m.add("loss", Double(o.mlmLoss) * Double(o.mlmCount), count: Double(o.mlmCount))
        m.addRatio("next_word_acc", correct: o.mlmCorrect, count: o.mlmCount)
        m.tokens = tokens
        return m
    }

    func trainMicroBatch(step: Int, micro: Int, dropoutSeed: UInt64, lossScale: Float) -> (loss: Float, metrics: MetricSums) {
        let (out, batch) = self.step(examples.nextPairs(recipe.train.batchSize), of: examples, step: step, dropoutSeed: dropoutSeed,
                                     lossScale: lossScale, training: true)
        return (out.loss, Self.metrics(out, tokens: batch.tokenCount))
    }

    /// Held-out next-word loss and top-1 accuracy over the same examples every time ([:] without
    /// held-out captions).
    func evaluate(step: Int) -> [String: Double] {
        guard let held = evalExamples, recipe.eval.batches > 0 else { return [:] }
        let B = recipe.train.batchSize
        var meter = MetricSums()
        var p = 0
        for _ in 0..<recipe.eval.batches {
            guard p < held.pairCount else { break }
            let pairs = (p..<min(held.pairCount, p + B)).map { Int(held.state.order[$0]) }
            p += pairs.count
            let (out, _) = self.step(pairs, of: held, step: step, dropoutSeed: 0, lossScale: 1, training: false)
            meter.add(Self.metrics(out, tokens: 0))
        }
        return meter.values()
    }
}

extension CaptionTrainingTask {
    /// trainer_state.json's sampler, checked before a resume (docs/RELIABILITY.md, "damaged state").
    func samplerStateProblem(_ state: CaptionExamples.State) -> String? { examples.problem(with: state) }
}
