import Foundation
import Model
import Tensor

// The next step after a moment of ONE video (`videobert next-step VIDEO`): the video is a
// tokenized corpus of its own (the raw video through the checkpoint's training pipeline,
// Sources/videobert/RawVideos.swift), and the forecast is made as the corpus-wide evaluations
// make it, for one segment:
//
// - the current segment at time t is the last segment of the video with visual words that starts
//   before t; its context is the clips of that segment that have begun by t (all of them when t
//   is at or past its end) and its sentence (the transcript's, whole; none for video-only
//   stretches);
// - a VideoBERT checkpoint (zero-shot): the next visual words from the MFM softmax at the [MASK]s
//   of `[CLS] v_cur.. [MASK]×h [SEP]` (VisualForecast.swift: the same input, context cap and
//   sampling streams), and each candidate sentence scored by its masked pseudo-log-likelihood in
//   `[CLS] current candidate [>] video [SEP]` (NextStepRanking.swift, the same caps);
// - a forecaster (`videobert finetune next-step`): the generated next sentence, and each
//   candidate scored by the generator's log-likelihood given the context's video
//   (NextStepForecast.swift); a forecaster predicts sentences, not visual words.

public struct NextStepVideoOptions: Sendable, Codable, Equatable {
    public var horizon = ForecastOptions().horizon
    public var samples = ForecastOptions().samples
    public var temperature = ForecastOptions().temperature
    public var topK = ForecastOptions().topK
    public var seed: UInt64 = 0
    /// Words listed per future position.
    public var top = 5
    public var score = NextStepTextOptions.Aggregate.sum
    /// Forecasters: decoding of the generated sentence (max_tokens also cuts the candidates).
    public var generation: GenerationOptions = {
        var g = GenerationOptions()
        g.maxTokens = 16
        return g
    }()

    public init() {}

    enum CodingKeys: String, CodingKey { case horizon, samples, temperature, topK = "top_k", seed, top, score, generation }
}

public struct NextStepVideoResult: Sendable, Codable {
    public struct Word: Sendable, Codable, Equatable {
        public var word: Int32
        public var logProbability: Double
        enum CodingKeys: String, CodingKey { case word, logProbability = "log_probability" }
    }
    public struct Position: Sendable, Codable, Equatable {
        /// 1-based future position.
        public var position: Int
        /// The most probable visual words, best first.
        public var top: [Word]
    }
    public struct Visual: Sendable, Codable, Equatable {
        public var positions: [Position]
        /// The most probable word at each position.
        public var forecast: [Int32]
        /// Continuations sampled left to right (VisualForecast.sample, streams 0..<samples).
        public var samples: [[Int32]]
    }
    public struct Candidate: Sendable, Codable, Equatable {
        public var text: String
        /// Its line in the candidates file (0-based).
        public var line: Int
        public var score: Double
        public var rank: Int
    }

    public var video: String
    public var checkpoint: String
    public var kind: String
    /// The time forecast from (seconds).
    public var at: Double
    public var duration: Double
    /// The current segment: its index in the video, its span and sentence.
    public var segment: Int
    public var start: Double
    public var end: Double
    public var text: String
    /// The visual words of the context (the clips of the segment begun by `at`).
    public var context: [Int32]
    public var visual: Visual?
    /// Forecasters: the generated next sentence.
    public var generated: String?
    /// How candidates are scored.
    public var scoring: String?
    /// Ranked best first.
    public var candidates: [Candidate]
}

public enum NextStepVideo {
    /// The segment in progress at `t` in video `v` (the last with visual words starting before t)
    /// and the corpus clip indices of its clips begun by t; nil when no clip has begun.
    public static func current(_ corpus: TaskCorpus, video v: Int, at t: Double) -> (segment: Int, clips: [Int32])? {
        let c = corpus.corpus, info = c.index.videos[v]
        for s in stride(from: info.segmentEnd - 1, through: info.segmentBegin, by: -1) {
            guard Double(c.segmentTimes[2 * s]) < t else { continue }
            let (cb, ce) = (Int(c.segmentClips[2 * s]), Int(c.segmentClips[2 * s + 1]))
            let clips = (max(cb, info.clipBegin)..<max(cb, min(ce, info.clipEnd))).filter { Double(c.clipTimes[2 * $0]) < t }
            if !clips.isEmpty { return (s, clips.map { Int32($0) }) }
        }
        return nil
    }

    /// The forecast after time `t` of the corpus's video `v`, with `candidates` ranked (none: no ranking).
    public static func run(model: TaskModel, kind: Checkpoint.Kind, corpus: TaskCorpus, video v: Int, at t: Double, candidates: [String],
                           options: NextStepVideoOptions = NextStepVideoOptions()) throws -> NextStepVideoResult {
        let info = corpus.corpus.index.videos[v]
        guard let now = current(corpus, video: v, at: t) else {
            throw VideoBertError(String(format: "no clip begins before %.2f s", t), file: info.source ?? info.id)
        }
        let (s, clips) = now
        let c = corpus.corpus
        let words = clips.map { c.clipWords[Int($0)] }
        let sentence = Array(c.text(of: s))
        let times = c.times(of: s)
        var result = NextStepVideoResult(video: info.id, checkpoint: model.folder, kind: kind.rawValue, at: t, duration: info.duration,
                                         segment: s - info.segmentBegin, start: Double(times.start), end: Double(times.end),
                                         text: model.decode(sentence), context: words, visual: nil, generated: nil, scoring: nil, candidates: [])
        func ranked(_ scores: [Double]) -> [NextStepVideoResult.Candidate] {
            let order = scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
            return order.enumerated().map { r, i in .init(text: candidates[i], line: i, score: scores[i], rank: r + 1) }
        }
        if kind.isForecaster {
            let generator = CaptionGenerator(model: model)
            var gen = options.generation
            gen.maxTokens = max(1, min(gen.maxTokens, model.maxSeq - 5))
            let step = ResolvedStep(step: AnnotatedStep(video: info.id, index: s - info.segmentBegin, start: Double(times.start), end: t, captions: []),
                                    video: v, split: info.split, visual: words, clips: clips)
            let video = generator.videoPart(generator.videos([step], options: gen)[0], options: gen)
            result.generated = generator.generate([video], options: gen)[0].text
            if !candidates.isEmpty {
                let tokens = candidates.map { Array(model.encode($0).prefix(gen.maxTokens)) }
                result.scoring = "generator log-likelihood (\(options.score.rawValue))"
                result.candidates = ranked(NextStepForecast.generatorLogLikelihoods(generator: generator, video: video, candidates: tokens, aggregate: options.score))
            }
            return result
        }
        guard model.clipInput == nil else {
            throw VideoBertError("is a \(kind.rawValue) checkpoint (clip features in, no visual words): next-step reads VideoBERT checkpoints and forecasters", file: model.folder)
        }
        // Visual words: VisualForecast's input and context cap.
        let h = options.horizon
        guard h >= 1 else { throw VideoBertError("the horizon must be at least 1") }
        let contextCap = max(1, min(ForecastOptions().maxVideoTokens, model.maxSeq - h - 2))
        let context = Array(words.suffix(contextCap))
        var positions: [NextStepVideoResult.Position] = []
        model.forEachBatch([VisualForecast.input(context, masks: h, model: model)]) { _, _, _, encoded in
            let rows = (0..<h).map { Int32(1 + context.count + $0) }
            model.withVisualLogProbabilities(encoded, rows: rows) { j, row in
                let top = topIndices(row, k: min(options.top, row.count))
                positions.append(.init(position: j + 1, top: top.map { .init(word: Int32($0), logProbability: Double(row[$0])) }))
            }
        }
        var f = ForecastOptions()
        f.horizon = h; f.samples = options.samples; f.temperature = options.temperature; f.topK = options.topK; f.seed = options.seed
        let samples = VisualForecast.sample(model: model, contexts: [context], options: f)[0]
        result.visual = .init(positions: positions, forecast: positions.map { $0.top.first?.word ?? 0 }, samples: samples)
        // Candidates: NextStepRanking's caps and score.
        if !candidates.isEmpty {
            let text = NextStepTextOptions()
            let textCap = max(1, min(text.maxTextTokens, (model.maxSeq - 4) / 3))
            let videoCap = max(0, min(text.maxVideoTokens, model.maxSeq - 3 - 2 * textCap))
            let tokens = candidates.map { Array(model.encode($0).prefix(textCap)) }
            result.scoring = "masked pseudo-log-likelihood (\(options.score.rawValue))"
            result.candidates = ranked(NextStepRanking.pseudoLogLikelihoods(model: model, context: Array(sentence.suffix(textCap)), candidates: tokens,
                                                                           video: Array(words.prefix(videoCap)), aggregate: options.score))
        }
        return result
    }
}
