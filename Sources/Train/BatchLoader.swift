import Foundation

/// The streaming data loader (`train.loader`, docs/ARCHITECTURE.md §8): with `background`, the
/// next batches are drawn on a thread of their own while the step computes, at most `capacity`
/// (2) ahead; with `inline`, on the training thread when asked. The batches are the same in both
/// modes and whatever the timing: one producer draws them in order from the task's sampler,
/// each with the sampler's state after it, and the consumer takes them in that order. The state
/// a checkpoint saves is the one after the last batch *taken* (`consumedState`), not the
/// sampler's (which may be ahead), so a resume is exact; `reset` stops the producer before
/// the sampler is restored. Time the consumer spent waiting for a batch (inline: drawing it)
/// is the `data_wait_s` of metrics.jsonl.
final class BatchLoader<Batch: Sendable, State>: @unchecked Sendable {
    static var capacity: Int { 2 }
    let background: Bool
    /// Draws the next batch from the sampler and returns it with the sampler's state after it.
    private let produce: () -> (Batch, State)
    private let cond = NSCondition()
    // Guarded by `cond`:
    private var queue: [(Batch, State)] = []
    private var producing = false
    private var stopping = false
    /// The sampler's state after the last batch `next` returned (what a checkpoint saves).
    private(set) var consumedState: State
    /// Seconds to sleep after drawing each batch and after handing one out: tests make the
    /// producer or the consumer deliberately slow with them, to show that timing changes nothing.
    var testDelays = (produce: 0.0, consume: 0.0)

    init(background: Bool, state: State, produce: @escaping () -> (Batch, State)) {
        self.background = background
        self.produce = produce
        consumedState = state
    }

    deinit { stop() }

    /// The next batch, and the seconds the caller waited for it.
    func next() -> (Batch, wait: Double) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        func waited() -> Double { Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9 }
        defer { if testDelays.consume > 0 { Thread.sleep(forTimeInterval: testDelays.consume) } }
        guard background else {
            let (b, s) = produce()
            consumedState = s
            return (b, waited())
        }
        cond.lock()
        if !producing { start() }
        while queue.isEmpty { cond.wait() }
        let (b, s) = queue.removeFirst()
        cond.broadcast()
        cond.unlock()
        consumedState = s
        return (b, waited())
    }

    /// Starts the producer thread (with `cond` held).
    private func start() {
        producing = true
        stopping = false
        let t = Thread { [self] in
            while true {
                cond.lock()
                while queue.count >= Self.capacity && !stopping { cond.wait() }
                if stopping { producing = false; cond.broadcast(); cond.unlock(); return }
                cond.unlock()
                let item = produce()
                if testDelays.produce > 0 { Thread.sleep(forTimeInterval: testDelays.produce) }
                cond.lock()
                queue.append(item)
                cond.broadcast()
                cond.unlock()
            }
        }
        t.name = "videobert batch loader"
        t.start()
    }

    /// Stops the producer (waiting until it has left the sampler) and drops what it drew ahead.
    func stop() {
        cond.lock()
        stopping = true
        cond.broadcast()
        while producing { cond.wait() }
        queue.removeAll()
        cond.unlock()
    }

    /// Before the sampler is restored to `state`: the producer stopped, nothing drawn ahead kept.
    func reset(to state: State) {
        stop()
        consumedState = state
    }
}
