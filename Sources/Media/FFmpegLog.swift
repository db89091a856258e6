import CFFmpeg
import Foundation

/// FFmpeg's log, routed through one callback.
///
/// - By default FFmpeg prints nothing: videobert reports failures itself, one line per file.
///   `VIDEOBERT_FFMPEG_LOG=<level>` (quiet, panic, fatal, error, warning, info, verbose, debug,
///   trace) prints FFmpeg's messages up to that level on stderr, prefixed `[ffmpeg]`.
/// - Error messages about a watched demuxer context are kept, because some damage is reported
///   only there: a Matroska file cut in the middle of a cluster reads to a clean end of file, and
///   the only sign is the demuxer's "File ended prematurely". `VideoReader` watches its
///   `AVFormatContext` and turns these messages into its errors (with FFmpeg's own words).
///
/// Thread-safe: FFmpeg logs from decoder threads; the table is guarded by a lock.
final class FFmpegLog: @unchecked Sendable {  // @unchecked: all mutable state is behind `lock`.
    static let shared = FFmpegLog()

    private let lock = NSLock()
    private var errors: [UnsafeMutableRawPointer: [String]] = [:]
    /// Messages at or below this level are printed (AV_LOG_QUIET prints nothing).
    let printLevel: Int32

    private init() {
        let levels: [String: Int32] = [
            "quiet": AV_LOG_QUIET, "panic": AV_LOG_PANIC, "fatal": AV_LOG_FATAL, "error": AV_LOG_ERROR,
            "warning": AV_LOG_WARNING, "info": AV_LOG_INFO, "verbose": AV_LOG_VERBOSE,
            "debug": AV_LOG_DEBUG, "trace": AV_LOG_TRACE,
        ]
        let wanted = ProcessInfo.processInfo.environment["VIDEOBERT_FFMPEG_LOG"]?.lowercased()
        printLevel = wanted.flatMap { levels[$0] } ?? AV_LOG_QUIET
        // Levels above ERROR are never needed unless printed; FFmpeg skips formatting them.
        av_log_set_level(max(printLevel, AV_LOG_ERROR))
        av_log_set_callback(ffmpegLogCallback)
    }

    /// Starts keeping error messages logged about `context`.
    func watch(_ context: UnsafeMutableRawPointer) {
        lock.lock(); defer { lock.unlock() }
        errors[context] = []
    }

    /// Stops watching `context`; returns what it logged and was not yet taken.
    @discardableResult
    func unwatch(_ context: UnsafeMutableRawPointer) -> [String] {
        lock.lock(); defer { lock.unlock() }
        return errors.removeValue(forKey: context) ?? []
    }

    /// The error messages logged about `context` since the last call.
    func take(_ context: UnsafeMutableRawPointer) -> [String] {
        lock.lock(); defer { lock.unlock() }
        guard let found = errors[context], !found.isEmpty else { return [] }
        errors[context] = []
        return found
    }

    fileprivate func log(_ context: UnsafeMutableRawPointer?, _ level: Int32, _ format: UnsafePointer<CChar>?, _ args: CVaListPointer) {
        guard let format else { return }
        let printIt = level <= printLevel
        var keep = false
        if level <= AV_LOG_ERROR, let context {
            lock.lock()
            keep = errors[context] != nil
            lock.unlock()
        }
        guard printIt || keep else { return }
        var buffer = [CChar](repeating: 0, count: 1024)
        _ = vsnprintf(&buffer, buffer.count, format, args)
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if text.isEmpty { return }
        if printIt { FileHandle.standardError.write(Data("[ffmpeg] \(text)\n".utf8)) }
        if keep, let context {
            lock.lock()
            errors[context]?.append(text)
            lock.unlock()
        }
    }
}

private func ffmpegLogCallback(_ context: UnsafeMutableRawPointer?, _ level: Int32,
                               _ format: UnsafePointer<CChar>?, _ args: CVaListPointer?) {
    guard let args else { return }
    FFmpegLog.shared.log(context, level, format, args)
}
