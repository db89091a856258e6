import XCTest
import Tensor
@testable import Model

/// The bandwidth-saving variants the model uses equal the plain kernels: `accumulate: false`
/// equals zeroing then accumulating, and the fused dropout + residual equals the two passes.
final class KernelVariantTests: XCTestCase {
    func testOverwriteEqualsZeroThenAccumulate() {
        var rng = SeededRNG(seed: 4)
        let (N, C) = (40_003 / 37, 37)          // odd sizes: SIMD tails and several dropout chunks
        let count = N * C
        let x = Floats(random: count, scale: 3, rng: &rng), dout = Floats(random: count, rng: &rng)
        let w = Floats(random: C, rng: &rng), b = Floats(random: C, rng: &rng)
        let mean = Floats(count: N), rstd = Floats(count: N), y = Floats(count: count)
        layerNormForward(out: y.p, mean: mean.p, rstd: rstd.p, inp: x.p, weight: w.p, bias: b.p, N: N, C: C)
        func both(_ kernel: (UnsafeMutablePointer<Float>, Bool) -> Void, _ label: String) {
            let accumulated = Floats(count: count), overwritten = Floats(random: count, scale: 9, rng: &rng)
            kernel(accumulated.p, true)
            kernel(overwritten.p, false)
            XCTAssertEqual(accumulated.array, overwritten.array, label)
        }
        both({ d, acc in
            let dw = Floats(count: C), db = Floats(count: C)
            layerNormBackward(dinp: d, dweight: dw.p, dbias: db.p, dout: dout.p, inp: x.p, weight: w.p, mean: mean.p, rstd: rstd.p,
                              N: N, C: C, accumulate: acc)
        }, "layerNormBackward")
        both({ d, acc in geluBackward(dinp: d, inp: x.p, dout: dout.p, N: count, accumulate: acc) }, "geluBackward")
        for p: Float in [0, 0.1] {
            both({ d, acc in dropoutBackward(dinp: d, dout: dout.p, p: p, seed: 77, N: count, accumulate: acc) }, "dropoutBackward p=\(p)")
        }
    }

    func testFusedDropoutResidualEqualsTwoPasses() {
        var rng = SeededRNG(seed: 5)
        let count = 50_001
        let residual = Floats(random: count, rng: &rng), inp = Floats(random: count, rng: &rng)
        for p: Float in [0, 0.1, 0.5] {
            let dropped = Floats(count: count), twoPasses = Floats(count: count), fused = Floats(count: count)
            dropoutForward(out: dropped.p, inp: inp.p, p: p, seed: 3, N: count)
            residualForward(out: twoPasses.p, inp1: residual.p, inp2: dropped.p, N: count)
            dropoutResidualForward(out: fused.p, residual: residual.p, inp: inp.p, p: p, seed: 3, N: count)
            XCTAssertEqual(fused.array, twoPasses.array, "p = \(p)")
        }
    }
}
