import Foundation
import XCTest
@testable import Media
import Tensor

/// Our decode + sample + scale against `ffmpeg -i V -vf fps=F,scale=W:H -pix_fmt rgb24 -f rawvideo -`
/// on small videos this suite encodes itself: the same frame count, mean absolute difference < 2.
final class FrameParityTests: XCTestCase {
    var scratch: ScratchFolder!

    override func setUpWithError() throws {
        scratch = try ScratchFolder()
    }

    override func tearDown() {
        scratch?.cleanUp()
    }

    /// 25 fps, 2.4 s, H.264 (or MPEG-4 without libx264) in MP4.
    func testConstantRateLowerHigherAndFractionalRates() throws {
        let video = scratch.file("cfr25.mp4")
        try TestPattern.writeVideo(path: video, width: 64, height: 48, fps: FrameRate(25), seconds: 2.4)
        try assertParity(video, fps: "10", width: 32, height: 24)       // fewer frames: drops
        try assertParity(video, fps: "40", width: 64, height: 48)       // more frames: repeats
        try assertParity(video, fps: "29.97", width: 96, height: 72)    // fractional rate, upscaled
        try assertParity(video, fps: "30000/1001", width: 33, height: 17)
        let same = try assertParity(video, fps: "25", width: 64, height: 48, threads: 1)
        XCTAssertEqual(same.count, 60)
        // At the native rate each decoded frame is shown once, at its own time.
        for (i, t) in same.sourceTimes.enumerated() { XCTAssertEqual(t, Double(i) / 25, accuracy: 1e-6) }
    }

    /// The video stream starts 0.77 s after an audio track: the CLI fills the gap with copies of
    /// the first frame it outputs (its constant-rate output starts at the file's start).
    func testVideoStartingAfterAudio() throws {
        for name in ["late.mkv", "late.mp4"] {  // PCM audio in Matroska; AAC (with its priming delay) in MP4
            let video = scratch.file(name)
            try TestPattern.writeVideo(path: video, width: 64, height: 48, fps: FrameRate(30), seconds: 2,
                                       startTime: 0.77, audio: AudioTrack(seconds: 3))
            let reader = try VideoReader(path: video)
            let start = try XCTUnwrap(reader.startTime)
            XCTAssertEqual(start, 0.77, accuracy: 0.07)  // MP4: + AAC priming (1024 samples), the audio starts before 0
            let frames = try assertParity(video, fps: "10", width: 32, height: 24)
            // The first output picture is at round(start × 10) and fills every slot before it.
            let first = Int((start * 10).rounded())
            XCTAssertGreaterThanOrEqual(first, 7)
            for i in 0...first { XCTAssertEqual(frames.sourceTimes[i], frames.sourceTimes[first], accuracy: 1e-9) }
            XCTAssertGreaterThan(frames.sourceTimes[first + 1], frames.sourceTimes[first])
            try assertParity(video, fps: "24", width: 32, height: 24)
        }
    }

    /// MPEG-TS (timestamps may jump): the CLI starts the clock at the stream it reads, so a
    /// video starting after its audio is not padded there.
    func testTransportStreamWithAudio() throws {
        let video = scratch.file("late.ts")
        try TestPattern.writeVideo(path: video, width: 64, height: 48, fps: FrameRate(25), seconds: 2,
                                   startTime: 0.5, audio: AudioTrack(seconds: 2.5))
        let reader = try VideoReader(path: video)
        XCTAssertEqual(reader.startTime ?? -1, 0, accuracy: 1e-6)
        let frames = try assertParity(video, fps: "10", width: 32, height: 24)
        XCTAssertEqual(frames.count, 20)
        try assertParity(video, fps: "30", width: 32, height: 24)
    }

    /// A file whose only stream starts at 1.3 s: the CLI measures time from the container start,
    /// which is the video's start, so only rounding is affected.
    func testNonZeroStartTimeMatroska() throws {
        let video = scratch.file("offset.mkv")
        try TestPattern.writeVideo(path: video, width: 64, height: 48, fps: FrameRate(24), seconds: 2,
                                   startTime: 1.3)
        let reader = try VideoReader(path: video)
        XCTAssertEqual(reader.containerStartTime, 1.3, accuracy: 0.01)
        XCTAssertEqual(reader.startTime ?? -1, 0, accuracy: 0.01)
        try assertParity(video, fps: "7", width: 32, height: 24)
        try assertParity(video, fps: "30", width: 32, height: 24)
    }

    /// Variable frame rate: irregular gaps (some several frames long) and jitter.
    func testVariableFrameRate() throws {
        var times: [Double] = []
        var t = 0.0
        var rng = SeededRNG(seed: 7)
        for i in 0..<70 {
            times.append(t)
            t += (i % 13 == 5) ? 0.21 : 0.025 + 0.03 * Double(rng.nextFloat())
        }
        for name in ["vfr.mp4", "vfr.mkv"] {
            let video = scratch.file(name)
            try TestPattern.writeVideo(path: video, width: 64, height: 48, fps: FrameRate(30), seconds: 0,
                                       times: times, timeBase: Rational(num: 1, den: 1000))
            try assertParity(video, fps: "10", width: 32, height: 24)
            try assertParity(video, fps: "24", width: 32, height: 24)
            try assertParity(video, fps: "60", width: 32, height: 24)
        }
    }

    /// Other containers and codecs: MPEG-4 part 2 in AVI, H.264 in Matroska and QuickTime, MJPEG.
    func testOtherContainersAndCodecs() throws {
        let cases: [(String, String?)] = [("v.avi", "mpeg4"), ("v.mkv", nil), ("v.mov", nil), ("mjpeg.mkv", "mjpeg"), ("mpeg4.mp4", "mpeg4")]
        for (name, codec) in cases {
            let video = scratch.file(name)
            try TestPattern.writeVideo(path: video, width: 64, height: 48, fps: FrameRate(20), seconds: 1.5, codec: codec, seed: 3)
            try assertParity(video, fps: "15", width: 48, height: 36)
        }
    }
}
