import Foundation
import Model
import Tensor
import Train

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

/// One training caption and the visual words of its step.
public struct CaptionItem: Sendable, Equatable {
    public var imageID: String
    /// WordPieces (at most max_caption_tokens).
    public var text: [Int32]
    /// Visual words 0..<Vvis (at most max_video_tokens).
    public var video: [Int32]
}

/// The input layout of captioning (see the design note above).
public enum CaptionInput {
    /// `[CLS] prefix [MASK] [>] video [SEP]` and the position of the [MASK].
    /// - Parameter video: joint-vocabulary ids (Ttext + word).
    public static func sequence(prefix: [Int32], video: [Int32], special: SpecialTokens) -> (sequence: TaskSequence, mask: Int) {
        (TaskSequence.joint(text: prefix + [special.mask], video: video, special: special), 1 + prefix.count)
    }

    /// Training captions: every caption of every step that has visual words, tokenized and cut.
    public static func items(_ steps: [ResolvedStep], encode: (String) -> [Int32], maxCaptionTokens: Int, maxVideoTokens: Int) -> [CaptionItem] {
        var out: [CaptionItem] = []
        for r in steps where !r.visual.isEmpty {
            for c in r.step.captions {
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

    public let items: [CaptionItem]
    public let special: SpecialTokens
    public let textVocabSize: Int
    /// Pair p: caption pairItem[p] with its first pairPrefix[p] words given.
    let pairItem: [Int32]
    let pairPrefix: [Int32]
    public private(set) var state: State

    public var pairCount: Int { pairItem.count }

    public init(items: [CaptionItem], special: SpecialTokens, textVocabSize: Int, seed: UInt64) {
        self.items = items
        self.special = special
        self.textVocabSize = textVocabSize
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

    func reshuffle() {
        var order = (0..<Int32(pairItem.count)).map { $0 }
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, state.rng.nextInt(i + 1)) }
        state.order = order
        state.cursor = 0
    }

    /// The next B pairs of the shuffled order (a new epoch reshuffles).
    public func nextBatch(_ B: Int) -> PretrainingBatch {
        var pairs: [Int] = []
        for _ in 0..<B {
            if state.cursor >= state.order.count {
                state.epoch += 1
                reshuffle()
            }
            pairs.append(Int(state.order[state.cursor]))
            state.cursor += 1
        }
        return batch(pairs)
    }

    /// The batch of the given pairs, padded to the longest.
    public func batch(_ pairs: [Int]) -> PretrainingBatch {
        var sequences: [TaskSequence] = [], masks: [Int] = [], targets: [Int32] = []
        for p in pairs {
            let item = items[Int(pairItem[p])], k = Int(pairPrefix[p])
            let (s, m) = CaptionInput.sequence(prefix: Array(item.text.prefix(k)), video: item.video.map { Int32(textVocabSize) + $0 },
                                               special: special)
            sequences.append(s)
            masks.append(m)
            targets.append(k < item.text.count ? item.text[k] : special.sep)
        }
        let B = pairs.count, T = sequences.map(\.count).max() ?? 1
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
            batch.textRows.append(Int32(b * T + masks[b]))
            batch.textTargets.append(targets[b])
        }
        return batch
    }
}
