import ArgumentParser
import Foundation
import Recipe
import Tensor
import Train

struct PretrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pretrain",
        abstract: "Pretrain VideoBERT on a tokenized corpus: MLM + MFM + text–video alignment.",
        discussion: """
        The model is BERT (post-LayerNorm) over [CLS] text [>] video [SEP], visual word i being
        token T + i. Examples mix three regimes (text+video with alignment negatives, text only,
        video only); 15% of tokens are masked (80% [MASK], 10% random, 10% kept).

        Every key of a recipe and its default: Sources/Train/PretrainRecipe.swift.
        Recipes: Recipes/tiny.yaml (seconds), demo.yaml (minutes), videobert-base.yaml,
        videobert-large.yaml (the paper's size; needs far more than 2 cores).

        Checkpoints go to <out>/checkpoints/step-NNNNNNN: a Hugging Face BERT folder
        (config.json, model.safetensors, vocab.txt) plus the visual vocabulary, the resolved
        recipe and the trainer state. Ctrl-C saves a checkpoint and stops; --resume continues
        exactly where a run stopped. metrics.jsonl has one JSON object per logged step;
        loss.svg draws the curves.

        Examples:
          videobert pretrain --recipe Recipes/demo.yaml
          videobert pretrain --recipe Recipes/tiny.yaml --set corpus=demo/tokens --set train.steps=50
          videobert pretrain --recipe Recipes/demo.yaml --resume
        """)

    @Option(help: "Recipe YAML.") var recipe: String
    @Option(name: .customLong("set"), help: "Override a recipe value, e.g. --set train.lr=5e-4 (repeatable).") var overrides: [String] = []
    @Flag(help: "Continue from the newest checkpoint in the run folder.") var resume = false
    @Flag(help: "Print the summary as JSON only.") var json = false

    func run() throws {
        let r: PretrainRecipe
        do {
            r = try RecipeLoader.load(PretrainRecipe.self, file: recipe, overrides: overrides)
        } catch let e as RecipeError {
            throw VideoBertError(e.message, file: e.file)
        }
        if let p = r.problem() { throw VideoBertError(p, file: recipe) }
        let trainer = try Trainer(recipe: r, resume: resume)
        let summary = try trainer.run()
        if !json {
            print("trained \(summary.steps) steps in \(String(format: "%.1f", summary.seconds)) s; final loss \(String(format: "%.4f", summary.finalLoss))")
            if !summary.eval.isEmpty {
                print("held-out: " + summary.eval.keys.sorted().map { "\($0) \(String(format: "%.4f", summary.eval[$0]!))" }.joined(separator: ", "))
            }
            print("checkpoint: \(summary.checkpoint)")
        }
        print(try JSON.string(summary))
        if summary.stoppedEarly { throw ExitCode(130) }
    }
}
