import ArgumentParser
import Tasks

/// `videobert finetune next-step`: a next-step forecaster trained from a pretrained checkpoint —
/// the captioner's training (`FinetuneCaptionCommand.train`) with the next step's sentence as
/// the target (`CaptionTarget.nextStep`).
struct FinetuneNextStepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "next-step",
        abstract: "Train a next-step forecaster (the current step's video in, the next step's sentence out) from a pretrained checkpoint.",
        discussion: """
        The captioner's layout and objective with another target: to predict word k+1 of the \
        NEXT annotated step's sentence the BERT reads "[CLS] w1..wk [MASK] [>] v_current.. [SEP]", \
        v_current the current step's visual words (or, with init a CBT checkpoint, its clip \
        features through a trained projection). Training visits every (current step, next \
        sentence prefix) pair of the train split: consecutive annotated steps of one video. The \
        recipe is a `finetune caption` recipe (Sources/Train/CaptionRecipe.swift); the checkpoint's \
        recipe.yaml records `target: next-step`, which makes it a videobert-forecaster (or \
        cbt-forecaster) checkpoint. Evaluate with `videobert next-step --annotations`.

        Examples:
          videobert finetune next-step --recipe Recipes/finetune-next-step-demo.yaml
          videobert finetune next-step --resume --set train.steps=1200 \\
              --recipe Recipes/finetune-next-step-demo.yaml
          videobert next-step --checkpoint demo/next-step/checkpoints/step-0000600 \\
              --corpus demo/tokens --annotations demo/corpus/annotations.json
        """)

    @Option(help: "Recipe YAML (the keys of a `finetune caption` recipe).") var recipe: String
    @Option(name: .customLong("set"), help: "Override a recipe value, e.g. --set train.lr=5e-5 (repeatable).") var overrides: [String] = []
    @Flag(help: "Continue from the newest checkpoint in the run folder.") var resume = false
    @Flag(help: "Print the summary as JSON only.") var json = false

    func run() throws {
        try FinetuneCaptionCommand.train(recipe: recipe, overrides: overrides, resume: resume, json: json, target: .nextStep)
    }
}
