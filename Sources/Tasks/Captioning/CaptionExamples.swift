import Foundation
import Model
import Tensor
import Tokenize

// DESIGN DECISION, captioning with the pretrained BERT itself (no decoder added): conditional
// generation one word at a time with only a padding mask. To predict word k+1 of a caption the
// model reads
//
//     [CLS] w1 … wk [MASK] [>] v1 … vm [SEP]        (token types 0 … 0 0 0 1 … 1 1)
//
// and its MLM head at the [MASK] gives the next word; the caption ends when [SEP] is predicted.
// This is VideoBERT's own input layout and objective (MLM over the text given the visual words,
// Sun et al. 2019 §3.2), so fine-tuning starts in distribution and reuses `forwardBackward`
// with `textRows` = the [MASK] position. Training examples are (caption, prefix length k) pairs
// for k = 0 … n of every training caption (target w_{k+1}, or [SEP] at k = n), visited in a
// seeded random order, epoch after epoch. The price: one target per sequence (a causal mask
// would give n), so an epoch costs n+1 forward passes per caption — small next to pretraining.
//
// DESIGN DECISION, captioners from CBT checkpoints (clip features in): a CBT checkpoint has no
// visual words; its product is the visual transformer's contextual clip features (D wide). The
// captioner is then the CBT's text BERT reading the same layout, with the v_i positions given
// as vectors: v_i = W·h_i + b, h_i the i-th clip's feature (the CBT front-end and visual
// transformer run once over the step's clips, frozen), W, b a new trained projection into the
// BERT's C-wide embedding space (ClipProjection), to which the BERT adds position and token
// type 1 embeddings and its embedding LayerNorm, as for a word. Frozen features follow CBT's own
// downstream protocol (CBT §4: captioning and anticipation models read the pretrained visual
// transformer's outputs) and make an epoch cost no visual forward passes; the projection and
// every BERT weight train. A batch carries the features (D wide) in `inputEmbeddings`; the
// task projects them before the BERT reads them (CaptionTrainingTask).

/// One training caption and the visual words (or clip features) of its step.
public struct CaptionItem: Sendable, Equatable {
    public var imageID: String
    /// WordPieces (at most max_caption_tokens).
    public var text: [Int32]
    /// Visual words 0..<Vvis (at most max_video_tokens); empty for clip-feature captioners.
    public var video: [Int32]
    /// Clip-feature captioners: the step's rows of the examples' feature table (at most
    /// max_video_tokens); empty otherwise.
    public var featureRows: Range<Int>
    /// Clip-feature captioners that tune the visual path: the step's clips (corpus indices, at
    /// most max_video_tokens), whose features are computed every step; empty otherwise.
    public var clips: [Int32]

    public init(imageID: String, text: [Int32], video: [Int32], featureRows: Range<Int> = 0..<0, clips: [Int32] = []) {
        self.imageID = imageID; self.text = text; self.video = video; self.featureRows = featureRows; self.clips = clips
    }
}

/// Which step's sentence a captioner is trained to generate from a step's video: its own
/// (captioning) or the next annotated step's of the same video (next-step forecasting,
/// `videobert finetune next-step`: the same layout and objective with the following step's
/// sentence as the target, as CBT §4.3's anticipation reads the current segment to predict the
/// next one).
public enum CaptionTarget: String, Sendable, Codable, CaseIterable {
    case caption
    case nextStep = "next-step"

    /// (source step, sentences to generate from it): every step with its own captions, or every
    /// step followed by another step of the same video (annotations keep a video's steps
    /// together, in time order) with that next step's captions.
    public func pairs(_ steps: [ResolvedStep]) -> [(source: ResolvedStep, captions: [String])] {
        switch self {
        case .caption: return steps.map { ($0, $0.step.captions) }
        case .nextStep:
            return steps.indices.dropLast().compactMap { i in
                steps[i + 1].step.video == steps[i].step.video ? (steps[i], steps[i + 1].step.captions) : nil
            }
        }
    }
}

/// The input layout of captioning (see the design note above).
public enum CaptionInput {
    /// `[CLS] prefix [MASK] [>] video [SEP]` and the position of the [MASK].
    /// - Parameter video: joint-vocabulary ids (Ttext + word).
    public static func sequence(prefix: [Int32], video: [Int32], special: SpecialTokens) -> (sequence: TaskSequence, mask: Int) {
        (TaskSequence.joint(text: prefix + [special.mask], video: video, special: special), 1 + prefix.count)
    }

    /// `[CLS] prefix [MASK] [>] x1 … xn [SEP]` with the n video positions left to input vectors
    /// ([PAD] ids, token type 1), the [MASK]'s position and the video positions.
    public static func sequence(prefix: [Int32], videoVectors n: Int, special: SpecialTokens) -> (sequence: TaskSequence, mask: Int, video: Range<Int>) {
        let s = TaskSequence.joint(text: prefix + [special.mask], video: [Int32](repeating: special.pad, count: n), special: special)
        let first = prefix.count + 3
        return (s, 1 + prefix.count, first..<(first + n))
    }

    /// Training captions of a clip-feature captioner: every caption of every step that has
    /// clips, with `features[i]` the features ([clips, D] row-major) of `steps[i]`; and the
    /// feature table the items' rows index (each step's rows stored once).
    public static func featureItems(_ steps: [ResolvedStep], features: [[Float]], featureSize D: Int, encode: (String) -> [Int32],
                                    maxCaptionTokens: Int, target: CaptionTarget = .caption) -> (items: [CaptionItem], table: [Float]) {
        var items: [CaptionItem] = [], table: [Float] = []
        var featuresOf: [String: [Float]] = [:]
        for (r, f) in zip(steps, features) { featuresOf[r.step.imageID] = f }
        for (r, captions) in target.pairs(steps) {
            guard let f = featuresOf[r.step.imageID], !f.isEmpty else { continue }
            let rows = (table.count / D)..<((table.count + f.count) / D)
            var used = false
            for c in captions {
                let ids = encode(c)
                if ids.isEmpty { continue }
                items.append(CaptionItem(imageID: r.step.imageID, text: Array(ids.prefix(maxCaptionTokens)), video: [], featureRows: rows))
                used = true
            }
            if used { table += f }
        }
        return (items, table)
    }

    /// Training captions of a captioner that tunes the visual path: every caption of every step
    /// with clips, with the step's first `maxClips` clips.
    public static func clipItems(_ steps: [ResolvedStep], encode: (String) -> [Int32], maxCaptionTokens: Int, maxClips: Int,
                                 target: CaptionTarget = .caption) -> [CaptionItem] {
        var out: [CaptionItem] = []
        for (r, captions) in target.pairs(steps) where !r.clips.isEmpty {
            for c in captions {
                let ids = encode(c)
                if ids.isEmpty { continue }
                out.append(CaptionItem(imageID: r.step.imageID, text: Array(ids.prefix(maxCaptionTokens)), video: [], clips: Array(r.clips.prefix(maxClips))))
            }
        }
        return out
    }

    /// Training captions: every caption of every step that has visual words, tokenized and cut.
    public static func items(_ steps: [ResolvedStep], encode: (String) -> [Int32], maxCaptionTokens: Int, maxVideoTokens: Int,
                             target: CaptionTarget = .caption) -> [CaptionItem] {
        var out: [CaptionItem] = []
        for (r, captions) in target.pairs(steps) where !r.visual.isEmpty {
            for c in captions {
                let ids = encode(c)
                if ids.isEmpty { continue }
                out.append(CaptionItem(imageID: r.step.imageID, text: Array(ids.prefix(maxCaptionTokens)), video: Array(r.visual.prefix(maxVideoTokens))))
            }
        }
        return out
    }
}

/// (caption, prefix) pairs in a seeded random order, deterministic and resumable: `state`
/// captures the position, so a resumed run sees exactly the batches an uninterrupted one would.
public final class CaptionExamples {
    public struct State: Codable, Sendable, Equatable {
        public var rng: SeededRNG
        public var epoch: Int
        public var cursor: Int
        public var order: [Int32]
    }

    /// What the video positions of a batch hold.
    public enum Video: Sendable {
        /// The items' visual words (VideoBERT checkpoints).
        case words
        /// Clip features from a table ([rows, D]) the items' `featureRows` index (frozen CBT
        /// features): batches carry them in `inputEmbeddings`.
        case features([Float], width: Int)
        /// The items' clips, whose features the caller computes (a captioner tuning the CBT
        /// visual path): batches mark the positions and leave `inputEmbeddings` empty.
        case clips
    }

    public let items: [CaptionItem]
    public let special: SpecialTokens
    public let textVocabSize: Int
    public let video: Video
    /// Pair p: caption pairItem[p] with its first pairPrefix[p] words given.
    let pairItem: [Int32]
    let pairPrefix: [Int32]
    public private(set) var state: State

    public var pairCount: Int { pairItem.count }

    public init(items: [CaptionItem], special: SpecialTokens, textVocabSize: Int, seed: UInt64, video: Video = .words) {
        self.items = items
        self.special = special
        self.textVocabSize = textVocabSize
        self.video = video
        var pi: [Int32] = [], pp: [Int32] = []
        for (i, item) in items.enumerated() {
            for k in 0...item.text.count { pi.append(Int32(i)); pp.append(Int32(k)) }
        }
        pairItem = pi
        pairPrefix = pp
        state = State(rng: SeededRNG(seed: seed), epoch: 0, cursor: 0, order: [])
        reshuffle()
    }

    public func restore(_ s: State) { state = s }

    /// Why `s` (read from a trainer_state.json) cannot be this sampler's state, or nil: the cursor
    /// and order are used as indices, so they are checked against these pairs.
    public func problem(with s: State) -> String? {
        guard s.epoch >= 0 else { return "sampler.epoch must not be negative" }
        guard s.order.count == pairItem.count else {
            return "sampler.order has \(s.order.count) pairs, these annotations \(pairItem.count)"
        }
        guard s.cursor >= 0, s.cursor <= s.order.count else { return "sampler.cursor = \(s.cursor) is outside 0...\(s.order.count)" }
        if let bad = s.order.first(where: { $0 < 0 || Int($0) >= pairItem.count }) {
            return "sampler.order holds pair \(bad), outside 0..<\(pairItem.count)"
        }
        return nil
    }

    func reshuffle() {
        var order = (0..<Int32(pairItem.count)).map { $0 }
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, state.rng.nextInt(i + 1)) }
        state.order = order
        state.cursor = 0
    }

    /// The next B pairs of the shuffled order, as a batch (a new epoch reshuffles).
    public func nextBatch(_ B: Int) -> PretrainingBatch { batch(nextPairs(B)) }

    /// The caption of pair `p`.
    public func item(ofPair p: Int) -> CaptionItem { items[Int(pairItem[p])] }

    /// The next B pairs of the shuffled order (a new epoch reshuffles).
    public func nextPairs(_ B: Int) -> [Int] {
        var pairs: [Int] = []
        for _ in 0..<B {
            if state.cursor >= state.order.count {
                state.epoch += 1
                reshuffle()
            }
            pairs.append(Int(state.order[state.cursor]))
            state.cursor += 1
        }
        return pairs
    }

    /// The batch of the given pairs, padded to the longest. For a clip-feature captioner its
    /// `inputEmbeddingRows` are the video positions and `inputEmbeddings` their clip FEATURES
    /// ([rows, D]; empty for `.clips`): the caller projects them to the BERT's width (see the
    /// design note).
    public func batch(_ pairs: [Int]) -> PretrainingBatch {
        build(pairs.map { (Int(pairItem[$0]), Int(pairPrefix[$0])) }, predict: true)
    }

    /// The item index of each pair's caption, each item once, in first-seen order.
    public func distinctItems(ofPairs pairs: [Int]) -> [Int] {
        var seen = Set<Int>(), out: [Int] = []
        for p in pairs where seen.insert(Int(pairItem[p])).inserted { out.append(Int(pairItem[p])) }
        return out
    }

    /// `[CLS] [MASK] [>] video [SEP]` of each given item (no prefix of its sentence: the video
    /// alone), with no word to predict: the input of the anticipation head, which reads the
    /// [CLS] row b·T. The video inputs as in `batch(_:)`.
    public func videoOnlyBatch(items indices: [Int]) -> PretrainingBatch {
        build(indices.map { ($0, 0) }, predict: false)
    }

    private func build(_ entries: [(item: Int, k: Int)], predict: Bool) -> PretrainingBatch {
        var sequences: [TaskSequence] = [], masks: [Int] = [], targets: [Int32] = []
        var videoPositions: [Range<Int>] = [], videoRows: [Range<Int>] = []
        for (index, k) in entries {
            let item = items[index]
            let prefix = Array(item.text.prefix(k))
            if case .words = video {
                let (s, m) = CaptionInput.sequence(prefix: prefix, video: item.video.map { Int32(textVocabSize) + $0 }, special: special)
                sequences.append(s)
                masks.append(m)
            } else {
                let n = if case .clips = video { item.clips.count } else { item.featureRows.count }
                let (s, m, v) = CaptionInput.sequence(prefix: prefix, videoVectors: n, special: special)
                sequences.append(s)
                masks.append(m)
                videoPositions.append(v)
                videoRows.append(item.featureRows)
            }
            targets.append(k < item.text.count ? item.text[k] : special.sep)
        }
        let B = entries.count, T = sequences.map(\.count).max() ?? 1
        var batch = PretrainingBatch(B: B, T: T, inputIDs: .init(repeating: special.pad, count: B * T),
                                     tokenTypeIDs: .init(repeating: 0, count: B * T), attentionMask: .init(repeating: 0, count: B * T),
                                     textRows: [], textTargets: [], videoRows: [], videoTargets: [],
                                     alignLabels: .init(repeating: 0, count: B), alignWeights: .init(repeating: 0, count: B))
        for (b, s) in sequences.enumerated() {
            for t in 0..<s.count {
                batch.inputIDs[b * T + t] = s.ids[t]
                batch.tokenTypeIDs[b * T + t] = s.types[t]
                batch.attentionMask[b * T + t] = 1
            }
            if predict {
                batch.textRows.append(Int32(b * T + masks[b]))
                batch.textTargets.append(targets[b])
            }
        }
        for b in videoPositions.indices {
            batch.inputEmbeddingRows += videoPositions[b].map { Int32(b * T + $0) }
            if case .features(let table, let D) = video {
                batch.inputEmbeddings += table[(videoRows[b].lowerBound * D)..<(videoRows[b].upperBound * D)]
            }
        }
        return batch
    }
}
