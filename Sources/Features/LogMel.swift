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

/// Log-mel spectrograms as librosa computes them (`melspectrogram`, then the log), with the
/// matrix work through sgemm.
///
/// The STFT: each frame's `win_length` windowed samples (periodic Hann, scipy
/// `get_window('hann', win_length, fftbins=True)`, centred in n_fft as librosa's `pad_center`).
/// - n_fft a power of two (≥ 8): a real FFT written here — an n_fft/2-point complex radix-2 FFT
///   of the even/odd samples, then the split into the n_fft/2 + 1 bins — run on 64 frames at
///   once (each butterfly is a loop over the frames, which vectorises).
/// - other n_fft (400, 255, ...): a product with a [win_length, 2·(n_fft/2+1)] matrix of
///   window × cos | window × (−sin), by sgemm.
/// `tools/bench/logmel.py` measured both (BENCHMARKS.md): at n_fft 512 the FFT is the faster.
/// Then |X|^power, the mel filter bank by sgemm, and the log.
/// Memory: the filter bank, the DFT matrix or twiddles, one chunk of frames; the output is
/// [frames, n_mels]. Not thread-safe (the chunk buffers are reused); one per thread.
public final class LogMelSpectrogram {
    public let settings: LogMelSettings
    public let bins: Int
    /// [bins, n_mels]: librosa's mel filter bank, transposed.
    public let melMatrix: [Float]
    /// Uses the FFT (n_fft a power of two ≥ 8) unless turned off (tests and benchmarks compare).
    public let usesFFT: Bool
    let windowOffset: Int
    let window: [Float]
    /// [win_length, 2·bins]: window × cos | window × (−sin) (DFT path only).
    let dftMatrix: [Float]
    /// Frames per chunk: 64 on the FFT path (the butterflies' vector length), 256 for sgemm.
    let chunk: Int
    private var frames: [Float]
    private var spectrum: [Float]
    private var powerBuffer: [Float]
    // FFT path: M = n_fft/2 points, bit-reversed positions, twiddles e^{-2πij/M} and e^{-2πik/n_fft}.
    private let half: Int
    private let bitReverse: [Int]
    private let twiddleRe: [Float], twiddleIm: [Float]
    private let splitRe: [Float], splitIm: [Float]
    private var fftRe: [Float], fftIm: [Float]

    public init(settings: LogMelSettings, useFFT: Bool = true) throws {
        try settings.validate()
        self.settings = settings
        let n = settings.nFFT, w = settings.winLength
        bins = n / 2 + 1
        windowOffset = (n - w) / 2
        window = (0..<w).map { Float(0.5 - 0.5 * cos(2 * Double.pi * Double($0) / Double(w))) }
        usesFFT = useFFT && n >= 8 && n & (n - 1) == 0
        chunk = usesFFT ? 64 : 256
        let B = chunk
        if usesFFT {
            let m = n / 2
            half = m
            var bits = 0
            while (1 << bits) < m { bits += 1 }
            bitReverse = (0..<m).map { i in
                var r = 0, v = i
                for _ in 0..<bits { r = (r << 1) | (v & 1); v >>= 1 }
                return r
            }
            twiddleRe = (0..<m / 2).map { Float(cos(2 * Double.pi * Double($0) / Double(m))) }
            twiddleIm = (0..<m / 2).map { Float(-sin(2 * Double.pi * Double($0) / Double(m))) }
            splitRe = (0...m).map { Float(cos(2 * Double.pi * Double($0) / Double(n))) }
            splitIm = (0...m).map { Float(-sin(2 * Double.pi * Double($0) / Double(n))) }
            fftRe = [Float](repeating: 0, count: m * B)
            fftIm = [Float](repeating: 0, count: m * B)
            dftMatrix = []
            frames = [Float](repeating: 0, count: n)
            spectrum = []
        } else {
            half = 0
            bitReverse = []; twiddleRe = []; twiddleIm = []; splitRe = []; splitIm = []; fftRe = []; fftIm = []
            var dft = [Float](repeating: 0, count: w * 2 * bins)
            for i in 0..<w {
                let m = i + windowOffset
                for k in 0..<bins {
                    let r = (k * m) % n  // exact phase index
                    let angle = 2 * Double.pi * Double(r) / Double(n)
                    dft[i * 2 * bins + k] = Float(Double(window[i]) * cos(angle))
                    dft[i * 2 * bins + bins + k] = Float(-Double(window[i]) * sin(angle))
                }
            }
            dftMatrix = dft
            frames = [Float](repeating: 0, count: B * w)
            spectrum = [Float](repeating: 0, count: B * 2 * bins)
        }
        let mel = Self.melFilters(settings)
        var transposed = [Float](repeating: 0, count: bins * settings.nMels)
        for m in 0..<settings.nMels { for k in 0..<bins { transposed[k * settings.nMels + m] = mel[m * bins + k] } }
        melMatrix = transposed
        // [bins, B] on the FFT path (frames in columns), [B, bins] on the DFT path.
        powerBuffer = [Float](repeating: 0, count: B * bins)
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
        let nMels = s.nMels, bins = self.bins
        var start = 0
        powerBuffer.withUnsafeMutableBufferPointer { pw in
        melMatrix.withUnsafeBufferPointer { mel in
            while start < total {
                let b = min(chunk, total - start)
                let o = out.baseAddress! + start * nMels
                if usesFFT {
                    fftPower(samples, firstFrame: start, count: b, into: pw.baseAddress!)
                    // [bins, B] (frames in columns) → rows of the output.
                    BLAS.sgemm(transA: true, m: b, n: nMels, k: bins, a: pw.baseAddress!, lda: chunk,
                               b: mel.baseAddress!, c: o)
                } else {
                    dftPower(samples, firstFrame: start, count: b, into: pw.baseAddress!)
                    BLAS.sgemm(m: b, n: nMels, k: bins, a: pw.baseAddress!, b: mel.baseAddress!, c: o)
                }
                applyLog(o, count: b * nMels)
                start += b
            }
        }}
    }

    /// Start of frame `t` in signal coordinates (the first sample of its window span).
    @inline(__always)
    private func windowStart(_ t: Int) -> Int {
        t * settings.hopLength + (settings.center ? -(settings.nFFT / 2) : 0) + windowOffset
    }

    /// |X|^power from |X|² (one value).
    @inline(__always)
    private static func raise(_ squared: Float, _ power: Float) -> Float {
        if power == 2 { return squared }
        if power == 1 { return squared.squareRoot() }
        return Foundation.pow(squared.squareRoot(), power)
    }

    private func applyLog(_ o: UnsafeMutablePointer<Float>, count n: Int) {
        let logOffset = Float(settings.logOffset)
        switch settings.log {
        case .log: for i in 0..<n { o[i] = Foundation.log(o[i] + logOffset) }
        case .log10: for i in 0..<n { o[i] = Foundation.log10(o[i] + logOffset) }
        case .db:
            let scale = Float(20 / settings.power)
            for i in 0..<n { o[i] = scale * Foundation.log10(max(o[i], logOffset)) }
        }
    }

    /// DFT path: frames [count, win_length] × DFT matrix → |X|^power as [count, bins].
    private func dftPower(_ samples: UnsafeBufferPointer<Float>, firstFrame: Int, count b: Int, into p: UnsafeMutablePointer<Float>) {
        let w = settings.winLength, bins = self.bins, mode = settings.padMode, power = Float(settings.power)
        frames.withUnsafeMutableBufferPointer { fr in
        spectrum.withUnsafeMutableBufferPointer { sp in
        dftMatrix.withUnsafeBufferPointer { dft in
            for t in 0..<b {
                let first = windowStart(firstFrame + t)
                let row = fr.baseAddress! + t * w
                if first >= 0 && first + w <= samples.count {
                    row.update(from: samples.baseAddress! + first, count: w)
                } else {
                    for i in 0..<w { row[i] = Self.padded(samples, first + i, mode) }
                }
            }
            BLAS.sgemm(m: b, n: 2 * bins, k: w, a: fr.baseAddress!, b: dft.baseAddress!, c: sp.baseAddress!)
            for t in 0..<b {
                let re = sp.baseAddress! + t * 2 * bins, im = re + bins, q = p + t * bins
                for k in 0..<bins { q[k] = Self.raise(re[k] * re[k] + im[k] * im[k], power) }
            }
        }}}
    }

    /// FFT path: |X|^power of `count` frames as [bins, chunk] (frame t in column t).
    ///
    /// Real FFT of length N = 2M through one M-point complex FFT: z[n] = x[2n] + i·x[2n+1],
    /// Z = FFT_M(z), then X[k] = (Z[k] + Z*[M−k])/2 − i·e^{−2πik/N}·(Z[k] − Z*[M−k])/2, k = 0...M.
    private func fftPower(_ samples: UnsafeBufferPointer<Float>, firstFrame: Int, count b: Int, into p: UnsafeMutablePointer<Float>) {
        let B = chunk, m = half, n = settings.nFFT, w = settings.winLength, off = windowOffset
        let mode = settings.padMode, power = Float(settings.power)
        frames.withUnsafeMutableBufferPointer { fr in
        fftRe.withUnsafeMutableBufferPointer { reBuf in
        fftIm.withUnsafeMutableBufferPointer { imBuf in
        window.withUnsafeBufferPointer { win in
        bitReverse.withUnsafeBufferPointer { rev in
        twiddleRe.withUnsafeBufferPointer { twr in
        twiddleIm.withUnsafeBufferPointer { twi in
        splitRe.withUnsafeBufferPointer { spr in
        splitIm.withUnsafeBufferPointer { spi in
            let re = reBuf.baseAddress!, im = imBuf.baseAddress!
            let x = fr.baseAddress!
            // Load: the windowed frame (zeros outside the window), even/odd samples as one
            // complex number, at bit-reversed positions; frames beyond `count` are zero.
            for t in 0..<B {
                if t >= b {
                    for j in 0..<m { re[j * B + t] = 0; im[j * B + t] = 0 }
                    continue
                }
                let first = windowStart(firstFrame + t)
                for i in 0..<off { x[i] = 0 }
                for i in (off + w)..<n { x[i] = 0 }
                if first >= 0 && first + w <= samples.count {
                    let src = samples.baseAddress! + first
                    for i in 0..<w { x[off + i] = src[i] * win[i] }
                } else {
                    for i in 0..<w { x[off + i] = Self.padded(samples, first + i, mode) * win[i] }
                }
                for j in 0..<m {
                    let r = rev[j] * B + t
                    re[r] = x[2 * j]
                    im[r] = x[2 * j + 1]
                }
            }
            // Radix-2 butterflies, each over the B frames of a row.
            var size = 2
            while size <= m {
                let halfSize = size / 2, stride = m / size
                var base = 0
                while base < m {
                    for j in 0..<halfSize {
                        let wr = twr[j * stride], wi = twi[j * stride]
                        let a = (base + j) * B, c = (base + j + halfSize) * B
                        for t in 0..<B {
                            let br = re[c + t], bi = im[c + t]
                            let tr = wr * br - wi * bi
                            let ti = wr * bi + wi * br
                            let ar = re[a + t], ai = im[a + t]
                            re[c + t] = ar - tr; im[c + t] = ai - ti
                            re[a + t] = ar + tr; im[a + t] = ai + ti
                        }
                    }
                    base += size
                }
                size *= 2
            }
            // Split into the N/2 + 1 bins of the real signal; |X|^power into row k of p.
            for k in 0...m {
                let zk = (k % m) * B, zc = ((m - k) % m) * B
                let cr = spr[k], ci = spi[k]
                let row = p + k * B
                for t in 0..<B {
                    let ar = re[zk + t], ai = im[zk + t]
                    let br = re[zc + t], bi = -im[zc + t]   // conj(Z[M−k])
                    let er = 0.5 * (ar + br), ei = 0.5 * (ai + bi)
                    // O = −i·(Z[k] − conj(Z[M−k]))/2
                    let orr = 0.5 * (ai - bi), oi = -0.5 * (ar - br)
                    let xr = er + cr * orr - ci * oi
                    let xi = ei + cr * oi + ci * orr
                    row[t] = Self.raise(xr * xr + xi * xi, power)
                }
            }
        }}}}}}}}}
    }
}
