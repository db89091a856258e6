import Foundation
import Tensor

/// The machine's sgemm peak: square products of `--n` (default 2048), best of `--reps`.
func benchSgemm(_ args: [String]) throws {
    let n = Int(option(args, "n", "2048"))!
    let reps = Int(option(args, "reps", "5"))!
    var rng = SeededRNG(seed: 1)
    let a = (0..<n * n).map { _ in rng.nextFloat() - 0.5 }
    let b = (0..<n * n).map { _ in rng.nextFloat() - 0.5 }
    var c = [Float](repeating: 0, count: n * n)
    var best = Double.infinity
    for _ in 0..<reps {
        let t0 = now()
        c.withUnsafeMutableBufferPointer { cp in
            BLAS.sgemm(m: n, n: n, k: n, a: a, b: b, c: cp.baseAddress!)
        }
        best = min(best, now() - t0)
    }
    let gflops = 2.0 * Double(n) * Double(n) * Double(n) / best / 1e9
    printJSON(["benchmark": "sgemm", "n": n, "seconds": best, "gflops": gflops, "threads": BLAS.threads])
}
