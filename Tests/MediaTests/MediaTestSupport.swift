import Foundation
import XCTest
@testable import Media
import Tensor

/// A fresh folder under the system temp folder, removed by `cleanUp()`.
final class ScratchFolder {
    let path: String
    init() throws {
        path = NSTemporaryDirectory() + "/videobert-media-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func file(_ name: String) -> String { path + "/" + name }
    func cleanUp() { try? FileManager.default.removeItem(atPath: path) }
}

/// The ffmpeg CLI, the reference for frame parity (installed by tools/setup).
enum FFmpegCLI {
    static let executable: String? = {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/usr/local/bin").split(separator: ":") {
            let candidate = "\(dir)/ffmpeg"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }()

    /// `ffmpeg -i VIDEO -vf fps=F,scale=W:H -pix_fmt rgb24 -f rawvideo -`: the frames as one byte array.
    static func frames(_ video: String, fps: String, width: Int, height: Int) throws -> [UInt8] {
        guard let executable else {
            throw VideoBertError("the ffmpeg CLI is not on PATH; run tools/setup (it is the reference for frame parity)")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = ["-nostdin", "-v", "error", "-i", video, "-vf", "fps=\(fps),scale=\(width):\(height)",
                       "-pix_fmt", "rgb24", "-f", "rawvideo", "-"]
        let out = Pipe()
        let errFile = NSTemporaryDirectory() + "/videobert-ffmpeg-err-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        _ = FileManager.default.createFile(atPath: errFile, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: errFile) }
        p.standardOutput = out
        p.standardError = FileHandle(forWritingAtPath: errFile)
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        if p.terminationStatus != 0 {
            let err = (try? String(contentsOfFile: errFile, encoding: .utf8)) ?? ""
            throw VideoBertError("ffmpeg failed (\(p.terminationStatus)): \(err)", file: video)
        }
        return [UInt8](data)
    }
}

/// Everything `forEachFrame` produced, copied out.
struct DecodedFrames {
    var pixels: [UInt8] = []
    var times: [Double] = []
    var sourceTimes: [Double] = []
    var indices: [Int] = []
    var summary: SamplingSummary? = nil
    var count: Int { times.count }
}

func decodeFrames(_ path: String, fps: FrameRate, width: Int, height: Int, threads: Int = 0,
                  policy: DecodeErrorPolicy = .strict) throws -> DecodedFrames {
    let reader = try VideoReader(path: path, threads: threads, errorPolicy: policy)
    var result = DecodedFrames()
    result.summary = try reader.forEachFrame(fps: fps, width: width, height: height) { frame in
        XCTAssertEqual(frame.pixels.count, width * height * 3)
        result.pixels.append(contentsOf: frame.pixels)
        result.times.append(frame.time)
        result.sourceTimes.append(frame.sourceTime)
        result.indices.append(frame.index)
    }
    return result
}

/// Mean absolute difference of two equal-length byte arrays, on the 0–255 scale.
func meanAbsoluteDifference(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Double {
    precondition(a.count == b.count)
    var total = 0
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            for i in 0..<pa.count { total += abs(Int(pa[i]) - Int(pb[i])) }
        }
    }
    return a.isEmpty ? 0 : Double(total) / Double(a.count)
}

extension XCTestCase {
    /// Our frames against the ffmpeg CLI's for the same video, rate and size:
    /// the same count, mean absolute difference below 2 (docs/ARCHITECTURE.md §6). Returns our frames.
    @discardableResult
    func assertParity(_ video: String, fps: String, width: Int, height: Int, threads: Int = 0,
                      file: StaticString = #filePath, line: UInt = #line) throws -> DecodedFrames {
        let ours = try decodeFrames(video, fps: try FrameRate(parsing: fps), width: width, height: height, threads: threads)
        let reference = try FFmpegCLI.frames(video, fps: fps, width: width, height: height)
        let frameBytes = width * height * 3
        XCTAssertEqual(reference.count % frameBytes, 0, file: file, line: line)
        let referenceCount = reference.count / frameBytes
        XCTAssertGreaterThan(referenceCount, 0, "ffmpeg produced no frames", file: file, line: line)
        XCTAssertEqual(ours.count, referenceCount, "frame count vs ffmpeg CLI (fps=\(fps), \(video))", file: file, line: line)
        let n = min(ours.count, referenceCount) * frameBytes
        let mad = meanAbsoluteDifference(ours.pixels[0..<n], reference[0..<n])
        XCTAssertLessThan(mad, 2.0, "mean absolute difference vs ffmpeg CLI (fps=\(fps))", file: file, line: line)
        // Frames are 1/F apart from a first slot k/F (k = 0 unless a single-stream file starts late).
        let rate = try FrameRate(parsing: fps)
        let firstSlot = ((ours.times.first ?? 0) * rate.framesPerSecond).rounded()
        XCTAssertGreaterThanOrEqual(firstSlot, 0, file: file, line: line)
        for (i, t) in ours.times.enumerated() {
            XCTAssertEqual(ours.indices[i], i, file: file, line: line)
            XCTAssertEqual(t, rate.time(ofFrame: i + Int(firstSlot)), accuracy: 1e-9, file: file, line: line)
        }
        return ours
    }
}
