import XCTest
import Tensor
@testable import Model

/// The PyTorch fixture written by tools/fixtures/cbt.py: case → name → flat values.
enum CBTFixture {
    static let cases: [String: [String: [Double]]] = {
        guard let url = Bundle.module.url(forResource: "cbt", withExtension: "json", subdirectory: "Resources") else {
            fatalError("Resources/cbt.json missing: run tools/fixtures/cbt.py")
        }
        return try! JSON.decode([String: [String: [Double]]].self, from: url.path)
    }()

    static func `case`(_ name: String) -> [String: [Double]] {
        guard let c = cases[name] else { fatalError("cbt fixture has no case '\(name)'") }
        return c
    }
}

/// The CBT layers and losses against torch.nn.functional / autograd on the same inputs
/// (docs/ARCHITECTURE.md §6: forward 1e-4, gradients 1e-3, each as |a − b| ≤ tol + tol·|b|).
final class CBTPyTorchParityTests: XCTestCase {
    let fwd = 1e-4, grad = 1e-3

    func testConvolution() {
        for name in ["conv_s1_p1", "conv_s2_p1", "conv_k2x3_s2_p0"] {
            let f = CBTFixture.case(name)
            let N = f.int("N")
            let g = Conv2DGeometry(H: f.int("H"), W: f.int("W"), C: f.int("C"), OC: f.int("OC"), KH: f.int("KH"), KW: f.int("KW"),
                                   stride: f.int("stride"), padding: f.int("padding"))
            XCTAssertEqual(g.OH, f.int("OH"), name)
            XCTAssertEqual(g.OW, f.int("OW"), name)
            let inp = f.floats("inp"), weight = f.floats("weight"), bias = f.floats("bias"), dout = f.floats("dout")
            // One image per chunk and the whole batch in one chunk: the same numbers.
            for chunk in [1, N] {
                let scratch = Floats(count: g.scratchCount(imagesPerChunk: chunk))
                let out = Floats(count: N * g.OH * g.OW * g.OC)
                conv2dForward(out: out.p, inp: inp.p, weight: weight.p, bias: bias.p, scratch: scratch.p, N: N, geometry: g,
                              imagesPerChunk: chunk)
                checkTensor(out, f.values("out"), "\(name) out (chunk \(chunk))", atol: fwd, rtol: fwd)
                let dinp = Floats(count: inp.count), dweight = Floats(count: weight.count), dbias = Floats(count: bias.count)
                conv2dBackward(dinp: dinp.p, dweight: dweight.p, dbias: dbias.p, dout: dout.p, inp: inp.p, weight: weight.p,
                               scratch: scratch.p, N: N, geometry: g, imagesPerChunk: chunk)
                checkTensor(dinp, f.values("dinp"), "\(name) dinp", atol: grad, rtol: grad)
                checkTensor(dweight, f.values("dweight"), "\(name) dweight", atol: grad, rtol: grad)
                checkTensor(dbias, f.values("dbias"), "\(name) dbias", atol: grad, rtol: grad)
            }
            // The batch repeated 13 times (8 image groups of several images, several chunks each):
            // every copy gives torch's output and input gradient, the parameter gradients add up.
            let copies = 13, imageSize = g.H * g.W * g.C, outSize = g.OH * g.OW * g.OC
            let big = Floats(count: copies * inp.count), bigDout = Floats(count: copies * dout.count)
            for r in 0..<copies {
                (big.p + r * inp.count).update(from: inp.p, count: inp.count)
                (bigDout.p + r * dout.count).update(from: dout.p, count: dout.count)
            }
            let scratch = Floats(count: g.scratchCount(imagesPerChunk: 2))
            let out = Floats(count: copies * N * outSize)
            conv2dForward(out: out.p, inp: big.p, weight: weight.p, bias: bias.p, scratch: scratch.p, N: copies * N, geometry: g,
                          imagesPerChunk: 2)
            let dinp = Floats(count: big.count), dweight = Floats(count: weight.count), dbias = Floats(count: bias.count)
            conv2dBackward(dinp: dinp.p, dweight: dweight.p, dbias: dbias.p, dout: bigDout.p, inp: big.p, weight: weight.p,
                           scratch: scratch.p, N: copies * N, geometry: g, imagesPerChunk: 2)
            for r in [0, 6, copies - 1] {
                checkTensor(out.p + r * N * outSize, f.values("out"), "\(name) out, copy \(r)", atol: fwd, rtol: fwd)
                checkTensor(dinp.p + r * N * imageSize, f.values("dinp"), "\(name) dinp, copy \(r)", atol: grad, rtol: grad)
            }
            checkTensor(dweight, f.values("dweight").map { $0 * Double(copies) }, "\(name) dweight × \(copies)", atol: grad, rtol: grad)
            checkTensor(dbias, f.values("dbias").map { $0 * Double(copies) }, "\(name) dbias × \(copies)", atol: grad, rtol: grad)
        }
    }

    func testPooling() {
        for name in ["maxpool_2x2", "maxpool_3x3_s2", "avgpool_2x2", "avgpool_3x3_s2"] {
            let f = CBTFixture.case(name)
            let N = f.int("N")
            let g = PoolGeometry(H: f.int("H"), W: f.int("W"), C: f.int("C"), kernel: f.int("kernel"), stride: f.int("stride"))
            XCTAssertEqual([g.OH, g.OW], [f.int("OH"), f.int("OW")], name)
            let inp = f.floats("inp"), dout = f.floats("dout")
            let out = Floats(count: N * g.OH * g.OW * g.C), dinp = Floats(count: inp.count)
            if name.hasPrefix("max") {
                let argmax = Floats(count: out.count)
                maxPool2DForward(out: out.p, argmax: argmax.p, inp: inp.p, N: N, geometry: g)
                maxPool2DBackward(dinp: dinp.p, dout: dout.p, argmax: argmax.p, N: N, geometry: g)
            } else {
                avgPool2DForward(out: out.p, inp: inp.p, N: N, geometry: g)
                avgPool2DBackward(dinp: dinp.p, dout: dout.p, N: N, geometry: g)
            }
            checkTensor(out, f.values("out"), "\(name) out", atol: fwd, rtol: fwd)
            checkTensor(dinp, f.values("dinp"), "\(name) dinp", atol: grad, rtol: grad)
        }
        let f = CBTFixture.case("avgpool_global")
        let (N, HW, C) = (f.int("N"), f.int("H") * f.int("W"), f.int("C"))
        let out = Floats(count: N * C), dinp = Floats(count: N * HW * C)
        let inp = f.floats("inp"), dout = f.floats("dout")
        globalAvgPoolForward(out: out.p, inp: inp.p, N: N, HW: HW, C: C)
        globalAvgPoolBackward(dinp: dinp.p, dout: dout.p, N: N, HW: HW, C: C)
        checkTensor(out, f.values("out"), "global avg pool out", atol: fwd, rtol: fwd)
        checkTensor(dinp, f.values("dinp"), "global avg pool dinp", atol: grad, rtol: grad)
    }

    /// The whole front-end against the equivalent torch module (same weights by name).
    func testConvFrontEnd() throws {
        let f = CBTFixture.case("frontend")
        let (clips, F, S, D) = (f.int("clips"), f.int("F"), f.int("S"), f.int("D"))
        let config = ConvFrontEndConfig(frameSize: S, framesPerClip: F, channels: f.values("channels").map { Int($0) }, outputSize: D)
        let store = try ParameterStore(ConvFrontEnd.parameterSpecs(config))
        for slot in store.slots {
            let values = f.values(String(slot.name.dropFirst("frontend.".count)))
            XCTAssertEqual(values.count, slot.count, slot.name)
            for (i, v) in values.enumerated() { store.parameters[slot.offset + i] = Float(v) }
        }
        var layout = ArenaLayout()
        let frontEnd = try ConvFrontEnd(config: config, store: store, maxClips: clips + 1, layout: &layout, chunkFloats: 4096)
        let arena = Arena(layout)
        let pixels = f.values("pixels").map { UInt8($0) }
        let out = pixels.withUnsafeBufferPointer { frontEnd.forward(arena: arena, frames: $0.baseAddress!, clips: clips) }
        checkTensor(out, f.values("out"), "front-end out", atol: fwd, rtol: fwd)
        store.zeroGradients()
        let dout = f.floats("dout")
        frontEnd.backward(arena: arena, dout: dout.p, clips: clips)
        for slot in store.slots {
            let key = "d" + slot.name.dropFirst("frontend.".count)
            checkTensor(store.gradients + slot.offset, f.values(key), "front-end \(key)", atol: grad, rtol: grad)
        }
    }

    func testMaskedFrameNCE() {
        let f = CBTFixture.case("nce")
        let (M, NE, D, K1) = (f.int("M"), f.int("NE"), f.int("D"), f.int("K1"))
        let temperature = Float(f.scalar("temperature"))
        let predictions = f.floats("predictions"), embeddings = f.floats("embeddings"), candidates = Ints(f.values("candidates"))
        let probs = Floats(count: M * K1), losses = Floats(count: M)
        let result = maskedFrameNCEForward(probs: probs.p, losses: losses.p, predictions: predictions.p, embeddings: embeddings.p,
                                           candidates: candidates.p, M: M, K1: K1, D: D, NE: NE, temperature: temperature)
        checkTensor([result.loss], f.values("loss"), "nce loss", atol: fwd, rtol: fwd)
        checkTensor(probs, f.values("probs"), "nce probs", atol: fwd, rtol: fwd)
        XCTAssertEqual(result.correct, f.int("correct"))
        XCTAssertEqual(result.count, M)
        let dpredictions = Floats(count: M * D), dembeddings = Floats(count: NE * D)
        maskedFrameNCEBackward(dpredictions: dpredictions.p, dembeddings: dembeddings.p, probs: probs.p, predictions: predictions.p,
                               embeddings: embeddings.p, candidates: candidates.p, M: M, K1: K1, D: D, temperature: temperature)
        checkTensor(dpredictions, f.values("dpredictions"), "nce dpredictions", atol: grad, rtol: grad)
        checkTensor(dembeddings, f.values("dembeddings"), "nce dembeddings", atol: grad, rtol: grad)
    }

    func testSymmetricInfoNCE() {
        for name in ["infonce_raw", "infonce_normalized"] {
            let f = CBTFixture.case(name)
            let (N, D) = (f.int("N"), f.int("D"))
            let temperature = Float(f.scalar("temperature"))
            let text = f.floats("text"), video = f.floats("video")
            let p1 = Floats(count: N * N), p2 = Floats(count: N * N), scores = Floats(count: N * N), dunit = Floats(count: N * D)
            let tu = Floats(count: N * D), vu = Floats(count: N * D), tn = Floats(count: N), vn = Floats(count: N)
            let buffers = name == "infonce_normalized"
                ? L2NormalizedPairBuffers(textUnit: tu.p, videoUnit: vu.p, textNorms: tn.p, videoNorms: vn.p) : nil
            let result = symmetricInfoNCEForward(probsTextToVideo: p1.p, probsVideoToText: p2.p, scores: scores.p, text: text.p,
                                                 video: video.p, normalized: buffers, N: N, D: D, temperature: temperature)
            checkTensor([result.loss], f.values("loss"), "\(name) loss", atol: fwd, rtol: fwd)
            checkTensor([result.textToVideo.loss], f.values("loss_t2v"), "\(name) text→video loss", atol: fwd, rtol: fwd)
            checkTensor([result.videoToText.loss], f.values("loss_v2t"), "\(name) video→text loss", atol: fwd, rtol: fwd)
            let dtext = Floats(count: N * D), dvideo = Floats(count: N * D)
            symmetricInfoNCEBackward(dtext: dtext.p, dvideo: dvideo.p, dscores: scores.p, dunit: dunit.p, probsTextToVideo: p1.p,
                                     probsVideoToText: p2.p, text: text.p, video: video.p, normalized: buffers,
                                     N: N, D: D, temperature: temperature)
            checkTensor(dtext, f.values("dtext"), "\(name) dtext", atol: grad, rtol: grad)
            checkTensor(dvideo, f.values("dvideo"), "\(name) dvideo", atol: grad, rtol: grad)
        }
    }

    private func ranking(_ f: [String: [Double]], margins: Floats?, margin: Float, reduction: NegativeReduction)
        -> (loss: Float, dtext: Floats, dvideo: Floats) {
        let (N, D) = (f.int("N"), f.int("D"))
        let text = f.floats("text"), video = f.floats("video")
        let scores = Floats(count: N * N), dscores = Floats(count: N * N)
        pairwiseScoresForward(scores: scores.p, a: text.p, b: video.p, NA: N, NB: N, D: D)
        let result = rankingHingeForward(scores: scores.p, margins: margins?.p, margin: margin, N: N, reduction: reduction)
        rankingHingeBackward(dscores: dscores.p, scores: scores.p, margins: margins?.p, margin: margin, N: N, reduction: reduction)
        let dtext = Floats(count: N * D), dvideo = Floats(count: N * D)
        pairwiseScoresBackward(da: dtext.p, db: dvideo.p, dscores: dscores.p, a: text.p, b: video.p, NA: N, NB: N, D: D)
        return (result.loss, dtext, dvideo)
    }

    func testHingeRankingFixedMargin() {
        let f = CBTFixture.case("ranking_fixed")
        let (loss, dtext, dvideo) = ranking(f, margins: nil, margin: Float(f.scalar("margin")), reduction: .sum)
        checkTensor([loss], f.values("loss"), "ranking loss", atol: fwd, rtol: fwd)
        checkTensor(dtext, f.values("dtext"), "ranking dtext", atol: grad, rtol: grad)
        checkTensor(dvideo, f.values("dvideo"), "ranking dvideo", atol: grad, rtol: grad)
    }

    /// Against torch with `.detach()` on the margin; and, to show the reference can tell, the
    /// gradient with the margin left in the graph differs from ours.
    func testVariableMarginRanking() {
        for reduction in NegativeReduction.allCases {
            let f = CBTFixture.case("ranking_variable_\(reduction)")
            let (N, D) = (f.int("N"), f.int("D"))
            let margins = Floats(count: N * N)
            let text = f.floats("text")
            variableMarginsForward(margins: margins.p, x: text.p, N: N, D: D, alpha: Float(f.scalar("alpha")))
            checkTensor(margins, f.values("margins"), "variable margins", atol: fwd, rtol: fwd)
            let (loss, dtext, dvideo) = ranking(f, margins: margins, margin: 0, reduction: reduction)
            checkTensor([loss], f.values("loss"), "variable-margin loss (\(reduction))", atol: fwd, rtol: fwd)
            checkTensor(dtext, f.values("dtext"), "variable-margin dtext (\(reduction))", atol: grad, rtol: grad)
            checkTensor(dvideo, f.values("dvideo"), "variable-margin dvideo (\(reduction))", atol: grad, rtol: grad)
            let through = f.values("dtext_through_margin")
            let largest = zip(dtext.array, through).map { abs(Double($0) - $1) }.max()!
            XCTAssertGreaterThan(largest, 1e-2, "without the stop-gradient the text gradient should differ")
        }
    }
}

private func checkTensor(_ actual: [Float], _ expected: [Double], _ label: String, atol: Double, rtol: Double,
                         file: StaticString = #filePath, line: UInt = #line) {
    checkTensor(Floats(actual), expected, label, atol: atol, rtol: rtol, file: file, line: line)
}
