import CFFmpeg
import Foundation
import Tensor

/// The audio stream a reader chose (what the file says about it before resampling).
public struct AudioStreamInfo: Sendable, Equatable {
    /// Decoder name, e.g. "aac", "pcm_s16le", "opus".
    public let codecName: String
    /// Channels and sample rate of the stream (the first decoded frame's, when the container did not say).
    public let channels: Int
    public let sampleRate: Int
    /// FFmpeg's description of the channel layout, e.g. "mono", "stereo", "7.1".
    public let channelLayout: String
}

/// Mono float32 samples at one rate, on the file's time line.
///
/// Sample `i` is at `startTime + i / sampleRate` seconds from the start of the file (the same
/// time line as `VideoReader`'s frames and `Clip.startTime`), so `samples(from:to:)` cuts the audio
/// of a clip by its times. Decoded frames are concatenated as the ffmpeg CLI writes them to a raw
/// output (`ffmpeg -i X -ac 1 -ar SR -f f32le -`): a gap in the stream's timestamps is not filled.
public struct DecodedAudio: Sendable {
    public var samples: [Float]
    public let sampleRate: Int
    /// Seconds from the start of the file of the first sample (0 when there are no samples).
    public let startTime: Double
    /// The stream read; nil when the file has no audio stream (then `samples` is empty).
    public let stream: AudioStreamInfo?
    /// Packets or frames that could not be read or decoded (only with `DecodeErrorPolicy.tolerant`).
    public let decodeErrors: Int

    public init(samples: [Float], sampleRate: Int, startTime: Double, stream: AudioStreamInfo?, decodeErrors: Int = 0) {
        self.samples = samples
        self.sampleRate = sampleRate
        self.startTime = startTime
        self.stream = stream
        self.decodeErrors = decodeErrors
    }

    /// True when the file has an audio stream.
    public var hasAudio: Bool { stream != nil }
    /// Largest absolute sample value (0 for no samples).
    public var peak: Float {
        samples.withUnsafeBufferPointer { p in
            var m: Float = 0
            for v in p { m = max(m, abs(v)) }
            return m
        }
    }
    /// Digital silence: no audio stream, no samples, or every sample exactly 0.
    public var isSilent: Bool { peak == 0 }
    /// Length in seconds of the samples.
    public var seconds: Double { Double(samples.count) / Double(sampleRate) }

    /// The samples of the span [start, end) seconds: round((end − start) × rate) values, sample k
    /// taken from `samples[round((start − startTime) × rate) + k]`, zero where the span lies
    /// before the first or after the last sample (no audio stream: all zeros).
    public func samples(from start: Double, to end: Double) -> [Float] {
        guard start.isFinite, end.isFinite, end > start else { return [] }
        return samples(from: start, count: Int(((end - start) * Double(sampleRate)).rounded()))
    }

    /// `count` samples from `start` seconds, as `samples(from:to:)` (zeros outside the audio).
    public func samples(from start: Double, count: Int) -> [Float] {
        guard start.isFinite, count > 0 else { return [] }
        let rate = Double(sampleRate)
        var out = [Float](repeating: 0, count: max(0, count))
        let first = Int(((start - startTime) * rate).rounded())
        let lo = max(0, first), hi = min(samples.count, first + count)
        if lo < hi {
            out.withUnsafeMutableBufferPointer { o in
                samples.withUnsafeBufferPointer { s in
                    for i in lo..<hi { o[i - first] = s[i] }
                }
            }
        }
        return out
    }
}

/// libswresample's context, freed with the holder.
final class ResamplerHandle {
    var context: OpaquePointer?
    deinit { swr_free(&context) }
}

/// Demuxes and decodes the audio stream of one file with libavformat/libavcodec and turns it into
/// mono float32 at one sample rate with libswresample: the conversion the ffmpeg CLI makes for
/// `-ac 1 -ar SR -f f32le` (its filter graph inserts one `aresample` with swresample's default
/// options: channel mix by `swr_build_matrix`, 32-tap polyphase resampler).
///
/// Documented cases that are not errors:
/// - a file without an audio stream (a video-only file): `stream` is nil, `readAll` gives no samples;
/// - silent audio: samples of value 0 (`DecodedAudio.isSilent`);
/// - an audio stream without packets: no samples.
///
/// A damaged audio stream (a demuxer or decoder error, missing packets the container declares,
/// a file cut inside a Matroska cluster) throws a `VideoBertError` naming the file and the time,
/// unless the policy is `.tolerant`, which keeps what decodes and counts the problems. A WAV file
/// cut short reads as a shorter file: FFmpeg's WAV demuxer does not check the length in its header.
///
/// Owns its FFmpeg contexts (format, codec, packet, frame, resampler) and frees them in `deinit`.
/// One pass over the file; not thread-safe, separate readers can run on separate threads.
public final class AudioReader {
    public let path: String
    /// Output sample rate (Hz).
    public let sampleRate: Int
    public let errorPolicy: DecodeErrorPolicy
    /// The chosen audio stream; nil when the file has none.
    public let stream: AudioStreamInfo?
    /// Demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2", "wav".
    public let formatName: String
    /// Container duration in seconds (nil when unknown).
    public let duration: Double?

    /// Output rates accepted: 1 kHz to 768 kHz.
    public static let sampleRates = 1_000...768_000

    private let owned: FFmpegObjects
    private let resampler = ResamplerHandle()
    private let streamIndex: Int32
    private let streamPointer: UnsafeMutablePointer<AVStream>?
    /// The CLI's `ts_offset` (AV_TIME_BASE units): minus the container's start time.
    private let initialOffset: Int64
    private var consumed = false

    /// Opens `path` and its audio stream (the CLI's choice: most channels, a stream marked default
    /// preferred). Throws for a missing or empty file, a file FFmpeg cannot read, a codec without a
    /// decoder, or a sample rate outside `sampleRates`; a file without audio opens with `stream` nil.
    public init(path: String, sampleRate: Int = 16_000, errorPolicy: DecodeErrorPolicy = .strict) throws {
        _ = FFmpegLog.shared
        let owned = FFmpegObjects()
        self.owned = owned
        self.path = path
        self.sampleRate = sampleRate
        self.errorPolicy = errorPolicy
        guard Self.sampleRates.contains(sampleRate) else {
            throw VideoBertError("audio sample rate must be \(Self.sampleRates.lowerBound)...\(Self.sampleRates.upperBound) Hz, got \(sampleRate)", file: path)
        }

        let (fc, demuxer) = try owned.openInput(path, wording: .media)
        formatName = demuxer
        duration = fc.pointee.duration > 0 ? Double(fc.pointee.duration) / Double(AV_TIME_BASE) : nil
        let nopts = vb_av_nopts_value()
        initialOffset = fc.pointee.start_time == nopts ? 0 : -fc.pointee.start_time

        // Stream choice as fftools/ffmpeg_opt.c (FFmpeg 5.1) maps the first audio output:
        // most channels, +5,000,000 for the default disposition.
        var best: Int32 = -1
        var bestScore = -1
        for i in 0..<Int(fc.pointee.nb_streams) {
            guard let st = fc.pointee.streams[i], st.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_AUDIO else { continue }
            let score = Int(st.pointee.codecpar.pointee.ch_layout.nb_channels)
                + (st.pointee.disposition & AV_DISPOSITION_DEFAULT != 0 ? 5_000_000 : 0)
            if score > bestScore { bestScore = score; best = Int32(i) }
        }
        streamIndex = best
        owned.discardAll(but: best)
        guard best >= 0, let st = fc.pointee.streams[Int(best)] else {
            streamPointer = nil
            stream = nil
            return
        }
        streamPointer = st
        let (cc, codecName) = try owned.openDecoder(st, kind: "audio ", path: path)
        let channels = Int(cc.pointee.ch_layout.nb_channels)
        let rate = Int(cc.pointee.sample_rate)
        if rate < 0 || rate > 10_000_000 || channels < 0 || channels > 1024 {
            throw VideoBertError("audio stream declares \(channels) channels at \(rate) Hz; the file is damaged", file: path)
        }
        stream = AudioStreamInfo(codecName: codecName, channels: channels, sampleRate: rate,
                                 channelLayout: Self.describe(&cc.pointee.ch_layout))
    }

    private static func describe(_ layout: UnsafePointer<AVChannelLayout>) -> String {
        var buf = [CChar](repeating: 0, count: 128)
        guard av_channel_layout_describe(layout, &buf, buf.count) >= 0 else { return "unknown" }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func timeText(_ ts: Int64) -> String {
        guard ts != vb_av_nopts_value(), let st = streamPointer else { return "" }
        let s = Double(ts) * av_q2d(st.pointee.time_base) + Double(initialOffset) / Double(AV_TIME_BASE)
        return String(format: " at %.3f s", s)
    }

    // MARK: - decoding

    /// Decodes the whole audio stream and hands the converted samples to `body` in chunks (valid
    /// only during the call), in order; `body`'s second argument is the time in seconds of the
    /// first sample of the whole stream (the same for every chunk). Returns the number of samples,
    /// that start time and the problems counted under `.tolerant`. A file without audio calls
    /// nothing and returns zero samples.
    @discardableResult
    public func forEachChunk(_ body: (UnsafeBufferPointer<Float>, Double) throws -> Void) throws -> (samples: Int, startTime: Double, decodeErrors: Int) {
        guard !consumed else {
            throw VideoBertError("an AudioReader reads its file once; open a new reader to read it again", file: path)
        }
        consumed = true
        guard let st = streamPointer else { return (0, 0, 0) }
        guard let fc = owned.input, let cc = owned.codec, let pkt = owned.packet, let frame = owned.frame else {
            throw VideoBertError("reader is closed", file: path)
        }
        let nopts = vb_av_nopts_value()
        let tb = st.pointee.time_base
        let shift = av_rescale_q(initialOffset, vb_av_time_base_q(), tb)
        var errors = 0
        var packetsRead = 0
        var total = 0
        var startTime: Double? = nil
        var lastTimestamp = nopts
        // The converter's input parameters; rebuilt (after draining) when a frame changes them,
        // as the CLI reconfigures its filter graph.
        var configured: (format: Int32, rate: Int32, layout: AVChannelLayout)? = nil
        var output = [Float](repeating: 0, count: 4096)
        defer {
            if var c = configured { av_channel_layout_uninit(&c.layout) }
        }

        func emit(_ count: Int) throws {
            guard count > 0 else { return }
            total += count
            try output.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[0..<count]), startTime ?? 0) }
        }

        /// Converts `frame` (nil: drains the converter).
        func convert(_ frame: UnsafeMutablePointer<AVFrame>?) throws {
            guard let swr = resampler.context, let c = configured else { return }
            let inCount = frame.map { Int($0.pointee.nb_samples) } ?? 0
            // Room for all output: the delay plus this frame, at the output rate, and some slack.
            let delay = Int(swr_get_delay(swr, Int64(sampleRate)))
            let needed = delay + Int((Double(inCount) * Double(sampleRate) / Double(c.rate)).rounded(.up)) + 64
            if output.count < needed { output = [Float](repeating: 0, count: needed) }
            let written: Int32 = output.withUnsafeMutableBufferPointer { o in
                var outPlane: UnsafeMutablePointer<UInt8>? = UnsafeMutableRawPointer(o.baseAddress!).assumingMemoryBound(to: UInt8.self)
                if let frame {
                    return withUnsafeMutablePointer(to: &outPlane) { outPtr in
                        frame.pointee.extended_data.withMemoryRebound(to: UnsafePointer<UInt8>?.self, capacity: 1) { inPtr in
                            swr_convert(swr, outPtr, Int32(o.count), inPtr, Int32(inCount))
                        }
                    }
                }
                return withUnsafeMutablePointer(to: &outPlane) { outPtr in
                    swr_convert(swr, outPtr, Int32(o.count), nil, 0)
                }
            }
            if written < 0 {
                throw VideoBertError("resampling audio failed\(timeText(lastTimestamp)): \(ffmpegErrorString(written))", file: path)
            }
            try emit(Int(written))
        }

        func configure(for frame: UnsafeMutablePointer<AVFrame>) throws {
            var layout = AVChannelLayout()
            if frame.pointee.ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || frame.pointee.ch_layout.nb_channels <= 0 {
                // As the CLI (ffmpeg_filter.c, guess_input_channel_layout): the default layout for the count.
                let n = frame.pointee.ch_layout.nb_channels
                guard n > 0 && n <= 1024 else {
                    throw VideoBertError("audio frame\(timeText(lastTimestamp)) has \(n) channels; the file is damaged", file: path)
                }
                av_channel_layout_default(&layout, n)
            } else {
                try check(av_channel_layout_copy(&layout, &frame.pointee.ch_layout), "channel layout", file: path)
            }
            let format = frame.pointee.format, rate = frame.pointee.sample_rate
            if var c = configured {
                if c.format == format && c.rate == rate && av_channel_layout_compare(&c.layout, &layout) == 0 {
                    av_channel_layout_uninit(&layout)
                    return
                }
                try convert(nil)  // what the old converter holds
                av_channel_layout_uninit(&c.layout)
                configured = nil
                swr_free(&resampler.context)
            }
            guard rate > 0 && rate <= 10_000_000 else {
                av_channel_layout_uninit(&layout)
                throw VideoBertError("audio frame\(timeText(lastTimestamp)) has sample rate \(rate); the file is damaged", file: path)
            }
            var mono = AVChannelLayout()
            av_channel_layout_default(&mono, 1)
            var swr: OpaquePointer? = nil
            let r = swr_alloc_set_opts2(&swr, &mono, AV_SAMPLE_FMT_FLT, Int32(sampleRate),
                                        &layout, AVSampleFormat(rawValue: format), rate, 0, nil)
            resampler.context = swr
            if r < 0 || swr == nil {
                av_channel_layout_uninit(&layout)
                throw VideoBertError("cannot convert this audio (\(ffmpegErrorString(r)))", file: path)
            }
            let i = swr_init(swr)
            if i < 0 {
                av_channel_layout_uninit(&layout)
                throw VideoBertError("cannot convert this audio\(timeText(lastTimestamp)): \(ffmpegErrorString(i))", file: path)
            }
            configured = (format, rate, layout)
        }

        func receive() throws {
            var failures = 0
            while true {
                let r = avcodec_receive_frame(cc, frame)
                if r == vb_averror_eagain() || r == vb_averror_eof() { return }
                if r < 0 {
                    if errorPolicy == .strict {
                        throw VideoBertError("decoding audio failed\(timeText(lastTimestamp)): \(ffmpegErrorString(r)) (the file is damaged)", file: path)
                    }
                    errors += 1
                    failures += 1
                    if failures > 64 { return }  // a decoder that keeps failing: give up on this packet
                    continue
                }
                defer { av_frame_unref(frame) }
                if frame.pointee.decode_error_flags != 0 || frame.pointee.flags & AV_FRAME_FLAG_CORRUPT != 0 {
                    if errorPolicy == .strict {
                        throw VideoBertError("corrupt audio\(timeText(frame.pointee.best_effort_timestamp)) (the file is damaged or truncated)", file: path)
                    }
                    errors += 1
                }
                if startTime == nil {
                    let ts = frame.pointee.best_effort_timestamp
                    startTime = ts == nopts ? 0 : Double(ts) * av_q2d(tb)
                }
                try configure(for: frame)
                try convert(frame)
            }
        }

        defer { av_packet_unref(pkt) }
        while true {
            let r = av_read_frame(fc, pkt)
            let demuxerErrors = FFmpegLog.shared.take(fc)
            if !demuxerErrors.isEmpty {
                if errorPolicy == .strict {
                    let place = lastTimestamp == nopts ? "" : " (audio read up to\(timeText(lastTimestamp).dropFirst(3)))"
                    throw VideoBertError("\(demuxerErrors[0])\(place); the file is truncated or damaged", file: path)
                }
                errors += demuxerErrors.count
            }
            if r == vb_averror_eof() { break }
            if r < 0 {
                if errorPolicy == .strict {
                    throw VideoBertError("reading stopped\(timeText(lastTimestamp)): \(ffmpegErrorString(r)) (the file is truncated or damaged)", file: path)
                }
                errors += 1
                break
            }
            if pkt.pointee.stream_index != streamIndex || pkt.pointee.size == 0 {
                av_packet_unref(pkt)
                continue
            }
            packetsRead += 1
            if pkt.pointee.pts != nopts { pkt.pointee.pts += shift }
            if pkt.pointee.dts != nopts { pkt.pointee.dts += shift }
            let ts = pkt.pointee.pts != nopts ? pkt.pointee.pts : pkt.pointee.dts
            if ts != nopts && (lastTimestamp == nopts || ts > lastTimestamp) { lastTimestamp = ts }
            if pkt.pointee.flags & AV_PKT_FLAG_CORRUPT != 0 {
                if errorPolicy == .strict {
                    throw VideoBertError("incomplete or corrupt audio data\(timeText(ts)) (the file is truncated or damaged)", file: path)
                }
                errors += 1
            }
            let s = avcodec_send_packet(cc, pkt)
            av_packet_unref(pkt)
            if s < 0 && s != vb_averror_eagain() && s != vb_averror_eof() {
                if errorPolicy == .strict {
                    throw VideoBertError("decoding audio failed\(timeText(ts)): \(ffmpegErrorString(s)) (the file is damaged)", file: path)
                }
                errors += 1
            }
            try receive()
        }
        let s = avcodec_send_packet(cc, nil)
        if s < 0 && s != vb_averror_eof() {
            if errorPolicy == .strict {
                throw VideoBertError("cannot flush the audio decoder: \(ffmpegErrorString(s)) (the file is damaged)", file: path)
            }
            errors += 1
        }
        try receive()
        try convert(nil)
        // Containers that declare their packet count (MP4, MOV) tell that packets are missing
        // from a file cut between two packets.
        let declared = Int(st.pointee.nb_frames)
        if declared > 0 && packetsRead < declared {
            if errorPolicy == .strict {
                throw VideoBertError("truncated: \(packetsRead) of \(declared) audio packets present (audio ends\(timeText(lastTimestamp)))", file: path)
            }
            errors += 1
        }
        return (total, startTime ?? 0, errors)
    }

    /// Most samples `readAll` holds (2 GiB of float32), whatever `maxSeconds` says.
    public static let maxSamples = 1 << 29

    /// The whole stream as one `DecodedAudio`. Throws when it would hold more than `maxSeconds`
    /// of audio or `maxSamples` samples (bounds the memory a long or hostile file can take:
    /// 4 bytes per sample).
    public func readAll(maxSeconds: Double = 6 * 3600) throws -> DecodedAudio {
        let limit = Int(min(maxSeconds * Double(sampleRate), Double(Self.maxSamples)))
        var samples: [Float] = []
        if let d = duration, d.isFinite, d > 0 {
            samples.reserveCapacity(min(limit, Int(d * Double(sampleRate)) + 1024))
        }
        let result = try forEachChunk { chunk, _ in
            if samples.count + chunk.count > limit {
                throw VideoBertError("more than \(min(maxSeconds, Double(limit) / Double(sampleRate))) s of audio at \(sampleRate) Hz; raise the limit to read it", file: path)
            }
            samples.append(contentsOf: chunk)
        }
        return DecodedAudio(samples: samples, sampleRate: sampleRate, startTime: result.startTime,
                            stream: stream, decodeErrors: result.decodeErrors)
    }
}
