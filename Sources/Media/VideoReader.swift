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
/// start of the file, not of the video stream (for MPEG-TS/PS, whose clocks may jump, the
/// start of the video stream, as the CLI corrects it there).
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
    /// Number of streams in the file (all kinds; the CLI's sync mode depends on it).
    public let streamCount: Int
    /// Decoder and demuxer names, e.g. "h264" and "mov,mp4,m4a,3gp,3g2,mj2".
    public let codecName: String
    public let formatName: String

    /// The demuxer, decoder, packet and frame (freed with the holder).
    private let owned: FFmpegObjects
    let stream: UnsafeMutablePointer<AVStream>
    let streamIndex: Int32
    /// The CLI's initial `ts_offset` (AV_TIME_BASE units), added to every packet timestamp.
    let initialOffset: Int64
    /// The container's start time as FFmpeg reports it (AV_TIME_BASE units, or AV_NOPTS_VALUE).
    let rawContainerStart: Int64
    /// The demuxer's timestamps may jump (MPEG-TS, MPEG-PS: AVFMT_TS_DISCONT).
    let discontinuousTimestamps: Bool
    private var consumed = false

    /// Frames that the fps sampler is certain to drop are sent to the decoder with
    /// AVDISCARD_NONREF: a frame no other frame references (a non-reference B-frame) is then not
    /// decoded at all. Output is unchanged (proof at `PacketLookahead`); only MP4/MOV and
    /// Matroska/WebM, whose packets carry presentation timestamps. On by default.
    public var skipsUnusedFrames = true

    /// Opens `path` and its best video stream (the CLI's choice: the largest picture, a stream
    /// marked default preferred; cover art is not a video). Throws for a missing or empty file,
    /// a file FFmpeg cannot read, a file without a video stream, or a codec without a decoder.
    public init(path: String, threads: Int = 0, errorPolicy: DecodeErrorPolicy = .strict) throws {
        _ = FFmpegLog.shared
        let owned = FFmpegObjects()
        self.owned = owned
        self.path = path
        self.threads = threads
        self.errorPolicy = errorPolicy

        let (fc, demuxer) = try owned.openInput(path, wording: .video)

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
        streamCount = Int(fc.pointee.nb_streams)
        owned.discardAll(but: best)

        let par = st.pointee.codecpar!
        formatName = demuxer
        let (cc, name) = try owned.openDecoder(st, kind: "", path: path) { cc in
            // As the CLI does (ffmpeg_opt.c add_input_streams): the decoder starts from the stream's
            // average rate; it is the fallback duration of a frame that carries none.
            cc.pointee.framerate = st.pointee.avg_frame_rate
            cc.pointee.thread_count = Int32(max(0, threads))
        }
        codecName = name

        width = Int(par.pointee.width)
        height = Int(par.pointee.height)
        if width <= 0 || height <= 0 {
            throw VideoBertError("video stream has no picture size (\(width)x\(height)); the file is damaged", file: path)
        }
        timeBase = Rational(st.pointee.time_base)
        let nopts = vb_av_nopts_value()
        rawContainerStart = fc.pointee.start_time
        discontinuousTimestamps = fc.pointee.iformat.pointee.flags & AVFMT_TS_DISCONT != 0
        var offsetStart = rawContainerStart == nopts ? 0 : rawContainerStart
        // fftools/ffmpeg.c process_input, "Correcting starttime based on the enabled streams":
        // for formats with discontinuous timestamps the CLI starts at the earliest stream it
        // reads, and it reads only the video stream.
        if discontinuousTimestamps && rawContainerStart != nopts && st.pointee.pts_wrap_bits < 64
            && st.pointee.start_time != nopts {
            let videoStart = av_rescale_q(st.pointee.start_time, st.pointee.time_base, vb_av_time_base_q())
            if videoStart > rawContainerStart { offsetStart = videoStart }
        }
        initialOffset = -offsetStart
        containerStartTime = Double(rawContainerStart == nopts ? 0 : rawContainerStart) / Double(AV_TIME_BASE)
        if st.pointee.start_time != nopts {
            startTime = Double(st.pointee.start_time) * timeBase.value + Double(initialOffset) / Double(AV_TIME_BASE)
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
    /// with its timestamp (stream time base, shifted by the CLI's offset). `onFrame` may take the
    /// frame's buffers with `av_frame_move_ref`.
    ///
    /// Timestamps are the ones the ffmpeg CLI hands to its filter graph (fftools/ffmpeg.c,
    /// `process_input_packet` / `decode_video`, FFmpeg 5.1): the decoder's best-effort timestamp,
    /// computed from packets whose dts the CLI rewrites with its own running estimate (which
    /// matters for containers without presentation timestamps, e.g. AVI with B-frames); a frame
    /// drained at end of stream without one takes the next of the estimates the CLI queued
    /// (`dts_buffer`).
    ///
    /// Returns the end-of-stream timestamp the CLI hands to its filter graph (`send_filter_eof`):
    /// the last frame's timestamp plus its duration (the frame's `pkt_duration` when positive, else
    /// the packet's duration, else one frame at the decoder's frame rate). vf_fps rounds it to
    /// decide how long the last frame is repeated.
    ///
    /// `outputSlot`, when given, maps a timestamp to the output frame slot the sampler rounds it
    /// to; it lets the reader skip decoding frames the sampler is sure to drop (see
    /// `skipsUnusedFrames`).
    func decodeAll(outputSlot: ((Int64) -> Int64)? = nil,
                   _ onFrame: (UnsafeMutablePointer<AVFrame>, Int64) throws -> Void) throws -> (eof: Int64, framesDecoded: Int, errors: Int) {
        guard !consumed else {
            throw VideoBertError("a VideoReader reads its file once; open a new reader to read it again", file: path)
        }
        consumed = true
        guard let fc = owned.input, let cc = owned.codec, let pkt = owned.packet, let frame = owned.frame else {
            throw VideoBertError("reader is closed", file: path)
        }
        let tb = stream.pointee.time_base
        let microseconds = vb_av_time_base_q()
        let nopts = vb_av_nopts_value()
        // The CLI's InputStream fields, in AV_TIME_BASE units: `next_pts` (its last value is the
        // end-of-stream time), `dts` / `next_dts` (its dts estimate), `dts_buffer`.
        var nextPTS: Int64 = 0
        var cliDTS: Int64 = nopts
        var cliNextDTS: Int64 = nopts
        var sawFirstPacket = false
        var offset = initialOffset
        var wrapCorrectionDone = false
        var drainDTS: [Int64] = []
        var framesDecoded = 0
        var packetsRead = 0
        var errors = 0
        var lastTimestamp: Int64 = nopts
        var lastPacketTimestamp: Int64 = nopts
        var lastDecodedTimestamp: Int64 = nopts
        // Skipping needs presentation timestamps on packets: MP4/MOV and Matroska/WebM carry them.
        let carriesPTS = formatName.hasPrefix("mov,") || formatName.hasPrefix("matroska")
        let lookahead: PacketLookahead? = (skipsUnusedFrames && outputSlot != nil && carriesPTS) ? PacketLookahead() : nil

        /// `duration_dts`: the packet's duration, else one frame at the decoder's frame rate.
        func estimatedDuration(packetDuration: Int64?) -> Int64 {
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

        /// One step of the CLI's dts estimate (`next_dts += duration_dts`).
        func advanceDTS(packetDuration: Int64?) {
            let d = estimatedDuration(packetDuration: packetDuration)
            if cliDTS != nopts && d != 0 { cliNextDTS += d } else { cliNextDTS = nopts }
        }

        /// Receives one frame. Returns false when the decoder has nothing more now.
        func receiveFrame(packetDuration: Int64?, draining: Bool) throws -> Bool {
            var failures = 0
            while true {
                if draining {
                    cliDTS = cliNextDTS
                    drainDTS.append(cliDTS == nopts ? nopts : av_rescale_q(cliDTS, microseconds, tb))
                }
                let r = avcodec_receive_frame(cc, frame)
                if draining { advanceDTS(packetDuration: nil) }
                if r == vb_averror_eagain() || r == vb_averror_eof() { return false }
                if r < 0 {
                    if errorPolicy == .strict {
                        throw VideoBertError("decoding failed\(timeText(lastTimestamp)): \(ffmpegErrorString(r)) (the file is damaged)", file: path)
                    }
                    // With frame threads a packet's error surfaces here, ahead of good frames
                    // still queued; keep receiving them, as the CLI does.
                    errors += 1
                    failures += 1
                    if failures > 64 { return false }
                    continue
                }
                break
            }
            if frame.pointee.decode_error_flags != 0 || frame.pointee.flags & AV_FRAME_FLAG_CORRUPT != 0 {
                if errorPolicy == .strict {
                    let ts = frame.pointee.best_effort_timestamp
                    throw VideoBertError("corrupt picture\(timeText(ts)) (the file is damaged or truncated)", file: path)
                }
                errors += 1
            }
            framesDecoded += 1
            var ts = frame.pointee.best_effort_timestamp
            if draining && ts == nopts && !drainDTS.isEmpty { ts = drainDTS.removeFirst() }
            // Skipping is exact only while frames come out in increasing timestamp order.
            if lookahead != nil && (ts == nopts || (lastDecodedTimestamp != nopts && ts <= lastDecodedTimestamp)) {
                lookahead?.enabled = false
            }
            lastDecodedTimestamp = ts
            if ts != nopts {
                nextPTS = av_rescale_q(ts, tb, microseconds)
                lastTimestamp = ts
            }
            let duration = frame.pointee.pkt_duration > 0
                ? av_rescale_q(frame.pointee.pkt_duration, tb, microseconds)
                : estimatedDuration(packetDuration: packetDuration)
            try onFrame(frame, ts)
            av_frame_unref(frame)
            nextPTS += duration
            return true
        }

        /// fftools/ffmpeg.c `process_input` on a packet of our stream: timestamp wrap correction
        /// (33-bit MPEG clocks), the file offset (`ts_offset`), then, for formats with
        /// discontinuous timestamps, a jump of more than 10 s against the CLI's dts estimate moves
        /// the offset; for other formats a dts or pts more than an hour off is dropped.
        func adjustTimestamps(_ packet: UnsafeMutablePointer<AVPacket>) {
            let bits = stream.pointee.pts_wrap_bits
            if !wrapCorrectionDone && rawContainerStart != nopts && bits < 64 {
                let start = av_rescale_q(rawContainerStart, microseconds, tb)
                let wrap = Int64(1) << Int64(bits)
                wrapCorrectionDone = true
                if start + wrap > start {
                    if packet.pointee.dts != nopts && packet.pointee.dts > start + wrap / 2 {
                        packet.pointee.dts -= wrap
                        wrapCorrectionDone = false
                    }
                    if packet.pointee.pts != nopts && packet.pointee.pts > start + wrap / 2 {
                        packet.pointee.pts -= wrap
                        wrapCorrectionDone = false
                    }
                }
            }
            let shift = av_rescale_q(offset, microseconds, tb)
            if packet.pointee.dts != nopts { packet.pointee.dts += shift }
            if packet.pointee.pts != nopts { packet.pointee.pts += shift }
            guard packet.pointee.dts != nopts, cliNextDTS != nopts else { return }
            let second = Int64(AV_TIME_BASE)
            let packetDTS = av_rescale_q(packet.pointee.dts, tb, microseconds)
            let delta = packetDTS - cliNextDTS
            if discontinuousTimestamps {
                if delta < -10 * second || delta > 10 * second || packetDTS + second / 10 < max(nextPTS, cliDTS) {
                    offset -= delta
                    let d = av_rescale_q(delta, microseconds, tb)
                    packet.pointee.dts -= d
                    if packet.pointee.pts != nopts { packet.pointee.pts -= d }
                }
            } else {
                if delta < -3600 * second || delta > 3600 * second { packet.pointee.dts = nopts }
                if packet.pointee.pts != nopts {
                    let ptsDelta = av_rescale_q(packet.pointee.pts, tb, microseconds) - cliNextDTS
                    if ptsDelta < -3600 * second || ptsDelta > 3600 * second { packet.pointee.pts = nopts }
                }
            }
        }

        /// Sends one packet (then unreferences it) and receives what the decoder has ready.
        /// `skip`: decode it only if other frames reference it (AVDISCARD_NONREF).
        func send(_ packet: UnsafeMutablePointer<AVPacket>, skip: Bool) throws {
            if !sawFirstPacket {
                sawFirstPacket = true
                let rate = stream.pointee.avg_frame_rate
                cliDTS = rate.num != 0 ? Int64(-Double(cc.pointee.has_b_frames) * Double(AV_TIME_BASE) / av_q2d(rate)) : 0
            }
            if cliNextDTS == nopts { cliNextDTS = cliDTS }
            if packet.pointee.dts != nopts {
                cliDTS = av_rescale_q(packet.pointee.dts, tb, microseconds)
                cliNextDTS = cliDTS
            }
            cliDTS = cliNextDTS
            packet.pointee.dts = cliDTS == nopts ? nopts : av_rescale_q(cliDTS, microseconds, tb)
            if lookahead != nil { cc.pointee.skip_frame = skip ? AVDISCARD_NONREF : AVDISCARD_DEFAULT }
            let packetDuration = packet.pointee.duration
            let s = avcodec_send_packet(cc, packet)
            av_packet_unref(packet)
            if s < 0 && s != vb_averror_eagain() && s != vb_averror_eof() {
                if errorPolicy == .strict {
                    throw VideoBertError("decoding failed\(timeText(lastTimestamp)): \(ffmpegErrorString(s)) (the file is damaged)", file: path)
                }
                errors += 1
            }
            var received = 0
            while try receiveFrame(packetDuration: packetDuration, draining: false) { received += 1 }
            // The CLI moves its dts estimate on once per decode call that ran: max(1, frames);
            // its `dts` is the estimate at the start of the last call.
            advanceDTS(packetDuration: packetDuration)
            if received >= 1 {
                for _ in 1..<received {
                    cliDTS = cliNextDTS
                    advanceDTS(packetDuration: packetDuration)
                }
                cliDTS = cliNextDTS
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
            // The CLI skips empty packets (an empty packet would mean "drain" to the decoder).
            if pkt.pointee.size == 0 {
                av_packet_unref(pkt)
                continue
            }
            packetsRead += 1
            adjustTimestamps(pkt)
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
            if let queue = lookahead, let outputSlot {
                if let (front, skip) = queue.push(pkt, outputSlot: outputSlot) {
                    try send(front, skip: skip)
                }
            } else {
                try send(pkt, skip: false)
            }
        }
        while let queue = lookahead, let outputSlot, let (front, skip) = queue.pop(outputSlot: outputSlot) {
            try send(front, skip: skip)
        }
        // Drain the frames the decoder still holds (reordering delay, frame threads).
        if lookahead != nil { cc.pointee.skip_frame = AVDISCARD_DEFAULT }
        let s = avcodec_send_packet(cc, nil)
        if s < 0 && s != vb_averror_eof() {
            if errorPolicy == .strict {
                throw VideoBertError("cannot flush the decoder: \(ffmpegErrorString(s)) (the file is damaged)", file: path)
            }
            // As the ffmpeg CLI: a decoder that cannot drain after damaged input keeps what it gave.
            errors += 1
        }
        while try receiveFrame(packetDuration: nil, draining: true) {}

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

/// A short queue of demuxed packets in front of the decoder, so that the timestamps of the
/// packets after a packet are known when it is sent, and the timestamps seen recently.
///
/// Why skipping is exact: with frames in increasing timestamp order, vf_fps writes frame k
/// (slot q_k = its timestamp rounded to 1/F) iff q_{k+1} > max(q_0..q_k), i.e. iff the next
/// frame falls in a later slot. If any packet already seen has a later timestamp p' with
/// slot(p') <= slot(p_k), the true next frame (timestamp in (p_k, p']) has the same slot, so
/// frame k is dropped; and removing a dropped frame gives its predecessor the same slots (up to
/// q_{k+1} = q_k), so every written frame, and the end-of-stream time, stay the same.
final class PacketLookahead {
    static let depth = 16
    private var packets: [UnsafeMutablePointer<AVPacket>] = []
    private let outgoing: UnsafeMutablePointer<AVPacket> = av_packet_alloc()
    private var head = 0
    private var count = 0
    /// Timestamps of the last `recentCapacity` packets demuxed (queued or sent).
    private var recent: [Int64]
    private var recentNext = 0
    private static let recentCapacity = 64
    /// Turned off for good when decoded timestamps are out of order.
    var enabled = true

    init() {
        recent = [Int64](repeating: vb_av_nopts_value(), count: Self.recentCapacity)
        for _ in 0..<Self.depth { packets.append(av_packet_alloc()) }
    }

    deinit {
        for p in packets + [outgoing] { var q: UnsafeMutablePointer<AVPacket>? = p; av_packet_free(&q) }
    }

    /// Queues `packet` (taking its reference). When the queue is full, returns its oldest packet
    /// (still owned by the queue: send it before the next call) and whether it may be skipped.
    func push(_ packet: UnsafeMutablePointer<AVPacket>, outputSlot: (Int64) -> Int64) -> (UnsafeMutablePointer<AVPacket>, Bool)? {
        recent[recentNext] = packet.pointee.pts
        recentNext = (recentNext + 1) % Self.recentCapacity
        var front: (UnsafeMutablePointer<AVPacket>, Bool)? = nil
        if count == Self.depth, let (oldest, skip) = pop(outputSlot: outputSlot) {
            // The oldest packet's slot takes the new one; it leaves through `outgoing`.
            av_packet_move_ref(outgoing, oldest)
            front = (outgoing, skip)
        }
        av_packet_move_ref(packets[(head + count) % Self.depth], packet)
        count += 1
        return front
    }

    /// The oldest queued packet and whether it may be skipped; nil when the queue is empty.
    func pop(outputSlot: (Int64) -> Int64) -> (UnsafeMutablePointer<AVPacket>, Bool)? {
        guard count > 0 else { return nil }
        let packet = packets[head]
        head = (head + 1) % Self.depth
        count -= 1
        let nopts = vb_av_nopts_value()
        let pts = packet.pointee.pts
        guard enabled, pts != nopts else { return (packet, false) }
        var successor = Int64.max
        for r in recent where r != nopts && r > pts && r < successor { successor = r }
        guard successor != Int64.max else { return (packet, false) }
        return (packet, outputSlot(successor) <= outputSlot(pts))
    }
}
