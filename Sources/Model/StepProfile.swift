import Dispatch

/// Wall-clock seconds per named stage of a training step, for benchmarks and `--profile`-style
/// reports: set `BertForPreTraining.profile` to one (nil, the default, costs one branch per stage).
/// Stages are timed around whole kernels, which synchronise their threads before returning, so the
/// times add up to the step.
public final class StepProfile {
    /// Seconds per stage since the last `reset()`.
    public private(set) var seconds: [String: Double] = [:]

    public init() {}

    public func reset() { seconds.removeAll(keepingCapacity: true) }

    /// Runs `body`, adding its duration to `stage`.
    @inline(__always)
    public func measure(_ stage: String, _ body: () -> Void) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        seconds[stage, default: 0] += Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
    }
}
