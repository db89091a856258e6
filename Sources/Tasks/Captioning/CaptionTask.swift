import Foundation
import Tensor

/// `videobert caption`: captions for the annotated steps of a split, scored against their
/// sentences beside baselines.
public struct CaptionReport: Sendable, Codable {
    public struct Row: Sendable, Codable {
        public var system: String
        public var images: Int
        public var scores: CaptionScores
    }
    public struct Example: Sendable, Codable {
        public var imageID: String
        public var caption: String
        public var references: [String]
        enum CodingKeys: String, CodingKey { case imageID = "image_id", caption, references }
    }

    public var checkpoint: String
    public var corpus: String
    public var annotations: String
    public var split: String
    public var options: GenerationOptions
    public var steps: Int
    /// Captions cut at max_tokens (no [SEP] generated).
    public var unfinished: Int
    public var stepsWithoutClips: Int
    public var videosNotInCorpus: Int
    /// The model, then the baselines; empty when no references were scored.
    public var rows: [Row]
    /// The most frequent training caption (the "frequent caption" baseline) and how often it occurs.
    public var frequentCaption: String?
    public var frequentCaptionCount: Int
    public var examples: [Example]

    enum CodingKeys: String, CodingKey {
        case checkpoint, corpus, annotations, split, options, steps, unfinished, rows, examples
        case stepsWithoutClips = "steps_without_clips", videosNotInCorpus = "videos_not_in_corpus"
        case frequentCaption = "frequent_caption", frequentCaptionCount = "frequent_caption_count"
    }
}

public enum CaptionTask {
    /// Generated captions (COCO results, image ids "<video>#<step>"), their references, and the report.
    public struct Output {
        public var results: [CaptionEntry]
        public var references: CaptionReferences
        public var report: CaptionReport
    }

    /// The most frequent caption among the steps (compared lower-cased with collapsed white
    /// space and no final period; ties: the first seen), with its count.
    public static func mostFrequentCaption(_ steps: [ResolvedStep]) -> (caption: String, count: Int)? {
        var counts: [String: Int] = [:], first: [String: Int] = [:], order = 0
        for r in steps {
            for c in r.step.captions {
                var k = c.lowercased().split(whereSeparator: \.isWhitespace).joined(separator: " ")
                while k.hasSuffix(".") { k.removeLast() }
                k = k.trimmingCharacters(in: .whitespaces)
                if k.isEmpty { continue }
                counts[k, default: 0] += 1
                if first[k] == nil { first[k] = order; order += 1 }
            }
        }
        return counts.max { ($0.value, -first[$0.key]!) < ($1.value, -first[$1.key]!) }.map { ($0.key, $0.value) }
    }

    /// Captions the steps of `split` (those with clips) and scores them and the baselines:
    /// the most frequent caption of the `trainSplit` steps for every step, and any `extra`
    /// (name, COCO results) systems, each on the images it covers.
    public static func run(model: TaskModel, corpus: TaskCorpus, annotations: StepAnnotations, split: String,
                           trainSplit: String = "train", options: GenerationOptions, extra: [(String, CaptionPredictions)] = [],
                           showProgress: Bool = true) throws -> Output {
        try corpus.requireSplit(split)
        let resolved = corpus.resolve(annotations)
        let steps = try resolved.withVideo(in: split)
        let generator = CaptionGenerator(model: model)
        let features = model.clipInput.map { _ in ProgressReporter(label: "clip features (CBT)", total: steps.count, unit: "steps", enabled: showProgress) }
        let videos = generator.videos(steps, options: options, progress: features)
        features?.finish()
        let progress = ProgressReporter(label: options.beam <= 1 ? "caption (greedy)" : "caption (beam \(options.beam))",
                                        total: steps.count, unit: "steps", enabled: showProgress)
        let generated = generator.generate(videos, options: options, progress: progress)
        progress.finish()
        let results = zip(steps, generated).map { CaptionEntry(imageID: .string($0.step.imageID), caption: $1.text) }
        let refs = ZeroShotEvaluation.references(steps)

        var rows: [CaptionReport.Row] = []
        func score(_ name: String, _ preds: CaptionPredictions) throws {
            guard refs.count > 0 else { return }   // no references (corpus segments): captions only
            let known = preds.entries.filter { refs.contains($0.imageID) }
            guard !known.isEmpty else { throw VideoBertError("baseline '\(name)' has no caption for the steps of split '\(split)'") }
            let e = try CaptionEvaluator.evaluate(predictions: CaptionPredictions(known), references: refs)
            rows.append(.init(system: name, images: e.imageIDs.count, scores: e.scores))
        }
        try score("model (\(options.beam <= 1 ? "greedy" : "beam \(options.beam)"))", CaptionPredictions(results))
        let frequent = mostFrequentCaption(resolved.inSplit(trainSplit))
        if let f = frequent {
            try score("most frequent \(trainSplit) caption", CaptionPredictions(steps.map { CaptionEntry(imageID: .string($0.step.imageID), caption: f.caption) }))
        }
        for (name, preds) in extra { try score(name, preds) }
        let examples = zip(steps, generated).prefix(12).map { CaptionReport.Example(imageID: $0.step.imageID, caption: $1.text, references: $0.step.captions) }
        let report = CaptionReport(checkpoint: model.folder, corpus: corpus.path, annotations: annotations.file, split: split,
                                   options: options, steps: steps.count, unfinished: generated.filter { !$0.finished }.count,
                                   stepsWithoutClips: resolved.inSplit(split).count - steps.count,
                                   videosNotInCorpus: resolved.videosNotInCorpus.count, rows: rows,
                                   frequentCaption: frequent?.caption, frequentCaptionCount: frequent?.count ?? 0, examples: Array(examples))
        return Output(results: results, references: refs, report: report)
    }

    /// COCO references JSON: {"annotations": [{"image_id", "caption"}], "images": [{"id"}]}.
    public static func referencesJSON(_ refs: CaptionReferences) -> [String: Any] {
        var annotations: [[String: Any]] = []
        for id in refs.imageIDs {
            for c in refs.captions(for: id) ?? [] { annotations.append(["image_id": id.jsonValue, "caption": c]) }
        }
        return ["annotations": annotations, "images": refs.imageIDs.map { ["id": $0.jsonValue] }]
    }

    /// COCO results JSON: [{"image_id", "caption"}].
    public static func resultsJSON(_ results: [CaptionEntry]) -> [[String: Any]] {
        results.map { ["image_id": $0.imageID.jsonValue, "caption": $0.caption] }
    }

    public static func table(_ r: CaptionReport) -> String {
        var t = TextTable(title: "captioning, split '\(r.split)': \(r.steps) steps", header: ["", "images", "BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr"])
        for row in r.rows {
            let s = row.scores
            t.add([row.system, "\(row.images)", TextTable.number(s.bleu1), TextTable.number(s.bleu4), TextTable.number(s.meteor),
                   TextTable.number(s.rougeL), TextTable.number(s.cider)])
        }
        var lines = [r.rows.isEmpty ? "captioning, split '\(r.split)': \(r.steps) corpus segments (no reference captions: written, not scored)" : t.render()]
        if let f = r.frequentCaption { lines.append("most frequent training caption: \"\(f)\" (\(r.frequentCaptionCount)×)") }
        lines.append("examples:")
        for e in r.examples.prefix(5) {
            lines.append("  \(e.imageID): \"\(e.caption)\"" + (e.references.isEmpty ? "" : "   (reference: \"\(e.references[0])\")"))
        }
        if r.unfinished > 0 { lines.append("\(r.unfinished) captions were cut at \(r.options.maxTokens) tokens") }
        return lines.joined(separator: "\n")
    }
}

/// Writes JSON made of Foundation values (sorted keys, atomically).
public func writeJSONObject(_ object: Any, to path: String) throws {
    var data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    data.append(0x0A)
    try AtomicFile.write(data, to: path)
}
