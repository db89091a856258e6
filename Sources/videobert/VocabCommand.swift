import ArgumentParser

// TEMPORARY (kmeans branch only): the `vocab` group is created on the text helper's branch with
// `subcommands: [VocabText.self]`; when merging, add `VocabFit.self` there and drop this file.
struct VocabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vocab",
        abstract: "Build and look at vocabularies (visual words, text WordPieces).",
        discussion: """
        Example:
          videobert vocab fit --features features/ --branching 12 --depth 4 --out vocab/
        """,
        subcommands: [VocabFit.self]
    )
}
