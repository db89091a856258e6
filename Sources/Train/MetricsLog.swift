import Foundation
import Report
import Tensor

/// `metrics.jsonl`: one JSON object per log step, `{"step", "kind", "split", <metric>: value, ...}`
/// (kind "train" every `log_every` steps over the batches trained on; kind "eval" at each
/// held-out evaluation, on the recipe's eval split). Appended and flushed
/// line by line, so a crash loses nothing logged; a resumed run first drops lines past its step.
public final class MetricsLog {
    public let path: String
    private let handle: FileHandle

    public init(path: String, truncateAfterStep step: Int) throws {
        self.path = path
        if !FileManager.default.fileExists(atPath: path) { try AtomicFile.write("", to: path) }
        // Keep only lines up to `step` (a resumed run re-logs what came after its checkpoint).
        let kept = try Self.read(path).filter { ($0["step"] as? Int ?? 0) <= step }
        var text = ""
        for obj in kept { text += Self.line(obj) }
        try AtomicFile.write(text, to: path)
        guard let h = FileHandle(forWritingAtPath: path) else { throw VideoBertError("cannot append", file: path) }
        h.seekToEndOfFile()
        handle = h
    }

    deinit { try? handle.close() }

    static func line(_ obj: [String: Any]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    public func append(step: Int, kind: String, split: String, values: [String: Double]) throws {
        var obj: [String: Any] = ["step": step, "kind": kind, "split": split]
        for (k, v) in values where v.isFinite { obj[k] = (v * 1e6).rounded() / 1e6 }
        handle.write(Data(Self.line(obj).utf8))
        try handle.synchronize()
    }

    /// All lines as dictionaries.
    public static func read(_ path: String) throws -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    /// VideoBERT's losses: the total and each objective.
    public static let videoBertLossKeys = ["loss", "mlm_loss", "mfm_loss", "align_loss"]

    /// Loss curves (train and held-out; the total and each objective in `keys`) as SVG.
    public func plot(to svgPath: String, title: String = "pretraining loss", keys: [String] = MetricsLog.videoBertLossKeys) throws {
        try AtomicFile.write(try Self.lossPlot(Self.read(path), title: title, keys: keys).render(), to: svgPath)
    }

    public static func lossPlot(_ lines: [[String: Any]], title: String = "pretraining loss",
                                keys: [String] = MetricsLog.videoBertLossKeys) -> SVGPlot {
        var series: [SVGPlot.Series] = []
        func label(_ l: [String: Any]) -> String {
            (l["kind"] as? String) == "eval" ? "held-out (\(l["split"] as? String ?? "?"))" : "train"
        }
        let groups = Array(Set(lines.map(label))).sorted { ($0 == "train" ? "" : $0) < ($1 == "train" ? "" : $1) }
        var color = 0
        for split in groups {
            for key in keys {
                let pts = lines.filter { label($0) == split }.compactMap { l -> (x: Double, y: Double)? in
                    guard let s = l["step"] as? Int, let v = (l[key] as? NSNumber)?.doubleValue else { return nil }
                    return (Double(s), v)
                }
                guard !pts.isEmpty, pts.contains(where: { $0.y != 0 }) else { continue }
                series.append(.init(name: "\(split) \(key)", points: pts, color: SVGPlot.palette[color % SVGPlot.palette.count]))
                color += 1
            }
        }
        return SVGPlot(title: title, xLabel: "step", yLabel: "loss", series: series)
    }
}
