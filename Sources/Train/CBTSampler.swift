import Foundation
import Model
import Tensor
import Tokenize

/// The clips' stored visual input, loaded once from the corpus.
enum ClipInputs {
    /// uint8 [clips, F, S, S, 3] (clip_frames.npy) with F and S.
    case frames([UInt8], framesPerClip: Int, size: Int)
    /// float32 [clips, dim] (clip_features.npy).
    case features([Float], dim: Int)

    /// Reads what `source` ("frames" or "features") needs; errors name the corpus and the tokenize option.
    /// With `centerFrames`, each video's frames become their difference from the video's mean
    /// frame (per pixel and channel), stored as clamp(128 + x − mean): what stays is what changes
    /// within the video — hands, objects, actions — not its static background (the same reason
    /// Recipes/tokenize-demo.yaml centres clip features per video).
    static func load(corpus: TokenizedCorpus, source: String, centerFrames: Bool = false) throws -> ClipInputs {
        let name = source == "frames" ? "clip_frames" : "clip_features"
        let path = (corpus.path as NSString).appendingPathComponent(name + ".npy")
        guard corpus.index.extras.contains(name), FileManager.default.fileExists(atPath: path) else {
            throw VideoBertError("has no \(name).npy; tokenize with store.\(source): true for frontend.source \(source)", file: corpus.path)
        }
        let array = try NPY.read(path)
        guard array.shape.first == corpus.clipCount else {
            throw VideoBertError("has \(array.shape.first ?? 0) rows, the corpus \(corpus.clipCount) clips", file: path)
        }
        if source == "frames" {
            guard array.shape.count == 5, array.shape[2] == array.shape[3], array.shape[4] == 3 else {
                throw VideoBertError("expected uint8 [clips, frames, size, size, 3], got \(array.shape)", file: path)
            }
            var frames = try array.values(UInt8.self)
            if centerFrames { centerPerVideo(&frames, corpus: corpus, framesPerClip: array.shape[1], size: array.shape[2]) }
            return .frames(frames, framesPerClip: array.shape[1], size: array.shape[2])
        }
        guard array.shape.count == 2 else { throw VideoBertError("expected [clips, dim], got \(array.shape)", file: path) }
        return .features(try array.floats(), dim: array.shape[1])
    }
}

extension ClipInputs {
    /// The stored input of `clips` (corpus clip indices), in order: frames (front-end "frames",
    /// features empty) or features (front-end "features", frames empty).
    func rows(_ clips: [Int]) -> (frames: [UInt8], features: [Float]) {
        var frames: [UInt8] = [], features: [Float] = []
        switch self {
        case .frames(let all, let F, let S):
            let per = F * S * S * 3
            frames.reserveCapacity(clips.count * per)
            for c in clips { frames += all[(c * per)..<((c + 1) * per)] }
        case .features(let all, let dim):
            features.reserveCapacity(clips.count * dim)
            for c in clips { features += all[(c * dim)..<((c + 1) * dim)] }
        }
        return (frames, features)
    }
}

/// frames ← clamp(128 + frames − the video's mean frame), video by video (see `ClipInputs.load`).
func centerPerVideo(_ frames: inout [UInt8], corpus: TokenizedCorpus, framesPerClip F: Int, size S: Int) {
    let pixels = S * S * 3
    frames.withUnsafeMutableBufferPointer { all in
        let base = all.baseAddress!
        for video in corpus.index.videos where video.clipEnd > video.clipBegin {
            let first = video.clipBegin * F, count = (video.clipEnd - video.clipBegin) * F
            var mean = [Float](repeating: 0, count: pixels)
            for f in 0..<count {
                let frame = base + (first + f) * pixels
                for i in 0..<pixels { mean[i] += Float(frame[i]) }
            }
            for i in 0..<pixels { mean[i] /= Float(count) }
            for f in 0..<count {
                let frame = base + (first + f) * pixels
                for i in 0..<pixels { frame[i] = UInt8(max(0, min(255, (128 + Float(frame[i]) - mean[i]).rounded()))) }
            }
        }
    }
}

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
        return assemble(examples, mask: true, K: K, crossCandidates: K1x)
    }

    /// Every segment of the split with text and clips (one segment each, no concatenation), in
    /// corpus order, at most `maxPairs` (0: all), as unmasked examples in batches of ≤ B.
    public func retrievalBatches(_ B: Int, maxPairs: Int) -> [CBTBatch] {
        var segments = anchors.flatMap { $0 }
        if maxPairs > 0 { segments = Array(segments.prefix(maxPairs)) }
        var batches: [CBTBatch] = []
        var start = 0
        while start < segments.count {
            let chunk = segments[start..<min(start + B, segments.count)].map { span(from: $0, count: 1) }
            batches.append(assemble(chunk, mask: false, K: 1, crossCandidates: 1))
            start += B
        }
        return batches
    }

    func assemble(_ examples: [Example], mask: Bool, K: Int, crossCandidates: Int) -> CBTBatch {
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
            guard mask else { continue }
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
        if mask {
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
        }
        let (frames, features) = inputs.rows(globalClips)
        return CBTBatch(B: B, text: text, clipCount: globalClips.count, frames: frames, features: features, Tv: Tv, clipRows: clipRows,
                        maskedRows: maskedRows, K1: 1 + K, candidates: candidates, crossCandidates: crossCandidates)
    }
}
