import Foundation
import Model
import Recipe
import Tasks
import Tensor
import Tokenize

/// `videobert caption VIDEO... --checkpoint C`: captions of raw video files with the pipeline the
/// checkpoint was trained on. The videos are tokenized into a temporary corpus by `videobert
/// tokenize`'s own code (`CorpusTokenizer`) with the training corpus's recipe.yaml and its fitted
/// visual vocabulary (kmeans.vocab), so decoding, features, visual words — or the stored frames a
/// CBT captioner's front-end reads — are those of the corpus; then every segment (the transcript's
/// sentences and the video-only stretches, as the corpus cuts them, or fixed windows for a video
/// without transcript) is captioned by `CaptionTask`, as `caption --corpus` captions a corpus.
struct VideoCaptioner {
    struct Segment: Codable {
        var video: String
        var path: String
        var index: Int
        var start: Double
        var end: Double
        var caption: String
    }

    struct Failure {
        var video: String
        var error: String
    }

    var checkpoint: String
    /// The checkpoint's tokenized training corpus (nil: the one its recipe.yaml names).
    var corpus: String?
    var transcript: String?
    /// Seconds per segment of a video without transcript.
    var window: Double
    var generation: GenerationOptions
    var batch: Int
    var showProgress: Bool

    func run(videos: [String]) throws -> (segments: [Segment], failures: [Failure]) {
        try RawVideos.tokenize(videos, checkpoint: checkpoint, corpus: corpus, transcript: transcript,
                               accepting: [.videobertCaptioner, .cbtCaptioner, .videobert], reads: "captioners (from `videobert finetune caption`)",
                               showProgress: showProgress) { raw in
            guard let corpus = raw.corpus else { return ([], raw.failures) }
            return (try caption(raw, corpus: corpus), raw.failures)
        }
    }

    /// Every segment of the tokenized videos, captioned.
    func caption(_ raw: RawVideos, corpus: TaskCorpus) throws -> [Segment] {
        let model = try TaskModel(checkpoint: checkpoint, corpus: corpus, maxBatch: batch, allowClipFeatures: true)
        // The corpus's segments for videos with a transcript; windows for those without.
        let segments = StepAnnotations.segments(of: corpus, split: "test")
        var steps: [AnnotatedStep] = []
        for item in raw.items {
            if item.transcript != .none {
                steps += segments.steps.filter { $0.video == item.id }
            } else {
                let duration = corpus.corpus.index.videos.first { $0.id == item.id }?.duration ?? 0
                var t = 0.0, k = 0
                while t < duration - 1e-6 && k < 1_000_000 {
                    steps.append(AnnotatedStep(video: item.id, index: k, start: t, end: min(duration, t + window), captions: []))
                    t += window; k += 1
                }
            }
        }
        let annotations = StepAnnotations(file: corpus.path, format: .corpusSegments, steps: steps)
        let output = try CaptionTask.run(model: model, corpus: corpus, annotations: annotations, split: "test", trainSplit: "test",
                                         options: generation, showProgress: showProgress)
        let captions = Dictionary(output.results.map { ("\($0.imageID)", $0.caption) }, uniquingKeysWith: { a, _ in a })
        var out: [Segment] = []
        for s in steps {
            guard let caption = captions[s.imageID] else { continue }   // a step without clips gets none
            out.append(Segment(video: s.video, path: raw.paths[s.video] ?? "", index: s.index, start: s.start ?? 0, end: s.end ?? 0, caption: caption))
        }
        return out
    }

    // MARK: Subtitle files

    static func timestamp(_ t: Double, comma: Bool) -> String {
        let ms = Int((max(0, t) * 1000).rounded())
        return String(format: "%02d:%02d:%02d%@%03d", ms / 3_600_000, (ms / 60_000) % 60, (ms / 1000) % 60, comma ? "," : ".", ms % 1000)
    }

    /// WebVTT (https://www.w3.org/TR/webvtt1/): a header and one cue per segment.
    static func vtt(_ segments: [Segment]) -> String {
        "WEBVTT\n\n" + segments.map { "\(timestamp($0.start, comma: false)) --> \(timestamp($0.end, comma: false))\n\(cueText($0.caption))\n" }
            .joined(separator: "\n")
    }

    /// SubRip: numbered cues, comma before the milliseconds.
    static func srt(_ segments: [Segment]) -> String {
        segments.enumerated().map { "\($0.offset + 1)\n\(timestamp($0.element.start, comma: true)) --> \(timestamp($0.element.end, comma: true))\n\(cueText($0.element.caption))\n" }
            .joined(separator: "\n")
    }

    /// A caption as cue text: one line, no "-->" and no blank line (which would end the cue).
    static func cueText(_ s: String) -> String {
        let line = s.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "-->", with: "->")
        return line.trimmingCharacters(in: .whitespaces).isEmpty ? "…" : line
    }
}
