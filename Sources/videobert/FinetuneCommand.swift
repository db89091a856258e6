import ArgumentParser

/// `videobert finetune`: downstream fine-tuning from a pretrained checkpoint. One file per subcommand.
struct FinetuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Fine-tune a pretrained checkpoint for a downstream task (captioning, next-step forecasting).",
        discussion: """
        Example:
          videobert finetune caption --recipe Recipes/finetune-caption-demo.yaml
          videobert finetune next-step --recipe Recipes/finetune-next-step-demo.yaml
        """,
        subcommands: [FinetuneCaptionCommand.self, FinetuneNextStepCommand.self]
    )
}
