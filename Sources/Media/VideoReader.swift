import CFFmpeg
import Foundation
import Tensor

/// What to do when a file turns out to be damaged part-way through.
public enum DecodeErrorPolicy: Sendable {
    /// Any demuxer error, corrupt or missing packet, or decoder error throws a `VideoBertError`
    /// naming the file and the time. A truncated or corrupt video is a failure, not a shorter video.
    case strict
    /// Like the ffmpeg CLI: skip what cannot be read or decoded, keep the frames that can,
    /// and count the problems (`SamplingSummary.decodeErrors`).
    case tolerant
}

/// Demuxes and decodes the video stream of one file with libavformat/libavcodec.
///
/// Owns its FFmpeg contexts (format, codec, packet, frames) and frees them in `deinit`.
/// Every failure throws a `VideoBertError` that names the file and carries FFmpeg's error text.
/// A reader makes one pass over the file (`forEachFrame` / `forEachClip`); it is not thread-safe,
/// but separate readers can run on separate threads at the same time.
///
/// Timestamps follow the ffmpeg CLI (fftools/ffmpeg.c, FFmpeg 5.1): the container's start time is
/// subtracted from every packet (`ts_offset = -start_time` unless `-copyts`), so time 0 is the
/// start of the file, not of the video stream.
public final class VideoReader {
    public let path: String
    /// Decoder threads: 0 lets FFmpeg choose (one per core, like the CLI's `-threads auto`).
    public let threads: Int
    public let errorPolicy: DecodeErrorPolicy

    /// Coded size of the video stream.
    public let width: Int
    public let height: Int
    /// The video stream's time base (units of its timestamps).
    public let timeBase: Rational
    /// The container's start time in seconds (the earliest stream start; what the CLI subtracts).
    public let containerStartTime: Double
    /// When the video stream's first frame is shown, in seconds from the container start
    /// (nil when the container does not say).
    public let startTime: Double?
    /// Container duration in seconds (nil when unknown, e.g. a stream without an index).
    public let duration: Double?
    /// The stream's average frame rate, else its base rate `r_frame_rate` (nil when neither is known).
    public let nativeFrameRate: Rational?
    /// Number of video frames the container declares (nil when it does not, e.g. Matroska).
    public let declaredFrameCount: Int?
    /// Decoder and demuxer names, e.g. "h264" and "mov,mp4,m4a,3gp,3g2,mj2".
    public let codecName: String
    public let formatName: String

    private var formatContext: UnsafeMutablePointer<AVFormatContext>?
    private var codecContext: UnsafeMutablePointer<AVCodecContext>?
    private var packet: UnsafeMutablePointer<AVPacket>?
    private var decodedFrame: UnsafeMutablePointer<AVFrame>?
    let stream: UnsafeMutablePointer<AVStream>
    let streamIndex: Int32
    /// The CLI's `ts_offset` rescaled to the stream time base, added to every packet timestamp.
    let timestampOffset: Int64
    private var consumed = false

    /// Opens `path` and its best video stream (the CLI's choice: the largest picture, a stream
    /// marked default preferred; cover art is not a video). Throws for a missing or empty file,
    /// a file FFmpeg cannot read, a file without a video stream, or a codec without a decoder.
    public init(path: String, threads: Int = 0, errorPolicy: DecodeErrorPolicy = .strict) throws {
        _ = FFmpegLog.shared
        self.path = path
        self.threads = threads
        self.errorPolicy = errorPolicy

        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw VideoBertError("no such file", file: path)
        }
        if isDirectory.boolValue { throw VideoBertError("is a folder, not a video file", file: path) }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? -1
        if size == 0 { throw VideoBertError("empty file (0 bytes)", file: path) }

        // Allocated here (not by avformat_open_input) so its log messages can be watched from the start.
        guard let allocated = avformat_alloc_context() else {
            throw VideoBertError("out of memory allocating a demuxer", file: path)
        }
        FFmpegLog.shared.watch(allocated)
        var fc: UnsafeMutablePointer<AVFormatContext>? = allocated
        let openCode = avformat_open_input(&fc, path, nil, nil)
        guard openCode >= 0, let fc else {
            // avformat_open_input freed the context on failure.
            let said = FFmpegLog.shared.unwatch(allocated)
            let reason = said.last ?? ffmpegErrorString(openCode)
            throw VideoBertError("not a video file FFmpeg can read, or the file is damaged (\(reason))", file: path)
        }
        formatContext = fc
        let demuxer = fc.pointee.iformat.map { String(cString: $0.pointee.name) } ?? "unknown"
        // FFmpeg's "tty" demuxer renders any *.txt file as ANSI art video; a text file is not a video.
        if demuxer == "tty" {
            throw VideoBertError("a text file, not a video (FFmpeg would render it as ANSI art)", file: path)
        }
        let infoCode = avformat_find_stream_info(fc, nil)
        if infoCode < 0 {
            let reason = FFmpegLog.shared.take(fc).last ?? ffmpegErrorString(infoCode)
            throw VideoBertError("cannot read the streams (\(reason)); the file is damaged or not a video", file: path)
        }
        // Messages while probing (a decoder guessing at a stream) are not damage; start afresh.
        _ = FFmpegLog.shared.take(fc)

        // Stream choice as in fftools/ffmpeg_opt.c (map of the first video output): largest
        // width × height, +5,000,000 for the default disposition; attached pictures excluded.
        var best: Int32 = -1
        var bestScore = -1
        var kinds: [String] = []
        for i in 0..<Int(fc.pointee.nb_streams) {
            guard let st = fc.pointee.streams[i] else { continue }
            let par = st.pointee.codecpar.pointee
            kinds.append(av_get_media_type_string(par.codec_type).map { String(cString: $0) } ?? "unknown")
            guard par.codec_type == AVMEDIA_TYPE_VIDEO else { continue }
            if st.pointee.disposition & AV_DISPOSITION_ATTACHED_PIC != 0 { continue }
            let score = Int(par.width) * Int(par.height) + (st.pointee.disposition & AV_DISPOSITION_DEFAULT != 0 ? 5_000_000 : 0)
            if score > bestScore { bestScore = score; best = Int32(i) }
        }
        guard best >= 0, let st = fc.pointee.streams[Int(best)] else {
            let found = kinds.isEmpty ? "no streams" : "streams: " + kinds.joined(separator: ", ")
            throw VideoBertError("no video stream (\(found))", file: path)
        }
        stream = st
        streamIndex = best
        // Only the video stream is read; the demuxer skips the others' payloads.
        for i in 0..<Int(fc.pointee.nb_streams) where Int32(i) != best {
            fc.pointee.streams[i]?.pointee.discard = AVDISCARD_ALL
        }

        let par = st.pointee.codecpar!
        let codecID = par.pointee.codec_id
        codecName = String(cString: avcodec_get_name(codecID))
        formatName = demuxer
        guard let decoder = avcodec_find_decoder(codecID) else {
            throw VideoBertError("no decoder for codec '\(codecName)' in the installed FFmpeg", file: path)
        }
        guard let cc = avcodec_alloc_context3(decoder) else {
            throw VideoBertError("out of memory allocating a decoder", file: path)
        }
        codecContext = cc
        try check(avcodec_parameters_to_context(cc, par), "decoder parameters", file: path)
        cc.pointee.pkt_timebase = st.pointee.time_base
        // As the CLI does (ffmpeg_opt.c add_input_streams): the decoder starts from the stream's
        // average rate; it is the fallback duration of a frame that carries none.
        cc.pointee.framerate = st.pointee.avg_frame_rate
        cc.pointee.thread_count = Int32(max(0, threads))
        try check(avcodec_open2(cc, decoder, nil), "cannot open the \(codecName) decoder", file: path)

        guard let pkt = av_packet_alloc(), let frm = av_frame_alloc() else {
            throw VideoBertError("out of memory allocating frames", file: path)
        }
        packet = pkt
        decodedFrame = frm

        width = Int(par.pointee.width)
        height = Int(par.pointee.height)
        if width <= 0 || height <= 0 {
            throw VideoBertError("video stream has no picture size (\(width)x\(height)); the file is damaged", file: path)
        }
        timeBase = Rational(st.pointee.time_base)
        let containerStart = fc.pointee.start_time == vb_av_nopts_value() ? 0 : fc.pointee.start_time
        containerStartTime = Double(containerStart) / Double(AV_TIME_BASE)
        timestampOffset = av_rescale_q(-containerStart, vb_av_time_base_q(), st.pointee.time_base)
        if st.pointee.start_time != vb_av_nopts_value() {
            startTime = Double(st.pointee.start_time + timestampOffset) * timeBase.value
        } else {
            startTime = nil
        }
        duration = fc.pointee.duration > 0 ? Double(fc.pointee.duration) / Double(AV_TIME_BASE) : nil
        let avg = st.pointee.avg_frame_rate, base = st.pointee.r_frame_rate
        if avg.num > 0 && avg.den > 0 {
            nativeFrameRate = Rational(avg)
        } else if base.num > 0 && base.den > 0 {
            nativeFrameRate = Rational(base)
        } else {
            nativeFrameRate = nil
        }
        declaredFrameCount = st.pointee.nb_frames > 0 ? Int(st.pointee.nb_frames) : nil
    }

    deinit {
        av_frame_free(&decodedFrame)
        av_packet_free(&packet)
        avcodec_free_context(&codecContext)
        if let fc = formatContext { FFmpegLog.shared.unwatch(fc) }
        avformat_close_input(&formatContext)
    }

    /// Seconds (from the container start) of a timestamp in the stream time base.
    func seconds(_ ts: Int64) -> Double {
        ts == vb_av_nopts_value() ? .nan : Double(ts) * timeBase.value
    }

    private func timeText(_ ts: Int64) -> String {
        let s = seconds(ts)
        return s.isNaN ? "" : String(format: " at %.3f s", s)
    }

    // MARK: - decoding

    /// Decodes every frame of the video stream in presentation order and hands each to `onFrame`
    /// with its timestamp (the decoder's best-effort timestamp, in the stream time base, shifted by
    /// the CLI's offset). `onFrame` may take the frame's buffers with `av_frame_move_ref`.
    ///
    /// Returns the end-of-stream timestamp (stream time base) that the ffmpeg CLI hands to its
    /// filter graph (`send_filter_eof`): the last frame's timestamp plus its duration, computed the
    /// way fftools/ffmpeg.c `process_input_packet` does: the frame's `pkt_duration` when positive,
    /// else the packet's duration, else one frame at the decoder's frame rate. vf_fps rounds this
    /// to decide how long the last frame is repeated.
    func decodeAll(_ onFrame: (UnsafeMutablePointer<AVFrame>, Int64) throws -> Void) throws -> (eof: Int64, framesDecoded: Int, errors: Int) {
        guard !consumed else {
            throw VideoBertError("a VideoReader reads its file once; open a new reader to read it again", file: path)
        }
        consumed = true
        guard let fc = formatContext, let cc = codecContext, let pkt = packet, let frame = decodedFrame else {
            throw VideoBertError("reader is closed", file: path)
        }
        let tb = stream.pointee.time_base
        let microseconds = vb_av_time_base_q()
        let nopts = vb_av_nopts_value()
        // ist->next_pts of the CLI, in AV_TIME_BASE units; the EOF timestamp is its last value.
        var nextPTS: Int64 = 0
        var framesDecoded = 0
        var packetsRead = 0
        var errors = 0
        var lastTimestamp: Int64 = nopts
        var lastPacketTimestamp: Int64 = nopts

        // The duration the CLI adds when a frame has no pkt_duration (`duration_dts`).
        func fallbackDuration(packetDuration: Int64?) -> Int64 {
            if let d = packetDuration, d != 0 { return av_rescale_q(d, tb, microseconds) }
            let fr = cc.pointee.framerate
            guard fr.num != 0, fr.den != 0 else { return 0 }
            let ticksPerFrame = Int64(max(1, cc.pointee.ticks_per_frame))
            let ticks: Int64
            if let parser = av_stream_get_parser(stream) {
                ticks = Int64(parser.pointee.repeat_pict) + 1
            } else {
                ticks = ticksPerFrame
            }
            return Int64(AV_TIME_BASE) * Int64(fr.den) * ticks / Int64(fr.num) / ticksPerFrame
        }

        func receiveFrames(packetDuration: Int64?) throws {
            var failures = 0
            while true {
                let r = avcodec_receive_frame(cc, frame)
                if r == vb_averror_eagain() || r == vb_averror_eof() { return }
                if r < 0 {
                    if errorPolicy == .strict {
                        throw VideoBertError("decoding failed\(timeText(lastTimestamp)): \(ffmpegErrorString(r)) (the file is damaged)", file: path)
                    }
                    // With frame threads a packet's error surfaces here, ahead of good frames
                    // still queued; keep receiving them, as the CLI does.
                    errors += 1
                    failures += 1
                    if failures > 64 { return }
                    continue
                }
                if frame.pointee.decode_error_flags != 0 || frame.pointee.flags & AV_FRAME_FLAG_CORRUPT != 0 {
                    if errorPolicy == .strict {
                        let ts = frame.pointee.best_effort_timestamp
                        throw VideoBertError("corrupt picture\(timeText(ts)) (the file is damaged or truncated)", file: path)
                    }
                    errors += 1
                }
                framesDecoded += 1
                let ts = frame.pointee.best_effort_timestamp
                if ts != nopts {
                    nextPTS = av_rescale_q(ts, tb, microseconds)
                    lastTimestamp = ts
                }
                let duration = frame.pointee.pkt_duration > 0
                    ? av_rescale_q(frame.pointee.pkt_duration, tb, microseconds)
                    : fallbackDuration(packetDuration: packetDuration)
                try onFrame(frame, ts)
                av_frame_unref(frame)
                nextPTS += duration
            }
        }

        defer { av_packet_unref(pkt) }
        while true {
            let r = av_read_frame(fc, pkt)
            let demuxerErrors = FFmpegLog.shared.take(fc)
            if !demuxerErrors.isEmpty {
                if errorPolicy == .strict {
                    let place = lastPacketTimestamp == nopts ? "" : String(format: " after %.3f s of video", seconds(lastPacketTimestamp))
                    throw VideoBertError("\(demuxerErrors[0])\(place) (the file is truncated or damaged)", file: path)
                }
                errors += demuxerErrors.count
            }
            if r == vb_averror_eof() { break }
            if r < 0 {
                if errorPolicy == .strict {
                    throw VideoBertError("reading stopped\(timeText(lastPacketTimestamp)): \(ffmpegErrorString(r)) (the file is truncated or damaged)", file: path)
                }
                // As the ffmpeg CLI (process_input): a read error ends the input; what was read is kept.
                errors += 1
                break
            }
            if pkt.pointee.stream_index != streamIndex {
                av_packet_unref(pkt)
                continue
            }
            packetsRead += 1
            if pkt.pointee.pts != nopts { pkt.pointee.pts += timestampOffset }
            if pkt.pointee.dts != nopts { pkt.pointee.dts += timestampOffset }
            if pkt.pointee.pts != nopts && (lastPacketTimestamp == nopts || pkt.pointee.pts > lastPacketTimestamp) {
                lastPacketTimestamp = pkt.pointee.pts
            }
            if pkt.pointee.flags & AV_PKT_FLAG_CORRUPT != 0 {
                let ts = pkt.pointee.pts != nopts ? pkt.pointee.pts : pkt.pointee.dts
                if errorPolicy == .strict {
                    throw VideoBertError("incomplete or corrupt data\(timeText(ts)) (the file is truncated or damaged)", file: path)
                }
                errors += 1
            }
            let packetDuration = pkt.pointee.duration
            let s = avcodec_send_packet(cc, pkt)
            av_packet_unref(pkt)
            if s < 0 && s != vb_averror_eagain() && s != vb_averror_eof() {
                if errorPolicy == .strict {
                    throw VideoBertError("decoding failed\(timeText(lastTimestamp)): \(ffmpegErrorString(s)) (the file is damaged)", file: path)
                }
                errors += 1
            }
            try receiveFrames(packetDuration: packetDuration)
        }
        // Drain the frames the decoder still holds (reordering delay, frame threads).
        let s = avcodec_send_packet(cc, nil)
        if s < 0 && s != vb_averror_eof() {
            throw VideoBertError("cannot flush the decoder: \(ffmpegErrorString(s))", file: path)
        }
        try receiveFrames(packetDuration: nil)

        // A file cut exactly between two packets reads to a clean EOF; containers that declare
        // their frame count (MP4, MOV) still tell that frames are missing.
        if let declared = declaredFrameCount, packetsRead < declared {
            if errorPolicy == .strict {
                throw VideoBertError("truncated: \(packetsRead) of \(declared) video packets present", file: path)
            }
            errors += 1
        }
        if framesDecoded == 0 && errorPolicy == .strict {
            throw VideoBertError("no picture could be decoded from the video stream", file: path)
        }
        let eof = av_rescale_q_rnd(nextPTS, microseconds, tb, AVRounding(rawValue: AV_ROUND_NEAR_INF.rawValue | AV_ROUND_PASS_MINMAX.rawValue))
        return (eof, framesDecoded, errors)
    }
}
