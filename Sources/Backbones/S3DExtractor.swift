import Foundation
import Media
import Tensor

extension FeatureExtractor {
    /// One video's rows with a 3-D backbone: row i is the S3D feature of frames [i·stride,
    /// i·stride + framesPerRow) as one clip (a trailing partial clip is dropped). Frames are decoded,
    /// cropped and normalised as for the 2-D backbones (FeatureExtractor.extract) into a buffer
    /// that holds only the frames a later row still needs, so memory is one clip, not one video.
    func extractClips(video: String, net: S3D, onFrames: (Int) -> Void) throws -> ([Float], FeatureRecord) {
        let (reader, W, H, crop) = try openVideo(video)
        let f = preset.framesPerRow, s = preset.strideFrames
        if let why = net.rejection(T: f, H: crop.h, W: crop.w) { throw VideoBertError(why, file: video) }
        let joint = preset.joint && net.jointDim > 0
        let dim = joint ? net.jointDim : net.featureDim
        let pixels = crop.w * crop.h * 3

        var buffer: [Float] = []          // frames [bufferStart, bufferStart + buffer.count / pixels)
        var bufferStart = 0
        var times: [Double] = []
        var rows: [Float] = []
        var spans: [[Double]] = []
        let frameSeconds = 1 / preset.fps.framesPerSecond

        try reader.forEachFrame(fps: preset.fps, width: W, height: H) { frame in
            let index = times.count
            times.append(frame.time)
            onFrames(times.count)
            // A frame no row reads (stride > frames per row) is not kept.
            // (Then every earlier frame has been dropped: the buffer is empty and starts after this one.)
            let nextRow = spans.count * s
            guard index >= nextRow else {
                bufferStart = index + 1
                return
            }
            let base = buffer.count
            buffer.append(contentsOf: repeatElement(0, count: pixels))
            buffer.withUnsafeMutableBufferPointer { b in normalize(frame.pixels, width: W, crop: crop, into: b.baseAddress! + base) }
            while spans.count * s + f <= times.count {
                let first = spans.count * s
                let start = rows.count
                rows.append(contentsOf: repeatElement(0, count: dim))
                buffer.withUnsafeBufferPointer { b in
                    rows.withUnsafeMutableBufferPointer { o in
                        net.features(b.baseAddress! + (first - bufferStart) * pixels, N: 1, T: f, H: crop.h, W: crop.w,
                                     joint: joint, out: o.baseAddress! + start)
                    }
                }
                spans.append([times[first], times[first + f - 1] + frameSeconds])
                // Drop the frames before the next row's start.
                let keepFrom = min(spans.count * s, bufferStart + buffer.count / pixels)
                if keepFrom > bufferStart {
                    buffer.removeFirst((keepFrom - bufferStart) * pixels)
                    bufferStart = keepFrom
                }
            }
        }
        guard !spans.isEmpty else {
            throw VideoBertError("\(times.count) frames at \(preset.fps) fps; a clip needs \(f)", file: video)
        }
        let record = FeatureRecord(backbone: preset.backbone, dim: dim, fps: preset.fps.framesPerSecond,
                                   scale: [W, H], crop: [crop.w, crop.h], mean: preset.mean, std: preset.std,
                                   frames_per_row: f, stride_frames: s, pool: joint ? "clip-joint" : "clip", rows: spans)
        return (rows, record)
    }
}
