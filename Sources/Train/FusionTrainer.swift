import Foundation
import Model
import Recipe
import Report
import Tasks
import Tensor
import Tokenize

/// `videobert pretrain` for a `variant: fusion` recipe (Everything at Once, issue 17 item 5): a
/// text BERT whose final hidden states are the text tokens, the corpus' clip features as video
/// tokens, one audio token per clip (a conv net over its log-mel spectrogram, or its audio word),
/// one shared fusion transformer run on t, v, a, tv, ta, va (FusionModel.swift), and the
/// combinatorial contrastive loss (CombinatorialLoss.swift), trained by the shared
/// `TrainingLoop` (AdamW over both stores, schedule, clipping, metrics.jsonl, loss.svg, atomic
/// checkpoints, exact resume, Ctrl-C).
///
/// A corpus without audio (or `audio.source: none`) trains the terms without audio only (text ↔
/// video), and the run says so when it starts.
///
/// Checkpoints `<out>/checkpoints/step-NNNNNNN/`: fusion_config.json, model.safetensors, the text
/// BERT as the Hugging Face folder text/ (with vocab.txt), recipe.yaml, trainer_state.json,
/// optimizer.safetensors (text BERT moments under `m.text.` / `v.text.`).
///
/// Held-out evaluation (eval split): each term's loss and accuracy (its first embedding ranking
/// its own second one first among the batch's, chance 1/B) over `eval.batches` fixed batches, and
/// retrieval over the split's segments (at most retrieval.max_pairs): text → video (`t2v_*`),
/// text → video+audio (`t2va_*`) and, with audio, text → audio (`t2a_*`) R@1/5/10 and median
/// rank, beside chance (`chance_r1` = 1/N, …, `chance_median_rank` = (N + 1)/2).
public final class FusionTrainer: TrainingRun {
    public let recipe: FusionRecipe
    let task: FusionTask
    let loop: TrainingLoop<FusionTask>

    public var controls: TrainingControls { loop.controls }

    public init(recipe: FusionRecipe, resume: Bool) throws {
        if let p = recipe.problem() { throw VideoBertError(p, file: "recipe") }
        self.recipe = recipe
        task = try FusionTask(recipe: recipe)
        var settings = TrainingLoop<FusionTask>.Settings(out: recipe.out, train: recipe.train, eval: recipe.eval,
                                                         checkpoint: recipe.checkpoint, logEvery: recipe.logEvery,
                                                         recipeText: try RecipeLoader.yaml(recipe), fingerprint: Self.fingerprint(recipe))
        settings.stateFormat = "videobert-fusion-trainer-state"
        settings.plotTitle = "fusion pretraining loss"
        loop = try TrainingLoop(task: task, settings: settings, resume: resume)
    }

    /// The audio input the run uses (`none`, `words` or `logmel`).
    public var audioSource: String { task.builder.audio.name }

    /// Settings that must not change across a resume (the schedule, run length, evaluation may).
    static func fingerprint(_ recipe: FusionRecipe) -> String {
        var r = recipe
        r.train.steps = 0; r.eval = .init(); r.retrieval = .init(); r.checkpoint = .init(); r.logEvery = 0; r.out = ""
        return CorpusBuilder.fnv1a(Array(((try? RecipeLoader.yaml(r)) ?? "").utf8))
    }

    public func evaluate() throws -> [String: Double] { try task.evaluate(step: loop.step) }

    public func run() throws -> PretrainSummary { try loop.run() }
}

/// The fusion model, data and metrics for `TrainingLoop`.
final class FusionTask: PretrainingTask {
    let recipe: FusionRecipe
    let corpus: TokenizedCorpus
    let builder: FusionBatchBuilder
    let text: BertForPreTraining
    let model: FusionModel
    let loss: CombinatorialContrastiveLoss
    let sampler: FusionSampler
    /// The loss weights in use (audio terms 0 without audio).
    let weights: [Float]
    private let dEmbeddings: UnsafeMutablePointer<Float>

    init(recipe: FusionRecipe) throws {
        self.recipe = recipe
        corpus = try TokenizedCorpus(path: recipe.corpus)
        builder = try FusionBatchBuilder(corpus: corpus, audioSource: recipe.audio.source)
        let textSize = corpus.index.textVocab.size
        var textConfig: BertConfig
        if !recipe.text.initFrom.isEmpty {
            let pretrained = try Checkpoint(folder: recipe.text.initFrom)
            textConfig = try pretrained.bert ?? { throw VideoBertError("has no text BERT", file: recipe.text.initFrom) }()
            try pretrained.checkVocabularies(textFingerprint: corpus.index.textVocab.fingerprint, visualVocabFolder: nil, corpus: corpus.path)
            guard textConfig.textVocabSize == textSize, textConfig.visualWords == 0 else {
                throw VideoBertError("has a vocabulary of \(textConfig.vocabSize), the corpus' text vocabulary \(textSize)", file: recipe.text.initFrom)
            }
            textConfig.architectures = ["BertForPreTraining"]
            guard recipe.data.maxTextTokens + 2 <= textConfig.maxPositionEmbeddings else {
                throw VideoBertError("data.max_text_tokens + 2 exceeds its max_position_embeddings \(textConfig.maxPositionEmbeddings)", file: recipe.text.initFrom)
            }
        } else {
            textConfig = BertConfig(textVocabSize: textSize, visualWords: 0, hiddenSize: recipe.text.hiddenSize,
                                    numHiddenLayers: recipe.text.numLayers, numAttentionHeads: recipe.text.numHeads,
                                    intermediateSize: recipe.text.intermediateSize, maxPositionEmbeddings: recipe.text.maxPositions,
                                    initializerRange: recipe.fusion.initializerRange)
        }
        textConfig.hiddenDropoutProb = recipe.fusion.dropout
        textConfig.attentionProbsDropoutProb = recipe.fusion.attentionDropout
        var config = FusionConfig()
        config.textInputSize = textConfig.hiddenSize
        config.videoInputSize = builder.videoDim
        (config.maxTextTokens, config.maxVideoTokens, config.maxAudioTokens) = (recipe.data.maxTextTokens + 2, recipe.data.maxClips, recipe.data.maxClips)
        let f = recipe.fusion
        (config.hiddenSize, config.layers, config.heads, config.intermediateSize) = (f.hiddenSize, f.numLayers, f.numHeads, f.intermediateSize)
        config.embeddingSize = f.embeddingSize
        (config.hiddenDropoutProb, config.attentionProbsDropoutProb, config.initializerRange) = (f.dropout, f.attentionDropout, f.initializerRange)
        config.audioSource = builder.audio.name
        switch builder.audio {
        case .none: config.audioInputSize = 1
        case .words(_, let words): config.audioInputSize = words
        case .logmel(_, let frames, let mels):
            config.audioNet = AudioConvNetConfig(frames: frames, mels: mels, channels: recipe.audio.channels, outputSize: recipe.audio.outputSize)
            config.audioInputSize = recipe.audio.outputSize
        }
        try config.validate(file: "recipe")
        var weights = recipe.loss.weights
        if case .none = builder.audio {
            for term in CombinatorialTerm.allCases where term.needsAudio { weights[term.rawValue] = 0 }
            guard weights[CombinatorialTerm.tv.rawValue] > 0 else {
                throw VideoBertError("loss.tv is 0 and the corpus \(corpus.path) has no audio (audio.source \(recipe.audio.source)): nothing to train", file: "recipe")
            }
        }
        self.weights = weights
        let B = recipe.train.batchSize
        text = try BertForPreTraining(config: textConfig, maxBatch: B, maxSeq: recipe.data.maxTextTokens + 2, training: true)
        model = try FusionModel(config: config, maxBatch: B, runs: FusionRun.needed(weights: weights), training: true)
        loss = try CombinatorialContrastiveLoss(maxBatch: B, dimension: config.embeddingSize, temperature: Float(recipe.loss.temperature),
                                                weights: weights, objective: recipe.loss.pooled == "variable_margin"
                                                    ? .variableMargin(alpha: Float(recipe.loss.marginAlpha)) : .infoNCE)
        sampler = try FusionSampler(corpus: corpus, split: "train", settings: recipe.data, seed: UInt64(recipe.train.seed))
        // The held-out split must hold two videos too: fail now, not at the first evaluation.
        _ = try FusionSampler(corpus: corpus, split: recipe.eval.split, settings: recipe.data, seed: 0)
        dEmbeddings = .allocate(capacity: 6 * B * config.embeddingSize)
        dEmbeddings.initialize(repeating: 0, count: 6 * B * config.embeddingSize)
        if case .none = builder.audio {
            logLine("pretrain: the corpus \(corpus.path) has no audio (audio.source \(recipe.audio.source)): training text ↔ video (tv) only")
        }
    }

    deinit { dEmbeddings.deallocate() }

    var encoder: FusionEncoder { FusionEncoder(text: text, model: model, builder: builder) }
    var parameterStores: [(prefix: String, store: ParameterStore)] { [("", model.store), ("text.", text.store)] }
    var runDescription: String {
        let c = model.config
        let terms = CombinatorialTerm.allCases.filter { weights[$0.rawValue] > 0 }.map(\.name).joined(separator: ", ")
        return "fusion: text \(text.config.numHiddenLayers) × \(text.config.hiddenSize), video features \(c.videoInputSize), audio \(c.audioSource), fusion \(c.layers) × \(c.hiddenSize), terms \(terms); \(model.store.count + text.store.count) parameters"
    }
    var plotKeys: [String] { ["loss"] + CombinatorialTerm.allCases.filter { weights[$0.rawValue] > 0 }.map { "\($0.name)_loss" } }
    var samplerState: CBTSampler.State { sampler.state }
    func restoreSampler(_ state: CBTSampler.State) { sampler.state = state }

    func initializeParameters() throws {
        let seed = UInt64(recipe.train.seed)
        text.initializeWeights(seed: seed)
        model.initializeWeights(seed: seed)
        if !recipe.text.initFrom.isEmpty {
            let report = try text.loadPretrained(from: recipe.text.initFrom, seed: seed)
            logLine("pretrain: text BERT: \(report)")
        }
    }

    func saveModel(to folder: String) throws {
        try model.save(to: folder)
        let textFolder = (folder as NSString).appendingPathComponent(Checkpoint.File.cbtText.rawValue)
        try text.save(to: textFolder)
        try AtomicFile.write(try Data(contentsOf: URL(fileURLWithPath: corpus.textVocabPath)),
                             to: (textFolder as NSString).appendingPathComponent(Checkpoint.File.textVocab.rawValue))
    }

    func loadModel(from folder: String) throws {
        try model.loadWeights(from: folder)
        let report = try text.loadPretrained(from: (folder as NSString).appendingPathComponent(Checkpoint.File.cbtText.rawValue))
        guard report.initialized.isEmpty, !report.extendedVocabulary else {
            throw VideoBertError("the text BERT lacks tensors: \(report.initialized.joined(separator: ", "))", file: folder)
        }
    }

    func metrics(_ r: CombinatorialResult, tokens: Int) -> MetricSums {
        var m = MetricSums()
        m.add("loss", Double(r.loss))
        for term in CombinatorialTerm.allCases where r.terms[term.rawValue].count > 0 {
            let t = r.terms[term.rawValue]
            m.add("\(term.name)_loss", Double(t.loss))
            m.addRatio("\(term.name)_acc", correct: t.correct, count: t.count)
        }
        m.tokens = tokens
        return m
    }

    /// Forward (and, when `train`, backward with `lossScale`) of one batch.
    func step(_ batch: FusionBatch, step: Int, dropoutSeed: UInt64, lossScale: Float, train: Bool) -> CombinatorialResult {
        let (_, hidden, kept) = text.forwardKeepingHidden(batch.text, step: step, dropoutSeed: Model.dropoutSeed(base: dropoutSeed, step: -1, site: 1),
                                                          lossWeights: (0, 0, 0), training: train)
        let inputs = encoder.inputs(batch, hidden: hidden)
        let present = inputs.present
        let embeddings = model.forward(inputs, dropout: train, seed: Model.dropoutSeed(base: dropoutSeed, step: -1, site: 2), step: step)
        let result = present.withUnsafeBufferPointer { loss.forward(embeddings: embeddings, present: $0.baseAddress!, N: batch.B) }
        guard train, let kept else { return result }
        let E = model.config.embeddingSize
        dEmbeddings.update(repeating: 0, count: 6 * batch.B * E)
        loss.backward(dembeddings: dEmbeddings, dloss: lossScale)
        model.backward(dEmbeddings: dEmbeddings, dInputs: [text.hiddenGradient, nil, nil])
        text.backwardKeepingHidden(kept)
        return result
    }

    func trainMicroBatch(step: Int, micro: Int, dropoutSeed: UInt64, lossScale: Float) -> (loss: Float, metrics: MetricSums) {
        let batch = builder.batch(sampler.next(recipe.train.batchSize))
        let r = self.step(batch, step: step, dropoutSeed: dropoutSeed, lossScale: lossScale, train: true)
        return (r.loss, metrics(r, tokens: batch.tokenCount))
    }

    func evaluate(step: Int) throws -> [String: Double] {
        let evalSampler = try FusionSampler(corpus: corpus, split: recipe.eval.split, settings: recipe.data, seed: 0x5EED_E7A1)
        var meter = MetricSums()
        for _ in 0..<recipe.eval.batches {
            let batch = builder.batch(evalSampler.next(recipe.train.batchSize))
            meter.add(metrics(self.step(batch, step: step, dropoutSeed: 0, lossScale: 1, train: false), tokens: 0))
        }
        var values = meter.values()
        for (key, value) in retrieval(evalSampler) { values[key] = value }
        return values
    }

    /// Text → video, video+audio, audio retrieval over the held-out segments (see FusionTrainer).
    func retrieval(_ evalSampler: FusionSampler) -> [String: Double] {
        var segments = evalSampler.retrievalSegments
        if recipe.retrieval.maxPairs > 0 { segments = Array(segments.prefix(recipe.retrieval.maxPairs)) }
        let N = segments.count
        guard N >= 2 else { return [:] }
        let samples = segments.map { builder.sample(segment: $0, maxTextTokens: recipe.data.maxTextTokens, maxClips: recipe.data.maxClips) }
        let e = encoder.embed(samples), E = model.config.embeddingSize
        var out: [String: Double] = ["retrieval_pairs": Double(N), "chance_r1": 1 / Double(N), "chance_r5": min(1, 5 / Double(N)),
                                     "chance_r10": min(1, 10 / Double(N)), "chance_median_rank": Double(N + 1) / 2]
        var targets: [(String, FusionEmbedding)] = [("t2v", .video)]
        if model.runs.contains(.va) { targets.append(("t2va", .videoAudio)) }
        if model.runs.contains(.a) { targets.append(("t2a", .audio)) }
        for (prefix, target) in targets {
            let r = RetrievalMetrics.textVideo(similarity: FusionEncoder.similarity(e[FusionEmbedding.text.rawValue], e[target.rawValue], N: N, E: E),
                                               N: N).textToVideo
            out["\(prefix)_r1"] = r.recallAt1; out["\(prefix)_r5"] = r.recallAt5; out["\(prefix)_r10"] = r.recallAt10
            out["\(prefix)_median_rank"] = r.medianRank
        }
        return out
    }
}

/// Draws fusion samples from one split as `CBTSampler` draws CBT examples (its videos, anchors,
/// spans and seeded state): min(B, videos) samples from different videos, each a random anchor
/// segment and 1…concat_max consecutive segments (texts joined, cut at max_text_tokens; clips cut
/// at max_clips); nothing masked.
final class FusionSampler {
    let cbt: CBTSampler
    var state: CBTSampler.State {
        get { cbt.currentState }
        set { cbt.restore(newValue) }
    }

    init(corpus: TokenizedCorpus, split: String, settings: FusionRecipe.Data, seed: UInt64) throws {
        var data = CBTRecipe.Data()
        (data.maxTextTokens, data.maxClips, data.concatMax) = (settings.maxTextTokens, settings.maxClips, settings.concatMax)
        (data.maskProb, data.clipMaskProb) = (0, 0)
        let special = try SpecialTokens(vocabulary: TextVocabulary.load(corpus.textVocabPath))
        // Only the CBT sampler's choice of videos, anchors and spans is used (`next`), never its
        // batch assembly; its clip input is the corpus's features (every shard's).
        cbt = try CBTSampler(corpus: corpus, split: split, settings: data, special: special,
                             inputs: try ClipInputs.load(corpus: corpus, source: "features"),
                             seed: seed)
    }

    var retrievalSegments: [Int] { cbt.retrievalSegments }

    func next(_ B: Int) -> [FusionSample] {
        let n = min(B, cbt.anchors.count)
        var order = Array(0..<cbt.anchors.count)
        for i in 0..<n { order.swapAt(i, i + cbt.state.rng.nextInt(order.count - i)) }
        return order.prefix(n).map { v -> FusionSample in
            let list = cbt.anchors[v]
            let anchor = list[cbt.state.rng.nextInt(list.count)]
            let example = cbt.span(from: anchor, count: 1 + cbt.state.rng.nextInt(cbt.settings.concatMax))
            return FusionSample(text: example.text, clips: example.clips)
        }
    }
}
