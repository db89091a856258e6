import Foundation
import XCTest
import Tensor
@testable import Model

/// The assembled CBT model: finite differences over every parameter tensor of both stores,
/// checkpoint round trip, and evaluation leaving gradients alone.
final class CBTModelTests: XCTestCase {
    static let textConfig = BertConfig(textVocabSize: 20, visualWords: 0, hiddenSize: 8, numHiddenLayers: 1, numAttentionHeads: 2,
                                       intermediateSize: 12, maxPositionEmbeddings: 8, hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1)

    static func config(frames: Bool) -> CBTConfig {
        CBTConfig(frontEnd: frames ? "frames" : "features",
                  conv: frames ? ConvFrontEndConfig(frameSize: 4, framesPerClip: 2, channels: [4], outputSize: 8) : nil,
                  projection: frames ? nil : FeatureProjectionConfig(inputSize: 5, outputSize: 8, hiddenSize: 6),
                  visualHiddenSize: 8, visualLayers: 1, visualHeads: 2, visualIntermediateSize: 12, maxClips: 4,
                  textHiddenSize: 8, crossHiddenSize: 6, crossLayers: 1, crossHeads: 2, crossIntermediateSize: 10,
                  embeddingSize: 5, hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1)
    }

    /// 3 examples: texts of 4, 3 and 5 words ([CLS] 1, [SEP] 2, [MASK] 3, words 4..<20), clip
    /// sequences of 3, 2 and 3 clips; one masked clip each, 2 negatives from the other examples.
    static func batch(frames: Bool, seed: UInt64) -> CBTBatch {
        var rng = SeededRNG(seed: seed)
        let B = 3, T = 7, lengths = [4, 3, 5], clips = [3, 2, 3], Tv = 3
        var ids = [Int32](repeating: 0, count: B * T), mask = [Float](repeating: 0, count: B * T)
        var textRows: [Int32] = [], textTargets: [Int32] = []
        for b in 0..<B {
            ids[b * T] = 1; mask[b * T] = 1
            for t in 1...lengths[b] {
                let word = Int32(4 + rng.nextInt(16))
                ids[b * T + t] = word; mask[b * T + t] = 1
                if t == 1 + b { textRows.append(Int32(b * T + t)); textTargets.append(word); ids[b * T + t] = 3 }
            }
            ids[b * T + lengths[b] + 1] = 2; mask[b * T + lengths[b] + 1] = 1
        }
        let text = PretrainingBatch(B: B, T: T, inputIDs: ids, tokenTypeIDs: .init(repeating: 0, count: B * T), attentionMask: mask,
                                    textRows: textRows, textTargets: textTargets, videoRows: [], videoTargets: [],
                                    alignLabels: [0, 0, 0], alignWeights: [0, 0, 0])
        var clipRows = [Int32](repeating: -1, count: B * Tv), owner: [Int] = []
        for b in 0..<B { for t in 0..<clips[b] { clipRows[b * Tv + t] = Int32(owner.count); owner.append(b) } }
        let NE = owner.count
        let masked: [Int32] = [1, Int32(Tv), Int32(2 * Tv + 2)]
        var candidates: [Int32] = []
        for r in masked {
            let b = Int(r) / Tv
            candidates.append(clipRows[Int(r)])
            let others = (0..<NE).filter { owner[$0] != b }
            for _ in 0..<2 { candidates.append(Int32(others[rng.nextInt(others.count)])) }
        }
        let frameBytes = frames ? NE * 2 * 4 * 4 * 3 : 0
        return CBTBatch(B: B, text: text, clipCount: NE, frames: (0..<frameBytes).map { _ in UInt8(rng.nextInt(256)) },
                        features: frames ? [] : (0..<(NE * 5)).map { _ in rng.nextGaussian() }, Tv: Tv, clipRows: clipRows,
                        maskedRows: masked, K1: 3, candidates: candidates, crossCandidates: 3)
    }

    static func model(frames: Bool) throws -> CBTModel {
        let model = try CBTModel(config: config(frames: frames), textConfig: textConfig, maxBatch: 3, maxTextLength: 7,
                                 maxNCECandidates: 3, maxCrossCandidates: 3)
        model.initializeWeights(seed: 3)
        // Larger weights than BERT's 0.02 so that every path carries a visible gradient.
        var rng = SeededRNG(seed: 4)
        for (_, store) in model.parameterStores {
            for slot in store.slots where !slot.name.hasPrefix("frontend.") {
                let p = store.parameter(slot.name)
                for i in 0..<p.count {
                    let z = rng.nextGaussian()
                    if slot.name.hasSuffix("LayerNorm.weight") { p[i] = 1 + 0.1 * z } else if slot.name.hasSuffix("bias") { p[i] = 0.1 * z } else { p[i] = 0.4 * z }
                }
            }
        }
        return model
    }

    /// Every tensor of both stores: its 2 coordinates of largest analytic gradient plus a random
    /// one, fourth-order central differences of the float32 loss (dropout on, fixed seed),
    /// ‖g_num − g_ana‖ / (‖g_num‖ + ‖g_ana‖) ≤ 1e-3 per tensor. The convolutions take a step of
    /// 1e-3 (ReLU is piecewise linear: a smaller step crosses fewer kinks; one convolution, no
    /// max pooling, whose kinks CBTGradientCheckTests covers).
    /// Three runs: feature MLP + InfoNCE; conv front-end + InfoNCE; feature MLP + variable margin
    /// (the hinge path with per-pair margins),
    /// where the margins are a stop-gradient function of the pooled TEXT embeddings, so finite
    /// differences of text-side tensors include a term the analytic gradient drops on purpose:
    /// there the video side's front-end, embeddings and pooled projection are compared.
    /// Exactly-zero gradients are checked as such: the score bias (softmax over one text's
    /// candidates ignores a shift) and the text BERT's unused pooler and next-sentence heads.
    func testFiniteDifferencesWholeCBTModel() throws {
        for (frames, pooled) in [(false, PooledObjective.infonce), (true, PooledObjective.infonce), (false, PooledObjective.variableMargin)] {
            let model = try Self.model(frames: frames)
            let batch = Self.batch(frames: frames, seed: 5)
            var o = CBTObjectives()
            o.mlmWeight = 0.7; o.nceWeight = 1.1; o.nceTemperature = 0.5; o.crossWeight = 0.9
            o.pooled = pooled; o.pooledWeight = 0.8; o.pooledTemperature = 0.3; o.marginAlpha = 0.6
            func loss() -> Double {
                Double(model.forwardBackwardForCheck(batch, o: o, backward: false))
            }
            for (_, store) in model.parameterStores { store.zeroGradients() }
            let base = model.forwardBackwardForCheck(batch, o: o, backward: true)
            XCTAssertEqual(Double(base), loss(), accuracy: 0, "forward is deterministic")
            var rng = SeededRNG(seed: 9)
            var worst = 0.0
            for (_, store) in model.parameterStores {
                for slot in store.slots {
                    if pooled == .variableMargin && !(slot.name.hasPrefix("pooled.video_proj") || slot.name.hasPrefix("frontend.")
                                                      || slot.name.hasPrefix("visual.embeddings.")) { continue }
                    let h: Float = slot.name.hasPrefix("frontend.conv") ? 1e-3 : 1e-2
                    let p = store.parameter(slot.name), g = store.gradient(slot.name)
                    var coordinates: [Int]
                    if slot.count <= 3 {
                        coordinates = Array(0..<slot.count)
                    } else {
                        coordinates = Array((0..<slot.count).sorted { abs(g[$0]) > abs(g[$1]) }.prefix(2))
                        while coordinates.count < 3 {
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
                    let label = "\(frames ? "frames" : "features")/\(pooled.rawValue) \(slot.name)"
                    let exactlyZero = slot.name == "cross.score.bias" || slot.name.hasPrefix("bert.pooler.") || slot.name.hasPrefix("cls.seq_relationship.")
                    if exactlyZero || slot.name.hasSuffix("attention.self.key.bias") {
                        XCTAssertLessThan(numNorm.squareRoot(), 1e-4, "\(label): numerical gradient should be ~0")
                        XCTAssertLessThan(anaNorm.squareRoot(), 1e-6, "\(label): analytic gradient should be ~0")
                        continue
                    }
                    let relative = diff.squareRoot() / max(numNorm.squareRoot() + anaNorm.squareRoot(), 1e-30)
                    worst = max(worst, relative)
                    XCTAssertGreaterThan(numNorm, 0, "\(label): numerical gradient is zero at the checked coordinates")
                    // At the convolutions' small step the float32 loss's rounding (≈1e-7·loss / h) shows: 2e-3.
                    let tolerance = slot.name.hasPrefix("frontend.conv") ? 2e-3 : 1e-3
                    XCTAssertLessThanOrEqual(relative, tolerance, "\(label): relative error \(relative)")
                }
            }
            print("  CBT \(frames ? "frames" : "features") + \(pooled.rawValue): worst relative error \(worst) over \(model.store.slots.count + model.text.store.slots.count) tensors")
        }
    }

    /// A saved checkpoint loads into a fresh model with the same losses; evaluation leaves the
    /// gradients untouched.
    func testCheckpointRoundTripAndEvaluationIsPure() throws {
        let model = try Self.model(frames: true)
        let batch = Self.batch(frames: true, seed: 6)
        let o = CBTObjectives()
        let before = model.forwardBackward(batch, step: 0, dropoutSeed: 0, objectives: o, training: false)
        XCTAssertEqual(before.nceCount, 3)
        XCTAssertEqual(before.crossCount, 3)
        XCTAssertEqual(before.mlmCount, 3)
        let dir = NSTemporaryDirectory() + "cbt-ckpt-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try model.save(to: dir)
        for f in ["cbt_config.json", "model.safetensors", "text/config.json", "text/model.safetensors"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/" + f), f)
        }
        let names = try SafeTensors.read(dir + "/model.safetensors").names
        XCTAssertTrue(names.contains("frontend.conv1.weight") && names.contains("visual.encoder.layer.0.attention.self.query.weight")
                      && names.contains("cross.score.weight") && names.contains("pooled.video_proj.weight"))
        let loaded = try CBTModel.load(from: dir, maxBatch: 3, maxTextLength: 7, maxNCECandidates: 3, maxCrossCandidates: 3, training: true)
        let after = loaded.forwardBackward(batch, step: 0, dropoutSeed: 0, objectives: o, training: false)
        XCTAssertEqual(before, after)
        for (_, store) in loaded.parameterStores { XCTAssertEqual(gradientNorm(store), 0) }
    }

    /// `visualStatesBackward` against central differences of L = Σ r ⊙ visualStates (dropout on,
    /// padding rows ignored), for every front-end and visual tensor: a captioner tuning the CBT
    /// visual path trains through it. Frames and features front-ends.
    func testFiniteDifferencesVisualStates() throws {
        for frames in [false, true] {
            let model = try Self.model(frames: frames)
            let batch = Self.batch(frames: frames, seed: 13)
            var rng = SeededRNG(seed: 21)
            let r = (0..<(9 * 8)).map { _ in rng.nextGaussian() }
            func loss(backward: Bool) -> Double {
                let h = model.visualStates(B: 3, Tv: 3, clipRows: batch.clipRows, clips: batch.clipCount, frames: batch.frames,
                                           features: batch.features, dropout: true, dropoutSeed: 5, step: 2)
                var l = 0.0
                for row in 0..<9 where batch.clipRows[row] >= 0 { for c in 0..<8 { l += Double(r[row * 8 + c] * h[row * 8 + c]) } }
                if backward { model.visualStatesBackward(r) }
                return l
            }
            model.store.zeroGradients()
            _ = loss(backward: true)
            let h: Float = frames ? 1e-3 : 1e-2
            var checked = 0
            for slot in model.store.slots where slot.name.hasPrefix("frontend.") || (slot.name.hasPrefix("visual.") && !slot.name.contains("nce_head") && !slot.name.contains("mask_embedding")) {
                let p = model.store.parameter(slot.name), g = model.store.gradient(slot.name)
                let coordinates = Array((0..<slot.count).sorted { abs(g[$0]) > abs(g[$1]) }.prefix(2))
                var diff = 0.0, numNorm = 0.0, anaNorm = 0.0
                for i in coordinates {
                    let saved = p[i]
                    func at(_ d: Float) -> Double { p[i] = saved + d; return loss(backward: false) }
                    let numerical = (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * Double(h))
                    p[i] = saved
                    diff += (numerical - Double(g[i])) * (numerical - Double(g[i]))
                    numNorm += numerical * numerical
                    anaNorm += Double(g[i] * g[i])
                }
                if slot.name.hasSuffix("attention.self.key.bias") { continue }   // exactly 0 (softmax shift invariance)
                let relative = diff.squareRoot() / max(numNorm.squareRoot() + anaNorm.squareRoot(), 1e-30)
                XCTAssertGreaterThan(anaNorm, 0, slot.name)
                XCTAssertLessThanOrEqual(relative, 2e-3, "\(frames ? "frames" : "features") \(slot.name): relative error \(relative)")
                checked += 1
            }
            XCTAssertGreaterThan(checked, 10)
            // The NCE head, cross-modal and pooled parts get no gradient from the visual states.
            XCTAssertEqual(model.store.gradient("visual.nce_head.weight").map { abs($0) }.max(), 0)
            XCTAssertEqual(model.store.gradient("cross.score.weight").map { abs($0) }.max(), 0)
        }
    }

    /// `visualStates` are the visual transformer's outputs that retrieval projects (cross
    /// video_proj(Hv) = encodeForRetrieval's rows), and a visual-only model loaded without text/
    /// computes the same; a smaller batch gives its rows of a larger one.
    func testVisualStatesAndVisualOnlyModel() throws {
        let model = try Self.model(frames: false)
        var batch = Self.batch(frames: false, seed: 9)
        batch.maskedRows = []; batch.candidates = []; batch.K1 = 1; batch.crossCandidates = 1
        let Hv = model.visualStates(B: 3, Tv: 3, clipRows: batch.clipRows, clips: batch.clipCount, frames: [], features: batch.features)
        let r = model.encodeForRetrieval(batch)
        let Wv = model.store.parameter("cross.video_proj.weight"), bv = model.store.parameter("cross.video_proj.bias")
        for row in 0..<9 where batch.clipRows[row] >= 0 {
            for o in 0..<6 {
                var x = bv[o]
                for c in 0..<8 { x += Wv[o * 8 + c] * Hv[row * 8 + c] }
                XCTAssertEqual(x, r.crossVideo[row * 6 + o], accuracy: 1e-4)
            }
        }
        let dir = NSTemporaryDirectory() + "cbt-visual-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try model.save(to: dir)
        try FileManager.default.removeItem(atPath: dir + "/text")
        let visual = try CBTModel.loadVisual(from: dir, maxBatch: 2)
        XCTAssertEqual(visual.parameterStores.count, 1)
        XCTAssertThrowsError(try CBTModel.load(from: dir, maxBatch: 3, maxTextLength: 7, maxNCECandidates: 3, maxCrossCandidates: 3))
        // Example 1 alone (2 clips, rows 3 and 4 of the batch's clips).
        let one = visual.visualStates(B: 1, Tv: 2, clipRows: [0, 1], clips: 2, frames: [], features: Array(batch.features[15..<25]))
        for i in 0..<16 { XCTAssertEqual(one[i], Hv[3 * 8 + i], accuracy: 1e-5) }
    }
}

extension CBTModel {
    /// The training loss (dropout on, seed 11, step 7) with or without backward.
    func forwardBackwardForCheck(_ batch: CBTBatch, o: CBTObjectives, backward: Bool) -> Float {
        if backward { return forwardBackward(batch, step: 7, dropoutSeed: 11, objectives: o, training: true).loss }
        return forwardForCheck(batch, o: o)
    }
}
