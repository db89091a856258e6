import ArgumentParser
import Foundation
import Tasks
import Tensor

/// `videobert zero-shot`: VideoBERT §4.2's zero-shot verb/noun classification and template captions.
struct ZeroShotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zero-shot",
        abstract: "Zero-shot verb and noun classification (and template captions) from a pretrained checkpoint.",
        discussion: """
        As VideoBERT §4.2: the model reads "[CLS] now let's [MASK] the [MASK] . [>] v1..vm [SEP]" \
        with the visual words of each annotated step (the corpus clips overlapping its span), and \
        its MLM head at the two masks ranks the label list's verbs and nouns. A label of several \
        WordPieces scores the sum of its pieces' log-probabilities as the slot is filled left to \
        right: its first piece at the [MASK], then each next piece at a [MASK] placed after the \
        pieces before it (--piece-scoring fill), or only its first piece (--piece-scoring first).

        Ground truth: the annotation's "verb"/"noun" fields when present, else the first label \
        found in its sentence. Reported beside chance (1/|labels|, 5/|labels|) and a frequency \
        baseline (the labels most often true in the train split). The caption "<verb> the <noun>" \
        of the top labels is scored with BLEU/METEOR/ROUGE-L/CIDEr against the step sentences.

        Annotations: YouCook2 JSON, MSR-VTT JSON or JSONL {"video", "start", "end", "caption"}. \
        Labels: {"verbs": [...], "nouns": [...]} (default: the annotations' verb/noun values).

        Example:
          videobert zero-shot --checkpoint demo/pretrain/checkpoints/step-0003000 \\
              --corpus demo/tokens --annotations demo/corpus/annotations.json \\
              --labels demo/corpus/labels.json --captions-out zero-shot-captions.json \\
              --out-json zero-shot.json
        """)

    @OptionGroup var task: TaskOptions
    @Option(help: "Annotations: YouCook2 JSON, MSR-VTT JSON or JSONL.") var annotations: String
    @Option(help: "Label list {\"verbs\": [...], \"nouns\": [...]} (default: from the annotations).") var labels: String?
    @Option(help: "How labels of several WordPieces are scored: fill (sum of log-probs filling the slot left to right) or first.") var pieceScoring: ZeroShotOptions.PieceScoring = .fill
    @Option(help: "Input template with {verb} and {noun}.") var template: String = ZeroShotOptions().template
    @Flag(help: "Score each label by log P(label | template, video) − log P(label | template, no video): how much the video raises it.") var calibrate = false
    @Option(help: "Write the template captions as COCO results [{\"image_id\", \"caption\"}].") var captionsOut: String?
    @Option(help: "Write the matching COCO references.") var refsOut: String?

    func run() throws {
        let notes = try StepAnnotations.load(annotations)
        let labelList = try labels.map(LabelList.load) ?? LabelList.fromAnnotations(notes)
        let (model, corpus) = try task.load()
        var options = ZeroShotOptions()
        options.pieceScoring = pieceScoring
        options.calibrate = calibrate
        options.template = template
        let report: ZeroShotReport
        do {
            report = try ZeroShotEvaluation.run(model: model, corpus: corpus, annotations: notes, labels: labelList, split: task.split,
                                                trainSplit: task.trainSplit, options: options)
        } catch let e as VideoBertError where e.file == nil && e.message.hasPrefix("label '") {
            throw VideoBertError(e.message, file: labels ?? annotations)
        }
        if let captionsOut { try writeJSONObject(CaptionTask.resultsJSON(report.captionResults), to: captionsOut) }
        if let refsOut {
            let steps = try corpus.resolve(notes).withVideo(in: task.split)
            try writeJSONObject(CaptionTask.referencesJSON(ZeroShotEvaluation.references(steps)), to: refsOut)
        }
        try task.emit(report, table: ZeroShotEvaluation.table(report))
    }
}
