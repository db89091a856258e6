import Foundation
import Tensor

/// The clips' stored visual input, loaded once from the corpus.
public enum ClipInputs {
    /// uint8 [clips, F, S, S, 3] (clip_frames.npy) with F and S.
    case frames([UInt8], framesPerClip: Int, size: Int)
    /// float32 [clips, dim] (clip_features.npy).
    case features([Float], dim: Int)

    /// Reads what `source` ("frames" or "features") needs; errors name the corpus and the tokenize option.
    /// With `centerFrames`, each video's frames become their difference from the video's mean
    /// frame (per pixel and channel), stored as clamp(128 + x − mean): what stays is what changes
    /// within the video — hands, objects, actions — not its static background (the same reason
    /// Recipes/tokenize-demo.yaml centres clip features per video).
    public static func load(corpus: TokenizedCorpus, source: String, centerFrames: Bool = false) throws -> ClipInputs {
        let name = source == "frames" ? "clip_frames" : "clip_features"
        let path = (corpus.path as NSString).appendingPathComponent(name + ".npy")
        guard corpus.index.extras.contains(name), FileManager.default.fileExists(atPath: path) else {
            throw VideoBertError("has no \(name).npy; tokenize with store.\(source): true for frontend.source \(source)", file: corpus.path)
        }
        let array = try NPY.read(path)
        guard array.shape.first == corpus.clipCount else {
            throw VideoBertError("has \(array.shape.first ?? 0) rows, the corpus \(corpus.clipCount) clips", file: path)
        }
        if source == "frames" {
            guard array.shape.count == 5, array.shape[2] == array.shape[3], array.shape[4] == 3 else {
                throw VideoBertError("expected uint8 [clips, frames, size, size, 3], got \(array.shape)", file: path)
            }
            var frames = try array.values(UInt8.self)
            if centerFrames { centerPerVideo(&frames, corpus: corpus, framesPerClip: array.shape[1], size: array.shape[2]) }
            return .frames(frames, framesPerClip: array.shape[1], size: array.shape[2])
        }
        guard array.shape.count == 2 else { throw VideoBertError("expected [clips, dim], got \(array.shape)", file: path) }
        return .features(try array.floats(), dim: array.shape[1])
    }
}

extension ClipInputs {
    /// The stored input of `clips` (corpus clip indices), in order: frames (front-end "frames",
    /// features empty) or features (front-end "features", frames empty).
    public func rows(_ clips: [Int]) -> (frames: [UInt8], features: [Float]) {
        var frames: [UInt8] = [], features: [Float] = []
        switch self {
        case .frames(let all, let F, let S):
            let per = F * S * S * 3
            frames.reserveCapacity(clips.count * per)
            for c in clips { frames += all[(c * per)..<((c + 1) * per)] }
        case .features(let all, let dim):
            features.reserveCapacity(clips.count * dim)
            for c in clips { features += all[(c * dim)..<((c + 1) * dim)] }
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
