import Foundation
import Tensor

/// The clips' stored visual input, memory-mapped from the corpus (Tensor/MappedNPY.swift):
/// nothing proportional to the corpus is read into the heap; `rows` copies (and converts) only
/// a batch's clips.
public enum ClipInputs: Sendable {
    /// uint8 [clips, F, S, S, 3] (clip_frames.npy) with F and S.
    case frames(ClipFrames, framesPerClip: Int, size: Int)
    /// float32 or float16 [clips, dim] (clip_features.npy; float16 with `store.features_dtype:
    /// float16`), converted to float32 per batch.
    case features(MappedRows, dim: Int)

    /// Maps what `source` ("frames" or "features") needs; errors name the corpus and the tokenize option.
    /// With `centerFrames`, each video's frames become their difference from the video's mean
    /// frame (per pixel and channel), stored as clamp(128 + x − mean): what stays is what changes
    /// within the video — hands, objects, actions — not its static background (the same reason
    /// Recipes/tokenize-demo.yaml centres clip features per video). The means (one frame per
    /// video) are computed here; each batch's frames are centred as they are copied out.
    public static func load(corpus: TokenizedCorpus, source: String, centerFrames: Bool = false) throws -> ClipInputs {
        let name = source == "frames" ? "clip_frames" : "clip_features"
        // One array across the shards of a sharded corpus (CorpusShards.swift); rows checked against the clips.
        let path = corpus.shardFolders.count == 1 ? (corpus.shardFolders[0] as NSString).appendingPathComponent(name + ".npy") : corpus.path
        guard corpus.index.extras.contains(name),
              corpus.shardFolders.allSatisfy({ FileManager.default.fileExists(atPath: ($0 as NSString).appendingPathComponent(name + ".npy")) }),
              let array = try corpus.storedRows(name) else {
            throw VideoBertError("has no \(name).npy; tokenize with store.\(source): true for frontend.source \(source)", file: corpus.path)
        }
        if source == "frames" {
            guard array.dtype == .uint8, array.shape.count == 5, array.shape[2] == array.shape[3], array.shape[4] == 3 else {
                throw VideoBertError("expected uint8 [clips, frames, size, size, 3], got \(array.dtype.rawValue) \(array.shape)", file: path)
            }
            let (F, S) = (array.shape[1], array.shape[2])
            let means = centerFrames ? videoMeanFrames(array, corpus: corpus, framesPerClip: F, size: S) : nil
            return .frames(ClipFrames(file: array, means: means, clipVideo: corpus.clipVideo), framesPerClip: F, size: S)
        }
        guard array.shape.count == 2 else { throw VideoBertError("expected [clips, dim], got \(array.shape)", file: path) }
        guard array.dtype == .float32 || array.dtype == .float16 else {
            throw VideoBertError("expected float32 or float16 clip features, found dtype \(array.dtype.rawValue)", file: path)
        }
        return .features(array, dim: array.shape[1])
    }

    /// Each video's mean frame (per pixel and channel, accumulated in Float frame by frame, as
    /// `centerPerVideo`), nil for videos without clips.
    static func videoMeanFrames(_ frames: MappedRows, corpus: TokenizedCorpus, framesPerClip F: Int, size S: Int) -> [[Float]?] {
        let pixels = S * S * 3
        var out = [[Float]?](repeating: nil, count: corpus.index.videos.count)
        guard pixels > 0, frames.rows > 0 else { return out }
        for (v, video) in corpus.index.videos.enumerated() where video.clipEnd > video.clipBegin {
            let count = (video.clipEnd - video.clipBegin) * F
            var mean = [Float](repeating: 0, count: pixels)
            for c in video.clipBegin..<video.clipEnd {
                guard let clip = frames.rowPointer(c)?.assumingMemoryBound(to: UInt8.self) else { continue }
                for f in 0..<F {
                    let frame = clip + f * pixels
                    for i in 0..<pixels { mean[i] += Float(frame[i]) }
                }
            }
            for i in 0..<pixels { mean[i] /= Float(count) }
            out[v] = mean
        }
        return out
    }
}

/// The stored frames of a corpus (mapped) and, when centred per video, each video's mean frame.
public struct ClipFrames: Sendable {
    public let file: MappedRows
    /// Per video (index.json order): its mean frame [S·S·3], or nil (no centring, or no clips).
    let means: [[Float]?]?
    let clipVideo: MappedColumn<Int32>
}

extension ClipInputs {
    /// The stored input of `clips` (corpus clip indices), in order: frames (front-end "frames",
    /// features empty) or features (front-end "features", frames empty), as float32.
    public func rows(_ clips: [Int]) -> (frames: [UInt8], features: [Float]) {
        var frames: [UInt8] = [], features: [Float] = []
        switch self {
        case .frames(let stored, let F, let S):
            stored.file.appendByteRows(clips, to: &frames)
            if let means = stored.means {
                let pixels = S * S * 3
                frames.withUnsafeMutableBufferPointer { out in
                    for (k, c) in clips.enumerated() {
                        guard let mean = means[Int(stored.clipVideo[c])] else { continue }
                        for f in 0..<F {
                            let frame = out.baseAddress! + (k * F + f) * pixels
                            for i in 0..<pixels { frame[i] = UInt8(max(0, min(255, (128 + Float(frame[i]) - mean[i]).rounded()))) }
                        }
                    }
                }
            }
        case .features(let stored, _):
            stored.appendFloatRows(clips, to: &features)
        }
        return (frames, features)
    }
}

/// frames ← clamp(128 + frames − the video's mean frame), video by video (see `ClipInputs.load`).
public func centerPerVideo(_ frames: inout [UInt8], corpus: TokenizedCorpus, framesPerClip F: Int, size S: Int) {
    let pixels = S * S * 3
    frames.withUnsafeMutableBufferPointer { all in
        let base = all.baseAddress!
        for video in corpus.index.videos where video.clipEnd > video.clipBegin {
            let first = video.clipBegin * F, count = (video.clipEnd - video.clipBegin) * F
            var mean = [Float](repeating: 0, count: pixels)
            for f in 0..<count {
                let frame = base + (first + f) * pixels
                for i in 0..<pixels { mean[i] += Float(frame[i]) }
            }
            for i in 0..<pixels { mean[i] /= Float(count) }
            for f in 0..<count {
                let frame = base + (first + f) * pixels
                for i in 0..<pixels { frame[i] = UInt8(max(0, min(255, (128 + Float(frame[i]) - mean[i]).rounded()))) }
            }
        }
    }
}
