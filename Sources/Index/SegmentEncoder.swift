import Features
import Foundation
import Media
import Model
import Recipe
import Tensor
import Tokenize
import Train

// Everything model-specific of the index lives in this file: which checkpoint kinds give text and
// video-segment embeddings in one space (a dual encoder), and how. An index stores the segments'
// embeddings; a search embeds its query with the same encoder and ranks by cosine similarity.

/// A dual encoder: texts and video segments to L2-normalised embeddings of one size.
public protocol SegmentEncoder: AnyObject {
    /// What the embeddings are, for the index's metadata and reports (e.g. "cbt-pooled").
    var name: String { get }
    /// E: the embedding size.
    var dimension: Int { get }
    /// WordPieces of a text (segments are cut by this count, as the training corpus was).
    func tokenCount(_ text: String) -> Int
    /// How transcripts become segments (the training corpus's settings).
    var sentenceSplitter: SentenceSplitter { get }
    /// [texts.count] unit rows of E values.
    func encodeText(_ texts: [String]) throws -> [[Float]]
    /// The embeddings of `spans` (seconds) of the video file at `path`: [spans.count] unit rows.
    func encodeSegments(video path: String, spans: [(start: Double, end: Double)]) throws -> [[Float]]
}

/// What a checkpoint offers an index: its kind and, when it has one, a dual encoder.
public struct CheckpointEncoder {
    public var kind: String
    public var encoder: SegmentEncoder?
    /// Why there is no encoder (for the index's metadata), or which one it is.
    public var note: String

    /// Opens `checkpoint` for indexing and searching.
    /// - Parameter corpus: the tokenized corpus the checkpoint was trained on (its recipe.yaml
    ///   says how frames were decoded); nil: the one named in the checkpoint's recipe.yaml.
    public static func open(_ checkpoint: String, corpus: String? = nil) throws -> CheckpointEncoder {
        let opened = try Checkpoint(folder: checkpoint)
        switch opened.kind {
        case .cbt:
            let e = try CBTPooledEncoder(checkpoint: checkpoint, corpus: corpus)
            return CheckpointEncoder(kind: opened.kind.rawValue, encoder: e,
                                     note: "CBT pooled embeddings (cosine of the pooled text and video projections)")
        case .videobert, .videobertCaptioner, .videobertForecaster:
            return CheckpointEncoder(kind: opened.kind.rawValue, encoder: nil,
                                     note: "a VideoBERT checkpoint has no dual encoder: search is BM25 over the transcripts, re-ranked by its alignment head with --rerank K")
        case .cbtCaptioner, .cbtForecaster, .bert, .fusion:
            throw VideoBertError("is a \(opened.kind.rawValue) checkpoint: index reads VideoBERT or CBT checkpoints", file: checkpoint)
        }
    }
}

/// CBT's pooled embeddings (docs/ARCHITECTURE.md §4; `CBTModel.encodeForRetrieval`): the text
/// BERT's [CLS] and the mean of the visual transformer's clip states, each through its pooled
/// projection, L2-normalised — the embeddings `videobert retrieve --cbt-scorer pooled` ranks by.
///
/// A video is decoded as the checkpoint's training corpus was (its tokenize recipe: frames.fps,
/// frames.size, clips of round(fps × clip_seconds) frames, store.frames_per_clip evenly spaced
/// frames area-resized to store.frame_size — the computation of `CorpusTokenizer.decodeFrames`),
/// centred per video when the recipe says frontend.center: video (as `ClipInputs.load`); a
/// segment is the clips overlapping its span (the nearest clip when none does), at most max_clips.
public final class CBTPooledEncoder: SegmentEncoder {
    public let name = "cbt-pooled"
    public var dimension: Int { model.config.embeddingSize }
    let model: CBTModel
    let recipe: CBTRecipe
    let tokenize: TokenizeRecipe
    let tokenizer: BertTokenizer
    let special: SpecialTokens
    let maxBatch = 8
    let lock = NSLock()

    public init(checkpoint: String, corpus: String?) throws {
        let recipePath = (checkpoint as NSString).appendingPathComponent(Checkpoint.File.recipe.rawValue)
        recipe = try RecipeLoader.load(CBTRecipe.self, file: recipePath)
        guard recipe.frontend.source == "frames" else {
            throw VideoBertError("frontend.source \(recipe.frontend.source): indexing raw videos needs a CBT trained on stored frames (frontend.source: frames)", file: recipePath)
        }
        guard recipe.objectives.pooled != "none" else {
            throw VideoBertError("was trained without a pooled objective (objectives.pooled: none): it has no text and video embeddings to index", file: recipePath)
        }
        let corpusPath = corpus ?? recipe.corpus
        let tokenizePath = (corpusPath as NSString).appendingPathComponent("recipe.yaml")
        guard FileManager.default.fileExists(atPath: tokenizePath) else {
            throw VideoBertError("the checkpoint's training corpus \(corpusPath) has no recipe.yaml (how its frames were decoded); pass --corpus with the tokenized corpus it was trained on", file: checkpoint)
        }
        tokenize = try RecipeLoader.load(TokenizeRecipe.self, file: tokenizePath)
        if let p = tokenize.problem() { throw VideoBertError(p, file: tokenizePath) }
        guard tokenize.store.frames else {
            throw VideoBertError("stores no frames (store.frames: false), so it is not the corpus a frames CBT was trained on", file: tokenizePath)
        }
        let vocabPath = (((checkpoint as NSString).appendingPathComponent(Checkpoint.File.cbtText.rawValue)) as NSString)
            .appendingPathComponent(Checkpoint.File.textVocab.rawValue)
        guard FileManager.default.fileExists(atPath: vocabPath) else { throw VideoBertError("no text vocabulary (text/vocab.txt)", file: checkpoint) }
        tokenizer = try BertTokenizer(vocabularyFile: vocabPath, lowercase: !tokenize.text.cased)
        special = try SpecialTokens(vocabulary: tokenizer.vocabulary)
        model = try CBTModel.load(from: checkpoint, maxBatch: maxBatch, maxTextLength: recipe.data.maxTextTokens + 2,
                                  maxNCECandidates: 1, maxCrossCandidates: 1)
        guard let conv = model.config.conv, conv.framesPerClip == tokenize.store.framesPerClip, conv.frameSize == tokenize.store.frameSize else {
            throw VideoBertError("stores \(tokenize.store.framesPerClip) frames of \(tokenize.store.frameSize)² per clip, not what the checkpoint \(checkpoint) reads", file: tokenizePath)
        }
    }

    public func tokenCount(_ text: String) -> Int { tokenizer.encode(text).count }

    public var sentenceSplitter: SentenceSplitter {
        SentenceSplitter(mode: SentenceSplitter.Mode(rawValue: tokenize.text.sentenceMode) ?? .auto, maxTokens: tokenize.text.maxTokens,
                         maxSeconds: tokenize.text.maxSeconds, pauseSeconds: tokenize.text.pauseSeconds)
    }

    /// One batch through the model: texts (WordPieces, cut to max_text_tokens) and clip sequences
    /// (uint8 frames of F·S·S·3 per clip), the same count B ≤ maxBatch.
    private func forward(texts: [[Int32]], clips: [[UInt8]], clipSize: Int) -> CBTRetrievalInputs {
        let B = texts.count
        let T = texts.map { $0.count + 2 }.max() ?? 2
        var ids = [Int32](repeating: special.pad, count: B * T), attention = [Float](repeating: 0, count: B * T)
        for (b, t) in texts.enumerated() {
            ids[b * T] = special.cls
            for (i, w) in t.enumerated() { ids[b * T + 1 + i] = w }
            ids[b * T + 1 + t.count] = special.sep
            for i in 0..<(t.count + 2) { attention[b * T + i] = 1 }
        }
        let text = PretrainingBatch(B: B, T: T, inputIDs: ids, tokenTypeIDs: .init(repeating: 0, count: B * T), attentionMask: attention,
                                    textRows: [], textTargets: [], videoRows: [], videoTargets: [],
                                    alignLabels: .init(repeating: 0, count: B), alignWeights: .init(repeating: 0, count: B))
        let counts = clips.map { $0.count / clipSize }
        let Tv = max(1, counts.max() ?? 1)
        var clipRows = [Int32](repeating: -1, count: B * Tv), frames: [UInt8] = [], n = 0
        for (b, c) in counts.enumerated() {
            for t in 0..<c { clipRows[b * Tv + t] = Int32(n); n += 1 }
            frames += clips[b]
        }
        let batch = CBTBatch(B: B, text: text, clipCount: n, frames: frames, features: [], Tv: Tv, clipRows: clipRows,
                             maskedRows: [], K1: 1, candidates: [], crossCandidates: 1)
        lock.lock(); defer { lock.unlock() }
        return model.encodeForRetrieval(batch)
    }

    private static func unitRows(_ x: [Float], count: Int, E: Int) -> [[Float]] {
        (0..<count).map { i in
            var row = Array(x[(i * E)..<((i + 1) * E)])
            var norm: Float = 0
            for v in row { norm += v * v }
            let inv = 1 / max(norm.squareRoot(), 1e-12)
            for e in 0..<E { row[e] *= inv }
            return row
        }
    }

    /// The clip size in bytes and a single blank clip (what a text-only forward pass pairs with).
    private var clipSize: Int { tokenize.store.framesPerClip * tokenize.store.frameSize * tokenize.store.frameSize * 3 }

    public func encodeText(_ texts: [String]) throws -> [[Float]] {
        var out: [[Float]] = []
        let blank = [UInt8](repeating: 128, count: clipSize)
        var start = 0
        while start < texts.count {
            let chunk = texts[start..<min(texts.count, start + maxBatch)].map { Array(tokenizer.encode($0).prefix(recipe.data.maxTextTokens)) }
            let r = forward(texts: chunk, clips: chunk.map { _ in blank }, clipSize: clipSize)
            out += Self.unitRows(r.text, count: chunk.count, E: dimension)
            start += maxBatch
        }
        return out
    }

    public func encodeSegments(video path: String, spans: [(start: Double, end: Double)]) throws -> [[Float]] {
        let decoded = try Self.decodeClips(path, recipe: tokenize)
        guard !decoded.starts.isEmpty else {
            throw VideoBertError(String(format: "video is shorter than one clip (%.2f s)", decoded.duration), file: path)
        }
        var frames = decoded.frames
        if recipe.frontend.center == "video" { Self.center(&frames, pixels: tokenize.store.frameSize * tokenize.store.frameSize * 3) }
        let size = clipSize, maxClips = model.config.maxClips
        func clips(of span: (start: Double, end: Double)) -> [Int] {
            var chosen = decoded.starts.indices.filter { decoded.starts[$0] < span.end && decoded.ends[$0] > span.start }
            if chosen.isEmpty {
                let middle = (span.start + span.end) / 2
                let nearest = decoded.starts.indices.min { abs((decoded.starts[$0] + decoded.ends[$0]) / 2 - middle) < abs((decoded.starts[$1] + decoded.ends[$1]) / 2 - middle) }!
                chosen = [nearest]
            }
            return Array(chosen.prefix(maxClips))
        }
        var out: [[Float]] = []
        var start = 0
        while start < spans.count {
            let chunk = spans[start..<min(spans.count, start + maxBatch)]
            let sequences = chunk.map { span in clips(of: span).flatMap { c in frames[(c * size)..<((c + 1) * size)] } }
            let r = forward(texts: sequences.map { _ in [] }, clips: sequences, clipSize: size)
            out += Self.unitRows(r.video, count: chunk.count, E: dimension)
            start += maxBatch
        }
        return out
    }

    /// frames ← clamp(128 + frames − the video's mean frame), per pixel and channel (as `ClipInputs.load`).
    static func center(_ frames: inout [UInt8], pixels: Int) {
        let count = frames.count / pixels
        guard count > 0 else { return }
        var mean = [Float](repeating: 0, count: pixels)
        frames.withUnsafeMutableBufferPointer { f in
            for k in 0..<count { for i in 0..<pixels { mean[i] += Float(f[k * pixels + i]) } }
            for i in 0..<pixels { mean[i] /= Float(count) }
            for k in 0..<count {
                for i in 0..<pixels { f[k * pixels + i] = UInt8(max(0, min(255, (128 + Float(f[k * pixels + i]) - mean[i]).rounded()))) }
            }
        }
    }

    /// The clips of a video as `videobert tokenize` makes them with `recipe` (`CorpusTokenizer.decodeFrames`
    /// without imported spans): consecutive runs of round(fps × clip_seconds) frames decoded at
    /// frames.fps and frames.size (a last run of at least half that is kept), each clip's
    /// store.frames_per_clip evenly spaced frames area-resized to store.frame_size.
    /// - Returns: starts, ends (seconds), frames uint8 [clips, F, S, S, 3], duration.
    public static func decodeClips(_ path: String, recipe: TokenizeRecipe) throws -> (starts: [Double], ends: [Double], frames: [UInt8], duration: Double) {
        guard let size = recipe.frameSize else { throw VideoBertError("bad frames.size", file: "recipe") }
        let reader = try VideoReader(path: path, threads: recipe.frames.decoderThreads)
        let perClip = recipe.framesPerClip, fpc = recipe.store.framesPerClip, side = recipe.store.frameSize
        let frameBytes = size.width * size.height * 3
        var clipBuffer = [UInt8](), clipFrameCount = 0, clipFrameTimes: [Double] = [], currentClip = 0
        var small = [UInt8](repeating: 0, count: side * side * 3)
        var starts: [Double] = [], ends: [Double] = [], frames: [UInt8] = []
        var lastTime = 0.0
        func finishClip(start: Double, end: Double) {
            let n = clipFrameCount
            guard n > 0 else { return }
            for j in 0..<fpc {
                let src = min(n - 1, max(0, Int((Double(j) + 0.5) * Double(n) / Double(fpc))))
                clipBuffer.withUnsafeBufferPointer { b in
                    small.withUnsafeMutableBufferPointer { d in
                        FrameResize.area(src: UnsafeBufferPointer(rebasing: b[(src * frameBytes)..<((src + 1) * frameBytes)]),
                                         srcWidth: size.width, srcHeight: size.height, dst: d, dstWidth: side, dstHeight: side)
                    }
                }
                frames += small
            }
            starts.append(start); ends.append(end)
            clipFrameCount = 0
            clipFrameTimes.removeAll(keepingCapacity: true)
        }
        try reader.forEachFrame(fps: FrameRate(approximating: recipe.frames.fps), width: size.width, height: size.height) { frame in
            lastTime = frame.time + 1 / recipe.frames.fps
            let clipIndex = frame.index / perClip
            if clipIndex != currentClip {
                let start = clipFrameTimes.first ?? Double(currentClip * perClip) / recipe.frames.fps
                finishClip(start: start, end: start + Double(perClip) / recipe.frames.fps)
                currentClip = clipIndex
            }
            let need = (clipFrameCount + 1) * frameBytes
            if clipBuffer.count < need { clipBuffer.append(contentsOf: [UInt8](repeating: 0, count: need - clipBuffer.count)) }
            clipBuffer.withUnsafeMutableBufferPointer { b in
                _ = UnsafeMutableBufferPointer(rebasing: b[(clipFrameCount * frameBytes)..<need]).initialize(from: frame.pixels)
            }
            clipFrameCount += 1
            clipFrameTimes.append(frame.time)
        }
        if clipFrameCount * 2 >= perClip {
            let start = clipFrameTimes.first ?? Double(currentClip * perClip) / recipe.frames.fps
            finishClip(start: start, end: start + Double(clipFrameCount) / recipe.frames.fps)
        }
        return (starts, ends, frames, reader.duration ?? lastTime)
    }
}
