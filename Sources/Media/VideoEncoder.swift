import CFFmpeg
import Foundation
import Tensor

/// A test tone to put beside the video (or alone, with `AudioFileWriter`): a sine wave, or the
/// given mono `samples` on every channel.
public struct AudioTrack: Sendable, Equatable {
    /// Length of the track in seconds.
    public var seconds: Double
    /// When the track starts, in seconds (a track starting before the video moves the
    /// container's start time before the video's).
    public var startTime: Double
    public var sampleRate: Int
    public var frequency: Double
    /// Channels in FFmpeg's default layout for the count (1 mono, 2 stereo, 6 5.1, 8 7.1);
    /// channel c carries the tone at `frequency × (1 + c/2)`.
    public var channels: Int
    /// Peak of each channel's sine (0 writes digital silence).
    public var amplitude: Double
    /// Mono samples at `sampleRate` written instead of the sine (zeros after their end);
    /// values are clamped to [-1, 1].
    public var samples: [Float]?
    /// An FFmpeg audio encoder name ("aac", ...); nil: PCM when the container takes it, else AAC.
    public var codec: String?

    public init(seconds: Double, startTime: Double = 0, sampleRate: Int = 16_000, frequency: Double = 440,
                channels: Int = 1, amplitude: Double = 0.3) {
        self.seconds = seconds
        self.startTime = startTime
        self.sampleRate = sampleRate
        self.frequency = frequency
        self.channels = channels
        self.amplitude = amplitude
    }

    /// A track that plays `samples` (mono at `sampleRate`) from `startTime`, encoded with `codec`.
    public init(samples: [Float], sampleRate: Int, startTime: Double = 0, channels: Int = 1, codec: String? = nil) {
        self.init(seconds: Double(samples.count) / Double(max(1, sampleRate)), startTime: startTime, sampleRate: sampleRate,
                  channels: channels)
        self.samples = samples
        self.codec = codec
    }
}

/// Encodes RGB24 frames into a video file with libavcodec + libavformat: H.264 (libx264) when the
/// installed FFmpeg has it, else MPEG-4 part 2; the container follows the file extension
/// (.mp4, .mkv, .avi, .mov, .webm with a VP8/VP9 codec, ...). For test videos and demo corpora.
///
/// Frames go at `startTime + i / frameRate` unless `append(rgb:time:)` is given a time, so a
/// caller can write variable frame rates and videos that start late. The file is written under a
/// temporary name and renamed into place by `finish()`.
public final class VideoEncoder {
    public let path: String
    public let width: Int
    public let height: Int
    public let frameRate: FrameRate
    /// The encoder used (e.g. "libx264", "mpeg4").
    public let codecName: String
    /// Time base of the timestamps handed to the encoder.
    public let timeBase: Rational
    public let startTime: Double

    private let output: MuxedOutput
    /// The encoder, its frame and packet, the RGB converter (freed with the holder).
    private let owned: FFmpegObjects
    private var codecContext: UnsafeMutablePointer<AVCodecContext>? { owned.codec }
    private var frame: UnsafeMutablePointer<AVFrame>? { owned.frame }
    private var packet: UnsafeMutablePointer<AVPacket>? { owned.packet }
    private var converter: OpaquePointer? { owned.scaler }
    private let stream: UnsafeMutablePointer<AVStream>
    private var tone: ToneEncoder?
    private var framesWritten = 0
    /// The RGB frame handed to swscale, with zeroed slack after it: swscale's SIMD input readers
    /// load up to 16 bytes past the last pixel (valgrind: "Invalid read of size 16" in sws_scale),
    /// and whatever lies there leaked into the encoded bytes — the same frames gave different
    /// files from run to run. Allocated once; a copy per frame.
    private let source: UnsafeMutablePointer<UInt8>
    private static let sourceSlack = 64
    private var lastPTS: Int64 = Int64.min
    /// Encoded packets wait here until the next frame's timestamp gives them their duration
    /// (variable frame rates: a frame lasts until the next one).
    private var waiting: [UnsafeMutablePointer<AVPacket>] = []
    private var presentationTimes: [Int64] = []
    private var finished = false

    /// libx264 when the installed FFmpeg has it, else the built-in MPEG-4 part 2 encoder.
    public static var defaultCodec: String {
        avcodec_find_encoder_by_name("libx264") != nil ? "libx264" : "mpeg4"
    }

    /// - Parameters:
    ///   - codec: an FFmpeg encoder name ("libx264", "mpeg4", "libvpx-vp9", "mjpeg", ...); nil for `defaultCodec`.
    ///   - timeBase: units of the stored timestamps; default 1 / frameRate (use a finer one,
    ///     e.g. 1/1000, with explicit frame times).
    ///   - startTime: seconds added to every frame time.
    ///   - audio: a sine tone written beside the video.
    ///   - quality: libx264 CRF (default 18) or MPEG-4 quantiser (default 3); smaller is better.
    ///   - threads: encoder threads; 0 lets the encoder choose.
    public init(path: String, width: Int, height: Int, frameRate: FrameRate, codec: String? = nil,
                timeBase: Rational? = nil, startTime: Double = 0, audio: AudioTrack? = nil,
                quality: Int? = nil, format: String? = nil, threads: Int = 0) throws {
        _ = FFmpegLog.shared
        let owned = FFmpegObjects()
        self.owned = owned
        guard width > 0, height > 0 else { throw VideoBertError("frame size \(width)x\(height) must be positive", file: path) }
        source = .allocate(capacity: width * height * 3 + Self.sourceSlack)
        source.initialize(repeating: 0, count: width * height * 3 + Self.sourceSlack)
        self.path = path
        self.width = width
        self.height = height
        self.frameRate = frameRate
        self.startTime = startTime
        let name = codec ?? Self.defaultCodec
        codecName = name
        let tb = timeBase ?? Rational(num: frameRate.den, den: frameRate.num)
        self.timeBase = tb

        output = try MuxedOutput(path: path, format: format)
        guard let encoder = avcodec_find_encoder_by_name(name) else {
            throw VideoBertError("the installed FFmpeg has no encoder '\(name)'", file: path)
        }
        guard encoder.pointee.type == AVMEDIA_TYPE_VIDEO else {
            throw VideoBertError("'\(name)' is not a video encoder", file: path)
        }
        guard let cc = avcodec_alloc_context3(encoder) else { throw VideoBertError("out of memory", file: path) }
        owned.codec = cc
        cc.pointee.width = Int32(width)
        cc.pointee.height = Int32(height)
        cc.pointee.time_base = tb.av
        cc.pointee.framerate = AVRational(num: frameRate.num, den: frameRate.den)
        // MJPEG takes full-range YUV; others get yuv420p when they take it.
        cc.pointee.pix_fmt = name == "mjpeg" ? AV_PIX_FMT_YUVJ420P : Self.pixelFormat(for: encoder)
        cc.pointee.gop_size = Int32(max(1, frameRate.framesPerSecond.rounded()))
        cc.pointee.thread_count = Int32(max(0, threads))
        if output.needsGlobalHeader { cc.pointee.flags |= Int32(AV_CODEC_FLAG_GLOBAL_HEADER) }
        switch name {
        case "libx264":
            av_opt_set(cc.pointee.priv_data, "preset", "veryfast", 0)
            av_opt_set(cc.pointee.priv_data, "crf", "\(quality ?? 18)", 0)
            // No macroblock-tree rate control: with it, this libx264's SIMD lookahead made the
            // first GOP's bytes depend on the process's memory (the same YUV frames, one thread,
            // gave different files from run to run; mbtree=0, rc-lookahead=0 or asm=0 each made
            // them identical). Files that the same frames always encode to the same bytes are worth
            // what mbtree saves: on the demo's synthetic videos (static backgrounds, where it saves
            // most) 60 videos take 21.0 MB instead of 15.5 MB at the same CRF.
            av_opt_set(cc.pointee.priv_data, "mbtree", "0", 0)
        case "mpeg4", "msmpeg4", "msmpeg4v2", "mjpeg", "mpeg2video", "mpeg1video", "h263p":
            cc.pointee.flags |= Int32(AV_CODEC_FLAG_QSCALE)
            cc.pointee.global_quality = Int32(FF_QP2LAMBDA) * Int32(quality ?? 3)
            // B-frames (reordered, never referenced) as in libx264's output, so test videos
            // exercise reordering whichever encoder is installed.
            if name == "mpeg4" || name == "mpeg2video" { cc.pointee.max_b_frames = 2 }
        default:
            cc.pointee.bit_rate = Int64(Double(width * height) * frameRate.framesPerSecond * 0.3)
        }
        try check(avcodec_open2(cc, encoder, nil), "cannot open the \(name) encoder", file: path)
        stream = try output.addStream(cc)
        stream.pointee.avg_frame_rate = cc.pointee.framerate

        guard let f = av_frame_alloc(), let p = av_packet_alloc() else { throw VideoBertError("out of memory", file: path) }
        owned.frame = f
        owned.packet = p
        f.pointee.format = cc.pointee.pix_fmt.rawValue
        f.pointee.width = Int32(width)
        f.pointee.height = Int32(height)
        try check(av_frame_get_buffer(f, 0), "cannot allocate a frame", file: path)
        guard let sws = sws_getContext(Int32(width), Int32(height), AV_PIX_FMT_RGB24,
                                       Int32(width), Int32(height), cc.pointee.pix_fmt,
                                       SWS_BICUBIC, nil, nil, nil) else {
            throw VideoBertError("cannot convert RGB to the encoder's pixel format", file: path)
        }
        owned.scaler = sws
        if let audio { tone = try ToneEncoder(output: output, track: audio) }
        try output.start()
    }

    deinit {
        source.deallocate()
        abandon()
        for p in waiting { var q: UnsafeMutablePointer<AVPacket>? = p; av_packet_free(&q) }
    }

    /// yuv420p when the encoder takes it (what players and the tests expect), else its first format.
    private static func pixelFormat(for encoder: UnsafePointer<AVCodec>) -> AVPixelFormat {
        guard let list = encoder.pointee.pix_fmts else { return AV_PIX_FMT_YUV420P }
        var i = 0
        while list[i] != AV_PIX_FMT_NONE {
            if list[i] == AV_PIX_FMT_YUV420P { return AV_PIX_FMT_YUV420P }
            i += 1
        }
        return list[0]
    }

    /// Appends one RGB24 frame [height, width, 3]. `time` (seconds, before `startTime` is added)
    /// places it explicitly; times must increase. Without it the frame goes one frame after the
    /// previous default slot (`startTime + i / frameRate`).
    public func append(rgb: UnsafeBufferPointer<UInt8>, time: Double? = nil) throws {
        precondition(rgb.count == width * height * 3, "append takes one \(width)x\(height) RGB24 frame")
        guard !finished, let cc = codecContext, let f = frame else {
            throw VideoBertError("the encoder is finished", file: path)
        }
        let pts: Int64
        if let time {
            pts = Int64(((time + startTime) * Double(timeBase.den) / Double(timeBase.num)).rounded())
        } else {
            let start = Int64((startTime * Double(timeBase.den) / Double(timeBase.num)).rounded())
            pts = start + av_rescale_q(Int64(framesWritten), AVRational(num: frameRate.den, den: frameRate.num), timeBase.av)
        }
        guard pts > lastPTS else {
            throw VideoBertError("frame \(framesWritten): time must increase (timestamp \(pts) after \(lastPTS) in \(timeBase))", file: path)
        }
        lastPTS = pts
        try check(av_frame_make_writable(f), "frame not writable", file: path)
        source.update(from: rgb.baseAddress!, count: rgb.count)
        var src: UnsafePointer<UInt8>? = UnsafePointer(source)
        var srcStride = Int32(width * 3)
        _ = withUnsafeMutablePointer(to: &f.pointee.data) { data in
            withUnsafeMutablePointer(to: &f.pointee.linesize) { linesize in
                data.withMemoryRebound(to: UnsafeMutablePointer<UInt8>?.self, capacity: 8) { dst in
                    linesize.withMemoryRebound(to: Int32.self, capacity: 8) { dstStride in
                        sws_scale(converter, &src, &srcStride, 0, Int32(height), dst, dstStride)
                    }
                }
            }
        }
        f.pointee.pts = pts
        presentationTimes.append(pts)
        try tone?.encode(untilSeconds: Double(pts) * timeBase.value)
        try check(avcodec_send_frame(cc, f), "encoding frame \(framesWritten)", file: path)
        framesWritten += 1
        try drainEncoder(final: false)
    }

    /// Convenience for Swift arrays.
    public func append(rgb: [UInt8], time: Double? = nil) throws {
        try rgb.withUnsafeBufferPointer { try append(rgb: $0, time: time) }
    }

    private func drainEncoder(final: Bool) throws {
        guard let cc = codecContext, let pkt = packet else { return }
        while true {
            let r = avcodec_receive_packet(cc, pkt)
            if r == vb_averror_eagain() || r == vb_averror_eof() { break }
            try check(r, "encoding", file: path)
            guard let held = av_packet_clone(pkt) else { throw VideoBertError("out of memory", file: path) }
            av_packet_unref(pkt)
            waiting.append(held)
        }
        try writeWaiting(final: final)
    }

    /// Writes the packets whose duration is known: up to the next appended frame's timestamp,
    /// or one default frame for the last.
    private func writeWaiting(final: Bool) throws {
        guard let cc = codecContext else { return }
        let defaultDuration = av_rescale_q(1, AVRational(num: frameRate.den, den: frameRate.num), cc.pointee.time_base)
        var kept: [UnsafeMutablePointer<AVPacket>] = []
        for p in waiting {
            let pts = p.pointee.pts
            // The next presentation time after this packet's (times are sorted: append checks).
            var lo = 0, hi = presentationTimes.count
            while lo < hi { let mid = (lo + hi) / 2; if presentationTimes[mid] <= pts { lo = mid + 1 } else { hi = mid } }
            if lo < presentationTimes.count {
                p.pointee.duration = presentationTimes[lo] - pts
            } else if final {
                p.pointee.duration = max(1, defaultDuration)
            } else {
                kept.append(p)
                continue
            }
            try output.write(p, from: cc.pointee.time_base, to: stream)
            var q: UnsafeMutablePointer<AVPacket>? = p
            av_packet_free(&q)
        }
        waiting = kept
    }

    /// Flushes the encoder, completes the audio track, writes the trailer and renames the file into place.
    public func finish() throws {
        guard !finished, let cc = codecContext else { return }
        finished = true
        do {
            try check(avcodec_send_frame(cc, nil), "flushing the encoder", file: path)
            try drainEncoder(final: true)
            try tone?.finish()
            try output.finish()
        } catch {
            output.abandon()
            throw error
        }
    }

    /// Drops the partial file (also done by deinit when `finish()` was not called).
    public func abandon() {
        finished = true
        output.abandon()
    }
}

/// Writes a media file that has an audio stream and no video stream (e.g. to test that a reader
/// says so). The container follows the extension (.wav, .mka, .mkv, .m4a, .mp4, ...).
public enum AudioFileWriter {
    public static func write(path: String, track: AudioTrack, format: String? = nil) throws {
        _ = FFmpegLog.shared
        let output = try MuxedOutput(path: path, format: format)
        do {
            let tone = try ToneEncoder(output: output, track: track)
            try output.start()
            try tone.finish()
            try output.finish()
        } catch {
            output.abandon()
            throw error
        }
    }
}

/// An output file: the muxer context, its streams and the temporary file renamed at the end.
final class MuxedOutput {
    let path: String
    let temporaryPath: String
    private var context: UnsafeMutablePointer<AVFormatContext>?
    private var started = false
    private var done = false

    init(path: String, format: String?) throws {
        self.path = path
        try AtomicFile.createParent(of: path)
        temporaryPath = AtomicFile.temporaryPath(for: path)
        var oc: UnsafeMutablePointer<AVFormatContext>? = nil
        // The format is guessed from the final name; the bytes go to the temporary one.
        let r = avformat_alloc_output_context2(&oc, nil, format, path)
        guard r >= 0, let oc else {
            throw VideoBertError("no container format for this file name\(format.map { " (format '\($0)')" } ?? ""); use .mp4, .mkv, .avi or .mov", file: path)
        }
        // Muxers that reread their output (MP4 faststart) open `url`: make it the file being written.
        av_free(oc.pointee.url)
        oc.pointee.url = av_strdup(temporaryPath)
        context = oc
    }

    deinit {
        abandon()
        avformat_free_context(context)
    }

    var needsGlobalHeader: Bool {
        guard let oc = context else { return false }
        return oc.pointee.oformat.pointee.flags & AVFMT_GLOBALHEADER != 0
    }

    func supports(_ codec: AVCodecID) -> Bool {
        guard let oc = context else { return false }
        return avformat_query_codec(oc.pointee.oformat, codec, FF_COMPLIANCE_NORMAL) == 1
    }

    func addStream(_ cc: UnsafeMutablePointer<AVCodecContext>) throws -> UnsafeMutablePointer<AVStream> {
        guard let oc = context, let st = avformat_new_stream(oc, nil) else {
            throw VideoBertError("cannot add a stream", file: path)
        }
        try check(avcodec_parameters_from_context(st.pointee.codecpar, cc), "stream parameters", file: path)
        st.pointee.time_base = cc.pointee.time_base
        return st
    }

    func start() throws {
        guard let oc = context else { return }
        if oc.pointee.oformat.pointee.flags & AVFMT_NOFILE == 0 {
            try check(avio_open(&oc.pointee.pb, temporaryPath, AVIO_FLAG_WRITE), "cannot create file", file: path)
        }
        // MP4/MOV: index first ("faststart"), so a cut file still opens and shows what it lost.
        var options: OpaquePointer? = nil
        let muxer = String(cString: oc.pointee.oformat.pointee.name)
        if muxer == "mp4" || muxer == "mov" { av_dict_set(&options, "movflags", "+faststart", 0) }
        defer { av_dict_free(&options) }
        try check(avformat_write_header(oc, &options), "cannot write the container header", file: path)
        started = true
    }

    /// Writes one encoded packet (timestamps in `from`, the encoder's time base).
    func write(_ packet: UnsafeMutablePointer<AVPacket>, from: AVRational, to stream: UnsafeMutablePointer<AVStream>) throws {
        guard let oc = context else { return }
        av_packet_rescale_ts(packet, from, stream.pointee.time_base)
        packet.pointee.stream_index = stream.pointee.index
        try check(av_interleaved_write_frame(oc, packet), "writing a packet", file: path)
    }

    func finish() throws {
        guard let oc = context, !done else { return }
        try check(av_write_trailer(oc), "cannot finish the file", file: path)
        if oc.pointee.oformat.pointee.flags & AVFMT_NOFILE == 0 { avio_closep(&oc.pointee.pb) }
        done = true
        try AtomicFile.commit(temporary: temporaryPath, to: path)
    }

    func abandon() {
        guard !done else { return }
        done = true
        if let oc = context, started || oc.pointee.pb != nil {
            if oc.pointee.oformat.pointee.flags & AVFMT_NOFILE == 0 { avio_closep(&oc.pointee.pb) }
        }
        try? FileManager.default.removeItem(atPath: temporaryPath)
    }
}

/// Encodes a sine tone into an audio stream of a `MuxedOutput`: PCM when the container takes it, else AAC.
final class ToneEncoder {
    private let output: MuxedOutput
    private let track: AudioTrack
    private let owned: FFmpegObjects
    private var codecContext: UnsafeMutablePointer<AVCodecContext>? { owned.codec }
    private var frame: UnsafeMutablePointer<AVFrame>? { owned.frame }
    private var packet: UnsafeMutablePointer<AVPacket>? { owned.packet }
    private let stream: UnsafeMutablePointer<AVStream>
    private var samplesWritten = 0
    private let totalSamples: Int
    private let samplesPerFrame: Int
    private let firstSample: Int

    init(output: MuxedOutput, track: AudioTrack) throws {
        let owned = FFmpegObjects()
        self.owned = owned
        self.output = output
        self.track = track
        let path = output.path
        let codecID = output.supports(AV_CODEC_ID_PCM_S16LE) ? AV_CODEC_ID_PCM_S16LE : AV_CODEC_ID_AAC
        let found = track.codec.map { avcodec_find_encoder_by_name($0) } ?? avcodec_find_encoder(codecID)
        guard let encoder = found, encoder.pointee.type == AVMEDIA_TYPE_AUDIO, let cc = avcodec_alloc_context3(encoder) else {
            throw VideoBertError("no audio encoder \(track.codec.map { "'\($0)' " } ?? "")for this container", file: path)
        }
        owned.codec = cc
        cc.pointee.sample_rate = Int32(track.sampleRate)
        cc.pointee.sample_fmt = encoder.pointee.sample_fmts?[0] ?? AV_SAMPLE_FMT_S16
        guard (1...8).contains(track.channels) else { throw VideoBertError("a test tone has 1...8 channels, not \(track.channels)", file: path) }
        av_channel_layout_default(&cc.pointee.ch_layout, Int32(track.channels))
        cc.pointee.time_base = AVRational(num: 1, den: Int32(track.sampleRate))
        cc.pointee.bit_rate = 64_000
        if output.needsGlobalHeader { cc.pointee.flags |= Int32(AV_CODEC_FLAG_GLOBAL_HEADER) }
        try check(avcodec_open2(cc, encoder, nil), "cannot open the audio encoder", file: path)
        stream = try output.addStream(cc)
        samplesPerFrame = cc.pointee.frame_size > 0 ? Int(cc.pointee.frame_size) : 1024
        totalSamples = Int((track.seconds * Double(track.sampleRate)).rounded())
        firstSample = Int((track.startTime * Double(track.sampleRate)).rounded())
        guard let f = av_frame_alloc(), let p = av_packet_alloc() else { throw VideoBertError("out of memory", file: path) }
        owned.frame = f
        owned.packet = p
        f.pointee.format = cc.pointee.sample_fmt.rawValue
        f.pointee.sample_rate = cc.pointee.sample_rate
        f.pointee.nb_samples = Int32(samplesPerFrame)
        try check(av_channel_layout_copy(&f.pointee.ch_layout, &cc.pointee.ch_layout), "channel layout", file: path)
        try check(av_frame_get_buffer(f, 0), "cannot allocate an audio frame", file: path)
    }

    /// Encodes the tone up to `seconds` (so audio and video packets arrive interleaved).
    func encode(untilSeconds seconds: Double) throws {
        guard let cc = codecContext, let f = frame else { return }
        let wanted = (seconds - track.startTime) * Double(track.sampleRate)
        let limit = wanted >= Double(totalSamples) ? totalSamples : max(0, Int(wanted))
        while samplesWritten < limit {
            let n = min(samplesPerFrame, totalSamples - samplesWritten)
            try check(av_frame_make_writable(f), "audio frame not writable", file: output.path)
            f.pointee.nb_samples = Int32(n)
            let channels = track.channels
            let planar = av_sample_fmt_is_planar(cc.pointee.sample_fmt) != 0
            let isFloat = cc.pointee.sample_fmt == AV_SAMPLE_FMT_FLTP || cc.pointee.sample_fmt == AV_SAMPLE_FMT_FLT
            for c in 0..<channels {
                // Planar formats: one plane per channel; packed: channels interleaved in plane 0.
                guard let plane = planar ? f.pointee.extended_data[c] : f.pointee.data.0 else { continue }
                let frequency = track.frequency * (1 + Double(c) / 2)
                for i in 0..<n {
                    let v: Double
                    if let given = track.samples {
                        let k = samplesWritten + i
                        v = k < given.count ? Double(max(-1, min(1, given[k]))) : 0
                    } else {
                        let t = Double(samplesWritten + i) / Double(track.sampleRate)
                        v = track.amplitude * sin(2 * Double.pi * frequency * t)
                    }
                    let at = planar ? i : i * channels + c
                    if isFloat {
                        plane.withMemoryRebound(to: Float.self, capacity: at + 1) { $0[at] = Float(v) }
                    } else {
                        plane.withMemoryRebound(to: Int16.self, capacity: at + 1) { $0[at] = Int16(v * 32767) }
                    }
                }
            }
            f.pointee.pts = Int64(firstSample + samplesWritten)
            try check(avcodec_send_frame(cc, f), "encoding audio", file: output.path)
            samplesWritten += n
            try drain()
        }
    }

    func finish() throws {
        try encode(untilSeconds: .infinity)
        guard let cc = codecContext else { return }
        try check(avcodec_send_frame(cc, nil), "flushing the audio encoder", file: output.path)
        try drain()
    }

    private func drain() throws {
        guard let cc = codecContext, let pkt = packet else { return }
        while true {
            let r = avcodec_receive_packet(cc, pkt)
            if r == vb_averror_eagain() || r == vb_averror_eof() { return }
            try check(r, "encoding audio", file: output.path)
            try output.write(pkt, from: cc.pointee.time_base, to: stream)
            av_packet_unref(pkt)
        }
    }
}
