import Foundation
import Media
import Tensor
import XCTest

/// `videobert frames` end to end: the built binary on a video this test encodes.
final class FramesCLITests: XCTestCase {
    var folder: String!

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "/videobert-frames-cli-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() {
        if let folder { try? FileManager.default.removeItem(atPath: folder) }
    }

    func path(_ name: String) -> String { folder + "/" + name }

    /// `ffmpeg -i V -vf fps=F,scale=W:H -pix_fmt rgb24 -f rawvideo -`, the reference.
    func ffmpegFrames(_ video: String, fps: String, width: Int, height: Int) throws -> [UInt8] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["ffmpeg", "-nostdin", "-v", "error", "-i", video, "-vf", "fps=\(fps),scale=\(width):\(height)",
                       "-pix_fmt", "rgb24", "-f", "rawvideo", "-"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "the ffmpeg CLI (installed by tools/setup) must run")
        return [UInt8](data)
    }

    func testHelpHasExample() throws {
        let r = try CLI.run(["frames", "--help"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("Example:"), r.stdout)
        XCTAssertTrue(r.stdout.contains("--fps") && r.stdout.contains("--size") && r.stdout.contains("--out"), r.stdout)
    }

    func testWritesTheFramesFFmpegWould() throws {
        let video = path("talk.mp4")
        try TestPattern.writeVideo(path: video, width: 64, height: 48, fps: FrameRate(25), seconds: 2,
                                   startTime: 0.3, audio: AudioTrack(seconds: 2.5))
        let out = path("out/talk.npy")  // the folder does not exist yet
        let r = try CLI.run(["frames", video, "--fps", "12", "--size", "40x30", "--out", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, r.stdout)
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        let array = try NPY.read(out)
        XCTAssertEqual(array.dtype, .uint8)
        XCTAssertEqual(Array(array.shape.dropFirst()), [30, 40, 3])
        XCTAssertEqual(summary["frames"] as? Int, array.shape[0])
        XCTAssertEqual(summary["fps"] as? String, "12")
        XCTAssertEqual(summary["size"] as? String, "40x30")
        XCTAssertNotNil(summary["seconds"] as? Double)
        XCTAssertEqual(summary["video_seconds"] as? Double ?? 0, Double(array.shape[0]) / 12, accuracy: 1e-9)

        let reference = try ffmpegFrames(video, fps: "12", width: 40, height: 30)
        XCTAssertEqual(array.shape[0], reference.count / (40 * 30 * 3), "frame count vs ffmpeg CLI")
        let ours = [UInt8](array.data)
        XCTAssertEqual(ours.count, reference.count)
        var total = 0
        for i in 0..<min(ours.count, reference.count) { total += abs(Int(ours[i]) - Int(reference[i])) }
        XCTAssertLessThan(Double(total) / Double(max(1, ours.count)), 2.0, "mean absolute difference vs ffmpeg CLI")
    }

    func testErrorsNameTheFileOnOneLine() throws {
        let out = path("x.npy")
        let missing = path("missing.mp4")
        var r = try CLI.run(["frames", missing, "--fps", "10", "--size", "8x8", "--out", out])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "error: \(missing): no such file\n")

        let text = path("notes.txt")
        try "just some words\n".write(toFile: text, atomically: true, encoding: .utf8)
        r = try CLI.run(["frames", text, "--fps", "10", "--size", "8x8", "--out", out])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("error: \(text): "), r.stderr)

        let audio = path("tone.wav")
        try AudioFileWriter.write(path: audio, track: AudioTrack(seconds: 0.5))
        r = try CLI.run(["frames", audio, "--fps", "10", "--size", "8x8", "--out", out])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("error: \(audio): no video stream"), r.stderr)

        // A truncated video: an error by default, the decodable frames with --tolerant.
        let video = path("v.mkv")
        try TestPattern.writeVideo(path: video, width: 32, height: 24, fps: FrameRate(25), seconds: 2)
        let data = try Data(contentsOf: URL(fileURLWithPath: video))
        let cut = path("cut.mkv")
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: cut))
        r = try CLI.run(["frames", cut, "--fps", "10", "--size", "8x8", "--out", out])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("error: \(cut): ") && r.stderr.contains("truncated"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no output after an error")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.contains(".tmp") }, [],
                       "no temporary file left behind")
        r = try CLI.run(["frames", cut, "--fps", "10", "--size", "8x8", "--out", out, "--tolerant"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let frames = try NPY.read(out).shape[0]
        XCTAssertGreaterThan(frames, 0)
        XCTAssertLessThan(frames, 20)

        // Bad options are usage errors.
        for args in [["--fps", "0", "--size", "8x8"], ["--fps", "10", "--size", "8"], ["--fps", "ten", "--size", "8x8"]] {
            r = try CLI.run(["frames", video] + args + ["--out", out])
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertTrue(r.stderr.contains("--fps") || r.stderr.contains("--size"), r.stderr)
        }
    }
}
