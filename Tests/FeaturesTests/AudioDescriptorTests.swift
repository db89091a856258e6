import Foundation
import XCTest
@testable import Features
import Tensor

final class AudioDescriptorTests: XCTestCase {
    /// Means and deviations over time of the clip's log-mel spectrogram, band by band.
    func testIsTheMeanAndDeviationOfTheLogMel() throws {
        let d = try AudioDescriptor()
        XCTAssertEqual(d.dimension, 128)
        var rng = SeededRNG(seed: 9)
        let clip = (0..<24_000).map { i in Float(0.3 * sin(Double(i) * 0.2)) + Float.random(in: -0.05...0.05, using: &rng) }
        let out = d.compute(clip)
        let mel = try LogMelSpectrogram(settings: LogMelSettings()).compute(clip)
        let frames = mel.count / 64
        XCTAssertEqual(frames, 1 + (24_000 - 512) / 160)
        for b in [0, 17, 63] {
            let column = (0..<frames).map { Double(mel[$0 * 64 + b]) }
            let mean = column.reduce(0, +) / Double(frames)
            let sd = (column.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(frames)).squareRoot()
            XCTAssertEqual(Double(out[b]), mean, accuracy: 1e-4)
            XCTAssertEqual(Double(out[64 + b]), sd, accuracy: 1e-4)
        }
    }

    func testSilenceAndShortClips() throws {
        let d = try AudioDescriptor()
        let silence = d.compute([Float](repeating: 0, count: 8_000))
        XCTAssertTrue(silence[0..<64].allSatisfy { abs($0 - Float(log(0.01))) < 1e-6 })
        XCTAssertTrue(silence[64...].allSatisfy { $0 == 0 })
        // Shorter than one window: padded to n_fft, one frame, no deviation.
        let short = d.compute((0..<100).map { Float(sin(Double($0))) })
        XCTAssertTrue(short[64...].allSatisfy { $0 == 0 })
        XCTAssertGreaterThan(short[0..<64].max()!, Float(log(0.01)) + 0.5)
        XCTAssertEqual(d.compute([]), silence)
    }
}
