import CFFmpeg

/// The FFmpeg libraries this process loaded: their run-time versions and the encoders the demo
/// and `DemoCorpus.encodeH264` look for (`videobert doctor` prints them).
public enum FFmpegLibraries {
    /// "libavcodec 59.37.100" for each library, from the loaded library (not the headers).
    public static var versions: [(name: String, version: String)] {
        func text(_ v: UInt32) -> String { "\(v >> 16).\((v >> 8) & 0xff).\(v & 0xff)" }
        return [("libavformat", text(avformat_version())), ("libavcodec", text(avcodec_version())),
                ("libavutil", text(avutil_version())), ("libswscale", text(swscale_version())),
                ("libswresample", text(swresample_version()))]
    }

    /// FFmpeg's own version string ("5.1.6-0+deb12u1").
    public static var release: String { String(cString: av_version_info()) }

    /// Whether libavcodec has an encoder of that name ("libx264", "aac", "mpeg4").
    public static func hasEncoder(_ name: String) -> Bool { avcodec_find_encoder_by_name(name) != nil }
}
