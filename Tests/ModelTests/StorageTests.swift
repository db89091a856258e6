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

    /// The threaded kernels give the same bits as a single worker would: the parallel paths split
    /// outputs, never reductions. Large enough to take the threaded path.
    func testThreadedKernelsAreDeterministic() {
        let (N, C, V) = (512, 96, 40)
        var rng = SeededRNG(seed: 11)
        let inp = Floats(random: N * C, rng: &rng), dout = Floats(random: N * C, rng: &rng)
        let weight = Floats(random: C, rng: &rng), bias = Floats(random: C, rng: &rng)
        let ids = Ints((0..<N).map { $0 % V })
        func run() -> [Float] {
            let out = Floats(count: N * C), mean = Floats(count: N), rstd = Floats(count: N)
            let dinp = Floats(count: N * C), dw = Floats(count: C), db = Floats(count: C), dwte = Floats(count: V * C)
            layerNormForward(out: out.p, mean: mean.p, rstd: rstd.p, inp: inp.p, weight: weight.p, bias: bias.p, N: N, C: C)
            layerNormBackward(dinp: dinp.p, dweight: dw.p, dbias: db.p, dout: dout.p, inp: inp.p, weight: weight.p,
                              mean: mean.p, rstd: rstd.p, N: N, C: C)
            let dpos = Floats(count: N * C), dtt = Floats(count: 2 * C)
            embeddingsBackward(dwordEmbeddings: dwte.p, dpositionEmbeddings: dpos.p, dtokenTypeEmbeddings: dtt.p, dout: dout.p,
                               inputIds: ids.p, tokenTypeIds: nil, paddingId: 0, B: 1, T: N, C: C)
            return out.array + dinp.array + dw.array + db.array + dwte.array + dtt.array
        }
        XCTAssertEqual(run(), run())
    }
}
