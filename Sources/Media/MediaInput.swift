import CFFmpeg
import Foundation
import Tensor

/// Opening a file for demuxing and a stream's decoder: the steps VideoReader and AudioReader share,
/// with their checks and one-line messages (docs/RELIABILITY.md: a bad file is one line naming it).
extension FFmpegObjects {
    /// What a reader calls its files in messages: "video file" or "media file", and its words for
    /// a text file and for streams that cannot be read.
    struct InputWording {
        var noun: String
        var textFile: String
        var damaged: String
        static let video = InputWording(noun: "video file", textFile: "a text file, not a video (FFmpeg would render it as ANSI art)",
                                        damaged: "the file is damaged or not a video")
        static let media = InputWording(noun: "media file", textFile: "a text file, not a media file", damaged: "the file is damaged")
    }

    /// Opens `path` into `input` and reads its stream information; returns the demuxer's name.
    /// Refuses, in one line naming the file: a missing file, a folder, a FIFO or device, an empty
    /// file, one FFmpeg cannot open, a text file (FFmpeg's "tty" demuxer), unreadable streams.
    func openInput(_ path: String, wording: InputWording) throws -> (context: UnsafeMutablePointer<AVFormatContext>, demuxer: String) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw VideoBertError("no such file", file: path)
        }
        if isDirectory.boolValue { throw VideoBertError("is a folder, not a \(wording.noun)", file: path) }
        // A FIFO, device or socket is named (opening a FIFO would wait for a writer).
        let size = try InputFile.size(path)
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
            throw VideoBertError("not a \(wording.noun) FFmpeg can read, or the file is damaged (\(reason))", file: path)
        }
        input = fc
        let demuxer = fc.pointee.iformat.map { String(cString: $0.pointee.name) } ?? "unknown"
        // FFmpeg's "tty" demuxer renders any *.txt file as ANSI art video.
        if demuxer == "tty" { throw VideoBertError(wording.textFile, file: path) }
        let infoCode = avformat_find_stream_info(fc, nil)
        if infoCode < 0 {
            let reason = FFmpegLog.shared.take(fc).last ?? ffmpegErrorString(infoCode)
            throw VideoBertError("cannot read the streams (\(reason)); \(wording.damaged)", file: path)
        }
        // Messages while probing (a decoder guessing at a stream) are not damage; start afresh.
        _ = FFmpegLog.shared.take(fc)
        return (fc, demuxer)
    }

    /// Only `stream` is read; the demuxer skips the others' payloads.
    func discardAll(but stream: Int32) {
        guard let fc = input else { return }
        for i in 0..<Int(fc.pointee.nb_streams) where Int32(i) != stream {
            fc.pointee.streams[i]?.pointee.discard = AVDISCARD_ALL
        }
    }

    /// Opens a decoder for `stream` into `codec`, and allocates `packet` and `frame`.
    /// - Parameters:
    ///   - kind: "audio " or "" in messages ("no decoder for audio codec 'x'").
    ///   - configure: settings applied between the stream's parameters and opening.
    /// - Returns: the decoder context and the codec's name.
    func openDecoder(_ stream: UnsafeMutablePointer<AVStream>, kind: String, path: String,
                     configure: (UnsafeMutablePointer<AVCodecContext>) -> Void = { _ in }) throws
        -> (context: UnsafeMutablePointer<AVCodecContext>, codecName: String) {
        let par = stream.pointee.codecpar!
        let codecName = String(cString: avcodec_get_name(par.pointee.codec_id))
        guard let decoder = avcodec_find_decoder(par.pointee.codec_id) else {
            throw VideoBertError("no decoder for \(kind)codec '\(codecName)' in the installed FFmpeg", file: path)
        }
        guard let cc = avcodec_alloc_context3(decoder) else {
            throw VideoBertError("out of memory allocating a decoder", file: path)
        }
        codec = cc
        try check(avcodec_parameters_to_context(cc, par), "\(kind)decoder parameters", file: path)
        cc.pointee.pkt_timebase = stream.pointee.time_base
        configure(cc)
        try check(avcodec_open2(cc, decoder, nil), "cannot open the \(codecName) decoder", file: path)
        guard let pkt = av_packet_alloc(), let frm = av_frame_alloc() else {
            throw VideoBertError("out of memory allocating frames", file: path)
        }
        packet = pkt
        frame = frm
        return (cc, codecName)
    }
}
