import Foundation
import XCTest
@testable import Features
import Tensor

/// Log-mel spectrograms against librosa 0.11 (`melspectrogram`, then the log) on the fixture that
/// tools/fixtures/logmel.py writes: within 1e-3 absolute on the log scale (issue 17).
final class LogMelTests: XCTestCase {
    struct Case: Decodable {
        var name: String
        var settings: LogMelSettings
        var frames: Int
        var filter_bank: String?
    }
    struct Cases: Decodable {
        var librosa: String
        var signal: String
        var cases: [Case]
    }

    func resource(_ name: String) throws -> String {
        try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Resources"),
                      "missing fixture \(name); run tools/fixtures/logmel.py").path
    }

    func loadCases() throws -> (Cases, [Float]) {
        let cases = try JSON.decode(Cases.self, from: try resource("logmel_cases.json"))
        let signal = try NPY.read(try resource(cases.signal)).floats()
        return (cases, signal)
    }

    func testMatchesLibrosa() throws {
        let (cases, signal) = try loadCases()
        XCTAssertEqual(cases.cases.count, 6)
        for c in cases.cases {
            let reference = try NPY.read(try resource("logmel_\(c.name).npy"))
            XCTAssertEqual(reference.shape, [c.frames, c.settings.nMels], c.name)
            let expected = try reference.floats()
            XCTAssertEqual(c.settings.frameCount(samples: signal.count), c.frames, c.name)
            // Both STFT paths (the FFT applies to power-of-two n_fft only).
            for useFFT in [true, false] {
                let spectrogram = try LogMelSpectrogram(settings: c.settings, useFFT: useFFT)
                let ours = spectrogram.compute(signal)
                XCTAssertEqual(ours.count, expected.count, c.name)
                var worst: Float = 0
                for i in 0..<min(ours.count, expected.count) { worst = max(worst, abs(ours[i] - expected[i])) }
                XCTAssertLessThan(worst, 1e-3, "\(c.name) (\(spectrogram.usesFFT ? "FFT" : "DFT")): largest difference from librosa \(cases.librosa)")
                // Computing again reuses the buffers and gives the same bytes.
                XCTAssertEqual(spectrogram.compute(signal), ours, c.name)
            }
            let n = c.settings.nFFT
            XCTAssertEqual(try LogMelSpectrogram(settings: c.settings).usesFFT, n & (n - 1) == 0, c.name)
        }
    }

    func testMelFilterBankMatchesLibrosa() throws {
        let (cases, _) = try loadCases()
        var checked = 0
        for c in cases.cases {
            guard let file = c.filter_bank else { continue }
            let expected = try NPY.read(try resource(file)).floats()
            let ours = LogMelSpectrogram.melFilters(c.settings)
            XCTAssertEqual(ours.count, expected.count, c.name)
            for i in 0..<min(ours.count, expected.count) {
                XCTAssertEqual(ours[i], expected[i], accuracy: 1e-6 * max(1, abs(expected[i])), "\(c.name) [\(i)]")
            }
            checked += 1
        }
        XCTAssertEqual(checked, 2)
    }

    /// A pure tone puts its energy in the band around its frequency.
    func testToneLandsInItsBand() throws {
        var s = LogMelSettings()
        s.nMels = 32
        let tone = (0..<16_000).map { Float(0.5 * sin(2 * Double.pi * 1_000 * Double($0) / 16_000)) }
        let out = try LogMelSpectrogram(settings: s).compute(tone)
        let frames = s.frameCount(samples: tone.count)
        XCTAssertEqual(frames, 1 + (16_000 - 512) / 160)
        let row = Array(out[(frames / 2) * 32..<(frames / 2 + 1) * 32])
        let peak = row.indices.max { row[$0] < row[$1] }!
        // Band centres on the HTK scale from 125 to 7500 Hz: the band whose centre is nearest 1 kHz.
        let lo = LogMelSpectrogram.hzToMel(125, .htk), hi = LogMelSpectrogram.hzToMel(7_500, .htk)
        let centres = (1...32).map { LogMelSpectrogram.melToHz(lo + (hi - lo) * Double($0) / 33, .htk) }
        let nearest = centres.indices.min { abs(centres[$0] - 1_000) < abs(centres[$1] - 1_000) }!
        XCTAssertEqual(peak, nearest)
    }

    /// The FFT and DFT paths agree on power-of-two sizes, chunk edges and partial chunks included.
    func testFFTEqualsDFT() throws {
        var rng = SeededRNG(seed: 5)
        let signal = (0..<20_000).map { _ in Float.random(in: -1...1, using: &rng) }
        for (n, w, hop, center) in [(8, 8, 3, true), (64, 50, 7, true), (1024, 700, 100, false), (4096, 4096, 200, true)] {
            var s = LogMelSettings()
            s.nFFT = n; s.winLength = w; s.hopLength = hop; s.center = center; s.nMels = 20
            s.fMin = 0; s.fMax = 8_000; s.power = 2; s.log = .log10; s.logOffset = 1e-6; s.padMode = .reflect
            let fft = try LogMelSpectrogram(settings: s, useFFT: true)
            XCTAssertTrue(fft.usesFFT)
            let a = fft.compute(signal), b = try LogMelSpectrogram(settings: s, useFFT: false).compute(signal)
            XCTAssertEqual(a.count, b.count)
            XCTAssertGreaterThan(a.count / 20, 64, "more than one chunk")
            var worst: Float = 0
            for i in 0..<a.count { worst = max(worst, abs(a[i] - b[i])) }
            XCTAssertLessThan(worst, 1e-4, "n_fft \(n)")
        }
    }

    func testFrameCounts() {
        var s = LogMelSettings()
        XCTAssertEqual(s.frameCount(samples: 0), 0)
        XCTAssertEqual(s.frameCount(samples: 511), 0)
        XCTAssertEqual(s.frameCount(samples: 512), 1)
        XCTAssertEqual(s.frameCount(samples: 672), 2)
        s.center = true
        XCTAssertEqual(s.frameCount(samples: 1), 1)
        XCTAssertEqual(s.frameCount(samples: 16_000), 101)
        s.nFFT = 255
        s.winLength = 255
        XCTAssertEqual(s.frameCount(samples: 160), 1)
        XCTAssertEqual(s.frameCount(samples: 161), 2)
    }

    /// Signals shorter than the padding: every pad mode repeats as numpy.pad does
    /// (expected values: `numpy.pad([1, 2, 3], (4, 4), mode=...)`, numpy 2.4).
    func testPaddingOfShortSignals() throws {
        let x: [Float] = [1, 2, 3]
        let expected: [LogMelSettings.PadMode: [Float]] = [
            .constant: [0, 0, 0, 0, 1, 2, 3, 0, 0, 0, 0],
            .edge: [1, 1, 1, 1, 1, 2, 3, 3, 3, 3, 3],
            .reflect: [1, 2, 3, 2, 1, 2, 3, 2, 1, 2, 3],
            .symmetric: [3, 3, 2, 1, 1, 2, 3, 3, 2, 1, 1],
        ]
        for (mode, want) in expected {
            let got = x.withUnsafeBufferPointer { p in (-4...6).map { LogMelSpectrogram.padded(p, $0, mode) } }
            XCTAssertEqual(got, want, "\(mode)")
        }
    }

    func testSettingsJSONHasEveryKey() throws {
        let text = try JSON.string(LogMelSettings())
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        XCTAssertEqual(Set(object.keys), Set(LogMelSettings.keys))
        XCTAssertTrue(object["norm"] is NSNull, text)
        var s = LogMelSettings()
        try s.set("norm", "slaney")
        try s.set("mel_scale", "slaney")
        try s.set("center", "true")
        try s.set("log", "db")
        try s.set("f_max", "8000")
        let back = try JSONDecoder().decode(LogMelSettings.self, from: Data(try JSON.string(s).utf8))
        XCTAssertEqual(back, s)
    }

    func testBadSettings() {
        func message(_ body: () throws -> Void) -> String {
            do { try body() } catch { return "\(error)" }
            return ""
        }
        var s = LogMelSettings()
        XCTAssertTrue(message { try s.set("n_ffts", "3") }.contains("unknown log-mel setting 'n_ffts'"))
        XCTAssertTrue(message { try s.set("n_fft", "x") }.contains("expected an integer"))
        XCTAssertTrue(message { try s.set("log", "ln") }.contains("log, log10, db"))
        XCTAssertTrue(message { try s.set("f_min", "nan") }.contains("expected a number"))
        for (key, value, says) in [("n_fft", "100000", "n_fft must be"), ("win_length", "1024", "win_length"),
                                   ("hop_length", "0", "hop_length"), ("f_max", "9000", "f_max"),
                                   ("log_offset", "0", "log_offset"), ("n_mels", "0", "n_mels"),
                                   ("sample_rate", "100", "sample_rate"), ("power", "-1", "power")] {
            var t = LogMelSettings()
            XCTAssertTrue(message { try t.set(key, value); _ = try LogMelSpectrogram(settings: t) }.contains(says), key)
        }
    }
}
