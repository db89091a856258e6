import Foundation

/// Line charts as SVG (loss curves in run folders and in report.html): self-contained text,
/// crisp at any size, readable by any browser.
public struct SVGPlot {
    public struct Series {
        public var name: String
        public var points: [(x: Double, y: Double)]
        public var color: String
        public init(name: String, points: [(x: Double, y: Double)], color: String) {
            self.name = name; self.points = points; self.color = color
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    public var width = 640
    public var height = 360
    /// Plot y on a log scale (losses that fall over orders of magnitude).
    public var logY = false

    public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.series = series
    }

    public static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    /// Round tick values covering [lo, hi].
    static func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
        guard hi > lo else { return [lo] }
        let raw = (hi - lo) / Double(count)
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2.0, 2.5, 5.0, 10.0].map { $0 * mag }.first { $0 >= raw } ?? raw
        var t = ceil(lo / step) * step
        var out: [Double] = []
        while t <= hi + step * 1e-9 { out.append(t); t += step }
        return out
    }

    static func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        if abs(v) >= 10_000 || abs(v) < 0.01 { return String(format: "%.1e", v) }
        if v == v.rounded() { return String(format: "%.0f", v) }
        return String(format: abs(v) < 1 ? "%.3g" : "%.2f", v)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    public func render() -> String {
        let left = 64.0, right = 16.0, top = 32.0, bottom = 44.0
        let W = Double(width), H = Double(height)
        let pw = W - left - right, ph = H - top - bottom
        let all = series.flatMap { $0.points }.filter { $0.x.isFinite && $0.y.isFinite && (!logY || $0.y > 0) }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" font-family=\"sans-serif\" font-size=\"11\">\n"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        svg += "<text x=\"\(W / 2)\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">\(Self.escape(title))</text>\n"
        guard !all.isEmpty else {
            svg += "<text x=\"\(W / 2)\" y=\"\(H / 2)\" text-anchor=\"middle\">no data</text>\n</svg>\n"
            return svg
        }
        let tf: (Double) -> Double = logY ? { log10($0) } : { $0 }
        var x0 = all.map(\.x).min()!, x1 = all.map(\.x).max()!
        var y0 = all.map { tf($0.y) }.min()!, y1 = all.map { tf($0.y) }.max()!
        if x1 == x0 { x0 -= 1; x1 += 1 }
        if y1 == y0 { y0 -= 0.5; y1 += 0.5 }
        let pad = (y1 - y0) * 0.05
        y0 -= pad; y1 += pad
        func sx(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * pw }
        func sy(_ y: Double) -> Double { top + ph - (tf(y) - y0) / (y1 - y0) * ph }
        // Axes and grid.
        svg += "<g stroke=\"#ddd\">\n"
        for t in Self.ticks(x0, x1) { svg += "<line x1=\"\(sx(t))\" y1=\"\(top)\" x2=\"\(sx(t))\" y2=\"\(top + ph)\"/>\n" }
        let yTicks = logY ? Self.ticks(y0, y1).map { pow(10, $0) } : Self.ticks(y0, y1)
        for t in yTicks { svg += "<line x1=\"\(left)\" y1=\"\(sy(t))\" x2=\"\(left + pw)\" y2=\"\(sy(t))\"/>\n" }
        svg += "</g>\n<rect x=\"\(left)\" y=\"\(top)\" width=\"\(pw)\" height=\"\(ph)\" fill=\"none\" stroke=\"#333\"/>\n"
        for t in Self.ticks(x0, x1) {
            svg += "<text x=\"\(sx(t))\" y=\"\(top + ph + 14)\" text-anchor=\"middle\">\(Self.label(t))</text>\n"
        }
        for t in yTicks {
            svg += "<text x=\"\(left - 4)\" y=\"\(sy(t) + 4)\" text-anchor=\"end\">\(Self.label(t))</text>\n"
        }
        svg += "<text x=\"\(left + pw / 2)\" y=\"\(H - 8)\" text-anchor=\"middle\">\(Self.escape(xLabel))</text>\n"
        svg += "<text x=\"14\" y=\"\(top + ph / 2)\" text-anchor=\"middle\" transform=\"rotate(-90 14 \(top + ph / 2))\">\(Self.escape(yLabel))</text>\n"
        // Lines and legend.
        for (i, s) in series.enumerated() {
            let pts = s.points.filter { $0.x.isFinite && $0.y.isFinite && (!logY || $0.y > 0) }
            guard !pts.isEmpty else { continue }
            let path = pts.map { String(format: "%.1f,%.1f", sx($0.x), sy($0.y)) }.joined(separator: " ")
            if pts.count == 1 {
                svg += "<circle cx=\"\(sx(pts[0].x))\" cy=\"\(sy(pts[0].y))\" r=\"3\" fill=\"\(s.color)\"/>\n"
            } else {
                svg += "<polyline fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"1.5\" points=\"\(path)\"/>\n"
            }
            let ly = top + 12 + Double(i) * 14
            svg += "<line x1=\"\(left + pw - 120)\" y1=\"\(ly - 4)\" x2=\"\(left + pw - 104)\" y2=\"\(ly - 4)\" stroke=\"\(s.color)\" stroke-width=\"2\"/>\n"
            svg += "<text x=\"\(left + pw - 100)\" y=\"\(ly)\">\(Self.escape(s.name))</text>\n"
        }
        svg += "</svg>\n"
        return svg
    }
}
