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
        // A captioner's fingerprint stays what it was before `target` and the anticipation head
        // existed (runs started then resume; a captioner has no head).
        if r.target == .caption {
            text = text.replacingOccurrences(of: "target: caption\n", with: "")
            text = text.replacingOccurrences(of: "\n  anticipation_weight: [^\n]*", with: "", options: .regularExpression)
        }
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
    /// Next-step forecasters whose train split gives verb and noun labels (and
    /// train.anticipation_weight > 0): the verb/noun anticipation head, and each source step's
    /// NEXT step's label indices by image id (−1: no label, or one the train split never has).
    let anticipation: AnticipationHead?
    let nextLabels: [String: (verb: Int32, noun: Int32)]

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

        // The anticipation head's labels: fixed from the train split (CBT §4.3's setting).
        let trainSteps = resolved.inSplit(recipe.data.trainSplit)
        let verbs = Array(Set(trainSteps.compactMap(\.step.verb))).sorted(), nouns = Array(Set(trainSteps.compactMap(\.step.noun))).sorted()
        if recipe.target == .nextStep, recipe.train.anticipationWeight > 0, !verbs.isEmpty, !nouns.isEmpty {
            anticipation = try AnticipationHead(hiddenSize: config.hiddenSize, verbs: verbs, nouns: nouns)
            let verbIndex = Dictionary(uniqueKeysWithValues: verbs.enumerated().map { ($1, Int32($0)) })
            let nounIndex = Dictionary(uniqueKeysWithValues: nouns.enumerated().map { ($1, Int32($0)) })
            var next: [String: (verb: Int32, noun: Int32)] = [:]
            for split in Set([recipe.data.trainSplit, recipe.data.evalSplit]) {
                let steps = resolved.inSplit(split)
                for i in steps.indices.dropLast() where steps[i + 1].step.video == steps[i].step.video {
                    let n = steps[i + 1].step
                    next[steps[i].step.imageID] = (n.verb.flatMap { verbIndex[$0] } ?? -1, n.noun.flatMap { nounIndex[$0] } ?? -1)
                }
            }
            nextLabels = next
        } else {
            anticipation = nil
            nextLabels = [:]
        }

        model = try BertForPreTraining(config: config, maxBatch: recipe.train.batchSize, maxSeq: recipe.maxSequence, training: true)
    }

    static let lossWeights: (mlm: Float, mfm: Float, align: Float) = (1, 0, 0)

    var parameterStores: [(prefix: String, store: ParameterStore)] {
        var stores = [("", model.store)]
        if let anticipation { stores.append(("", anticipation.store)) }
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
        var what = recipe.target == .caption ? "captioning" : "next-step forecasting (the next step's sentence generated)"
        if let anticipation {
            what += " with a verb/noun anticipation head (\(anticipation.verbs.count) verbs, \(anticipation.nouns.count) nouns, loss weight \(recipe.train.anticipationWeight))"
        } else if recipe.target == .nextStep {
            what += recipe.train.anticipationWeight > 0 ? " (no anticipation head: the train split's annotations give no verb/noun)" : " (no anticipation head: train.anticipation_weight is 0)"
        }
        return "\(what) from \(recipe.initFrom) (\(input) in); \(examples.items.count) training captions, \(examples.pairCount) (caption, prefix) pairs"
    }
    var plotKeys: [String] { anticipation == nil ? ["loss"] : ["loss", "anticipation_loss"] }
    var samplerState: CaptionExamples.State { examples.state }
    func restoreSampler(_ state: CaptionExamples.State) { examples.restore(state) }

    func initializeParameters() throws {
        model.initializeWeights(seed: UInt64(recipe.train.seed))
        try model.loadPretrained(from: bertFolder, seed: UInt64(recipe.train.seed))
        clips?.projection.initialize(std: Float(model.config.initializerRange), seed: UInt64(recipe.train.seed) ^ 0xC11F)
        // The head's pooler starts as the pretrained BERT's (bert.pooler.dense), its classifiers fresh.
        anticipation?.initialize(std: Float(model.config.initializerRange), seed: UInt64(recipe.train.seed) ^ 0xA471,
                                 pooler: (UnsafePointer(model.store.parameter("bert.pooler.dense.weight").baseAddress!),
                                          UnsafePointer(model.store.parameter("bert.pooler.dense.bias").baseAddress!)))
    }

    /// The pretrained checkpoint's vocabularies (the corpus' when it has none) beside the weights;
    /// with a CBT init, the projection and the CBT visual path (cbt/) instead of visual_vocab/.
    func saveModel(to folder: String) throws {
        try model.save(to: folder)
        try anticipation?.save(to: folder)
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
        try anticipation?.loadWeights(from: folder)
        if let clips, recipe.train.tuneVisual {
            try clips.encoder.loadWeights(from: (folder as NSString).appendingPathComponent(Checkpoint.File.captionerCBT.rawValue))
        }
    }

    /// One forward (and in training backward) pass over the given pairs: for a clip-feature
    /// captioner the video positions get the projected features — read from the examples' table
    /// (frozen), or computed now by the CBT visual path (tuned), whose gradient then flows back
    /// through the projection into the front-end.
    func step(_ pairs: [Int], of examples: CaptionExamples, step: Int, dropoutSeed: UInt64, lossScale: Float, training: Bool) -> (PretrainingOutput, PretrainingBatch) {
        let batch = examples.batch(pairs)
        let out = withVideoInputs(batch, items: pairs.map { examples.item(ofPair: $0) }, of: examples, step: step, dropoutSeed: dropoutSeed,
                                  training: training) { batch in
            model.forwardBackward(batch, step: step, dropoutSeed: dropoutSeed, lossWeights: Self.lossWeights, lossScale: lossScale,
                                  training: training)
        }
        return (out, batch)
    }

    /// The anticipation head on `[CLS] [MASK] [>] video [SEP]` of the given items (their
    /// source steps' video alone): the head's loss against each source step's NEXT step's
    /// labels, and in training the gradient of `scale · loss` through the head, the BERT (and a
    /// clip-feature input's projection) added to the stores' gradients.
    func anticipationStep(items indices: [Int], of examples: CaptionExamples, step: Int, dropoutSeed: UInt64, scale: Float,
                          training: Bool) -> AnticipationHead.Loss? {
        guard let head = anticipation, !indices.isEmpty else { return nil }
        let batch = examples.videoOnlyBatch(items: indices)
        let targets = indices.map { nextLabels[examples.items[$0].imageID] ?? (-1, -1) }
        var result: AnticipationHead.Loss?
        _ = withVideoInputs(batch, items: indices.map { examples.items[$0] }, of: examples, step: step, dropoutSeed: dropoutSeed,
                            training: training) { batch in
            let (out, hidden, kept) = model.forwardKeepingHidden(batch, step: step, dropoutSeed: dropoutSeed, lossWeights: (0, 0, 0),
                                                                  training: training)
            let (B, T, C) = (batch.B, batch.T, model.config.hiddenSize)
            var cls = [Float](repeating: 0, count: B * C)
            for b in 0..<B { for c in 0..<C { cls[b * C + c] = hidden[b * T * C + c] } }
            let forward = head.forward(cls: cls, rows: B)
            let loss = head.loss(forward, verbTargets: targets.map(\.verb), nounTargets: targets.map(\.noun), scale: scale, backward: training)
            if training, let kept, let d = loss.dCLS {
                let dHidden = model.hiddenGradient
                for b in 0..<B { for c in 0..<C { dHidden[b * T * C + c] += d[b * C + c] } }
                model.backwardKeepingHidden(kept)
            }
            result = loss
            return out
        }
        return result
    }

    /// Runs `body` on `batch` with its video positions filled for a clip-feature input (projected
    /// features — read from the examples' table (frozen), or computed now by the CBT visual path
    /// (tuned)); in training, after `body`'s backward, the gradient that reached the input
    /// embeddings flows on into the projection (and the front-end when tuned).
    private func withVideoInputs(_ batch: PretrainingBatch, items: [CaptionItem], of examples: CaptionExamples, step: Int, dropoutSeed: UInt64,
                                 training: Bool, _ body: (PretrainingBatch) -> PretrainingOutput) -> PretrainingOutput {
        var batch = batch
        guard let clips else { return body(batch) }
        let rows = batch.inputEmbeddingRows.count
        var features = batch.inputEmbeddings, counts: [Int] = []
        let tuning = if case .clips = examples.video { true } else { false }
        if tuning {
            let sequences = items.map { $0.clips.map { Int($0) } }
            let states = clips.encoder.trainingForward(sequences, dropout: training, dropoutSeed: dropoutSeed, step: step)
            counts = states.map { $0.count }
            features = states.flatMap { $0 }
        }
        batch.inputEmbeddings = clips.projection.forward(features, rows: rows)
        let out = body(batch)
        if training {
            let dFeatures = clips.projection.backward(dout: model.inputEmbeddingGradient, input: features, rows: rows,
                                                      inputGradient: tuning)
            if let dFeatures {
                var at = 0
                clips.encoder.backward(counts.map { n in defer { at += n }; return Array(dFeatures[at..<(at + n)]) })
            }
        }
        return out
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

    /// The anticipation head's loss and top-1 accuracies.
    static func addAnticipation(_ a: AnticipationHead.Loss?, to m: inout MetricSums) {
        guard let a else { return }
        m.add("anticipation_loss", Double(a.loss))
        m.addRatio("next_verb_acc", correct: a.verbCorrect, count: a.verbCount)
        m.addRatio("next_noun_acc", correct: a.nounCorrect, count: a.nounCount)
    }

    /// One micro-batch: the generator's (caption, prefix) pairs; with an anticipation head, also
    /// the head on the video-only input of those pairs' steps (each once), its loss weighted by
    /// train.anticipation_weight (a second forward and backward into the same gradients).
    func trainMicroBatch(step: Int, micro: Int, dropoutSeed: UInt64, lossScale: Float) -> (loss: Float, metrics: MetricSums) {
        let pairs = examples.nextPairs(recipe.train.batchSize)
        let (out, batch) = self.step(pairs, of: examples, step: step, dropoutSeed: dropoutSeed, lossScale: lossScale, training: true)
        var metrics = Self.metrics(out, tokens: batch.tokenCount), loss = out.loss
        let weight = Float(recipe.train.anticipationWeight)
        if let a = anticipationStep(items: examples.distinctItems(ofPairs: pairs), of: examples, step: step, dropoutSeed: dropoutSeed ^ 0xA471_0000,
                                    scale: weight * lossScale, training: true) {
            loss += weight * a.loss
            Self.addAnticipation(a, to: &metrics)
        }
        return (loss, metrics)
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
        // The anticipation head on the first held-out steps (each once).
        let items = Array(0..<min(held.items.count, B * recipe.eval.batches))
        var at = 0
        while at < items.count {
            let chunk = Array(items[at..<min(items.count, at + B)])
            at += chunk.count
            var m = MetricSums()
            Self.addAnticipation(anticipationStep(items: chunk, of: held, step: step, dropoutSeed: 0, scale: 1, training: false), to: &m)
            meter.add(m)
        }
        return meter.values()
    }
}

extension CaptionTrainingTask {
    /// trainer_state.json's sampler, checked before a resume (docs/RELIABILITY.md, "damaged state").
    func samplerStateProblem(_ state: CaptionExamples.State) -> String? { examples.problem(with: state) }
}
