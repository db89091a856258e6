import Foundation
import Tensor

/// How captions are generated.
public struct GenerationOptions: Sendable, Codable, Equatable {
    /// Beam width; 1 is greedy decoding.
    public var beam = 4
    /// Words generated at most (the caption is cut there when no [SEP] came).
    public var maxTokens = 24
    /// Length normalisation α: a finished hypothesis of n tokens (its [SEP] included) is ranked
    /// by log P / n^α (Wu et al. 2016 use ((5+n)/6)^α; the plain power is the common simple form).
    /// 0 ranks by log P, which favours short captions; 1 by the mean log-probability per token.
    public var lengthPenalty = 1.0
    /// Visual words given per step (the first ones).
    public var maxVideoTokens = 32

    public init() {}

    enum CodingKeys: String, CodingKey {
        case beam, maxTokens = "max_tokens", lengthPenalty = "length_penalty", maxVideoTokens = "max_video_tokens"
    }
}

/// What a step shows the captioner: its visual words (VideoBERT checkpoints) or its clips'
/// projected features (captioners fine-tuned from CBT checkpoints: `count` rows of C values).
public enum CaptionVideo: Sendable, Equatable {
    case words([Int32])
    case vectors([Float], count: Int)

    public var count: Int {
        switch self {
        case .words(let w): w.count
        case .vectors(_, let n): n
        }
    }

    /// The first `n` positions.
    public func prefix(_ n: Int) -> CaptionVideo {
        switch self {
        case .words(let w): return .words(Array(w.prefix(n)))
        case .vectors(let v, let count):
            let kept = min(n, count), width = count == 0 ? 0 : v.count / count
            return .vectors(Array(v.prefix(kept * width)), count: kept)
        }
    }
}

/// A generated caption.
public struct GeneratedCaption: Sendable, Equatable {
    /// WordPieces, without the final [SEP].
    public var ids: [Int32]
    public var text: String
    /// log P of the pieces and the closing [SEP] (when one was generated).
    public var logProbability: Float
    /// True when [SEP] ended it (false: cut at max_tokens).
    public var finished: Bool
}

/// Greedy and beam-search decoding with the captioning layout (CaptionExamples.swift): the next
/// word is read at the [MASK] of `[CLS] w1 … wk [MASK] [>] v1 … vm [SEP]`. All steps decode
/// together: each round is one batched forward pass over every live hypothesis of every step.
/// Special tokens other than [SEP] ([PAD], [CLS], [MASK], [UNK], [unusedN] — so also [>]) are
/// never generated.
public final class CaptionGenerator {
    public let model: TaskModel
    /// allowed[id]: the token may be generated.
    let allowed: [Bool]

    public init(model: TaskModel) {
        self.model = model
        let sep = Int(model.special.sep)
        allowed = model.vocabulary.tokens.enumerated().map { id, token in
            id == sep || !(token.count > 2 && token.hasPrefix("[") && token.hasSuffix("]"))
        } + [Bool](repeating: false, count: max(0, model.textVocabSize - model.vocabulary.count))
    }

    func input(prefix: [Int32], video: CaptionVideo) -> (TaskSequence, Int) {
        switch video {
        case .words(let words):
            return CaptionInput.sequence(prefix: prefix, video: words.map(model.visualID), special: model.special)
        case .vectors(let values, let n):
            var (s, mask, positions) = CaptionInput.sequence(prefix: prefix, videoVectors: n, special: model.special)
            s.inputRows = positions.map { Int32($0) }
            s.inputVectors = values
            return (s, mask)
        }
    }

    /// Video positions a step gets: max_video_tokens, and room for max_tokens words in the model.
    public func videoLimit(_ options: GenerationOptions) -> Int {
        max(0, min(options.maxVideoTokens, model.maxSeq - options.maxTokens - 4))
    }

    func videoPart(_ video: CaptionVideo, options: GenerationOptions) -> CaptionVideo { video.prefix(videoLimit(options)) }

    /// What the model sees of each step: its visual words, or (clip-feature captioners) its
    /// clips' projected features, computed over the clips kept (at most `videoLimit`).
    public func videos(_ steps: [ResolvedStep], options: GenerationOptions, progress: ProgressReporter? = nil) -> [CaptionVideo] {
        guard let clipInput = model.clipInput else { return steps.map { .words($0.visual) } }
        let limit = videoLimit(options)
        return clipInput.vectors(steps.map(\.clips), limit: limit, progress: progress).map {
            .vectors($0, count: $0.count / clipInput.projection.outputSize)
        }
    }

    /// The k most probable allowed tokens of one row of text log-probabilities, best first (ties: lower id).
    func topAllowed(_ row: UnsafePointer<Float>, k: Int) -> [Int32] {
        var best: [Int32] = []
        for i in 0..<model.textVocabSize where allowed[i] {
            let v = row[i]
            if best.count == k, let last = best.last, !(v > row[Int(last)]) { continue }
            var at = best.count
            while at > 0 && v > row[Int(best[at - 1])] { at -= 1 }
            best.insert(Int32(i), at: at)
            if best.count > k { best.removeLast() }
        }
        return best
    }

    /// Greedy decoding: the most probable allowed token each round until [SEP] or max_tokens.
    public func greedy(videos: [[Int32]], options: GenerationOptions, progress: ProgressReporter? = nil) -> [GeneratedCaption] {
        greedy(videos.map { .words($0) }, options: options, progress: progress)
    }

    public func greedy(_ videos: [CaptionVideo], options: GenerationOptions, progress: ProgressReporter? = nil) -> [GeneratedCaption] {
        let videoParts = videos.map { videoPart($0, options: options) }
        var ids = [[Int32]](repeating: [], count: videos.count)
        var logp = [Float](repeating: 0, count: videos.count)
        var finished = [Bool](repeating: false, count: videos.count)
        var live = Array(videos.indices)
        let sep = model.special.sep
        for _ in 0..<options.maxTokens where !live.isEmpty {
            let inputs = live.map { input(prefix: ids[$0], video: videoParts[$0]) }
            var next: [Int] = []
            model.forEachBatch(inputs.map(\.0)) { first, B, T, encoded in
                let rows = (0..<B).map { Int32($0 * T + inputs[first + $0].1) }
                model.withTextLogProbabilities(encoded, rows: rows) { b, row in
                    let s = live[first + b]
                    let token = topAllowed(row.baseAddress!, k: 1)[0]
                    logp[s] += row[Int(token)]
                    if token == sep { finished[s] = true; progress?.advance() } else { ids[s].append(token); next.append(s) }
                }
            }
            live = next
        }
        progress?.advance(live.count)
        return videos.indices.map { GeneratedCaption(ids: ids[$0], text: model.decode(ids[$0]), logProbability: logp[$0], finished: finished[$0]) }
    }

    struct Hypothesis {
        var ids: [Int32]
        var logp: Float
    }

    /// Beam search (fairseq's scheme): each round every live hypothesis proposes its 2W best
    /// tokens; the candidates of a step are sorted by log P; a [SEP] among the first W candidates
    /// finishes that hypothesis (ranked by log P / n^α), the first W non-[SEP] candidates live on.
    /// A step stops when W hypotheses have finished or at max_tokens (the live ones are then
    /// ranked as they are). With W = 1 this is exactly greedy decoding.
    public func beamSearch(videos: [[Int32]], options: GenerationOptions, progress: ProgressReporter? = nil) -> [GeneratedCaption] {
        beamSearch(videos.map { .words($0) }, options: options, progress: progress)
    }

    public func beamSearch(_ videos: [CaptionVideo], options: GenerationOptions, progress: ProgressReporter? = nil) -> [GeneratedCaption] {
        let W = max(1, options.beam)
        let videoParts = videos.map { videoPart($0, options: options) }
        var alive = [[Hypothesis]](repeating: [Hypothesis(ids: [], logp: 0)], count: videos.count)
        var done = [[(hyp: Hypothesis, score: Double, finished: Bool)]](repeating: [], count: videos.count)
        let sep = model.special.sep, alpha = options.lengthPenalty
        func normalised(_ logp: Float, length: Int) -> Double { Double(logp) / pow(Double(max(length, 1)), alpha) }
        precondition(options.maxTokens >= 1, "max_tokens must be at least 1")
        var live = Array(videos.indices)
        for _ in 0..<options.maxTokens where !live.isEmpty {
            var owners: [(step: Int, beam: Int)] = []
            var inputs: [(TaskSequence, Int)] = []
            for s in live {
                for (k, h) in alive[s].enumerated() {
                    owners.append((s, k))
                    inputs.append(input(prefix: h.ids, video: videoParts[s]))
                }
            }
            var proposals = [[(token: Int32, logp: Float)]](repeating: [], count: inputs.count)
            model.forEachBatch(inputs.map(\.0)) { first, B, T, encoded in
                let rows = (0..<B).map { Int32($0 * T + inputs[first + $0].1) }
                model.withTextLogProbabilities(encoded, rows: rows) { b, row in
                    proposals[first + b] = topAllowed(row.baseAddress!, k: 2 * W).map { ($0, row[Int($0)]) }
                }
            }
            var next: [Int] = []
            var at = 0
            for s in live {
                var candidates: [(beam: Int, token: Int32, logp: Float)] = []
                for k in alive[s].indices {
                    for p in proposals[at + k] { candidates.append((k, p.token, alive[s][k].logp + p.logp)) }
                }
                at += alive[s].count
                // Best first; ties by beam, then by the token's rank in its proposal (stable sort).
                let order = candidates.indices.sorted { candidates[$0].logp > candidates[$1].logp || (candidates[$0].logp == candidates[$1].logp && $0 < $1) }
                var survivors: [Hypothesis] = []
                for (r, c) in order.map({ candidates[$0] }).enumerated() {
                    let parent = alive[s][c.beam]
                    if c.token == sep {
                        if r < W {
                            let h = Hypothesis(ids: parent.ids, logp: c.logp)
                            done[s].append((h, normalised(c.logp, length: parent.ids.count + 1), true))
                        }
                    } else if survivors.count < W {
                        survivors.append(Hypothesis(ids: parent.ids + [c.token], logp: c.logp))
                    }
                    if survivors.count == W && r >= W - 1 { break }
                }
                alive[s] = survivors
                if done[s].count >= W || survivors.isEmpty { progress?.advance() } else { next.append(s) }
            }
            live = next
        }
        // Steps cut at max_tokens: their live hypotheses compete as they are.
        for s in live {
            for h in alive[s] { done[s].append((h, normalised(h.logp, length: h.ids.count), false)) }
            progress?.advance()
        }
        return videos.indices.map { s in
            var best = done[s][0]
            for d in done[s].dropFirst() where d.score > best.score { best = d }
            return GeneratedCaption(ids: best.hyp.ids, text: model.decode(best.hyp.ids), logProbability: best.hyp.logp, finished: best.finished)
        }
    }

    /// Beam search, or greedy decoding when the beam is 1.
    public func generate(_ videos: [CaptionVideo], options: GenerationOptions, progress: ProgressReporter? = nil) -> [GeneratedCaption] {
        options.beam <= 1 ? greedy(videos, options: options, progress: progress) : beamSearch(videos, options: options, progress: progress)
    }
}
