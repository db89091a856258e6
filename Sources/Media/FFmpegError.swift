import CFFmpeg
import Tensor

/// FFmpeg's error codes as text (`av_strerror`), e.g. "Invalid data found when processing input".
public func ffmpegErrorString(_ code: Int32) -> String {
    var buf = [CChar](repeating: 0, count: 256)
    if av_strerror(code, &buf, buf.count) < 0 { return "FFmpeg error \(code)" }
    return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Throws a `VideoBertError` naming `file` when an FFmpeg call returned a negative code.
@discardableResult
func check(_ code: Int32, _ what: String, file: String) throws -> Int32 {
    if code < 0 { throw VideoBertError("\(what): \(ffmpegErrorString(code))", file: file) }
    return code
}

/// FFmpeg objects owned by a reader or encoder, freed in `deinit` however far the owner's
/// initializer got: a Swift class whose initializer throws before all its stored properties are
/// set never runs its own deinit, so the owner assigns this holder first and fills it in.
final class FFmpegObjects {
    /// A demuxer context (closed with avformat_close_input).
    var input: UnsafeMutablePointer<AVFormatContext>?
    var codec: UnsafeMutablePointer<AVCodecContext>?
    var packet: UnsafeMutablePointer<AVPacket>?
    var frame: UnsafeMutablePointer<AVFrame>?
    var scaler: OpaquePointer?

    deinit {
        sws_freeContext(scaler)
        av_frame_free(&frame)
        av_packet_free(&packet)
        avcodec_free_context(&codec)
        if let input { FFmpegLog.shared.unwatch(input) }
        avformat_close_input(&input)
    }
}
