// FFmpeg's libraries as one Clang module. Each header is its own library:
#include <libavformat/avformat.h>   // libavformat: demuxing, muxing
#include <libavcodec/avcodec.h>     // libavcodec: decoding, encoding
#include <libavutil/avutil.h>       // libavutil: frames, rationals, errors, options
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/error.h>
#include <libswscale/swscale.h>     // libswscale: pixel format conversion and scaling
#include <libswresample/swresample.h> // libswresample: audio resampling, channel mixing, sample formats

// Macros that Swift cannot import directly.
static inline int vb_averror_eof(void) { return AVERROR_EOF; }
static inline int vb_averror_eagain(void) { return AVERROR(EAGAIN); }
static inline int64_t vb_av_nopts_value(void) { return AV_NOPTS_VALUE; }
static inline int vb_av_time_base(void) { return AV_TIME_BASE; }
static inline int vb_averror_invaliddata(void) { return AVERROR_INVALIDDATA; }
static inline int vb_averror_enomem(void) { return AVERROR(ENOMEM); }
static inline int vb_averror_einval(void) { return AVERROR(EINVAL); }
static inline AVRational vb_av_time_base_q(void) { return AV_TIME_BASE_Q; }

// AVRounding flags combined (Swift cannot OR imported C enum values without casts at each use).
static inline int64_t vb_rescale_near_passminmax(int64_t a, AVRational from, AVRational to) {
    return av_rescale_q_rnd(a, from, to, (enum AVRounding)(AV_ROUND_NEAR_INF | AV_ROUND_PASS_MINMAX));
}
