import Foundation
import Media
import Tensor

/// Decode + sample by timestamp + scale to RGB: `VideoReader.forEachFrame` over one video,
/// best of `--reps` passes. The ffmpeg CLI side runs in tools/bench/decode.sh.
///
///   bench decode --video V --fps 20 --size 64x64 [--threads 0] [--reps 3] [--skip 1]
///
/// `--skip 0` decodes every frame (VideoReader.skipsUnusedFrames = false), to show what skipping gains.
///
/// Prints frames out, frames decoded, seconds, frames decoded per second and a checksum of the
/// output (so the work cannot be skipped; equal between runs), wall and CPU seconds (best of reps).
func benchDecode(_ args: [String]) throws {
    let video = option(args, "video", "")
    guard !video.isEmpty else { throw VideoBertError("bench decode: --video is required") }
    let fps = try FrameRate(parsing: option(args, "fps", "20"))
    let size = option(args, "size", "64x64").split(separator: "x").compactMap { Int($0) }
    guard size.count == 2 else { throw VideoBertError("bench decode: --size WxH") }
    let threads = Int(option(args, "threads", "0"))!
    let reps = Int(option(args, "reps", "3"))!
    let skip = option(args, "skip", "1") != "0"
    var best = Double.infinity
    var bestCPU = Double.infinity
    var summary: SamplingSummary? = nil
    var checksum: UInt64 = 0
    for _ in 0..<reps {
        let t0 = now()
        let c0 = cpuSeconds()
        let reader = try VideoReader(path: video, threads: threads)
        reader.skipsUnusedFrames = skip
        var sum: UInt64 = 0
        summary = try reader.forEachFrame(fps: fps, width: size[0], height: size[1]) { frame in
            // Touch every row's first pixel: cheap, and the frames must exist.
            let p = frame.pixels
            var i = 0
            while i < p.count { sum &+= UInt64(p[i]); i += frame.width * 3 }
        }
        best = min(best, now() - t0)
        bestCPU = min(bestCPU, cpuSeconds() - c0)
        checksum = sum
    }
    let s = summary!
    printJSON(["benchmark": "decode", "video": video, "fps": fps.description, "size": "\(size[0])x\(size[1])",
               "threads": threads, "skip_unused": skip, "frames": s.frames, "frames_decoded": s.framesDecoded,
               "frames_converted": s.framesConverted, "seconds": best, "cpu_seconds": bestCPU,
               "decoded_frames_per_second": Double(s.framesDecoded) / best, "checksum": checksum])
}

/// User + system CPU time of this process, all threads (getrusage).
func cpuSeconds() -> Double {
    var usage = rusage()
    #if os(Linux)
    getrusage(RUSAGE_SELF.rawValue, &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}
