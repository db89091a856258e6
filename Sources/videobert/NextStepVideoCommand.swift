import ArgumentParser
import Foundation
import Model
import Report
import Tasks
import Tensor
import Tokenize

/// `videobert next-step VIDEO --checkpoint C [--at T] [--candidates FILE] [--sheet PNG]`: the
/// forecast after a moment of a raw video (Tasks/NextStep/NextStepVideo.swift), the video
/// tokenized by the path `caption VIDEO` uses (RawVideos.swift).
extension NextStepCommand {
    /// Seconds from "83", "83.5s", "1:23", "1:23.5" or "1:02:03"; nil when malformed or negative.
    static func time(_ s: String) -> Double? {
        var t = s.trimmingCharacters(in: .whitespaces)
        if t.hasSuffix("s") { t.removeLast() }
        let parts = t.split(separator: ":", omittingEmptySubsequences: false)
        guard (1...3).contains(parts.count) else { return nil }
        var total = 0.0
        for (i, p) in parts.enumerated() {
            let last = i == parts.count - 1
            guard !p.isEmpty, p.allSatisfy({ $0.isASCII && ($0.isNumber || (last && $0 == ".")) }), let v = Double(p), v.isFinite else { return nil }
            if i > 0 && v >= 60 { return nil }
            total = total * 60 + v
        }
        return total
    }

    func validateVideo() throws {
        guard video != nil else {
            for (name, given) in [("--at", at != nil), ("--sheet", sheet != nil)] where given { throw ValidationError("\(name) goes with a video file") }
            if let c = candidatesOption, Int(c) == nil { throw ValidationError("--candidates must be a number (a file of sentences goes with a video file)") }
            return
        }
        if let at { guard Self.time(at) != nil else { throw ValidationError("--at must be a time like 1:23, 83 or 83.5s (got '\(at)')") } }
        guard annotations == nil, samplesOut == nil else { throw ValidationError("--annotations and --samples-out go with --corpus, not with a video file") }
        guard part == .both else { throw ValidationError("--part goes with --corpus, not with a video file") }
        if let c = candidatesOption, Int(c) != nil, !FileManager.default.fileExists(atPath: c) {
            throw ValidationError("with a video file, --candidates is a file of sentences (one per line)")
        }
    }

    /// Candidate sentences: the non-empty lines of the file (at most 10,000, each at most 1,000 characters).
    static func candidateLines(_ file: String) throws -> [String] {
        let data = try InputFile.read(file, maxBytes: 16 << 20, what: "candidates file")
        guard let text = String(data: data, encoding: .utf8) else { throw VideoBertError("is not UTF-8 text", file: file) }
        var out: [String] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !line.isEmpty else { continue }
            guard line.count <= 1000 else { throw VideoBertError("line \(n + 1): a candidate sentence of more than 1,000 characters", file: file) }
            out.append(line)
            guard out.count <= 10_000 else { throw VideoBertError("more than 10,000 candidate sentences", file: file) }
        }
        guard !out.isEmpty else { throw VideoBertError("holds no candidate sentence (one per line)", file: file) }
        return out
    }

    func runVideo() throws {
        guard let video else { return }
        let inputs = [video, task.checkpoint] + [candidatesOption].compactMap { $0 }
        if let outJson = task.outJson { try AtomicFile.checkOutputFile(outJson, inputs: inputs) }
        if let sheet { try AtomicFile.checkOutputFile(sheet, inputs: inputs + [task.outJson].compactMap { $0 }) }
        let candidates = try candidatesOption.map(Self.candidateLines) ?? []
        let kind = try Checkpoint(folder: task.checkpoint).kind
        var options = NextStepVideoOptions()
        options.horizon = horizon; options.samples = samples; options.temperature = temperature; options.topK = topK; options.seed = seed
        options.score = score
        options.generation.beam = beam; options.generation.maxTokens = maxTokens
        let quiet = ProcessInfo.processInfo.environment["VIDEOBERT_QUIET"] != nil
        try RawVideos.tokenize([video], checkpoint: task.checkpoint, corpus: task.corpusOption, transcript: nil,
                               accepting: [.videobert, .videobertCaptioner, .videobertForecaster, .cbtForecaster],
                               reads: "VideoBERT checkpoints (`videobert pretrain`) and forecasters (`videobert finetune next-step`)",
                               showProgress: !quiet) { raw in
            guard let corpus = raw.corpus else {
                // The failure's message names the file already (VideoBertError's "file: what").
                let why = raw.failures.first?.error ?? "cannot be tokenized"
                throw VideoBertError(why, file: why.contains(video) ? nil : video)
            }
            let info = corpus.corpus.index.videos[0]
            let t = try at.map { text -> Double in
                let t = Self.time(text) ?? 0
                guard t <= info.duration + 1e-6 else {
                    throw VideoBertError(String(format: "--at %@ (%.2f s) is past the end of the video (%.2f s)", text, t, info.duration), file: video)
                }
                return t
            } ?? info.duration
            let model = try TaskModel(checkpoint: task.checkpoint, corpus: corpus, maxBatch: task.batch, allowClipFeatures: kind.isForecaster)
            let result = try NextStepVideo.run(model: model, kind: kind, corpus: corpus, video: 0, at: t, candidates: candidates, options: options)
            if let sheet {
                try Self.drawSheet(result, trainingCorpus: raw.trainingCorpus, to: sheet)
            }
            try task.emit(result, table: Self.table(result, path: video, sheet: sheet))
        }
    }

    static func clock(_ t: Double) -> String {
        let cs = Int((max(0, t) * 10).rounded())
        return String(format: "%d:%02d.%d", cs / 600, (cs / 10) % 60, cs % 10)
    }

    static func table(_ r: NextStepVideoResult, path: String, sheet: String?) -> String {
        func words(_ w: [Int32]) -> String { w.map { "v\($0)" }.joined(separator: " ") }
        var lines = ["next step after \(clock(r.at)) of \(path) (\(r.kind)): segment \(r.segment), \(clock(r.start))–\(clock(r.end))"
                     + (r.text.isEmpty ? " (no speech)" : ": \"\(r.text)\"")]
        lines.append("  seen: \(words(r.context.suffix(12)))" + (r.context.count > 12 ? " (last 12 of \(r.context.count))" : ""))
        if let v = r.visual {
            lines.append("  next visual words: \(words(v.forecast))")
            for p in v.positions {
                lines.append("    +\(p.position): " + p.top.map { "v\($0.word) (\(String(format: "%.2f", $0.logProbability)))" }.joined(separator: " "))
            }
            for (i, s) in v.samples.enumerated() { lines.append("    sample \(i + 1): \(words(s))") }
        } else {
            lines.append("  next visual words: none (a forecaster predicts sentences; a pretrained VideoBERT checkpoint predicts visual words)")
        }
        if let g = r.generated { lines.append("  generated next sentence: \"\(g)\"") }
        if !r.candidates.isEmpty {
            var t = TextTable(title: "candidate next sentences, by \(r.scoring ?? "score")", header: ["rank", "score", "sentence"])
            for c in r.candidates.prefix(20) { t.add(["\(c.rank)", String(format: "%.3f", c.score), c.text]) }
            lines.append(t.render())
            if r.candidates.count > 20 { lines.append("  ... and \(r.candidates.count - 20) more (--json for all)") }
        }
        if let sheet { lines.append("contact sheet: \(sheet)") }
        return lines.joined(separator: "\n")
    }

    /// A PNG with one row per word sequence — the context's last words, the forecast, each sample
    /// — each word drawn as the middle frame of the training corpus's clip nearest its centroid
    /// (as the demo's report draws them, Sources/Demo/DemoReport.swift).
    static func drawSheet(_ r: NextStepVideoResult, trainingCorpus: String, to path: String) throws {
        let sheets = try VisualWordSheets(corpus: try TokenizedCorpus(path: trainingCorpus))
        var rows: [[Int32]] = [Array(r.context.suffix(8))]
        if let v = r.visual { rows += [v.forecast] + v.samples }
        let words = Array(Set(rows.flatMap { $0 }.map(Int.init))).sorted()
        let nearest = try sheets.nearestClips(words: words, perWord: 1)
        let frames = try sheets.frames(ofClips: Array(Set(nearest.compactMap(\.first))), framesPerClip: 1, side: 64)
        var icon: [Int32: RGBImage] = [:]
        for (w, clips) in zip(words, nearest) {
            guard let c = clips.first, let f = frames[c]?.first else { continue }
            icon[Int32(w)] = upscaled(f, toAtLeast: 64)
        }
        let strips = rows.compactMap { RGBImage.strip($0.compactMap { icon[$0] }, gap: 2) }
        guard !strips.isEmpty else { throw VideoBertError("no clip of the training corpus shows these visual words", file: trainingCorpus) }
        try RGBImage.grid(strips, columns: 1, gap: 6).writePNG(to: path)
    }

    /// Nearest-neighbour upscaling by a whole factor until the side is at least `side` pixels.
    static func upscaled(_ img: RGBImage, toAtLeast side: Int) -> RGBImage {
        let k = max(1, (side + img.width - 1) / max(img.width, 1))
        guard k > 1 else { return img }
        var out = RGBImage(width: img.width * k, height: img.height * k)
        for y in 0..<out.height {
            for x in 0..<out.width {
                let s = ((y / k) * img.width + x / k) * 3, d = (y * out.width + x) * 3
                for c in 0..<3 { out.pixels[d + c] = img.pixels[s + c] }
            }
        }
        return out
    }
}
