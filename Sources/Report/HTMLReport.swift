import Foundation
import Tensor

/// A self-contained HTML page (images embedded as data URIs, plots as inline SVG), so that
/// `report.html` opens anywhere as one file.
public struct HTMLReport {
    public var title: String
    private var body: [String] = []

    public init(title: String) { self.title = title }

    public static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    public mutating func heading(_ text: String, level: Int = 2) {
        body.append("<h\(level)>\(Self.escape(text))</h\(level)>")
    }

    public mutating func paragraph(_ text: String) {
        body.append("<p>\(Self.escape(text))</p>")
    }

    /// Raw HTML (the caller escapes).
    public mutating func html(_ raw: String) { body.append(raw) }

    public mutating func table(header: [String], rows: [[String]], caption: String? = nil) {
        var t = "<table>"
        if let caption { t += "<caption>\(Self.escape(caption))</caption>" }
        t += "<tr>" + header.map { "<th>\(Self.escape($0))</th>" }.joined() + "</tr>"
        for r in rows { t += "<tr>" + r.map { "<td>\(Self.escape($0))</td>" }.joined() + "</tr>" }
        body.append(t + "</table>")
    }

    public mutating func image(png: Data, alt: String, width: Int? = nil) {
        let w = width.map { " width=\"\($0)\"" } ?? ""
        body.append("<img alt=\"\(Self.escape(alt))\"\(w) src=\"data:image/png;base64,\(png.base64EncodedString())\">")
    }

    public mutating func image(_ img: RGBImage, alt: String, scale: Int = 1) {
        image(png: img.pngData(), alt: alt, width: img.width * scale)
    }

    /// A figure: an image with a caption underneath, laid out inline (a row of figures wraps).
    public mutating func figure(_ img: RGBImage, caption: String, scale: Int = 2) {
        body.append("<figure><img alt=\"\(Self.escape(caption))\" width=\"\(img.width * scale)\" src=\"data:image/png;base64,\(img.pngData().base64EncodedString())\"><figcaption>\(Self.escape(caption))</figcaption></figure>")
    }

    public mutating func svg(_ svg: String) { body.append("<div class=\"plot\">\(svg)</div>") }

    public func render() -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(Self.escape(title))</title>
        <style>
        body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
        h1 { font-size: 1.6em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
        table { border-collapse: collapse; margin: .8em 0; } caption { text-align: left; font-weight: bold; padding: .3em 0; }
        th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; font-size: .92em; } th { background: #f4f4f4; }
        figure { display: inline-block; margin: .3em .5em .6em 0; vertical-align: top; text-align: center; }
        figcaption { font-size: .8em; color: #555; max-width: 260px; }
        img { image-rendering: pixelated; border: 1px solid #ddd; }
        .plot { display: inline-block; margin: .5em 1em .5em 0; }
        </style></head><body>
        <h1>\(Self.escape(title))</h1>
        \(body.joined(separator: "\n"))
        </body></html>

        """
    }

    public func write(to path: String) throws {
        try AtomicFile.write(render(), to: path)
    }
}
