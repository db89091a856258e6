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
