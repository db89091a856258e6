import Foundation
import XCTest
@testable import Media
import Tensor

final class EncoderTests: XCTestCase {
    var scratch: ScratchFolder!

    override func setUpWithError() throws { scratch = try ScratchFolder() }
    override func tearDown() { scratch?.cleanUp() }

    /// Encode the pattern, decode at the native rate: every frame comes back, in order, at its
    /// time, close to what went in (lossy codecs), and the reader reports the stream's facts.
    func testRoundTripInSeveralContainers() throws {
        // Lossy 4:2:0 coding of a tiny colourful picture: a few levels off on average.
        let cases: [(String, String?, Double)] = [
            ("rt.mp4", nil, 8), ("rt.mkv", nil, 8), ("rt.avi", "mpeg4", 8), ("rt.mov", "mjpeg", 8),
        ]
        for (name, codec, tolerance) in cases {
            let path = scratch.file(name)
            let count = try TestPattern.writeVideo(path: path, width: 48, height: 32, fps: FrameRate(15),
                                                   seconds: 2, codec: codec, seed: 1)
            XCTAssertEqual(count, 30)
            XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".tmp"), "no temporary file left")
            let reader = try VideoReader(path: path)
            XCTAssertEqual(reader.width, 48, name)
            XCTAssertEqual(reader.height, 32, name)
            XCTAssertEqual(reader.nativeFrameRate?.value ?? 0, 15, accuracy: 1e-9, name)
            XCTAssertEqual(reader.duration ?? 0, 2, accuracy: 0.1, name)
            XCTAssertEqual(reader.codecName, codec ?? (VideoEncoder.defaultCodec == "libx264" ? "h264" : "mpeg4"), name)
            let frames = try decodeFrames(path, fps: FrameRate(15), width: 48, height: 32)
            XCTAssertEqual(frames.count, 30, name)
            XCTAssertLessThanOrEqual(frames.sourceTimes[0], 1.0 / 15 + 1e-6, name)
            for i in 0..<frames.count {
                let expected = TestPattern.frame(i, width: 48, height: 32, seed: 1)
                let got = frames.pixels[(i * 4608)..<((i + 1) * 4608)]
                let mad = meanAbsoluteDifference(got, expected[...])
                XCTAssertLessThan(mad, tolerance, "\(name) frame \(i)")
                // ... and closer to its own frame than to its neighbours.
                for j in [i - 2, i - 1, i + 1, i + 2] where j >= 0 && j < 30 {
                    let neighbour = TestPattern.frame(j, width: 48, height: 32, seed: 1)
                    XCTAssertLessThan(mad, meanAbsoluteDifference(got, neighbour[...]), "\(name) frame \(i) vs \(j)")
                }
                // AVI has no presentation timestamps: with B-frames the CLI's (and our) times
                // start one frame late, from the decoder's reordering delay.
                XCTAssertEqual(frames.sourceTimes[i] - frames.sourceTimes[0], Double(i) / 15, accuracy: 1e-3, name)
                XCTAssertEqual(frames.times[i] - frames.times[0], Double(i) / 15, accuracy: 1e-9, name)
            }
        }
    }

    func testMPEG4FallbackCodecInMP4() throws {
        let path = scratch.file("m4.mp4")
        try TestPattern.writeVideo(path: path, width: 32, height: 32, fps: FrameRate(10), seconds: 1, codec: "mpeg4")
        let reader = try VideoReader(path: path)
        XCTAssertEqual(reader.codecName, "mpeg4")
        XCTAssertEqual(try decodeFrames(path, fps: FrameRate(10), width: 32, height: 32).count, 10)
    }

    /// Explicit frame times (variable rate) and a start offset survive the file.
    func testExplicitTimesAndStartOffset() throws {
        let times = [0.0, 0.1, 0.15, 0.5, 0.52, 0.9]
        let path = scratch.file("vfr.mkv")
        try TestPattern.writeVideo(path: path, width: 32, height: 24, fps: FrameRate(10), seconds: 0, times: times,
                                   timeBase: Rational(num: 1, den: 1000), startTime: 2, audio: AudioTrack(seconds: 3))
        let reader = try VideoReader(path: path)
        XCTAssertEqual(reader.containerStartTime, 0, accuracy: 1e-3)
        XCTAssertEqual(reader.startTime ?? -1, 2, accuracy: 1e-3)
        // At 100 fps each source frame is shown from its own time on.
        let frames = try decodeFrames(path, fps: FrameRate(100), width: 32, height: 24)
        var seen: [Double] = []
        for t in frames.sourceTimes where seen.last.map({ abs($0 - t) > 1e-9 }) ?? true { seen.append(t) }
        XCTAssertEqual(seen.count, times.count)
        for (a, b) in zip(seen, times) { XCTAssertEqual(a, b + 2, accuracy: 1e-3) }
        // The last frame lasts one frame of the nominal rate (0.1 s): 3.0 s of output at 100 fps.
        XCTAssertEqual(frames.count, 300)
    }

    func testEncoderErrors() throws {
        XCTAssertThrowsError(try VideoEncoder(path: scratch.file("x.nosuchext"), width: 8, height: 8, frameRate: FrameRate(10)))
        XCTAssertThrowsError(try VideoEncoder(path: scratch.file("x.mp4"), width: 8, height: 8, frameRate: FrameRate(10), codec: "no-such-codec"))
        let encoder = try VideoEncoder(path: scratch.file("order.mkv"), width: 8, height: 8, frameRate: FrameRate(10),
                                       timeBase: Rational(num: 1, den: 1000))
        let rgb = [UInt8](repeating: 100, count: 8 * 8 * 3)
        try encoder.append(rgb: rgb, time: 0.5)
        XCTAssertThrowsError(try encoder.append(rgb: rgb, time: 0.4)) { e in
            XCTAssertTrue("\(e)".contains("must increase"), "\(e)")
        }
        encoder.abandon()
        let left = try FileManager.default.contentsOfDirectory(atPath: scratch.path)
        XCTAssertEqual(left, [], "an abandoned encoder leaves no file")
    }
}

final class ClipTests: XCTestCase {
    var scratch: ScratchFolder!

    override func setUpWithError() throws { scratch = try ScratchFolder() }
    override func tearDown() { scratch?.cleanUp() }

    /// 3.2 s at 25 fps → 32 frames at 10 fps → clips of 1.5 s (15 frames): two full, one partial of 2.
    func testClipsAreConsecutiveFramesWithTheirTimes() throws {
        let path = scratch.file("clips.mp4")
        try TestPattern.writeVideo(path: path, width: 40, height: 30, fps: FrameRate(25), seconds: 3.2)
        let frames = try decodeFrames(path, fps: FrameRate(10), width: 20, height: 16)
        XCTAssertEqual(frames.count, 32)
        let frameBytes = 20 * 16 * 3
        for keepPartial in [false, true] {
            var clips: [(index: Int, start: Double, end: Double, count: Int, pixels: [UInt8])] = []
            let reader = try VideoReader(path: path)
            let summary = try reader.forEachClip(fps: FrameRate(10), clipSeconds: 1.5, width: 20, height: 16,
                                                 keepPartialClip: keepPartial) { clip in
                XCTAssertEqual(clip.pixels.count, clip.frameCount * frameBytes)
                XCTAssertEqual(Array(clip.frame(clip.frameCount - 1)), Array(clip.pixels.suffix(frameBytes)))
                clips.append((clip.index, clip.startTime, clip.endTime, clip.frameCount, Array(clip.pixels)))
            }
            XCTAssertEqual(summary.frames, 32)
            XCTAssertEqual(clips.map(\.index), keepPartial ? [0, 1, 2] : [0, 1])
            XCTAssertEqual(clips.map(\.count), keepPartial ? [15, 15, 2] : [15, 15])
            for (k, clip) in clips.enumerated() {
                XCTAssertEqual(clip.start, Double(k) * 1.5, accuracy: 1e-9)
                XCTAssertEqual(clip.end, clip.start + Double(clip.count) / 10, accuracy: 1e-9)
                let from = k * 15 * frameBytes
                XCTAssertEqual(clip.pixels, Array(frames.pixels[from..<(from + clip.count * frameBytes)]))
            }
        }
    }

    func testDecoderThreadsDoNotChangeFrames() throws {
        let path = scratch.file("threads.mp4")
        try TestPattern.writeVideo(path: path, width: 64, height: 48, fps: FrameRate(30), seconds: 2)
        let one = try decodeFrames(path, fps: FrameRate(20), width: 32, height: 24, threads: 1)
        let auto = try decodeFrames(path, fps: FrameRate(20), width: 32, height: 24, threads: 0)
        XCTAssertEqual(one.count, 40)
        XCTAssertEqual(one.pixels, auto.pixels)
        // Only output frames are converted, each once: 40 of the 60 (some dropped ones are not
        // even decoded, see SkippingTests).
        XCTAssertLessThanOrEqual(one.summary?.framesDecoded ?? 0, 60)
        XCTAssertEqual(one.summary?.framesConverted, 40)
    }
}

final class SkippingTests: XCTestCase {
    var scratch: ScratchFolder!

    override func setUpWithError() throws { scratch = try ScratchFolder() }
    override func tearDown() { scratch?.cleanUp() }

    /// Frames certain to be dropped and referenced by nothing are not decoded, and the output
    /// is byte-identical to decoding everything (H.264 or MPEG-4 with B-frames; MP4 and Matroska).
    func testSkippingUnusedFramesChangesNothing() throws {
        var rng = SeededRNG(seed: 5)
        var times: [Double] = []
        var t = 0.0
        for _ in 0..<90 { times.append(t); t += 0.02 + 0.03 * Double(rng.nextFloat()) }
        for (name, vfr) in [("b.mp4", false), ("b.mkv", true), ("b4.mp4", false)] {
            let video = scratch.file(name)
            try TestPattern.writeVideo(path: video, width: 64, height: 48, fps: FrameRate(30), seconds: 3,
                                       times: vfr ? times : nil, codec: name == "b4.mp4" ? "mpeg4" : nil,
                                       timeBase: vfr ? Rational(num: 1, den: 1000) : nil)
            for fps in [FrameRate(1), FrameRate(10), FrameRate(20), FrameRate(45)] {
                var outputs: [[UInt8]] = []
                var decoded: [Int] = []
                for skip in [false, true] {
                    let reader = try VideoReader(path: video, threads: 1)
                    reader.skipsUnusedFrames = skip
                    var pixels: [UInt8] = []
                    let summary = try reader.forEachFrame(fps: fps, width: 16, height: 12) { pixels += $0.pixels }
                    outputs.append(pixels)
                    decoded.append(summary.framesDecoded)
                }
                XCTAssertEqual(outputs[0], outputs[1], "\(name) at \(fps) fps")
                XCTAssertEqual(decoded[0], 90, name)
                if fps.framesPerSecond <= 10 {
                    XCTAssertLessThan(decoded[1], decoded[0], "\(name) at \(fps) fps skips B-frames")
                }
            }
        }
    }
}
