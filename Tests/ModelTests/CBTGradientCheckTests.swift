import XCTest
import Tensor
@testable import Model

/// Finite-difference checks of the CBT layers and losses (docs/ARCHITECTURE.md §6, rel. 1e-3), with
/// `gradientCheck` from TestSupport.swift (fourth-order central differences, gradients that must
/// accumulate into random initial values, no all-zero numerical gradient).
///
/// Piecewise-linear functions (ReLU, max pooling, hinges) are checked at points whose kinks are
/// farther than the stencil's reach (2h times the largest coefficient) from every perturbed
/// value, so that the difference quotient measures the derivative of the active piece; the
/// PyTorch parity tests cover the tie conventions.
final class CBTGradientCheckTests: XCTestCase {
    var rng = SeededRNG(seed: 4004)

    // MARK: Convolution

    private func checkConvolution(_ label: String, N: Int, geometry g: Conv2DGeometry, imagesPerChunk: Int) {
        let inp = Floats(random: N * g.H * g.W * g.C, rng: &rng)
        let weight = Floats(random: g.OC * g.patch, scale: 0.5, rng: &rng)
        let bias = Floats(random: g.OC, scale: 0.2, rng: &rng)
        let scratch = Floats(count: g.scratchCount(imagesPerChunk: imagesPerChunk))
        gradientCheck(label, inputs: [("inp", inp), ("weight", weight), ("bias", bias)],
                      outputs: N * g.OH * g.OW * g.OC) { out in
            conv2dForward(out: out, inp: inp.p, weight: weight.p, bias: bias.p, scratch: scratch.p,
                          N: N, geometry: g, imagesPerChunk: imagesPerChunk)
        } backward: { dout, grads in
            conv2dBackward(dinp: grads[0], dweight: grads[1], dbias: grads[2], dout: dout, inp: inp.p, weight: weight.p,
                           scratch: scratch.p, N: N, geometry: g, imagesPerChunk: imagesPerChunk)
        }
    }

    func testConvolutionStride1Padding1() {
        // 19 images: image groups of 2 or 3 (8 groups), in chunks of two: several chunks per group,
        // a short last chunk, and the weight gradient summed over chunks and then over groups.
        checkConvolution("conv 3×3 s1 p1", N: 19, geometry: Conv2DGeometry(H: 5, W: 4, C: 3, OC: 4, KH: 3, KW: 3, stride: 1, padding: 1),
                         imagesPerChunk: 2)
    }

    func testConvolutionStride2Padding1() {
        // Odd input size: the last window overhangs into the padding on one side only.
        checkConvolution("conv 3×3 s2 p1", N: 2, geometry: Conv2DGeometry(H: 7, W: 6, C: 2, OC: 3, KH: 3, KW: 3, stride: 2, padding: 1),
                         imagesPerChunk: 2)
    }

    func testConvolutionRectangularKernelWithoutPadding() {
        checkConvolution("conv 2×3 s2 p0", N: 2, geometry: Conv2DGeometry(H: 6, W: 7, C: 3, OC: 2, KH: 2, KW: 3, stride: 2, padding: 0),
                         imagesPerChunk: 1)
    }

    func testConvolutionWithoutBiasOrInputGradient() {
        let N = 2, g = Conv2DGeometry(H: 4, W: 4, C: 2, OC: 3, KH: 3, KW: 3, stride: 1, padding: 1)
        let inp = Floats(random: N * g.H * g.W * g.C, rng: &rng), weight = Floats(random: g.OC * g.patch, rng: &rng)
        let scratch = Floats(count: g.scratchCount(imagesPerChunk: N))
        gradientCheck("conv without bias, weight only", inputs: [("weight", weight)], outputs: N * g.OH * g.OW * g.OC) { out in
            conv2dForward(out: out, inp: inp.p, weight: weight.p, bias: nil, scratch: scratch.p, N: N, geometry: g, imagesPerChunk: N)
        } backward: { dout, grads in
            conv2dBackward(dinp: nil, dweight: grads[0], dbias: nil, dout: dout, inp: inp.p, weight: weight.p,
                           scratch: scratch.p, N: N, geometry: g, imagesPerChunk: N)
        }
    }

    // MARK: ReLU and pooling

    /// Values with |x| ≥ 0.1, away from the kink at 0.
    private func valuesAwayFromZero(_ count: Int) -> Floats {
        let x = Floats(count: count)
        for i in 0..<count {
            let magnitude = 0.1 + rng.nextFloat()
            x[i] = rng.nextInt(2) == 0 ? magnitude : -magnitude
        }
        return x
    }

    /// Distinct values 0.1 apart in random order: every pooling window has a clear maximum
    /// (the stencil moves one value by at most 0.02).
    private func wellSeparatedValues(_ count: Int) -> Floats {
        var order = Array(0..<count)
        for i in stride(from: count - 1, to: 0, by: -1) { order.swapAt(i, rng.nextInt(i + 1)) }
        return Floats(order.map { Float($0) * 0.1 - Float(count) * 0.05 })
    }

    func testReLU() {
        let N = 40
        let inp = valuesAwayFromZero(N), saved = Floats(count: N)
        gradientCheck("relu", inputs: [("inp", inp)], outputs: N) { out in
            reluForward(out: out, inp: inp.p, N: N)
            saved.p.update(from: out, count: N)
        } backward: { dout, g in
            reluBackward(dinp: g[0], dout: dout, out: saved.p, N: N)
        }
        // In place, as the front-end runs it: forward over its own buffer, masked gradient.
        let x = inp.copy()
        reluForward(out: x.p, inp: x.p, N: N)
        let d = Floats(random: N, rng: &rng), expected = Floats(count: N)
        reluBackward(dinp: expected.p, dout: d.p, out: x.p, N: N)
        reluBackwardInPlace(d: d.p, out: x.p, N: N)
        XCTAssertEqual(d.array, expected.array)
        XCTAssertEqual(x.array, inp.array.map { max($0, 0) })
    }

    func testMaxPool2x2() {
        let (N, H, W, C) = (2, 6, 5, 3)          // odd width: the last column is dropped (floor mode)
        let g = PoolGeometry(H: H, W: W, C: C, kernel: 2)
        let inp = wellSeparatedValues(N * H * W * C), argmax = Floats(count: N * g.OH * g.OW * C)
        gradientCheck("max pool 2×2", inputs: [("inp", inp)], outputs: N * g.OH * g.OW * C) { out in
            maxPool2DForward(out: out, argmax: argmax.p, inp: inp.p, N: N, geometry: g)
        } backward: { dout, grads in
            maxPool2DBackward(dinp: grads[0], dout: dout, argmax: argmax.p, N: N, geometry: g)
        }
    }

    func testMaxPoolOverlappingWindows() {
        let (N, H, W, C) = (2, 7, 7, 2)
        let g = PoolGeometry(H: H, W: W, C: C, kernel: 3, stride: 2)
        let inp = wellSeparatedValues(N * H * W * C), argmax = Floats(count: N * g.OH * g.OW * C)
        gradientCheck("max pool 3×3 s2", inputs: [("inp", inp)], outputs: N * g.OH * g.OW * C) { out in
            maxPool2DForward(out: out, argmax: argmax.p, inp: inp.p, N: N, geometry: g)
        } backward: { dout, grads in
            maxPool2DBackward(dinp: grads[0], dout: dout, argmax: argmax.p, N: N, geometry: g)
        }
    }

    func testAvgPool() {
        for (kernel, stride, H, W) in [(2, 2, 6, 5), (3, 2, 7, 7)] {
            let (N, C) = (2, 3)
            let g = PoolGeometry(H: H, W: W, C: C, kernel: kernel, stride: stride)
            let inp = Floats(random: N * H * W * C, rng: &rng)
            gradientCheck("avg pool \(kernel)×\(kernel) s\(stride)", inputs: [("inp", inp)], outputs: N * g.OH * g.OW * C) { out in
                avgPool2DForward(out: out, inp: inp.p, N: N, geometry: g)
            } backward: { dout, grads in
                avgPool2DBackward(dinp: grads[0], dout: dout, N: N, geometry: g)
            }
        }
    }

    func testGlobalAvgPoolAndFrameMean() {
        let (N, HW, C) = (4, 6, 5)
        let inp = Floats(random: N * HW * C, rng: &rng)
        gradientCheck("global avg pool", inputs: [("inp", inp)], outputs: N * C) { out in
            globalAvgPoolForward(out: out, inp: inp.p, N: N, HW: HW, C: C)
        } backward: { dout, grads in
            globalAvgPoolBackward(dinp: grads[0], dout: dout, N: N, HW: HW, C: C)
        }
        let (clips, F, D) = (3, 4, 5)
        let frames = Floats(random: clips * F * D, rng: &rng)
        gradientCheck("frame mean", inputs: [("frames", frames)], outputs: clips * D) { out in
            frameMeanForward(out: out, inp: frames.p, clips: clips, F: F, D: D)
        } backward: { dout, grads in
            frameMeanBackward(dinp: grads[0], dout: dout, clips: clips, F: F, D: D)
        }
    }

    // MARK: Front-ends through a ParameterStore

    /// Checks the gradients of every parameter of a module that reads its parameters from `store`:
    /// the test's copies are written into the store before each forward; backward runs on zeroed
    /// store gradients, which are then added to the checker's buffers.
    private func checkStoreGradients(_ label: String, store: ParameterStore, outputs: Int, h: Float = 1e-2,
                                     forward: (UnsafeMutablePointer<Float>) -> Void,
                                     backward: (UnsafeMutablePointer<Float>) -> Void) {
        let inputs = store.slots.map { slot in (name: slot.name, values: Floats(Array(store.parameter(slot.name)))) }
        gradientCheck(label, inputs: inputs, outputs: outputs, h: h) { out in
            for (slot, input) in zip(store.slots, inputs) { store.parameter(slot.name).baseAddress!.update(from: input.values.p, count: slot.count) }
            forward(out)
        } backward: { dout, grads in
            store.zeroGradients()
            backward(dout)
            for (k, slot) in store.slots.enumerated() {
                let g = store.gradient(slot.name)
                for i in 0..<slot.count { grads[k][i] += g[i] }
            }
        }
    }

    func testFeatureProjectionLinearAndMLP() throws {
        for hidden in [0, 6] {
            let config = FeatureProjectionConfig(inputSize: 5, outputSize: 4, hiddenSize: hidden)
            let store = try ParameterStore(FeatureProjection.parameterSpecs(config))
            FeatureProjection.initializeParameters(config, store: store, rng: &rng)
            for slot in store.slots where slot.shape.count == 1 { store.fillNormal(slot.name, std: 0.3, rng: &rng) }
            var layout = ArenaLayout()
            let projection = try FeatureProjection(config: config, store: store, maxClips: 4, layout: &layout)
            let arena = Arena(layout)
            let clips = 3
            let features = Floats(random: clips * config.inputSize, scale: 1.5, rng: &rng)
            let label = hidden == 0 ? "projection (linear)" : "projection (MLP)"
            checkStoreGradients(label, store: store, outputs: clips * config.outputSize) { out in
                out.update(from: projection.forward(arena: arena, features: features.p, clips: clips), count: clips * config.outputSize)
            } backward: { dout in
                projection.backward(arena: arena, dout: dout, features: features.p, clips: clips)
            }
            // The input gradient when asked for, and accumulation into the store.
            let dfeatures = Floats(count: clips * config.inputSize)
            let dout = Floats(random: clips * config.outputSize, rng: &rng)
            _ = projection.forward(arena: arena, features: features.p, clips: clips)
            store.zeroGradients()
            projection.backward(arena: arena, dout: dout.p, features: features.p, clips: clips, dfeatures: dfeatures.p)
            let once = Array(UnsafeBufferPointer(start: store.gradients, count: store.count))
            projection.backward(arena: arena, dout: dout.p, features: features.p, clips: clips)
            for i in 0..<store.count { XCTAssertEqual(store.gradients[i], 2 * once[i], accuracy: 1e-5 * max(1, abs(once[i]))) }
            XCTAssertGreaterThan(dfeatures.array.map(abs).max()!, 0)
        }
    }

    /// The whole front-end on a tiny input (2 clips × 2 frames of 8×8), every parameter. ReLU and
    /// max pooling make it piecewise smooth: a step of 1e-3 keeps kink crossings rare while float32
    /// rounding stays below the tolerance.
    func testConvFrontEndEndToEnd() throws {
        let config = ConvFrontEndConfig(frameSize: 8, framesPerClip: 2, channels: [3, 4, 5], outputSize: 4)
        let store = try ParameterStore(ConvFrontEnd.parameterSpecs(config))
        ConvFrontEnd.initializeParameters(config, store: store, rng: &rng)
        for slot in store.slots where slot.shape.count == 1 { store.fillNormal(slot.name, std: 0.1, rng: &rng) }
        var layout = ArenaLayout()
        let frontEnd = try ConvFrontEnd(config: config, store: store, maxClips: 3, layout: &layout)
        let arena = Arena(layout)
        let clips = 2
        var frames = [UInt8](repeating: 0, count: clips * 2 * 8 * 8 * 3)
        for i in frames.indices { frames[i] = UInt8(rng.nextInt(256)) }
        frames.withUnsafeBufferPointer { pixels in
            checkStoreGradients("conv front-end", store: store, outputs: clips * 4, h: 1e-3) { out in
                out.update(from: frontEnd.forward(arena: arena, frames: pixels.baseAddress!, clips: clips), count: clips * 4)
            } backward: { dout in
                frontEnd.backward(arena: arena, dout: dout, clips: clips)
            }
        }
        // 10×10 frames cannot go through two 2×2 pools.
        XCTAssertThrowsError(try ConvFrontEnd(config: ConvFrontEndConfig(frameSize: 10, channels: [3, 4, 5], outputSize: 4),
                                              store: store, maxClips: 1, layout: &layout))
    }

    // MARK: Losses

    func testMaskedFrameNCE() {
        let (M, NE, D, K1) = (4, 7, 5, 4)
        let predictions = Floats(random: M * D, rng: &rng), embeddings = Floats(random: NE * D, rng: &rng)
        let candidates = Ints([0, 2, 5, 6,
                               3, 0, 0, 1,        // a negative drawn twice
                               6, 1, 2, 3,
                               2, 0, 4, 5])
        let probs = Floats(count: M * K1), losses = Floats(count: M)
        let temperature: Float = 0.5
        gradientCheck("masked-frame NCE", inputs: [("predictions", predictions), ("embeddings", embeddings)], outputs: 1) { out in
            out[0] = maskedFrameNCEForward(probs: probs.p, losses: losses.p, predictions: predictions.p, embeddings: embeddings.p,
                                           candidates: candidates.p, M: M, K1: K1, D: D, NE: NE, temperature: temperature).loss
        } backward: { dout, g in
            maskedFrameNCEBackward(dpredictions: g[0], dembeddings: g[1], probs: probs.p, predictions: predictions.p,
                                   embeddings: embeddings.p, candidates: candidates.p, M: M, K1: K1, D: D,
                                   temperature: temperature, dloss: dout[0])
        }
    }

    func testL2Normalize() {
        let (N, D) = (4, 6)
        let inp = Floats(random: N * D, scale: 2, rng: &rng)
        let unit = Floats(count: N * D), norms = Floats(count: N)
        gradientCheck("l2 normalize", inputs: [("inp", inp)], outputs: N * D) { out in
            l2NormalizeForward(out: out, norms: norms.p, inp: inp.p, N: N, D: D)
            unit.p.update(from: out, count: N * D)
        } backward: { dout, g in
            l2NormalizeBackward(dinp: g[0], dout: dout, out: unit.p, norms: norms.p, N: N, D: D)
        }
    }

    func testSymmetricInfoNCE() {
        let (N, D) = (5, 6)
        for normalize in [false, true] {
            let text = Floats(random: N * D, rng: &rng), video = Floats(random: N * D, rng: &rng)
            let p1 = Floats(count: N * N), p2 = Floats(count: N * N), scores = Floats(count: N * N), dunit = Floats(count: N * D)
            let tu = Floats(count: N * D), vu = Floats(count: N * D), tn = Floats(count: N), vn = Floats(count: N)
            let buffers = normalize ? L2NormalizedPairBuffers(textUnit: tu.p, videoUnit: vu.p, textNorms: tn.p, videoNorms: vn.p) : nil
            let temperature: Float = normalize ? 0.2 : 0.7
            gradientCheck("InfoNCE \(normalize ? "normalised" : "raw")", inputs: [("text", text), ("video", video)], outputs: 1) { out in
                out[0] = symmetricInfoNCEForward(probsTextToVideo: p1.p, probsVideoToText: p2.p, scores: scores.p, text: text.p,
                                                 video: video.p, normalized: buffers, N: N, D: D, temperature: temperature).loss
            } backward: { dout, g in
                symmetricInfoNCEBackward(dtext: g[0], dvideo: g[1], dscores: scores.p, dunit: dunit.p, probsTextToVideo: p1.p,
                                         probsVideoToText: p2.p, text: text.p, video: video.p, normalized: buffers,
                                         N: N, D: D, temperature: temperature, dloss: dout[0])
            }
        }
    }

    /// Draws (text, video) pairs until every hinge argument m_ij − s_ii + s_ij (both directions)
    /// is at least `gap` from 0 and both active and inactive hinges occur.
    private func rankingPoint(N: Int, D: Int, margins: (Floats, Floats) -> Floats?, margin: Float, gap: Float) -> (Floats, Floats) {
        while true {
            let text = Floats(random: N * D, scale: 0.6, rng: &rng), video = Floats(random: N * D, scale: 0.6, rng: &rng)
            for i in 0..<(N * D) where (i / D) % 2 == 0 { video[i] += text[i] }      // half the pairs aligned
            let scores = Floats(count: N * N)
            pairwiseScoresForward(scores: scores.p, a: text.p, b: video.p, NA: N, NB: N, D: D)
            let m = margins(text, video)
            var clear = true, active = 0, inactive = 0
            for i in 0..<N {
                for j in 0..<N where j != i {
                    let mij = m?[i * N + j] ?? margin
                    for argument in [mij - scores[i * N + i] + scores[i * N + j], mij - scores[i * N + i] + scores[j * N + i]] {
                        if abs(argument) < gap { clear = false }
                        if argument > 0 { active += 1 } else { inactive += 1 }
                    }
                }
            }
            if clear && active > 0 && inactive > 0 { return (text, video) }
        }
    }

    func testHingeRankingFixedMargin() {
        let (N, D) = (5, 4)
        let (text, video) = rankingPoint(N: N, D: D, margins: { _, _ in nil }, margin: 0.2, gap: 0.05)
        let scores = Floats(count: N * N), dscores = Floats(count: N * N)
        for reduction in NegativeReduction.allCases {
            gradientCheck("hinge ranking (\(reduction))", inputs: [("text", text), ("video", video)], outputs: 1) { out in
                pairwiseScoresForward(scores: scores.p, a: text.p, b: video.p, NA: N, NB: N, D: D)
                out[0] = rankingHingeForward(scores: scores.p, margins: nil, margin: 0.2, N: N, reduction: reduction).loss
            } backward: { dout, g in
                dscores.zero()
                rankingHingeBackward(dscores: dscores.p, scores: scores.p, margins: nil, margin: 0.2, N: N, reduction: reduction, dloss: dout[0])
                pairwiseScoresBackward(da: g[0], db: g[1], dscores: dscores.p, a: text.p, b: video.p, NA: N, NB: N, D: D)
            }
        }
    }

    /// The variable margin α·σ(−x_iᵀx_j) with x = the text embeddings, a stop-gradient. The
    /// analytic backward is the derivative of the loss with the margins held fixed, so the
    /// numerical side must hold them fixed too: they are computed ONCE at the base point and the
    /// perturbed forwards reuse them (what `.detach()` means for a difference quotient). Were they
    /// recomputed at each perturbed point, the quotient would also measure ∂margin/∂text — the
    /// term the stop-gradient removes; the second half of the test shows that this differs.
    func testVariableMarginRankingHoldsTheMarginConstant() {
        let (N, D) = (5, 4)
        let alpha: Float = 0.5
        func margins(of text: Floats) -> Floats {
            let m = Floats(count: N * N)
            variableMarginsForward(margins: m.p, x: text.p, N: N, D: D, alpha: alpha)
            return m
        }
        let (text, video) = rankingPoint(N: N, D: D, margins: { t, _ in margins(of: t) }, margin: 0, gap: 0.05)
        let fixedMargins = margins(of: text)                  // frozen at the base point
        for i in 0..<N {
            for j in 0..<N where j != i {
                var dot: Float = 0
                for d in 0..<D { dot += text[i * D + d] * text[j * D + d] }
                XCTAssertEqual(fixedMargins[i * N + j], alpha / (1 + exp(dot)), accuracy: 1e-6)
            }
        }
        let scores = Floats(count: N * N), dscores = Floats(count: N * N)
        gradientCheck("variable-margin ranking", inputs: [("text", text), ("video", video)], outputs: 1) { out in
            pairwiseScoresForward(scores: scores.p, a: text.p, b: video.p, NA: N, NB: N, D: D)
            out[0] = rankingHingeForward(scores: scores.p, margins: fixedMargins.p, N: N, reduction: .sum).loss
        } backward: { dout, g in
            dscores.zero()
            rankingHingeBackward(dscores: dscores.p, scores: scores.p, margins: fixedMargins.p, N: N, reduction: .sum, dloss: dout[0])
            pairwiseScoresBackward(da: g[0], db: g[1], dscores: dscores.p, a: text.p, b: video.p, NA: N, NB: N, D: D)
        }

        // The quotient of the loss with the margin recomputed from the perturbed text (no stop-gradient).
        func lossThroughMargin() -> Double {
            let m = margins(of: text)
            pairwiseScoresForward(scores: scores.p, a: text.p, b: video.p, NA: N, NB: N, D: D)
            return Double(rankingHingeForward(scores: scores.p, margins: m.p, N: N, reduction: .sum).loss)
        }
        let h: Float = 1e-2
        var throughMargin = [Double](repeating: 0, count: N * D)
        for i in 0..<(N * D) {
            let saved = text[i]
            text[i] = saved + h; let plus = lossThroughMargin()
            text[i] = saved - h; let minus = lossThroughMargin()
            text[i] = saved
            throughMargin[i] = (plus - minus) / (2 * Double(h))
        }
        let dtext = Floats(count: N * D)
        pairwiseScoresForward(scores: scores.p, a: text.p, b: video.p, NA: N, NB: N, D: D)
        dscores.zero()
        rankingHingeBackward(dscores: dscores.p, scores: scores.p, margins: fixedMargins.p, N: N, reduction: .sum)
        pairwiseScoresBackward(da: dtext.p, db: nil, dscores: dscores.p, a: text.p, b: video.p, NA: N, NB: N, D: D)
        var difference: Double = 0, norm: Double = 0
        for i in 0..<(N * D) {
            difference += (throughMargin[i] - Double(dtext[i])) * (throughMargin[i] - Double(dtext[i]))
            norm += throughMargin[i] * throughMargin[i]
        }
        XCTAssertGreaterThan((difference / norm).squareRoot(), 1e-2, "the stop-gradient should change the text gradient")
    }
}
