import ArgumentParser
import Foundation
import Media
import Tensor

/// `videobert frames`: one video → uint8 [N, H, W, 3] RGB frames at a fixed rate, in .npy.
struct FramesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "frames",
        abstract: "Decode one video into RGB frames at a fixed rate (.npy, uint8 [N, H, W, 3]).",
        discussion: """
        Frames are picked by presentation timestamp exactly as FFmpeg's fps filter picks them (right for variable frame rates and non-zero start times), then scaled with libswscale (bicubic). The frames equal those of `ffmpeg -i VIDEO -vf fps=F,scale=W:H -pix_fmt rgb24 -f rawvideo -` in number and pixels; frame i is at i/F seconds from the start of the file. Decoding streams: memory holds a frame or two, not the video.

        Prints one JSON line: frames, fps, size, video_seconds (frames/F), seconds (time taken).

        A damaged (truncated, corrupt) file is an error unless --tolerant is given, which keeps the frames that decode, as the ffmpeg CLI does.

        Example:
          videobert frames talk.mp4 --fps 20 --size 64x64 --out talk.npy
          python3 -c "import numpy; print(numpy.load('talk.npy').shape)"
        """
    )

    @Argument(help: "The video file (any container and codec the installed FFmpeg decodes).")
    var video: String

    // .unconditional: `--fps -1` reaches FrameRate's message instead of "Missing value".
    @Option(parsing: .unconditional, help: "Output frames per second: 20, 29.97 or 30000/1001.")
    var fps: String

    @Option(parsing: .unconditional, help: "Output frame size WxH, e.g. 64x64.")
    var size: String

    @Option(help: "The .npy file to write (written under a temporary name, then renamed).")
    var out: String

    @Option(help: "Decoder threads; 0 lets FFmpeg use one per core.")
    var threads: Int = 0

    @Flag(help: "Keep the frames that decode from a damaged file instead of failing.")
    var tolerant = false

    func validate() throws {
        do {
            _ = try FrameRate(parsing: fps)
            _ = try Self.parseSize(size)
        } catch let e as VideoBertError {
            throw ValidationError(e.message)
        }
        if threads < 0 { throw ValidationError("--threads must be 0 (automatic) or more") }
    }

    static func parseSize(_ text: String) throws -> (width: Int, height: Int) {
        let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 2, let w = Int(parts[0]), let h = Int(parts[1]),
              (1...16384).contains(w), (1...16384).contains(h) else {
            throw VideoBertError("--size: expected WxH with each side 1...16384, e.g. 64x64, got '\(text)'")
        }
        return (w, h)
    }

    func run() throws {
        let started = Date()
        try AtomicFile.checkOutputFile(out, inputs: [video])
        let rate = try FrameRate(parsing: fps)
        let (width, height) = try Self.parseSize(size)
        let reader = try VideoReader(path: video, threads: threads, errorPolicy: tolerant ? .tolerant : .strict)
        let writer = try NPYStreamWriter(path: out, dtype: .uint8, rowShape: [height, width, 3])
        let summary: SamplingSummary
        do {
            summary = try reader.forEachFrame(fps: rate, width: width, height: height) { frame in
                try writer.append(UnsafeRawBufferPointer(frame.pixels))
            }
            try writer.finish()
        } catch {
            writer.abandon()
            throw error
        }
        struct Line: Encodable {
            var file: String
            var out: String
            var frames: Int
            var fps: String
            var size: String
            var video_seconds: Double
            var seconds: Double
            var decode_errors: Int
        }
        let line = Line(file: video, out: out, frames: summary.frames, fps: rate.description,
                        size: "\(width)x\(height)", video_seconds: summary.seconds,
                        seconds: (Date().timeIntervalSince(started) * 1000).rounded() / 1000,
                        decode_errors: summary.decodeErrors)
        print(try JSON.string(line))
    }
}
