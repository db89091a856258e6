import Foundation
import XCTest
@testable import Media
import Tensor

/// Files that are not (whole) videos: each gives a `VideoBertError` that names the file and says why.
///
/// Truncated videos: the default (`.strict`) is an error, because a cut file is a damaged input,
/// not a shorter video (the tokenizer reports it in failures.jsonl). `.tolerant` keeps the frames
/// that decode, as the ffmpeg CLI does.
final class BadInputTests: XCTestCase {
    var scratch: ScratchFolder!

    override func setUpWithError() throws { scratch = try ScratchFolder() }
    override func tearDown() { if ProcessInfo.processInfo.environment["KEEP_SCRATCH"] == nil { scratch?.cleanUp() } else { print("SCRATCH", scratch.path) } }

    /// The error `body` throws, which must be a VideoBertError about `file`.
    func failure(_ file: String, _ body: () throws -> Void, line: UInt = #line) -> String {
        do {
            try body()
            XCTFail("expected an error for \(file)", line: line)
            return ""
        } catch let e as VideoBertError {
            XCTAssertEqual(e.file, file, line: line)
            XCTAssertFalse("\(e)".contains("\n"), "one line", line: line)
            return e.message
        } catch {
            XCTFail("expected VideoBertError, got \(error)", line: line)
            return ""
        }
    }

    func open(_ path: String) throws { _ = try VideoReader(path: path) }

    func decode(_ path: String, policy: DecodeErrorPolicy = .strict) throws -> DecodedFrames {
        try decodeFrames(path, fps: FrameRate(10), width: 16, height: 12, policy: policy)
    }

    func testMissingFileAndFolder() {
        let missing = scratch.file("nope.mp4")
        XCTAssertEqual(failure(missing) { try open(missing) }, "no such file")
        XCTAssertTrue(failure(scratch.path) { try open(scratch.path) }.contains("folder"))
    }

    func testEmptyFile() {
        let empty = scratch.file("empty.mp4")
        FileManager.default.createFile(atPath: empty, contents: Data())
        XCTAssertTrue(failure(empty) { try open(empty) }.contains("empty file"))
    }

    /// A FIFO is named, never opened (FFmpeg would wait for a writer).
    func testFIFOIsNamedNotWaitedOn() {
        let fifo = scratch.file("pipe.mp4")
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        XCTAssertEqual(failure(fifo) { try open(fifo) }, "is a FIFO (named pipe), not a regular file")
    }

    func testRandomBytes() {
        var rng = SeededRNG(seed: 3)
        let bytes = (0..<20_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        for name in ["random.bin", "random.mp4"] {
            let path = scratch.file(name)
            FileManager.default.createFile(atPath: path, contents: Data(bytes))
            XCTAssertTrue(failure(path) { try open(path) }.contains("not a video file"), name)
        }
    }

    func testTextFiles() {
        let text = (1...200).map { "line \($0): notes about cooking pasta" }.joined(separator: "\n")
        // .txt would be read by FFmpeg's tty demuxer as ANSI art; .mp4 fails to probe.
        for name in ["notes.txt", "notes.mp4", "notes.srt.mkv"] {
            let path = scratch.file(name)
            FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
            let message = failure(path) { _ = try decode(path) }
            XCTAssertTrue(message.contains("text file") || message.contains("not a video"), "\(name): \(message)")
        }
    }

    func testAudioOnlyFiles() throws {
        for name in ["tone.wav", "tone.mka", "tone.m4a"] {
            let path = scratch.file(name)
            try AudioFileWriter.write(path: path, track: AudioTrack(seconds: 1))
            XCTAssertTrue(failure(path) { try open(path) }.hasPrefix("no video stream (streams: audio"), name)
        }
    }

    /// An MP4 with its index first, cut in half: the index lists frames the file no longer has.
    func testTruncatedMP4() throws {
        let video = scratch.file("whole.mp4")
        try TestPattern.writeVideo(path: video, width: 64, height: 48, fps: FrameRate(25), seconds: 2)
        let whole = try decode(video)
        XCTAssertEqual(whole.count, 20)
        let cut = scratch.file("cut.mp4")
        let data = try Data(contentsOf: URL(fileURLWithPath: video))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: cut))
        let message = failure(cut) { _ = try decode(cut) }
        XCTAssertTrue(message.contains("truncated"), message)
        // Tolerant: the frames before the cut, as ffmpeg decodes them.
        let partial = try decode(cut, policy: .tolerant)
        XCTAssertGreaterThan(partial.count, 0)
        XCTAssertLessThan(partial.count, whole.count)
        XCTAssertGreaterThan(partial.summary?.decodeErrors ?? 0, 0)
        let reference = try FFmpegCLI.frames(cut, fps: "10", width: 16, height: 12)
        XCTAssertEqual(partial.count, reference.count / (16 * 12 * 3))
        // The frames kept are the first frames of the whole video.
        let n = partial.pixels.count
        XCTAssertLessThan(meanAbsoluteDifference(partial.pixels[0..<n], whole.pixels[0..<n]), 2)
        // Cut before the index ends: not even the streams can be read.
        let stub = scratch.file("stub.mp4")
        try data.prefix(200).write(to: URL(fileURLWithPath: stub))
        let stubMessage = failure(stub) { _ = try decode(stub) }
        XCTAssertTrue(stubMessage.contains("not a video file") || stubMessage.hasPrefix("no video stream"), stubMessage)
    }

    /// A Matroska file cut in the middle of a cluster reads to a clean end of file; the demuxer's
    /// "File ended prematurely" is what tells.
    func testTruncatedMatroska() throws {
        let video = scratch.file("whole.mkv")
        try TestPattern.writeVideo(path: video, width: 64, height: 48, fps: FrameRate(25), seconds: 2)
        let data = try Data(contentsOf: URL(fileURLWithPath: video))
        let cut = scratch.file("cut.mkv")
        try data.prefix(data.count * 6 / 10).write(to: URL(fileURLWithPath: cut))
        let message = failure(cut) { _ = try decode(cut) }
        XCTAssertTrue(message.contains("ended prematurely") && message.contains("truncated"), message)
        let partial = try decode(cut, policy: .tolerant)
        XCTAssertGreaterThan(partial.count, 0)
        XCTAssertLessThan(partial.count, 20)
    }

    /// Bytes overwritten in the middle of the coded pictures.
    func testCorruptedPayload() throws {
        let video = scratch.file("clean.mkv")
        try TestPattern.writeVideo(path: video, width: 64, height: 48, fps: FrameRate(25), seconds: 2, codec: "mpeg4")
        var data = try Data(contentsOf: URL(fileURLWithPath: video))
        var rng = SeededRNG(seed: 11)
        for i in (data.count / 3)..<(data.count * 2 / 3) where i % 3 == 0 {
            data[i] = UInt8(truncatingIfNeeded: rng.next())
        }
        let bad = scratch.file("corrupt.mkv")
        try data.write(to: URL(fileURLWithPath: bad))
        let message = failure(bad) { _ = try decode(bad) }
        XCTAssertTrue(message.contains("damaged") || message.contains("corrupt"), message)
        XCTAssertNoThrow(try decode(bad, policy: .tolerant))
    }

    func testReaderReadsOnce() throws {
        let video = scratch.file("once.mkv")
        try TestPattern.writeVideo(path: video, width: 32, height: 24, fps: FrameRate(10), seconds: 0.5)
        let reader = try VideoReader(path: video)
        try reader.forEachFrame(fps: FrameRate(10), width: 8, height: 8) { _ in }
        XCTAssertTrue(failure(video) { try reader.forEachFrame(fps: FrameRate(10), width: 8, height: 8) { _ in } }.contains("once"))
    }
}
