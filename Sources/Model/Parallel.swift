import Dispatch
import Foundation
import Tensor

/// Threading for the elementwise kernels (docs/ARCHITECTURE.md §8): `DispatchQueue.concurrentPerform` over
/// disjoint ranges, only when the work is large enough to pay for the dispatch (~10 µs).
///
/// Results never depend on the number of workers: elementwise kernels write disjoint elements,
/// and every reduction either partitions the *output* (columns) or sums fixed-size chunks in a
/// fixed order. That keeps training bit-for-bit deterministic on any machine.
public enum Parallel {
    /// Worker threads for elementwise work: the cores the process may use.
    public static let workers = Threads.count

    /// Runs `body` over ranges that partition `0..<count`, in parallel when `count` is at least
    /// two `grain`s. Up to four pieces per worker, handed out dynamically, so that a core busy
    /// with another process delays only a small piece. `body` must only write state that belongs
    /// to its own range.
    @inline(__always)
    public static func forEachRange(_ count: Int, grain: Int = 16_384, _ body: (Range<Int>) -> Void) {
        let pieces = min(workers * 4, count / max(grain, 1))
        if pieces <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        concurrentPerform(pieces) { i in
            body((count * i / pieces)..<(count * (i + 1) / pieces))
        }
    }

    /// The grain for kernels that split a matrix's columns across workers (column sums, scatter-adds):
    /// no split for small matrices, else pieces of at least 32 columns.
    @inline(__always)
    public static func columnGrain(rows: Int, columns: Int) -> Int {
        rows * columns < 1 << 16 ? max(columns, 1) : max(32, columns / (workers * 4))
    }

    /// Runs `body(i)` for i in 0..<iterations on the worker threads (or inline for one).
    public static func concurrentPerform(_ iterations: Int, _ body: (Int) -> Void) {
        if iterations <= 1 {
            if iterations == 1 { body(0) }
            return
        }
        // concurrentPerform returns only after every iteration has finished, so the non-escaping
        // closure outlives all uses; the box only hides it from the Sendable check. Callers
        // guarantee that iterations touch disjoint memory.
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: iterations) { i in box.value(i) }
        }
    }

    /// Runs `body` with OpenBLAS limited to one thread, for regions where `concurrentPerform`
    /// workers each call sgemm on small matrices (attention's per-head products): two BLAS
    /// threads inside each of two workers would oversubscribe the cores (docs/ARCHITECTURE.md §8).
    /// Not reentrant with other threads calling BLAS at the same time.
    public static func withSingleThreadedBLAS<R>(_ body: () throws -> R) rethrows -> R {
        let saved = BLAS.threads
        if saved == 1 || workers == 1 { return try body() }
        BLAS.threads = 1
        defer { BLAS.threads = saved }
        return try body()
    }
}

/// Carries a value into a `@Sendable` closure when the caller guarantees exclusive, bounded use
/// (see `Parallel.concurrentPerform`).
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

// MARK: - Reductions over contiguous floats (8-wide accumulators; reassociation the compiler may not do itself)

/// Σ x[i] for i in 0..<n.
@inline(__always)
func vectorSum(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD8<Float>()
    var i = 0
    while i + 8 <= n {
        acc += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
        i += 8
    }
    var s = acc.sum()
    while i < n { s += x[i]; i += 1 }
    return s
}

/// Σ x[i]·y[i] for i in 0..<n.
@inline(__always)
func vectorDot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD8<Float>()
    var i = 0
    while i + 8 <= n {
        acc += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            * UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self)
        i += 8
    }
    var s = acc.sum()
    while i < n { s += x[i] * y[i]; i += 1 }
    return s
}

/// Σ (x[i] − c)² for i in 0..<n.
@inline(__always)
func vectorSumSquaredDeviation(_ x: UnsafePointer<Float>, _ c: Float, _ n: Int) -> Float {
    var acc = SIMD8<Float>()
    let cv = SIMD8<Float>(repeating: c)
    var i = 0
    while i + 8 <= n {
        let d = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self) - cv
        acc += d * d
        i += 8
    }
    var s = acc.sum()
    while i < n { let d = x[i] - c; s += d * d; i += 1 }
    return s
}

/// max x[i] for i in 0..<n (n > 0).
@inline(__always)
func vectorMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var m = -Float.infinity
    var i = 0
    if n >= 8 {
        var acc = SIMD8<Float>(repeating: -.infinity)
        while i + 8 <= n {
            acc = max8(acc, UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self))
            i += 8
        }
        m = acc.max()
    }
    while i < n { m = Swift.max(m, x[i]); i += 1 }
    return m
}
