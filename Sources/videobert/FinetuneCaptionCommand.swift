import ArgumentParser
import Foundation
import Recipe
import Tasks
import Tensor
import Train

/// `videobert finetune caption`: a captioner trained from a pretrained checkpoint.
struct FinetuneCaptionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "caption",
        abstract: "Train a captioner (visual words or CBT clip features in, text out) from a pretrained checkpoint.",
        discussion: """
        The same BERT generates the caption word by word: to predict word k+1 it reads \
        "[CLS] w1..wk [MASK] [>] v1..vm [SEP]" and its MLM head at the [MASK] gives the word; [SEP] \
        ends the caption. Training visits every (caption, prefix) pair of the train split's \
        annotated steps in a seeded order (MLM loss at the [MASK] only).

        With init a CBT checkpoint (`variant: cbt`), the CBT's text BERT is the captioner and the \
        v1..vm positions are the step's clip features from the CBT visual transformer (frozen, \
        computed once), mapped into the BERT's embeddings by a trained linear projection. The \
        corpus must store the frames (or features) the CBT was trained on.

        Every key of a recipe and its default: Sources/Train/CaptionRecipe.swift. \
        Checkpoints go to <out>/checkpoints/step-NNNNNNN (a checkpoint folder every task command \
        reads, plus the recipe and trainer state); metrics.jsonl and loss.svg beside them. \
        Ctrl-C saves and stops; --resume continues exactly. Generate with `videobert caption`.

        Examples:
          videobert finetune caption --recipe Recipes/finetune-caption-demo.yaml
          videobert finetune caption --recipe Recipes/finetune-caption-demo.yaml \\
              --set train.steps=100
          videobert finetune caption --recipe Recipes/finetune-caption-demo.yaml \\
              --resume
          videobert finetune caption --recipe Recipes/finetune-caption-demo.yaml \\
              --set init=demo/cbt/checkpoints/step-0000200 --set out=demo/caption-cbt
        """)

    @Option(help: "Recipe YAML.") var recipe: String
    @Option(name: .customLong("set"), help: "Override a recipe value, e.g. --set train.lr=5e-5 (repeatable).") var overrides: [String] = []
    @Flag(help: "Continue from the newest checkpoint in the run folder.") var resume = false
    @Flag(help: "Print the summary as JSON only.") var json = false

    func run() throws { try Self.train(recipe: recipe, overrides: overrides, resume: resume, json: json, target: .caption) }

    /// Loads the recipe (with `target` set: `finetune caption` and `finetune next-step` differ in
    /// it only), trains, and prints the summary.
    static func train(recipe: String, overrides: [String], resume: Bool, json: Bool, target: CaptionTarget) throws {
        var r: CaptionRecipe
        do {
            r = try RecipeLoader.load(CaptionRecipe.self, file: recipe, overrides: overrides)
        } catch let e as RecipeError {
            throw VideoBertError(e.message, file: e.file)
        }
        guard r.target == .caption || r.target == target else {
            throw VideoBertError("target: \(r.target.rawValue) is set by `videobert finetune \(r.target.rawValue)`, not this command", file: recipe)
        }
        r.target = target
        if let p = r.problem() { throw VideoBertError(p, file: recipe) }
        let tuner: CaptionFineTuner
        do {
            tuner = try CaptionFineTuner(recipe: r, resume: resume)
        } catch let e as VideoBertError where e.file == "recipe" {
            throw VideoBertError(e.message, file: recipe)
        }
        let summary = try tuner.run()
        if json {
            print(try JSON.string(summary))
        } else {
            let what = target == .caption ? "captions" : "next-step sentences"
            print("fine-tuned \(summary.steps) steps in \(String(format: "%.1f", summary.seconds)) s on \(summary.trainCaptions) \(what) (\(summary.trainPairs) prefixes); final loss \(String(format: "%.4f", summary.finalLoss))")
            if !summary.eval.isEmpty {
                print("held-out (\(r.data.evalSplit)): " + summary.eval.keys.sorted().map { "\($0) \(String(format: "%.4f", summary.eval[$0]!))" }.joined(separator: ", "))
            }
            print("checkpoint: \(summary.checkpoint)")
        }
        if summary.stoppedEarly { throw ExitCode(130) }
    }
}
