import CFFmpeg
import Foundation
import Tensor

/// A frame rate as an exact fraction (frames per second = num / den).
///
/// Parsed the way FFmpeg's `fps` filter reads its `fps` option (libavfilter/vf_fps.c,
/// `config_props`): the text is evaluated to a double and turned into a fraction with
/// `av_d2q(value, INT_MAX)`, so "20", "29.97" (= 2997/100) and "30000/1001" mean what they
/// mean to `ffmpeg -vf fps=...`.
public struct FrameRate: Sendable, Equatable, Hashable, CustomStringConvertible {
    public let num: Int32
    public let den: Int32

    public init(num: Int32, den: Int32) {
        precondition(num > 0 && den > 0, "a frame rate is positive")
        let g = FrameRate.gcd(num, den)
        self.num = num / g
        self.den = den / g
    }

    /// Frames per second as a whole number (e.g. `FrameRate(20)`).
    public init(_ framesPerSecond: Int) {
        self.init(num: Int32(framesPerSecond), den: 1)
    }

    /// The nearest fraction to `framesPerSecond`, exactly as `av_d2q(value, INT_MAX)`.
    public init(approximating framesPerSecond: Double) {
        precondition(framesPerSecond > 0 && framesPerSecond.isFinite, "a frame rate is positive")
        let q = av_d2q(framesPerSecond, Int32.max)
        self.init(num: q.num, den: q.den)
    }

    /// "20", "29.97", "30000/1001". Throws (naming `what`) on anything else or a rate <= 0.
    public init(parsing text: String, what: String = "--fps") throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let value: Double?
        if let slash = trimmed.firstIndex(of: "/") {
            if let n = Double(trimmed[..<slash]), let d = Double(trimmed[trimmed.index(after: slash)...]), d != 0 {
                value = n / d
            } else {
                value = nil
            }
        } else {
            value = Double(trimmed)
        }
        guard let v = value, v.isFinite, v > 0 else {
            throw VideoBertError("\(what): expected a positive frame rate like 20, 29.97 or 30000/1001, got '\(text)'")
        }
        guard v <= 10_000 else {
            throw VideoBertError("\(what): frame rate \(text) is above 10000 frames per second")
        }
        self.init(approximating: v)
    }

    public var framesPerSecond: Double { Double(num) / Double(den) }
    /// The duration of one frame, which is also the time base FFmpeg's fps filter outputs in.
    var timeBase: AVRational { AVRational(num: den, den: num) }

    public var description: String { den == 1 ? "\(num)" : "\(num)/\(den)" }

    /// Frames in a clip of `seconds`: round(seconds × fps), at least 1.
    public func frames(inSeconds seconds: Double) -> Int {
        max(1, Int((seconds * framesPerSecond).rounded()))
    }

    /// Time in seconds of output frame `index` (frames are at index / fps exactly).
    public func time(ofFrame index: Int) -> Double {
        Double(index) * Double(den) / Double(num)
    }

    private static func gcd(_ a: Int32, _ b: Int32) -> Int32 {
        var (x, y) = (a, b)
        while y != 0 { (x, y) = (y, x % y) }
        return max(x, 1)
    }
}

/// An exact fraction, for time bases and native frame rates as FFmpeg reports them.
public struct Rational: Sendable, Equatable, Hashable, CustomStringConvertible {
    public let num: Int32
    public let den: Int32
    public init(num: Int32, den: Int32) { self.num = num; self.den = den }
    init(_ q: AVRational) { self.num = q.num; self.den = q.den }
    var av: AVRational { AVRational(num: num, den: den) }
    /// num / den; 0 when den is 0 (FFmpeg's "unknown").
    public var value: Double { den == 0 ? 0 : Double(num) / Double(den) }
    public var description: String { "\(num)/\(den)" }
}
