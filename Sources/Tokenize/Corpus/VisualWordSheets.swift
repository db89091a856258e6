import Foundation
import Media
import Tensor

/// Contact sheets of visual words, as in the VideoBERT paper's figures: for each word, the clips
/// nearest its centroid, one row per clip, `framesPerClip` frames across.
///
/// Frames come from the corpus' stored low-resolution frames (`clip_frames.npy`) when present,
/// otherwise they are decoded from the source videos. Distances come from the stored clip
/// features (`clip_features.npy`) or the per-video work files that `tokenize` leaves.
public struct VisualWordSheets {
    public let corpus: TokenizedCorpus
    public let vocabulary: VisualVocabulary

    public init(corpus: TokenizedCorpus) throws {
        self.corpus = corpus
        vocabulary = try VisualVocabulary.load(from: corpus.visualVocabPath)
    }

    /// Clip features of the whole corpus, [clips, dim].
    func clipFeatures() throws -> [Float] {
        if let stored = try corpus.storedRows("clip_features") {
            var all: [Float] = []
            stored.appendFloatRows(0..<stored.rows, to: &all)
            return all
        }
        var all: [Float] = []
        for v in corpus.index.videos {
            let p = ((corpus.path as NSString).appendingPathComponent("work") as NSString)
                .appendingPathComponent(CorpusTokenizer.safeName(v.id) + ".features.npy")
            guard FileManager.default.fileExists(atPath: p) else {
                throw VideoBertError("no clip features for '\(v.id)' (tokenize with store.features: true, or keep the work folder)", file: corpus.path)
            }
            all += try NPY.read(p).floats()
        }
        return all
    }

    /// For each word in `words`, up to `perWord` clips nearest its centroid (closest first).
    public func nearestClips(words: [Int], perWord: Int) throws -> [[Int]] {
        let feats = try clipFeatures()
        let dim = vocabulary.dim
        guard feats.count == corpus.clipCount * dim else {
            throw VideoBertError("clip features do not match the corpus (\(feats.count / max(dim, 1)) rows for \(corpus.clipCount) clips)", file: corpus.path)
        }
        var byWord: [Int: [Int]] = [:]
        for (c, w) in corpus.clipWords.enumerated() { byWord[Int(w), default: []].append(c) }
        return words.map { w in
            let centroid = Array(vocabulary.leafCentroid(w))
            let clips = byWord[w] ?? []
            let scored = clips.map { c -> (Int, Float) in
                var d: Float = 0
                for k in 0..<dim { let x = feats[c * dim + k] - centroid[k]; d += x * x }
                return (c, d)
            }
            return scored.sorted { ($0.1, $0.0) < ($1.1, $1.0) }.prefix(perWord).map(\.0)
        }
    }

    /// Frames of the given clips: [framesPerClip] images each, `side` pixels square.
    public func frames(ofClips clips: [Int], framesPerClip: Int, side: Int) throws -> [Int: [RGBImage]] {
        var out: [Int: [RGBImage]] = [:]
        if let arr = try corpus.storedRows("clip_frames") {
            guard arr.shape.count == 5, arr.dtype == .uint8 else {
                throw VideoBertError("clip_frames.npy must be uint8 [clips, frames, h, w, 3]", file: arr.files[0].path)
            }
            let (f, h, w) = (arr.shape[1], arr.shape[2], arr.shape[3])
            for c in clips where c >= 0 && c < arr.rows {
                var bytes: [UInt8] = []
                arr.appendByteRows([c], to: &bytes)
                out[c] = (0..<min(f, framesPerClip)).map { j in
                    let o = (j * h * w) * 3
                    return RGBImage(width: w, height: h, pixels: Array(bytes[o..<(o + h * w * 3)]))
                }
            }
            return out
        }
        // Decode: group the clips by video, decode each video once at a rate that gives
        // `framesPerClip` frames per clip.
        var byVideo: [Int: [Int]] = [:]
        for c in clips { byVideo[Int(corpus.clipVideo[c]), default: []].append(c) }
        for (v, vclips) in byVideo {
            guard let source = corpus.index.videos[v].source else { continue }
            let clipSeconds = corpus.index.clipSeconds
            let fps = FrameRate(approximating: Double(framesPerClip) / clipSeconds)
            let reader = try VideoReader(path: source, threads: 1)
            var wanted: [Int: (clip: Int, slot: Int)] = [:]
            for c in vclips {
                let start = Double(corpus.clipTimes[2 * c])
                let first = Int((start * fps.framesPerSecond).rounded())
                for j in 0..<framesPerClip { wanted[first + j] = (c, j) }
                out[c] = []
            }
            try reader.forEachFrame(fps: fps, width: side, height: side) { frame in
                if let (c, _) = wanted[frame.index] {
                    out[c]!.append(RGBImage(width: side, height: side, pixels: Array(frame.pixels)))
                }
            }
        }
        return out
    }

    /// Writes `word_<id>.png` for each word and `words.png`, an overview with the nearest clip's
    /// middle frame of every word. Returns the words drawn.
    public func write(to dir: String, words: [Int]? = nil, perWord: Int = 6, framesPerClip: Int = 4, side: Int = 48) throws -> [Int] {
        try AtomicFile.createDirectory(dir)
        let used = Set(corpus.clipWords.map(Int.init))
        let list = (words ?? Array(0..<vocabulary.leaves)).filter { used.contains($0) }
        let nearest = try nearestClips(words: list, perWord: perWord)
        let frames = try frames(ofClips: Array(Set(nearest.flatMap { $0 })), framesPerClip: framesPerClip, side: side)
        var overview: [RGBImage] = []
        for (w, clips) in zip(list, nearest) {
            let rows = clips.compactMap { c -> RGBImage? in
                guard let f = frames[c], !f.isEmpty else { return nil }
                return RGBImage.grid(f, columns: f.count, gap: 1)
            }
            guard !rows.isEmpty else { continue }
            try RGBImage.grid(rows, columns: 1, gap: 2).writePNG(to: (dir as NSString).appendingPathComponent("word_\(w).png"))
            if let f = frames[clips[0]], !f.isEmpty { overview.append(f[f.count / 2]) }
        }
        if !overview.isEmpty {
            let cols = Int(Double(overview.count).squareRoot().rounded(.up))
            try RGBImage.grid(overview, columns: cols, gap: 2).writePNG(to: (dir as NSString).appendingPathComponent("words.png"))
        }
        return list
    }
}
