import Foundation
import Tensor

/// Synthetic moving pictures for test videos and demo corpora: two gradients that drift at
/// different speeds plus a bright square that moves across, so consecutive frames differ
/// everywhere and a wrong frame choice is visible in every pixel statistic.
public enum TestPattern {
    /// Frame `index` as RGB24 [height, width, 3]. `seed` varies the colours and the square's path.
    public static func frame(_ index: Int, width: Int, height: Int, seed: Int = 0) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: width * height * 3)
        fill(&out, index: index, width: width, height: height, seed: seed)
        return out
    }

    public static func fill(_ out: inout [UInt8], index: Int, width: Int, height: Int, seed: Int = 0) {
        precondition(out.count == width * height * 3)
        let side = max(2, min(width, height) / 3)
        let travelX = max(1, width - side), travelY = max(1, height - side)
        let sx = (index * (3 + seed % 5)) % (2 * travelX)
        let sy = (index * (2 + seed % 3)) % (2 * travelY)
        let squareX = sx < travelX ? sx : 2 * travelX - sx
        let squareY = sy < travelY ? sy : 2 * travelY - sy
        out.withUnsafeMutableBufferPointer { p in
            for y in 0..<height {
                for x in 0..<width {
                    let o = (y * width + x) * 3
                    let inSquare = x >= squareX && x < squareX + side && y >= squareY && y < squareY + side
                    // Smooth ramps (codecs keep them) that move 6 and 4 levels per frame.
                    let r = (x * 255 / max(1, width - 1) + index * 6 + seed * 40) % 256
                    let g = (y * 255 / max(1, height - 1) + index * 4 + seed * 90) % 256
                    let b = inSquare ? 235 : (128 + (x + y + index) % 32)
                    p[o] = UInt8(r < 128 ? r * 2 : (255 - r) * 2)  // triangle wave: no hard wrap
                    p[o + 1] = UInt8(g < 128 ? g * 2 : (255 - g) * 2)
                    p[o + 2] = UInt8(b)
                }
            }
        }
    }

    /// Writes a test video: `seconds` of the pattern at `fps` (or at the given frame `times`,
    /// for variable frame rates), with `VideoEncoder`'s options.
    @discardableResult
    public static func writeVideo(path: String, width: Int, height: Int, fps: FrameRate,
                                  seconds: Double, times: [Double]? = nil, codec: String? = nil,
                                  timeBase: Rational? = nil, startTime: Double = 0,
                                  audio: AudioTrack? = nil, seed: Int = 0) throws -> Int {
        let encoder = try VideoEncoder(path: path, width: width, height: height, frameRate: fps,
                                       codec: codec, timeBase: timeBase, startTime: startTime, audio: audio)
        let count = times?.count ?? Int((seconds * fps.framesPerSecond).rounded())
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<count {
            fill(&rgb, index: i, width: width, height: height, seed: seed)
            try encoder.append(rgb: rgb, time: times?[i])
        }
        try encoder.finish()
        return count
    }
}
