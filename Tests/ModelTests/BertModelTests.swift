import XCTest
import Tensor
@testable import Model

/// The whole BertForPreTraining against PyTorch/transformers (fixture: tools/fixtures/bert.py →
/// Resources/bert-tiny*), against finite differences, and its checkpoint rules.
/// docs/ARCHITECTURE.md §6: forward 1e-4, gradients 1e-3, trajectory 1e-4.
final class BertModelTests: XCTestCase {
    let fixture = Fixture(Paths.resource("bert-tiny.json"))
    var weights: (mlm: Float, mfm: Float, align: Float) {
        let w = fixture.floats("loss_weights")
        return (w[0], w[1], w[2])
    }

    func loadTiny(training: Bool = true) throws -> BertForPreTraining {
        try BertForPreTraining.load(from: Paths.resource("bert-tiny"), maxBatch: 3, maxSeq: 16, training: training)
    }

    // MARK: PyTorch parity

    func testPyTorchParityForwardAndEveryGradient() throws {
        let model = try loadTiny()
        XCTAssertEqual(model.loadReport?.initialized, [], "a BertForPreTraining checkpoint has every tensor")
        XCTAssertEqual(model.config.textVocabSize, 50)
        XCTAssertEqual(model.config.visualWords, 20)
        model.store.zeroGradients()
        let out = model.forwardBackward(fixture.batch, step: 0, dropoutSeed: 1, lossWeights: weights, lossScale: 1, training: true)
        let tol = 1e-4
        checkValues([out.loss, out.mlmLoss, out.mfmLoss, out.alignLoss],
                    ["loss", "mlm_loss", "mfm_loss", "align_loss"].map { fixture.double($0) }, "losses", atol: tol, rtol: tol)
        XCTAssertEqual(out.mlmCount, fixture.int32s("text_rows").count)
        XCTAssertEqual(out.mfmCount, fixture.int32s("video_rows").count)
        XCTAssertEqual(out.alignCount, 2)
        XCTAssertEqual(out.mlmCorrect, fixture.int("mlm_correct"))
        XCTAssertEqual(out.mfmCorrect, fixture.int("mfm_correct"))
        XCTAssertEqual(out.mfmTop5Correct, fixture.int("mfm_top5_correct"))
        XCTAssertEqual(out.alignCorrect, fixture.int("align_correct"))

        // Every parameter's gradient: |a − b| ≤ 1e-3·(|b| + floor), floor = 1% of the tensor's
        // largest |b|. Key biases are the exception: their true gradient is exactly 0 (a key bias
        // adds q·b to every score of a query, and softmax ignores a constant shift), so both sides
        // hold rounding noise; they must stay below 1e-6 of the largest gradient.
        let grads = try SafeTensors.read(Paths.resource("bert-tiny-grads.safetensors"))
        XCTAssertEqual(Set(grads.names), Set(model.store.slots.map(\.name)), "one gradient per parameter, same names")
        let globalMax = try grads.names.map { try grads.floats($0).map(abs).max()! }.max()!
        for name in grads.names {
            let expected = try grads.floats(name).map(Double.init)
            let actual = model.store.gradient(name)
            if name.hasSuffix("attention.self.key.bias") {
                XCTAssertLessThan(Double(actual.map(abs).max()!), 1e-6 * Double(globalMax), "\(name) should be ~0")
                XCTAssertLessThan(expected.map(abs).max()!, 1e-6 * Double(globalMax), "\(name) should be ~0 in PyTorch")
                continue
            }
            let floor = 0.01 * (expected.map(abs).max() ?? 0)
            XCTAssertGreaterThan(floor, 1e-6 * Double(globalMax), "\(name): PyTorch gradient is ~0")
            checkTensor(actual.baseAddress!, expected, "grad \(name)", atol: 1e-3 * floor, rtol: 1e-3)
        }
    }

    func testPyTorchParityOutputsAtMaskedRows() throws {
        let model = try loadTiny(training: false)
        let batch = fixture.batch
        let encoded = model.encode(inputIDs: batch.inputIDs, tokenTypeIDs: batch.tokenTypeIDs, attentionMask: batch.attentionMask,
                                   B: batch.B, T: batch.T)
        checkValues(encoded.hidden, fixture.doubles("hidden"), "last hidden states", atol: 1e-4, rtol: 1e-4)
        let V = 70, Tt = 50
        let full = model.predictionLogits(encoded, rows: batch.textRows)
        checkValues(full, fixture.doubles("full_logits_text_rows"), "full-vocabulary logits", atol: 1e-4, rtol: 1e-4)
        // The restricted logits of training are slices of the full ones.
        let textSlice = (0..<batch.textRows.count).flatMap { m in full[(m * V)..<(m * V + Tt)] }
        checkValues(textSlice, fixture.doubles("text_logits"), "text logits (text-vocabulary slice)", atol: 1e-4, rtol: 1e-4)
        let video = model.predictionLogits(encoded, rows: batch.videoRows)
        let videoSlice = (0..<batch.videoRows.count).flatMap { m in video[(m * V + Tt)..<(m * V + V)] }
        checkValues(videoSlice, fixture.doubles("video_logits"), "video logits (visual-word slice)", atol: 1e-4, rtol: 1e-4)
        checkValues(model.alignmentScores(encoded), fixture.doubles("alignment_scores"), "P(aligned)", atol: 1e-4, rtol: 1e-4)
        // The heads read the batch they are given, whatever the model ran since.
        _ = model.encode(inputIDs: [Int32](repeating: 1, count: 4), tokenTypeIDs: nil, attentionMask: nil, B: 1, T: 4)
        checkValues(model.alignmentScores(encoded), fixture.doubles("alignment_scores"), "P(aligned) after another batch", atol: 1e-4, rtol: 1e-4)
        checkValues(model.predictionLogits(encoded, rows: batch.textRows), fixture.doubles("full_logits_text_rows"), "logits after another batch",
                    atol: 1e-4, rtol: 1e-4)
        // Evaluation mode of forwardBackward gives the same losses without gradients.
        let out = model.forwardBackward(batch, step: 0, dropoutSeed: 0, lossWeights: weights, training: false)
        XCTAssertEqual(Double(out.loss), fixture.double("loss"), accuracy: 1e-4)
    }

    func testPyTorchParityAdamWTrajectory() throws {
        let model = try loadTiny()
        var adam = AdamW(store: model.store, weightDecay: fixture.double("weight_decay"))
        var losses: [Float] = []
        for step in 0..<10 {
            model.store.zeroGradients()
            let out = model.forwardBackward(fixture.batch, step: step, dropoutSeed: 0, lossWeights: weights, lossScale: 1, training: true)
            losses.append(out.loss)
            clipGradientNorm(model.store, maxNorm: fixture.double("max_grad_norm"))
            adam.update(model.store, lr: fixture.double("lr"))
        }
        print("  trajectory: \(losses)")
        checkValues(losses, fixture.doubles("trajectory"), "10-step AdamW loss trajectory", atol: 1e-4, rtol: 1e-4)
    }

    // MARK: Finite differences

    /// The whole model (dropout on with a fixed seed, padding, masked rows of both modalities,
    /// alignment rows) against fourth-order central differences of its float32 loss. Per tensor:
    /// its 2 coordinates of largest analytic gradient plus 2 random ones (all for tensors of ≤ 4),
    /// ‖g_num − g_ana‖ / (‖g_num‖ + ‖g_ana‖) ≤ 1e-3. The large-gradient coordinates keep the
    /// float32 rounding of the loss (≈1e-6 / h) far below the signal; the random ones catch a
    /// gradient that is wrongly zero.
    func testFiniteDifferencesWholeModel() throws {
        let config = BertConfig(textVocabSize: 13, visualWords: 7, hiddenSize: 8, numHiddenLayers: 2, numAttentionHeads: 2,
                                intermediateSize: 12, maxPositionEmbeddings: 10, hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1)
        let model = try BertForPreTraining(config: config, maxBatch: 3, maxSeq: 10)
        randomizeParameters(model, seed: 5, std: 0.4)
        let batch = makeBatch(T: 10, textVocab: 13, visualWords: 7, layout: [(4, 3), (3, 2), (5, 0)],
                              maskedText: [[0, 2], [1], [3, 4]], maskedVideo: [[1], [0, 1], []],
                              alignLabels: [1, 0, 1], alignWeights: [1, 1, 0], seed: 3)
        let w: (mlm: Float, mfm: Float, align: Float) = (1, 0.8, 0.5)
        func loss() -> Double {
            Double(model.run(batch, dropout: true, backward: false, step: 7, seed: 11, weights: w, lossScale: 1).loss)
        }
        model.store.zeroGradients()
        let base = model.run(batch, dropout: true, backward: true, step: 7, seed: 11, weights: w, lossScale: 1)
        XCTAssertEqual(Double(base.loss), loss(), accuracy: 0, "forward is deterministic")
        let h: Float = 1e-2
        var rng = SeededRNG(seed: 9)
        var worst = 0.0
        for slot in model.store.slots {
            let p = model.store.parameter(slot.name), g = model.store.gradient(slot.name)
            var coordinates: [Int]
            if slot.count <= 4 {
                coordinates = Array(0..<slot.count)
            } else {
                coordinates = Array((0..<slot.count).sorted { abs(g[$0]) > abs(g[$1]) }.prefix(2))
                while coordinates.count < 4 {
                    let i = rng.nextInt(slot.count)
                    if !coordinates.contains(i) { coordinates.append(i) }
                }
            }
            var diff = 0.0, numNorm = 0.0, anaNorm = 0.0
            for i in coordinates {
                let saved = p[i]
                p[i] = saved + h; let lp1 = loss()
                p[i] = saved - h; let lm1 = loss()
                p[i] = saved + 2 * h; let lp2 = loss()
                p[i] = saved - 2 * h; let lm2 = loss()
                p[i] = saved
                let numerical = (8 * (lp1 - lm1) - (lp2 - lm2)) / (12 * Double(h))
                let analytic = Double(g[i])
                diff += (numerical - analytic) * (numerical - analytic)
                numNorm += numerical * numerical
                anaNorm += analytic * analytic
            }
            if slot.name.hasSuffix("attention.self.key.bias") {
                // True gradient exactly 0 (softmax is shift-invariant per query): both sides ~0.
                XCTAssertLessThan(numNorm.squareRoot(), 1e-4, "\(slot.name): numerical gradient should be ~0")
                XCTAssertLessThan(anaNorm.squareRoot(), 1e-6, "\(slot.name): analytic gradient should be ~0")
                continue
            }
            let relative = diff.squareRoot() / max(numNorm.squareRoot() + anaNorm.squareRoot(), 1e-30)
            worst = max(worst, relative)
            print("  d\(slot.name): relative error \(relative)")
            XCTAssertGreaterThan(numNorm, 0, "\(slot.name): numerical gradient is zero at the checked coordinates")
            XCTAssertLessThanOrEqual(relative, 1e-3, "\(slot.name): relative error \(relative)")
        }
        print("  whole model: worst relative error over \(model.store.slots.count) tensors \(worst)")
    }

    // MARK: Input-embedding rows (continuous inputs)

    /// Positions given as vectors equal to their ids' word-embedding rows compute exactly what
    /// the ids compute; the word embeddings then get no gradient from those positions, and the
    /// vectors' gradient is the one the word rows got.
    func testInputEmbeddingRowsMatchTheirWordEmbeddings() throws {
        let config = BertConfig(textVocabSize: 13, visualWords: 7, hiddenSize: 8, numHiddenLayers: 2, numAttentionHeads: 2,
                                intermediateSize: 12, maxPositionEmbeddings: 10)
        let model = try BertForPreTraining(config: config, maxBatch: 3, maxSeq: 10)
        randomizeParameters(model, seed: 6, std: 0.4)
        let batch = makeBatch(T: 10, textVocab: 13, visualWords: 7, layout: [(4, 3), (3, 2), (5, 0)],
                              maskedText: [[0, 2], [1], [3, 4]], maskedVideo: [[1], [], []],
                              alignLabels: [1, 0, 1], alignWeights: [1, 1, 0], seed: 3)
        // The unmasked video positions of example 0 and 1 (types 1, not [SEP]).
        var rows: [Int32] = []
        for r in 0..<(3 * 10) where batch.tokenTypeIDs[r] == 1 && batch.attentionMask[r] == 1 && !batch.videoRows.contains(Int32(r))
            && Int(batch.inputIDs[r]) >= 13 { rows.append(Int32(r)) }
        XCTAssertGreaterThanOrEqual(rows.count, 3)
        let word = model.store.parameter("bert.embeddings.word_embeddings.weight")
        var given = batch
        given.inputEmbeddingRows = rows
        given.inputEmbeddings = rows.flatMap { r in (0..<8).map { word[Int(batch.inputIDs[Int(r)]) * 8 + $0] } }
        for r in rows { given.inputIDs[Int(r)] = 0 }   // ignored

        model.store.zeroGradients()
        let a = model.forwardBackward(batch, step: 0, dropoutSeed: 0, lossWeights: (1, 1, 1))
        let wordGradA = Array(UnsafeBufferPointer(start: model.store.gradient("bert.embeddings.word_embeddings.weight").baseAddress!, count: 20 * 8))
        XCTAssertEqual(model.inputEmbeddingGradient, [], "no input-embedding rows: no gradient")
        model.store.zeroGradients()
        let b = model.forwardBackward(given, step: 0, dropoutSeed: 0, lossWeights: (1, 1, 1))
        let wordGradB = Array(UnsafeBufferPointer(start: model.store.gradient("bert.embeddings.word_embeddings.weight").baseAddress!, count: 20 * 8))
        XCTAssertEqual(Double(a.loss), Double(b.loss), accuracy: 1e-6)
        XCTAssertEqual(model.inputEmbeddingGradient.count, rows.count * 8)
        // Σ over the given rows of their gradient + the ids' rows' gradient without them = with them.
        var expected = wordGradB
        for (i, r) in rows.enumerated() {
            for c in 0..<8 { expected[Int(batch.inputIDs[Int(r)]) * 8 + c] += model.inputEmbeddingGradient[i * 8 + c] }
        }
        for i in 0..<expected.count { XCTAssertEqual(expected[i], wordGradA[i], accuracy: 1e-5) }
        XCTAssertGreaterThan(model.inputEmbeddingGradient.map { $0 * $0 }.reduce(0, +), 0)
        // Inference sees the same vectors.
        let e1 = model.encode(inputIDs: batch.inputIDs, tokenTypeIDs: batch.tokenTypeIDs, attentionMask: batch.attentionMask, B: 3, T: 10).hidden
        let e2 = model.encode(inputIDs: given.inputIDs, tokenTypeIDs: given.tokenTypeIDs, attentionMask: given.attentionMask, B: 3, T: 10,
                              inputEmbeddingRows: given.inputEmbeddingRows, inputEmbeddings: given.inputEmbeddings).hidden
        for i in 0..<e1.count { XCTAssertEqual(e1[i], e2[i], accuracy: 1e-5) }
    }

    /// d(loss)/d(input embeddings) against central differences (with dropout, pruned last layer).
    func testFiniteDifferencesInputEmbeddings() throws {
        let config = BertConfig(textVocabSize: 13, visualWords: 0, hiddenSize: 8, numHiddenLayers: 2, numAttentionHeads: 2,
                                intermediateSize: 12, maxPositionEmbeddings: 10, hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1)
        let model = try BertForPreTraining(config: config, maxBatch: 2, maxSeq: 10)
        randomizeParameters(model, seed: 8, std: 0.4)
        // [CLS] w w [MASK] [>] v v v [SEP]: the v rows are vectors.
        var batch = PretrainingBatch(B: 2, T: 9, inputIDs: [Int32](repeating: 0, count: 18), tokenTypeIDs: [Int32](repeating: 0, count: 18),
                                     attentionMask: [Float](repeating: 1, count: 18), textRows: [3, 12], textTargets: [5, 7],
                                     videoRows: [], videoTargets: [], alignLabels: [0, 0], alignWeights: [0, 0])
        var rng = SeededRNG(seed: 4)
        for b in 0..<2 {
            for t in 0..<9 {
                batch.inputIDs[b * 9 + t] = Int32(1 + rng.nextInt(12))
                batch.tokenTypeIDs[b * 9 + t] = t >= 5 ? 1 : 0
            }
            batch.inputEmbeddingRows += [Int32(b * 9 + 5), Int32(b * 9 + 6), Int32(b * 9 + 7)]
        }
        batch.attentionMask[16] = 0; batch.attentionMask[17] = 0   // example 1 is 7 long: its last vector row is padding
        batch.inputEmbeddings = (0..<(6 * 8)).map { _ in Float(rng.nextDouble() * 2 - 1) }
        model.store.zeroGradients()
        _ = model.run(batch, dropout: true, backward: true, step: 2, seed: 5, weights: (1, 0, 0), lossScale: 1)
        let analytic = model.inputEmbeddingGradient
        func loss(_ x: [Float]) -> Double {
            var b = batch
            b.inputEmbeddings = x
            return Double(model.run(b, dropout: true, backward: false, step: 2, seed: 5, weights: (1, 0, 0), lossScale: 1).loss)
        }
        let h: Float = 1e-2
        var diff = 0.0, numNorm = 0.0, anaNorm = 0.0
        for i in 0..<batch.inputEmbeddings.count {
            var x = batch.inputEmbeddings
            func at(_ d: Float) -> Double { x[i] = batch.inputEmbeddings[i] + d; return loss(x) }
            let numerical = (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * Double(h))
            diff += (numerical - Double(analytic[i])) * (numerical - Double(analytic[i]))
            numNorm += numerical * numerical
            anaNorm += Double(analytic[i] * analytic[i])
        }
        let relative = diff.squareRoot() / (numNorm.squareRoot() + anaNorm.squareRoot())
        print("  d(input embeddings): relative error \(relative)")
        XCTAssertGreaterThan(numNorm, 1e-8)
        XCTAssertLessThanOrEqual(relative, 1e-3)
        // The padded position's vector (position 16, the 6th row) gets no gradient.
        XCTAssertEqual(analytic[(5 * 8)..<(6 * 8)].map { abs($0) }.max()!, 0, accuracy: 0)
    }

    /// The masked-row heads score their rows in chunks of the logits buffer (an inference model's
    /// holds 256 rows, a training model's 20% of its positions): one chunk or several, the same
    /// losses and counts.
    func testHeadsGiveTheSameNumbersInOneChunkOrSeveral() throws {
        let config = BertConfig(textVocabSize: 13, visualWords: 7, hiddenSize: 8, numHiddenLayers: 1, numAttentionHeads: 2,
                                intermediateSize: 12, maxPositionEmbeddings: 10)
        let B = 30, T = 10
        var rng = SeededRNG(seed: 12)
        var batch = PretrainingBatch(B: B, T: T, inputIDs: (0..<(B * T)).map { _ in Int32(4 + rng.nextInt(16)) },
                                     tokenTypeIDs: (0..<(B * T)).map { Int32($0 % T >= 6 ? 1 : 0) },
                                     attentionMask: [Float](repeating: 1, count: B * T), textRows: [], textTargets: [],
                                     videoRows: [], videoTargets: [], alignLabels: (0..<B).map { Int32($0 % 2) },
                                     alignWeights: [Float](repeating: 1, count: B))
        for r in 0..<(B * T) where r % T != 0 {
            if r % T < 6 { batch.textRows.append(Int32(r)); batch.textTargets.append(Int32(rng.nextInt(13))); batch.inputIDs[r] = 4 }
            else { batch.videoRows.append(Int32(r)); batch.videoTargets.append(Int32(rng.nextInt(7))); batch.inputIDs[r] = 4 }
        }
        XCTAssertGreaterThan(batch.textRows.count + batch.videoRows.count, 256)
        let oneChunk = try BertForPreTraining(config: config, maxBatch: 200, maxSeq: T)      // 400 logit rows
        let inference = try BertForPreTraining(config: config, maxBatch: B, maxSeq: T, training: false)   // 256
        let training = try BertForPreTraining(config: config, maxBatch: B, maxSeq: T)          // 64
        randomizeParameters(oneChunk, seed: 3, std: 0.4)
        for other in [inference, training] {
            other.store.parameters.update(from: oneChunk.store.parameters, count: oneChunk.store.count)
        }
        let reference = oneChunk.forwardBackward(batch, step: 0, dropoutSeed: 0, lossWeights: (1, 1, 1), training: false)
        for model in [inference, training] {
            let out = model.forwardBackward(batch, step: 0, dropoutSeed: 0, lossWeights: (1, 1, 1), training: false)
            XCTAssertEqual(out.mlmCount, reference.mlmCount)
            XCTAssertEqual(out.mlmCorrect, reference.mlmCorrect)
            XCTAssertEqual(out.mfmTop5Correct, reference.mfmTop5Correct)
            XCTAssertEqual(Double(out.loss), Double(reference.loss), accuracy: 1e-5)
            XCTAssertEqual(Double(out.mfmLoss), Double(reference.mfmLoss), accuracy: 1e-5)
        }
    }

    // MARK: Training semantics

    func testGradientAccumulationAndLossScale() throws {
        let model = try loadTiny()
        let batch = fixture.batch
        model.store.zeroGradients()
        _ = model.forwardBackward(batch, step: 0, dropoutSeed: 0, lossWeights: weights, lossScale: 1)
        let once = Array(UnsafeBufferPointer(start: model.store.gradients, count: model.store.count))
        model.store.zeroGradients()
        for _ in 0..<2 { _ = model.forwardBackward(batch, step: 0, dropoutSeed: 0, lossWeights: weights, lossScale: 0.5) }
        let twice = Array(UnsafeBufferPointer(start: model.store.gradients, count: model.store.count))
        var maxDiff: Float = 0
        for i in 0..<once.count { maxDiff = max(maxDiff, abs(once[i] - twice[i])) }
        XCTAssertLessThan(maxDiff, 1e-6, "two half-scaled passes accumulate to one full pass")
        // Evaluation leaves gradients alone.
        _ = model.forwardBackward(batch, step: 0, dropoutSeed: 0, lossWeights: weights, training: false)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: model.store.gradients, count: model.store.count)), twice)
    }

    func testEmptyRowSetsContributeNothing() throws {
        let model = try loadTiny()
        var batch = fixture.batch
        batch.textRows = []; batch.textTargets = []; batch.videoRows = []; batch.videoTargets = []
        batch.alignWeights = [0, 0, 0]
        model.store.zeroGradients()
        let out = model.forwardBackward(batch, step: 0, dropoutSeed: 0, lossWeights: weights)
        XCTAssertEqual(out, PretrainingOutput())
        XCTAssertEqual(gradientNorm(model.store), 0)
        // Only video rows: the text loss is 0, the MFM loss matches a batch that has both.
        var videoOnly = fixture.batch
        videoOnly.textRows = []; videoOnly.textTargets = []; videoOnly.alignWeights = [0, 0, 0]
        let v = model.forwardBackward(videoOnly, step: 0, dropoutSeed: 0, lossWeights: weights, training: false)
        XCTAssertEqual(v.mlmLoss, 0)
        XCTAssertEqual(Double(v.mfmLoss), fixture.double("mfm_loss"), accuracy: 1e-4)
        XCTAssertEqual(Double(v.loss), Double(weights.mfm) * fixture.double("mfm_loss"), accuracy: 1e-4)
    }

    func testDropoutIsSeededAndOnlyInTraining() throws {
        var config = try BertConfig.load(from: Paths.resource("bert-tiny/config.json"))
        config.hiddenDropoutProb = 0.1; config.attentionProbsDropoutProb = 0.1
        let model = try BertForPreTraining(config: config, maxBatch: 3, maxSeq: 16)
        try model.loadPretrained(from: Paths.resource("bert-tiny"))
        let batch = fixture.batch
        let a = model.forwardBackward(batch, step: 3, dropoutSeed: 5, lossWeights: weights)
        let b = model.forwardBackward(batch, step: 3, dropoutSeed: 5, lossWeights: weights)
        let c = model.forwardBackward(batch, step: 4, dropoutSeed: 5, lossWeights: weights)
        let eval = model.forwardBackward(batch, step: 3, dropoutSeed: 5, lossWeights: weights, training: false)
        XCTAssertEqual(a.loss, b.loss, "same step and seed: same masks")
        XCTAssertNotEqual(a.loss, c.loss, "another step: other masks")
        XCTAssertEqual(Double(eval.loss), fixture.double("loss"), accuracy: 1e-4, "evaluation has no dropout")
    }

    /// Smaller batches reuse the arena; results do not depend on the arena's size.
    func testSmallerBatchesReuseTheArena() throws {
        let big = try BertForPreTraining.load(from: Paths.resource("bert-tiny"), maxBatch: 8, maxSeq: 16, training: false)
        let small = try loadTiny(training: false)
        let batch = fixture.batch
        let x = big.encode(inputIDs: batch.inputIDs, tokenTypeIDs: batch.tokenTypeIDs, attentionMask: batch.attentionMask, B: 3, T: 16).hidden
        let y = small.encode(inputIDs: batch.inputIDs, tokenTypeIDs: batch.tokenTypeIDs, attentionMask: batch.attentionMask, B: 3, T: 16).hidden
        XCTAssertEqual(x, y)
        // One example cut to its real length (11 tokens) gives its rows of the padded batch.
        let ids = Array(batch.inputIDs[16..<27]), types = Array(batch.tokenTypeIDs[16..<27])
        let one = small.encode(inputIDs: ids, tokenTypeIDs: types, attentionMask: nil, B: 1, T: 11).hidden
        let rows = Array(y[(16 * 32)..<(27 * 32)])
        var maxDiff: Float = 0
        for i in 0..<one.count { maxDiff = max(maxDiff, abs(one[i] - rows[i])) }
        XCTAssertLessThan(maxDiff, 1e-5)
    }

    /// HF BertPreTrainedModel._init_weights, deterministic per tensor.
    func testInitializeWeightsFollowsHuggingFace() throws {
        let config = BertConfig(textVocabSize: 300, visualWords: 20, hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 4,
                                intermediateSize: 64, maxPositionEmbeddings: 16)
        let model = try BertForPreTraining(config: config, maxBatch: 1, maxSeq: 4)
        model.initializeWeights(seed: 3)
        for slot in model.store.slots {
            let p = Array(model.store.parameter(slot.name))
            if slot.name.hasSuffix("LayerNorm.weight") {
                XCTAssertEqual(Set(p), [1], slot.name)
            } else if slot.name.hasSuffix("bias") {
                XCTAssertEqual(Set(p), [0], slot.name)
            } else {
                let values = slot.name.contains("word_embeddings") ? Array(p[32...]) : p
                let std = (values.map { Double($0 * $0) }.reduce(0, +) / Double(values.count)).squareRoot()
                XCTAssertEqual(std, 0.02, accuracy: slot.count > 2000 ? 0.001 : 0.006, slot.name)
            }
        }
        XCTAssertEqual(Array(model.store.parameter("bert.embeddings.word_embeddings.weight")[0..<32]), [Float](repeating: 0, count: 32),
                       "the [PAD] row starts at zero")
        let other = try BertForPreTraining(config: config, maxBatch: 1, maxSeq: 4)
        other.initialize(["bert.encoder.layer.0.output.dense.weight"], seed: 3)
        XCTAssertEqual(Array(other.store.parameter("bert.encoder.layer.0.output.dense.weight")),
                       Array(model.store.parameter("bert.encoder.layer.0.output.dense.weight")), "a tensor's values do not depend on the others")
    }

    // MARK: Checkpoints

    func testParameterNamesAreTransformers() throws {
        let model = try loadTiny()
        XCTAssertEqual(model.store.slots.map(\.name).sorted(), fixture.strings("checkpoint_keys"),
                       "the tensors transformers' save_pretrained writes for BertForPreTraining")
    }

    func testSaveAndLoadRoundTrip() throws {
        let model = try loadTiny()
        let dir = NSTemporaryDirectory() + "bert-roundtrip-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try model.save(to: dir)
        let again = try BertForPreTraining.load(from: dir, maxBatch: 2, maxSeq: 8)
        XCTAssertEqual(again.config, model.config)
        XCTAssertEqual(again.loadReport?.initialized, [])
        XCTAssertEqual(Array(UnsafeBufferPointer(start: again.store.parameters, count: again.store.count)),
                       Array(UnsafeBufferPointer(start: model.store.parameters, count: model.store.count)))
        let names = try SafeTensors.read(dir + "/model.safetensors").names
        XCTAssertFalse(names.contains { $0.hasPrefix("cls.predictions.decoder") }, "tied decoder not written")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [], "no temporary files left")
    }

    /// A bare BertModel checkpoint (no `bert.` prefix, no heads, position_ids buffer) loads with
    /// fresh heads, reported.
    func testBertModelNamesLoadWithFreshHeads() throws {
        let model = try loadTiny()
        let dir = NSTemporaryDirectory() + "bert-bare-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeVariant(of: model, to: dir) { name in
            name.hasPrefix("cls.") || name.hasPrefix("bert.pooler.") ? nil : String(name.dropFirst(5))
        } extra: { ["embeddings.position_ids": [16]] }
        let bare = try BertForPreTraining.load(from: dir, maxBatch: 3, maxSeq: 16, seed: 4)
        let report = try XCTUnwrap(bare.loadReport)
        XCTAssertEqual(Set(report.initialized), Set(model.store.slots.map(\.name).filter { $0.hasPrefix("cls.") || $0.hasPrefix("bert.pooler.") }))
        XCTAssertEqual(report.ignored, ["embeddings.position_ids"])
        XCTAssertEqual(Array(bare.store.parameter("bert.encoder.layer.1.output.dense.weight")),
                       Array(model.store.parameter("bert.encoder.layer.1.output.dense.weight")))
        XCTAssertEqual(Array(bare.store.parameter("cls.predictions.transform.LayerNorm.weight")), [Float](repeating: 1, count: 32),
                       "fresh heads get HF's initialisation")
        XCTAssertTrue(report.description.contains("newly initialised"))
    }

    func testLoadErrorsNameFileAndKeys() throws {
        let model = try loadTiny()
        let dir = NSTemporaryDirectory() + "bert-bad-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func loadError() -> String {
            do {
                _ = try BertForPreTraining.load(from: dir, maxBatch: 1, maxSeq: 4)
                return "no error"
            } catch { return "\(error)" }
        }
        // Unexpected key.
        try writeVariant(of: model, to: dir, rename: { $0 }, extra: { ["bert.encoder.layer.9.output.dense.weight": [2, 2]] })
        XCTAssertTrue(loadError().contains("model.safetensors: unexpected tensors: bert.encoder.layer.9.output.dense.weight"), loadError())
        // Missing encoder tensor.
        try writeVariant(of: model, to: dir, rename: { $0.contains("layer.1.intermediate.dense.bias") ? nil : $0 })
        XCTAssertTrue(loadError().contains("missing tensors: bert.encoder.layer.1.intermediate.dense.bias"), loadError())
        // Shape mismatch.
        try writeVariant(of: model, to: dir, rename: { $0.contains("layer.0.output.dense.bias") ? nil : $0 },
                         extra: { ["bert.encoder.layer.0.output.dense.bias": [31]] })
        XCTAssertTrue(loadError().contains("shape mismatch: bert.encoder.layer.0.output.dense.bias [31] (model [32])"), loadError())
        // Config problems name config.json.
        try model.save(to: dir)
        for (edit, message) in [("\"hidden_act\" : \"gelu\"", "hidden_act 'relu' is not supported"),
                                ("\"model_type\" : \"bert\"", "position_embedding_type 'relative_key' is not supported")] {
            try model.save(to: dir)
            var text = try String(contentsOfFile: dir + "/config.json", encoding: .utf8)
            XCTAssertTrue(text.contains(edit), "config.json layout changed: \(text)")
            text = text.replacingOccurrences(of: edit, with: edit.contains("gelu") ? "\"hidden_act\" : \"relu\""
                                             : edit + ", \"position_embedding_type\": \"relative_key\"")
            try text.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
            let e = loadError()
            XCTAssertTrue(e.contains("config.json: \(message)"), e)
        }
        try model.save(to: dir)
        try FileManager.default.removeItem(atPath: dir + "/model.safetensors")
        XCTAssertTrue(loadError().contains("no model.safetensors"), loadError())
    }

    /// A plain HF BERT config.json (no videobert keys) is a text-only model.
    func testPlainHuggingFaceConfig() throws {
        let path = NSTemporaryDirectory() + "config-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try """
        {"architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
         "hidden_size": 384, "initializer_range": 0.02, "intermediate_size": 1536, "layer_norm_eps": 1e-12,
         "max_position_embeddings": 512, "model_type": "bert", "num_attention_heads": 12, "num_hidden_layers": 6,
         "pad_token_id": 0, "position_embedding_type": "absolute", "transformers_version": "4.8.2", "type_vocab_size": 2,
         "use_cache": true, "vocab_size": 30522}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let config = try BertConfig.load(from: path)
        XCTAssertEqual(config.textVocabSize, 30522)
        XCTAssertEqual(config.visualWords, 0)
        XCTAssertEqual(config.numHiddenLayers, 6)
        let joint = config.withVisualWords(144)
        XCTAssertEqual(joint.vocabSize, 30522 + 144)
        // What we write: HF names, extras as top-level keys, no position_embedding_type.
        let written = try JSONSerialization.jsonObject(with: JSON.encode(joint)) as! [String: Any]
        XCTAssertEqual(written["vocab_size"] as? Int, 30666)
        XCTAssertEqual(written["videobert_text_vocab_size"] as? Int, 30522)
        XCTAssertEqual(written["videobert_visual_words"] as? Int, 144)
        XCTAssertEqual(written["architectures"] as? [String], ["BertForPreTraining"])
        XCTAssertNil(written["position_embedding_type"])
    }

    /// A text-only checkpoint initialises a joint-vocabulary model; the visual rows then come
    /// from centroids through the projection, at the text rows' typical norm.
    func testInitialiseVideoBertFromTextBertAndCentroids() throws {
        // A text-only BERT: the tiny fixture's architecture with vocab 50.
        var textConfig = try BertConfig.load(from: Paths.resource("bert-tiny/config.json"))
        textConfig.vocabSize = 50; textConfig.textVocabSize = 50; textConfig.visualWords = 0
        let text = try BertForPreTraining(config: textConfig, maxBatch: 1, maxSeq: 4)
        randomizeParameters(text, seed: 8)
        let dir = NSTemporaryDirectory() + "bert-text-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try text.save(to: dir)

        let joint = try BertForPreTraining(config: textConfig.withVisualWords(6), maxBatch: 1, maxSeq: 4)
        let report = try joint.loadPretrained(from: dir, seed: 2)
        XCTAssertTrue(report.extendedVocabulary)
        XCTAssertEqual(report.initialized, [])
        let C = 32
        let word = joint.store.parameter("bert.embeddings.word_embeddings.weight")
        let textWord = text.store.parameter("bert.embeddings.word_embeddings.weight")
        XCTAssertEqual(Array(word[0..<(50 * C)]), Array(textWord))
        let bias = joint.store.parameter("cls.predictions.bias")
        XCTAssertEqual(Array(bias[0..<50]), Array(text.store.parameter("cls.predictions.bias")))
        XCTAssertEqual(Array(bias[50..<56]), [Float](repeating: 0, count: 6))
        let randomRows = Array(word[(50 * C)...])
        XCTAssertGreaterThan(randomRows.map(abs).max()!, 0, "visual rows initialised")

        // Centroids: 6 points in 5-D, all with a large shared offset.
        var rng = SeededRNG(seed: 1)
        let centroids = (0..<30).map { _ in 10 + rng.nextGaussian() }
        try joint.initVisualEmbeddings(fromCentroids: centroids, dim: 5, seed: 3)
        func norm(_ r: Int) -> Float { (0..<C).map { word[r * C + $0] * word[r * C + $0] }.reduce(0, +).squareRoot() }
        let textMean = (1..<50).map(norm).reduce(0, +) / 49
        let visualMean = (50..<56).map(norm).reduce(0, +) / 6
        XCTAssertEqual(visualMean, textMean, accuracy: 1e-4 * textMean)
        // Centering: the visual rows average to ~0 (the shared offset is gone).
        let meanRow = (0..<C).map { c in (50..<56).map { word[$0 * C + c] }.reduce(0, +) / 6 }
        XCTAssertLessThan(meanRow.map(abs).max()!, 1e-4 * textMean)
        XCTAssertThrowsError(try joint.initVisualEmbeddings(fromCentroids: centroids, dim: 4, seed: 3))
    }

    /// Writes `model`'s tensors under new names (nil drops one) plus extra zero tensors.
    private func writeVariant(of model: BertForPreTraining, to dir: String, rename: (String) -> String?,
                              extra: () -> [String: [Int]] = { [:] }) throws {
        try model.save(to: dir)
        var storage: [[Float]] = []
        var tensors: [(name: String, shape: [Int], values: [Float])] = []
        for slot in model.store.slots {
            guard let name = rename(slot.name) else { continue }
            tensors.append((name, slot.shape, Array(model.store.parameter(slot.name))))
        }
        for (name, shape) in extra() { tensors.append((name, shape, [Float](repeating: 0, count: shape.reduce(1, *)))) }
        storage = tensors.map(\.values)
        try withBuffers(storage) { buffers in
            try SafeTensors.write(zip(tensors, buffers).map { ($0.name, $0.shape, $1) }, to: dir + "/model.safetensors")
        }
    }
}

/// Calls `body` with buffer pointers over each array (valid only inside).
func withBuffers<R>(_ arrays: [[Float]], _ body: ([UnsafeBufferPointer<Float>]) throws -> R) rethrows -> R {
    let pointers = arrays.map { a -> UnsafeMutableBufferPointer<Float> in
        let p = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(a.count, 1))
        _ = p.initialize(from: a)
        return p
    }
    defer { pointers.forEach { $0.deallocate() } }
    return try body(pointers.enumerated().map { UnsafeBufferPointer(start: $1.baseAddress, count: arrays[$0].count) })
}
