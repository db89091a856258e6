import CFFmpeg
import Foundation
import Tensor

/// Consecutive frames of a video at a fixed rate: the unit VideoBERT turns into one visual word
/// (the paper: 20 fps, 30-frame clips of 1.5 s). `pixels` is uint8 [frameCount, height, width, 3]
/// and is valid only during the callback that receives the clip.
public struct Clip {
    /// 0, 1, 2, ...: clip k holds output frames k·n ..< (k+1)·n, n = frames per clip.
    public let index: Int
    /// Time span [startTime, endTime) in seconds from the start of the file: the first frame's
    /// time, plus frameCount / F.
    public let startTime: Double
    public let endTime: Double
    /// n for every clip but a partial last one (see `keepPartialClip`).
    public let frameCount: Int
    public let width: Int
    public let height: Int
    public let pixels: UnsafeBufferPointer<UInt8>

    /// Frame `i` of the clip, [height, width, 3].
    public func frame(_ i: Int) -> UnsafeBufferPointer<UInt8> {
        precondition(i >= 0 && i < frameCount, "frame \(i) of a \(frameCount)-frame clip")
        let size = width * height * 3
        return UnsafeBufferPointer(rebasing: pixels[(i * size)..<((i + 1) * size)])
    }
}

/// Groups a stream of equal-size frames into clips of a fixed number of frames, in one buffer
/// allocated once (memory: one clip).
public final class ClipGrouper {
    public let framesPerClip: Int
    public let width: Int
    public let height: Int
    public let fps: FrameRate
    private let buffer: UnsafeMutableBufferPointer<UInt8>
    private var filled = 0
    private var clipIndex = 0
    private var clipStart = 0.0

    public init(framesPerClip: Int, width: Int, height: Int, fps: FrameRate) {
        precondition(framesPerClip > 0 && width > 0 && height > 0)
        self.framesPerClip = framesPerClip
        self.width = width
        self.height = height
        self.fps = fps
        buffer = .allocate(capacity: framesPerClip * width * height * 3)
    }

    deinit { buffer.deallocate() }

    /// Adds the next frame (RGB24 [height, width, 3]) shown at `time` seconds; calls `body`
    /// when a clip is complete.
    public func add(_ frame: UnsafeBufferPointer<UInt8>, time: Double, _ body: (Clip) throws -> Void) rethrows {
        let size = width * height * 3
        precondition(frame.count == size, "frame size does not match the clip grouper")
        if filled == 0 { clipStart = time }
        UnsafeMutableRawPointer(buffer.baseAddress! + filled * size)
            .copyMemory(from: frame.baseAddress!, byteCount: size)
        filled += 1
        if filled == framesPerClip { try emit(body) }
    }

    /// Emits the last, partial clip if there is one.
    public func flushPartial(_ body: (Clip) throws -> Void) rethrows {
        if filled > 0 { try emit(body) }
    }

    /// Frames added since the last complete clip.
    public var pendingFrames: Int { filled }

    private func emit(_ body: (Clip) throws -> Void) rethrows {
        let clip = Clip(index: clipIndex,
                        startTime: clipStart, endTime: clipStart + fps.time(ofFrame: filled),
                        frameCount: filled, width: width, height: height,
                        pixels: UnsafeBufferPointer(rebasing: buffer[0..<(filled * width * height * 3)]))
        filled = 0
        clipIndex += 1
        try body(clip)
    }
}

extension VideoReader {
    /// Decodes the video into frames at `fps` (exactly the frames of `forEachFrame`) and hands
    /// them out in clips of `clipSeconds`: round(clipSeconds × fps) frames each. Clip k covers
    /// [k·n / fps, (k+1)·n / fps) seconds from the start of the file (shifted by the first frame's
    /// time when a single-stream file starts late, see `SampledFrame.time`). A last clip with fewer
    /// frames is dropped unless `keepPartialClip`. Memory: one decoded frame and one clip.
    @discardableResult
    public func forEachClip(fps: FrameRate, clipSeconds: Double, width: Int, height: Int,
                            keepPartialClip: Bool = false,
                            _ body: (Clip) throws -> Void) throws -> SamplingSummary {
        guard clipSeconds > 0, clipSeconds.isFinite else {
            throw VideoBertError("clip length must be positive seconds, got \(clipSeconds)", file: path)
        }
        let grouper = ClipGrouper(framesPerClip: fps.frames(inSeconds: clipSeconds),
                                  width: width, height: height, fps: fps)
        let summary = try forEachFrame(fps: fps, width: width, height: height) { frame in
            try grouper.add(frame.pixels, time: frame.time, body)
        }
        if keepPartialClip { try grouper.flushPartial(body) }
        return summary
    }
}
