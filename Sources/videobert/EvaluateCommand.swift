import ArgumentParser

/// `videobert evaluate`: scores for downstream outputs. Each subcommand lives in its own file.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Score downstream outputs against references (caption metrics).",
        discussion: """
        Example:
          videobert evaluate captions --pred captions.json --refs references.json
        """,
        subcommands: [EvaluateCaptionsCommand.self]
    )
}
