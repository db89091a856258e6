import Tensor

// A fully connected layer with PyTorch's nn.Linear layout: weight [OC, C], y = x·Wᵀ + b.
// Hugging Face safetensors (e.g. `attention.self.query.weight`, [C, C]) therefore load as is.
// All products are one sgemm each; transposes are flags (llm.c's matmul_forward/backward).
//
// Shape letters: N rows (B·T, or the number of selected positions), C input features,
// OC output features.

/// out = inp · weightᵀ + bias.
/// - Parameters:
///   - out: [N, OC] (written). May not alias `inp`.
///   - inp: [N, C].
///   - weight: [OC, C].
///   - bias: [OC], or nil for none.
public func linearForward(out: UnsafeMutablePointer<Float>,
                          inp: UnsafePointer<Float>,
                          weight: UnsafePointer<Float>,
                          bias: UnsafePointer<Float>?,
                          N: Int, C: Int, OC: Int) {
    if let bias {
        // Start from the bias in every row, then accumulate the product into it (beta = 1).
        Parallel.forEachRange(N, grain: max(1, 32_768 / max(OC, 1))) { rows in
            for n in rows { (out + n * OC).update(from: bias, count: OC) }
        }
    }
    BLAS.sgemm(transA: false, transB: true, m: N, n: OC, k: C,
               a: inp, lda: C, b: weight, ldb: C,
               beta: bias == nil ? 0 : 1, c: out, ldc: OC)
}

/// Backward of `linearForward`:
/// dinp += dout · weight, dweight += doutᵀ · inp, dbias += Σₙ dout.
/// - Parameters:
///   - dinp: [N, C] accumulated (+=), or nil when the input needs no gradient.
///   - dweight: [OC, C] accumulated (+=), or nil for a frozen weight.
///   - dbias: [OC] accumulated (+=), or nil.
///   - dout: [N, OC].
///   - inp: [N, C] the forward input.
///   - weight: [OC, C].
public func linearBackward(dinp: UnsafeMutablePointer<Float>?,
                           dweight: UnsafeMutablePointer<Float>?,
                           dbias: UnsafeMutablePointer<Float>?,
                           dout: UnsafePointer<Float>,
                           inp: UnsafePointer<Float>,
                           weight: UnsafePointer<Float>,
                           N: Int, C: Int, OC: Int) {
    if let dinp {
        BLAS.sgemm(transA: false, transB: false, m: N, n: C, k: OC,
                   a: dout, lda: OC, b: weight, ldb: C, beta: 1, c: dinp, ldc: C)
    }
    if let dweight {
        BLAS.sgemm(transA: true, transB: false, m: OC, n: C, k: N,
                   a: dout, lda: OC, b: inp, ldb: C, beta: 1, c: dweight, ldc: C)
    }
    if let dbias {
        columnSumsAccumulate(into: dbias, dout, rows: N, columns: OC)
    }
}

/// sums[c] += Σₙ m[n, c] for a row-major [rows, columns] matrix; columns split across workers,
/// rows summed in order (deterministic).
func columnSumsAccumulate(into sums: UnsafeMutablePointer<Float>, _ m: UnsafePointer<Float>, rows: Int, columns: Int) {
    let columnGrain = Parallel.columnGrain(rows: rows, columns: columns)
    Parallel.forEachRange(columns, grain: columnGrain) { range in
        let c0 = range.lowerBound, width = range.count
        let s = sums + c0
        for n in 0..<rows {
            let row = m + n * columns + c0
            for c in 0..<width { s[c] += row[c] }
        }
    }
}
