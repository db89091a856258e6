import ArgumentParser
import Foundation
import Tasks
import Tensor

/// `videobert evaluate captions`: BLEU-1…4, METEOR, ROUGE-L and CIDEr-D as pycocoevalcap reports them.
struct EvaluateCaptionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "captions",
        abstract: "Caption metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D) as pycocoevalcap computes them.",
        discussion: """
        Reads COCO caption files: predictions [{"image_id", "caption"}], one per \
        image, and references {"annotations": [{"image_id", "caption"}]} or a \
        plain list of them. Image ids are integers or strings. Captions are \
        PTB-tokenized as pycocoevalcap does (no Java needed) and the images that \
        have a prediction are scored.

        BLEU, ROUGE-L and CIDEr-D equal pycocoevalcap's. METEOR uses the exact and \
        stem modules of METEOR 1.5, not WordNet synonyms or paraphrases: on our \
        test set it lands 0.003 below pycocoevalcap's default.

        Prints a table, then one JSON line with pycocoevalcap's keys (Bleu_1 ... \
        Bleu_4, METEOR, ROUGE_L, CIDEr); --json prints the JSON only.

        Example:
          videobert evaluate captions --pred captions.json --refs references.json
          videobert evaluate captions --pred captions.json --refs refs.json --json
        """)

    @Option(help: "Predicted captions: COCO results JSON [{\"image_id\", \"caption\"}].") var pred: String
    @Option(help: "Reference captions: COCO JSON {\"annotations\": [{\"image_id\", \"caption\"}]}.") var refs: String
    @Flag(help: "Print only the JSON scores.") var json = false
    @Flag(help: "Fail when a reference image has no prediction (default: score the predicted images, warn).")
    var requireAll = false

    func run() throws {
        let e = try CaptionEvaluator.evaluate(predictionsFile: pred, referencesFile: refs, requireAll: requireAll)
        if !e.imagesWithoutPrediction.isEmpty {
            let ids = e.imagesWithoutPrediction.prefix(5).map(\.description).joined(separator: ", ")
            let more = e.imagesWithoutPrediction.count > 5 ? " …" : ""
            logLine("warning: \(pred): \(e.imagesWithoutPrediction.count) reference image(s) have no prediction and are not scored (\(ids)\(more))")
        }
        let line = try JSON.string(e.scores)
        if json {
            print(line)
            return
        }
        print("captions: \(e.imageIDs.count) images scored (\(pred) against \(refs))")
        for (name, value) in e.scores.named {
            let note = name == "METEOR" ? "   exact + stem modules" : name == "CIDEr" ? "   CIDEr-D" : ""
            print("  " + name.padding(toLength: 8, withPad: " ", startingAt: 0) + String(format: "%8.4f", value) + note)
        }
        print(line)
    }
}
