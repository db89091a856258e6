import Foundation
import XCTest
import Tensor
@testable import Model

final class StorageTests: XCTestCase {
    func testParameterStoreCarvesOneFlatBufferInOrder() throws {
        let store = try ParameterStore([
            ParameterSpec("embeddings.word_embeddings.weight", [10, 4], weightDecay: true),
            ParameterSpec("q.weight", [4, 4], weightDecay: true),
            ParameterSpec("k.weight", [4, 4], weightDecay: true),
            ParameterSpec("v.weight", [4, 4], weightDecay: true),
            ParameterSpec("ln.bias", [4], weightDecay: false),
        ])
        XCTAssertEqual(store.count, 40 + 48 + 4)
        XCTAssertEqual(store.slots.map(\.offset), [0, 40, 56, 72, 88])
        XCTAssertEqual(store.offset(of: "k.weight"), 56)
        XCTAssertEqual(store.parameter("ln.bias").baseAddress, store.parameters + 88)
        XCTAssertEqual(store.gradient("ln.bias").baseAddress, store.gradients + 88)
        XCTAssertEqual(store.weightDecay, [true, true, true, true, false])
        XCTAssertEqual(store.bytes, 92 * 4 * 4)
        XCTAssertNil(store.slot(named: "missing"))
        // Adjacent tensors fuse; out-of-order or gapped lists do not.
        let fused = try XCTUnwrap(store.contiguous(["q.weight", "k.weight", "v.weight"]))
        XCTAssertEqual(fused.offset, 40)
        XCTAssertEqual(fused.shape, [12, 4])
        XCTAssertEqual(fused.count, 48)
        XCTAssertNil(store.contiguous(["q.weight", "v.weight"]))
        XCTAssertNil(store.contiguous(["k.weight", "q.weight"]))
        XCTAssertNil(store.contiguous(["v.weight", "ln.bias"]), "trailing dimensions differ")
        // Everything starts at zero; writes through a lookup land in the flat buffer.
        XCTAssertTrue((0..<store.count).allSatisfy { store.parameters[$0] == 0 && store.gradients[$0] == 0 })
        store.parameter("k.weight")[3] = 7
        XCTAssertEqual(store.parameters[59], 7)
        store.gradients[5] = 1
        store.zeroGradients()
        XCTAssertEqual(store.gradients[5], 0)
        store.fill("ln.bias", value: 1)
        XCTAssertEqual(Array(store.parameter("ln.bias")), [1, 1, 1, 1])
    }

    func testParameterStoreRejectsDuplicateNames() {
        XCTAssertThrowsError(try ParameterStore([ParameterSpec("a", [2], weightDecay: true), ParameterSpec("a", [3], weightDecay: true)])) {
            XCTAssertEqual(($0 as? VideoBertError)?.message, "duplicate parameter name 'a'")
        }
        XCTAssertThrowsError(try ParameterStore([ParameterSpec("", [2], weightDecay: true)]))
    }

    func testInferenceStoreHasOnlyParameters() throws {
        let store = try ParameterStore([ParameterSpec("w", [3, 2], weightDecay: true)], training: false)
        XCTAssertFalse(store.training)
        XCTAssertEqual(store.bytes, 6 * 4)
        XCTAssertEqual(store.parameter("w").count, 6)
    }

    func testNonFiniteGradientIsNamed() throws {
        let store = try ParameterStore([ParameterSpec("a", [3], weightDecay: true), ParameterSpec("b", [2], weightDecay: false)])
        XCTAssertNil(store.firstNonFiniteGradient())
        store.gradient("b")[1] = .nan
        XCTAssertEqual(store.firstNonFiniteGradient(), "b")
        store.parameter("a")[0] = .infinity
        XCTAssertEqual(store.firstNonFiniteParameter(), "a")
    }

    func testArenaSlotsAreAlignedAndDisjoint() {
        var layout = ArenaLayout()
        let a = layout.add("ln1", [2, 3, 5])       // [B, T, C]
        let b = layout.add("att", [2, 2, 3, 3])    // [B, NH, T, T]
        let c = layout.add("mean", [6])            // [B·T]
        XCTAssertEqual(a.offset, 0)
        XCTAssertEqual(b.offset, 32)               // 30 rounded up to 16 floats
        XCTAssertEqual(c.offset, 32 + 48)          // 36 → 48
        XCTAssertEqual(layout.count, 32 + 48 + 16)
        let arena = Arena(layout)
        XCTAssertEqual(Int(bitPattern: arena.base) % 64, 0)
        for slot in layout.slots { XCTAssertEqual(Int(bitPattern: arena[slot]) % 64, 0, slot.name) }
        arena[b].update(repeating: 3, count: b.count)
        XCTAssertEqual(arena.buffer("ln1").reduce(0, +), 0)
        XCTAssertEqual(arena.buffer("mean").reduce(0, +), 0)
        XCTAssertEqual(arena.pointer("att"), arena[b])
        arena.zero(b)
        XCTAssertEqual(arena.buffer("att").reduce(0, +), 0)
    }

    func testDropoutMaskIsSeededScaledAndIdentityAtZero() {
        let N = 100_000
        var rng = SeededRNG(seed: 3)
        let inp = Floats(random: N, rng: &rng)
        let a = Floats(count: N), b = Floats(count: N), c = Floats(count: N)
        dropoutForward(out: a.p, inp: inp.p, p: 0.1, seed: 42, N: N)
        dropoutForward(out: b.p, inp: inp.p, p: 0.1, seed: 42, N: N)
        dropoutForward(out: c.p, inp: inp.p, p: 0.1, seed: 43, N: N)
        XCTAssertEqual(a.array, b.array, "same seed, same mask")
        XCTAssertNotEqual(a.array, c.array, "another seed, another mask")
        var dropped = 0
        for i in 0..<N {
            if a[i] == 0 { dropped += 1 } else { XCTAssertEqual(a[i], inp[i] / 0.9, accuracy: 1e-6) }
        }
        XCTAssertEqual(Double(dropped) / Double(N), 0.1, accuracy: 0.005)
        let d = Floats(count: N)
        dropoutForward(out: d.p, inp: inp.p, p: 0, seed: 42, N: N)
        XCTAssertEqual(d.array, inp.array)
        // Backward keeps exactly the forward's elements.
        let ones = Floats([Float](repeating: 1, count: N)), g = Floats(count: N)
        dropoutBackward(dinp: g.p, dout: ones.p, p: 0.1, seed: 42, N: N)
        for i in stride(from: 0, to: N, by: 97) { XCTAssertEqual(g[i] == 0, a[i] == 0) }
        XCTAssertNotEqual(dropoutSeed(base: 1, step: 1, site: 0), dropoutSeed(base: 1, step: 1, site: 1))
        XCTAssertNotEqual(dropoutSeed(base: 1, step: 1, site: 0), dropoutSeed(base: 1, step: 2, site: 0))
    }

    func testMaskStreamIsSeededRNGsSequence() {
        var rng = SeededRNG(seed: 9, stream: 4)
        var stream = MaskStream(rng)
        for _ in 0..<1000 { XCTAssertEqual(stream.nextFloat(), rng.nextFloat()) }
        XCTAssertTrue(stream.state == rng.state)
        // applyDropoutMask: element i is kept iff the 16-bit quarter i % 4 (low first) of draw
        // i / 4 is ≥ round(p · 65536); 5 elements take 2 draws.
        var a = SeededRNG(seed: 1), b = SeededRNG(seed: 1)
        let x = Floats([Float](repeating: 1, count: 5)), y = Floats(count: 5)
        applyDropoutMask(out: y.p, inp: x.p, count: 5, p: 0.5, rng: &a)
        let draws = [b.next(), b.next()]
        for i in 0..<5 {
            let u = (draws[i / 4] >> (16 * UInt64(i % 4))) & 0xFFFF
            XCTAssertEqual(y[i], u < 32_768 ? 0 : 2)
        }
        XCTAssertEqual(a, b)
    }

    func testWeightDecayOnlyWhereTheSpecSaysAndClippingBelowTheLimit() throws {
        let store = try ParameterStore([ParameterSpec("w", [2], weightDecay: true), ParameterSpec("b", [2], weightDecay: false)])
        store.fill("w", value: 2)
        store.fill("b", value: 2)
        var adamw = AdamW(store: store, weightDecay: 0.5)
        // Zero gradients: Adam's update is 0, so only the decoupled decay moves the parameters.
        adamw.update(store, lr: 0.1)
        XCTAssertEqual(Array(store.parameter("w")), [1.9, 1.9])
        XCTAssertEqual(Array(store.parameter("b")), [2, 2])
        // Gradient norm 5 under a limit of 10: untouched; over a limit of 1: scaled to norm ≈ 1.
        store.gradient("w")[0] = 3
        store.gradient("b")[1] = 4
        XCTAssertEqual(clipGradientNorm(store, maxNorm: 10), 5, accuracy: 1e-12)
        XCTAssertEqual(store.gradients[0], 3)
        XCTAssertEqual(clipGradientNorm(store, maxNorm: 1), 5, accuracy: 1e-12)
        XCTAssertEqual(gradientNorm(store), 1, accuracy: 1e-6)
    }

    func testGradientNormMatchesANaiveSumOverManyChunks() throws {
        let store = try ParameterStore([ParameterSpec("big", [300_001], weightDecay: true)])
        var rng = SeededRNG(seed: 1)
        var naive: Double = 0
        for i in 0..<store.count {
            let g = rng.nextFloat() - 0.5
            store.gradients[i] = g
            naive += Double(g) * Double(g)
        }
        XCTAssertEqual(gradientNorm(store), naive.squareRoot(), accuracy: 1e-9 * naive.squareRoot())
    }

    /// The threaded reductions give the bits of a serial loop: workers split the output columns,
    /// and each column is summed over rows in order (no race, no thread-count dependence).
    /// Sizes are above the threshold where the kernels split.
    func testThreadedColumnReductionsEqualSerialSums() {
        let (N, C, V) = (1024, 96, 40)
        XCTAssertLessThan(Parallel.columnGrain(rows: N, columns: C), C, "the kernels must take the threaded path")
        var rng = SeededRNG(seed: 11)
        let inp = Floats(random: N * C, rng: &rng), dout = Floats(random: N * C, rng: &rng)
        let weight = Floats(random: C, rng: &rng), bias = Floats(random: C, rng: &rng)
        let ids = Ints((0..<N).map { ($0 * 7) % V })
        let out = Floats(count: N * C), mean = Floats(count: N), rstd = Floats(count: N)
        let dinp = Floats(count: N * C), dw = Floats(count: C), db = Floats(count: C)
        layerNormForward(out: out.p, mean: mean.p, rstd: rstd.p, inp: inp.p, weight: weight.p, bias: bias.p, N: N, C: C)
        layerNormBackward(dinp: dinp.p, dweight: dw.p, dbias: db.p, dout: dout.p, inp: inp.p, weight: weight.p,
                          mean: mean.p, rstd: rstd.p, N: N, C: C)
        var serialW = [Float](repeating: 0, count: C), serialB = [Float](repeating: 0, count: C)
        for n in 0..<N {
            for c in 0..<C {
                serialB[c] += dout[n * C + c]
                serialW[c] += dout[n * C + c] * (inp[n * C + c] - mean[n]) * rstd[n]
            }
        }
        XCTAssertEqual(dw.array, serialW)
        XCTAssertEqual(db.array, serialB)

        let dwte = Floats(count: V * C), dpos = Floats(count: N * C), dtt = Floats(count: 2 * C)
        embeddingsBackward(dwordEmbeddings: dwte.p, dpositionEmbeddings: dpos.p, dtokenTypeEmbeddings: dtt.p, dout: dout.p,
                           inputIds: ids.p, tokenTypeIds: nil, paddingId: nil, B: 1, T: N, C: C)
        var serialWte = [Float](repeating: 0, count: V * C), serialTT = [Float](repeating: 0, count: 2 * C)
        for n in 0..<N {
            for c in 0..<C {
                serialWte[Int(ids.p[n]) * C + c] += dout[n * C + c]
                serialTT[c] += dout[n * C + c]
            }
        }
        XCTAssertEqual(dwte.array, serialWte)
        XCTAssertEqual(dtt.array, serialTT)

        let dbiasLinear = Floats(count: C)
        linearBackward(dinp: nil, dweight: nil, dbias: dbiasLinear.p, dout: dout.p, inp: inp.p, weight: inp.p, N: N, C: C, OC: C)
        XCTAssertEqual(dbiasLinear.array, serialB)
    }
}

/// The vectorized exp and normal CDF against libm, over the ranges the layers feed them.
final class VectorMathTests: XCTestCase {
    func testExpMatchesLibmAndUnderflowsToZero() {
        var worst: Float = 0
        var x: Float = -87
        while x < 88 {
            let lanes = Float8((0..<8).map { x + Float($0) * 0.0123 })
            let e = exp8(lanes)
            for k in 0..<8 {
                let reference = Foundation.exp(Double(lanes[k]))
                worst = max(worst, Float(abs(Double(e[k]) - reference) / reference))
            }
            x += 0.173
        }
        XCTAssertLessThan(worst, 3e-7)
        XCTAssertEqual(exp8(Float8(repeating: -Float.greatestFiniteMagnitude))[0], 0)
        XCTAssertEqual(exp8(Float8(repeating: -100))[3], 0)
        XCTAssertEqual(exp1(0), 1)
    }

    func testNormalCDFAndPDFMatchLibm() {
        var worstCDF: Double = 0, worstPDF: Double = 0
        var x: Float = -9
        while x < 9 {
            let (cdf, pdf) = normalCDFAndPDF8(Float8(repeating: x))
            let reference = 0.5 * (1 + Foundation.erf(Double(x) / 2.0.squareRoot()))
            let density = Foundation.exp(-0.5 * Double(x) * Double(x)) / (2 * Double.pi).squareRoot()
            worstCDF = max(worstCDF, abs(Double(cdf[0]) - reference))
            worstPDF = max(worstPDF, abs(Double(pdf[0]) - density) / max(density, 1e-30))
            x += 0.0371
        }
        XCTAssertLessThan(worstCDF, 2.5e-7)      // A&S 7.1.26: Φ error ≤ 7.5e-8, plus float rounding near 1 (ulp 1.2e-7)
        XCTAssertLessThan(worstPDF, 5e-6)        // x² in float: relative error ≈ x²/2 · 6e-8, at |x| = 9
    }
}
