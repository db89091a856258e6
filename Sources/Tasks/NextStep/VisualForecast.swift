import Foundation
import Tensor

// Next-step prediction in the visual domain (VideoBERT §4.3 / Fig. 6, "long-range prediction"):
// given the visual words of one segment, predict the visual words that open the next segment.
// The input is pretraining's video-only regime (MFM over consecutive segments, Train/Examples.swift):
//
//     [CLS] v_cur,1 … v_cur,m [MASK] × h [SEP]      (token type 0 for [CLS], 1 for the rest)
//
// and the MFM softmax over the visual words at the j-th [MASK] predicts the next segment's j-th
// word. The context is the LAST max_video_tokens words of the current segment (the ones next to
// the future). Continuations are sampled as the paper shows possible futures: the [MASK]s are
// filled left to right, each from the model's distribution with a temperature and top-k, the
// filled words then conditioning the next position.

public struct ForecastOptions: Sendable, Codable, Equatable {
    /// h: future visual words predicted (the next segment's first h).
    public var horizon = 3
    /// Context words kept (the current segment's last ones).
    public var maxVideoTokens = 32
    /// Sampled continuations: this many pairs (the first ones of the split), each sampled `samples` times.
    public var sampledPairs = 5
    public var samples = 3
    public var temperature = 1.0
    /// Sample among the k most probable words (0: all).
    public var topK = 10
    public var seed: UInt64 = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case horizon, maxVideoTokens = "max_video_tokens", sampledPairs = "sampled_pairs", samples, temperature
        case topK = "top_k", seed
    }
}

/// Consecutive segments (s, s+1) of one video in a split, both with visual words.
public struct SegmentPair: Sendable, Codable, Equatable {
    public var current: Int
    public var next: Int
    /// "<video>#<segment index in the video>" of the current segment.
    public var id: String
}

public struct ForecastReport: Sendable, Codable {
    public struct Position: Sendable, Codable {
        /// 1-based future position (0 in `overall`: every position pooled).
        public var position: Int
        public var model: TopKAccuracy
        /// The train split's most frequent visual words, the same for every pair.
        public var frequency: TopKAccuracy
        /// "Nothing changes": the current segment's last word, then its other words, newest first.
        public var persistence: TopKAccuracy
        public var chance: TopKAccuracy
    }
    public struct Sample: Sendable, Codable {
        public var id: String
        public var context: [Int32]
        public var truth: [Int32]
        public var samples: [[Int32]]
    }
    public var checkpoint: String
    public var corpus: String
    public var split: String
    public var options: ForecastOptions
    public var pairs: Int
    public var visualWords: Int
    public var positions: [Position]
    /// Every future position pooled.
    public var overall: Position
    public var continuations: [Sample]
    enum CodingKeys: String, CodingKey {
        case checkpoint, corpus, split, options, pairs, positions, overall, continuations, visualWords = "visual_words"
    }
}

public enum VisualForecast {
    /// Consecutive segment pairs of `split` with visual words on both sides.
    public static func pairs(_ corpus: TaskCorpus, split: String) -> [SegmentPair] {
        var out: [SegmentPair] = []
        let c = corpus.corpus
        for v in c.index.videos where v.split == split {
            let withVideo = (v.segmentBegin..<v.segmentEnd).filter { c.visualOffsets[$0 + 1] > c.visualOffsets[$0] }
            for (a, b) in zip(withVideo, withVideo.dropFirst()) where b == a + 1 {
                out.append(SegmentPair(current: a, next: b, id: "\(v.id)#\(a - v.segmentBegin)"))
            }
        }
        return out
    }

    /// Visual words ranked by their count among the clips of `split` (ties: lower id).
    public static func frequentWords(_ corpus: TaskCorpus, split: String) -> [Int32] {
        var counts = [Int](repeating: 0, count: corpus.visualWords)
        for v in corpus.corpus.index.videos where v.split == split {
            for c in v.clipBegin..<v.clipEnd { counts[Int(corpus.corpus.clipWords[c])] += 1 }
        }
        return counts.indices.sorted { (counts[$0], -$0) > (counts[$1], -$1) }.map { Int32($0) }
    }

    /// The persistence baseline's top-5: the context's words newest first (distinct), then frequent words.
    static func persistence(_ context: [Int32], frequent: [Int32]) -> [Int32] {
        var out: [Int32] = []
        for w in context.reversed() + frequent where !out.contains(w) {
            out.append(w)
            if out.count == 5 { break }
        }
        return out
    }

    static func input(_ context: [Int32], masks: Int, model: TaskModel) -> TaskSequence {
        TaskSequence.joint(text: [], video: context.map(model.visualID) + [Int32](repeating: model.special.mask, count: masks), special: model.special)
    }

    public static func run(model: TaskModel, corpus: TaskCorpus, split: String, trainSplit: String = "train",
                           options: ForecastOptions = ForecastOptions(), showProgress: Bool = true) throws -> ForecastReport {
        try corpus.requireSplit(split)
        let pairs = pairs(corpus, split: split)
        guard !pairs.isEmpty else { throw VideoBertError("split '\(split)' has no consecutive segments with visual words", file: corpus.path) }
        let h = options.horizon
        guard h >= 1 else { throw VideoBertError("the horizon must be at least 1") }
        let contextCap = max(1, min(options.maxVideoTokens, model.maxSeq - h - 2))
        let contexts = pairs.map { Array(corpus.corpus.visual(of: $0.current).suffix(contextCap)) }
        let truths = pairs.map { Array(corpus.corpus.visual(of: $0.next).prefix(h)) }
        let frequent = frequentWords(corpus, split: trainSplit)
        var modelRanks = [[Int]](repeating: [], count: h), freqRanks = modelRanks, persistRanks = modelRanks
        let progress = ProgressReporter(label: "next-step (visual)", total: pairs.count, unit: "pairs", enabled: showProgress)
        let Vv = model.visualWords
        model.forEachBatch(contexts.map { input($0, masks: h, model: model) }) { first, B, T, encoded in
            var rows: [Int32] = []
            for b in 0..<B {
                let start = 1 + contexts[first + b].count
                for j in 0..<h { rows.append(Int32(b * T + start + j)) }
            }
            model.withVisualLogProbabilities(encoded, rows: rows) { r, row in
                let i = first + r / h, j = r % h
                if j < truths[i].count {
                    let truth = truths[i][j]
                    let t = row[Int(truth)]
                    var rank = 1
                    for w in 0..<Vv where row[w] > t || (row[w] == t && w < Int(truth)) { rank += 1 }
                    modelRanks[j].append(rank)
                    freqRanks[j].append((frequent.firstIndex(of: truth) ?? Vv) + 1)
                    persistRanks[j].append((persistence(contexts[i], frequent: frequent).firstIndex(of: truth) ?? 5) + 1)
                }
                if j == h - 1 { progress.advance() }
            }
        }
        progress.finish()
        func position(_ k: Int, _ m: [Int], _ f: [Int], _ p: [Int]) -> ForecastReport.Position {
            .init(position: k, model: TopKAccuracy(ranks: m), frequency: TopKAccuracy(ranks: f), persistence: TopKAccuracy(ranks: p),
                  chance: .chance(classes: Vv, count: m.count))
        }
        let positions = (0..<h).map { position($0 + 1, modelRanks[$0], freqRanks[$0], persistRanks[$0]) }
        let overall = position(0, modelRanks.flatMap { $0 }, freqRanks.flatMap { $0 }, persistRanks.flatMap { $0 })
        let chosen = Array(pairs.indices.prefix(options.sampledPairs))
        let sampled = sample(model: model, contexts: chosen.map { contexts[$0] }, options: options)
        let continuations = chosen.enumerated().map { k, i in
            ForecastReport.Sample(id: pairs[i].id, context: contexts[i], truth: truths[i], samples: sampled[k])
        }
        return ForecastReport(checkpoint: model.folder, corpus: corpus.path, split: split, options: options, pairs: pairs.count,
                              visualWords: Vv, positions: positions, overall: overall, continuations: continuations)
    }

    /// `options.samples` continuations of h words per context, filled left to right: at each
    /// position a word is drawn from softmax(log p / temperature) over the top-k words.
    public static func sample(model: TaskModel, contexts: [[Int32]], options: ForecastOptions) -> [[[Int32]]] {
        let h = options.horizon, S = max(0, options.samples), Vv = model.visualWords
        var filled = [[Int32]](repeating: [], count: contexts.count * S)
        var rngs = (0..<filled.count).map { SeededRNG(seed: options.seed, stream: UInt64($0)) }
        for j in 0..<h where S > 0 {
            let sequences = filled.indices.map { i -> TaskSequence in
                let ctx = contexts[i / S]
                return TaskSequence.joint(text: [], video: (ctx + filled[i]).map(model.visualID) + [Int32](repeating: model.special.mask, count: h - j),
                                          special: model.special)
            }
            model.forEachBatch(sequences) { first, B, T, encoded in
                let rows = (0..<B).map { b in Int32(b * T + 1 + contexts[(first + b) / S].count + j) }
                model.withVisualLogProbabilities(encoded, rows: rows) { b, row in
                    let i = first + b
                    let k = options.topK > 0 ? min(options.topK, Vv) : Vv
                    let candidates = topIndices(row, k: k)
                    let t = max(options.temperature, 1e-6)
                    let top = Double(row[candidates[0]])
                    let weights = candidates.map { Foundation.exp((Double(row[$0]) - top) / t) }
                    var u = rngs[i].nextDouble() * weights.reduce(0, +)
                    var pick = candidates.last!
                    for (c, w) in zip(candidates, weights) {
                        if u < w { pick = c; break }
                        u -= w
                    }
                    filled[i].append(Int32(pick))
                }
            }
        }
        return contexts.indices.map { c in (0..<S).map { filled[c * S + $0] } }
    }

    public static func table(_ r: ForecastReport) -> String {
        var t = TextTable(title: "visual next-step forecasting, split '\(r.split)': \(r.pairs) segment pairs, \(r.visualWords) visual words",
                          header: ["position", "model top-1", "top-5", "frequency top-1", "top-5", "persistence top-1", "top-5", "chance top-1", "top-5"])
        for p in r.positions + [r.overall] {
            t.add([p.position == 0 ? "all" : "+\(p.position) (\(p.model.count))",
                   TextTable.number(p.model.top1), TextTable.number(p.model.top5),
                   TextTable.number(p.frequency.top1), TextTable.number(p.frequency.top5),
                   TextTable.number(p.persistence.top1), TextTable.number(p.persistence.top5),
                   TextTable.number(p.chance.top1), TextTable.number(p.chance.top5)])
        }
        var lines = [t.render()]
        if let s = r.continuations.first {
            lines.append("sampled continuations of \(s.id) (context …\(s.context.suffix(4).map(String.init).joined(separator: " "))): truth \(s.truth.map(String.init).joined(separator: " ")); "
                         + s.samples.map { $0.map(String.init).joined(separator: " ") }.joined(separator: " | "))
        }
        return lines.joined(separator: "\n")
    }
}
