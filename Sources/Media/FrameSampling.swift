import CFFmpeg
import Foundation
import Tensor

/// One output frame of `VideoReader.forEachFrame`: RGB24 pixels [height, width, 3], row-major.
/// `pixels` points into the reader's buffer and is valid only during the callback; copy what you keep.
public struct SampledFrame {
    /// Output index: 0, 1, 2, ... (the frame's row in `videobert frames` output).
    public let index: Int
    /// Presentation time in seconds from the start of the file: a multiple of 1/F; frames are
    /// 1/F apart. Usually index / F; later when the file's only stream starts after time 0
    /// (the CLI then starts at the first frame instead of repeating it back to 0).
    public let time: Double
    /// Timestamp (seconds from the start of the file) of the decoded frame shown here.
    /// Equal to `time` up to half a frame of F, except where frames are repeated.
    public let sourceTime: Double
    public let width: Int
    public let height: Int
    public let pixels: UnsafeBufferPointer<UInt8>
}

/// What a pass over a video produced.
public struct SamplingSummary: Sendable, Codable, Equatable {
    /// Frames written at the output rate.
    public var frames: Int
    /// Frames the decoder produced (before dropping and repeating). Frames certain to be dropped
    /// that nothing references are not decoded (`VideoReader.skipsUnusedFrames`).
    public var framesDecoded: Int
    /// Frames converted to RGB (each decoded frame at most once, however often it is repeated).
    public var framesConverted: Int
    /// Problems skipped under `DecodeErrorPolicy.tolerant` (always 0 under `.strict`).
    public var decodeErrors: Int
    /// Seconds of video the output covers: frames / F.
    public var seconds: Double
}

/// Converts decoded pictures to RGB24 at a fixed size with libswscale, set up as FFmpeg's
/// `scale` filter sets it up inside `ffmpeg -vf scale=W:H -pix_fmt rgb24` (libavfilter/vf_scale.c):
/// bicubic (the CLI's default `sws_flags`), YUV matrix from the frame's colorspace
/// (BT.601 when unspecified), input range from the frame's color_range, and, like the CLI's
/// filter threads, slice threads unless `threads` is 1 (swscale's slices give the same pixels).
/// One output buffer, allocated once; the scaler context is rebuilt only when the input changes.
final class RGBConverter {
    let width: Int
    let height: Int
    let buffer: UnsafeMutablePointer<UInt8>
    var byteCount: Int { width * height * 3 }
    /// Scaler threads: 1, or 0 for one per core.
    let threads: Int
    private var scaler: OpaquePointer? = nil
    /// `buffer` as a reference-counted frame (the threaded swscale API takes frames).
    private var output: UnsafeMutablePointer<AVFrame>?
    private var inputWidth: Int32 = -1, inputHeight: Int32 = -1, inputFormat: Int32 = -1
    private var inputColorspace: AVColorSpace = AVCOL_SPC_UNSPECIFIED
    private var inputRange: AVColorRange = AVCOL_RANGE_UNSPECIFIED
    private let file: String

    init(width: Int, height: Int, threads: Int = 1, file: String) throws {
        guard width > 0, height > 0, width <= 16384, height <= 16384 else {
            throw VideoBertError("frame size \(width)x\(height) is outside 1x1 ... 16384x16384", file: file)
        }
        self.width = width
        self.height = height
        self.threads = threads
        self.file = file
        // av_buffer_alloc aligns for SIMD; the tail pad covers swscale's vector stores past the last pixel.
        guard let frame = av_frame_alloc(), let ref = av_buffer_alloc(width * height * 3 + 64) else {
            throw VideoBertError("out of memory for a \(width)x\(height) frame", file: file)
        }
        output = frame
        frame.pointee.buf.0 = ref
        frame.pointee.data.0 = ref.pointee.data
        frame.pointee.linesize.0 = Int32(width * 3)
        frame.pointee.width = Int32(width)
        frame.pointee.height = Int32(height)
        frame.pointee.format = AV_PIX_FMT_RGB24.rawValue
        buffer = ref.pointee.data
    }

    deinit {
        sws_freeContext(scaler)
        av_frame_free(&output)
    }

    func convert(_ frame: UnsafeMutablePointer<AVFrame>) throws {
        let f = frame.pointee
        if f.width != inputWidth || f.height != inputHeight || f.format != inputFormat || scaler == nil {
            sws_freeContext(scaler)
            scaler = nil
            // vf_scale's setup: sws_alloc_context + options + sws_init_context.
            guard let ctx = sws_alloc_context() else { throw VideoBertError("out of memory for a scaler", file: file) }
            scaler = ctx
            let raw = UnsafeMutableRawPointer(ctx)
            av_opt_set_int(raw, "srcw", Int64(f.width), 0)
            av_opt_set_int(raw, "srch", Int64(f.height), 0)
            av_opt_set_int(raw, "src_format", Int64(f.format), 0)
            av_opt_set_int(raw, "dstw", Int64(width), 0)
            av_opt_set_int(raw, "dsth", Int64(height), 0)
            av_opt_set_int(raw, "dst_format", Int64(AV_PIX_FMT_RGB24.rawValue), 0)
            av_opt_set_int(raw, "sws_flags", Int64(SWS_BICUBIC), 0)
            av_opt_set_int(raw, "threads", Int64(threads), 0)
            if sws_init_context(ctx, nil, nil) < 0 {
                let name = av_get_pix_fmt_name(AVPixelFormat(rawValue: f.format)).map { String(cString: $0) } ?? "format \(f.format)"
                throw VideoBertError("cannot convert \(name) \(f.width)x\(f.height) pictures to RGB", file: file)
            }
            inputWidth = f.width; inputHeight = f.height; inputFormat = f.format
            setColorspace(f.colorspace, f.color_range)
        } else if f.colorspace != inputColorspace || f.color_range != inputRange {
            setColorspace(f.colorspace, f.color_range)
        }
        if threads != 1 {
            let r = sws_scale_frame(scaler, output, frame)
            if r < 0 {
                throw VideoBertError("scaling a \(f.width)x\(f.height) picture failed (\(ffmpegErrorString(r)))", file: file)
            }
            return
        }
        var dst: UnsafeMutablePointer<UInt8>? = buffer
        var dstStride = Int32(width * 3)
        let rows = withUnsafePointer(to: &frame.pointee.data) { data in
            withUnsafePointer(to: &frame.pointee.linesize) { linesize in
                data.withMemoryRebound(to: UnsafePointer<UInt8>?.self, capacity: 8) { src in
                    linesize.withMemoryRebound(to: Int32.self, capacity: 8) { stride in
                        sws_scale(scaler, src, stride, 0, f.height, &dst, &dstStride)
                    }
                }
            }
        }
        if rows != Int32(height) {
            throw VideoBertError("scaling a \(f.width)x\(f.height) picture failed (\(rows < 0 ? ffmpegErrorString(rows) : "\(rows) rows"))", file: file)
        }
    }

    /// vf_scale.c `scale_frame` with in_color_matrix=auto: the matrix of the frame's colorspace
    /// (`parse_yuv_type`: outside 1...10 or 8 means BT.601), used for both tables; the input
    /// range from the frame when it says one.
    private func setColorspace(_ colorspace: AVColorSpace, _ range: AVColorRange) {
        inputColorspace = colorspace
        inputRange = range
        var invTable: UnsafeMutablePointer<Int32>? = nil, table: UnsafeMutablePointer<Int32>? = nil
        var srcRange: Int32 = 0, dstRange: Int32 = 0, brightness: Int32 = 0, contrast: Int32 = 0, saturation: Int32 = 0
        guard sws_getColorspaceDetails(scaler, &invTable, &srcRange, &table, &dstRange,
                                       &brightness, &contrast, &saturation) >= 0 else { return }
        var cs = Int32(colorspace.rawValue)
        if cs < 1 || cs > 10 || cs == 8 { cs = Int32(AVCOL_SPC_BT470BG.rawValue) }
        let coefficients = sws_getCoefficients(cs)
        if range != AVCOL_RANGE_UNSPECIFIED { srcRange = range == AVCOL_RANGE_JPEG ? 1 : 0 }
        sws_setColorspaceDetails(scaler, coefficients, srcRange, coefficients, dstRange,
                                 brightness, contrast, saturation)
    }
}

extension VideoReader {
    /// Decodes the video and calls `body` for each frame of the video resampled to `fps`
    /// frames per second and scaled to `width`×`height` RGB24: the same frames, in the same
    /// number, as `ffmpeg -i FILE -vf fps=F,scale=W:H -pix_fmt rgb24 -f rawvideo -`
    /// (see `FPSFilterSchedule` for the rules). Frames are 1/F apart; frame i is at i / F from the
    /// start of the file, except in a single-stream file whose first frame is late (see `SampledFrame.time`).
    ///
    /// Streaming: memory is one decoded frame, the one waiting to be repeated or dropped, and one
    /// RGB buffer. Only frames that are output are converted, each once however often repeated.
    @discardableResult
    public func forEachFrame(fps: FrameRate, width: Int, height: Int,
                             _ body: (SampledFrame) throws -> Void) throws -> SamplingSummary {
        let converter = try RGBConverter(width: width, height: height, threads: threads == 1 ? 1 : 0, file: path)
        guard let held = av_frame_alloc() else {
            throw VideoBertError("out of memory allocating a frame", file: path)
        }
        var heldFrame: UnsafeMutablePointer<AVFrame>? = held
        defer { av_frame_free(&heldFrame) }
        var heldTimestamp: Int64 = 0
        var heldConverted = false
        var schedule = FPSFilterSchedule()
        var sync = ConstantRateSync(startsAtFirstFrame: streamCount == 1)
        var framesOut = 0
        var framesConverted = 0
        let streamTB = stream.pointee.time_base
        let outTB = fps.timeBase
        let pixels = UnsafeBufferPointer(start: converter.buffer, count: converter.byteCount)
        // A timestamp jump this large is a broken file, not a video to fill with copies.
        let maxRun = Int64(fps.framesPerSecond * 24 * 3600)

        func write(_ run: FPSFilterSchedule.Run) throws {
            guard run.count > 0 else { return }
            if run.count > maxRun {
                throw VideoBertError(String(format: "timestamps jump by %.0f s near %.3f s; the file is damaged",
                                            Double(run.count) / fps.framesPerSecond, seconds(heldTimestamp)), file: path)
            }
            for p in run.first ..< run.first + run.count {
                let (first, n) = sync.copies(forTimestamp: p)
                guard n > 0 else { continue }
                if !heldConverted {
                    try converter.convert(held)
                    heldConverted = true
                    framesConverted += 1
                }
                for s in first ..< first + n {
                    try body(SampledFrame(index: framesOut, time: fps.time(ofFrame: Int(s)),
                                          sourceTime: seconds(heldTimestamp),
                                          width: width, height: height, pixels: pixels))
                    framesOut += 1
                }
            }
        }

        // The CLI rebuilds its filter graph when the picture size, pixel format or aspect ratio
        // changes mid-stream (ifilter_send_frame, "need_reinit"); the new fps filter starts
        // afresh and the frame the old one held is never written.
        let streamAspect = stream.pointee.sample_aspect_ratio
        var lastParameters: (Int32, Int32, Int32, Int32, Int32)? = nil
        let decoded = try decodeAll(outputSlot: { vb_rescale_near_passminmax($0, streamTB, outTB) }) { frame, timestamp in
            let f = frame.pointee
            let aspect = streamAspect.num != 0 ? streamAspect : f.sample_aspect_ratio
            let parameters = (f.width, f.height, f.format, aspect.num, aspect.den)
            if let last = lastParameters, last != parameters {
                schedule = FPSFilterSchedule()
            }
            lastParameters = parameters
            let q = vb_rescale_near_passminmax(timestamp, streamTB, outTB)
            try write(schedule.push(q))
            // The new frame is now the one held back (vf_fps keeps two; the older is done).
            av_frame_unref(held)
            av_frame_move_ref(held, frame)
            heldTimestamp = timestamp
            heldConverted = false
        }
        try write(schedule.finish(end: vb_rescale_near_passminmax(decoded.eof, streamTB, outTB)))
        return SamplingSummary(frames: framesOut, framesDecoded: decoded.framesDecoded,
                               framesConverted: framesConverted, decodeErrors: decoded.errors,
                               seconds: fps.time(ofFrame: framesOut))
    }
}
