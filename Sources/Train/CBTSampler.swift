import Foundation
import Model
import Tensor
import Tokenize

/// Draws CBT batches from one split of a tokenized corpus, deterministically (the same seed gives
/// the same batches; `currentState` is all a resumed run needs).
///
/// A batch has min(B, videos in the split) examples from DIFFERENT videos, so that every other
/// example's clips are true negatives for masked-frame NCE and every other example's video a
/// negative of the cross-modal NCE (CBT §3.2–3.3: negatives from other videos of the batch).
/// Example: a random video, a random anchor segment of it with text and clips, and 1…concat_max
/// consecutive segments from there: their texts joined ([CLS] text [SEP], cut at
/// max_text_tokens) and their clips (cut at max_clips). Text is masked as BERT (80/10/10); clips
/// with clip_mask_prob, at least one masked and one visible when there are two or more; each
/// masked clip gets K negatives drawn uniformly from the clips of the batch's other examples.
public final class CBTSampler {
    public struct State: Codable, Sendable, Equatable {
        public var rng: SeededRNG
    }

    let corpus: TokenizedCorpus
    let settings: CBTRecipe.Data
    let special: SpecialTokens
    let inputs: ClipInputs
    let textVocabSize: Int
    /// Per video of the split (with at least one anchor): its anchor segments (text and clips).
    let anchors: [[Int]]
    var state: State

    public var currentState: State { state }
    public func restore(_ s: State) { state = s }
    /// Videos of the split with something to train on.
    public var videoCount: Int { anchors.count }

    init(corpus: TokenizedCorpus, split: String, settings: CBTRecipe.Data, special: SpecialTokens, inputs: ClipInputs, seed: UInt64) throws {
        self.corpus = corpus
        self.settings = settings
        self.special = special
        self.inputs = inputs
        textVocabSize = corpus.index.textVocab.size
        var anchors: [[Int]] = []
        for video in corpus.index.videos where video.split == split {
            let list = (video.segmentBegin..<video.segmentEnd).filter(Self.hasTextAndClips(corpus))
            if !list.isEmpty { anchors.append(list) }
        }
        guard anchors.count >= 2 else {
            throw VideoBertError("the '\(split)' split has \(anchors.count) video(s) with text and clips; CBT needs at least 2 (negatives come from other videos)", file: corpus.path)
        }
        self.anchors = anchors
        state = State(rng: SeededRNG(seed: seed))
    }

    static func hasTextAndClips(_ corpus: TokenizedCorpus) -> (Int) -> Bool {
        { s in corpus.textOffsets[s + 1] > corpus.textOffsets[s] && corpus.segmentClips[2 * s + 1] > corpus.segmentClips[2 * s] }
    }

    struct Example {
        var text: [Int32]
        /// Global clip indices, in time order.
        var clips: [Int]
    }

    /// Text and clips of `count` consecutive segments of one video from `s`.
    func span(from s: Int, count: Int) -> Example {
        let video = corpus.segmentVideo[s]
        var text: [Int32] = []
        var k = s, end = Int(corpus.segmentClips[2 * s + 1])
        while k < corpus.segmentCount && k < s + count && corpus.segmentVideo[k] == video {
            text += corpus.text(of: k)
            end = max(end, Int(corpus.segmentClips[2 * k + 1]))
            k += 1
        }
        let begin = Int(corpus.segmentClips[2 * s])
        return Example(text: Array(text.prefix(settings.maxTextTokens)), clips: Array((begin..<end).prefix(settings.maxClips)))
    }

    /// The next training batch of up to B examples (one per video).
    public func nextBatch(_ B: Int, nceNegatives K: Int, crossCandidates: Int) -> CBTBatch {
        let n = min(B, anchors.count)
        var order = Array(0..<anchors.count)
        for i in 0..<n { order.swapAt(i, i + state.rng.nextInt(order.count - i)) }   // partial Fisher–Yates: n distinct videos
        let examples = order.prefix(n).map { v -> Example in
            let list = anchors[v]
            let anchor = list[state.rng.nextInt(list.count)]
            return span(from: anchor, count: 1 + state.rng.nextInt(settings.concatMax))
        }
        let K1x = crossCandidates == 0 ? n : min(crossCandidates, n)
        return assemble(examples, K: K, crossCandidates: K1x)
    }

    /// Every segment of the split with text and clips, in corpus order (held-out retrieval).
    public var retrievalSegments: [Int] { anchors.flatMap { $0 } }

    func assemble(_ examples: [Example], K: Int, crossCandidates: Int) -> CBTBatch {
        let B = examples.count
        // Text: [CLS] w… [SEP], BERT masking.
        let T = examples.map { $0.text.count + 2 }.max()!
        var ids = [Int32](repeating: special.pad, count: B * T), attention = [Float](repeating: 0, count: B * T)
        var textRows: [Int32] = [], textTargets: [Int32] = []
        for (b, ex) in examples.enumerated() {
            let row = b * T
            ids[row] = special.cls
            for (i, t) in ex.text.enumerated() { ids[row + 1 + i] = t }
            ids[row + 1 + ex.text.count] = special.sep
            for i in 0..<(ex.text.count + 2) { attention[row + i] = 1 }
            for (i, t) in ex.text.enumerated() where state.rng.nextDouble() < settings.maskProb {
                textRows.append(Int32(row + 1 + i)); textTargets.append(t)
                let u = state.rng.nextDouble()
                if u < settings.maskTokenProb { ids[row + 1 + i] = special.mask }
                else if u < settings.maskTokenProb + settings.randomTokenProb { ids[row + 1 + i] = Int32(state.rng.nextInt(textVocabSize)) }
            }
        }
        let text = PretrainingBatch(B: B, T: T, inputIDs: ids, tokenTypeIDs: .init(repeating: 0, count: B * T), attentionMask: attention,
                                    textRows: textRows, textTargets: textTargets, videoRows: [], videoTargets: [],
                                    alignLabels: .init(repeating: 0, count: B), alignWeights: .init(repeating: 0, count: B))
        // Clips: rows in example order; sequences padded to the longest.
        let Tv = examples.map(\.clips.count).max()!
        var clipRows = [Int32](repeating: -1, count: B * Tv), owner: [Int] = [], globalClips: [Int] = []
        for (b, ex) in examples.enumerated() {
            for (t, c) in ex.clips.enumerated() {
                clipRows[b * Tv + t] = Int32(globalClips.count)
                owner.append(b)
                globalClips.append(c)
            }
        }
        var maskedRows: [Int32] = [], candidates: [Int32] = []
        for (b, ex) in examples.enumerated() {
            let L = ex.clips.count
            guard L >= 2 else { continue }
            var chosen = (0..<L).filter { _ in state.rng.nextDouble() < settings.clipMaskProb }
            if chosen.isEmpty { chosen = [state.rng.nextInt(L)] }
            if chosen.count == L { chosen.remove(at: state.rng.nextInt(L)) }
            for t in chosen { maskedRows.append(Int32(b * Tv + t)) }
        }
        // Negatives: clips of the other examples (other videos).
        let othersOf: [[Int32]] = (0..<B).map { b in owner.indices.filter { owner[$0] != b }.map { Int32($0) } }
        for r in maskedRows {
            let others = othersOf[Int(r) / Tv]
            candidates.append(clipRows[Int(r)])
            for _ in 0..<K { candidates.append(others[state.rng.nextInt(others.count)]) }
        }
        let (frames, features) = inputs.rows(globalClips)
        return CBTBatch(B: B, text: text, clipCount: globalClips.count, frames: frames, features: features, Tv: Tv, clipRows: clipRows,
                        maskedRows: maskedRows, K1: 1 + K, candidates: candidates, crossCandidates: crossCandidates)
    }
}
