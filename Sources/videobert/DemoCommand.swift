import ArgumentParser
import Demo
import Foundation
import Recipe
import Report
import Tensor
import Tokenize
import Tasks
import Train

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the whole toolkit on the built-in demo corpus, with no data of your own.",
        discussion: """
        Stages (each reuses its output when it is already there, so a re-run only does what is missing):
          1. corpus     render cooking videos with narration         <out>/corpus
          2. tokens     Recipes/tokenize-demo.yaml                   <out>/tokens
          3. words      contact sheets of the visual words           <out>/words
          4. pretrain   VideoBERT with Recipes/demo.yaml             <out>/pretrain
          5. cbt        a short CBT run, Recipes/cbt-demo.yaml       <out>/cbt
          6. zero-shot  verb/noun classification, template captions  <out>/results
          7. caption    fine-tune a captioner, caption test steps    <out>/caption
                        (Recipes/finetune-caption-demo.yaml); and one
                        from CBT clip features                       <out>/caption-cbt
                        (Recipes/finetune-caption-cbt-demo.yaml)
          8. next-step  the next clip's visual words and sentence
          9. retrieval  text→video and video→text, test segments
        then a results table here (pretraining on the val videos, the tasks on the test videos, each \
        beside its baselines) and <out>/report.html.

        Examples:
          videobert demo --out demo
          videobert demo --out demo --skip-cbt  # VideoBERT only
          videobert demo --out small --videos 120 --steps 600
          videobert demo --out wide --pretrain-set model.hidden_size=256 \\
              --pretrain-set model.num_heads=8
        """)

    @Option(help: "Output folder.") var out: String = "demo"
    @Option(help: "Videos in the demo corpus.") var videos: Int = 400
    @Option(help: "Frame size of the rendered videos (WxH).") var size: String = "64x64"
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Pretraining steps (Recipes/demo.yaml's train.steps unless given).") var steps: Int?
    @Option(help: "CBT steps (a short run; Recipes/cbt-demo.yaml trains longer).") var cbtSteps: Int = 200
    @Option(help: "Caption fine-tuning steps (Recipes/finetune-caption-demo.yaml's unless given).") var captionSteps: Int?
    @Flag(help: "Leave out the CBT stage.") var skipCbt = false
    @Option(help: "Next-step sentence candidates per query (the true one among them).") var candidates: Int = 10
    @Option(name: .customLong("tokenize-set"), help: "Override a value of Recipes/tokenize-demo.yaml (repeatable).") var tokenizeSet: [String] = []
    @Option(name: .customLong("pretrain-set"), help: "Override a value of Recipes/demo.yaml (repeatable).") var pretrainSet: [String] = []
    @Option(name: .customLong("cbt-set"), help: "Override a value of Recipes/cbt-demo.yaml (repeatable).") var cbtSet: [String] = []
    @Option(name: .customLong("caption-set"), help: "Override a value of Recipes/finetune-caption-demo.yaml (repeatable).") var captionSet: [String] = []
    @Option(name: .customLong("caption-cbt-set"), help: "Override a value of Recipes/finetune-caption-cbt-demo.yaml (repeatable).") var captionCbtSet: [String] = []
    @Option(help: "Where Recipes/ and Vocab/ are (default: the current folder).") var root: String = "."

    func path(_ name: String) -> String { (out as NSString).appendingPathComponent(name) }

    func validate() throws {
        guard videos >= 20 else { throw ValidationError("--videos must be at least 20 (train, val and test splits need videos)") }
        guard parseSize(size) != nil else { throw ValidationError("--size must be WxH, e.g. 64x64") }
        guard candidates >= 2 else { throw ValidationError("--candidates must be at least 2") }
        guard cbtSteps >= 1 else { throw ValidationError("--cbt-steps must be at least 1") }
    }

    func parseSize(_ s: String) -> (Int, Int)? {
        let p = s.lowercased().split(separator: "x").compactMap { Int($0) }
        guard p.count == 2, p[0] >= 16, p[1] >= 16 else { return nil }
        return (p[0], p[1])
    }

    /// What the downstream stages measured (saved in <out>/results/ so a re-run reuses it).
    struct Results {
        var pretrain: [String: Double] = [:]
        var cbt: [String: Double]?
        var zeroShot: ZeroShotReport?
        var caption: CaptionReport?
        var captionTraining: CaptionFineTuner.Summary?
        /// The captioner fine-tuned from the CBT checkpoint (clip features in).
        var captionCBT: CaptionReport?
        var captionCBTTraining: CaptionFineTuner.Summary?
        var forecast: ForecastReport?
        var nextText: NextStepTextReport?
        var retrieval: RetrievalReport?
    }

    func run() throws {
        // One demo per folder at a time (docs/RELIABILITY.md, "concurrency").
        try FolderLock.acquire(out)
        do {
            try runStages()
        } catch let e as RecipeError {
            throw VideoBertError(e.message, file: e.file)
        }
    }

    func runStages() throws {
        let started = Date()
        let recipesDir = (root as NSString).appendingPathComponent("Recipes")
        func recipePath(_ name: String) -> String { (recipesDir as NSString).appendingPathComponent(name) }
        let vocabPath = (root as NSString).appendingPathComponent("Vocab/bert-base-uncased.txt")
        guard FileManager.default.fileExists(atPath: vocabPath) else {
            throw VideoBertError("BERT vocabulary missing: run tools/setup (or pass --root to the repository)", file: vocabPath)
        }
        var timings: [(String, Double)] = []
        func stage(_ name: String, _ body: () throws -> Void) rethrows {
            let t0 = Date()
            logLine("demo: \(name)")
            try body()
            timings.append((name, Date().timeIntervalSince(t0)))
        }
        let resultsDir = path("results")
        /// A stage's result from <out>/results/<name>.json, or computed and saved there.
        func cached<T: Codable>(_ name: String, valid: (T) -> Bool = { _ in true }, _ make: () throws -> T) throws -> T {
            let file = (resultsDir as NSString).appendingPathComponent(name + ".json")
            if FileManager.default.fileExists(atPath: file), let value = try? JSON.decode(T.self, from: file), valid(value) { return value }
            let value = try make()
            try AtomicFile.createDirectory(resultsDir)
            try JSON.write(value, to: file)
            return value
        }
        /// Results computed from a model that is being retrained are stale.
        func invalidate(_ names: [String]) {
            for n in names { try? FileManager.default.removeItem(atPath: (resultsDir as NSString).appendingPathComponent(n + ".json")) }
        }

        // 1. corpus
        try stage("corpus") {
            var options = DemoCorpus.Options()
            options.videos = videos
            options.seed = seed
            (options.width, options.height) = parseSize(size)!
            let progress = ProgressReporter(label: "corpus", total: videos, unit: "videos")
            try DemoCorpus(options: options).generate(into: path("corpus"), workers: 2, encode: DemoCorpusCommand.encode) { _, _ in progress.advance() }
            progress.finish()
        }
        let annotationsPath = path("corpus/annotations.json")
        let labelsPath = path("corpus/labels.json")

        // 2. tokens
        var tokenSummary: CorpusTokenizer.Summary?
        try stage("tokens") {
            let recipe = try RecipeLoader.load(TokenizeRecipe.self, file: recipePath("tokenize-demo.yaml"), overrides: ["text.vocab=\(vocabPath)"] + tokenizeSet)
            let items = try CorpusSource.discover(path("corpus/manifest.jsonl"))
            let (summary, failures) = try CorpusTokenizer(recipe: recipe, items: items, out: path("tokens")).run()
            if !failures.isEmpty {
                throw VideoBertError("\(failures.count) demo videos failed to tokenize (see failures.jsonl)", file: path("tokens"))
            }
            tokenSummary = summary
        }
        let corpus = try TokenizedCorpus(path: path("tokens"))
        let taskCorpus = TaskCorpus(corpus)

        // 3. words
        try stage("words") {
            let sheets = try VisualWordSheets(corpus: corpus)
            _ = try sheets.write(to: path("words"), perWord: 6, framesPerClip: 4, side: 32)
        }

        var results = Results()
        // 4. pretrain
        var pretrained = ""
        try stage("pretrain") {
            var overrides = ["corpus=\(path("tokens"))", "out=\(path("pretrain"))"]
            if let steps { overrides.append("train.steps=\(steps)") }
            let recipe = try RecipeLoader.load(PretrainRecipe.self, file: recipePath("demo.yaml"), overrides: overrides + pretrainSet)
            if let p = recipe.problem() { throw VideoBertError(p, file: recipePath("demo.yaml")) }
            pretrained = (path("pretrain/checkpoints") as NSString).appendingPathComponent(Trainer.checkpointName(recipe.train.steps))
            if let latest = Trainer.latestCheckpoint(in: path("pretrain/checkpoints")), !FileManager.default.fileExists(atPath: pretrained),
               (latest as NSString).lastPathComponent > Trainer.checkpointName(recipe.train.steps) {
                throw VideoBertError("holds a pretraining run longer than \(recipe.train.steps) steps; pass its --steps or choose another --out", file: path("pretrain"))
            }
            if FileManager.default.fileExists(atPath: pretrained) {
                results.pretrain = try cached("pretrain") { try Trainer(recipe: recipe, resume: true).evaluate() }
            } else {
                invalidate(["pretrain", "zero-shot", "caption-training", "caption", "next-step-visual", "next-step-text", "retrieval"])
                try? FileManager.default.removeItem(atPath: path("caption"))
                let trainer = try Trainer(recipe: recipe, resume: Trainer.latestCheckpoint(in: path("pretrain/checkpoints")) != nil)
                let summary = try trainer.run()
                if summary.stoppedEarly { throw ExitCode(130) }
                results.pretrain = try cached("pretrain") { summary.eval }
            }
        }

        // 5. cbt
        var cbtCheckpoint: String?
        if !skipCbt {
            try stage("cbt") {
                let recipe = try RecipeLoader.load(CBTRecipe.self, file: recipePath("cbt-demo.yaml"),
                                                   overrides: ["corpus=\(path("tokens"))", "out=\(path("cbt"))", "train.steps=\(cbtSteps)",
                                                               "train.warmup_steps=\(max(1, cbtSteps / 10))", "eval.every=0",
                                                               "checkpoint.every=\(cbtSteps)"] + cbtSet)
                if let p = recipe.problem() { throw VideoBertError(p, file: recipePath("cbt-demo.yaml")) }
                let finished = (path("cbt/checkpoints") as NSString).appendingPathComponent(Trainer.checkpointName(cbtSteps))
                cbtCheckpoint = finished
                if FileManager.default.fileExists(atPath: finished) {
                    results.cbt = try cached("cbt") { try CBTTrainer(recipe: recipe, resume: true).evaluate() }
                } else {
                    invalidate(["cbt", "caption-cbt-training", "caption-cbt"])
                    try? FileManager.default.removeItem(atPath: path("caption-cbt"))
                    let trainer = try CBTTrainer(recipe: recipe, resume: Trainer.latestCheckpoint(in: path("cbt/checkpoints")) != nil)
                    let summary = try trainer.run()
                    if summary.stoppedEarly { throw ExitCode(130) }
                    results.cbt = try cached("cbt") { summary.eval }
                }
            }
        }

        let notes = try StepAnnotations.load(annotationsPath)
        let split = "test"
        // 6. zero-shot
        try stage("zero-shot") {
            // The demo's narration is unpunctuated, like ASR: the template ends without the
            // paper's " ." (a token never seen after a step's noun in this corpus).
            var options = ZeroShotOptions()
            options.template = "now let's {verb} the {noun}"
            results.zeroShot = try cached("zero-shot", valid: { $0.options == options }) {
                invalidate(["caption"])   // it scores the zero-shot captions as a baseline
                let model = try TaskModel(checkpoint: pretrained, corpus: taskCorpus)
                return try ZeroShotEvaluation.run(model: model, corpus: taskCorpus, annotations: notes, labels: try LabelList.load(labelsPath),
                                                  split: split, trainSplit: "train", options: options)
            }
        }

        // 7. caption: fine-tune, then generate — from the VideoBERT checkpoint, and from the CBT
        // checkpoint's clip features. `name` is the run folder and the results' name.
        func captioner(_ name: String, init initFrom: String, recipeFile: String, sets: [String],
                       extra: [(String, CaptionPredictions)]) throws -> (CaptionFineTuner.Summary, CaptionReport) {
            var overrides = ["init=\(initFrom)", "corpus=\(path("tokens"))", "annotations=\(annotationsPath)", "out=\(path(name))"]
            if let captionSteps { overrides.append("train.steps=\(captionSteps)") }
            let file = recipePath(recipeFile)
            let recipe = try RecipeLoader.load(CaptionRecipe.self, file: file, overrides: overrides + sets)
            if let p = recipe.problem() { throw VideoBertError(p, file: file) }
            let checkpoints = path(name + "/checkpoints")
            let tuned = (checkpoints as NSString).appendingPathComponent(CheckpointFiles.name(step: recipe.train.steps))
            if !FileManager.default.fileExists(atPath: tuned) { invalidate([name + "-training", name]) }
            let training = try cached(name + "-training") { () throws -> CaptionFineTuner.Summary in
                let summary = try CaptionFineTuner(recipe: recipe, resume: CheckpointFiles.latest(in: checkpoints) != nil).run()
                if summary.stoppedEarly { throw ExitCode(130) }
                return summary
            }
            let report = try cached(name) {
                let model = try TaskModel(checkpoint: tuned, corpus: taskCorpus, allowClipFeatures: true)
                return try CaptionTask.run(model: model, corpus: taskCorpus, annotations: notes, split: split, trainSplit: "train",
                                           options: GenerationOptions(), extra: extra).report
            }
            return (training, report)
        }
        try stage("caption") {
            let zeroShotCaptions = try CaptionPredictions(results.zeroShot!.captionResults)
            (results.captionTraining, results.caption) = try captioner("caption", init: pretrained, recipeFile: "finetune-caption-demo.yaml",
                                                                       sets: captionSet, extra: [("zero-shot template (pretrained model)", zeroShotCaptions)])
        }
        if let cbtCheckpoint {
            try stage("caption-cbt") {
                (results.captionCBTTraining, results.captionCBT) = try captioner("caption-cbt", init: cbtCheckpoint,
                                                                                 recipeFile: "finetune-caption-cbt-demo.yaml", sets: captionCbtSet, extra: [])
            }
        }

        // 8. next-step
        try stage("next-step") {
            let model = try TaskModel(checkpoint: pretrained, corpus: taskCorpus)
            results.forecast = try cached("next-step-visual") {
                try VisualForecast.run(model: model, corpus: taskCorpus, split: split, trainSplit: "train", options: ForecastOptions())
            }
            results.nextText = try cached("next-step-text") {
                var options = NextStepTextOptions()
                options.candidates = candidates
                return try NextStepRanking.run(model: model, corpus: taskCorpus, split: split, trainSplit: "train", options: options)
            }
        }

        // 9. retrieval
        try stage("retrieval") {
            results.retrieval = try cached("retrieval") {
                let model = try TaskModel(checkpoint: pretrained, corpus: taskCorpus)
                return try TextVideoRetrieval.run(scorer: AlignmentHeadScorer(model: model), checkpoint: pretrained, corpus: taskCorpus, split: split)
            }
        }

        let header = ["task", "metric", "videobert", "baseline", "chance"]
        let rows = tableRows(results, words: corpus.index.visualVocab.words)
        print("")
        printTable(header: header, rows: rows)
        print("")
        for (name, secs) in timings { print(name.padding(toLength: 12, withPad: " ", startingAt: 0) + String(format: "%6.0f s", secs)) }
        print("total       " + String(format: "%6.0f s", Date().timeIntervalSince(started)) + " → " + out)

        try writeReport(corpus: corpus, notes: notes, tokenSummary: tokenSummary, results: results, header: header, rows: rows, timings: timings)
        print("report: \(path("report.html"))")
    }

    /// The results table: each metric on the held-out test videos beside its baseline and chance.
    func tableRows(_ r: Results, words: Int) -> [[String]] {
        func pct(_ v: Double?) -> String { v.map { $0.isFinite ? String(format: "%.1f%%", 100 * $0) : "—" } ?? "—" }
        func num(_ v: Double?, _ f: String = "%.2f") -> String { v.map { String(format: f, $0) } ?? "—" }
        var rows: [[String]] = []
        let p = r.pretrain
        rows.append(["pretraining (val)", "MLM accuracy (masked WordPieces)", pct(p["mlm_acc"]), "—", "—"])
        rows.append(["", "MFM top-5 (masked visual words)", pct(p["mfm_top5"]), "—", pct(5 / Double(words))])
        rows.append(["", "text–video alignment accuracy", pct(p["align_acc"]), "—", "50.0%"])
        if let c = r.cbt {
            rows.append(["CBT (val)", "masked-frame NCE accuracy", pct(c["nce_acc"]), "—", pct(c["nce_chance"])])
            rows.append(["", "text→video R@5 (pooled embeddings)", pct(c["t2v_r5"]), "—", pct(c["chance_r5"])])
            rows.append(["", "video→text R@5 (pooled embeddings)", pct(c["v2t_r5"]), "—", pct(c["chance_r5"])])
        }
        if let z = r.zeroShot {
            rows.append(["zero-shot (test)", "verb top-1 / top-5", pct(z.verb.model.top1) + " / " + pct(z.verb.model.top5),
                         pct(z.verb.frequency.top1) + " / " + pct(z.verb.frequency.top5) + " (frequency)",
                         pct(z.verb.chance.top1) + " / " + pct(z.verb.chance.top5)])
            rows.append(["", "noun top-1 / top-5", pct(z.noun.model.top1) + " / " + pct(z.noun.model.top5),
                         pct(z.noun.frequency.top1) + " / " + pct(z.noun.frequency.top5) + " (frequency)",
                         pct(z.noun.chance.top1) + " / " + pct(z.noun.chance.top5)])
        }
        if let c = r.caption, let model = c.rows.first {
            let frequent = c.rows.first { $0.system.hasPrefix("most frequent") }
            let template = c.rows.first { $0.system.hasPrefix("zero-shot template") }
            rows.append(["captioning (test)", "fine-tuned: BLEU-4 / METEOR / CIDEr",
                         num(model.scores.bleu4) + " / " + num(model.scores.meteor) + " / " + num(model.scores.cider),
                         frequent.map { num($0.scores.bleu4) + " / " + num($0.scores.meteor) + " / " + num($0.scores.cider) + " (frequent caption)" } ?? "—", "—"])
            if let t = template {
                rows.append(["", "zero-shot template: BLEU-4 / METEOR / CIDEr", num(t.scores.bleu4) + " / " + num(t.scores.meteor) + " / " + num(t.scores.cider), "", "—"])
            }
        }
        if let c = r.captionCBT, let model = c.rows.first {
            let frequent = c.rows.first { $0.system.hasPrefix("most frequent") }
            rows.append([r.caption == nil ? "captioning (test)" : "", "fine-tuned from CBT (clip features): BLEU-4 / METEOR / CIDEr",
                         num(model.scores.bleu4) + " / " + num(model.scores.meteor) + " / " + num(model.scores.cider),
                         frequent.map { num($0.scores.bleu4) + " / " + num($0.scores.meteor) + " / " + num($0.scores.cider) + " (frequent caption)" } ?? "—", "—"])
        }
        if let f = r.forecast {
            let o = f.overall
            rows.append(["next step (test)", "next clip's visual words: top-5", pct(o.model.top5),
                         pct(o.frequency.top5) + " (frequency), " + pct(o.persistence.top5) + " (persistence)", pct(o.chance.top5)])
        }
        if let t = r.nextText {
            rows.append(["", "next sentence among \(t.options.candidates): accuracy@1", pct(t.model.accuracyAt1),
                         pct(t.unigram.accuracyAt1) + " (unigram LM)", pct(t.chance.accuracyAt1)])
        }
        if let v = r.retrieval {
            rows.append(["retrieval (test, \(v.segments) segments)", "text→video R@1 / R@5 / median rank",
                         pct(v.textToVideo.recallAt1) + " / " + pct(v.textToVideo.recallAt5) + " / " + num(v.textToVideo.medianRank, "%.0f"), "—",
                         pct(v.chance.recallAt1) + " / " + pct(v.chance.recallAt5) + " / " + num(v.chance.medianRank, "%.1f")])
            rows.append(["", "video→text R@1 / R@5 / median rank",
                         pct(v.videoToText.recallAt1) + " / " + pct(v.videoToText.recallAt5) + " / " + num(v.videoToText.medianRank, "%.0f"), "—",
                         pct(v.chance.recallAt1) + " / " + pct(v.chance.recallAt5) + " / " + num(v.chance.medianRank, "%.1f")])
        }
        return rows
    }

    func printTable(header: [String], rows: [[String]]) {
        let all = [header] + rows
        let widths = (0..<header.count).map { c in all.map { $0[c].count }.max()! }
        func line(_ r: [String]) -> String { zip(r, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ") }
        print(line(header))
        print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
        for r in rows { print(line(r)) }
    }

    func writeReport(corpus: TokenizedCorpus, notes: StepAnnotations, tokenSummary: CorpusTokenizer.Summary?, results: Results,
                     header: [String], rows: [[String]], timings: [(String, Double)]) throws {
        var report = HTMLReport(title: "videobert demo")
        let idx = corpus.index
        report.paragraph("A generated corpus of \(idx.counts.videos) cooking videos (\(idx.counts.clips) clips of \(idx.clipSeconds) s, \(idx.counts.segments) segments), tokenized into \(idx.visualVocab.words) visual words and BERT WordPieces, then used to pretrain VideoBERT (and, for comparison, CBT) and to evaluate it downstream. Pretraining numbers are on the val videos, every downstream number on the test videos, beside its baselines.")
        report.heading("Results")
        report.table(header: header, rows: rows)
        report.table(header: ["stage", "seconds"], rows: timings.map { [$0.0, String(format: "%.0f", $0.1)] }, caption: "Time per stage (this run; reused stages take ~0 s)")

        // Frames: the middle frame of a clip, from the stored low-resolution frames.
        let frames = try? NPY.read(corpus.path + "/clip_frames.npy")
        let frameBytes = try frames.flatMap { $0.shape.count == 5 ? try $0.values(UInt8.self) : nil }
        func clipImage(_ clip: Int) -> RGBImage? {
            guard let frames, let frameBytes, clip >= 0, clip < frames.shape[0] else { return nil }
            let (f, h, w) = (frames.shape[1], frames.shape[2], frames.shape[3])
            let o = (clip * f + f / 2) * h * w * 3
            return RGBImage(width: w, height: h, pixels: Array(frameBytes[o..<(o + h * w * 3)]))
        }
        let videoIndex = Dictionary(uniqueKeysWithValues: idx.videos.enumerated().map { ($0.element.id, $0.offset) })
        /// The clip of a video playing at time t (the middle of a step).
        func clip(video: String, at t: Double) -> Int? {
            guard let v = videoIndex[video] else { return nil }
            let info = idx.videos[v]
            for c in info.clipBegin..<info.clipEnd where Double(corpus.clipTimes[2 * c]) <= t && t < Double(corpus.clipTimes[2 * c + 1]) { return c }
            return info.clipEnd > info.clipBegin ? info.clipBegin : nil
        }
        let stepByID = Dictionary(notes.steps.map { ("\($0.video)#\($0.index)", $0) }, uniquingKeysWith: { a, _ in a })
        func stepImage(_ id: String) -> RGBImage? {
            guard let s = stepByID[id], let c = clip(video: s.video, at: ((s.start ?? 0) + (s.end ?? s.start ?? 0)) / 2) else { return nil }
            return clipImage(c)
        }
        /// One picture per visual word: the middle frame of the clip nearest its centroid.
        let sheets = try? VisualWordSheets(corpus: corpus)
        var wordIcons: [Int: RGBImage] = [:]
        func strip(_ words: [Int32]) -> RGBImage? {
            guard let sheets else { return nil }
            let missing = Array(Set(words.map(Int.init)).filter { wordIcons[$0] == nil })
            if !missing.isEmpty, let nearest = try? sheets.nearestClips(words: missing, perWord: 1) {
                for (w, clips) in zip(missing, nearest) { if let c = clips.first, let img = clipImage(c) { wordIcons[w] = img } }
            }
            let icons = words.compactMap { wordIcons[Int($0)] }
            guard let first = icons.first else { return nil }
            let (w, h) = (first.width, first.height)
            var pixels = [UInt8](repeating: 255, count: (w + 2) * icons.count * h * 3)
            let rowWidth = (w + 2) * icons.count
            for (i, icon) in icons.enumerated() {
                for y in 0..<h {
                    for x in 0..<w {
                        for k in 0..<3 { pixels[(y * rowWidth + i * (w + 2) + x) * 3 + k] = icon.pixels[(y * w + x) * 3 + k] }
                    }
                }
            }
            return RGBImage(width: rowWidth, height: h, pixels: pixels)
        }

        // Captions.
        if let c = results.caption {
            report.heading("Captions: fine-tuned model against the reference")
            report.paragraph("Test steps, each with a frame from its middle, the fine-tuned model's caption (greedy) and the annotated sentence. Zero-shot template captions (\"now let's <verb> the <noun>\" filled by the pretrained model) for the same steps follow.")
            let zeroShot = Dictionary((results.zeroShot?.predictions ?? []).map { ($0.imageID, $0.caption) }, uniquingKeysWith: { a, _ in a })
            let fromCBT = Dictionary((results.captionCBT?.examples ?? []).map { ($0.imageID, $0.caption) }, uniquingKeysWith: { a, _ in a })
            for e in c.examples {
                var text = "model: \(e.caption) | reference: \(e.references.first ?? "") | zero-shot: \(zeroShot[e.imageID] ?? "—")"
                if results.captionCBT != nil { text += " | from CBT: \(fromCBT[e.imageID] ?? "—")" }
                if let img = stepImage(e.imageID) { report.figure(img, caption: text, scale: 3) } else { report.paragraph(e.imageID + ": " + text) }
            }
            report.table(header: ["system", "steps", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr"],
                         rows: c.rows.map { [$0.system, "\($0.images)", String(format: "%.3f", $0.scores.bleu4), String(format: "%.3f", $0.scores.meteor),
                                              String(format: "%.3f", $0.scores.rougeL), String(format: "%.3f", $0.scores.cider)] },
                         caption: "Caption scores on the test steps")
            if let cbt = results.captionCBT {
                report.table(header: ["system", "steps", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr"],
                             rows: cbt.rows.map { [$0.system, "\($0.images)", String(format: "%.3f", $0.scores.bleu4), String(format: "%.3f", $0.scores.meteor),
                                                    String(format: "%.3f", $0.scores.rougeL), String(format: "%.3f", $0.scores.cider)] },
                             caption: "The captioner fine-tuned from the CBT checkpoint (clip features in), same test steps")
            }
        }
        if let z = results.zeroShot {
            report.heading("Zero-shot verbs and nouns")
            report.table(header: ["step", "truth", "top-5 verbs", "top-5 nouns"],
                         rows: z.predictions.prefix(12).map { [$0.imageID, "\($0.verb ?? "?") the \($0.noun ?? "?")",
                                                               $0.verbs.prefix(5).joined(separator: ", "), $0.nouns.prefix(5).joined(separator: ", ")] },
                         caption: "The first test steps: the model's ranking at the two [MASK]s of \"" + z.options.template.replacingOccurrences(of: "{verb}", with: "[MASK]").replacingOccurrences(of: "{noun}", with: "[MASK]") + "\"")
        }

        // Next step.
        if let f = results.forecast, !f.continuations.isEmpty {
            report.heading("Next step: visual words")
            report.paragraph("For a test segment (its visual words, each drawn as the clip nearest the word's centroid), the next segment's true first words and continuations sampled from the model.")
            for sample in f.continuations.prefix(4) {
                report.html("<h3>\(HTMLReport.escape(sample.id))</h3>")
                if let img = strip(sample.context) { report.figure(img, caption: "current: " + sample.context.map { "v\($0)" }.joined(separator: " "), scale: 2) }
                if let img = strip(sample.truth) { report.figure(img, caption: "true next: " + sample.truth.map { "v\($0)" }.joined(separator: " "), scale: 2) }
                for (i, s) in sample.samples.prefix(2).enumerated() {
                    if let img = strip(s) { report.figure(img, caption: "sample \(i + 1): " + s.map { "v\($0)" }.joined(separator: " "), scale: 2) }
                }
            }
            report.table(header: ["position", "model top-1", "model top-5", "frequency top-5", "persistence top-5", "chance top-5"],
                         rows: (f.positions + [f.overall]).map { p in
                             [p.position == 0 ? "all" : "\(p.position)", String(format: "%.3f", p.model.top1), String(format: "%.3f", p.model.top5),
                              String(format: "%.3f", p.frequency.top5), String(format: "%.3f", p.persistence.top5), String(format: "%.3f", p.chance.top5)]
                         }, caption: "Next segment's visual words, by future position")
        }
        if let t = results.nextText {
            report.heading("Next step: the next sentence")
            report.table(header: ["current", "true next", "model's pick", "rank"],
                         rows: t.examples.prefix(12).map { [$0.current, $0.truth, $0.predicted, "\($0.modelRank)"] },
                         caption: "Test queries: the true next sentence ranked among \(t.options.candidates) candidates by the model")
        }

        // Clip thumbnails with their narration, for a few test videos.
        report.heading("Test videos: clips and narration")
        let vocab = try TextVocabulary.load(corpus.textVocabPath)
        for v in idx.videos.filter({ $0.split == "test" }).prefix(2) {
            report.html("<h3>\(HTMLReport.escape(v.id))</h3>")
            for s in v.segmentBegin..<v.segmentEnd {
                let vis = corpus.visual(of: s)
                guard !vis.isEmpty, let img = clipImage(Int(corpus.segmentClips[2 * s])) else { continue }
                let text = InspectCommand.detokenize(corpus.text(of: s), vocab)
                report.figure(img, caption: (text.isEmpty ? "(no speech)" : text) + " | " + vis.prefix(6).map { "v\($0)" }.joined(separator: " "), scale: 3)
            }
        }

        // Visual words.
        report.heading("Visual words")
        report.paragraph("Each sheet shows the clips nearest a word's centroid (one row per clip). The first 12 words used by the corpus:")
        let used = Array(Set(corpus.clipWords.map(Int.init))).sorted().prefix(12)
        for w in used {
            let p = path("words/word_\(w).png")
            if let data = FileManager.default.contents(atPath: p) {
                report.html("<figure><img alt=\"word \(w)\" src=\"data:image/png;base64,\(data.base64EncodedString())\"><figcaption>v\(w)</figcaption></figure>")
            }
        }

        // Loss curves.
        report.heading("Pretraining")
        let lines = try MetricsLog.read(path("pretrain/metrics.jsonl"))
        report.svg(MetricsLog.lossPlot(lines).render())
        var acc: [SVGPlot.Series] = []
        for (i, key) in ["mlm_acc", "mfm_top1", "mfm_top5", "align_acc"].enumerated() {
            let pts = lines.filter { $0["kind"] as? String == "eval" }.compactMap { l -> (x: Double, y: Double)? in
                guard let s = l["step"] as? Int, let v = (l[key] as? NSNumber)?.doubleValue else { return nil }
                return (Double(s), v)
            }
            if !pts.isEmpty { acc.append(.init(name: key, points: pts, color: SVGPlot.palette[i])) }
        }
        report.svg(SVGPlot(title: "held-out accuracy", xLabel: "step", yLabel: "accuracy", series: acc).render())
        if let cbtLines = try? MetricsLog.read(path("cbt/metrics.jsonl")), !cbtLines.isEmpty {
            report.heading("CBT")
            report.svg(MetricsLog.lossPlot(cbtLines, keys: ["loss", "mlm_loss", "nce_loss", "cross_loss", "pooled_loss"]).render())
        }
        if let capLines = try? MetricsLog.read(path("caption/metrics.jsonl")), !capLines.isEmpty {
            report.heading("Caption fine-tuning")
            report.svg(MetricsLog.lossPlot(capLines, keys: ["loss"]).render())
        }
        if let capLines = try? MetricsLog.read(path("caption-cbt/metrics.jsonl")), !capLines.isEmpty {
            report.heading("Caption fine-tuning from CBT")
            report.svg(MetricsLog.lossPlot(capLines, keys: ["loss"]).render())
        }
        try report.write(to: path("report.html"))
    }
}
