import Foundation
import Media
import Tensor

/// Thumbnails of a video's segments: the frame nearest each segment's middle, decoded at
/// `samplesPerSecond` (so within 1 / (2 × that) seconds of it), scaled to at most `width` pixels
/// wide (aspect kept, even sizes), written as `<k>.png` with the repository's PNG writer.
public enum Thumbnails {
    static let samplesPerSecond = 2

    /// The video's duration: the container's, or the time after the last frame when it has none.
    public static func duration(of path: String) throws -> Double {
        let reader = try VideoReader(path: path)
        if let d = reader.duration, d > 0, d.isFinite { return d }
        var last = 0.0
        try reader.forEachFrame(fps: FrameRate(samplesPerSecond), width: 16, height: 16) { last = $0.time + 1 / Double(samplesPerSecond) }
        return last
    }

    /// Writes `<k>.png` into `folder` for every midpoint k (seconds, any order).
    static func write(video path: String, midpoints: [Double], width maxWidth: Int, to folder: String) throws {
        guard !midpoints.isEmpty else { return }
        let reader = try VideoReader(path: path)
        guard reader.width > 0, reader.height > 0 else { throw VideoBertError("the video has no picture size", file: path) }
        var w = min(max(16, maxWidth), reader.width)
        var h = Int((Double(w) * Double(reader.height) / Double(reader.width)).rounded())
        w -= w % 2; h = max(2, h - h % 2)
        let order = midpoints.indices.sorted { midpoints[$0] < midpoints[$1] }
        var next = 0
        var last: [UInt8] = []
        let half = 0.5 / Double(samplesPerSecond)
        try reader.forEachFrame(fps: FrameRate(samplesPerSecond), width: w, height: h) { frame in
            guard next < order.count else { return }
            var pixels: [UInt8]?
            // Every midpoint that this frame is the nearest sample to (or is already past).
            while next < order.count && frame.time + half >= midpoints[order[next]] {
                if pixels == nil { pixels = Array(frame.pixels) }
                try RGBImage(width: w, height: h, pixels: pixels!).writePNG(to: (folder as NSString).appendingPathComponent("\(order[next]).png"))
                next += 1
            }
            if next < order.count { last = pixels ?? Array(frame.pixels) }
        }
        guard !last.isEmpty || next == order.count else { throw VideoBertError("no frame could be decoded", file: path) }
        // Midpoints after the last frame get the last frame kept.
        while next < order.count {
            try RGBImage(width: w, height: h, pixels: last).writePNG(to: (folder as NSString).appendingPathComponent("\(order[next]).png"))
            next += 1
        }
    }
}
