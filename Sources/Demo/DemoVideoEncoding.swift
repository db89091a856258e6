import Media

extension DemoCorpus {
    /// H.264 in MP4 through libavcodec (VideoEncoder writes under a temporary name and renames),
    /// with the sound as a mono AAC stream (libavcodec's native `aac` encoder) when there is one.
    public static func encodeH264(path: String, width: Int, height: Int, fps: Int, frames: Int, sound: [Float]?,
                                   render: (Int, UnsafeMutableBufferPointer<UInt8>) -> Void) throws {
        let audio = sound.map { AudioTrack(samples: $0, sampleRate: DemoSound.sampleRate, codec: "aac") }
        let encoder = try VideoEncoder(path: path, width: width, height: height, frameRate: FrameRate(fps), audio: audio, quality: 20,
                                       threads: 1)  // videos are rendered in parallel instead
        var buffer = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<frames {
            buffer.withUnsafeMutableBufferPointer { render(i, $0) }
            try buffer.withUnsafeBufferPointer { try encoder.append(rgb: $0) }
        }
        try encoder.finish()
    }
}
