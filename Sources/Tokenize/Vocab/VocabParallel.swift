import Dispatch
import Foundation
import Tensor

/// Threading for the k-means code (docs/ARCHITECTURE.md §8). Work is cut into items whose layout depends
/// only on the data (never on the number of threads), each item writes only its own outputs,
/// and reductions are summed afterwards in item order; so results are bit-for-bit the same
/// for any thread count. Inside the items every sgemm runs with OpenBLAS on one thread, so the
/// workers plus OpenBLAS never oversubscribe the cores.
public enum VocabParallel {
    /// The cores this process may use.
    public static let cores = Threads.count

    /// Runs `worker(next)` on up to `workers` threads; each worker calls `next()` for items
    /// (0..<items, handed out in increasing order, each exactly once) until it returns nil.
    /// A worker allocates its scratch once, then loops over items. Returns when all are done.
    static func run(items: Int, workers: Int, _ worker: (_ next: () -> Int?) -> Void) {
        if items <= 0 { return }
        let threads = min(max(1, workers), items)
        // One OpenBLAS thread even when this runs on one worker: every item's sgemm is then
        // computed the same way whatever the worker count, so results match bit for bit.
        if threads == 1 {
            var i = 0
            withSingleThreadedBLAS {
                worker {
                    guard i < items else { return nil }
                    defer { i += 1 }
                    return i
                }
            }
            return
        }
        let counter = ItemCounter(limit: items)
        withSingleThreadedBLAS {
            // concurrentPerform returns only after every iteration has finished, so the
            // non-escaping closure outlives all its uses; the box only hides it from the Sendable
            // check. Items write disjoint memory (the callers' contract).
            withoutActuallyEscaping(worker) { worker in
                let box = UncheckedBox(worker)
                DispatchQueue.concurrentPerform(iterations: threads) { _ in
                    box.value { counter.next() }
                }
            }
        }
    }

    /// Runs `body(i)` for every i in 0..<items on up to `workers` threads.
    static func forEach(_ items: Int, workers: Int, _ body: (Int) -> Void) {
        run(items: items, workers: workers) { next in
            while let i = next() { body(i) }
        }
    }

    /// Runs `body` with OpenBLAS on one thread (restored afterwards). OpenBLAS's thread count is
    /// process-wide: callers must not run other multi-threaded BLAS work at the same time.
    static func withSingleThreadedBLAS<R>(_ body: () throws -> R) rethrows -> R {
        let saved = BLAS.threads
        if saved == 1 { return try body() }
        BLAS.threads = 1
        defer { BLAS.threads = saved }
        return try body()
    }
}

/// Hands out 0..<limit once each, to any thread.
final class ItemCounter: @unchecked Sendable {
    // @unchecked: `value` is only read and written under `lock`.
    private let lock = NSLock()
    private var value = 0
    private let limit: Int
    init(limit: Int) { self.limit = limit }
    func next() -> Int? {
        lock.lock(); defer { lock.unlock() }
        guard value < limit else { return nil }
        value += 1
        return value - 1
    }
}

/// Carries a non-Sendable closure into `concurrentPerform`, whose iterations all finish before
/// it returns (see `VocabParallel.run`).
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
