import Foundation
import XCTest
import Tensor
@testable import Model

/// The verb/noun anticipation head of next-step forecasters: finite differences for every
/// parameter and for the [CLS] input (the gradient the BERT receives), alone and through a
/// BERT (the forecaster's path: forwardKeepingHidden → head → backwardKeepingHidden), labels
/// outside the head's sets, and the file round trip.
final class AnticipationHeadTests: XCTestCase {
    /// Relative error of `analytic` against 4th-order central differences of `loss` in `p[i]`.
    func check(_ name: String, _ p: UnsafeMutableBufferPointer<Float>, analytic: [Float], h: Float = 1e-2,
               loss: () -> Double) -> Double {
        var diff = 0.0, numNorm = 0.0, anaNorm = 0.0
        for i in 0..<p.count {
            let saved = p[i]
            func at(_ d: Float) -> Double { p[i] = saved + d; return loss() }
            let numerical = (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * Double(h))
            p[i] = saved
            diff += (numerical - Double(analytic[i])) * (numerical - Double(analytic[i]))
            numNorm += numerical * numerical
            anaNorm += Double(analytic[i] * analytic[i])
        }
        XCTAssertGreaterThan(numNorm, 1e-10, name)
        return diff.squareRoot() / (numNorm.squareRoot() + anaNorm.squareRoot())
    }

    func testFiniteDifferences() throws {
        let C = 6, N = 4
        let head = try AnticipationHead(hiddenSize: C, verbs: ["cut", "stir", "pour"], nouns: ["eggs", "rice", "garlic", "milk", "salt"])
        head.initialize(std: 0.5, seed: 3)
        for name in [AnticipationHead.poolerBias, AnticipationHead.verbBias, AnticipationHead.nounBias] {
            let b = head.store.parameter(name)
            for i in 0..<b.count { b[i] = Float(i % 3) * 0.1 - 0.1 }
        }
        var rng = SeededRNG(seed: 9)
        // The input in a buffer of its own (the check perturbs it while the loss reads it).
        let cls = UnsafeMutableBufferPointer<Float>.allocate(capacity: N * C)
        defer { cls.deallocate() }
        for i in 0..<(N * C) { cls[i] = rng.nextGaussian() }
        // Row 2 has no verb label (−1); row 3's noun is outside the set (5): no loss there.
        let verbs: [Int32] = [0, 2, -1, 1], nouns: [Int32] = [4, 0, 3, 5]
        let scale: Float = 0.7
        func loss() -> Double { Double(scale * head.loss(head.forward(cls: Array(cls), rows: N), verbTargets: verbs, nounTargets: nouns, backward: false).loss) }
        head.store.zeroGradients()
        let out = head.loss(head.forward(cls: Array(cls), rows: N), verbTargets: verbs, nounTargets: nouns, scale: scale, backward: true)
        XCTAssertEqual(out.verbCount, 3)
        XCTAssertEqual(out.nounCount, 3)
        for slot in head.store.slots {
            let g = Array(head.store.gradient(slot.name))
            let relative = check(slot.name, head.store.parameter(slot.name), analytic: g, loss: loss)
            print("  d\(slot.name): relative error \(relative)")
            XCTAssertLessThanOrEqual(relative, 1e-3, slot.name)
        }
        let dCLS = try XCTUnwrap(out.dCLS)
        let relative = check("cls", cls, analytic: dCLS, loss: loss)
        print("  dcls: relative error \(relative)")
        XCTAssertLessThanOrEqual(relative, 1e-3)
        // A second backward ADDS to the head's gradients.
        let before = Array(head.store.gradient(AnticipationHead.verbWeight))
        _ = head.loss(head.forward(cls: Array(cls), rows: N), verbTargets: verbs, nounTargets: nouns, scale: scale, backward: true)
        let after = Array(head.store.gradient(AnticipationHead.verbWeight))
        for (a, b) in zip(after, before) { XCTAssertEqual(a, 2 * b, accuracy: 1e-5 * max(1, abs(b))) }
    }

    /// The forecaster's path: the head on the [CLS] row of `forwardKeepingHidden`, its d(cls) added
    /// to `hiddenGradient`, then `backwardKeepingHidden`: finite differences in the BERT's weights.
    func testFiniteDifferencesThroughTheBert() throws {
        let config = BertConfig(textVocabSize: 13, visualWords: 5, hiddenSize: 8, numHiddenLayers: 1, numAttentionHeads: 2,
                                intermediateSize: 12, maxPositionEmbeddings: 10, hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1)
        let model = try BertForPreTraining(config: config, maxBatch: 2, maxSeq: 8)
        randomizeParameters(model, seed: 2, std: 0.4)
        let head = try AnticipationHead(hiddenSize: 8, verbs: ["a", "b", "c"], nouns: ["x", "y"])
        head.initialize(std: 0.5, seed: 5, pooler: (UnsafePointer(model.store.parameter("bert.pooler.dense.weight").baseAddress!),
                                                    UnsafePointer(model.store.parameter("bert.pooler.dense.bias").baseAddress!)))
        XCTAssertEqual(Array(head.store.parameter(AnticipationHead.poolerWeight)), Array(model.store.parameter("bert.pooler.dense.weight")))
        // [CLS] [MASK] [>] v v v [SEP] [PAD]: no word predicted, only the head reads row b·T.
        let batch = PretrainingBatch(B: 2, T: 8, inputIDs: [1, 4, 3, 14, 15, 16, 2, 0, 1, 4, 3, 17, 14, 2, 0, 0],
                                     tokenTypeIDs: [0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0],
                                     attentionMask: [1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 0], textRows: [], textTargets: [],
                                     videoRows: [], videoTargets: [], alignLabels: [0, 0], alignWeights: [0, 0])
        let verbs: [Int32] = [2, 0], nouns: [Int32] = [1, 1]
        func pass(backward: Bool) -> Double {
            let (_, hidden, kept) = model.forwardKeepingHidden(batch, step: 1, dropoutSeed: 4, lossWeights: (0, 0, 0), training: backward, dropout: true)
            var cls = [Float](repeating: 0, count: 16)
            for b in 0..<2 { for c in 0..<8 { cls[b * 8 + c] = hidden[b * 8 * 8 + c] } }
            let out = head.loss(head.forward(cls: cls, rows: 2), verbTargets: verbs, nounTargets: nouns, backward: backward)
            if backward, let kept, let d = out.dCLS {
                let dh = model.hiddenGradient
                for b in 0..<2 { for c in 0..<8 { dh[b * 8 * 8 + c] += d[b * 8 + c] } }
                model.backwardKeepingHidden(kept)
            }
            return Double(out.loss)
        }
        model.store.zeroGradients()
        head.store.zeroGradients()
        _ = pass(backward: true)
        for name in ["bert.encoder.layer.0.attention.self.query.weight", "bert.encoder.layer.0.output.dense.weight",
                     "bert.embeddings.word_embeddings.weight", "bert.embeddings.LayerNorm.weight"] {
            let g = Array(model.store.gradient(name))
            let relative = check(name, model.store.parameter(name), analytic: g) { pass(backward: false) }
            print("  d\(name): relative error \(relative)")
            XCTAssertLessThanOrEqual(relative, 1e-3, name)
        }
    }

    func testSaveLoadAndDamagedFiles() throws {
        let head = try AnticipationHead(hiddenSize: 4, verbs: ["cut", "stir"], nouns: ["eggs", "rice", "milk"])
        head.initialize(std: 0.5, seed: 1)
        let dir = NSTemporaryDirectory() + "anticipation-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        XCTAssertNil(try AnticipationHead.load(from: dir, hiddenSize: 4), "a folder without the head (an older forecaster)")
        try head.save(to: dir)
        let loaded = try XCTUnwrap(try AnticipationHead.load(from: dir, hiddenSize: 4))
        XCTAssertEqual(loaded.verbs, ["cut", "stir"])
        XCTAssertEqual(loaded.nouns, ["eggs", "rice", "milk"])
        let x: [Float] = [1, -2, 0.5, 0, 1, 3, -1, 0.25]
        XCTAssertEqual(loaded.forward(cls: x, rows: 2).nounLogits, head.forward(cls: x, rows: 2).nounLogits)
        XCTAssertEqual(AnticipationHead.top([0.1, 0.9, 0.5, 2, 1, 1], rows: 2, k: 2), [[1, 2], [0, 1]])
        // Another width, and labels that are not a JSON array of strings: errors naming the file.
        XCTAssertThrowsError(try AnticipationHead.load(from: dir, hiddenSize: 5)) { XCTAssertTrue("\($0)".contains(AnticipationHead.fileName), "\($0)") }
        let p = head.store.parameter(AnticipationHead.poolerBias)
        try SafeTensors.write([(name: AnticipationHead.poolerBias, shape: [4], values: UnsafeBufferPointer(p))],
                              metadata: ["verbs": "{\"no\": 1}", "nouns": "[]"], to: dir + "/" + AnticipationHead.fileName)
        XCTAssertThrowsError(try AnticipationHead.load(from: dir, hiddenSize: 4)) { XCTAssertTrue("\($0)".contains("verbs"), "\($0)") }
    }
}
