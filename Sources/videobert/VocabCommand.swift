import ArgumentParser

/// `videobert vocab`: vocabularies. Each subcommand lives in its own file; add it to the list.
struct VocabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vocab",
        abstract: "Build and look at vocabularies (visual words, text WordPieces).",
        discussion: """
        Example:
          videobert vocab fit --features features/ --branching 12 --depth 4 --out vocab/
          videobert vocab text transcripts/ --size 8000 --out Vocab/cooking.txt
        """,
        subcommands: [VocabFit.self, VocabShow.self, VocabText.self]
    )
}
