import CFFmpeg

/// Which decoded frame becomes which output frame when a video is resampled to a fixed rate F:
/// the timestamp logic of `ffmpeg -i V -vf fps=F ... -f rawvideo -`, without the pixels.
///
/// Two stages, each a faithful port of the code it names (FFmpeg 5.1):
///
/// 1. libavfilter/vf_fps.c with its defaults (round=near, eof_action=round, no start_time).
///    Input timestamps are rescaled to units of 1/F with round-to-nearest (`q`). The first frame
///    with a timestamp fixes `next`, the timestamp of the next output. With two frames buffered,
///    the older one is written at `next`, `next + 1`, ... while the newer one's `q` is still
///    later than `next`, then dropped. At end of stream the last frame is repeated while `next`
///    is before the end timestamp rounded the same way (the CLI's end timestamp is the last
///    frame's timestamp plus its duration; see `VideoReader.decodeAll`).
/// 2. fftools/ffmpeg.c `do_video_out`, constant-frame-rate sync. For the rawvideo muxer (no
///    AVFMT_VARIABLE_FPS flag) the CLI picks VSYNC_CFR, or VSYNC_VSCFR when the input file has
///    a single stream (ffmpeg_opt.c). CFR's output counter starts at 0: when the video starts
///    after the container (an audio track starts first), the first frame is repeated to fill
///    the gap, so frame i is at i / F. VSCFR instead starts the counter at the first frame's
///    slot ("Not duplicating initial frames"), so frame i is at (first slot + i) / F.
struct FPSFilterSchedule {
    /// vf_fps `next_pts`: the output timestamp (units of 1/F) the next written frame gets.
    private(set) var next: Int64? = nil
    /// `q` of the buffered frame, when one is buffered.
    private(set) var pending: Int64? = nil

    static let noTimestamp: Int64 = vb_av_nopts_value()

    /// A run of output timestamps `first ..< first + count` for the buffered frame.
    struct Run: Equatable {
        var first: Int64
        var count: Int64
        static let none = Run(first: 0, count: 0)
    }

    /// A new frame with rescaled timestamp `q` arrives. Returns the outputs of the frame that
    /// was buffered so far; afterwards the new frame is the buffered one.
    mutating func push(_ q: Int64) -> Run {
        defer { pending = q }
        guard let p = pending else { return .none }
        if next == nil {
            // "Discarding initial frame(s) with no timestamp": a buffered frame without one
            // cannot start the output timeline.
            if p == Self.noTimestamp { return .none }
            next = p
        }
        // Write the buffered frame while the newer one is not yet acceptable (q > next).
        guard q != Self.noTimestamp, q > next! else { return .none }
        let run = Run(first: next!, count: q - next!)
        next = q
        return run
    }

    /// End of stream at rescaled timestamp `end`: the buffered frame fills up to it.
    mutating func finish(end: Int64) -> Run {
        defer { pending = nil }
        guard let p = pending else { return .none }
        if next == nil {
            if p == Self.noTimestamp { return .none }
            next = p
        }
        guard end != Self.noTimestamp, end > next! else { return .none }
        let run = Run(first: next!, count: end - next!)
        next = end
        return run
    }
}

/// The ffmpeg CLI's constant-frame-rate output sync (fftools/ffmpeg.c `do_video_out`,
/// VSYNC_CFR / VSYNC_VSCFR) applied to the fps filter's output, whose timestamps `p` are
/// consecutive integers.
struct ConstantRateSync {
    /// VSYNC_VSCFR (the input file has one stream): the first frame is not repeated to fill
    /// the time before it; the output starts at its slot.
    let startsAtFirstFrame: Bool
    /// `ost->sync_opts`: the slot (timestamp in units of 1/F) of the next frame written.
    private(set) var slot: Int64 = 0
    /// `ost->frame_number`: frames written so far.
    private(set) var written: Int64 = 0

    init(startsAtFirstFrame: Bool = false) {
        self.startsAtFirstFrame = startsAtFirstFrame
    }

    /// How many copies of the frame with fps-filter timestamp `p` are written, and the slot of
    /// the first; the copies take slots first ..< first + n.
    mutating func copies(forTimestamp p: Int64) -> (first: Int64, count: Int64) {
        // adjust_frame_pts_to_encoder_tb: the float timestamp is nudged away from exact
        // midpoints by 2^-17 in the direction of its sign (FFSIGN(0) is -1).
        let nudge = 1.0 / Double(1 << 17)
        let syncIPTS = Double(p) + (p > 0 ? nudge : -nudge)
        let duration = 1.0  // one frame of F in the encoder time base 1/F
        var delta0 = syncIPTS - Double(slot)
        var delta = delta0 + duration
        if delta0 < 0 && delta > 0 {
            delta0 = 0  // "Clipping frame in rate conversion"
        }
        if startsAtFirstFrame && written == 0 && delta0 >= 0.5 {
            // VSYNC_VSCFR: "Not duplicating initial frames".
            delta = duration
            slot = Int64(syncIPTS.rounded(.toNearestOrEven))  // llrint
        }
        // The nb0_frames copies of the previous frame never change the count: the fps filter's
        // output has no gaps, so only the first frame can be late, and then there is no
        // previous frame to copy.
        var n: Int64 = 1
        if delta < -1.1 {
            n = 0
        } else if delta > 1.1 {
            n = Int64(Float(delta).rounded(.toNearestOrEven))  // llrintf
        }
        // "frame duplication too large, skipping" (dts_error_threshold 3600 × 30): the frame
        // is dropped and the counter stays.
        if n > 3600 * 30 { return (slot, 0) }
        let first = slot
        slot += n
        written += n
        return (first, n)
    }
}
