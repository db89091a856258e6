import Foundation
import Report
import Tasks
import Tensor
import Tokenize
import Train

/// The demo's `report.html`, built with `Report`'s page builder: the results table, captions with
/// their frames, zero-shot rankings, next-step words drawn as clips, narrated test videos,
/// visual-word sheets and the loss curves.
struct DemoReport {
    let pipeline: DemoPipeline
    let corpus: TokenizedCorpus
    let notes: StepAnnotations
    let results: DemoResults

    /// Writes the page (atomically) to `file`.
    func write(header: [String], rows: [[String]], timings: [(stage: String, seconds: Double)], to file: String) throws {
        func path(_ relative: String) -> String { pipeline.path(relative) }
        var report = HTMLReport(title: "videobert demo")
        let idx = corpus.index
        report.paragraph("A generated corpus of \(idx.counts.videos) cooking videos (\(idx.counts.clips) clips of \(idx.clipSeconds) s, \(idx.counts.segments) segments), tokenized into \(idx.visualVocab.words) visual words and BERT WordPieces, then used to pretrain VideoBERT (and, for comparison, CBT) and to evaluate it downstream. Pretraining numbers are on the val videos, every downstream number on the test videos, beside its baselines.")
        report.heading("Results")
        report.table(header: header, rows: rows)
        report.table(header: ["stage", "seconds"], rows: timings.map { [$0.stage, String(format: "%.0f", $0.seconds)] }, caption: "Time per stage (this run; reused stages take ~0 s)")

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
            return RGBImage.strip(words.compactMap { wordIcons[Int($0)] }, gap: 2)
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
                let text = vocab.readableText(corpus.text(of: s))
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
        try report.write(to: file)
    }
}
