import XCTest
import Tensor
@testable import Model

/// Finite-difference checks of every layer's backward (docs/ARCHITECTURE.md §6). See `gradientCheck`.
final class GradientCheckTests: XCTestCase {
    var rng = SeededRNG(seed: 2024)

    func testEmbeddings() {
        let (B, T, C, V, P, S) = (2, 4, 6, 9, 6, 2)
        let word = Floats(random: V * C, rng: &rng), position = Floats(random: P * C, rng: &rng)
        let segment = Floats(random: S * C, rng: &rng)
        let ids = Ints([3, 3, 0, 8, 5, 3, 1, 1])       // repeated ids: the scatter must add
        let types = Ints([0, 0, 1, 1, 0, 1, 1, 1])
        gradientCheck("embeddings", inputs: [("word", word), ("position", position), ("token_type", segment)],
                      outputs: B * T * C, allowZero: ["word"]) { out in
            embeddingsForward(out: out, inputIds: ids.p, tokenTypeIds: types.p, wordEmbeddings: word.p,
                              positionEmbeddings: position.p, tokenTypeEmbeddings: segment.p, B: B, T: T, C: C)
        } backward: { dout, g in
            embeddingsBackward(dwordEmbeddings: g[0], dpositionEmbeddings: g[1], dtokenTypeEmbeddings: g[2],
                               dout: dout, inputIds: ids.p, tokenTypeIds: types.p, paddingId: nil, B: B, T: T, C: C)
        }
    }

    func testLayerNorm() {
        let (N, C) = (5, 12)
        let inp = Floats(random: N * C, scale: 2, rng: &rng)
        let weight = Floats(random: C, rng: &rng), bias = Floats(random: C, rng: &rng)
        let mean = Floats(count: N), rstd = Floats(count: N)
        gradientCheck("layerNorm", inputs: [("inp", inp), ("weight", weight), ("bias", bias)], outputs: N * C) { out in
            layerNormForward(out: out, mean: mean.p, rstd: rstd.p, inp: inp.p, weight: weight.p, bias: bias.p, N: N, C: C)
        } backward: { dout, g in
            layerNormBackward(dinp: g[0], dweight: g[1], dbias: g[2], dout: dout, inp: inp.p, weight: weight.p,
                              mean: mean.p, rstd: rstd.p, N: N, C: C)
        }
    }

    func testLinear() {
        let (N, C, OC) = (6, 5, 7)
        let inp = Floats(random: N * C, rng: &rng), weight = Floats(random: OC * C, rng: &rng)
        let bias = Floats(random: OC, rng: &rng)
        gradientCheck("linear", inputs: [("inp", inp), ("weight", weight), ("bias", bias)], outputs: N * OC) { out in
            linearForward(out: out, inp: inp.p, weight: weight.p, bias: bias.p, N: N, C: C, OC: OC)
        } backward: { dout, g in
            linearBackward(dinp: g[0], dweight: g[1], dbias: g[2], dout: dout, inp: inp.p, weight: weight.p, N: N, C: C, OC: OC)
        }
        // Without a bias (decoder-style) and with the optional gradients left out.
        gradientCheck("linear without bias", inputs: [("weight", weight)], outputs: N * OC) { out in
            linearForward(out: out, inp: inp.p, weight: weight.p, bias: nil, N: N, C: C, OC: OC)
        } backward: { dout, g in
            linearBackward(dinp: nil, dweight: g[0], dbias: nil, dout: dout, inp: inp.p, weight: weight.p, N: N, C: C, OC: OC)
        }
    }

    /// Attention over a fused QKV input with padding in the second sequence: the padded keys get
    /// no probability and hence no gradient, while padded queries still attend to real keys.
    func testAttentionWithPaddingMask() {
        let (B, T, C, NH) = (2, 5, 8, 2)
        let qkv = Floats(random: B * T * 3 * C, scale: 1.5, rng: &rng)
        let mask = Floats([1, 1, 1, 1, 1, 1, 1, 1, 0, 0] as [Float])
        let att = Floats(count: B * NH * T * T), scratch = Floats(count: B * NH * T * T)
        gradientCheck("attention", inputs: [("qkv", qkv)], outputs: B * T * C) { out in
            attentionForward(out: out, att: att.p, qkv: qkv.p, mask: mask.p, B: B, T: T, C: C, NH: NH)
        } backward: { dout, g in
            attentionBackward(dqkv: g[0], scratch: scratch.p, dout: dout, qkv: qkv.p, att: att.p, mask: mask.p, B: B, T: T, C: C, NH: NH)
        }
        // Masked keys: probability exactly 0, and the K and V gradients of those positions vanish.
        let context = Floats(count: B * T * C)
        attentionForward(out: context.p, att: att.p, qkv: qkv.p, mask: mask.p, B: B, T: T, C: C, NH: NH)
        for h in 0..<NH {
            for i in 0..<T {
                for j in 3..<5 { XCTAssertEqual(att[((1 * NH + h) * T + i) * T + j], 0) }
                var sum: Float = 0
                for j in 0..<T { sum += att[((1 * NH + h) * T + i) * T + j] }
                XCTAssertEqual(sum, 1, accuracy: 1e-6)
            }
        }
        let dqkv = Floats(count: B * T * 3 * C), dout = Floats(random: B * T * C, rng: &rng)
        attentionBackward(dqkv: dqkv.p, scratch: scratch.p, dout: dout.p, qkv: qkv.p, att: att.p, mask: mask.p, B: B, T: T, C: C, NH: NH)
        for t in 3..<5 {
            for c in C..<(3 * C) { XCTAssertEqual(dqkv[(1 * T + t) * 3 * C + c], 0, "padded key/value row \(t) column \(c)") }
        }
    }

    /// Padding inside a sequence (a hole before real tokens) goes through the additive mask while
    /// trailing padding is skipped; both give probability exactly 0.
    func testAttentionWithMaskHoles() {
        let (B, T, C, NH) = (2, 5, 8, 2)
        let qkv = Floats(random: B * T * 3 * C, scale: 1.5, rng: &rng)
        let mask = Floats([1, 0, 1, 1, 0, 1, 1, 0, 1, 1] as [Float])
        let att = Floats(count: B * NH * T * T), scratch = Floats(count: B * NH * T * T)
        gradientCheck("attention with holes", inputs: [("qkv", qkv)], outputs: B * T * C) { out in
            attentionForward(out: out, att: att.p, qkv: qkv.p, mask: mask.p, B: B, T: T, C: C, NH: NH)
        } backward: { dout, g in
            attentionBackward(dqkv: g[0], scratch: scratch.p, dout: dout, qkv: qkv.p, att: att.p, mask: mask.p, B: B, T: T, C: C, NH: NH)
        }
        for h in 0..<NH {
            for i in 0..<T {
                let row0 = (0 * NH + h) * T * T + i * T, row1 = (1 * NH + h) * T * T + i * T
                XCTAssertEqual(att[row0 + 1], 0)
                XCTAssertEqual(att[row0 + 4], 0)
                XCTAssertEqual(att[row1 + 2], 0)
            }
        }
    }

    /// A sequence with no real token: every score is finfo.min, so, as in HF, its queries attend
    /// uniformly (no division by zero, no NaN). The function is constant in Q and K there; the
    /// backward follows the softmax formula as autograd does, so it is not gradient-checked.
    func testAttentionOverAnEmptySequenceIsUniform() {
        let (B, T, C, NH) = (2, 4, 6, 3)
        let qkv = Floats(random: B * T * 3 * C, scale: 1.5, rng: &rng)
        let mask = Floats([1, 1, 0, 0, 0, 0, 0, 0] as [Float])
        let att = Floats(count: B * NH * T * T), out = Floats(count: B * T * C)
        attentionForward(out: out.p, att: att.p, qkv: qkv.p, mask: mask.p, B: B, T: T, C: C, NH: NH)
        for h in 0..<NH {
            for i in 0..<(T * T) { XCTAssertEqual(att[(1 * NH + h) * T * T + i], 1 / Float(T), accuracy: 1e-7) }
        }
        for c in 0..<C {  // each output row of sequence 1 is the mean of its V rows
            var mean: Float = 0
            for t in 0..<T { mean += qkv[(1 * T + t) * 3 * C + 2 * C + c] / Float(T) }
            XCTAssertEqual(out[(1 * T + 2) * C + c], mean, accuracy: 1e-5)
        }
    }

    func testAttentionWithDropout() {
        let (B, T, C, NH) = (2, 4, 6, 3)
        let qkv = Floats(random: B * T * 3 * C, scale: 1.5, rng: &rng)
        let mask = Floats([1, 1, 1, 1, 1, 1, 1, 0] as [Float])
        let att = Floats(count: B * NH * T * T), scratch = Floats(count: B * NH * T * T)
        gradientCheck("attention with dropout", inputs: [("qkv", qkv)], outputs: B * T * C) { out in
            attentionForward(out: out, att: att.p, qkv: qkv.p, mask: mask.p, B: B, T: T, C: C, NH: NH,
                             dropout: 0.3, seed: 77, scratch: scratch.p)
        } backward: { dout, g in
            attentionBackward(dqkv: g[0], scratch: scratch.p, dout: dout, qkv: qkv.p, att: att.p, mask: mask.p, B: B, T: T, C: C, NH: NH,
                              dropout: 0.3, seed: 77)
        }
    }

    func testGELU() {
        let N = 40
        let inp = Floats(random: N, scale: 4, rng: &rng)
        gradientCheck("gelu", inputs: [("inp", inp)], outputs: N) { out in
            geluForward(out: out, inp: inp.p, N: N)
        } backward: { dout, g in
            geluBackward(dinp: g[0], inp: inp.p, dout: dout, N: N)
        }
    }

    func testTanh() {
        let N = 30
        let inp = Floats(random: N, scale: 2, rng: &rng)
        let saved = Floats(count: N)
        gradientCheck("tanh", inputs: [("inp", inp)], outputs: N) { out in
            tanhForward(out: out, inp: inp.p, N: N)
            saved.p.update(from: out, count: N)
        } backward: { dout, g in
            tanhBackward(dinp: g[0], dout: dout, out: saved.p, N: N)
        }
    }

    func testResidual() {
        let N = 20
        let a = Floats(random: N, rng: &rng), b = Floats(random: N, rng: &rng)
        gradientCheck("residual", inputs: [("inp1", a), ("inp2", b)], outputs: N) { out in
            residualForward(out: out, inp1: a.p, inp2: b.p, N: N)
        } backward: { dout, g in
            residualBackward(dinp1: g[0], dinp2: g[1], dout: dout, N: N)
        }
    }

    func testDropout() {
        let N = 50
        let inp = Floats(random: N, rng: &rng)
        gradientCheck("dropout", inputs: [("inp", inp)], outputs: N) { out in
            dropoutForward(out: out, inp: inp.p, p: 0.4, seed: 5, N: N)
        } backward: { dout, g in
            dropoutBackward(dinp: g[0], dout: dout, p: 0.4, seed: 5, N: N)
        }
    }

    /// Gather the selected rows → decoder → cross-entropy over them (the MLM/MFM head's path).
    func testSelectedPositionsCrossEntropy() {
        let (N, C, V, M) = (9, 5, 7, 4)
        let hidden = Floats(random: N * C, rng: &rng)
        let weight = Floats(random: V * C, rng: &rng), bias = Floats(random: V, rng: &rng)
        let rows = Ints([6, 0, 3, 8]), targets = Ints([2, 6, 0, 2])
        let selected = Floats(count: M * C), logits = Floats(count: M * V)
        let probs = Floats(count: M * V), losses = Floats(count: M)
        let dselected = Floats(count: M * C), dlogits = Floats(count: M * V)
        gradientCheck("gather → linear → cross-entropy", inputs: [("hidden", hidden), ("weight", weight), ("bias", bias)],
                      outputs: 1) { out in
            gatherRowsForward(out: selected.p, inp: hidden.p, rows: rows.p, M: M, C: C)
            linearForward(out: logits.p, inp: selected.p, weight: weight.p, bias: bias.p, N: M, C: C, OC: V)
            out[0] = softmaxCrossEntropyForward(losses: losses.p, probs: probs.p, logits: logits.p, rows: nil,
                                                targets: targets.p, M: M, V: V)
        } backward: { dout, g in
            dlogits.zero(); dselected.zero()
            softmaxCrossEntropyBackward(dlogits: dlogits.p, probs: probs.p, rows: nil, targets: targets.p, M: M, V: V, dloss: dout[0])
            linearBackward(dinp: dselected.p, dweight: g[1], dbias: g[2], dout: dlogits.p, inp: selected.p, weight: weight.p,
                           N: M, C: C, OC: V)
            gatherRowsBackward(dinp: g[0], dout: dselected.p, rows: rows.p, M: M, C: C)
        }
        // The in-place form (probs buffer turned into dlogits) gives the same gradient.
        let inPlace = probs.copy()
        let dloss: Float = 0.7
        dlogits.zero()
        softmaxCrossEntropyBackward(dlogits: dlogits.p, probs: probs.p, rows: nil, targets: targets.p, M: M, V: V, dloss: dloss)
        softmaxCrossEntropyBackwardInPlace(probs: inPlace.p, targets: targets.p, M: M, V: V, dloss: dloss)
        XCTAssertEqual(inPlace.array, dlogits.array)
    }

    /// Cross-entropy over selected rows of a full logits matrix (the alignment head's subset of
    /// examples); rows not selected must get no gradient.
    func testCrossEntropyOverSelectedRowsOfLogits() {
        let (N, V, M) = (6, 3, 3)
        let logits = Floats(random: N * V, scale: 3, rng: &rng)
        let rows = Ints([4, 1, 2]), targets = Ints([0, 2, 2])
        let probs = Floats(count: M * V), losses = Floats(count: M)
        gradientCheck("cross-entropy over rows", inputs: [("logits", logits)], outputs: 1) { out in
            out[0] = softmaxCrossEntropyForward(losses: losses.p, probs: probs.p, logits: logits.p, rows: rows.p,
                                                targets: targets.p, M: M, V: V)
        } backward: { dout, g in
            softmaxCrossEntropyBackward(dlogits: g[0], probs: probs.p, rows: rows.p, targets: targets.p, M: M, V: V, dloss: dout[0])
        }
        let dlogits = Floats(count: N * V)
        softmaxCrossEntropyBackward(dlogits: dlogits.p, probs: probs.p, rows: rows.p, targets: targets.p, M: M, V: V)
        for n in [0, 3, 5] { for v in 0..<V { XCTAssertEqual(dlogits[n * V + v], 0) } }
    }

    func testBinaryCrossEntropy() {
        let logits = Floats([2.5, -0.3, 0.1, -7, 4, 0.8] as [Float])
        let rows = Ints([0, 1, 3, 4, 5]), targets = Floats([1, 0, 1, 0, 1] as [Float])
        let losses = Floats(count: 5)
        gradientCheck("binary cross-entropy", inputs: [("logits", logits)], outputs: 1, allowZero: []) { out in
            out[0] = binaryCrossEntropyForward(losses: losses.p, logits: logits.p, rows: rows.p, targets: targets.p, M: 5)
        } backward: { dout, g in
            binaryCrossEntropyBackward(dlogits: g[0], logits: logits.p, rows: rows.p, targets: targets.p, M: 5, dloss: dout[0])
        }
    }

    /// A post-LayerNorm BERT encoder layer (HF BertLayer) assembled from the pieces, with
    /// padding and dropout: checks that the layers compose (buffer roles, accumulation).
    func testPostLayerNormEncoderLayerComposes() {
        let (B, T, C, NH, FF) = (2, 3, 4, 2, 8)
        let N = B * T
        let x = Floats(random: N * C, rng: &rng)
        let wqkv = Floats(random: 3 * C * C, scale: 0.8, rng: &rng), bqkv = Floats(random: 3 * C, scale: 0.2, rng: &rng)
        let wo = Floats(random: C * C, scale: 0.8, rng: &rng), bo = Floats(random: C, scale: 0.2, rng: &rng)
        let ln1w = Floats(random: C, rng: &rng), ln1b = Floats(random: C, rng: &rng)
        let w1 = Floats(random: FF * C, scale: 0.8, rng: &rng), b1 = Floats(random: FF, scale: 0.2, rng: &rng)
        let w2 = Floats(random: C * FF, scale: 0.8, rng: &rng), b2 = Floats(random: C, scale: 0.2, rng: &rng)
        let ln2w = Floats(random: C, rng: &rng), ln2b = Floats(random: C, rng: &rng)
        let mask = Floats([1, 1, 1, 1, 1, 0] as [Float])
        let layer = EncoderLayerBuffers(B: B, T: T, C: C, NH: NH, FF: FF)
        let p: Float = 0.2
        let inputs: [(name: String, values: Floats)] = [("x", x), ("wqkv", wqkv), ("bqkv", bqkv), ("wo", wo), ("bo", bo),
                                                        ("ln1w", ln1w), ("ln1b", ln1b), ("w1", w1), ("b1", b1),
                                                        ("w2", w2), ("b2", b2), ("ln2w", ln2w), ("ln2b", ln2b)]
        gradientCheck("encoder layer", inputs: inputs, outputs: N * C) { out in
            layer.forward(out: out, x: x.p, mask: mask.p, w: inputs.map { UnsafePointer($0.values.p) }, dropout: p)
        } backward: { dout, g in
            layer.backward(dout: dout, x: x.p, mask: mask.p, w: inputs.map { UnsafePointer($0.values.p) }, grads: g, dropout: p)
        }
    }
}

/// The activations of one post-LN encoder layer, as the lead's BERT will lay them out.
private final class EncoderLayerBuffers {
    let B, T, C, NH, FF, N: Int
    let qkv, att, scratch, context, proj, projDropped, res1, ln1, ln1Mean, ln1Rstd, h1, g1, h2, h2Dropped, res2, ln2Mean, ln2Rstd: Floats
    let dqkv, dcontext, dproj, dprojDropped, dres1, dln1, dh1, dg1, dh2, dh2Dropped, dres2: Floats

    init(B: Int, T: Int, C: Int, NH: Int, FF: Int) {
        (self.B, self.T, self.C, self.NH, self.FF, self.N) = (B, T, C, NH, FF, B * T)
        let N = B * T
        qkv = Floats(count: N * 3 * C); att = Floats(count: B * NH * T * T); scratch = Floats(count: B * NH * T * T)
        context = Floats(count: N * C); proj = Floats(count: N * C); projDropped = Floats(count: N * C)
        res1 = Floats(count: N * C); ln1 = Floats(count: N * C); ln1Mean = Floats(count: N); ln1Rstd = Floats(count: N)
        h1 = Floats(count: N * FF); g1 = Floats(count: N * FF); h2 = Floats(count: N * C); h2Dropped = Floats(count: N * C)
        res2 = Floats(count: N * C); ln2Mean = Floats(count: N); ln2Rstd = Floats(count: N)
        dqkv = Floats(count: N * 3 * C); dcontext = Floats(count: N * C); dproj = Floats(count: N * C)
        dres1 = Floats(count: N * C); dln1 = Floats(count: N * C); dh1 = Floats(count: N * FF); dg1 = Floats(count: N * FF)
        dh2 = Floats(count: N * C); dres2 = Floats(count: N * C)
        dprojDropped = Floats(count: N * C); dh2Dropped = Floats(count: N * C)
    }

    /// w: x, wqkv, bqkv, wo, bo, ln1w, ln1b, w1, b1, w2, b2, ln2w, ln2b
    func forward(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, mask: UnsafePointer<Float>, w: [UnsafePointer<Float>], dropout p: Float) {
        linearForward(out: qkv.p, inp: x, weight: w[1], bias: w[2], N: N, C: C, OC: 3 * C)
        attentionForward(out: context.p, att: att.p, qkv: qkv.p, mask: mask, B: B, T: T, C: C, NH: NH, dropout: p, seed: 1, scratch: scratch.p)
        linearForward(out: proj.p, inp: context.p, weight: w[3], bias: w[4], N: N, C: C, OC: C)
        dropoutForward(out: projDropped.p, inp: proj.p, p: p, seed: 2, N: N * C)
        residualForward(out: res1.p, inp1: x, inp2: projDropped.p, N: N * C)
        layerNormForward(out: ln1.p, mean: ln1Mean.p, rstd: ln1Rstd.p, inp: res1.p, weight: w[5], bias: w[6], N: N, C: C)
        linearForward(out: h1.p, inp: ln1.p, weight: w[7], bias: w[8], N: N, C: C, OC: FF)
        geluForward(out: g1.p, inp: h1.p, N: N * FF)
        linearForward(out: h2.p, inp: g1.p, weight: w[9], bias: w[10], N: N, C: FF, OC: C)
        dropoutForward(out: h2Dropped.p, inp: h2.p, p: p, seed: 3, N: N * C)
        residualForward(out: res2.p, inp1: ln1.p, inp2: h2Dropped.p, N: N * C)
        layerNormForward(out: out, mean: ln2Mean.p, rstd: ln2Rstd.p, inp: res2.p, weight: w[11], bias: w[12], N: N, C: C)
    }

    func backward(dout: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, mask: UnsafePointer<Float>, w: [UnsafePointer<Float>], grads g: [UnsafeMutablePointer<Float>], dropout p: Float) {
        // The forward read in reverse; every backward accumulates into zeroed activation gradients.
        for buffer in [dqkv, dcontext, dproj, dprojDropped, dres1, dln1, dh1, dg1, dh2, dh2Dropped, dres2] { buffer.zero() }
        layerNormBackward(dinp: dres2.p, dweight: g[11], dbias: g[12], dout: dout, inp: res2.p, weight: w[11],
                          mean: ln2Mean.p, rstd: ln2Rstd.p, N: N, C: C)
        residualBackward(dinp1: dln1.p, dinp2: dh2Dropped.p, dout: dres2.p, N: N * C)
        dropoutBackward(dinp: dh2.p, dout: dh2Dropped.p, p: p, seed: 3, N: N * C)
        linearBackward(dinp: dg1.p, dweight: g[9], dbias: g[10], dout: dh2.p, inp: g1.p, weight: w[9], N: N, C: FF, OC: C)
        geluBackward(dinp: dh1.p, inp: h1.p, dout: dg1.p, N: N * FF)
        linearBackward(dinp: dln1.p, dweight: g[7], dbias: g[8], dout: dh1.p, inp: ln1.p, weight: w[7], N: N, C: C, OC: FF)
        layerNormBackward(dinp: dres1.p, dweight: g[5], dbias: g[6], dout: dln1.p, inp: res1.p, weight: w[5],
                          mean: ln1Mean.p, rstd: ln1Rstd.p, N: N, C: C)
        residualBackward(dinp1: g[0], dinp2: dprojDropped.p, dout: dres1.p, N: N * C)
        dropoutBackward(dinp: dproj.p, dout: dprojDropped.p, p: p, seed: 2, N: N * C)
        linearBackward(dinp: dcontext.p, dweight: g[3], dbias: g[4], dout: dproj.p, inp: context.p, weight: w[3], N: N, C: C, OC: C)
        attentionBackward(dqkv: dqkv.p, scratch: scratch.p, dout: dcontext.p, qkv: qkv.p, att: att.p, mask: mask, B: B, T: T, C: C, NH: NH,
                          dropout: p, seed: 1)
        linearBackward(dinp: g[0], dweight: g[1], dbias: g[2], dout: dqkv.p, inp: x, weight: w[1], N: N, C: C, OC: 3 * C)
    }
}
