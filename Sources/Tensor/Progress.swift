import Foundation

/// Progress for long work. On a terminal: one bar redrawn in place on stderr
/// (`label [#####.....] 12/40 videos  3.1 clips/s  ETA 0:42`). Otherwise (logs, CI):
/// a plain line at most every `plainInterval` seconds and at the end. Thread-safe.
public final class ProgressReporter: @unchecked Sendable {
    public let label: String
    public let unit: String
    public private(set) var total: Int
    private var done = 0
    private var extra: [String: Double] = [:]
    private var extraUnits: [String] = []
    private var status = ""
    private let start = Date()
    private var lastPrint = Date.distantPast
    private let lock = NSLock()
    private let isTTY: Bool
    private let enabled: Bool
    public var plainInterval: Double = 10

    /// `enabled: false` (or `VIDEOBERT_QUIET=1` in the environment) prints nothing.
    public init(label: String, total: Int, unit: String, enabled: Bool = true) {
        self.label = label
        self.total = total
        self.unit = unit
        self.isTTY = isatty(2) != 0
        self.enabled = enabled && ProcessInfo.processInfo.environment["VIDEOBERT_QUIET"] == nil
    }

    /// Advances by `n` units; `counters` adds rates shown beside the bar (e.g. ["clips": 30]).
    public func advance(_ n: Int = 1, counters: [String: Double] = [:]) {
        lock.lock(); defer { lock.unlock() }
        done += n
        for (k, v) in counters {
            if extra[k] == nil { extraUnits.append(k) }
            extra[k, default: 0] += v
        }
        render(final: false)
    }

    /// A short text shown after the counts (e.g. the current loss).
    public func setStatus(_ s: String) {
        lock.lock(); status = s; lock.unlock()
    }

    public func setTotal(_ t: Int) {
        lock.lock(); total = t; lock.unlock()
    }

    public func finish() {
        lock.lock(); defer { lock.unlock() }
        render(final: true)
    }

    public var elapsed: Double { Date().timeIntervalSince(start) }

    private func render(final: Bool) {
        guard enabled else { return }
        let now = Date()
        let interval = isTTY ? 0.1 : plainInterval
        if !final && now.timeIntervalSince(lastPrint) < interval { return }
        lastPrint = now
        let secs = max(now.timeIntervalSince(start), 1e-9)
        var parts = ["\(label)"]
        if isTTY {
            let width = 24
            let filled = total > 0 ? min(width, done * width / total) : 0
            parts.append("[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]")
        }
        parts.append("\(done)/\(total) \(unit)")
        for k in extraUnits {
            parts.append(String(format: "%.1f %@/s", extra[k]! / secs, k))
        }
        if !status.isEmpty { parts.append(status) }
        if done > 0 && done < total {
            let eta = secs / Double(done) * Double(total - done)
            parts.append("ETA " + Self.clock(eta))
        } else {
            parts.append(Self.clock(secs))
        }
        let line = parts.joined(separator: "  ")
        if isTTY {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line + (final ? "\n" : "")).utf8))
        } else {
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
    }

    public static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s >= 3600 { return String(format: "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60) }
        return String(format: "%d:%02d", s / 60, s % 60)
    }
}

/// Writes one line to stderr (diagnostics that must not mix with results on stdout).
public func logLine(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}
