import Foundation
import Tensor

/// Every setting of a log-mel spectrogram, with the names `videobert audio` writes to its `.json`
/// and librosa's meaning (librosa 0.11, `librosa.feature.melspectrogram` + `librosa.filters.mel`,
/// https://github.com/librosa/librosa/blob/main/librosa/feature/spectral.py and
/// librosa/filters.py; the log as described at `LogMelSettings.Log`).
///
/// Defaults are VGGish's log-mel front end (https://github.com/tensorflow/models, files
/// research/audioset/vggish/vggish_params.py and mel_features.py): 16 kHz, 25 ms periodic Hann
/// window (400 samples) in a 512-point FFT, 10 ms hop (160), 64 mel bands from 125 to 7500 Hz on
/// the HTK mel scale without area normalisation, magnitude (power 1), frames without centre
/// padding, natural log with offset 0.01. One difference: VGGish builds its triangles on the mel
/// axis, librosa (and this code) on the Hz axis between the same mel points.
public struct LogMelSettings: Codable, Equatable, Sendable {
    public enum MelScale: String, Codable, Sendable, CaseIterable { case htk, slaney }
    public enum Norm: String, Codable, Sendable, CaseIterable { case slaney }
    /// How the signal is extended by n_fft/2 samples on each side when `center` (numpy.pad's modes
    /// that librosa.stft takes).
    public enum PadMode: String, Codable, Sendable, CaseIterable { case constant, reflect, edge, symmetric }
    /// `log`: ln(S + log_offset); `log10`: log10(S + log_offset); `db`: (20 / power)·log10(max(S,
    /// log_offset)), i.e. librosa's `power_to_db(S, ref=1, amin=log_offset, top_db=None)` for
    /// power 2 and `amplitude_to_db(S, ref=1, amin=log_offset, top_db=None)` for power 1.
    public enum Log: String, Codable, Sendable, CaseIterable { case log, log10, db }

    public var sampleRate = 16_000
    public var nFFT = 512
    public var winLength = 400
    public var hopLength = 160
    public var nMels = 64
    public var fMin = 125.0
    public var fMax = 7_500.0
    public var melScale = MelScale.htk
    /// nil: triangles of peak 1 (librosa `norm=None`); `.slaney`: each triangle divided by its width in Hz / 2.
    public var norm: Norm? = nil
    /// Exponent of the STFT magnitude: 1 magnitude, 2 power.
    public var power = 1.0
    public var center = false
    public var padMode = PadMode.constant
    public var log = Log.log
    public var logOffset = 0.01

    public init() {}

    enum CodingKeys: String, CodingKey {
        case sampleRate = "sample_rate", nFFT = "n_fft", winLength = "win_length", hopLength = "hop_length"
        case nMels = "n_mels", fMin = "f_min", fMax = "f_max", melScale = "mel_scale", norm, power, center
        case padMode = "pad_mode", log, logOffset = "log_offset"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        sampleRate = try c.decode(Int.self, forKey: .sampleRate)
        nFFT = try c.decode(Int.self, forKey: .nFFT)
        winLength = try c.decode(Int.self, forKey: .winLength)
        hopLength = try c.decode(Int.self, forKey: .hopLength)
        nMels = try c.decode(Int.self, forKey: .nMels)
        fMin = try c.decode(Double.self, forKey: .fMin)
        fMax = try c.decode(Double.self, forKey: .fMax)
        melScale = try c.decode(MelScale.self, forKey: .melScale)
        norm = try c.decodeIfPresent(Norm.self, forKey: .norm)
        power = try c.decode(Double.self, forKey: .power)
        center = try c.decode(Bool.self, forKey: .center)
        padMode = try c.decode(PadMode.self, forKey: .padMode)
        log = try c.decode(Log.self, forKey: .log)
        logOffset = try c.decode(Double.self, forKey: .logOffset)
    }

    /// Every key written, `norm` as JSON null when there is none.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(sampleRate, forKey: .sampleRate)
        try c.encode(nFFT, forKey: .nFFT)
        try c.encode(winLength, forKey: .winLength)
        try c.encode(hopLength, forKey: .hopLength)
        try c.encode(nMels, forKey: .nMels)
        try c.encode(fMin, forKey: .fMin)
        try c.encode(fMax, forKey: .fMax)
        try c.encode(melScale, forKey: .melScale)
        try c.encode(norm, forKey: .norm)
        try c.encode(power, forKey: .power)
        try c.encode(center, forKey: .center)
        try c.encode(padMode, forKey: .padMode)
        try c.encode(log, forKey: .log)
        try c.encode(logOffset, forKey: .logOffset)
    }

    /// The setting names, as in the JSON.
    public static let keys = ["sample_rate", "n_fft", "win_length", "hop_length", "n_mels", "f_min", "f_max",
                              "mel_scale", "norm", "power", "center", "pad_mode", "log", "log_offset"]

    /// Sets one setting from text (`key=value` on a command line); `norm` takes `null`/`none` or `slaney`.
    public mutating func set(_ key: String, _ value: String) throws {
        func int() throws -> Int {
            guard let v = Int(value) else { throw VideoBertError("\(key): expected an integer, got '\(value)'") }
            return v
        }
        func double() throws -> Double {
            guard let v = Double(value), v.isFinite else { throw VideoBertError("\(key): expected a number, got '\(value)'") }
            return v
        }
        func choice<E: RawRepresentable & CaseIterable>(_: E.Type) throws -> E where E.RawValue == String {
            guard let v = E(rawValue: value) else {
                throw VideoBertError("\(key): expected one of \(E.allCases.map(\.rawValue).joined(separator: ", ")), got '\(value)'")
            }
            return v
        }
        switch key {
        case "sample_rate": sampleRate = try int()
        case "n_fft": nFFT = try int()
        case "win_length": winLength = try int()
        case "hop_length": hopLength = try int()
        case "n_mels": nMels = try int()
        case "f_min": fMin = try double()
        case "f_max": fMax = try double()
        case "mel_scale": melScale = try choice(MelScale.self)
        case "norm": norm = (value == "null" || value == "none") ? nil : try choice(Norm.self)
        case "power": power = try double()
        case "center":
            guard let v = ["true": true, "false": false][value] else { throw VideoBertError("center: expected true or false, got '\(value)'") }
            center = v
        case "pad_mode": padMode = try choice(PadMode.self)
        case "log": log = try choice(Log.self)
        case "log_offset": logOffset = try double()
        default: throw VideoBertError("unknown log-mel setting '\(key)'; the settings are \(Self.keys.joined(separator: ", "))")
        }
    }

    /// Largest n_fft: the DFT matrix is win_length × (n_fft + 2) floats (at most 64 MiB).
    public static let maxFFT = 4_096

    /// Throws a one-line error for a setting out of range.
    public func validate() throws {
        func fail(_ s: String) -> VideoBertError { VideoBertError("log-mel settings: " + s) }
        guard (1_000...768_000).contains(sampleRate) else { throw fail("sample_rate must be 1000...768000 Hz, got \(sampleRate)") }
        guard (2...Self.maxFFT).contains(nFFT) else { throw fail("n_fft must be 2...\(Self.maxFFT), got \(nFFT)") }
        guard (1...nFFT).contains(winLength) else { throw fail("win_length must be 1...n_fft (\(nFFT)), got \(winLength)") }
        guard (1...1_000_000).contains(hopLength) else { throw fail("hop_length must be 1...1000000, got \(hopLength)") }
        guard (1...1_024).contains(nMels) else { throw fail("n_mels must be 1...1024, got \(nMels)") }
        let nyquist = Double(sampleRate) / 2
        guard fMin.isFinite, fMax.isFinite, fMin >= 0, fMin < fMax, fMax <= nyquist else {
            throw fail("need 0 <= f_min < f_max <= sample_rate/2 (\(nyquist)), got f_min \(fMin), f_max \(fMax)")
        }
        guard power.isFinite, power > 0, power <= 8 else { throw fail("power must be in (0, 8], got \(power)") }
        guard logOffset.isFinite, logOffset > 0 else { throw fail("log_offset must be positive, got \(logOffset)") }
    }

    /// Frames for `samples` samples: 1 + ⌊(L + 2⌊n_fft/2⌋ − n_fft) / hop⌋ when centred,
    /// 1 + ⌊(L − n_fft) / hop⌋ otherwise; 0 when the (padded) signal is shorter than n_fft or empty.
    public func frameCount(samples: Int) -> Int {
        guard samples > 0 else { return 0 }
        let length = center ? samples + 2 * (nFFT / 2) : samples
        return length < nFFT ? 0 : 1 + (length - nFFT) / hopLength
    }
}

/// Log-mel spectrograms as librosa computes them (`melspectrogram`, then the log), through sgemm.
///
/// The STFT is a DFT matrix product: each chunk of frames (only the `win_length` samples the
/// window covers) times a [win_length, 2·(n_fft/2+1)] matrix holding the periodic Hann window
/// (scipy `get_window('hann', win_length, fftbins=True)`, centred in n_fft as librosa's
/// `pad_center`) times cos and −sin; then |X|^power, the mel matrix by sgemm, and the log.
/// Chosen over an FFT: measured in `tools/bench` (`bench logmel`).
/// Memory: the two matrices and one chunk of 256 frames; the output is [frames, n_mels].
public final class LogMelSpectrogram {
    public let settings: LogMelSettings
    public let bins: Int
    /// [bins, n_mels]: librosa's mel filter bank, transposed.
    public let melMatrix: [Float]
    /// [win_length, 2·bins]: window × cos | window × (−sin).
    let dftMatrix: [Float]
    let windowOffset: Int
    static let chunk = 256
    private var frames: [Float]
    private var spectrum: [Float]
    private var powerBuffer: [Float]

    public init(settings: LogMelSettings) throws {
        try settings.validate()
        self.settings = settings
        let n = settings.nFFT, w = settings.winLength
        bins = n / 2 + 1
        windowOffset = (n - w) / 2
        // Periodic Hann of length w: 0.5 − 0.5·cos(2πi/w).
        var dft = [Float](repeating: 0, count: w * 2 * bins)
        for i in 0..<w {
            let window = 0.5 - 0.5 * cos(2 * Double.pi * Double(i) / Double(w))
            let m = i + windowOffset
            for k in 0..<bins {
                let r = (k * m) % n  // exact phase index
                let angle = 2 * Double.pi * Double(r) / Double(n)
                dft[i * 2 * bins + k] = Float(window * cos(angle))
                dft[i * 2 * bins + bins + k] = Float(-window * sin(angle))
            }
        }
        dftMatrix = dft
        let mel = Self.melFilters(settings)
        var transposed = [Float](repeating: 0, count: bins * settings.nMels)
        for m in 0..<settings.nMels { for k in 0..<bins { transposed[k * settings.nMels + m] = mel[m * bins + k] } }
        melMatrix = transposed
        frames = [Float](repeating: 0, count: Self.chunk * w)
        spectrum = [Float](repeating: 0, count: Self.chunk * 2 * bins)
        powerBuffer = [Float](repeating: 0, count: Self.chunk * bins)
    }

    // MARK: - mel filter bank (librosa/filters.py `mel`, librosa/core/convert.py `hz_to_mel`, `mel_to_hz`)

    static func hzToMel(_ f: Double, _ scale: LogMelSettings.MelScale) -> Double {
        switch scale {
        case .htk: return 2595 * log10(1 + f / 700)
        case .slaney:
            let fSp = 200.0 / 3, minLogHz = 1000.0, minLogMel = minLogHz / fSp, logStep = log(6.4) / 27
            return f >= minLogHz ? minLogMel + Foundation.log(f / minLogHz) / logStep : f / fSp
        }
    }

    static func melToHz(_ m: Double, _ scale: LogMelSettings.MelScale) -> Double {
        switch scale {
        case .htk: return 700 * (pow(10, m / 2595) - 1)
        case .slaney:
            let fSp = 200.0 / 3, minLogHz = 1000.0, minLogMel = minLogHz / fSp, logStep = log(6.4) / 27
            return m >= minLogMel ? minLogHz * exp(logStep * (m - minLogMel)) : fSp * m
        }
    }

    /// [n_mels, bins], computed in double and rounded to float as librosa's (dtype float32).
    public static func melFilters(_ s: LogMelSettings) -> [Float] {
        let bins = s.nFFT / 2 + 1
        let fftFreqs = (0..<bins).map { Double($0) * Double(s.sampleRate) / Double(s.nFFT) }
        let lo = hzToMel(s.fMin, s.melScale), hi = hzToMel(s.fMax, s.melScale)
        let points = s.nMels + 2
        let melF = (0..<points).map { melToHz(lo + (hi - lo) * Double($0) / Double(points - 1), s.melScale) }
        var weights = [Float](repeating: 0, count: s.nMels * bins)
        for m in 0..<s.nMels {
            let lowerWidth = melF[m + 1] - melF[m], upperWidth = melF[m + 2] - melF[m + 1]
            let scale = s.norm == .slaney ? 2 / (melF[m + 2] - melF[m]) : 1
            for k in 0..<bins {
                let lower = -(melF[m] - fftFreqs[k]) / lowerWidth
                let upper = (melF[m + 2] - fftFreqs[k]) / upperWidth
                weights[m * bins + k] = Float(max(0, min(lower, upper)) * scale)
            }
        }
        return weights
    }

    // MARK: - spectrogram

    /// Sample `j` of the signal extended as numpy.pad extends it (`j` may be out of range).
    @inline(__always)
    static func padded(_ x: UnsafeBufferPointer<Float>, _ j: Int, _ mode: LogMelSettings.PadMode) -> Float {
        let n = x.count
        if j >= 0 && j < n { return x[j] }
        switch mode {
        case .constant: return 0
        case .edge: return x[j < 0 ? 0 : n - 1]
        case .reflect:
            if n == 1 { return x[0] }
            let period = 2 * (n - 1)
            var r = ((j % period) + period) % period
            if r >= n { r = period - r }
            return x[r]
        case .symmetric:
            let period = 2 * n
            var r = ((j % period) + period) % period
            if r >= n { r = period - 1 - r }
            return x[r]
        }
    }

    /// The log-mel spectrogram of `samples` (mono, at `settings.sampleRate`): float32
    /// [frames, n_mels] row-major, frames = `settings.frameCount(samples:)`.
    public func compute(_ samples: UnsafeBufferPointer<Float>) -> [Float] {
        let count = settings.frameCount(samples: samples.count)
        var out = [Float](repeating: 0, count: count * settings.nMels)
        out.withUnsafeMutableBufferPointer { compute(samples, into: $0) }
        return out
    }

    public func compute(_ samples: [Float]) -> [Float] {
        samples.withUnsafeBufferPointer { compute($0) }
    }

    /// Writes the spectrogram into `out` (at least frames × n_mels floats).
    public func compute(_ samples: UnsafeBufferPointer<Float>, into out: UnsafeMutableBufferPointer<Float>) {
        let s = settings
        let total = s.frameCount(samples: samples.count)
        precondition(out.count >= total * s.nMels, "output too small for \(total) frames")
        let w = s.winLength, hop = s.hopLength, nMels = s.nMels, bins = self.bins
        let shift = (s.center ? -(s.nFFT / 2) : 0) + windowOffset
        let mode = s.padMode
        let power = Float(s.power)
        let logOffset = Float(s.logOffset)
        let dbScale = Float(20 / s.power)
        var start = 0
        frames.withUnsafeMutableBufferPointer { fr in
        spectrum.withUnsafeMutableBufferPointer { sp in
        powerBuffer.withUnsafeMutableBufferPointer { pw in
        dftMatrix.withUnsafeBufferPointer { dft in
        melMatrix.withUnsafeBufferPointer { mel in
            while start < total {
                let b = min(Self.chunk, total - start)
                for t in 0..<b {
                    let first = (start + t) * hop + shift
                    let row = fr.baseAddress! + t * w
                    if first >= 0 && first + w <= samples.count {
                        row.update(from: samples.baseAddress! + first, count: w)
                    } else {
                        for i in 0..<w { row[i] = Self.padded(samples, first + i, mode) }
                    }
                }
                BLAS.sgemm(m: b, n: 2 * bins, k: w, a: fr.baseAddress!, b: dft.baseAddress!, c: sp.baseAddress!)
                for t in 0..<b {
                    let re = sp.baseAddress! + t * 2 * bins, im = re + bins, p = pw.baseAddress! + t * bins
                    if power == 2 {
                        for k in 0..<bins { p[k] = re[k] * re[k] + im[k] * im[k] }
                    } else if power == 1 {
                        for k in 0..<bins { p[k] = (re[k] * re[k] + im[k] * im[k]).squareRoot() }
                    } else {
                        for k in 0..<bins { p[k] = Foundation.pow((re[k] * re[k] + im[k] * im[k]).squareRoot(), power) }
                    }
                }
                let o = out.baseAddress! + start * nMels
                BLAS.sgemm(m: b, n: nMels, k: bins, a: pw.baseAddress!, b: mel.baseAddress!, c: o)
                let n = b * nMels
                switch s.log {
                case .log: for i in 0..<n { o[i] = Foundation.log(o[i] + logOffset) }
                case .log10: for i in 0..<n { o[i] = Foundation.log10(o[i] + logOffset) }
                case .db: for i in 0..<n { o[i] = dbScale * Foundation.log10(max(o[i], logOffset)) }
                }
                start += b
            }
        }}}}}
    }
}
