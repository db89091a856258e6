import ArgumentParser
import Foundation
import Tasks
import Tensor

/// `videobert retrieve`: text→video and video→text retrieval on held-out segments.
struct RetrieveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retrieve",
        abstract: "Text-to-video and video-to-text retrieval (R@1, R@5, R@10, median rank) on held-out segments.",
        discussion: """
        Every (text, video) pair of N held-out segments that have both is scored by the
        alignment head's P(aligned) on "[CLS] text [>] video [SEP]" (N² forward passes, batched);
        each text's own segment is its true video. Ranks count ties against the truth. Reported
        beside chance (R@k = k/N, median rank (N+1)/2). --max picks a seeded random subset.

        Example:
          videobert retrieve --checkpoint demo/pretrain/checkpoints/step-0002000 --corpus demo/tokens \\
              --split test --max 100 --out-json retrieval.json
        """)

    @OptionGroup var task: TaskOptions
    @Option(help: "At most this many segments (a seeded random subset; 0: all).") var max: Int = 100
    @Option(help: "Seed of the subset.") var seed: UInt64 = 0
    @Option(help: "Text WordPieces kept per segment.") var maxTextTokens: Int = 32
    @Option(help: "Visual words kept per segment.") var maxVideoTokens: Int = 32

    func run() throws {
        let (model, corpus) = try task.load()
        let scorer = AlignmentHeadScorer(model: model, maxTextTokens: maxTextTokens, maxVideoTokens: maxVideoTokens)
        let report = try TextVideoRetrieval.run(scorer: scorer, checkpoint: task.checkpoint, corpus: corpus, split: task.split, max: max, seed: seed)
        try task.emit(report, table: TextVideoRetrieval.table(report))
    }
}
