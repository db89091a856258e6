import Foundation
import Model
import Tensor
import Tokenize

/// A tokenized corpus seen by the downstream tasks: videos by id, their splits, and the visual
/// words of any time span (the clips that overlap it, VideoBERT §3.3's alignment rule, which is
/// also how `tokenize` pairs sentences with clips).
public struct TaskCorpus: Sendable {
    public let corpus: TokenizedCorpus
    /// index.json video index by id.
    public let videoIndex: [String: Int]

    public init(_ corpus: TokenizedCorpus) {
        self.corpus = corpus
        var index: [String: Int] = [:]
        for (i, v) in corpus.index.videos.enumerated() { index[v.id] = i }
        videoIndex = index
    }

    public init(path: String) throws { self.init(try TokenizedCorpus(path: path)) }

    /// The checkpoint's vocabularies must be this corpus' (`Checkpoint.checkVocabularies`).
    public func check(_ checkpoint: Checkpoint) throws {
        try checkpoint.checkVocabularies(textFingerprint: corpus.index.textVocab.fingerprint, visualVocabFolder: corpus.visualVocabPath,
                                         corpus: path)
    }

    public var path: String { corpus.path }
    public var textVocabSize: Int { corpus.index.textVocab.size }
    public var visualWords: Int { corpus.index.visualVocab.words }

    /// The corpus' split names, in order of first appearance.
    public var splits: [String] {
        var seen = Set<String>(), out: [String] = []
        for v in corpus.index.videos where seen.insert(v.split).inserted { out.append(v.split) }
        return out
    }

    /// Visual words (0..<visual words) of the clips of video `v` that overlap [start, end]
    /// (clip.start < end and clip.end > start; a zero-length span inside a clip gets that clip).
    /// nil bounds mean the whole video.
    public func visualWords(video v: Int, start: Double?, end: Double?) -> [Int32] {
        clips(video: v, start: start, end: end).map { corpus.clipWords[Int($0)] }
    }

    /// The corpus' clip indices (rows of clip_words, clip_frames, clip_features) of the clips of
    /// video `v` that overlap [start, end], in time order (the same clips as `visualWords`).
    public func clips(video v: Int, start: Double?, end: Double?) -> [Int32] {
        let entry = corpus.index.videos[v]
        guard let start, let end else { return (entry.clipBegin..<entry.clipEnd).map { Int32($0) } }
        var out: [Int32] = []
        for c in entry.clipBegin..<entry.clipEnd {
            let cs = Double(corpus.clipTimes[2 * c]), ce = Double(corpus.clipTimes[2 * c + 1])
            if (cs < end && ce > start) || (start == end && cs <= start && start < ce) { out.append(Int32(c)) }
        }
        return out
    }

    /// Pairs each annotated step with its corpus video, split and visual words.
    public func resolve(_ annotations: StepAnnotations) -> ResolvedSteps {
        var steps: [ResolvedStep] = []
        var missing: [String] = []
        var seenMissing = Set<String>()
        for s in annotations.steps {
            guard let v = videoIndex[s.video] else {
                if seenMissing.insert(s.video).inserted { missing.append(s.video) }
                continue
            }
            let clips = clips(video: v, start: s.start, end: s.end)
            steps.append(ResolvedStep(step: s, video: v, split: corpus.index.videos[v].split,
                                      visual: clips.map { corpus.clipWords[Int($0)] }, clips: clips))
        }
        return ResolvedSteps(steps: steps, videosNotInCorpus: missing, file: annotations.file)
    }

    /// Segments of `split` (corpus order) that have text, video, or both.
    public func segments(in split: String, text: Bool, video: Bool) -> [Int] {
        corpus.segments(in: split).filter { s in
            (!text || corpus.textOffsets[s + 1] > corpus.textOffsets[s]) && (!video || corpus.visualOffsets[s + 1] > corpus.visualOffsets[s])
        }
    }

    /// An error naming the corpus when `split` has no videos.
    public func requireSplit(_ split: String) throws {
        guard corpus.index.videos.contains(where: { $0.split == split }) else {
            throw VideoBertError("no videos in split '\(split)' (splits: \(splits.joined(separator: ", ")))", file: path)
        }
    }
}

/// An annotated step with what the corpus knows about it.
public struct ResolvedStep: Sendable {
    public var step: AnnotatedStep
    /// index.json video index.
    public var video: Int
    /// The corpus split of its video (the corpus, not the annotation file, decides the split,
    /// so held-out steps are those of videos the model was not trained on).
    public var split: String
    /// Visual words of the clips overlapping the step (0..<visual words).
    public var visual: [Int32]
    /// Those clips' indices in the corpus (for models that read clip frames or features).
    public var clips: [Int32] = []
}

public struct ResolvedSteps: Sendable {
    public var steps: [ResolvedStep]
    /// Annotated videos that the corpus lacks (skipped).
    public var videosNotInCorpus: [String]
    public var file: String

    public func inSplit(_ split: String) -> [ResolvedStep] { steps.filter { $0.split == split } }

    /// The steps of `split` that have visual words; an error naming the annotation file when none.
    public func withVideo(in split: String) throws -> [ResolvedStep] {
        let all = inSplit(split)
        let kept = all.filter { !$0.visual.isEmpty }
        guard !kept.isEmpty else {
            let why = all.isEmpty ? "no annotated steps belong to videos of the corpus' '\(split)' split"
                : "none of the \(all.count) annotated steps of split '\(split)' overlaps a clip"
            throw VideoBertError(why + (videosNotInCorpus.isEmpty ? "" : " (\(videosNotInCorpus.count) annotated videos are not in the corpus)"), file: file)
        }
        return kept
    }
}
