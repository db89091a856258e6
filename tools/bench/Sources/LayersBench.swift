import Foundation
import Model
import Tensor

/// One BERT encoder layer (post-LayerNorm, HF BertLayer) forward + backward, built from the Model
/// layers the way the full model will be: fused QKV projection, masked attention, output
/// projection, dropout, residual, LayerNorm, FFN with GELU, dropout, residual, LayerNorm; backward
/// including the input gradient (as inside a stack). Reports time per step, achieved GFLOP/s
/// against this machine's sgemm peak measured in the same run, and where the time goes.
///
///     bench layers [--B 8] [--T 128] [--C 768] [--NH 12] [--FF 3072] [--dropout 0.1] [--reps 5] [--peak 1]
///
/// tools/bench/layers.py runs this and the same layer in PyTorch (2 threads) side by side.
func benchLayers(_ args: [String]) throws {
    let B = Int(option(args, "B", "8"))!, T = Int(option(args, "T", "128"))!
    let C = Int(option(args, "C", "768"))!, NH = Int(option(args, "NH", "12"))!
    let FF = Int(option(args, "FF", "3072"))!
    let p = Float(option(args, "dropout", "0.1"))!
    let reps = Int(option(args, "reps", "5"))!
    let measurePeak = option(args, "peak", "1") != "0"
    let layer = try EncoderLayerBench(B: B, T: T, C: C, NH: NH, FF: FF, dropout: p)

    layer.step(seed: 0)                       // warm-up: page in buffers, start BLAS threads
    var times: [Double] = []
    var fastest: [String: Double] = [:]       // per op, its fastest step: robust on a shared machine
    for r in 0..<reps {
        layer.timings.removeAll(keepingCapacity: true)
        let t0 = now()
        layer.step(seed: UInt64(r + 1))
        times.append(now() - t0)
        for (op, seconds) in layer.timings { fastest[op] = min(fastest[op] ?? .infinity, seconds) }
    }
    times.sort()
    let best = times[0], median = times[times.count / 2]

    let N = Double(B * T), c = Double(C), ff = Double(FF)
    let linearFlops = 2 * N * (3 * c * c + c * c + 2 * c * ff)             // forward sgemm work
    let attentionFlops = 4 * Double(B * NH) * Double(T * T) * (c / Double(NH))
    let stepFlops = 3 * (linearFlops + attentionFlops)                    // backward ≈ 2 × forward
    let peak = measurePeak ? sgemmPeakGFLOPs(n: 2048, reps: 3) : 0
    let gflops = stepFlops / median / 1e9

    let total = fastest.values.reduce(0, +)
    let breakdown = fastest.sorted { $0.value > $1.value }.map { name, seconds in
        ["op": name, "ms_per_step": (seconds * 1e5).rounded() / 100, "share": (seconds / total * 1000).rounded() / 1000] as [String: Any]
    }
    printJSON([
        "benchmark": "layers", "B": B, "T": T, "C": C, "NH": NH, "FF": FF, "dropout": Double(p),
        "seconds_best": best, "seconds_median": median,
        "tokens_per_s": N / median,
        "gflop_per_step": stepFlops / 1e9, "gflops": gflops,
        "sgemm_peak_gflops": peak, "fraction_of_peak": peak > 0 ? gflops / peak : 0,
        "blas_threads": BLAS.threads, "workers": Parallel.workers,
        "arena_mb": Double(layer.arena.bytes) / 1e6, "parameters_mb": Double(layer.store.bytes) / 1e6,
        "breakdown": breakdown, "breakdown_note": "per op, its fastest of the timed steps (ms)",
    ])
}

/// Square sgemm GFLOP/s, best of `reps` (as `bench sgemm`).
private func sgemmPeakGFLOPs(n: Int, reps: Int) -> Double {
    var rng = SeededRNG(seed: 1)
    let a = (0..<n * n).map { _ in rng.nextFloat() - 0.5 }
    let b = (0..<n * n).map { _ in rng.nextFloat() - 0.5 }
    var c = [Float](repeating: 0, count: n * n)
    var best = Double.infinity
    for _ in 0..<reps {
        let t0 = now()
        c.withUnsafeMutableBufferPointer { BLAS.sgemm(m: n, n: n, k: n, a: a, b: b, c: $0.baseAddress!) }
        best = min(best, now() - t0)
    }
    return 2 * Double(n * n) * Double(n) / best / 1e9
}

/// Parameters (HF BertLayer names, Q/K/V adjacent so the fused projection is free), activations
/// and their gradients in one arena, and the step.
private final class EncoderLayerBench {
    let B, T, C, NH, FF, N: Int
    let dropout: Float
    let store: ParameterStore
    let arena: Arena
    var timings: [String: Double] = [:]

    // Parameter slots.
    let wqkv, bqkv, wo, bo, ln1w, ln1b, w1, b1, w2, b2, ln2w, ln2b: TensorSlot
    // Activations: x, mask, qkv, att, scratch, context, proj, projDropped, res1, ln1 (+ mean/rstd),
    // h1, g1, h2, h2Dropped, res2, out (+ mean/rstd); and the gradients.
    let x, mask, qkv, att, scratch, context, proj, projDropped, res1, ln1, ln1Mean, ln1Rstd: TensorSlot
    let h1, g1, h2, h2Dropped, res2, out, ln2Mean, ln2Rstd: TensorSlot
    let dout, dres2, dh2Dropped, dh2, dg1, dh1, dln1, dres1, dprojDropped, dproj, dcontext, dqkv, dx: TensorSlot
    let gradientSlots: [TensorSlot]

    init(B: Int, T: Int, C: Int, NH: Int, FF: Int, dropout: Float) throws {
        (self.B, self.T, self.C, self.NH, self.FF, self.N, self.dropout) = (B, T, C, NH, FF, B * T, dropout)
        let a = "attention.self.", o = "attention.output."
        store = try ParameterStore([
            ParameterSpec(a + "query.weight", [C, C], weightDecay: true),   // [C, C]
            ParameterSpec(a + "key.weight", [C, C], weightDecay: true),     // [C, C]
            ParameterSpec(a + "value.weight", [C, C], weightDecay: true),   // [C, C]
            ParameterSpec(a + "query.bias", [C], weightDecay: false),
            ParameterSpec(a + "key.bias", [C], weightDecay: false),
            ParameterSpec(a + "value.bias", [C], weightDecay: false),
            ParameterSpec(o + "dense.weight", [C, C], weightDecay: true),
            ParameterSpec(o + "dense.bias", [C], weightDecay: false),
            ParameterSpec(o + "LayerNorm.weight", [C], weightDecay: false),
            ParameterSpec(o + "LayerNorm.bias", [C], weightDecay: false),
            ParameterSpec("intermediate.dense.weight", [FF, C], weightDecay: true),
            ParameterSpec("intermediate.dense.bias", [FF], weightDecay: false),
            ParameterSpec("output.dense.weight", [C, FF], weightDecay: true),
            ParameterSpec("output.dense.bias", [C], weightDecay: false),
            ParameterSpec("output.LayerNorm.weight", [C], weightDecay: false),
            ParameterSpec("output.LayerNorm.bias", [C], weightDecay: false),
        ])
        var rng = SeededRNG(seed: 42)
        for s in store.slots {
            if s.name.hasSuffix("LayerNorm.weight") { store.fill(s.name, value: 1) }
            else if s.name.hasSuffix("weight") { store.fillNormal(s.name, std: 0.02, rng: &rng) }
        }
        wqkv = store.contiguous([a + "query.weight", a + "key.weight", a + "value.weight"])!
        bqkv = store.contiguous([a + "query.bias", a + "key.bias", a + "value.bias"])!
        wo = store.slot(o + "dense.weight"); bo = store.slot(o + "dense.bias")
        ln1w = store.slot(o + "LayerNorm.weight"); ln1b = store.slot(o + "LayerNorm.bias")
        w1 = store.slot("intermediate.dense.weight"); b1 = store.slot("intermediate.dense.bias")
        w2 = store.slot("output.dense.weight"); b2 = store.slot("output.dense.bias")
        ln2w = store.slot("output.LayerNorm.weight"); ln2b = store.slot("output.LayerNorm.bias")

        var l = ArenaLayout()
        x = l.add("x", [B, T, C]); mask = l.add("mask", [B, T])
        qkv = l.add("qkv", [B, T, 3 * C]); att = l.add("att", [B, NH, T, T]); scratch = l.add("scratch", [B, NH, T, T])
        context = l.add("context", [B, T, C]); proj = l.add("proj", [B, T, C]); projDropped = l.add("projDropped", [B, T, C])
        res1 = l.add("res1", [B, T, C]); ln1 = l.add("ln1", [B, T, C])
        ln1Mean = l.add("ln1Mean", [B, T]); ln1Rstd = l.add("ln1Rstd", [B, T])
        h1 = l.add("h1", [B, T, FF]); g1 = l.add("g1", [B, T, FF])
        h2 = l.add("h2", [B, T, C]); h2Dropped = l.add("h2Dropped", [B, T, C]); res2 = l.add("res2", [B, T, C])
        out = l.add("out", [B, T, C]); ln2Mean = l.add("ln2Mean", [B, T]); ln2Rstd = l.add("ln2Rstd", [B, T])
        dout = l.add("dout", [B, T, C]); dres2 = l.add("dres2", [B, T, C]); dh2Dropped = l.add("dh2Dropped", [B, T, C])
        dh2 = l.add("dh2", [B, T, C]); dg1 = l.add("dg1", [B, T, FF]); dh1 = l.add("dh1", [B, T, FF])
        dln1 = l.add("dln1", [B, T, C]); dres1 = l.add("dres1", [B, T, C]); dprojDropped = l.add("dprojDropped", [B, T, C])
        dproj = l.add("dproj", [B, T, C]); dcontext = l.add("dcontext", [B, T, C])
        dqkv = l.add("dqkv", [B, T, 3 * C]); dx = l.add("dx", [B, T, C])
        gradientSlots = [dres2, dh2Dropped, dh2, dg1, dh1, dln1, dres1, dprojDropped, dproj, dcontext, dqkv, dx]
        arena = Arena(l)
        for i in 0..<(B * T * C) { arena[x][i] = rng.nextGaussian(); arena[dout][i] = rng.nextGaussian() * 0.01 }
        arena[mask].update(repeating: 1, count: B * T)
    }

    @inline(__always)
    func timed(_ name: String, _ body: () -> Void) {
        let t0 = now()
        body()
        timings[name, default: 0] += now() - t0
    }

    func w(_ s: TensorSlot) -> UnsafeMutablePointer<Float> { store.parameters + s.offset }
    func g(_ s: TensorSlot) -> UnsafeMutablePointer<Float> { store.gradients + s.offset }

    func step(seed: UInt64) {
        let (B, T, C, NH, FF, N, p) = (B, T, C, NH, FF, N, dropout)
        let a = arena
        let seedAttention = dropoutSeed(base: seed, step: 0, site: 0)
        let seedProj = dropoutSeed(base: seed, step: 0, site: 1), seedFF = dropoutSeed(base: seed, step: 0, site: 2)
        // Forward.
        timed("qkv linear") { linearForward(out: a[qkv], inp: a[x], weight: w(wqkv), bias: w(bqkv), N: N, C: C, OC: 3 * C) }
        timed("attention") {
            attentionForward(out: a[context], att: a[att], qkv: a[qkv], mask: a[mask], B: B, T: T, C: C, NH: NH,
                             dropout: p, seed: seedAttention, scratch: a[scratch])
        }
        timed("attention output linear") { linearForward(out: a[proj], inp: a[context], weight: w(wo), bias: w(bo), N: N, C: C, OC: C) }
        timed("dropout + residual") {
            dropoutForward(out: a[projDropped], inp: a[proj], p: p, seed: seedProj, N: N * C)
            residualForward(out: a[res1], inp1: a[x], inp2: a[projDropped], N: N * C)
        }
        timed("layernorm") {
            layerNormForward(out: a[ln1], mean: a[ln1Mean], rstd: a[ln1Rstd], inp: a[res1], weight: w(ln1w), bias: w(ln1b), N: N, C: C)
        }
        timed("ffn linear 1") { linearForward(out: a[h1], inp: a[ln1], weight: w(w1), bias: w(b1), N: N, C: C, OC: FF) }
        timed("gelu") { geluForward(out: a[g1], inp: a[h1], N: N * FF) }
        timed("ffn linear 2") { linearForward(out: a[h2], inp: a[g1], weight: w(w2), bias: w(b2), N: N, C: FF, OC: C) }
        timed("dropout + residual") {
            dropoutForward(out: a[h2Dropped], inp: a[h2], p: p, seed: seedFF, N: N * C)
            residualForward(out: a[res2], inp1: a[ln1], inp2: a[h2Dropped], N: N * C)
        }
        timed("layernorm") {
            layerNormForward(out: a[out], mean: a[ln2Mean], rstd: a[ln2Rstd], inp: a[res2], weight: w(ln2w), bias: w(ln2b), N: N, C: C)
        }
        // Backward: the forward read in reverse, accumulating into zeroed gradients.
        timed("zero gradients") {
            store.zeroGradients()
            for s in gradientSlots { a.zero(s) }
        }
        timed("layernorm bwd") {
            layerNormBackward(dinp: a[dres2], dweight: g(ln2w), dbias: g(ln2b), dout: a[dout], inp: a[res2], weight: w(ln2w),
                              mean: a[ln2Mean], rstd: a[ln2Rstd], N: N, C: C)
        }
        timed("dropout + residual bwd") {
            residualBackward(dinp1: a[dln1], dinp2: a[dh2Dropped], dout: a[dres2], N: N * C)
            dropoutBackward(dinp: a[dh2], dout: a[dh2Dropped], p: p, seed: seedFF, N: N * C)
        }
        timed("ffn linear 2 bwd") {
            linearBackward(dinp: a[dg1], dweight: g(w2), dbias: g(b2), dout: a[dh2], inp: a[g1], weight: w(w2), N: N, C: FF, OC: C)
        }
        timed("gelu bwd") { geluBackward(dinp: a[dh1], inp: a[h1], dout: a[dg1], N: N * FF) }
        timed("ffn linear 1 bwd") {
            linearBackward(dinp: a[dln1], dweight: g(w1), dbias: g(b1), dout: a[dh1], inp: a[ln1], weight: w(w1), N: N, C: C, OC: FF)
        }
        timed("layernorm bwd") {
            layerNormBackward(dinp: a[dres1], dweight: g(ln1w), dbias: g(ln1b), dout: a[dln1], inp: a[res1], weight: w(ln1w),
                              mean: a[ln1Mean], rstd: a[ln1Rstd], N: N, C: C)
        }
        timed("dropout + residual bwd") {
            residualBackward(dinp1: a[dx], dinp2: a[dprojDropped], dout: a[dres1], N: N * C)
            dropoutBackward(dinp: a[dproj], dout: a[dprojDropped], p: p, seed: seedProj, N: N * C)
        }
        timed("attention output linear bwd") {
            linearBackward(dinp: a[dcontext], dweight: g(wo), dbias: g(bo), dout: a[dproj], inp: a[context], weight: w(wo), N: N, C: C, OC: C)
        }
        timed("attention bwd") {
            attentionBackward(dqkv: a[dqkv], scratch: a[scratch], dout: a[dcontext], qkv: a[qkv], att: a[att], mask: a[mask],
                              B: B, T: T, C: C, NH: NH,
                              dropout: p, seed: seedAttention)
        }
        timed("qkv linear bwd") {
            linearBackward(dinp: a[dx], dweight: g(wqkv), dbias: g(bqkv), dout: a[dqkv], inp: a[x], weight: w(wqkv), N: N, C: C, OC: 3 * C)
        }
    }
}
