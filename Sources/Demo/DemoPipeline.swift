import Foundation
import Recipe
import Tasks
import Tensor
import Tokenize
import Train

/// `videobert demo` as a library: render the corpus, tokenize it, pretrain VideoBERT (and CBT),
/// run every downstream task on the test videos beside its baselines, and write the table and
/// `report.html`. The stages and what each is computed from are `DemoArtifact`'s graph; the
/// command only parses arguments into `Options` (docs/ARCHITECTURE.md §9).
public struct DemoPipeline {
    public struct Options: Sendable {
        public var out = "demo"
        /// Where Recipes/ and Vocab/ are.
        public var root = "."
        public var videos = 400
        public var width = 64, height = 64
        public var seed: UInt64 = 0
        /// Pretraining steps (Recipes/demo.yaml's unless set).
        public var steps: Int?
        public var cbtSteps = 200
        /// Caption fine-tuning steps (the caption recipes' unless set).
        public var captionSteps: Int?
        public var skipCBT = false
        /// Next-step sentence candidates per query (the true one among them).
        public var candidates = 10
        /// `KEY=VALUE` overrides of each stage's recipe.
        public var tokenizeSet: [String] = [], pretrainSet: [String] = [], cbtSet: [String] = []
        public var captionSet: [String] = [], captionCBTSet: [String] = [], nextStepSet: [String] = []

        public init() {}

        /// The first problem with these options, phrased with the command's flag names.
        public func problem() -> String? {
            if videos < 20 { return "--videos must be at least 20 (train, val and test splits need videos)" }
            if width < 16 || height < 16 { return "--size must be WxH, at least 16x16" }
            if candidates < 2 { return "--candidates must be at least 2" }
            if cbtSteps < 1 { return "--cbt-steps must be at least 1" }
            return nil
        }
    }

    /// A training stage stopped on a signal (its checkpoint is saved; a re-run resumes it).
    public struct Interrupted: Error {}

    /// What a run produced: the table (also printed by the command) and the time per stage.
    public struct Outcome {
        public var header: [String]
        public var rows: [[String]]
        public var timings: [(stage: String, seconds: Double)]
        public var seconds: Double
        public var report: String
    }

    public let options: Options
    public init(options: Options) { self.options = options }

    public func path(_ artifact: DemoArtifact) -> String { path(artifact.relativePath) }
    func path(_ relative: String) -> String { (options.out as NSString).appendingPathComponent(relative) }
    func recipePath(_ name: String) -> String { (options.root as NSString).appendingPathComponent("Recipes/" + name) }

    /// A result from its file, or computed and saved there (atomically).
    func cached<T: Codable>(_ artifact: DemoArtifact, valid: (T) -> Bool = { _ in true }, _ make: () throws -> T) throws -> T {
        let file = path(artifact)
        if FileManager.default.fileExists(atPath: file), let value = try? JSON.decode(T.self, from: file), valid(value) { return value }
        let value = try make()
        try AtomicFile.createDirectory((file as NSString).deletingLastPathComponent)
        try JSON.write(value, to: file)
        return value
    }

    /// `artifact` is being recomputed: everything downstream of it is stale.
    func invalidate(downstreamOf artifact: DemoArtifact) {
        for a in artifact.downstream { try? FileManager.default.removeItem(atPath: path(a)) }
    }

    /// The recipe of a stage with the demo's overrides, checked.
    func recipe<R: DemoStageRecipe>(_ type: R.Type, _ file: String, _ overrides: [String]) throws -> R {
        do {
            let recipe = try RecipeLoader.load(type, file: recipePath(file), overrides: overrides)
            if let p = recipe.problem() { throw VideoBertError(p, file: recipePath(file)) }
            return recipe
        } catch let e as RecipeError {
            throw VideoBertError(e.message, file: e.file)
        }
    }

    /// Runs every stage that has no output yet (one demo per folder at a time:
    /// docs/RELIABILITY.md, "concurrency").
    public func run() throws -> Outcome {
        if let p = options.problem() { throw VideoBertError(p) }
        try FolderLock.acquire(options.out)
        return try runStages()
    }

    func runStages() throws -> Outcome {
        let started = Date()
        let vocabPath = (options.root as NSString).appendingPathComponent("Vocab/bert-base-uncased.txt")
        guard FileManager.default.fileExists(atPath: vocabPath) else {
            throw VideoBertError("BERT vocabulary missing: run tools/setup (or pass --root to the repository)", file: vocabPath)
        }
        var timings: [(stage: String, seconds: Double)] = []
        func stage(_ name: String, _ body: () throws -> Void) rethrows {
            let t0 = Date()
            logLine("demo: \(name)")
            try body()
            timings.append((name, Date().timeIntervalSince(t0)))
        }

        // 1. corpus
        try stage("corpus") {
            var corpusOptions = DemoCorpus.Options()
            corpusOptions.videos = options.videos
            corpusOptions.seed = options.seed
            (corpusOptions.width, corpusOptions.height) = (options.width, options.height)
            let progress = ProgressReporter(label: "corpus", total: options.videos, unit: "videos")
            try DemoCorpus(options: corpusOptions).generate(into: path(.corpus), workers: 2, encode: DemoCorpus.encodeH264) { _, _ in progress.advance() }
            progress.finish()
        }
        let annotationsPath = path("corpus/annotations.json")
        let labelsPath = path("corpus/labels.json")

        // 2. tokens
        try stage("tokens") {
            let recipe = try recipe(TokenizeRecipe.self, "tokenize-demo.yaml", ["text.vocab=\(vocabPath)"] + options.tokenizeSet)
            let items = try CorpusSource.discover(path("corpus/manifest.jsonl"))
            let (_, failures) = try CorpusTokenizer(recipe: recipe, items: items, out: path(.tokens)).run()
            if !failures.isEmpty {
                throw VideoBertError("\(failures.count) demo videos failed to tokenize (see failures.jsonl)", file: path(.tokens))
            }
        }
        let corpus = try TokenizedCorpus(path: path(.tokens))
        let taskCorpus = TaskCorpus(corpus)

        // 3. words
        try stage("words") {
            let sheets = try VisualWordSheets(corpus: corpus)
            _ = try sheets.write(to: path(.words), perWord: 6, framesPerClip: 4, side: 32)
        }

        var results = DemoResults()
        // 4. pretrain
        var pretrained = ""
        try stage("pretrain") {
            var overrides = ["corpus=\(path(.tokens))", "out=\(path(.pretrain))"]
            if let steps = options.steps { overrides.append("train.steps=\(steps)") }
            let recipe = try recipe(PretrainRecipe.self, "demo.yaml", overrides + options.pretrainSet)
            let checkpoints = path("pretrain/checkpoints")
            pretrained = (checkpoints as NSString).appendingPathComponent(Trainer.checkpointName(recipe.train.steps))
            if let latest = Trainer.latestCheckpoint(in: checkpoints), !FileManager.default.fileExists(atPath: pretrained),
               (latest as NSString).lastPathComponent > Trainer.checkpointName(recipe.train.steps) {
                throw VideoBertError("holds a pretraining run longer than \(recipe.train.steps) steps; pass its --steps or choose another --out", file: path(.pretrain))
            }
            if FileManager.default.fileExists(atPath: pretrained) {
                results.pretrain = try cached(.pretrainEval) { try Trainer(recipe: recipe, resume: true).evaluate() }
            } else {
                invalidate(downstreamOf: .pretrain)
                let trainer = try Trainer(recipe: recipe, resume: Trainer.latestCheckpoint(in: checkpoints) != nil)
                let summary = try trainer.run()
                if summary.stoppedEarly { throw Interrupted() }
                results.pretrain = try cached(.pretrainEval) { summary.eval }
            }
        }

        // 5. cbt
        var cbtCheckpoint: String?
        if !options.skipCBT {
            try stage("cbt") {
                let steps = options.cbtSteps
                let recipe = try recipe(CBTRecipe.self, "cbt-demo.yaml",
                                        ["corpus=\(path(.tokens))", "out=\(path(.cbt))", "train.steps=\(steps)",
                                         "train.warmup_steps=\(max(1, steps / 10))", "eval.every=0", "checkpoint.every=\(steps)"] + options.cbtSet)
                let checkpoints = path("cbt/checkpoints")
                let finished = (checkpoints as NSString).appendingPathComponent(Trainer.checkpointName(steps))
                cbtCheckpoint = finished
                if FileManager.default.fileExists(atPath: finished) {
                    results.cbt = try cached(.cbtEval) { try CBTTrainer(recipe: recipe, resume: true).evaluate() }
                } else {
                    invalidate(downstreamOf: .cbt)
                    let trainer = try CBTTrainer(recipe: recipe, resume: Trainer.latestCheckpoint(in: checkpoints) != nil)
                    let summary = try trainer.run()
                    if summary.stoppedEarly { throw Interrupted() }
                    results.cbt = try cached(.cbtEval) { summary.eval }
                }
            }
        }

        let notes = try StepAnnotations.load(annotationsPath)
        let split = "test"
        // 6. zero-shot
        try stage("zero-shot") {
            // The demo's narration is unpunctuated, like ASR: the template ends without the
            // paper's " ." (a token never seen after a step's noun in this corpus).
            var zeroShotOptions = ZeroShotOptions()
            zeroShotOptions.template = "now let's {verb} the {noun}"
            results.zeroShot = try cached(.zeroShot, valid: { $0.options == zeroShotOptions }) {
                invalidate(downstreamOf: .zeroShot)
                let model = try TaskModel(checkpoint: pretrained, corpus: taskCorpus)
                return try ZeroShotEvaluation.run(model: model, corpus: taskCorpus, annotations: notes, labels: try LabelList.load(labelsPath),
                                                  split: split, trainSplit: "train", options: zeroShotOptions)
            }
        }

        // 7. caption: fine-tune, then generate — from the VideoBERT checkpoint, and from the CBT
        // checkpoint's clip features.
        /// Fine-tunes a captioner (or, with target next-step, a forecaster) unless its last
        /// checkpoint is there; returns the training summary and the checkpoint.
        func fineTune(_ folder: DemoArtifact, training: DemoArtifact, init initFrom: String, recipeFile: String, sets: [String],
                      target: CaptionTarget = .caption) throws -> (CaptionFineTuner.Summary, String) {
            var overrides = ["init=\(initFrom)", "corpus=\(path(.tokens))", "annotations=\(annotationsPath)", "out=\(path(folder))"]
            if let captionSteps = options.captionSteps { overrides.append("train.steps=\(captionSteps)") }
            var recipe = try recipe(CaptionRecipe.self, recipeFile, overrides + sets)
            recipe.target = target
            let checkpoints = (path(folder) as NSString).appendingPathComponent("checkpoints")
            let tuned = (checkpoints as NSString).appendingPathComponent(CheckpointFiles.name(step: recipe.train.steps))
            if !FileManager.default.fileExists(atPath: tuned) { invalidate(downstreamOf: folder) }
            let trainingSummary = try cached(training) { () throws -> CaptionFineTuner.Summary in
                let summary = try CaptionFineTuner(recipe: recipe, resume: CheckpointFiles.latest(in: checkpoints) != nil).run()
                if summary.stoppedEarly { throw Interrupted() }
                return summary
            }
            return (trainingSummary, tuned)
        }
        func captioner(_ folder: DemoArtifact, training: DemoArtifact, report: DemoArtifact, init initFrom: String, recipeFile: String,
                       sets: [String], extra: [(String, CaptionPredictions)]) throws -> (CaptionFineTuner.Summary, CaptionReport) {
            let (trainingSummary, tuned) = try fineTune(folder, training: training, init: initFrom, recipeFile: recipeFile, sets: sets)
            let captionReport = try cached(report) {
                let model = try TaskModel(checkpoint: tuned, corpus: taskCorpus, allowClipFeatures: true)
                return try CaptionTask.run(model: model, corpus: taskCorpus, annotations: notes, split: split, trainSplit: "train",
                                           options: GenerationOptions(), extra: extra).report
            }
            return (trainingSummary, captionReport)
        }
        try stage("caption") {
            let zeroShotCaptions = try CaptionPredictions(results.zeroShot!.captionResults)
            (results.captionTraining, results.caption) = try captioner(.caption, training: .captionTraining, report: .captionReport, init: pretrained,
                                                                       recipeFile: "finetune-caption-demo.yaml", sets: options.captionSet,
                                                                       extra: [("zero-shot template (pretrained model)", zeroShotCaptions)])
        }
        if let cbtCheckpoint {
            try stage("caption-cbt") {
                (results.captionCBTTraining, results.captionCBT) = try captioner(.captionCBT, training: .captionCBTTraining, report: .captionCBTReport,
                                                                                 init: cbtCheckpoint, recipeFile: "finetune-caption-cbt-demo.yaml",
                                                                                 sets: options.captionCBTSet, extra: [])
            }
        }

        // 8. next-step
        try stage("next-step") {
            let model = try TaskModel(checkpoint: pretrained, corpus: taskCorpus)
            results.forecast = try cached(.nextStepVisual) {
                try VisualForecast.run(model: model, corpus: taskCorpus, split: split, trainSplit: "train", options: ForecastOptions())
            }
            results.nextText = try cached(.nextStepText) {
                var textOptions = NextStepTextOptions()
                textOptions.candidates = options.candidates
                return try NextStepRanking.run(model: model, corpus: taskCorpus, split: split, trainSplit: "train", options: textOptions)
            }
        }

        // 8b. next-step, fine-tuned: the forecaster (the captioner trained on the next step's sentence)
        try stage("next-step-finetune") {
            let tuned: String
            (results.forecasterTraining, tuned) = try fineTune(.forecaster, training: .forecasterTraining, init: pretrained,
                                                               recipeFile: "finetune-next-step-demo.yaml", sets: options.nextStepSet, target: .nextStep)
            results.forecaster = try cached(.forecasterReport) {
                var forecastOptions = NextStepForecastOptions()
                forecastOptions.candidates = options.candidates
                let model = try TaskModel(checkpoint: tuned, corpus: taskCorpus, allowClipFeatures: true)
                return try NextStepForecast.run(model: model, corpus: taskCorpus, annotations: notes, split: split, trainSplit: "train",
                                                options: forecastOptions)
            }
        }

        // 9. retrieval
        try stage("retrieval") {
            results.retrieval = try cached(.retrieval) {
                let model = try TaskModel(checkpoint: pretrained, corpus: taskCorpus)
                return try TextVideoRetrieval.run(scorer: AlignmentHeadScorer(model: model), checkpoint: pretrained, corpus: taskCorpus, split: split)
            }
        }

        let rows = results.tableRows(words: corpus.index.visualVocab.words)
        let report = DemoReport(pipeline: self, corpus: corpus, notes: notes, results: results)
        try report.write(header: DemoResults.header, rows: rows, timings: timings, to: path("report.html"))
        return Outcome(header: DemoResults.header, rows: rows, timings: timings, seconds: Date().timeIntervalSince(started), report: path("report.html"))
    }
}

/// A stage recipe: a recipe section that checks itself after overrides.
protocol DemoStageRecipe: RecipeSection { func problem() -> String? }
extension TokenizeRecipe: DemoStageRecipe {}
extension PretrainRecipe: DemoStageRecipe {}
extension CBTRecipe: DemoStageRecipe {}
extension CaptionRecipe: DemoStageRecipe {}
