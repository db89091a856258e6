import Foundation
import Tensor

// The next step as text: given the current step's sentence and visual words, rank the true next
// sentence among N candidates (the rest drawn from other videos of the same split).
//
// DESIGN DECISION, the score is the candidate's masked pseudo-log-likelihood (Salazar et al.
// 2020, "Masked Language Model Scoring") in the context
//
//     [CLS] current_text candidate_text [>] current_video [SEP]
//
// — each candidate token masked in turn, log p(token) from the MLM softmax over the text
// vocabulary, summed (or averaged with --score mean). This is in distribution: pretraining
// joins up to `concat_max` consecutive segments of a video into one example (Train/Examples.swift),
// so "a sentence followed by the next sentence, then the video" is what the model has read.
// Candidates whose WordPieces equal the true next sentence's are not drawn (they would tie).
// The baseline scores candidates with a unigram language model of the train split's WordPieces
// (add-one smoothed), aggregated the same way, so both favour the same kind of sentence length.

public struct NextStepTextOptions: Sendable, Codable, Equatable {
    public enum Aggregate: String, Sendable, Codable, CaseIterable { case sum, mean }
    /// N: candidates per query, the true next sentence included.
    public var candidates = 10
    public var score = Aggregate.sum
    /// WordPieces kept of the current sentence (its last ones) and of each candidate (its first).
    public var maxTextTokens = 24
    /// Visual words of the current segment kept (its first).
    public var maxVideoTokens = 32
    /// At most this many queries (the first of the split); 0: all.
    public var maxQueries = 0
    public var seed: UInt64 = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case candidates, score, maxTextTokens = "max_text_tokens", maxVideoTokens = "max_video_tokens", maxQueries = "max_queries", seed
    }
}

/// Accuracy@1 and mean rank over queries.
public struct RankingAccuracy: Sendable, Codable, Equatable {
    public var accuracyAt1: Double
    public var meanRank: Double
    public var count: Int
    enum CodingKeys: String, CodingKey { case accuracyAt1 = "accuracy_at_1", meanRank = "mean_rank", count }

    public init(accuracyAt1: Double, meanRank: Double, count: Int) {
        self.accuracyAt1 = accuracyAt1; self.meanRank = meanRank; self.count = count
    }

    public init(ranks: [Int]) {
        count = ranks.count
        accuracyAt1 = ranks.isEmpty ? 0 : Double(ranks.filter { $0 == 1 }.count) / Double(ranks.count)
        meanRank = ranks.isEmpty ? 0 : Double(ranks.reduce(0, +)) / Double(ranks.count)
    }
}

public struct NextStepTextReport: Sendable, Codable {
    public struct Query: Sendable, Codable {
        public var id: String
        public var current: String
        public var truth: String
        public var modelRank: Int
        public var unigramRank: Int
        /// The model's top candidate.
        public var predicted: String
        enum CodingKeys: String, CodingKey { case id, current, truth, modelRank = "model_rank", unigramRank = "unigram_rank", predicted }
    }
    public var checkpoint: String
    public var corpus: String
    public var split: String
    public var options: NextStepTextOptions
    public var queries: Int
    public var model: RankingAccuracy
    public var unigram: RankingAccuracy
    public var chance: RankingAccuracy
    public var examples: [Query]
}

public enum NextStepRanking {
    /// Rank (1 = best) of candidate 0 among `scores`: 1 + the others scoring at least as high
    /// (ties count against the truth, as RetrievalMetrics).
    public static func rankOfFirst(_ scores: [Double]) -> Int {
        1 + scores.dropFirst().filter { $0 >= scores[0] }.count
    }

    /// Masked pseudo-log-likelihood of each candidate in its context: for candidate c and
    /// position i, the sequence `[CLS] context c(with c_i masked) [>] video [SEP]` gives log p(c_i).
    /// Returns the per-candidate sum, or mean over its tokens.
    public static func pseudoLogLikelihoods(model: TaskModel, context: [Int32], candidates: [[Int32]], video: [Int32],
                                            aggregate: NextStepTextOptions.Aggregate) -> [Double] {
        var sequences: [TaskSequence] = [], positions: [Int] = [], owner: [Int] = [], targets: [Int32] = []
        let videoIDs = video.map(model.visualID)
        for (k, c) in candidates.enumerated() {
            for i in c.indices {
                var text = context + c
                text[context.count + i] = model.special.mask
                sequences.append(.joint(text: text, video: videoIDs, special: model.special))
                positions.append(1 + context.count + i)
                owner.append(k)
                targets.append(c[i])
            }
        }
        var totals = [Double](repeating: 0, count: candidates.count)
        model.forEachBatch(sequences) { first, B, T, encoded in
            let rows = (0..<B).map { Int32($0 * T + positions[first + $0]) }
            model.withTextLogProbabilities(encoded, rows: rows) { b, row in totals[owner[first + b]] += Double(row[Int(targets[first + b])]) }
        }
        if aggregate == .mean { for k in candidates.indices { totals[k] /= Double(max(candidates[k].count, 1)) } }
        return totals
    }

    /// log p(w) of the train split's WordPieces, add-one smoothed over the text vocabulary.
    public static func unigramLogProbabilities(_ corpus: TaskCorpus, split: String) -> [Double] {
        var counts = [Double](repeating: 1, count: corpus.textVocabSize)
        var total = Double(corpus.textVocabSize)
        for s in corpus.segments(in: split, text: true, video: false) {
            for id in corpus.corpus.text(of: s) { counts[Int(id)] += 1; total += 1 }
        }
        return counts.map { Foundation.log($0 / total) }
    }

    public static func run(model: TaskModel, corpus: TaskCorpus, split: String, trainSplit: String = "train",
                           options: NextStepTextOptions = NextStepTextOptions(), showProgress: Bool = true) throws -> NextStepTextReport {
        try corpus.requireSplit(split)
        let c = corpus.corpus
        let N = options.candidates
        guard N >= 2 else { throw VideoBertError("at least 2 candidates are needed") }
        // Queries: (s, s+1) of one video, both with text, s with visual words.
        var queries: [(current: Int, next: Int, id: String)] = []
        for v in c.index.videos where v.split == split {
            for s in v.segmentBegin..<max(v.segmentBegin, v.segmentEnd - 1) {
                if !c.text(of: s).isEmpty && !c.visual(of: s).isEmpty && !c.text(of: s + 1).isEmpty {
                    queries.append((s, s + 1, "\(v.id)#\(s - v.segmentBegin)"))
                }
            }
        }
        if options.maxQueries > 0 { queries = Array(queries.prefix(options.maxQueries)) }
        guard !queries.isEmpty else { throw VideoBertError("split '\(split)' has no consecutive segments with text (and video for the first)", file: corpus.path) }
        let pool = corpus.segments(in: split, text: true, video: false)
        let unigram = unigramLogProbabilities(corpus, split: trainSplit)
        // Keep [CLS] context candidate [>] video [SEP] within the model's positions.
        let textCap = max(1, min(options.maxTextTokens, (model.maxSeq - 4) / 3))
        let videoCap = max(0, min(options.maxVideoTokens, model.maxSeq - 3 - 2 * textCap))
        var modelRanks: [Int] = [], unigramRanks: [Int] = []
        var examples: [NextStepTextReport.Query] = []
        let progress = ProgressReporter(label: "next-step (text)", total: queries.count, unit: "queries", enabled: showProgress)
        for (q, query) in queries.enumerated() {
            let truth = Array(c.text(of: query.next).prefix(textCap))
            let myVideo = c.segmentVideo[query.current]
            // Distractors: distinct sentences of other videos, drawn with a per-query seeded stream.
            var rng = SeededRNG(seed: options.seed, stream: UInt64(q))
            var order = pool
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, rng.nextInt(i + 1)) }
            var candidates = [truth]
            for s in order where candidates.count < N && c.segmentVideo[s] != myVideo {
                let t = Array(c.text(of: s).prefix(textCap))
                if !candidates.contains(t) { candidates.append(t) }
            }
            guard candidates.count == N else {
                throw VideoBertError("split '\(split)' has fewer than \(N - 1) distinct sentences from other videos to draw candidates from; lower --candidates", file: corpus.path)
            }
            let context = Array(c.text(of: query.current).suffix(textCap))
            let video = Array(c.visual(of: query.current).prefix(videoCap))
            let scores = pseudoLogLikelihoods(model: model, context: context, candidates: candidates, video: video, aggregate: options.score)
            let uni = candidates.map { cand -> Double in
                let total = cand.reduce(0.0) { $0 + unigram[Int($1)] }
                return options.score == .mean ? total / Double(max(cand.count, 1)) : total
            }
            modelRanks.append(rankOfFirst(scores))
            unigramRanks.append(rankOfFirst(uni))
            if examples.count < 20 {
                let best = scores.indices.max { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 > $1) }!
                examples.append(.init(id: query.id, current: model.decode(context), truth: model.decode(truth),
                                      modelRank: modelRanks.last!, unigramRank: unigramRanks.last!, predicted: model.decode(candidates[best])))
            }
            progress.advance()
        }
        progress.finish()
        return NextStepTextReport(checkpoint: model.folder, corpus: corpus.path, split: split, options: options, queries: queries.count,
                                  model: RankingAccuracy(ranks: modelRanks), unigram: RankingAccuracy(ranks: unigramRanks),
                                  chance: RankingAccuracy(accuracyAt1: 1 / Double(N), meanRank: Double(N + 1) / 2, count: queries.count),
                                  examples: examples)
    }

    public static func table(_ r: NextStepTextReport) -> String {
        var t = TextTable(title: "next step as text, split '\(r.split)': \(r.queries) queries, \(r.options.candidates) candidates each (\(r.options.score.rawValue) of masked log-probs)",
                          header: ["", "accuracy@1", "mean rank"])
        t.add(["model (pseudo-log-likelihood)", TextTable.number(r.model.accuracyAt1), TextTable.number(r.model.meanRank, digits: 2)])
        t.add(["unigram LM (train WordPieces)", TextTable.number(r.unigram.accuracyAt1), TextTable.number(r.unigram.meanRank, digits: 2)])
        t.add(["chance", TextTable.number(r.chance.accuracyAt1), TextTable.number(r.chance.meanRank, digits: 2)])
        var lines = [t.render()]
        for e in r.examples.prefix(3) {
            lines.append("  \(e.id): \"\(e.current)\" → predicted \"\(e.predicted)\", truth \"\(e.truth)\" (rank \(e.modelRank))")
        }
        return lines.joined(separator: "\n")
    }
}
