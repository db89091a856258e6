import Foundation
import Model
import Tensor

/// Scores every (text, video) pair of a retrieval set: the text of each segment against the
/// video of each segment. Implementations: the VideoBERT alignment head (`AlignmentHeadScorer`,
/// a cross-encoder over WordPieces and visual words: one forward pass per pair); CBT
/// (`CBTScorer`: the cosine of pooled text and video embeddings, one pass per item, or its
/// cross-modal transformer, over the segments' stored clips).
public protocol TextVideoScorer {
    /// How the scores are made, for reports.
    var name: String { get }
    /// - Returns: [segments.count, segments.count] row-major, text of segments[i] against video
    ///   of segments[j]; higher means more likely a pair.
    func scores(segments: [Int], of corpus: TaskCorpus, progress: ProgressReporter?) throws -> [Float]
}

/// VideoBERT's linguistic–visual alignment head (§3.2): P(aligned) from the next-sentence head
/// on the pooled [CLS] of `[CLS] text [>] video [SEP]`, for every pair, batched.
public struct AlignmentHeadScorer: TextVideoScorer {
    public let model: TaskModel
    public var maxTextTokens: Int
    public var maxVideoTokens: Int

    public init(model: TaskModel, maxTextTokens: Int = 32, maxVideoTokens: Int = 32) {
        self.model = model
        self.maxTextTokens = maxTextTokens
        self.maxVideoTokens = maxVideoTokens
    }

    public var name: String { "alignment head P(aligned)" }

    public func scores(segments: [Int], of corpus: TaskCorpus, progress: ProgressReporter?) throws -> [Float] {
        try scores(texts: segments.map { Array(corpus.corpus.text(of: $0)) }, videos: segments.map { Array(corpus.corpus.visual(of: $0)) },
                   progress: progress)
    }

    /// - Parameters:
    ///   - texts: WordPieces per text.
    ///   - videos: visual words (0..<Vvis) per video.
    /// - Returns: [texts.count, videos.count] row-major.

    public func scores(texts: [[Int32]], videos: [[Int32]], progress: ProgressReporter?) throws -> [Float] {
        let textCap = max(1, min(maxTextTokens, model.maxSeq - 4)), videoCap = max(1, min(maxVideoTokens, model.maxSeq - 3 - textCap))
        let videoIDs = videos.map { $0.prefix(videoCap).map(model.visualID) }
        var out = [Float](repeating: 0, count: texts.count * videos.count)
        for (i, text) in texts.enumerated() {
            let t = Array(text.prefix(textCap))
            let row = videoIDs.map { TaskSequence.joint(text: t, video: $0, special: model.special) }
            model.forEachBatch(row) { first, B, _, encoded in
                let p = model.model.alignmentScores(encoded)
                for b in 0..<B { out[i * videos.count + first + b] = p[b] }
            }
            progress?.advance()
        }
        return out
    }
}

public struct RetrievalReport: Sendable, Codable {
    public var checkpoint: String
    public var corpus: String
    public var split: String
    public var scorer: String
    /// N: held-out segments with both text and video (each text's true video is its own segment's).
    public var segments: Int
    public var textToVideo: RetrievalMetrics
    public var videoToText: RetrievalMetrics
    /// Random scores: R@k = min(k, N)/N, median and mean rank (N+1)/2.
    public var chance: RetrievalMetrics
    enum CodingKeys: String, CodingKey {
        case checkpoint, corpus, split, scorer, segments, chance
        case textToVideo = "text_to_video", videoToText = "video_to_text"
    }

    public init(checkpoint: String, corpus: String, split: String, scorer: String, segments: Int,
                textToVideo: RetrievalMetrics, videoToText: RetrievalMetrics, chance: RetrievalMetrics) {
        self.checkpoint = checkpoint; self.corpus = corpus; self.split = split; self.scorer = scorer; self.segments = segments
        self.textToVideo = textToVideo; self.videoToText = videoToText; self.chance = chance
    }
}

public enum TextVideoRetrieval {
    /// Segments of `split` with both text and video; at most `max` (a seeded random subset, in
    /// corpus order), all when max ≤ 0.
    public static func segments(_ corpus: TaskCorpus, split: String, max: Int, seed: UInt64) -> [Int] {
        let all = corpus.segments(in: split, text: true, video: true)
        guard max > 0, all.count > max else { return all }
        var rng = SeededRNG(seed: seed)
        var order = all
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, rng.nextInt(i + 1)) }
        return Array(order.prefix(max)).sorted()
    }

    /// Chance level for N items.
    public static func chance(_ N: Int) -> RetrievalMetrics {
        var m = RetrievalMetrics(ranks: [])
        let n = Double(N)
        m.recallAt1 = Swift.min(1, n) / n; m.recallAt5 = Swift.min(5, n) / n; m.recallAt10 = Swift.min(10, n) / n
        m.medianRank = (n + 1) / 2; m.meanRank = (n + 1) / 2; m.count = N
        return m
    }

    public static func run(scorer: TextVideoScorer, checkpoint: String, corpus: TaskCorpus, split: String, max: Int = 100, seed: UInt64 = 0,
                           showProgress: Bool = true) throws -> RetrievalReport {
        try corpus.requireSplit(split)
        let chosen = segments(corpus, split: split, max: max, seed: seed)
        guard chosen.count >= 2 else {
            throw VideoBertError("split '\(split)' has \(chosen.count) segments with both text and video; retrieval needs at least 2", file: corpus.path)
        }
        let progress = ProgressReporter(label: "retrieve", total: chosen.count, unit: "texts", enabled: showProgress)
        let scores = try scorer.scores(segments: chosen, of: corpus, progress: progress)
        progress.finish()
        let m = RetrievalMetrics.textVideo(similarity: scores, N: chosen.count)
        return RetrievalReport(checkpoint: checkpoint, corpus: corpus.path, split: split, scorer: scorer.name, segments: chosen.count,
                               textToVideo: m.textToVideo, videoToText: m.videoToText, chance: chance(chosen.count))
    }

    public static func table(_ r: RetrievalReport) -> String {
        var t = TextTable(title: "text–video retrieval, split '\(r.split)': \(r.segments) segments, scored by the \(r.scorer)",
                          header: ["", "R@1", "R@5", "R@10", "median rank", "mean rank"])
        func row(_ name: String, _ m: RetrievalMetrics) {
            t.add([name, TextTable.number(m.recallAt1), TextTable.number(m.recallAt5), TextTable.number(m.recallAt10),
                   TextTable.number(m.medianRank, digits: 1), TextTable.number(m.meanRank, digits: 1)])
        }
        row("text → video", r.textToVideo)
        row("video → text", r.videoToText)
        row("chance", r.chance)
        return t.render()
    }
}
