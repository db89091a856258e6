import Foundation
import Tensor

/// The built-in audio descriptor of a clip: its log-mel spectrogram (`LogMelSpectrogram` with the
/// given settings; by default VGGish's front end: 16 kHz, 25 ms windows every 10 ms, 64 HTK mel
/// bands from 125 to 7500 Hz, ln(magnitude + 0.01)) summarised over time.
///
/// | dims            | what                                                            |
/// |-----------------|-----------------------------------------------------------------|
/// | 0 ..< n_mels    | mean over the clip's frames of each band's log-mel value         |
/// | n_mels ..< 2·n_mels | standard deviation over the frames of each band (how the sound changes) |
///
/// No weights, deterministic. A clip shorter than one window (n_fft samples) is padded with zeros
/// to n_fft. A clip without sound (silence, or no audio stream: zeros) gives the log of the
/// offset in every mean dimension and 0 deviation. Not thread-safe: one per thread.
public final class AudioDescriptor {
    public let settings: LogMelSettings
    public var dimension: Int { 2 * settings.nMels }
    private let spectrogram: LogMelSpectrogram
    private var padded: [Float]

    public init(settings: LogMelSettings = LogMelSettings()) throws {
        self.settings = settings
        spectrogram = try LogMelSpectrogram(settings: settings)
        padded = [Float](repeating: 0, count: settings.nFFT)
    }

    /// The descriptor of one clip's samples (mono, at `settings.sampleRate`) into `out` (`dimension` floats).
    public func compute(_ samples: UnsafeBufferPointer<Float>, out: UnsafeMutableBufferPointer<Float>) {
        precondition(out.count >= dimension, "audio descriptor needs \(dimension) floats")
        let nMels = settings.nMels
        let mel: [Float]
        if settings.frameCount(samples: samples.count) == 0 {
            for i in 0..<padded.count { padded[i] = i < samples.count ? samples[i] : 0 }
            mel = padded.withUnsafeBufferPointer { spectrogram.compute($0) }
        } else {
            mel = spectrogram.compute(samples)
        }
        let frames = mel.count / nMels
        mel.withUnsafeBufferPointer { m in
            for b in 0..<nMels {
                var sum = 0.0
                for t in 0..<frames { sum += Double(m[t * nMels + b]) }
                let mean = sum / Double(max(frames, 1))
                var squares = 0.0
                for t in 0..<frames { let d = Double(m[t * nMels + b]) - mean; squares += d * d }
                out[b] = Float(mean)
                out[nMels + b] = Float((squares / Double(max(frames, 1))).squareRoot())
            }
        }
    }

    public func compute(_ samples: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: dimension)
        samples.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { compute(s, out: $0) } }
        return out
    }
}
