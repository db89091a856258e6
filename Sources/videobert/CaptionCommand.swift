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

        Example:
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

    @OptionGroup var task: TaskOptions
    @Option(help: "Annotations: YouCook2 JSON, MSR-VTT JSON or JSONL. Without: every corpus segment of the split is captioned (not scored).") var annotations: String?
    @Option(help: "Beam width (1: greedy).") var beam: Int = 4
    @Option(help: "Words generated at most.") var maxTokens: Int = GenerationOptions().maxTokens
    @Option(help: "Length normalisation alpha: hypotheses ranked by log P / n^alpha.") var lengthPenalty: Double = GenerationOptions().lengthPenalty
    @Option(help: "Visual words (or clips) given per step.") var maxVideoTokens: Int = GenerationOptions().maxVideoTokens
    @Option(help: "Write the captions here (COCO results).") var out: String
    @Option(help: "Write the COCO references here.") var refsOut: String?
    @Option(help: "Also score NAME=FILE, COCO results of another system (repeatable).") var baseline: [String] = []

    func validate() throws {
        guard beam >= 1 else { throw ValidationError("--beam must be at least 1") }
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1") }
        guard maxVideoTokens >= 1 else { throw ValidationError("--max-video-tokens must be at least 1") }
        for b in baseline where !b.contains("=") { throw ValidationError("--baseline expects NAME=FILE, got '\(b)'") }
        if annotations == nil && (refsOut != nil || !baseline.isEmpty) {
            throw ValidationError("--refs-out and --baseline need --annotations (reference captions)")
        }
    }

    func run() throws {
        let read = [annotations].compactMap { $0 } + baseline.compactMap { $0.split(separator: "=", maxSplits: 1).last.map(String.init) }
        try AtomicFile.checkOutputFile(out, inputs: read)
        if let refsOut { try AtomicFile.checkOutputFile(refsOut, inputs: read + [out]) }
        let extra = try baseline.map { spec -> (String, CaptionPredictions) in
            let eq = spec.firstIndex(of: "=")!
            return (String(spec[..<eq]), try CaptionFiles.loadPredictions(String(spec[spec.index(after: eq)...])))
        }
        let (model, corpus) = try task.load(allowClipFeatures: true)
        let notes = try annotations.map { try StepAnnotations.load($0) } ?? StepAnnotations.segments(of: corpus, split: task.split)
        var options = GenerationOptions()
        options.beam = beam
        options.maxTokens = maxTokens
        options.lengthPenalty = lengthPenalty
        options.maxVideoTokens = maxVideoTokens
        let output = try CaptionTask.run(model: model, corpus: corpus, annotations: notes, split: task.split, trainSplit: task.trainSplit,
                                         options: options, extra: extra)
        try writeJSONObject(CaptionTask.resultsJSON(output.results), to: out)
        if let refsOut { try writeJSONObject(CaptionTask.referencesJSON(output.references), to: refsOut) }
        try task.emit(output.report, table: CaptionTask.table(output.report) + "\ncaptions: \(out)" + (refsOut.map { "\nreferences: \($0)" } ?? ""))
    }
}
