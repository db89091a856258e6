import XCTest
import Tensor
@testable import Model

/// The layers against PyTorch / Hugging Face on the same inputs and weights
/// (fixture: tools/fixtures/layers.py → Resources/layers.json). docs/ARCHITECTURE.md §6 tolerances:
/// forward 1e-4, gradients 1e-3, AdamW 1e-6 (each as |a − b| ≤ tol + tol·|b|).
final class PyTorchParityTests: XCTestCase {
    let fwd = 1e-4, grad = 1e-3

    func testLayerNorm() {
        let f = LayersFixture.case("layernorm")
        let (N, C) = (f.int("N"), f.int("C"))
        let inp = f.floats("inp"), weight = f.floats("weight"), bias = f.floats("bias")
        let out = Floats(count: N * C), mean = Floats(count: N), rstd = Floats(count: N)
        layerNormForward(out: out.p, mean: mean.p, rstd: rstd.p, inp: inp.p, weight: weight.p, bias: bias.p,
                         N: N, C: C, eps: Float(f.scalar("eps")))
        checkTensor(out, f.values("out"), "layernorm out", atol: fwd, rtol: fwd)
        checkTensor(mean, f.values("mean"), "layernorm mean", atol: fwd, rtol: fwd)
        checkTensor(rstd, f.values("rstd"), "layernorm rstd", atol: fwd, rtol: fwd)
        let dinp = Floats(count: N * C), dweight = Floats(count: C), dbias = Floats(count: C)
        let dout = f.floats("dout")
        layerNormBackward(dinp: dinp.p, dweight: dweight.p, dbias: dbias.p, dout: dout.p, inp: inp.p,
                          weight: weight.p, mean: mean.p, rstd: rstd.p, N: N, C: C)
        checkTensor(dinp, f.values("dinp"), "layernorm dinp", atol: grad, rtol: grad)
        checkTensor(dweight, f.values("dweight"), "layernorm dweight", atol: grad, rtol: grad)
        checkTensor(dbias, f.values("dbias"), "layernorm dbias", atol: grad, rtol: grad)
    }

    func testGELU() {
        let f = LayersFixture.case("gelu")
        let N = f.int("N")
        let inp = f.floats("inp"), out = Floats(count: N), dinp = Floats(count: N)
        geluForward(out: out.p, inp: inp.p, N: N)
        checkTensor(out, f.values("out"), "gelu out", atol: fwd, rtol: fwd)
        let dout = f.floats("dout")
        geluBackward(dinp: dinp.p, inp: inp.p, dout: dout.p, N: N)
        checkTensor(dinp, f.values("dinp"), "gelu dinp", atol: grad, rtol: grad)
    }

    func testLinear() {
        let f = LayersFixture.case("linear")
        let (N, C, OC) = (f.int("N"), f.int("C"), f.int("OC"))
        let inp = f.floats("inp"), weight = f.floats("weight"), bias = f.floats("bias")
        let out = Floats(count: N * OC)
        linearForward(out: out.p, inp: inp.p, weight: weight.p, bias: bias.p, N: N, C: C, OC: OC)
        checkTensor(out, f.values("out"), "linear out", atol: fwd, rtol: fwd)
        let dinp = Floats(count: N * C), dweight = Floats(count: OC * C), dbias = Floats(count: OC)
        let dout = f.floats("dout")
        linearBackward(dinp: dinp.p, dweight: dweight.p, dbias: dbias.p, dout: dout.p, inp: inp.p,
                       weight: weight.p, N: N, C: C, OC: OC)
        checkTensor(dinp, f.values("dinp"), "linear dinp", atol: grad, rtol: grad)
        checkTensor(dweight, f.values("dweight"), "linear dweight", atol: grad, rtol: grad)
        checkTensor(dbias, f.values("dbias"), "linear dbias", atol: grad, rtol: grad)
    }

    /// HF BertEmbeddings: LayerNorm(word + position + token_type).
    func testBertEmbeddings() {
        let f = LayersFixture.case("embeddings")
        let (B, T, C, V, P) = (f.int("B"), f.int("T"), f.int("C"), f.int("V"), f.int("P"))
        let N = B * T
        let ids = Ints(f.values("input_ids")), types = Ints(f.values("token_type_ids"))
        let word = f.floats("word"), position = f.floats("position"), segment = f.floats("token_type")
        let lnw = f.floats("ln_weight"), lnb = f.floats("ln_bias")
        let sum = Floats(count: N * C), out = Floats(count: N * C), mean = Floats(count: N), rstd = Floats(count: N)
        embeddingsForward(out: sum.p, inputIds: ids.p, tokenTypeIds: types.p, wordEmbeddings: word.p,
                          positionEmbeddings: position.p, tokenTypeEmbeddings: segment.p, B: B, T: T, C: C)
        layerNormForward(out: out.p, mean: mean.p, rstd: rstd.p, inp: sum.p, weight: lnw.p, bias: lnb.p,
                         N: N, C: C, eps: Float(f.scalar("eps")))
        checkTensor(out, f.values("out"), "embeddings out", atol: fwd, rtol: fwd)
        let dsum = Floats(count: N * C), dlnw = Floats(count: C), dlnb = Floats(count: C)
        let dword = Floats(count: V * C), dposition = Floats(count: P * C), dsegment = Floats(count: 2 * C)
        let dout = f.floats("dout")
        layerNormBackward(dinp: dsum.p, dweight: dlnw.p, dbias: dlnb.p, dout: dout.p, inp: sum.p,
                          weight: lnw.p, mean: mean.p, rstd: rstd.p, N: N, C: C)
        embeddingsBackward(dwordEmbeddings: dword.p, dpositionEmbeddings: dposition.p, dtokenTypeEmbeddings: dsegment.p,
                           dout: dsum.p, inputIds: ids.p, tokenTypeIds: types.p, paddingId: 0, B: B, T: T, C: C)
        checkTensor(dword, f.values("dword"), "embeddings dword", atol: grad, rtol: grad)
        checkTensor(dposition, f.values("dposition"), "embeddings dposition", atol: grad, rtol: grad)
        checkTensor(dsegment, f.values("dtoken_type"), "embeddings dtoken_type", atol: grad, rtol: grad)
        checkTensor(dlnw, f.values("dln_weight"), "embeddings dln_weight", atol: grad, rtol: grad)
        checkTensor(dlnb, f.values("dln_bias"), "embeddings dln_bias", atol: grad, rtol: grad)
    }

    /// HF BertSelfAttention (eager, extended mask) with separate query/key/value weights, run here
    /// as ONE fused [3C, C] projection: the three HF tensors are stored back to back in a
    /// ParameterStore, so `contiguous` yields the fused weight and bias without copying, and the
    /// fused gradient lands in each HF tensor's own gradient slot.
    func testBertSelfAttentionWithMaskThroughFusedProjection() throws {
        let f = LayersFixture.case("attention")
        let (B, T, C, NH) = (f.int("B"), f.int("T"), f.int("C"), f.int("NH"))
        let N = B * T
        let prefix = "bert.encoder.layer.0.attention.self."
        let store = try ParameterStore([
            ParameterSpec(prefix + "query.weight", [C, C], weightDecay: true),
            ParameterSpec(prefix + "key.weight", [C, C], weightDecay: true),
            ParameterSpec(prefix + "value.weight", [C, C], weightDecay: true),
            ParameterSpec(prefix + "query.bias", [C], weightDecay: false),
            ParameterSpec(prefix + "key.bias", [C], weightDecay: false),
            ParameterSpec(prefix + "value.bias", [C], weightDecay: false),
        ])
        for name in ["query", "key", "value"] {
            for kind in ["weight", "bias"] {
                let values = f.values("\(name)_\(kind)")
                let p = store.parameter(prefix + "\(name).\(kind)")
                XCTAssertEqual(p.count, values.count)
                for i in 0..<values.count { p[i] = Float(values[i]) }
            }
        }
        let w = try XCTUnwrap(store.contiguous(["query.weight", "key.weight", "value.weight"].map { prefix + $0 }))
        let b = try XCTUnwrap(store.contiguous(["query.bias", "key.bias", "value.bias"].map { prefix + $0 }))
        XCTAssertEqual(w.shape, [3 * C, C])
        XCTAssertEqual(b.shape, [3 * C])

        let hidden = f.floats("hidden"), mask = f.floats("mask")
        let qkv = Floats(count: N * 3 * C), out = Floats(count: N * C)
        let att = Floats(count: B * NH * T * T), scratch = Floats(count: B * NH * T * T)
        linearForward(out: qkv.p, inp: hidden.p, weight: store.parameters + w.offset, bias: store.parameters + b.offset,
                      N: N, C: C, OC: 3 * C)
        attentionForward(out: out.p, att: att.p, qkv: qkv.p, mask: mask.p, B: B, T: T, C: C, NH: NH)
        checkTensor(out, f.values("out"), "attention context", atol: fwd, rtol: fwd)
        checkTensor(att, f.values("probs"), "attention probabilities", atol: fwd, rtol: fwd)

        store.zeroGradients()
        let dqkv = Floats(count: N * 3 * C), dhidden = Floats(count: N * C)
        let dout = f.floats("dout")
        attentionBackward(dqkv: dqkv.p, scratch: scratch.p, dout: dout.p, qkv: qkv.p, att: att.p, mask: mask.p,
                          B: B, T: T, C: C, NH: NH)
        linearBackward(dinp: dhidden.p, dweight: store.gradients + w.offset, dbias: store.gradients + b.offset, dout: dqkv.p,
                       inp: hidden.p, weight: store.parameters + w.offset, N: N, C: C, OC: 3 * C)
        checkTensor(dhidden, f.values("dhidden"), "attention dhidden", atol: grad, rtol: grad)
        for name in ["query", "key", "value"] {
            for kind in ["weight", "bias"] {
                let g = store.gradient(prefix + "\(name).\(kind)")
                checkTensor(g.baseAddress!, f.values("d\(name)_\(kind)"), "attention d\(name).\(kind)", atol: grad, rtol: grad)
            }
        }
    }

    /// MLM-style head: gather the selected rows, decode, cross-entropy over them only.
    func testSelectedPositionsHead() {
        let f = LayersFixture.case("mlm_head")
        let (N, C, V) = (f.int("N"), f.int("C"), f.int("V"))
        let rows = Ints(f.values("rows")), targets = Ints(f.values("targets"))
        let M = rows.count
        let hidden = f.floats("hidden"), weight = f.floats("weight"), bias = f.floats("bias")
        let selected = Floats(count: M * C), logits = Floats(count: M * V)
        let probs = Floats(count: M * V), losses = Floats(count: M)
        gatherRowsForward(out: selected.p, inp: hidden.p, rows: rows.p, M: M, C: C)
        linearForward(out: logits.p, inp: selected.p, weight: weight.p, bias: bias.p, N: M, C: C, OC: V)
        checkTensor(logits, f.values("logits"), "mlm logits", atol: fwd, rtol: fwd)
        let loss = softmaxCrossEntropyForward(losses: losses.p, probs: probs.p, logits: logits.p, rows: nil,
                                              targets: targets.p, M: M, V: V)
        XCTAssertEqual(Double(loss), f.scalar("loss"), accuracy: fwd * (1 + f.scalar("loss")))
        checkTensor(losses, f.values("losses"), "mlm per-row losses", atol: fwd, rtol: fwd)
        XCTAssertEqual(topKCorrect(scores: logits.p, rows: nil, targets: targets.p, M: M, V: V, k: 1), f.int("top1"))
        XCTAssertEqual(topKCorrect(scores: logits.p, rows: nil, targets: targets.p, M: M, V: V, k: 3), f.int("top3"))
        let argmax = Ints(Array(repeating: 0, count: M))
        argmaxRows(out: argmax.p, scores: logits.p, rows: nil, M: M, V: V)
        XCTAssertEqual((0..<M).map { Double(argmax.p[$0]) }, f.values("argmax"))

        // Backward through the in-place form (the probabilities become dlogits), as the heads do.
        softmaxCrossEntropyBackwardInPlace(probs: probs.p, targets: targets.p, M: M, V: V)
        let dselected = Floats(count: M * C), dhidden = Floats(count: N * C)
        let dweight = Floats(count: V * C), dbias = Floats(count: V)
        linearBackward(dinp: dselected.p, dweight: dweight.p, dbias: dbias.p, dout: probs.p, inp: selected.p,
                       weight: weight.p, N: M, C: C, OC: V)
        gatherRowsBackward(dinp: dhidden.p, dout: dselected.p, rows: rows.p, M: M, C: C)
        checkTensor(dhidden, f.values("dhidden"), "mlm dhidden", atol: grad, rtol: grad)
        checkTensor(dweight, f.values("dweight"), "mlm ddecoder.weight", atol: grad, rtol: grad)
        checkTensor(dbias, f.values("dbias"), "mlm ddecoder.bias", atol: grad, rtol: grad)
    }

    /// BERT pooler (dense + tanh on [CLS]) and the two-way next-sentence (alignment) head, with
    /// the loss over a subset of the examples.
    func testPoolerAndTwoWayAlignmentHead() {
        let f = LayersFixture.case("alignment_head")
        let (B, C) = (f.int("B"), f.int("C"))
        let rows = Ints(f.values("rows")), targets = Ints(f.values("targets"))
        let M = rows.count
        let cls = f.floats("cls"), pw = f.floats("pool_weight"), pb = f.floats("pool_bias")
        let cw = f.floats("clf_weight"), cb = f.floats("clf_bias")
        let pre = Floats(count: B * C), pooled = Floats(count: B * C), logits = Floats(count: B * 2)
        let probs = Floats(count: M * 2), losses = Floats(count: M)
        linearForward(out: pre.p, inp: cls.p, weight: pw.p, bias: pb.p, N: B, C: C, OC: C)
        tanhForward(out: pooled.p, inp: pre.p, N: B * C)
        linearForward(out: logits.p, inp: pooled.p, weight: cw.p, bias: cb.p, N: B, C: C, OC: 2)
        checkTensor(pooled, f.values("pooled"), "pooled", atol: fwd, rtol: fwd)
        checkTensor(logits, f.values("logits"), "alignment logits", atol: fwd, rtol: fwd)
        let loss = softmaxCrossEntropyForward(losses: losses.p, probs: probs.p, logits: logits.p, rows: rows.p,
                                              targets: targets.p, M: M, V: 2)
        XCTAssertEqual(Double(loss), f.scalar("loss"), accuracy: fwd * (1 + f.scalar("loss")))

        let dlogits = Floats(count: B * 2), dpooled = Floats(count: B * C), dpre = Floats(count: B * C)
        let dcls = Floats(count: B * C), dpw = Floats(count: C * C), dpb = Floats(count: C)
        let dcw = Floats(count: 2 * C), dcb = Floats(count: 2)
        softmaxCrossEntropyBackward(dlogits: dlogits.p, probs: probs.p, rows: rows.p, targets: targets.p, M: M, V: 2)
        linearBackward(dinp: dpooled.p, dweight: dcw.p, dbias: dcb.p, dout: dlogits.p, inp: pooled.p, weight: cw.p, N: B, C: C, OC: 2)
        tanhBackward(dinp: dpre.p, dout: dpooled.p, out: pooled.p, N: B * C)
        linearBackward(dinp: dcls.p, dweight: dpw.p, dbias: dpb.p, dout: dpre.p, inp: cls.p, weight: pw.p, N: B, C: C, OC: C)
        checkTensor(dcls, f.values("dcls"), "alignment dcls", atol: grad, rtol: grad)
        checkTensor(dpw, f.values("dpool_weight"), "pooler ddense.weight", atol: grad, rtol: grad)
        checkTensor(dpb, f.values("dpool_bias"), "pooler ddense.bias", atol: grad, rtol: grad)
        checkTensor(dcw, f.values("dclf_weight"), "seq_relationship dweight", atol: grad, rtol: grad)
        checkTensor(dcb, f.values("dclf_bias"), "seq_relationship dbias", atol: grad, rtol: grad)
    }

    func testBinaryCrossEntropyWithLogits() {
        let f = LayersFixture.case("bce")
        let logits = f.floats("logits"), rows = Ints(f.values("rows")), targets = f.floats("targets")
        let M = rows.count
        let losses = Floats(count: M), dlogits = Floats(count: logits.count)
        let loss = binaryCrossEntropyForward(losses: losses.p, logits: logits.p, rows: rows.p, targets: targets.p, M: M)
        XCTAssertEqual(Double(loss), f.scalar("loss"), accuracy: fwd * (1 + f.scalar("loss")))
        binaryCrossEntropyBackward(dlogits: dlogits.p, logits: logits.p, rows: rows.p, targets: targets.p, M: M)
        checkTensor(dlogits, f.values("dlogits"), "bce dlogits", atol: grad, rtol: grad)
    }

    /// torch.optim.AdamW + clip_grad_norm_ over 10 steps with a warm-up/decay schedule, decoupled
    /// weight decay on the weight only, and every third step clipped.
    func testAdamWTrajectoryMatchesTorch() throws {
        let f = LayersFixture.case("adamw")
        let tol = 1e-6
        let shapes: [(String, [Int], Bool)] = [("weight", [4, 3], true), ("bias", [3], false), ("ln_weight", [5], false)]
        let store = try ParameterStore(shapes.map { ParameterSpec($0.0, $0.1, weightDecay: $0.2) })
        for (name, _, _) in shapes {
            let p = store.parameter(name), v = f.values("\(name)_initial")
            for i in 0..<p.count { p[i] = Float(v[i]) }
        }
        var adamw = AdamW(store: store, beta1: f.scalar("beta1"), beta2: f.scalar("beta2"), eps: f.scalar("eps"),
                          weightDecay: f.scalar("weight_decay"))
        let steps = f.int("steps")
        for step in 0..<steps {
            for (name, _, _) in shapes {
                let g = store.gradient(name), all = f.values("\(name)_grads")
                for i in 0..<g.count { g[i] = Float(all[step * g.count + i]) }
            }
            let norm = clipGradientNorm(store, maxNorm: f.scalar("max_norm"))
            XCTAssertEqual(norm, f.values("norm")[step], accuracy: tol * (1 + f.values("norm")[step]), "norm at step \(step + 1)")
            adamw.update(store, lr: f.values("lr")[step])
            for (name, _, _) in shapes {
                let p = store.parameter(name), all = f.values("\(name)_trajectory")
                checkTensor(p.baseAddress!, Array(all[(step * p.count)..<((step + 1) * p.count)]),
                            "adamw \(name) after step \(step + 1)", atol: tol, rtol: tol)
            }
        }
        XCTAssertEqual(adamw.step, steps)
        for (name, _, _) in shapes {
            let slot = store.slot(name)
            checkTensor(store.firstMoment + slot.offset, f.values("\(name)_exp_avg"), "adamw \(name) exp_avg", atol: tol, rtol: tol)
            checkTensor(store.secondMoment + slot.offset, f.values("\(name)_exp_avg_sq"), "adamw \(name) exp_avg_sq", atol: tol, rtol: tol)
        }
    }
}
