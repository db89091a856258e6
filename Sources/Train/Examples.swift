import Foundation
import Model
import Tensor
import Recipe
import Tokenize

/// How examples are built (VideoBERT §3.2–§4.2 and BERT §3.1). See `PretrainRecipe.Data`.
public struct ExampleSettings: Sendable, Codable, Equatable {
    /// Ranges of these settings under `prefix` (RecipeSection.limits of the recipes that hold them).
    public static func limits(prefix p: String) -> [String: RecipeLimit] {
        [p + "max_text_tokens": .int(1...65_536), p + "max_video_tokens": .int(1...65_536), p + "concat_max": .int(1...1024),
         p + "text_video": .number(0...1e6), p + "text_only": .number(0...1e6), p + "video_only": .number(0...1e6),
         p + "mask_prob": .probability, p + "mask_token_prob": .probability, p + "random_token_prob": .probability,
         p + "align_negative": .probability, p + "max_audio_tokens": .int(1...65_536), p + "align_audio_negative": .probability]
    }
    /// Text WordPieces kept per example (the head of the sentence; the rest is cut).
    public var maxTextTokens = 48
    /// Visual words kept per example (the first clips; the rest are cut).
    public var maxVideoTokens = 48
    /// Up to this many consecutive segments of one video are joined into one example
    /// (a random number from 1 to this), so the model sees longer context.
    public var concatMax = 2
    /// Mix of the three regimes (normalised): text+video (MLM + MFM + alignment), text only (MLM),
    /// video only (MFM over consecutive segments).
    public var textVideo = 0.6
    public var textOnly = 0.2
    public var videoOnly = 0.2
    /// BERT's masking: this fraction of tokens is chosen; of those 80% become [MASK], 10% a random
    /// token of the same modality, 10% stay.
    public var maskProb = 0.15
    public var maskTokenProb = 0.8
    public var randomTokenProb = 0.1
    /// Fraction of text+video examples whose video is replaced by another video's (label 0).
    public var alignNegative = 0.5
    /// With audio (`model.modalities` has audio): audio words kept per example (the first clips'),
    /// and the fraction of the alignment negatives whose AUDIO is another video's instead of
    /// their video (text and video aligned, the sound not: label 0).
    public var maxAudioTokens = 48
    public var alignAudioNegative = 0.5

    public init() {}

    enum CodingKeys: String, CodingKey {
        case maxTextTokens = "max_text_tokens", maxVideoTokens = "max_video_tokens", concatMax = "concat_max"
        case textVideo = "text_video", textOnly = "text_only", videoOnly = "video_only"
        case maskProb = "mask_prob", maskTokenProb = "mask_token_prob", randomTokenProb = "random_token_prob"
        case alignNegative = "align_negative"
        case maxAudioTokens = "max_audio_tokens", alignAudioNegative = "align_audio_negative"
    }
}

/// Draws pretraining examples from one split of a tokenized corpus, deterministically: the same
/// seed gives the same batches, and `state` captures the position so a resumed run continues
/// with exactly the batches an uninterrupted run would have seen.
public final class ExampleSampler {
    public struct State: Codable, Sendable, Equatable {
        /// Draws the per-epoch orders (shuffles) only.
        public var rng: SeededRNG
        public var epoch: Int
        public var cursors: [Int]
        public var orders: [[Int32]]
        /// Global batches drawn so far; with the seed it names every example's random stream.
        public var batches: Int
        /// The seed of the per-example streams.
        public var seed: UInt64
    }

    public let corpus: TokenizedCorpus
    public let settings: ExampleSettings
    public let textVocabSize: Int
    public let visualWords: Int
    /// Audio words in the joint vocabulary after the visual words; 0: examples without audio.
    public let audioWords: Int
    /// `[>>]` (`[unused1]`), between the video and the audio.
    let audioSeparator: Int32
    public let special: SpecialTokens
    /// Pools of anchor segments per regime: text+video, text, video.
    let pools: [[Int32]]
    var state: State

    public var currentState: State { state }

    /// - Parameter audioSeparator: with audio, the id of `[>>]`; examples then read
    ///   `[CLS] text [>] video [>>] audio [SEP]` (token types 0, 1, 2), the audio words those of
    ///   the same clips as the visual words (the corpus must have `clip_audio_words`).
    public init(corpus: TokenizedCorpus, split: String, settings: ExampleSettings, special: SpecialTokens, seed: UInt64,
                audioSeparator: Int32? = nil) throws {
        self.corpus = corpus
        self.settings = settings
        self.special = special
        textVocabSize = corpus.index.textVocab.size
        visualWords = corpus.index.visualVocab.words
        if let audioSeparator {
            guard let vocab = corpus.index.audioVocab, corpus.clipAudioWords != nil, vocab.words > 0 else {
                throw VideoBertError("has no audio words (clip_audio_words.npy): tokenize it with audio.enabled: true", file: corpus.path)
            }
            audioWords = vocab.words
            self.audioSeparator = audioSeparator
        } else {
            audioWords = 0
            self.audioSeparator = -1
        }
        var tv: [Int32] = [], t: [Int32] = [], v: [Int32] = []
        for s in corpus.segments(in: split) {
            let hasText = corpus.textOffsets[s + 1] > corpus.textOffsets[s]
            let hasVideo = corpus.visualOffsets[s + 1] > corpus.visualOffsets[s]
            if hasText && hasVideo { tv.append(Int32(s)) }
            if hasText { t.append(Int32(s)) }
            if hasVideo { v.append(Int32(s)) }
        }
        guard !t.isEmpty || !v.isEmpty else {
            throw VideoBertError("the '\(split)' split has no segments to train on", file: corpus.path)
        }
        pools = [tv, t, v]
        state = State(rng: SeededRNG(seed: seed), epoch: 0, cursors: [0, 0, 0], orders: [[], [], []], batches: 0, seed: seed)
        for k in 0..<3 { reshuffle(k) }
    }

    public func restore(_ s: State) { state = s }

    /// Why `s` (read from a trainer_state.json) cannot be this sampler's state, or nil: cursors and
    /// orders are used as indices, so each is checked against this corpus' pools.
    public func problem(with s: State) -> String? {
        guard s.epoch >= 0, s.batches >= 0 else { return "sampler.epoch and sampler.batches must not be negative" }
        guard s.cursors.count == 3, s.orders.count == 3 else { return "sampler.cursors and sampler.orders must have 3 entries" }
        for k in 0..<3 {
            guard s.orders[k].count == pools[k].count else {
                return "sampler.orders[\(k)] has \(s.orders[k].count) segments, this corpus' pool \(pools[k].count)"
            }
            guard s.cursors[k] >= 0, s.cursors[k] <= s.orders[k].count else {
                return "sampler.cursors[\(k)] = \(s.cursors[k]) is outside 0...\(s.orders[k].count)"
            }
            if let bad = s.orders[k].first(where: { $0 < 0 || Int($0) >= corpus.segmentCount }) {
                return "sampler.orders[\(k)] holds segment \(bad), outside 0..<\(corpus.segmentCount)"
            }
        }
        return nil
    }

    func reshuffle(_ k: Int) {
        var order = pools[k]
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, state.rng.nextInt(i + 1)) }
        state.orders[k] = order
        state.cursors[k] = 0
    }

    func nextAnchor(_ k: Int) -> Int {
        if state.cursors[k] >= state.orders[k].count {
            if k == 0 || pools[0].isEmpty { state.epoch += 1 }
            reshuffle(k)
        }
        let s = state.orders[k][state.cursors[k]]
        state.cursors[k] += 1
        return Int(s)
    }

    /// The regime of the next example: 0 text+video, 1 text, 2 video (empty pools skipped).
    func drawRegime(_ rng: inout SeededRNG) -> Int {
        var w = [settings.textVideo, settings.textOnly, settings.videoOnly]
        for k in 0..<3 where pools[k].isEmpty { w[k] = 0 }
        let total = w.reduce(0, +)
        var u = rng.nextDouble() * total
        for k in 0..<3 { if u < w[k] { return k }; u -= w[k] }
        return w.lastIndex { $0 > 0 }!
    }

    /// Text and visual words of `count` consecutive segments of one video starting at `s`.
    func span(from s: Int, count: Int) -> (text: [Int32], video: [Int32]) {
        let video = corpus.segmentVideo[s]
        var text: [Int32] = [], vis: [Int32] = []
        var k = s
        while k < corpus.segmentCount && k < s + count && corpus.segmentVideo[k] == video {
            text += corpus.text(of: k)
            vis += corpus.visual(of: k)
            k += 1
        }
        return (text, vis)
    }

    /// The audio words of the same segments' clips (`segment_clips`); empty without audio.
    func audioSpan(from s: Int, count: Int) -> [Int32] {
        guard audioWords > 0, let words = corpus.clipAudioWords else { return [] }
        let video = corpus.segmentVideo[s]
        var out: [Int32] = []
        var k = s
        while k < corpus.segmentCount && k < s + count && corpus.segmentVideo[k] == video {
            let (b, e) = (Int(corpus.segmentClips[2 * k]), Int(corpus.segmentClips[2 * k + 1]))
            if b < e { out += words.slice(b..<e) }
            k += 1
        }
        return out
    }

    struct Example {
        var ids: [Int32] = []
        var types: [Int32] = []
        var textRows: [Int32] = [], textTargets: [Int32] = []
        var videoRows: [Int32] = [], videoTargets: [Int32] = []
        var audioRows: [Int32] = [], audioTargets: [Int32] = []
        var alignLabel: Int32 = 0
        var alignWeight: Float = 0
    }

    /// Example `j` of a global batch: its random stream, regime and anchor are fixed for all
    /// ranks before any rank builds its slice (see `nextBatch(global:slice:)`).
    struct Plan { var rng: SeededRNG; var regime: Int; var anchor: Int }

    func makeExample(_ plan: Plan) -> Example {
        var rng = plan.rng
        let regime = plan.regime, anchor = plan.anchor
        let n = 1 + rng.nextInt(max(1, settings.concatMax))
        var (text, video) = span(from: anchor, count: n)
        var audio = audioSpan(from: anchor, count: n)
        var ex = Example()
        if regime == 0 {
            ex.alignWeight = 1
            ex.alignLabel = 1
            if rng.nextDouble() < settings.alignNegative, pools[0].count > 1 {
                // A video from another video of the corpus (VideoBERT's alignment negatives);
                // with audio, some negatives keep the video and take another video's audio.
                let replaceAudio = audioWords > 0 && rng.nextDouble() < settings.alignAudioNegative
                let myVideo = corpus.segmentVideo[anchor]
                for _ in 0..<16 {
                    let other = Int(pools[0][rng.nextInt(pools[0].count)])
                    if corpus.segmentVideo[other] != myVideo {
                        if replaceAudio { audio = audioSpan(from: other, count: n) } else { video = span(from: other, count: n).video }
                        ex.alignLabel = 0
                        break
                    }
                }
            }
        }
        if regime == 1 { video = []; audio = [] }
        if regime == 2 { text = [] }
        text = Array(text.prefix(settings.maxTextTokens))
        video = Array(video.prefix(settings.maxVideoTokens))
        audio = Array(audio.prefix(settings.maxAudioTokens))

        ex.ids.append(special.cls); ex.types.append(0)
        for t in text { ex.ids.append(t); ex.types.append(0) }
        if !text.isEmpty && !video.isEmpty { ex.ids.append(special.videoSeparator); ex.types.append(0) }
        let videoStart = ex.ids.count
        for v in video { ex.ids.append(Int32(textVocabSize) + v); ex.types.append(1) }
        if !video.isEmpty && !audio.isEmpty { ex.ids.append(audioSeparator); ex.types.append(1) }
        let audioStart = ex.ids.count
        let audioBase = Int32(textVocabSize + visualWords)
        for w in audio { ex.ids.append(audioBase + w); ex.types.append(2) }
        ex.ids.append(special.sep); ex.types.append(!audio.isEmpty ? 2 : video.isEmpty ? 0 : 1)

        // Masking (BERT §3.1 Task #1), positions relative to the example.
        for (i, t) in text.enumerated() where rng.nextDouble() < settings.maskProb {
            let pos = 1 + i
            ex.textRows.append(Int32(pos)); ex.textTargets.append(t)
            ex.ids[pos] = corrupt(t, rng: &rng, random: { r in Int32(r.nextInt(self.textVocabSize)) })
        }
        for (i, v) in video.enumerated() where rng.nextDouble() < settings.maskProb {
            let pos = videoStart + i
            ex.videoRows.append(Int32(pos)); ex.videoTargets.append(v)
            ex.ids[pos] = corrupt(Int32(textVocabSize) + v, rng: &rng, random: { r in Int32(self.textVocabSize + r.nextInt(self.visualWords)) })
        }
        // Masked audio-word modelling: the same masking over the audio words (drawn after the
        // text's and video's, so examples without audio draw exactly what they always drew).
        for (i, w) in audio.enumerated() where rng.nextDouble() < settings.maskProb {
            let pos = audioStart + i
            ex.audioRows.append(Int32(pos)); ex.audioTargets.append(w)
            ex.ids[pos] = corrupt(audioBase + w, rng: &rng, random: { r in audioBase + Int32(r.nextInt(self.audioWords)) })
        }
        return ex
    }

    func corrupt(_ original: Int32, rng: inout SeededRNG, random: (inout SeededRNG) -> Int32) -> Int32 {
        let u = rng.nextDouble()
        if u < settings.maskTokenProb { return special.mask }
        if u < settings.maskTokenProb + settings.randomTokenProb { return random(&rng) }
        return original
    }

    /// The next B examples, padded to the longest.
    public func nextBatch(_ B: Int) -> PretrainingBatch {
        nextBatch(global: B, slice: 0..<B)
    }

    /// Examples `slice` of the next global batch of G examples (data parallelism: rank r of N
    /// takes slice r·B..<(r+1)·B of a global batch of N·B). Every rank advances through the same
    /// global batch — regimes and anchors of all G examples are drawn, from per-example random
    /// streams named by (seed, batch, index) — but builds only its own examples, so the ranks
    /// read disjoint parts of the corpus, and the union of the slices is exactly the batch one
    /// process would draw with B = G.
    /// Every slice of width `chunk` of the next global batch of G examples (one process doing the
    /// work of all ranks, e.g. held-out evaluation).
    public func nextBatches(global G: Int, chunk: Int) -> [PretrainingBatch] {
        let plans = planGlobalBatch(G)
        return stride(from: 0, to: G, by: chunk).map { assemble(plans, Array($0..<min($0 + chunk, G))) }
    }

    func planGlobalBatch(_ G: Int) -> [Plan] {
        precondition(G > 0 && G < 1 << 24)
        var plans: [Plan] = []
        plans.reserveCapacity(G)
        for j in 0..<G {
            var rng = SeededRNG(seed: state.seed, stream: UInt64(state.batches) << 24 | UInt64(j))
            let regime = drawRegime(&rng)
            plans.append(Plan(rng: rng, regime: regime, anchor: nextAnchor(regime)))
        }
        state.batches += 1
        return plans
    }

    public func nextBatch(global G: Int, slice: Range<Int>) -> PretrainingBatch {
        precondition(slice.lowerBound >= 0 && slice.upperBound <= G && !slice.isEmpty)
        return assemble(planGlobalBatch(G), Array(slice))
    }

    /// Builds and pads the examples `indices` of a planned global batch.
    func assemble(_ plans: [Plan], _ indices: [Int]) -> PretrainingBatch {
        let B = indices.count
        let examples = indices.map { makeExample(plans[$0]) }
        let T = examples.map(\.ids.count).max()!
        var batch = PretrainingBatch(B: B, T: T, inputIDs: .init(repeating: special.pad, count: B * T),
                                     tokenTypeIDs: .init(repeating: 0, count: B * T), attentionMask: .init(repeating: 0, count: B * T),
                                     textRows: [], textTargets: [], videoRows: [], videoTargets: [],
                                     alignLabels: [], alignWeights: [])
        for (b, ex) in examples.enumerated() {
            for (i, id) in ex.ids.enumerated() {
                batch.inputIDs[b * T + i] = id
                batch.tokenTypeIDs[b * T + i] = ex.types[i]
                batch.attentionMask[b * T + i] = 1
            }
            batch.textRows += ex.textRows.map { Int32(b * T) + $0 }
            batch.textTargets += ex.textTargets
            batch.videoRows += ex.videoRows.map { Int32(b * T) + $0 }
            batch.videoTargets += ex.videoTargets
            batch.audioRows += ex.audioRows.map { Int32(b * T) + $0 }
            batch.audioTargets += ex.audioTargets
            batch.alignLabels.append(ex.alignLabel)
            batch.alignWeights.append(ex.alignWeight)
        }
        return batch
    }
}
