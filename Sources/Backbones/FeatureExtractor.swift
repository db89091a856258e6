import Foundation
import Media
import Tensor

/// `videobert features`: videos → `<id>.npy` (float32 [rows, dim]) + `<id>.json` (`FeatureRecord`)
/// with a backbone, its preset preprocessing (FeaturePreset) and the user's weights.
///
/// Streaming per video: frames are decoded, cropped and normalised into a batch of `batchSize`
/// images, the backbone runs on each full batch, and only the per-frame vectors are kept
/// (dim floats per frame). Outputs are written under temporary names and renamed (the `.json`
/// last, so a `.json` means the video is finished: a rerun skips it). A video that fails is
/// reported and the others are still done.
public final class FeatureExtractor {
    public let preset: FeaturePreset
    /// The per-frame backbone (ResNet, CLIP's vision tower); nil for S3D.
    let net: (any FrameBackbone)?
    /// The 3-D backbone of an S3D preset (S3DExtractor.swift); nil for the per-frame ones.
    let clipNet: S3D?
    public var batchSize = 16
    /// Decoder threads (0: FFmpeg's choice).
    public var decoderThreads = 0

    public init(preset: FeaturePreset, weights: String) throws {
        self.preset = preset
        if let variant = S3DVariant(rawValue: preset.backbone) {
            clipNet = try S3D(variant, weights: try WeightFile.open(weights))
            net = nil
            return
        }
        if CLIPConfig.presets[preset.backbone] != nil {
            net = try CLIPVisionTower(checkpoint: try CLIPCheckpoint(path: weights, preset: preset.backbone))
            clipNet = nil
            return
        }
        guard ResNet.architectures[preset.backbone] != nil else {
            throw VideoBertError("backbone '\(preset.backbone)' is not available (known: \(FeaturePreset.names.joined(separator: ", ")))")
        }
        net = try ResNet(name: preset.backbone, weights: try WeightFile.open(weights))
        clipNet = nil
    }

    public struct Summary: Sendable {
        public var written: [String] = []
        public var skipped: [String] = []
        public var failed: [(id: String, error: String)] = []
    }

    public static func outputPaths(id: String, out: String) -> (npy: String, json: String) {
        ((out as NSString).appendingPathComponent(id + ".npy"), (out as NSString).appendingPathComponent(id + ".json"))
    }

    /// Extracts every (id, video) not already finished in `out`.
    public func run(_ videos: [(id: String, video: String)], out: String, progress: Bool = true) throws -> Summary {
        try AtomicFile.createDirectory(out)
        var summary = Summary()
        let bar = ProgressReporter(label: "features", total: videos.count, unit: "videos", enabled: progress)
        for (id, video) in videos {
            let paths = Self.outputPaths(id: id, out: out)
            if FileManager.default.fileExists(atPath: paths.json) && FileManager.default.fileExists(atPath: paths.npy) {
                summary.skipped.append(id)
                bar.advance()
                continue
            }
            do {
                let (values, record) = try extract(video: video) { frames in bar.setStatus("\(id): \(frames) frames") }
                try NPY.write(values, shape: [record.rows.count, record.dim], to: paths.npy)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                try AtomicFile.write(try encoder.encode(record), to: paths.json)
                summary.written.append(id)
                bar.advance(counters: ["rows": Double(record.rows.count)])
            } catch {
                let message = (error as? VideoBertError)?.description ?? "\(video): \(error)"
                logLine("error: \(message)")
                summary.failed.append((id, message))
                bar.advance()
            }
        }
        bar.finish()
        return summary
    }

    /// One video's rows [rows, dim] and its record.
    public func extract(video: String, onFrames: (Int) -> Void = { _ in }) throws -> ([Float], FeatureRecord) {
        if let clipNet { return try extractClips(video: video, net: clipNet, onFrames: onFrames) }
        guard let net else { throw VideoBertError("no backbone loaded", file: video) }
        let (reader, W, H, crop) = try openVideo(video)
        guard net.accepts(width: crop.w, height: crop.h) else {
            throw VideoBertError("frames of \(W)x\(H) cannot be cropped to \(crop.w)x\(crop.h) (the backbone's input)", file: video)
        }
        let dim = net.featureDim, pixels = crop.w * crop.h * 3
        var batch = [Float](repeating: 0, count: batchSize * pixels)
        var inBatch = 0
        var perFrame: [Float] = []
        var times: [Double] = []

        func flush() {
            guard inBatch > 0 else { return }
            let start = perFrame.count
            perFrame.append(contentsOf: repeatElement(0, count: inBatch * dim))
            batch.withUnsafeBufferPointer { b in
                perFrame.withUnsafeMutableBufferPointer { o in
                    net.features(b.baseAddress!, N: inBatch, H: crop.h, W: crop.w, out: o.baseAddress! + start)
                }
            }
            inBatch = 0
        }

        try reader.forEachFrame(fps: preset.fps, width: W, height: H) { frame in
            batch.withUnsafeMutableBufferPointer { b in normalize(frame.pixels, width: W, crop: crop, into: b.baseAddress! + inBatch * pixels) }
            times.append(frame.time)
            inBatch += 1
            if inBatch == batchSize { flush() }
            onFrames(times.count)
        }
        flush()

        let frames = times.count, f = preset.framesPerRow, s = preset.strideFrames
        guard frames >= f else {
            throw VideoBertError("\(frames) frames at \(preset.fps) fps; a row needs \(f)", file: video)
        }
        let rowCount = (frames - f) / s + 1
        var rows = [Float](repeating: 0, count: rowCount * dim)
        var spans: [[Double]] = []
        let frameSeconds = 1 / preset.fps.framesPerSecond
        for r in 0..<rowCount {
            let first = r * s
            for j in first..<(first + f) {
                for d in 0..<dim { rows[r * dim + d] += perFrame[j * dim + d] }
            }
            let inv = 1 / Float(f)
            for d in 0..<dim { rows[r * dim + d] *= inv }
            spans.append([times[first], times[first + f - 1] + frameSeconds])
        }
        let record = FeatureRecord(backbone: preset.backbone, dim: dim, fps: preset.fps.framesPerSecond,
                                   scale: [W, H], crop: [crop.w, crop.h], mean: preset.mean, std: preset.std,
                                   frames_per_row: f, stride_frames: s, pool: "mean", rows: spans)
        return (rows, record)
    }
}

extension FeatureExtractor {
    typealias Crop = (x: Int, y: Int, w: Int, h: Int)

    /// A video's reader, its frames' size once scaled by the preset, and the preset's crop of
    /// them; refuses sizes out of range and crops that do not fit, naming the video.
    func openVideo(_ video: String) throws -> (reader: VideoReader, W: Int, H: Int, crop: Crop) {
        let reader = try VideoReader(path: video, threads: decoderThreads)
        guard reader.width > 0, reader.height > 0 else { throw VideoBertError("video has no picture size", file: video) }
        let (W, H) = preset.scaledSize(width: reader.width, height: reader.height)
        guard W >= 1, H >= 1, W <= 16384, H <= 16384 else {
            throw VideoBertError("scaled frame size \(W)x\(H) is out of range (video \(reader.width)x\(reader.height))", file: video)
        }
        let crop = preset.cropRect(width: W, height: H)
        guard crop.x >= 0, crop.y >= 0, crop.w >= 1, crop.h >= 1 else {
            throw VideoBertError("frames of \(W)x\(H) cannot be cropped to \(crop.w)x\(crop.h) (the backbone's input)", file: video)
        }
        return (reader, W, H, crop)
    }

    /// One decoded RGB frame (width × its height × 3 bytes) cropped and normalised into `dst`:
    /// (p/255 − mean) / std per channel, channels last, crop.h × crop.w × 3 floats.
    func normalize(_ pixels: UnsafeBufferPointer<UInt8>, width W: Int, crop: Crop, into dst: UnsafeMutablePointer<Float>) {
        let mean = preset.mean, std = preset.std
        for y in 0..<crop.h {
            let src = pixels.baseAddress! + ((crop.y + y) * W + crop.x) * 3
            let row = dst + y * crop.w * 3
            for i in 0..<(crop.w * 3) {
                let c = i % 3
                row[i] = (Float(src[i]) / 255 - mean[c]) / std[c]
            }
        }
    }
}

/// A backbone that turns each normalised frame (NHWC [N, H, W, 3]) into one vector.
protocol FrameBackbone: Sendable {
    var featureDim: Int { get }
    /// Whether frames of width×height are a valid input.
    func accepts(width: Int, height: Int) -> Bool
    func features(_ images: UnsafePointer<Float>, N: Int, H: Int, W: Int, out: UnsafeMutablePointer<Float>)
}

extension ResNet: FrameBackbone {
    func accepts(width: Int, height: Int) -> Bool { width >= Self.minimumSide && height >= Self.minimumSide }
}
