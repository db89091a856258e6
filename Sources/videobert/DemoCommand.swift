import ArgumentParser
import Demo
import Foundation
import Recipe
import Report
import Tensor
import Tokenize
import Train

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the whole toolkit on the built-in demo corpus, with no data of your own.",
        discussion: """
        Stages (each reuses its output when it is already there, so a re-run only does what is missing):
          1. corpus    render cooking videos with narration           (<out>/corpus)
          2. tokens    tokenize with Recipes/tokenize-demo.yaml       (<out>/tokens)
          3. words     contact sheets of the visual words             (<out>/words)
          4. pretrain  VideoBERT with Recipes/demo.yaml               (<out>/pretrain)
          then a results table here and <out>/report.html.

        Example:
          videobert demo --out demo
        """)

    @Option(help: "Output folder.") var out: String = "demo"
    @Option(help: "Videos in the demo corpus.") var videos: Int = 120
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Pretraining steps (Recipes/demo.yaml's train.steps unless given).") var steps: Int?
    @Option(help: "Where Recipes/ and Vocab/ are (default: the current folder).") var root: String = "."

    func path(_ name: String) -> String { (out as NSString).appendingPathComponent(name) }

    func run() throws {
        let started = Date()
        let recipesDir = (root as NSString).appendingPathComponent("Recipes")
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

        // 1. corpus
        try stage("corpus") {
            var options = DemoCorpus.Options()
            options.videos = videos
            options.seed = seed
            let progress = ProgressReporter(label: "corpus", total: videos, unit: "videos")
            try DemoCorpus(options: options).generate(into: path("corpus"), workers: 2, encode: DemoCorpusCommand.encode) { _, _ in progress.advance() }
            progress.finish()
        }

        // 2. tokens
        var tokenSummary: CorpusTokenizer.Summary?
        try stage("tokens") {
            let recipe = try RecipeLoader.load(TokenizeRecipe.self, file: (recipesDir as NSString).appendingPathComponent("tokenize-demo.yaml"),
                                               overrides: ["text.vocab=\(vocabPath)"])
            let items = try CorpusSource.discover(path("corpus/manifest.jsonl"))
            let (summary, failures) = try CorpusTokenizer(recipe: recipe, items: items, out: path("tokens")).run()
            if !failures.isEmpty {
                throw VideoBertError("\(failures.count) demo videos failed to tokenize (see failures.jsonl)", file: path("tokens"))
            }
            tokenSummary = summary
        }
        let corpus = try TokenizedCorpus(path: path("tokens"))

        // 3. words
        try stage("words") {
            let sheets = try VisualWordSheets(corpus: corpus)
            _ = try sheets.write(to: path("words"), perWord: 6, framesPerClip: 4, side: 32)
        }

        // 4. pretrain
        var pretrainEval: [String: Double] = [:]
        try stage("pretrain") {
            var overrides = ["corpus=\(path("tokens"))", "out=\(path("pretrain"))"]
            if let steps { overrides.append("train.steps=\(steps)") }
            let recipe = try RecipeLoader.load(PretrainRecipe.self, file: (recipesDir as NSString).appendingPathComponent("demo.yaml"), overrides: overrides)
            let finished = (path("pretrain/checkpoints") as NSString).appendingPathComponent(Trainer.checkpointName(recipe.train.steps))
            let trainer = try Trainer(recipe: recipe, resume: Trainer.latestCheckpoint(in: path("pretrain/checkpoints")) != nil)
            if FileManager.default.fileExists(atPath: finished) {
                pretrainEval = try trainer.evaluate()
            } else {
                let summary = try trainer.run()
                if summary.stoppedEarly { throw ExitCode(130) }
                pretrainEval = summary.eval
            }
        }

        // Results.
        var rows: [[String]] = []
        func pct(_ v: Double?) -> String { v.map { String(format: "%.1f%%", 100 * $0) } ?? "—" }
        let words = corpus.index.visualVocab.words
        rows.append(["pretraining (held-out)", "MLM accuracy (masked WordPieces)", pct(pretrainEval["mlm_acc"]), "—"])
        rows.append(["", "MFM top-1 (masked visual words)", pct(pretrainEval["mfm_top1"]), pct(1 / Double(words))])
        rows.append(["", "MFM top-5", pct(pretrainEval["mfm_top5"]), pct(5 / Double(words))])
        rows.append(["", "text–video alignment accuracy", pct(pretrainEval["align_acc"]), "50.0%"])

        let header = ["stage", "metric", "videobert", "chance"]
        print("")
        printTable(header: header, rows: rows)
        print("")
        for (name, secs) in timings { print(name.padding(toLength: 10, withPad: " ", startingAt: 0) + String(format: "%6.0f s", secs)) }
        print("total     " + String(format: "%6.0f s", Date().timeIntervalSince(started)) + " → " + out)

        try writeReport(corpus: corpus, tokenSummary: tokenSummary, header: header, rows: rows, timings: timings)
        print("report: \(path("report.html"))")
    }

    func printTable(header: [String], rows: [[String]]) {
        let all = [header] + rows
        let widths = (0..<header.count).map { c in all.map { $0[c].count }.max()! }
        func line(_ r: [String]) -> String { zip(r, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ") }
        print(line(header))
        print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
        for r in rows { print(line(r)) }
    }

    func writeReport(corpus: TokenizedCorpus, tokenSummary: CorpusTokenizer.Summary?, header: [String], rows: [[String]],
                     timings: [(String, Double)]) throws {
        var report = HTMLReport(title: "videobert demo")
        let idx = corpus.index
        report.paragraph("A generated corpus of \(idx.counts.videos) cooking videos (\(idx.counts.clips) clips of \(idx.clipSeconds) s, \(idx.counts.segments) segments), tokenized into \(idx.visualVocab.words) visual words and BERT WordPieces, then used to pretrain VideoBERT. Every number below is on held-out videos.")
        report.heading("Results")
        report.table(header: header, rows: rows)
        report.table(header: ["stage", "seconds"], rows: timings.map { [$0.0, String(format: "%.0f", $0.1)] }, caption: "Time per stage (this run; reused stages take ~0 s)")

        // Clip thumbnails with their narration, for a few test videos.
        report.heading("Test videos: clips and narration")
        let frames = try? NPY.read(corpus.path + "/clip_frames.npy")
        let vocab = try TextVocabulary.load(corpus.textVocabPath)
        if let frames, frames.shape.count == 5 {
            let (f, h, w) = (frames.shape[1], frames.shape[2], frames.shape[3])
            let bytes = try frames.values(UInt8.self)
            for v in idx.videos.filter({ $0.split == "test" }).prefix(3) {
                report.html("<h3>\(HTMLReport.escape(v.id))</h3>")
                for s in v.segmentBegin..<v.segmentEnd {
                    let vis = corpus.visual(of: s)
                    guard !vis.isEmpty else { continue }
                    let clip = Int(corpus.segmentClips[2 * s])
                    let o = (clip * f + f / 2) * h * w * 3
                    let img = RGBImage(width: w, height: h, pixels: Array(bytes[o..<(o + h * w * 3)]))
                    let text = InspectCommand.detokenize(corpus.text(of: s), vocab)
                    report.figure(img, caption: (text.isEmpty ? "(no speech)" : text) + " | " + vis.prefix(6).map { "v\($0)" }.joined(separator: " "), scale: 3)
                }
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
        try report.write(to: path("report.html"))
    }
}
