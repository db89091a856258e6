import Foundation
import Tensor

/// Top-1 / top-5 accuracy over `count` items (written as 0 in JSON when `count` is 0).
public struct TopKAccuracy: Sendable, Codable, Equatable {
    public var top1: Double
    public var top5: Double
    public var count: Int

    public init(top1: Double, top5: Double, count: Int) {
        self.top1 = top1; self.top5 = top5; self.count = count
    }

    /// From 1-based ranks.
    public init(ranks: [Int]) {
        count = ranks.count
        top1 = ranks.isEmpty ? .nan : Double(ranks.filter { $0 <= 1 }.count) / Double(ranks.count)
        top5 = ranks.isEmpty ? .nan : Double(ranks.filter { $0 <= 5 }.count) / Double(ranks.count)
    }

    /// Uniform guessing among n classes: 1/n and min(5, n)/n.
    public static func chance(classes n: Int, count: Int) -> TopKAccuracy {
        TopKAccuracy(top1: 1 / Double(n), top5: Double(min(5, n)) / Double(n), count: count)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(top1.isFinite ? top1 : 0, forKey: .top1)
        try c.encode(top5.isFinite ? top5 : 0, forKey: .top5)
        try c.encode(count, forKey: .count)
    }
}

/// Zero-shot verb and noun classification of held-out annotated steps, beside chance and a
/// frequency baseline, and the template captions it yields.
public struct ZeroShotReport: Sendable, Codable {
    public struct Accuracies: Sendable, Codable {
        public var model: TopKAccuracy
        /// Always the same ranking: labels by how often they are the truth of TRAIN-split steps.
        public var frequency: TopKAccuracy
        public var chance: TopKAccuracy
        public var labels: Int
    }
    public struct Prediction: Sendable, Codable {
        public var imageID: String
        public var verb: String?
        public var noun: String?
        public var verbs: [String]
        public var nouns: [String]
        public var verbRank: Int?
        public var nounRank: Int?
        public var caption: String
        enum CodingKeys: String, CodingKey {
            case imageID = "image_id", verb, noun, verbs, nouns, verbRank = "verb_rank", nounRank = "noun_rank", caption
        }
    }
    public struct CaptionRow: Sendable, Codable {
        public var system: String
        public var scores: CaptionScores
    }

    public var checkpoint: String
    public var corpus: String
    public var annotations: String
    public var split: String
    public var options: ZeroShotOptions
    /// Steps classified (those of the split with clips).
    public var steps: Int
    /// Steps of the split without clips in their span, and annotated videos not in the corpus.
    public var stepsWithoutClips: Int
    public var videosNotInCorpus: Int
    public var verb: Accuracies
    public var noun: Accuracies
    /// Where the frequency baseline's counts come from: "train annotations" or "train transcripts".
    public var frequencySource: String
    public var frequentVerbs: [String]
    public var frequentNouns: [String]
    /// Template captions of the model and of the frequency baseline, scored against the steps' sentences.
    public var captions: [CaptionRow]
    public var predictions: [Prediction]

    enum CodingKeys: String, CodingKey {
        case checkpoint, corpus, annotations, split, options, steps, verb, noun, captions, predictions
        case stepsWithoutClips = "steps_without_clips", videosNotInCorpus = "videos_not_in_corpus"
        case frequencySource = "frequency_source", frequentVerbs = "frequent_verbs", frequentNouns = "frequent_nouns"
    }

    /// The model's template captions as COCO results, and the references they are scored against.
    public var captionResults: [CaptionEntry] { predictions.map { CaptionEntry(imageID: .string($0.imageID), caption: $0.caption) } }
}

public enum ZeroShotEvaluation {
    /// Ground-truth verb and noun of a step: its "verb"/"noun" fields when they are in the label
    /// list, else the first label-list verb/noun mentioned in its (first) sentence.
    public static func truth(of step: AnnotatedStep, labels: LabelList) -> (verb: Int?, noun: Int?) {
        func find(_ field: String?, _ list: [String]) -> Int? {
            if let f = field?.lowercased(), let i = list.firstIndex(of: f) { return i }
            for c in step.captions {
                if let m = LabelList.firstMention(of: list, in: c) { return list.firstIndex(of: m) }
            }
            return nil
        }
        return (find(step.verb, labels.verbs), find(step.noun, labels.nouns))
    }

    /// Label indices sorted by how often they are the truth of the TRAIN split's steps (ties by
    /// label order); when no train step has a label, by how often the train split's transcript
    /// segments mention them. Returns the orders and the source used.
    public static func frequencyRanking(_ resolved: ResolvedSteps, corpus: TaskCorpus, decode: (ArraySlice<Int32>) -> String,
                                        labels: LabelList, trainSplit: String) -> (verbs: [Int], nouns: [Int], source: String) {
        var verbCounts = [Int](repeating: 0, count: labels.verbs.count), nounCounts = [Int](repeating: 0, count: labels.nouns.count)
        for r in resolved.inSplit(trainSplit) {
            let t = truth(of: r.step, labels: labels)
            if let v = t.verb { verbCounts[v] += 1 }
            if let n = t.noun { nounCounts[n] += 1 }
        }
        var source = "\(trainSplit) annotations"
        if verbCounts.allSatisfy({ $0 == 0 }) && nounCounts.allSatisfy({ $0 == 0 }) {
            source = "\(trainSplit) transcripts"
            for s in corpus.segments(in: trainSplit, text: true, video: false) {
                let text = decode(corpus.corpus.text(of: s))
                if let v = LabelList.firstMention(of: labels.verbs, in: text) { verbCounts[labels.verbs.firstIndex(of: v)!] += 1 }
                if let n = LabelList.firstMention(of: labels.nouns, in: text) { nounCounts[labels.nouns.firstIndex(of: n)!] += 1 }
            }
        }
        func order(_ c: [Int]) -> [Int] { c.indices.sorted { (c[$0], -$0) > (c[$1], -$1) } }
        return (order(verbCounts), order(nounCounts), source)
    }

    static func fill(_ template: String, verb: String, noun: String) -> String {
        template.replacingOccurrences(of: "{verb}", with: verb).replacingOccurrences(of: "{noun}", with: noun)
    }

    /// Classifies the steps of `split`, with baselines and template captions.
    public static func run(model: TaskModel, corpus: TaskCorpus, annotations: StepAnnotations, labels: LabelList,
                           split: String, trainSplit: String = "train", options: ZeroShotOptions = ZeroShotOptions(),
                           showProgress: Bool = true) throws -> ZeroShotReport {
        try corpus.requireSplit(split)
        let resolved = corpus.resolve(annotations)
        let steps = try resolved.withVideo(in: split)
        let classifier = try ZeroShotClassifier(model: model, labels: labels, options: options)
        let progress = ProgressReporter(label: "zero-shot", total: steps.count, unit: "steps", enabled: showProgress)
        let scores = classifier.scores(visual: steps.map(\.visual), progress: progress)
        progress.finish()

        let freq = frequencyRanking(resolved, corpus: corpus, decode: { model.decode(Array($0)) }, labels: labels, trainSplit: trainSplit)
        var verbRanks: [Int] = [], nounRanks: [Int] = [], freqVerbRanks: [Int] = [], freqNounRanks: [Int] = []
        var predictions: [ZeroShotReport.Prediction] = []
        var frequencyCaptions: [CaptionEntry] = []
        let k = max(1, options.listed)
        for (r, s) in zip(steps, scores) {
            let t = truth(of: r.step, labels: labels)
            let vr = t.verb.map { rankOf($0, in: s.verbs) }, nr = t.noun.map { rankOf($0, in: s.nouns) }
            if let vr { verbRanks.append(vr) }
            if let nr { nounRanks.append(nr) }
            if let v = t.verb { freqVerbRanks.append(freq.verbs.firstIndex(of: v)! + 1) }
            if let n = t.noun { freqNounRanks.append(freq.nouns.firstIndex(of: n)! + 1) }
            let topVerbs = topIndices(s.verbs, k: k).map { labels.verbs[$0] }, topNouns = topIndices(s.nouns, k: k).map { labels.nouns[$0] }
            predictions.append(.init(imageID: r.step.imageID, verb: t.verb.map { labels.verbs[$0] }, noun: t.noun.map { labels.nouns[$0] },
                                     verbs: topVerbs, nouns: topNouns, verbRank: vr, nounRank: nr,
                                     caption: fill(options.captionTemplate, verb: topVerbs[0], noun: topNouns[0])))
            frequencyCaptions.append(CaptionEntry(imageID: .string(r.step.imageID),
                                                  caption: fill(options.captionTemplate, verb: labels.verbs[freq.verbs[0]], noun: labels.nouns[freq.nouns[0]])))
        }
        guard !verbRanks.isEmpty || !nounRanks.isEmpty else {
            throw VideoBertError("no step of split '\(split)' has a verb or noun of the label list (in 'verb'/'noun' fields or in its sentence)", file: annotations.file)
        }
        let refs = references(steps)
        let modelCaptions = try CaptionEvaluator.evaluate(predictions: CaptionPredictions(predictions.map { CaptionEntry(imageID: .string($0.imageID), caption: $0.caption) }),
                                                          references: refs)
        let freqCaptions = try CaptionEvaluator.evaluate(predictions: CaptionPredictions(frequencyCaptions), references: refs)
        return ZeroShotReport(
            checkpoint: model.folder, corpus: corpus.path, annotations: annotations.file, split: split, options: options,
            steps: steps.count, stepsWithoutClips: resolved.inSplit(split).count - steps.count,
            videosNotInCorpus: resolved.videosNotInCorpus.count,
            verb: .init(model: TopKAccuracy(ranks: verbRanks), frequency: TopKAccuracy(ranks: freqVerbRanks),
                        chance: .chance(classes: labels.verbs.count, count: verbRanks.count), labels: labels.verbs.count),
            noun: .init(model: TopKAccuracy(ranks: nounRanks), frequency: TopKAccuracy(ranks: freqNounRanks),
                        chance: .chance(classes: labels.nouns.count, count: nounRanks.count), labels: labels.nouns.count),
            frequencySource: freq.source,
            frequentVerbs: freq.verbs.prefix(5).map { labels.verbs[$0] }, frequentNouns: freq.nouns.prefix(5).map { labels.nouns[$0] },
            captions: [.init(system: "zero-shot template (model)", scores: modelCaptions.scores),
                       .init(system: "template with the most frequent verb and noun", scores: freqCaptions.scores)],
            predictions: predictions)
    }

    /// COCO references of steps: every caption of every step under its image id.
    public static func references(_ steps: [ResolvedStep]) -> CaptionReferences {
        CaptionReferences(steps.flatMap { r in r.step.captions.map { CaptionEntry(imageID: .string(r.step.imageID), caption: $0) } })
    }

    /// The table people read.
    public static func table(_ r: ZeroShotReport) -> String {
        var t = TextTable(title: "zero-shot classification, split '\(r.split)': \(r.steps) steps (\(r.options.pieceScoring.rawValue) of WordPiece log-probs)",
                          header: ["", "verb top-1", "verb top-5", "noun top-1", "noun top-5"])
        func row(_ name: String, _ v: TopKAccuracy, _ n: TopKAccuracy) {
            t.add([name, TextTable.number(v.top1), TextTable.number(v.top5), TextTable.number(n.top1), TextTable.number(n.top5)])
        }
        row("model", r.verb.model, r.noun.model)
        row("frequency (\(r.frequencySource))", r.verb.frequency, r.noun.frequency)
        row("chance (\(r.verb.labels) verbs, \(r.noun.labels) nouns)", r.verb.chance, r.noun.chance)
        var c = TextTable(title: "template captions against the steps' sentences", header: ["", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr"])
        for row in r.captions {
            c.add([row.system, TextTable.number(row.scores.bleu4), TextTable.number(row.scores.meteor),
                   TextTable.number(row.scores.rougeL), TextTable.number(row.scores.cider)])
        }
        var lines = [t.render(), "", c.render()]
        lines.append("labelled steps: \(r.verb.model.count) with a verb, \(r.noun.model.count) with a noun; steps without clips \(r.stepsWithoutClips); annotated videos not in the corpus \(r.videosNotInCorpus)")
        return lines.joined(separator: "\n")
    }
}
