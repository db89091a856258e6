import Foundation
import Tensor
import Model

// The next step with a FINE-TUNED forecaster (`videobert finetune next-step`: the captioner's
// layout and objective, CaptionExamples.swift, with the next annotated step's sentence as the
// target), beside baselines that know as much or more than the model about the task.
//
// Queries: consecutive annotated steps (s, s+1) of one video of the evaluated split, s with
// video. The model sees only s's video; the baselines that condition see s's TRUE sentence or
// labels (an upper hand).
//
// 1. Ranking: the true next sentence among N candidates (the others: distinct sentences of steps
//    of other videos of the split, drawn with a per-query seeded stream), scored by the
//    generator's log-likelihood log P(c1 … cn [SEP] | video) = Σk log p(c_{k+1} | c1..ck, video),
//    each term read at the [MASK] of `[CLS] c1..ck [MASK] [>] video [SEP]` (the layout it was
//    trained on); `mean` divides by n+1. Baselines: the step-transition bigram of the TRAIN
//    split's consecutive steps (count(current sentence → candidate), ties broken by the
//    candidate's train frequency: so an unseen current sentence falls back to frequency), the
//    unigram LM of the train split's step sentences (add-one smoothed WordPieces, aggregated as
//    the model's), frequency (how often the candidate is a train step's sentence), persistence
//    (the candidate that repeats the current sentence) and chance. Ties count against the truth.
// 2. Generation: the generator's next sentence (greedy or beam) scored with BLEU/METEOR/ROUGE-L/
//    CIDEr-D against the true next step's sentences, beside the bigram's most frequent follower
//    of the current sentence, the most frequent train sentence, and the current sentence.
// 3. Anticipation (when the annotations give verb/noun): with the forecaster's anticipation head
//    (AnticipationHead, anticipation.safetensors), its top-1/top-5 next verb and noun from the
//    pooled output of `[CLS] [MASK] [>] v_current.. [SEP]` — the current step's video ALONE; a
//    true label outside the head's (train-split) labels counts as wrong. Also, from any
//    forecaster, the labels its generated sentence names (the earliest label that occurs as whole
//    words; top-1 only). The baselines' top-1/top-5 from the train split's label bigram
//    P(next | current TRUE label) (followers by count, then by frequency), frequency and
//    persistence (one label: its top-5 is its top-1); chance is 1 / the labels of the
//    annotations (5 / them for top-5).
// Sentences are compared lower-cased, white space collapsed, without a final period.

public struct NextStepForecastOptions: Sendable, Codable, Equatable {
    /// N: candidates per query, the true next sentence included.
    public var candidates = 10
    public var score = NextStepTextOptions.Aggregate.sum
    /// Decoding of the generated next sentences (max_tokens also cuts the candidates).
    public var generation = GenerationOptions()
    /// At most this many queries (the first of the split); 0: all.
    public var maxQueries = 0
    public var seed: UInt64 = 0

    public init() {}

    enum CodingKeys: String, CodingKey { case candidates, score, generation, maxQueries = "max_queries", seed }
}

public struct NextStepForecastReport: Sendable, Codable {
    public struct RankingRow: Sendable, Codable {
        public var system: String
        public var accuracy: RankingAccuracy
    }
    public struct GenerationRow: Sendable, Codable {
        public var system: String
        public var scores: CaptionScores
    }
    public struct AnticipationRow: Sendable, Codable {
        public var system: String
        public var verbTop1: Double
        public var nounTop1: Double
        /// nil for a system that names one label (the generated sentence's).
        public var verbTop5: Double?
        public var nounTop5: Double?
        enum CodingKeys: String, CodingKey { case system, verbTop1 = "verb_top1", nounTop1 = "noun_top1", verbTop5 = "verb_top5", nounTop5 = "noun_top5" }
    }
    public struct Query: Sendable, Codable {
        public var id: String
        public var current: String
        public var truth: String
        public var generated: String
        public var modelRank: Int
        /// The generator's log-likelihood of the true next sentence (the aggregate ranked).
        public var modelScore: Double
        enum CodingKeys: String, CodingKey { case id, current, truth, generated, modelRank = "model_rank", modelScore = "model_score" }
    }

    public var checkpoint: String
    public var corpus: String
    public var annotations: String
    public var split: String
    public var trainSplit: String
    public var options: NextStepForecastOptions
    public var queries: Int
    /// Train-split transitions (consecutive annotated steps) the bigrams count.
    public var trainTransitions: Int
    /// The model first, then the baselines.
    public var ranking: [RankingRow]
    public var generation: [GenerationRow]
    /// Queries whose both steps have verb and noun labels (the anticipation rows' denominator; 0: no rows).
    public var labelledQueries: Int
    public var anticipation: [AnticipationRow]
    /// One line per measure: the model against the bigram and the strongest baseline.
    public var verdicts: [String]
    public var examples: [Query]

    enum CodingKeys: String, CodingKey {
        case checkpoint, corpus, annotations, split, options, queries, ranking, generation, anticipation, verdicts, examples
        case trainSplit = "train_split", trainTransitions = "train_transitions", labelledQueries = "labelled_queries"
    }
}

public enum NextStepForecast {
    /// A sentence as compared: lower-cased, white space collapsed, no final period.
    public static func key(_ s: String) -> String {
        var k = s.lowercased().split(whereSeparator: \.isWhitespace).joined(separator: " ")
        while k.hasSuffix(".") { k.removeLast() }
        return k.trimmingCharacters(in: .whitespaces)
    }

    /// What the train split says about transitions between consecutive steps: counts of
    /// (current → next) for sentences and labels, and how often each is a next step.
    public struct Transitions: Sendable {
        public var pairs = 0
        public var sentence: [String: [String: Int]] = [:], sentenceFrequency: [String: Int] = [:]
        public var verb: [String: [String: Int]] = [:], verbFrequency: [String: Int] = [:]
        public var noun: [String: [String: Int]] = [:], nounFrequency: [String: Int] = [:]
        /// The first spelling seen of each sentence key (what the baselines output).
        public var spelling: [String: String] = [:]

        public init(_ steps: [ResolvedStep]) {
            for (current, nextCaptions) in CaptionTarget.nextStep.pairs(steps) {
                guard let c = current.step.captions.first, let n = nextCaptions.first else { continue }
                pairs += 1
                let ck = key(c), nk = key(n)
                sentence[ck, default: [:]][nk, default: 0] += 1
                sentenceFrequency[nk, default: 0] += 1
                if spelling[nk] == nil { spelling[nk] = n }
            }
            for i in steps.indices.dropLast() where steps[i + 1].step.video == steps[i].step.video {
                let a = steps[i].step, b = steps[i + 1].step
                if let v = a.verb, let w = b.verb { verb[v, default: [:]][w, default: 0] += 1 }
                if let w = b.verb { verbFrequency[w, default: 0] += 1 }
                if let v = a.noun, let w = b.noun { noun[v, default: [:]][w, default: 0] += 1 }
                if let w = b.noun { nounFrequency[w, default: 0] += 1 }
            }
        }

        /// The most frequent value (ties: by `tie`'s count, then alphabetical).
        static func argmax(_ counts: [String: Int], tie: [String: Int] = [:]) -> String? {
            counts.max { a, b in (a.value, tie[a.key] ?? 0, b.key) < (b.value, tie[b.key] ?? 0, a.key) }?.key
        }

        /// The bigram's next label after `current` (frequency when `current` was never followed in train).
        public static func predict(_ current: String?, bigram: [String: [String: Int]], frequency: [String: Int]) -> String? {
            if let current, let followers = bigram[current], let best = argmax(followers, tie: frequency) { return best }
            return argmax(frequency)
        }

        /// The labels in order of `counts` (ties: by `tie`'s count, then alphabetical).
        static func ranked(_ counts: [String: Int], tie: [String: Int] = [:]) -> [String] {
            counts.sorted { a, b in (a.value, tie[a.key] ?? 0, b.key) > (b.value, tie[b.key] ?? 0, a.key) }.map(\.key)
        }

        /// The bigram's k most likely next labels after `current`: its train followers by count,
        /// then the rest by frequency.
        public static func predict(_ current: String?, bigram: [String: [String: Int]], frequency: [String: Int], k: Int) -> [String] {
            var out = current.flatMap { bigram[$0] }.map { ranked($0, tie: frequency) } ?? []
            for l in ranked(frequency) where out.count < k && !out.contains(l) { out.append(l) }
            return Array(out.prefix(k))
        }

        /// The bigram's next sentence after `current` (key → spelling; the most frequent when unseen).
        public func nextSentence(after current: String) -> String? {
            Self.predict(key(current), bigram: sentence, frequency: sentenceFrequency).map { spelling[$0] ?? $0 }
        }
    }

    /// The label of `labels` that `text` names: whole-word matches, the earliest (then the longest).
    public static func label(in text: String, labels: [String]) -> String? {
        func words(_ s: String) -> [Substring] { s.lowercased().split { !$0.isLetter && !$0.isNumber } }
        let t = words(text)
        var best: (at: Int, length: Int, label: String)?
        for l in labels {
            let w = words(l)
            guard !w.isEmpty, w.count <= t.count else { continue }
            for at in 0...(t.count - w.count) where Array(t[at..<(at + w.count)]) == w {
                if best == nil || at < best!.at || (at == best!.at && w.count > best!.length) { best = (at, w.count, l) }
                break
            }
        }
        return best?.label
    }

    /// The generator's log-likelihood of each candidate continuing `video`: Σ log p over its
    /// WordPieces and the closing [SEP] (divided by n+1 with `mean`).
    public static func generatorLogLikelihoods(generator: CaptionGenerator, video: CaptionVideo, candidates: [[Int32]],
                                               aggregate: NextStepTextOptions.Aggregate) -> [Double] {
        let model = generator.model
        var inputs: [(TaskSequence, Int)] = [], owner: [Int] = [], targets: [Int32] = []
        for (k, c) in candidates.enumerated() {
            for n in 0...c.count {
                inputs.append(generator.input(prefix: Array(c.prefix(n)), video: video))
                owner.append(k)
                targets.append(n < c.count ? c[n] : model.special.sep)
            }
        }
        var totals = [Double](repeating: 0, count: candidates.count)
        model.forEachBatch(inputs.map(\.0)) { first, B, T, encoded in
            let rows = (0..<B).map { Int32($0 * T + inputs[first + $0].1) }
            model.withTextLogProbabilities(encoded, rows: rows) { b, row in totals[owner[first + b]] += Double(row[Int(targets[first + b])]) }
        }
        if aggregate == .mean { for k in candidates.indices { totals[k] /= Double(candidates[k].count + 1) } }
        return totals
    }

    public static func run(model: TaskModel, corpus: TaskCorpus, annotations: StepAnnotations, split: String, trainSplit: String = "train",
                           options: NextStepForecastOptions = NextStepForecastOptions(), showProgress: Bool = true) throws -> NextStepForecastReport {
        try corpus.requireSplit(split)
        let N = options.candidates
        guard N >= 2 else { throw VideoBertError("at least 2 candidates are needed") }
        let resolved = corpus.resolve(annotations)
        let transitions = Transitions(resolved.inSplit(trainSplit))
        guard transitions.pairs > 0 else {
            throw VideoBertError("no consecutive annotated steps in the '\(trainSplit)' split: the baselines have nothing to count", file: annotations.file)
        }
        let evaluated = resolved.inSplit(split)
        var queries: [(current: ResolvedStep, next: ResolvedStep)] = []
        for i in evaluated.indices.dropLast() where evaluated[i + 1].step.video == evaluated[i].step.video {
            let (a, b) = (evaluated[i], evaluated[i + 1])
            if model.clipInput == nil ? !a.visual.isEmpty : !a.clips.isEmpty, a.step.captions.first.map({ !key($0).isEmpty }) == true, b.step.captions.first.map({ !key($0).isEmpty }) == true {
                queries.append((a, b))
            }
        }
        if options.maxQueries > 0 { queries = Array(queries.prefix(options.maxQueries)) }
        guard !queries.isEmpty else {
            throw VideoBertError("split '\(split)' has no consecutive annotated steps (the first with clips) in the corpus \(corpus.path)", file: annotations.file)
        }
        // The unigram LM of the train split's step sentences.
        var counts = [Double](repeating: 1, count: model.textVocabSize), total = Double(model.textVocabSize)
        for r in resolved.inSplit(trainSplit) {
            for c in r.step.captions { for id in model.encode(c) where Int(id) < counts.count { counts[Int(id)] += 1; total += 1 } }
        }
        let unigram = counts.map { Foundation.log($0 / total) }
        // The candidate pool: distinct sentences of the split's steps, with their video.
        var pool: [(video: Int, sentence: String)] = [], seen = Set<String>()
        for r in evaluated { if let c = r.step.captions.first, !key(c).isEmpty, seen.insert("\(r.video)\u{1}\(key(c))").inserted { pool.append((r.video, c)) } }

        let generator = CaptionGenerator(model: model)
        var gen = options.generation
        gen.maxTokens = max(1, min(gen.maxTokens, model.maxSeq - 5))
        let features = model.clipInput.map { _ in ProgressReporter(label: "clip features (CBT)", total: queries.count, unit: "steps", enabled: showProgress) }
        let videos = generator.videos(queries.map(\.current), options: gen, progress: features).map { generator.videoPart($0, options: gen) }
        features?.finish()
        let progress = ProgressReporter(label: "next-step (generated)", total: queries.count, unit: "queries", enabled: showProgress)
        let generated = generator.generate(videos, options: gen, progress: progress)
        progress.finish()

        var ranks: [String: [Int]] = [:]
        let systems = ["model (generator log-likelihood)", "step-transition bigram (train, true current sentence)", "unigram LM (train step WordPieces)",
                       "frequency (train next steps)", "persistence (the current sentence)"]
        var examples: [NextStepForecastReport.Query] = []
        let ranking = ProgressReporter(label: "next-step (ranking)", total: queries.count, unit: "queries", enabled: showProgress)
        for (q, query) in queries.enumerated() {
            let truth = query.next.step.captions[0], current = query.current.step.captions[0]
            var rng = SeededRNG(seed: options.seed, stream: UInt64(q))
            var order = Array(pool.indices)
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, rng.nextInt(i + 1)) }
            var sentences = [truth], keys = [key(truth)]
            for i in order where sentences.count < N && pool[i].video != query.current.video && !keys.contains(key(pool[i].sentence)) {
                sentences.append(pool[i].sentence)
                keys.append(key(pool[i].sentence))
            }
            guard sentences.count == N else {
                throw VideoBertError("split '\(split)' has fewer than \(N - 1) distinct step sentences from other videos to draw candidates from; lower --candidates", file: annotations.file)
            }
            let tokens = sentences.map { Array(model.encode($0).prefix(gen.maxTokens)) }
            let scores = generatorLogLikelihoods(generator: generator, video: videos[q], candidates: tokens, aggregate: options.score)
            let followers = transitions.sentence[key(current)] ?? [:]
            let maxFrequency = Double((transitions.sentenceFrequency.values.max() ?? 0) + 1)
            let bigram = keys.map { Double(followers[$0] ?? 0) * maxFrequency + Double(transitions.sentenceFrequency[$0] ?? 0) }
            let uni = tokens.map { t -> Double in
                let s = t.reduce(0.0) { $0 + unigram[Int($1)] }
                return options.score == .mean ? s / Double(t.count + 1) : s
            }
            let frequency = keys.map { Double(transitions.sentenceFrequency[$0] ?? 0) }
            let persistence = keys.map { $0 == key(current) ? 1.0 : 0 }
            for (name, s) in zip(systems, [scores, bigram, uni, frequency, persistence]) { ranks[name, default: []].append(NextStepRanking.rankOfFirst(s)) }
            if examples.count < 20 {
                examples.append(.init(id: query.next.step.imageID, current: current, truth: truth, generated: generated[q].text,
                                      modelRank: ranks[systems[0]]!.last!, modelScore: scores[0]))
            }
            ranking.advance()
        }
        ranking.finish()
        var rankingRows = systems.map { NextStepForecastReport.RankingRow(system: $0, accuracy: RankingAccuracy(ranks: ranks[$0] ?? [])) }
        rankingRows.append(.init(system: "chance", accuracy: RankingAccuracy(accuracyAt1: 1 / Double(N), meanRank: Double(N + 1) / 2, count: queries.count)))

        // Generated sentences and the baselines' sentences against the true next step's.
        let refs = ZeroShotEvaluation.references(queries.map(\.next))
        func score(_ name: String, _ sentence: (Int) -> String) throws -> NextStepForecastReport.GenerationRow {
            let preds = try CaptionPredictions(queries.indices.map { CaptionEntry(imageID: .string(queries[$0].next.step.imageID), caption: sentence($0)) })
            return .init(system: name, scores: try CaptionEvaluator.evaluate(predictions: preds, references: refs).scores)
        }
        let mostFrequent = Transitions.argmax(transitions.sentenceFrequency).map { transitions.spelling[$0] ?? $0 } ?? ""
        let generationRows = [
            try score("model (\(gen.beam <= 1 ? "greedy" : "beam \(gen.beam)"))") { generated[$0].text },
            try score("step-transition bigram (train, true current sentence)") { transitions.nextSentence(after: queries[$0].current.step.captions[0]) ?? "" },
            try score("frequency (most frequent train next step)") { _ in mostFrequent },
            try score("persistence (the current sentence)") { queries[$0].current.step.captions[0] },
        ]

        // Verb/noun anticipation.
        let labelled = queries.indices.filter { queries[$0].current.step.verb != nil && queries[$0].current.step.noun != nil
            && queries[$0].next.step.verb != nil && queries[$0].next.step.noun != nil }
        var anticipation: [NextStepForecastReport.AnticipationRow] = []
        let head = try AnticipationHead.load(from: model.folder, hiddenSize: model.model.config.hiddenSize)
        if !labelled.isEmpty {
            let verbs = Array(Set(resolved.steps.compactMap(\.step.verb))).sorted(), nouns = Array(Set(resolved.steps.compactMap(\.step.noun))).sorted()
            // Top-1 and top-5 of ranked predictions (a single label: top-5 = top-1).
            func accuracy(_ predict: (Int) -> (verbs: [String], nouns: [String])) -> (v1: Double, n1: Double, v5: Double, n5: Double) {
                var v1 = 0, n1 = 0, v5 = 0, n5 = 0
                for i in labelled {
                    let p = predict(i), truth = queries[i].next.step
                    if p.verbs.first == truth.verb { v1 += 1 }
                    if p.nouns.first == truth.noun { n1 += 1 }
                    if let v = truth.verb, p.verbs.prefix(5).contains(v) { v5 += 1 }
                    if let n = truth.noun, p.nouns.prefix(5).contains(n) { n5 += 1 }
                }
                let d = Double(labelled.count)
                return (Double(v1) / d, Double(n1) / d, Double(v5) / d, Double(n5) / d)
            }
            func row(_ name: String, _ a: (v1: Double, n1: Double, v5: Double, n5: Double), top5: Bool = true) {
                anticipation.append(.init(system: name, verbTop1: a.v1, nounTop1: a.n1, verbTop5: top5 ? a.v5 : nil, nounTop5: top5 ? a.n5 : nil))
            }
            if let head {
                // The head on the pooled output of the current step's video alone.
                let inputs = labelled.map { generator.input(prefix: [], video: videos[$0]).0 }
                var top: [(verbs: [String], nouns: [String])] = []
                let C = head.hiddenSize
                model.forEachBatch(inputs) { _, B, T, encoded in
                    var cls = [Float](repeating: 0, count: B * C)
                    for b in 0..<B { for c in 0..<C { cls[b * C + c] = encoded.hidden[b * T * C + c] } }
                    let f = head.forward(cls: cls, rows: B)
                    let tv = AnticipationHead.top(f.verbLogits, rows: B, k: 5), tn = AnticipationHead.top(f.nounLogits, rows: B, k: 5)
                    for b in 0..<B { top.append((tv[b].map { head.verbs[$0] }, tn[b].map { head.nouns[$0] })) }
                }
                var at = 0
                var byQuery: [Int: (verbs: [String], nouns: [String])] = [:]
                for i in labelled { byQuery[i] = top[at]; at += 1 }
                row("model: anticipation head (current video alone)", accuracy { byQuery[$0]! })
            }
            row("model: labels its generated sentence names (current video alone)", accuracy {
                (label(in: generated[$0].text, labels: verbs).map { [$0] } ?? [], label(in: generated[$0].text, labels: nouns).map { [$0] } ?? [])
            }, top5: false)
            row("step-transition bigram (train, true current labels)", accuracy {
                (Transitions.predict(queries[$0].current.step.verb, bigram: transitions.verb, frequency: transitions.verbFrequency, k: 5),
                 Transitions.predict(queries[$0].current.step.noun, bigram: transitions.noun, frequency: transitions.nounFrequency, k: 5))
            })
            let fv = Array(Transitions.ranked(transitions.verbFrequency).prefix(5)), fn = Array(Transitions.ranked(transitions.nounFrequency).prefix(5))
            row("frequency (most frequent train next labels)", accuracy { _ in (fv, fn) })
            row("persistence (the current labels)", accuracy { (queries[$0].current.step.verb.map { [$0] } ?? [], queries[$0].current.step.noun.map { [$0] } ?? []) })
            let (nv, nn) = (Double(max(verbs.count, 1)), Double(max(nouns.count, 1)))
            row("chance", (1 / nv, 1 / nn, min(1, 5 / nv), min(1, 5 / nn)))
        }

        var verdicts: [String] = []
        // The first value is the model's; other "model…" rows are not baselines.
        func verdict(_ measure: String, _ values: [(String, Double)]) {
            guard let model = values.first, values.count > 1 else { return }
            let baselines = values.dropFirst().filter { $0.0 != "chance" && !$0.0.hasPrefix("model") }
            guard let bigram = baselines.first, let strongest = baselines.max(by: { $0.1 < $1.1 }) else { return }
            let beats = model.1 > bigram.1 ? "beats" : "does NOT beat"
            let ratio = strongest.1 > 0 ? String(format: "%.2f×", model.1 / strongest.1) : "n/a"
            verdicts.append("\(measure): the model \(beats) the step-transition bigram (\(TextTable.number(model.1)) vs \(TextTable.number(bigram.1))); "
                            + "model / strongest baseline (\(strongest.0.components(separatedBy: " (").first ?? strongest.0)) = \(ratio)")
        }
        verdict("next sentence accuracy@1", rankingRows.map { ($0.system, $0.accuracy.accuracyAt1) })
        verdict("generated next sentence CIDEr-D", generationRows.map { ($0.system, $0.scores.cider) })
        let given = head == nil ? "labels of the generated sentence, given the current video alone" : "anticipation head, given the current video alone"
        verdict("next verb top-1 (\(given))", anticipation.map { ($0.system, $0.verbTop1) })
        verdict("next noun top-1 (\(given))", anticipation.map { ($0.system, $0.nounTop1) })
        if head != nil {
            verdict("next verb top-5 (\(given))", anticipation.compactMap { r in r.verbTop5.map { (r.system, $0) } })
            verdict("next noun top-5 (\(given))", anticipation.compactMap { r in r.nounTop5.map { (r.system, $0) } })
        }

        return NextStepForecastReport(checkpoint: model.folder, corpus: corpus.path, annotations: annotations.file, split: split, trainSplit: trainSplit,
                                      options: NextStepForecastOptions(candidates: N, score: options.score, generation: gen,
                                                                       maxQueries: options.maxQueries, seed: options.seed),
                                      queries: queries.count, trainTransitions: transitions.pairs, ranking: rankingRows, generation: generationRows,
                                      labelledQueries: labelled.count, anticipation: anticipation, verdicts: verdicts, examples: examples)
    }

    public static func table(_ r: NextStepForecastReport) -> String {
        var lines: [String] = []
        var t = TextTable(title: "next step (fine-tuned forecaster), split '\(r.split)': \(r.queries) queries, \(r.options.candidates) candidates each; baselines from \(r.trainTransitions) '\(r.trainSplit)' transitions",
                          header: ["next sentence ranking", "accuracy@1", "mean rank"])
        for row in r.ranking { t.add([row.system, TextTable.number(row.accuracy.accuracyAt1), TextTable.number(row.accuracy.meanRank, digits: 2)]) }
        lines.append(t.render())
        var g = TextTable(header: ["generated next sentence", "BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr"])
        for row in r.generation {
            let s = row.scores
            g.add([row.system, TextTable.number(s.bleu1), TextTable.number(s.bleu4), TextTable.number(s.meteor), TextTable.number(s.rougeL), TextTable.number(s.cider)])
        }
        lines.append(g.render())
        if !r.anticipation.isEmpty {
            var a = TextTable(header: ["anticipation (\(r.labelledQueries) labelled queries)", "verb top-1", "verb top-5", "noun top-1", "noun top-5"])
            for row in r.anticipation {
                a.add([row.system, TextTable.number(row.verbTop1), row.verbTop5.map { TextTable.number($0) } ?? "—",
                       TextTable.number(row.nounTop1), row.nounTop5.map { TextTable.number($0) } ?? "—"])
            }
            lines.append(a.render())
        }
        lines += r.verdicts
        for e in r.examples.prefix(3) { lines.append("  \(e.id): after \"\(e.current)\" → generated \"\(e.generated)\", truth \"\(e.truth)\" (rank \(e.modelRank))") }
        return lines.joined(separator: "\n")
    }
}

extension NextStepForecastOptions {
    public init(candidates: Int, score: NextStepTextOptions.Aggregate, generation: GenerationOptions, maxQueries: Int, seed: UInt64) {
        self.candidates = candidates; self.score = score; self.generation = generation; self.maxQueries = maxQueries; self.seed = seed
    }
}
