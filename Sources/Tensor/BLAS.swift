import CBLAS

/// Row-major matrix products through OpenBLAS. Transposes are flags, never copies.
public enum BLAS {
    /// C[M,N] = alpha * op(A) * op(B) + beta * C, row-major.
    /// op(A) is [M,K]: A is stored [M,K] (lda ≥ K) or, with `transA`, [K,M] (lda ≥ M).
    /// op(B) is [K,N]: B is stored [K,N] (ldb ≥ N) or, with `transB`, [N,K] (ldb ≥ K).
    @inline(__always)
    public static func sgemm(transA: Bool = false, transB: Bool = false,
                             m: Int, n: Int, k: Int,
                             alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int? = nil,
                             b: UnsafePointer<Float>, ldb: Int? = nil,
                             beta: Float = 0,
                             c: UnsafeMutablePointer<Float>, ldc: Int? = nil) {
        if m == 0 || n == 0 { return }
        let lda = lda ?? (transA ? m : k)
        let ldb = ldb ?? (transB ? k : n)
        let ldc = ldc ?? n
        cblas_sgemm(CblasRowMajor,
                    transA ? CblasTrans : CblasNoTrans,
                    transB ? CblasTrans : CblasNoTrans,
                    blasint(m), blasint(n), blasint(k),
                    alpha, a, blasint(lda), b, blasint(ldb),
                    beta, c, blasint(ldc))
    }

    /// y[M] = alpha * op(A) x + beta * y, A row-major [M,N] (or [N,M] with `trans`).
    @inline(__always)
    public static func sgemv(trans: Bool = false, m: Int, n: Int, alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int? = nil,
                             x: UnsafePointer<Float>, beta: Float = 0, y: UnsafeMutablePointer<Float>) {
        cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans,
                    blasint(m), blasint(n), alpha, a, blasint(lda ?? n), x, 1, beta, y, 1)
    }

    /// Dot product of two contiguous vectors.
    @inline(__always)
    public static func sdot(_ n: Int, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>) -> Float {
        cblas_sdot(blasint(n), x, 1, y, 1)
    }

    /// y += alpha * x
    @inline(__always)
    public static func saxpy(_ n: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        cblas_saxpy(blasint(n), alpha, x, 1, y, 1)
    }

    /// The number of threads OpenBLAS uses for one call.
    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(newValue)) }
    }
}
