import Foundation
import Tensor

func benchGemmShapes(_ args: [String]) throws {
    let N = 4096, C = Int(option(args, "C", "256"))!, FF = 4 * C
    var rng = SeededRNG(seed: 1)
    func buf(_ n: Int) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: n)
        for i in 0..<n { p[i] = rng.nextFloat() - 0.5 }
        return p
    }
    let x = buf(N * C), h = buf(N * FF), w1 = buf(FF * C), dw = buf(FF * C), out = buf(N * FF)
    func time(_ label: String, _ flops: Double, _ body: () -> Void) {
        body()
        var best = Double.infinity
        for _ in 0..<5 { let t0 = now(); body(); best = min(best, now() - t0) }
        print(label, String(format: "%.1f ms  %.0f GFLOP/s", best * 1e3, flops / best / 1e9))
    }
    let f = 2.0 * Double(N * C * FF)
    time("fwd  h = x·W1ᵀ   NT m=N n=FF k=C ", f) { BLAS.sgemm(transA: false, transB: true, m: N, n: FF, k: C, a: x, lda: C, b: w1, ldb: C, beta: 1, c: out, ldc: FF) }
    time("bwd dx = dh·W1   NN m=N n=C k=FF ", f) { BLAS.sgemm(m: N, n: C, k: FF, a: h, lda: FF, b: w1, ldb: C, beta: 1, c: x, ldc: C) }
    time("bwd dW1 = dhᵀ·x  TN m=FF n=C k=N ", f) { BLAS.sgemm(transA: true, m: FF, n: C, k: N, a: h, lda: FF, b: x, ldb: C, beta: 1, c: dw, ldc: C) }
    time("bwd dW1ᵀ = xᵀ·dh TN m=C n=FF k=N ", f) { BLAS.sgemm(transA: true, m: C, n: FF, k: N, a: x, lda: C, b: h, ldb: FF, beta: 1, c: dw, ldc: FF) }
    time("fwd2 y = h·W2ᵀ   NT m=N n=C k=FF ", f) { BLAS.sgemm(transA: false, transB: true, m: N, n: C, k: FF, a: h, lda: FF, b: w1, ldb: FF, beta: 1, c: x, ldc: C) }
    time("bwd2 dh = dy·W2  NN m=N n=FF k=C ", f) { BLAS.sgemm(m: N, n: FF, k: C, a: x, lda: C, b: w1, ldb: FF, beta: 0, c: out, ldc: FF) }
    time("bwd2 dW2 = dyᵀ·h TN m=C n=FF k=N ", f) { BLAS.sgemm(transA: true, m: C, n: FF, k: N, a: x, lda: C, b: h, ldb: FF, beta: 1, c: dw, ldc: FF) }
}
