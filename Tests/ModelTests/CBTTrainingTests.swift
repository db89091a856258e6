import XCTest
import Tensor
@testable import Model

/// Retrieval metrics on hand-made matrices, pixel normalisation, and the front-end learning
/// through the NCE loss.
final class CBTTrainingTests: XCTestCase {
    /// 4 pairs worked by hand. Rows (text→video): the diagonal's rank among its row; a tie with
    /// another entry counts against it.
    func testRetrievalMetricsOnAHandMadeMatrix() {
        let similarity: [Float] = [
            0.9, 0.1, 0.2, 0.3,     // row 0: diagonal 0.9 highest             → rank 1
            0.8, 0.5, 0.1, 0.0,     // row 1: 0.8 > 0.5                        → rank 2
            0.1, 0.2, 0.3, 0.3,     // row 2: tie 0.3 = 0.3                    → rank 2
            0.5, 0.6, 0.7, 0.1,     // row 3: three above 0.1                  → rank 4
        ]
        // Columns (video→text): col 0 [.9 .8 .1 .5] → 1; col 1 [.1 .5 .2 .6] → 2;
        // col 2 [.2 .1 .3 .7] → 2; col 3 [.3 0 .3 .1] → 3.
        let (t2v, v2t) = RetrievalMetrics.textVideo(similarity: similarity, N: 4)
        XCTAssertEqual(t2v, RetrievalMetrics(recallAt1: 0.25, recallAt5: 1, recallAt10: 1, medianRank: 2, meanRank: 2.25, count: 4))
        XCTAssertEqual(v2t, RetrievalMetrics(recallAt1: 0.25, recallAt5: 1, recallAt10: 1, medianRank: 2, meanRank: 2, count: 4))
    }

    /// 12 rows whose diagonal ranks are set by hand: every row has (rank − 1) entries above its
    /// diagonal. Checks R@5, R@10 and an even-count median; video→text of the transpose equals
    /// text→video of the matrix.
    func testRecallAtFiveAndTenAndTheMedian() {
        let ranks = [1, 1, 2, 3, 5, 6, 10, 11, 12, 1, 4, 7]
        let N = ranks.count
        var similarity = [Float](repeating: 0.1, count: N * N)
        for i in 0..<N {
            similarity[i * N + i] = 0.5
            let others = (0..<N).filter { $0 != i }
            for j in others.prefix(ranks[i] - 1) { similarity[i * N + j] = 0.9 }
        }
        let (t2v, _) = RetrievalMetrics.textVideo(similarity: similarity, N: N)
        XCTAssertEqual(t2v.recallAt1, 3.0 / 12)
        XCTAssertEqual(t2v.recallAt5, 7.0 / 12)
        XCTAssertEqual(t2v.recallAt10, 10.0 / 12)
        XCTAssertEqual(t2v.medianRank, 4.5)          // sorted ranks 1 1 1 2 3 4 | 5 6 7 10 11 12
        XCTAssertEqual(t2v.meanRank, 63.0 / 12)
        var transposed = similarity
        for i in 0..<N { for j in 0..<N { transposed[j * N + i] = similarity[i * N + j] } }
        XCTAssertEqual(RetrievalMetrics.textVideo(similarity: transposed, N: N).videoToText, t2v)
        // Everything alike: every true pair ranks last, not first.
        let flat = RetrievalMetrics.textVideo(similarity: [Float](repeating: 1, count: 9), N: 3)
        XCTAssertEqual(flat.textToVideo.recallAt1, 0)
        XCTAssertEqual(flat.textToVideo.medianRank, 3)
    }

    func testPixelNormalisation() {
        let pixels: [UInt8] = [0, 128, 255, 255, 0, 64]
        let out = Floats(count: 6)
        pixels.withUnsafeBufferPointer { normalizePixels(out: out.p, pixels: $0.baseAddress!, P: 2, normalization: .imageNet) }
        let mean: [Float] = [0.485, 0.456, 0.406], std: [Float] = [0.229, 0.224, 0.225]
        for i in 0..<6 {
            XCTAssertEqual(out[i], (Float(pixels[i]) / 255 - mean[i % 3]) / std[i % 3])
        }
        XCTAssertEqual(out[0], -2.1179, accuracy: 1e-4)   // torchvision's well-known minimum for red
    }

    /// The stored frame sizes, 32×32 and 64×64: shapes through the network, and a batch smaller
    /// than the arena's maximum gives the same embeddings as those clips alone in a full batch.
    func testFrontEndOn32And64PixelFrames() throws {
        for S in [32, 64] {
            let config = ConvFrontEndConfig(frameSize: S, framesPerClip: 2, channels: [4, 6, 8], outputSize: 5)
            let store = try ParameterStore(ConvFrontEnd.parameterSpecs(config))
            var rng = SeededRNG(seed: UInt64(S))
            ConvFrontEnd.initializeParameters(config, store: store, rng: &rng)
            var layout = ArenaLayout()
            let frontEnd = try ConvFrontEnd(config: config, store: store, maxClips: 3, layout: &layout)
            XCTAssertEqual(frontEnd.convolutions.map { [$0.OH, $0.OW, $0.OC] }, [[S, S, 4], [S / 2, S / 2, 6], [S / 4, S / 4, 8]])
            XCTAssertEqual(store.count, config.parameterCount)
            let arena = Arena(layout)
            var frames = [UInt8](repeating: 0, count: 3 * 2 * S * S * 3)
            for i in frames.indices { frames[i] = UInt8(rng.nextInt(256)) }
            let (all, firstOnly) = frames.withUnsafeBufferPointer { pixels -> ([Float], [Float]) in
                let all = Array(UnsafeBufferPointer(start: frontEnd.forward(arena: arena, frames: pixels.baseAddress!, clips: 3), count: 15))
                let one = Array(UnsafeBufferPointer(start: frontEnd.forward(arena: arena, frames: pixels.baseAddress!, clips: 1), count: 5))
                return (all, one)
            }
            XCTAssertTrue(all.allSatisfy(\.isFinite))
            for i in 0..<5 { XCTAssertEqual(all[i], firstOnly[i], accuracy: 1e-5 * max(1, abs(all[i]))) }
            XCTAssertNotEqual(Array(all[0..<5]), Array(all[5..<10]))
            let dout = Floats(random: 5, rng: &rng)
            store.zeroGradients()
            frontEnd.backward(arena: arena, dout: dout.p, clips: 1)
            XCTAssertGreaterThan(store.gradient("frontend.conv1.weight").map(abs).max()!, 0, "no gradient reached conv1 at \(S)×\(S)")
        }
    }

    /// The front-end trained through masked-frame NCE alone: each clip's embedding must pick out
    /// its own (fixed, random) target among all clips' embeddings. The loss falls, accuracy
    /// rises above chance, and the first convolution's weights move (gradients reach layer 1).
    func testFrontEndLearnsThroughNCE() throws {
        let clips = 8, D = 8
        let config = ConvFrontEndConfig(frameSize: 8, framesPerClip: 2, channels: [4, 8, 8], outputSize: D)
        let store = try ParameterStore(ConvFrontEnd.parameterSpecs(config))
        var rng = SeededRNG(seed: 77)
        ConvFrontEnd.initializeParameters(config, store: store, rng: &rng)
        var layout = ArenaLayout()
        let frontEnd = try ConvFrontEnd(config: config, store: store, maxClips: clips, layout: &layout)
        let probs = layout.add("nce.probs", [clips, clips]), losses = layout.add("nce.losses", [clips])
        let dembeddings = layout.add("d.embeddings", [clips, D])
        let arena = Arena(layout)
        // Distinct clips: each a random colour pattern.
        var frames = [UInt8](repeating: 0, count: clips * 2 * 8 * 8 * 3)
        for i in frames.indices { frames[i] = UInt8(rng.nextInt(256)) }
        let targets = Floats(random: clips * D, rng: &rng)
        // Row m: its own clip first, then every other clip as a negative.
        var candidates: [Int] = []
        for m in 0..<clips { candidates += [m] + (0..<clips).filter { $0 != m } }
        let candidateIds = Ints(candidates)
        let conv1Before = Array(store.parameter("frontend.conv1.weight"))
        var optimizer = AdamW(store: store, weightDecay: 0)
        var first: ContrastiveResult?, last = ContrastiveResult(loss: 0, correct: 0, count: 0)
        try frames.withUnsafeBufferPointer { pixels in
            for _ in 0..<60 {
                let embeddings = frontEnd.forward(arena: arena, frames: pixels.baseAddress!, clips: clips)
                last = maskedFrameNCEForward(probs: arena[probs], losses: arena[losses], predictions: targets.p,
                                             embeddings: embeddings, candidates: candidateIds.p, M: clips, K1: clips, D: D,
                                             NE: clips, temperature: 0.5)
                if first == nil { first = last }
                store.zeroGradients()
                arena.zero(dembeddings)
                maskedFrameNCEBackward(dpredictions: nil, dembeddings: arena[dembeddings], probs: arena[probs],
                                       predictions: targets.p, embeddings: embeddings, candidates: candidateIds.p,
                                       M: clips, K1: clips, D: D, temperature: 0.5)
                frontEnd.backward(arena: arena, dout: arena[dembeddings], clips: clips)
                let norm = gradientNorm(store)
                guard norm.isFinite else { throw VideoBertError("gradient norm \(norm)") }
                optimizer.update(store, lr: 1e-2)
            }
        }
        print("  front-end NCE: loss \(first!.loss) → \(last.loss), accuracy \(first!.accuracy) → \(last.accuracy)")
        XCTAssertLessThan(last.loss, 0.5 * first!.loss)
        XCTAssertGreaterThan(last.accuracy, 0.5)           // chance is 1/8
        let conv1After = Array(store.parameter("frontend.conv1.weight"))
        let moved = zip(conv1Before, conv1After).map { abs($0 - $1) }.max()!
        XCTAssertGreaterThan(moved, 1e-3, "the first convolution's weights did not move")
    }
}

extension RetrievalMetrics {
    init(recallAt1: Double, recallAt5: Double, recallAt10: Double, medianRank: Double, meanRank: Double, count: Int) {
        self = RetrievalMetrics(ranks: [])
        (self.recallAt1, self.recallAt5, self.recallAt10, self.medianRank, self.meanRank, self.count) =
            (recallAt1, recallAt5, recallAt10, medianRank, meanRank, count)
    }
}
