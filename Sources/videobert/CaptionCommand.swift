import ArgumentParser
import Foundation
import Tasks
import Tensor

/// `videobert caption`: captions for held-out annotated steps, in COCO results format.
struct CaptionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "caption",
        abstract: "Caption the annotated steps of a split with a fine-tuned checkpoint (COCO results JSON).",
        discussion: """
        Each step's visual words (the corpus clips overlapping its span) go in — or, for a \
        captioner fine-tuned from a CBT checkpoint, those clips' features from the CBT visual \
        transformer (the corpus must store the frames or features the CBT was trained on; the \
        checkpoint carries the CBT visual path in cbt/). The caption is generated word by word (see `videobert finetune caption`) by beam search with length \
        normalisation (log P / n^alpha), or greedily with --beam 1. Writes \
        [{"image_id": "<video>#<step>", "caption"}] to --out and, with --refs-out, the matching \
        COCO references {"annotations": [{"image_id", "caption"}]}.

        Prints BLEU/METEOR/ROUGE-L/CIDEr-D (as `videobert evaluate captions`) of the model beside \
        the most frequent train-split caption given to every step, and any --baseline files.

        Without --annotations, every segment of the split (the corpus' ASR sentences and \
        video-only stretches) is captioned: your own videos, tokenized, get a caption per segment \
        (image ids "<video>#<segment>"), written but not scored.

        Raw videos: with video files as arguments, each is tokenized as the checkpoint's \
        training corpus was (its recipe.yaml and visual vocabulary; --corpus when the recipe's \
        corpus has moved) and every segment — the sentences of the transcript beside the video \
        (same base name, .vtt/.srt/.json) or of --transcript, else --window windows — is \
        captioned. Writes WebVTT (default), SRT or JSON [{"video", "path", "index", "start", \
        "end", "caption"}] (--format, or --out's extension) to --out (a folder with several \
        videos) or to standard output. A video that fails is reported; the others are captioned.

        Example:
          videobert caption demo/corpus/videos/video-0001.mp4 \\
              --checkpoint demo/caption/checkpoints/step-0001000 --out video-0001.vtt
          videobert caption --checkpoint demo/caption/checkpoints/step-0001000 \\
              --corpus demo/tokens --annotations demo/corpus/annotations.json \\
              --split test --beam 4 --out captions.json --refs-out refs.json \\
              --baseline zero-shot=zero-shot-captions.json
          videobert caption --checkpoint demo/caption-cbt/checkpoints/step-0001200 \\
              --corpus demo/tokens --annotations demo/corpus/annotations.json \\
              --out captions-cbt.json  # fine-tuned from CBT
          videobert caption --checkpoint demo/caption/checkpoints/step-0000600 \\
              --corpus my/tokens --split train --out my-captions.json  # no annotations
        """)

    @Argument(help: "Raw video files to caption (instead of a corpus split).") var videos: [String] = []
    // TaskOptions' options, with --corpus optional for raw videos.
    @Option(help: "Checkpoint folder (from `videobert finetune caption`).") var checkpoint: String
    @Option(help: "Tokenized corpus folder (from `videobert tokenize`), with the checkpoint's vocabularies. Raw videos: the checkpoint's training corpus (default: the one its recipe.yaml names).") var corpus: String?
    @Option(help: "The corpus split evaluated (held-out videos).") var split: String = "test"
    @Option(help: "The corpus split baselines count frequencies in.") var trainSplit: String = "train"
    @Option(help: "Sequences per forward pass (memory: batch × 128 positions).") var batch: Int = 64
    @Flag(help: "Print only the JSON result (no table).") var json = false
    @Option(help: "Also write the JSON result to this file.") var outJson: String?
    @Option(help: "Raw videos: the transcript of the (single) video, instead of the one beside it.") var transcript: String?
    @Option(help: "Raw videos: segment length for a video without transcript, e.g. 6s.") var window: String = "6s"
    @Option(help: "Raw videos: vtt, srt or json (default: --out's extension, else vtt).") var format: String?
    @Option(help: "Annotations: YouCook2 JSON, MSR-VTT JSON or JSONL. Without: every corpus segment of the split is captioned (not scored).") var annotations: String?
    @Option(help: "Beam width (1: greedy).") var beam: Int = 4
    @Option(help: "Words generated at most.") var maxTokens: Int = GenerationOptions().maxTokens
    @Option(help: "Length normalisation alpha: hypotheses ranked by log P / n^alpha.") var lengthPenalty: Double = GenerationOptions().lengthPenalty
    @Option(help: "Visual words (or clips) given per step.") var maxVideoTokens: Int = GenerationOptions().maxVideoTokens
    @Option(help: "Write the captions here (COCO results; raw videos: a subtitle file, or a folder for several videos).") var out: String?
    @Option(help: "Write the COCO references here.") var refsOut: String?
    @Option(help: "Also score NAME=FILE, COCO results of another system (repeatable).") var baseline: [String] = []

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        if videos.isEmpty {
            guard corpus != nil else { throw ValidationError("give --corpus (a tokenized corpus), or video files to caption") }
            guard out != nil else { throw ValidationError("--out is required with --corpus") }
            for (name, given) in [("--transcript", transcript != nil), ("--format", format != nil), ("--window", window != "6s")] where given {
                throw ValidationError("\(name) goes with video files")
            }
        } else {
            guard annotations == nil, refsOut == nil, baseline.isEmpty, outJson == nil else {
                throw ValidationError("--annotations, --refs-out, --baseline and --out-json go with --corpus, not with video files")
            }
            guard let w = IndexCommand.seconds(window), w > 0, w <= 3600 else { throw ValidationError("--window must be seconds in (0, 3600], e.g. 6s") }
            if transcript != nil { guard videos.count == 1 else { throw ValidationError("--transcript goes with exactly one video") } }
            guard ["vtt", "srt", "json"].contains(subtitleFormat) else { throw ValidationError("--format must be vtt, srt or json") }
            if videos.count > 1 && out != nil && ["vtt", "srt", "json"].contains(((out ?? "") as NSString).pathExtension.lowercased()) {
                throw ValidationError("--out is a folder with several videos")
            }
            if videos.count > 1 && out == nil && subtitleFormat != "json" {
                throw ValidationError("several videos: give --out FOLDER, or --format json for standard output")
            }
        }
        guard beam >= 1 else { throw ValidationError("--beam must be at least 1") }
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1") }
        guard maxVideoTokens >= 1 else { throw ValidationError("--max-video-tokens must be at least 1") }
        for b in baseline where !b.contains("=") { throw ValidationError("--baseline expects NAME=FILE, got '\(b)'") }
        if annotations == nil && (refsOut != nil || !baseline.isEmpty) {
            throw ValidationError("--refs-out and --baseline need --annotations (reference captions)")
        }
    }

    /// vtt, srt or json: --format, else --out's extension (one video), else vtt.
    var subtitleFormat: String {
        if let format { return format.lowercased() }
        let ext = ((out ?? "") as NSString).pathExtension.lowercased()
        return videos.count == 1 && ["srt", "json"].contains(ext) ? ext : "vtt"
    }

    func run() throws {
        if !videos.isEmpty { return try runVideos() }
        guard let out, let corpusPath = corpus else { return }
        let read = [annotations].compactMap { $0 } + baseline.compactMap { $0.split(separator: "=", maxSplits: 1).last.map(String.init) }
        try AtomicFile.checkOutputFile(out, inputs: read)
        if let refsOut { try AtomicFile.checkOutputFile(refsOut, inputs: read + [out]) }
        let extra = try baseline.map { spec -> (String, CaptionPredictions) in
            let eq = spec.firstIndex(of: "=")!
            return (String(spec[..<eq]), try CaptionFiles.loadPredictions(String(spec[spec.index(after: eq)...])))
        }
        if let outJson { try AtomicFile.checkOutputFile(outJson, inputs: [checkpoint, corpusPath]) }
        let corpus = try TaskCorpus(path: corpusPath)
        let model = try TaskModel(checkpoint: checkpoint, corpus: corpus, maxBatch: batch, allowClipFeatures: true)
        let notes = try annotations.map { try StepAnnotations.load($0) } ?? StepAnnotations.segments(of: corpus, split: split)
        let options = generationOptions
        let output = try CaptionTask.run(model: model, corpus: corpus, annotations: notes, split: split, trainSplit: trainSplit,
                                         options: options, extra: extra)
        try writeJSONObject(CaptionTask.resultsJSON(output.results), to: out)
        if let refsOut { try writeJSONObject(CaptionTask.referencesJSON(output.references), to: refsOut) }
        if let outJson { try JSON.write(output.report, to: outJson) }
        let table = CaptionTask.table(output.report) + "\ncaptions: \(out)" + (refsOut.map { "\nreferences: \($0)" } ?? "")
        if json { print(try JSON.string(output.report)) } else { print(table) }
    }

    var generationOptions: GenerationOptions {
        var options = GenerationOptions()
        options.beam = beam
        options.maxTokens = maxTokens
        options.lengthPenalty = lengthPenalty
        options.maxVideoTokens = maxVideoTokens
        return options
    }

    /// Raw videos (VideoCaptioner): subtitles per video.
    func runVideos() throws {
        let fmt = subtitleFormat
        let several = videos.count > 1
        if let out {
            if several { try AtomicFile.createDirectory(out) } else { try AtomicFile.checkOutputFile(out, inputs: videos + [transcript].compactMap { $0 }) }
        }
        let captioner = VideoCaptioner(checkpoint: checkpoint, corpus: corpus, transcript: transcript, window: IndexCommand.seconds(window)!,
                                       generation: generationOptions, batch: batch,
                                       showProgress: ProcessInfo.processInfo.environment["VIDEOBERT_QUIET"] == nil)
        let (segments, failures) = try captioner.run(videos: videos)
        for f in failures { logLine("caption: skipped \(f.video): \(f.error)") }
        let byVideo = Dictionary(grouping: segments, by: \.video)
        func render(_ s: [VideoCaptioner.Segment]) throws -> String {
            switch fmt {
            case "srt": return VideoCaptioner.srt(s)
            case "json": return String(decoding: try JSONEncoder.sorted.encode(s), as: UTF8.self) + "\n"
            default: return VideoCaptioner.vtt(s)
            }
        }
        var written: [String] = []
        if let out, several {
            var used = Set<String>()
            for (video, list) in byVideo.sorted(by: { $0.key < $1.key }) {
                var name = video, n = 2
                while !used.insert(name).inserted { name = "\(video)-\(n)"; n += 1 }
                let file = (out as NSString).appendingPathComponent("\(name).\(fmt)")
                try AtomicFile.write(try render(list), to: file)
                written.append(file)
            }
        } else if let out {
            try AtomicFile.write(try render(segments), to: out)
            written.append(out)
        } else {
            print(try render(segments), terminator: "")
        }
        logLine("caption: \(segments.count) segments of \(byVideo.count) videos captioned" + (written.isEmpty ? "" : " → \(written.joined(separator: ", "))"))
        if !failures.isEmpty {
            throw VideoBertError("\(failures.count) of \(videos.count) videos failed (see above); the others were captioned", file: failures[0].video)
        }
    }
}
