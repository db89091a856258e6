import Foundation
import Model
import Recipe
import Tensor
import Tokenize

// The fusion variant's inputs and retrieval (issue 17 items 5–6; docs/ARCHITECTURE.md §4):
// building a batch of (text, clips, the clips' audio) samples from a corpus, encoding them with
// a text BERT + FusionModel, and text → video, text → video+audio, text → audio retrieval by the
// cosine of the embeddings (Everything at Once's evaluation: the query's text embedding against
// each candidate's v, va or a embedding; https://github.com/ninatu/everything_at_once,
// everything_at_once/metric/metric.py and the t2v / t2va metrics of its configs). Fusion
// pretraining (Train/FusionTrainer.swift) uses the same builder and encoder.

/// Where a fusion model's audio tokens come from in a corpus.
public enum FusionAudioInput: Sendable {
    /// No audio: every sample misses the modality.
    case none
    /// The clip's audio word (clip_audio_words.npy), one-hot over `words`.
    case words(MappedColumn<Int32>, words: Int)
    /// The clip's log-mel spectrogram (clip_audio.npy, float32 [clips, frames, mels]).
    case logmel(MappedRows, frames: Int, mels: Int)

    /// `none`, `words` or `logmel`.
    public var name: String {
        switch self {
        case .none: "none"
        case .words: "words"
        case .logmel: "logmel"
        }
    }

    /// The audio input `source` asks for (`auto`: logmel if stored, else words if present, else
    /// none). Errors name the corpus and the tokenize option that makes what is missing.
    public static func load(corpus: TokenizedCorpus, source: String) throws -> FusionAudioInput {
        let hasLogMel = corpus.index.extras.contains("clip_audio"), hasWords = corpus.clipAudioWords != nil
        let chosen = source == "auto" ? (hasLogMel ? "logmel" : hasWords ? "words" : "none") : source
        switch chosen {
        case "none": return .none
        case "words":
            guard let words = corpus.clipAudioWords, let vocab = corpus.index.audioVocab, vocab.words >= 1 else {
                throw VideoBertError("has no audio words; tokenize with audio.enabled: true for audio.source words", file: corpus.path)
            }
            return .words(words, words: vocab.words)
        case "logmel":
            // Every shard's clip_audio.npy as one array (TokenizedCorpus.storedRows checks the row count).
            guard hasLogMel, let array = try corpus.storedRows("clip_audio") else {
                throw VideoBertError("has no clip_audio.npy; tokenize with audio.enabled: true and store.audio: true for audio.source logmel", file: corpus.path)
            }
            guard array.dtype == .float32, array.shape.count == 3, array.shape[0] == corpus.clipCount,
                  (1...65_536).contains(array.shape[1]), (1...4096).contains(array.shape[2]) else {
                throw VideoBertError("expected float32 [\(corpus.clipCount) clips, frames, mels], got \(array.dtype.rawValue) \(array.shape)",
                                     file: (corpus.path as NSString).appendingPathComponent("clip_audio.npy"))
            }
            return .logmel(array, frames: array.shape[1], mels: array.shape[2])
        default:
            throw VideoBertError("audio.source '\(source)' is not auto, logmel, words or none", file: corpus.path)
        }
    }
}

/// One sample: a text and the clips it goes with (corpus clip indices, in time order).
public struct FusionSample: Sendable {
    public var text: [Int32]
    public var clips: [Int]
    public init(text: [Int32], clips: [Int]) { (self.text, self.clips) = (text, clips) }
}

/// A batch of samples as the text BERT and the fusion model read it.
public struct FusionBatch {
    /// [B, Tt] `[CLS] text [SEP]`, nothing masked.
    public var text: PretrainingBatch
    /// Video and audio tokens and masks ([B, Tv, ·], [B, Tv]); the text slot is filled from the BERT.
    public var video: [Float], videoMask: [Float], audio: [Float], audioMask: [Float]
    public var Tv: Int
    public var B: Int { text.B }
    /// Tokens (WordPieces + clips) for the throughput.
    public var tokenCount: Int { text.tokenCount + Int(videoMask.reduce(0, +)) }
}

/// Builds `FusionBatch`es from a corpus: texts as `[CLS] w… [SEP]`, each clip's stored feature
/// (clip_features.npy) as a video token, each clip's audio word (one-hot) or log-mel spectrogram
/// as an audio token.
public final class FusionBatchBuilder {
    public let corpus: TokenizedCorpus
    public let special: SpecialTokens
    public let video: MappedRows
    public let videoDim: Int
    public let audio: FusionAudioInput

    public init(corpus: TokenizedCorpus, audioSource: String) throws {
        self.corpus = corpus
        special = try SpecialTokens(vocabulary: TextVocabulary.load(corpus.textVocabPath))
        guard case .features(let array, let dim) = try ClipInputs.load(corpus: corpus, source: "features") else {
            throw VideoBertError("has no clip features", file: corpus.path)
        }
        video = array
        videoDim = dim
        audio = try FusionAudioInput.load(corpus: corpus, source: audioSource)
    }

    /// The width of an audio token: the vocabulary (one-hot words), frames·mels (log-mel) or 1 (none).
    public var audioWidth: Int {
        switch audio {
        case .none: 1
        case .words(_, let words): words
        case .logmel(_, let frames, let mels): frames * mels
        }
    }

    public func batch(_ samples: [FusionSample]) -> FusionBatch {
        let B = samples.count
        let T = (samples.map(\.text.count).max() ?? 0) + 2
        var ids = [Int32](repeating: special.pad, count: B * T), attention = [Float](repeating: 0, count: B * T)
        for (b, s) in samples.enumerated() {
            let row = b * T
            ids[row] = special.cls
            for (i, t) in s.text.enumerated() { ids[row + 1 + i] = t }
            ids[row + 1 + s.text.count] = special.sep
            for i in 0..<(s.text.count + 2) { attention[row + i] = 1 }
        }
        let text = PretrainingBatch(B: B, T: T, inputIDs: ids, tokenTypeIDs: .init(repeating: 0, count: B * T), attentionMask: attention,
                                    textRows: [], textTargets: [], videoRows: [], videoTargets: [],
                                    alignLabels: .init(repeating: 0, count: B), alignWeights: .init(repeating: 0, count: B))
        let Tv = max(1, samples.map(\.clips.count).max() ?? 1)
        var video = [Float](repeating: 0, count: B * Tv * videoDim), videoMask = [Float](repeating: 0, count: B * Tv)
        let width = audioWidth
        var audioTokens = [Float](repeating: 0, count: B * Tv * width), audioMask = [Float](repeating: 0, count: B * Tv)
        for (b, s) in samples.enumerated() where !s.clips.isEmpty {
            var rows: [Float] = []
            self.video.appendFloatRows(s.clips, to: &rows)
            video.replaceSubrange((b * Tv * videoDim)..<((b * Tv + s.clips.count) * videoDim), with: rows)
            for t in 0..<s.clips.count { videoMask[b * Tv + t] = 1 }
            switch audio {
            case .none: break
            case .words(let words, _):
                for (t, c) in s.clips.enumerated() {
                    audioTokens[(b * Tv + t) * width + Int(words[c])] = 1
                    audioMask[b * Tv + t] = 1
                }
            case .logmel(let array, _, _):
                var spectra: [Float] = []
                array.appendFloatRows(s.clips, to: &spectra)
                audioTokens.replaceSubrange((b * Tv * width)..<((b * Tv + s.clips.count) * width), with: spectra)
                for t in 0..<s.clips.count { audioMask[b * Tv + t] = 1 }
            }
        }
        return FusionBatch(text: text, video: video, videoMask: videoMask, audio: audioTokens, audioMask: audioMask, Tv: Tv)
    }

    /// A segment as a sample: its text (at most maxTextTokens) and clips (at most maxClips).
    public func sample(segment s: Int, maxTextTokens: Int, maxClips: Int) -> FusionSample {
        let begin = Int(corpus.segmentClips[2 * s]), end = Int(corpus.segmentClips[2 * s + 1])
        return FusionSample(text: Array(corpus.text(of: s).prefix(maxTextTokens)), clips: Array((begin..<end).prefix(maxClips)))
    }
}

/// A text BERT and a fusion model: samples → the six embeddings.
public final class FusionEncoder {
    public let text: BertForPreTraining
    public let model: FusionModel
    public let builder: FusionBatchBuilder

    public init(text: BertForPreTraining, model: FusionModel, builder: FusionBatchBuilder) {
        (self.text, self.model, self.builder) = (text, model, builder)
    }

    /// The fusion model's inputs for a batch, text tokens from the BERT's hidden states [B·Tt, Ct].
    public func inputs(_ batch: FusionBatch, hidden: UnsafePointer<Float>) -> FusionInputs {
        let Tt = batch.text.T, Ct = text.config.hiddenSize
        return FusionInputs(B: batch.B, tokens: [Array(UnsafeBufferPointer(start: hidden, count: batch.B * Tt * Ct)), batch.video, batch.audio],
                            masks: [batch.text.attentionMask, batch.videoMask, batch.audioMask], lengths: [Tt, batch.Tv, batch.Tv])
    }

    /// [6, N, E] embeddings of `samples` (inference), `model.maxBatch` at a time, each row L2-normalised.
    public func embed(_ samples: [FusionSample]) -> [[Float]] {
        let E = model.config.embeddingSize, N = samples.count
        var out = [[Float]](repeating: [Float](repeating: 0, count: N * E), count: 6)
        var start = 0
        while start < N {
            let part = Array(samples[start..<min(start + model.maxBatch, N)]), B = part.count
            let batch = builder.batch(part)
            let (_, hidden, _) = text.forwardKeepingHidden(batch.text, step: 0, dropoutSeed: 0, lossWeights: (0, 0, 0), training: false)
            let embeddings = model.forward(inputs(batch, hidden: hidden), dropout: false)
            for e in 0..<6 {
                for b in 0..<B {
                    let src = embeddings + (e * B + b) * E
                    var norm: Float = 0
                    for i in 0..<E { norm += src[i] * src[i] }
                    let inverse = 1 / max(norm.squareRoot(), CombinatorialContrastiveLoss.eps)
                    for i in 0..<E { out[e][(start + b) * E + i] = src[i] * inverse }
                }
            }
            start += B
        }
        return out
    }

    /// [N, N] cosine similarities of query embeddings (rows) and candidate embeddings (columns).
    public static func similarity(_ query: [Float], _ candidates: [Float], N: Int, E: Int) -> [Float] {
        var s = [Float](repeating: 0, count: N * N)
        s.withUnsafeMutableBufferPointer { out in
            BLAS.sgemm(transA: false, transB: true, m: N, n: N, k: E, a: query, lda: E, b: candidates, ldb: E, beta: 0,
                       c: out.baseAddress!, ldc: N)
        }
        return s
    }
}

/// Text → video, text → video+audio and text → audio retrieval of a fusion model: the cosine of
/// the text embedding (run t) and the candidate's video (v), fused video+audio (va) or audio (a)
/// embedding. Each target is a `TextVideoScorer`.
public final class FusionScorer: TextVideoScorer {
    public enum Target: String, Sendable, CaseIterable {
        case video, videoAudio = "video+audio", audio
        /// The candidate embedding.
        public var embedding: FusionEmbedding {
            switch self {
            case .video: .video
            case .videoAudio: .videoAudio
            case .audio: .audio
            }
        }
    }

    public let encoder: FusionEncoder
    public let target: Target
    public let maxTextTokens: Int
    public let maxClips: Int

    public init(encoder: FusionEncoder, target: Target, maxTextTokens: Int, maxClips: Int) {
        (self.encoder, self.target, self.maxTextTokens, self.maxClips) = (encoder, target, maxTextTokens, maxClips)
    }

    public var name: String { "cosine of the fusion model's text and \(target.rawValue) embeddings" }

    public func scores(segments: [Int], of corpus: TaskCorpus, progress: ProgressReporter?) throws -> [Float] {
        let samples = segments.map { encoder.builder.sample(segment: $0, maxTextTokens: maxTextTokens, maxClips: maxClips) }
        let e = encoder.embed(samples)
        progress?.advance(segments.count)
        return FusionEncoder.similarity(e[FusionEmbedding.text.rawValue], e[target.embedding.rawValue], N: samples.count,
                                        E: encoder.model.config.embeddingSize)
    }

    /// The encoder of a fusion checkpoint applied to `corpus`: its text BERT (text/), its fusion
    /// model (fusion_config.json, model.safetensors), the corpus' clip features and the audio
    /// input the checkpoint was trained with.
    public static func encoder(checkpoint: Checkpoint, corpus: TaskCorpus, batchSize: Int) throws -> FusionEncoder {
        guard checkpoint.kind == .fusion, let textConfig = checkpoint.bert, let config = checkpoint.fusion else {
            throw VideoBertError("is not a fusion checkpoint with its text BERT (\(Checkpoint.File.fusionConfig.rawValue) and \(Checkpoint.File.cbtText.rawValue)/)", file: checkpoint.folder)
        }
        try corpus.check(checkpoint)
        guard textConfig.textVocabSize == corpus.textVocabSize else {
            throw VideoBertError("its text BERT has \(textConfig.textVocabSize) text ids, the corpus \(corpus.path) \(corpus.textVocabSize): tokenize with the checkpoint's vocabulary", file: checkpoint.folder)
        }
        let builder = try FusionBatchBuilder(corpus: corpus.corpus, audioSource: config.audioSource)
        try checkInputs(config, builder: builder, file: checkpoint.folder)
        let text = try BertForPreTraining(config: textConfig, maxBatch: batchSize, maxSeq: config.maxTextTokens, training: false)
        let report = try text.loadPretrained(from: checkpoint.path(.cbtText))
        guard report.initialized.isEmpty, !report.extendedVocabulary else {
            throw VideoBertError("the text BERT lacks tensors: \(report.initialized.joined(separator: ", "))", file: checkpoint.folder)
        }
        let model = try FusionModel.load(from: checkpoint.folder, config: config, maxBatch: batchSize)
        return FusionEncoder(text: text, model: model, builder: builder)
    }

    /// The corpus' inputs have the widths the model was built for.
    public static func checkInputs(_ config: FusionConfig, builder: FusionBatchBuilder, file: String) throws {
        guard builder.videoDim == config.videoInputSize else {
            throw VideoBertError("reads \(config.videoInputSize)-wide clip features, the corpus \(builder.corpus.path) has \(builder.videoDim)", file: file)
        }
        switch builder.audio {
        case .none: break
        case .words(_, let words):
            guard words == config.audioInputSize else {
                throw VideoBertError("was trained on \(config.audioInputSize) audio words, the corpus \(builder.corpus.path) has \(words)", file: file)
            }
        case .logmel(_, let frames, let mels):
            guard let net = config.audioNet, net.frames == frames, net.mels == mels else {
                throw VideoBertError("reads log-mel spectrograms of \(config.audioNet.map { "\($0.frames) × \($0.mels)" } ?? "no") frames × mels, the corpus \(builder.corpus.path) stores \(frames) × \(mels)", file: file)
            }
        }
    }
}

/// `videobert retrieve` on a fusion checkpoint: text → video, text → video+audio and text →
/// audio over the same held-out segments, each beside chance.
public struct FusionRetrievalReport: Sendable, Codable {
    public var checkpoint: String
    public var corpus: String
    public var split: String
    /// The audio input of the checkpoint (`none`, `words`, `logmel`).
    public var audio: String
    public var segments: Int
    public var textToVideo: RetrievalMetrics
    /// nil when the checkpoint has no audio.
    public var textToVideoAudio: RetrievalMetrics?
    public var textToAudio: RetrievalMetrics?
    public var chance: RetrievalMetrics
    enum CodingKeys: String, CodingKey {
        case checkpoint, corpus, split, audio, segments, chance
        case textToVideo = "text_to_video", textToVideoAudio = "text_to_video_audio", textToAudio = "text_to_audio"
    }
}

public enum FusionRetrieval {
    /// Ranks the segments (chosen as `TextVideoRetrieval.segments`) by each target's cosine.
    public static func run(checkpoint: Checkpoint, corpus: TaskCorpus, split: String, max: Int, seed: UInt64, maxTextTokens: Int,
                           batchSize: Int, showProgress: Bool = true) throws -> FusionRetrievalReport {
        try corpus.requireSplit(split)
        let encoder = try FusionScorer.encoder(checkpoint: checkpoint, corpus: corpus, batchSize: Swift.max(1, batchSize))
        let chosen = TextVideoRetrieval.segments(corpus, split: split, max: max, seed: seed)
        guard chosen.count >= 2 else {
            throw VideoBertError("split '\(split)' has \(chosen.count) segments with both text and video; retrieval needs at least 2", file: corpus.path)
        }
        let config = encoder.model.config
        let maxText = Swift.max(1, Swift.min(maxTextTokens, config.maxTextTokens - 2))
        let samples = chosen.map { encoder.builder.sample(segment: $0, maxTextTokens: maxText, maxClips: config.maxVideoTokens) }
        let progress = ProgressReporter(label: "retrieve", total: chosen.count, unit: "segments", enabled: showProgress)
        let e = encoder.embed(samples)
        progress.advance(chosen.count)
        progress.finish()
        let N = chosen.count, E = config.embeddingSize
        func metrics(_ target: FusionEmbedding) -> RetrievalMetrics {
            RetrievalMetrics.textVideo(similarity: FusionEncoder.similarity(e[FusionEmbedding.text.rawValue], e[target.rawValue], N: N, E: E),
                                       N: N).textToVideo
        }
        let audio = config.audioSource != "none"
        return FusionRetrievalReport(checkpoint: checkpoint.folder, corpus: corpus.path, split: split, audio: config.audioSource, segments: N,
                                     textToVideo: metrics(.video), textToVideoAudio: audio ? metrics(.videoAudio) : nil,
                                     textToAudio: audio ? metrics(.audio) : nil, chance: TextVideoRetrieval.chance(N))
    }

    public static func table(_ r: FusionRetrievalReport) -> String {
        var t = TextTable(title: "fusion retrieval, split '\(r.split)': \(r.segments) segments, audio \(r.audio), cosine of the embeddings",
                          header: ["", "R@1", "R@5", "R@10", "median rank", "mean rank"])
        func row(_ name: String, _ m: RetrievalMetrics) {
            t.add([name, TextTable.number(m.recallAt1), TextTable.number(m.recallAt5), TextTable.number(m.recallAt10),
                   TextTable.number(m.medianRank, digits: 1), TextTable.number(m.meanRank, digits: 1)])
        }
        row("text → video", r.textToVideo)
        if let m = r.textToVideoAudio { row("text → video+audio", m) }
        if let m = r.textToAudio { row("text → audio", m) }
        row("chance", r.chance)
        return t.render()
    }
}
