import Foundation
import XCTest
import Tensor
@testable import Model

/// The clip projection of feature captioners: finite differences through the projection AND the
/// BERT that reads its rows as input embeddings (the captioner's whole trainable path), and the
/// file round trip.
final class ClipProjectionTests: XCTestCase {
    func testFiniteDifferencesThroughTheBert() throws {
        let config = BertConfig(textVocabSize: 13, visualWords: 0, hiddenSize: 8, numHiddenLayers: 1, numAttentionHeads: 2,
                                intermediateSize: 12, maxPositionEmbeddings: 10, hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1)
        let model = try BertForPreTraining(config: config, maxBatch: 2, maxSeq: 8)
        randomizeParameters(model, seed: 2, std: 0.4)
        let projection = try ClipProjection(inputSize: 5, outputSize: 8)
        projection.initialize(std: 0.4, seed: 3)
        let bias = projection.store.parameter(ClipProjection.biasName)
        for i in 0..<8 { bias[i] = Float(i) * 0.05 - 0.2 }
        // [CLS] w [MASK] [>] x x x [SEP], the x rows projected features.
        var batch = PretrainingBatch(B: 2, T: 8, inputIDs: [1, 5, 4, 3, 0, 0, 0, 2, 1, 6, 4, 3, 0, 0, 0, 2],
                                     tokenTypeIDs: [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1],
                                     attentionMask: [Float](repeating: 1, count: 16), textRows: [2, 10], textTargets: [7, 9],
                                     videoRows: [], videoTargets: [], alignLabels: [0, 0], alignWeights: [0, 0])
        batch.inputEmbeddingRows = [4, 5, 6, 12, 13, 14]
        var rng = SeededRNG(seed: 7)
        let features = (0..<30).map { _ in rng.nextGaussian() }
        func loss(backward: Bool) -> Double {
            var b = batch
            b.inputEmbeddings = projection.forward(features, rows: 6)
            let out = model.run(b, dropout: true, backward: backward, step: 1, seed: 4, weights: (1, 0, 0), lossScale: 1)
            if backward { projection.backward(dout: model.inputEmbeddingGradient, input: features, rows: 6) }
            return Double(out.loss)
        }
        projection.store.zeroGradients()
        model.store.zeroGradients()
        _ = loss(backward: true)
        let h: Float = 1e-2
        for slot in projection.store.slots {
            let p = projection.store.parameter(slot.name), g = projection.store.gradient(slot.name)
            var diff = 0.0, numNorm = 0.0, anaNorm = 0.0
            for i in 0..<slot.count {
                let saved = p[i]
                func at(_ d: Float) -> Double { p[i] = saved + d; return loss(backward: false) }
                let numerical = (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * Double(h))
                p[i] = saved
                diff += (numerical - Double(g[i])) * (numerical - Double(g[i]))
                numNorm += numerical * numerical
                anaNorm += Double(g[i] * g[i])
            }
            let relative = diff.squareRoot() / (numNorm.squareRoot() + anaNorm.squareRoot())
            print("  d\(slot.name): relative error \(relative)")
            XCTAssertGreaterThan(numNorm, 1e-8, slot.name)
            XCTAssertLessThanOrEqual(relative, 1e-3, slot.name)
        }
    }

    func testSaveAndLoad() throws {
        let projection = try ClipProjection(inputSize: 3, outputSize: 4)
        projection.initialize(std: 0.5, seed: 1)
        let dir = NSTemporaryDirectory() + "clip-projection-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try projection.save(to: dir)
        let loaded = try ClipProjection.load(from: dir)
        XCTAssertEqual(loaded.inputSize, 3)
        XCTAssertEqual(loaded.outputSize, 4)
        let x: [Float] = [1, -2, 0.5, 0, 1, 3]
        XCTAssertEqual(loaded.forward(x, rows: 2), projection.forward(x, rows: 2))
        let other = try ClipProjection(inputSize: 2, outputSize: 4)
        XCTAssertThrowsError(try other.loadWeights(from: dir)) { error in
            XCTAssertTrue("\(error)".contains(ClipProjection.fileName), "\(error)")
        }
    }
}
