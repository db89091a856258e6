import ArgumentParser
import Foundation
import Model
import Tasks
import Tensor
import Train

/// `videobert retrieve`: text→video and video→text retrieval on held-out segments.
struct RetrieveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retrieve",
        abstract: "Text-to-video and video-to-text retrieval (R@1, R@5, R@10, median rank) on held-out segments.",
        discussion: """
        Every (text, video) pair of N held-out segments that have both is scored by the \
        alignment head's P(aligned) on "[CLS] text [>] video [SEP]" (N² forward passes, batched); \
        each text's own segment is its true video. Ranks count ties against the truth. Reported \
        beside chance (R@k = k/N, median rank (N+1)/2). --max picks a seeded random subset.

        A CBT checkpoint (from a `variant: cbt` recipe: it holds cbt_config.json) is scored by \
        its embeddings instead: the cosine similarity of the pooled text and video embeddings \
        (--cbt-scorer pooled), or the cross-modal transformer's score (--cbt-scorer cross); its \
        segments are the split's first --max with text and video, in corpus order, with the \
        stored clips (frames or features) the model was trained on.

        Example:
          videobert retrieve --checkpoint demo/pretrain/checkpoints/step-0003000 \\
              --corpus demo/tokens --split test --max 100 --out-json retrieval.json
          videobert retrieve --checkpoint demo/cbt/checkpoints/step-0000200 \\
              --corpus demo/tokens --split test
        """)

    @OptionGroup var task: TaskOptions
    @Option(help: "At most this many segments (a seeded random subset; 0: all).") var max: Int = 100
    @Option(help: "Seed of the subset.") var seed: UInt64 = 0
    @Option(help: "Text WordPieces kept per segment.") var maxTextTokens: Int = 32
    @Option(help: "Visual words kept per segment.") var maxVideoTokens: Int = 32
    @Option(help: "For a CBT checkpoint: pooled (embeddings' cosine) or cross (cross-modal transformer).") var cbtScorer: CBTScorer = .pooled

    enum CBTScorer: String, ExpressibleByArgument, CaseIterable { case pooled, cross }

    func run() throws {
        if try Checkpoint(folder: task.checkpoint).kind == .cbt {
            let r = try CBTTrainer.retrieval(checkpoint: task.checkpoint, corpus: task.corpus, split: task.split, maxPairs: max,
                                             cross: cbtScorer == .cross)
            let report = RetrievalReport(checkpoint: task.checkpoint, corpus: task.corpus, split: task.split,
                                         scorer: cbtScorer == .cross ? "CBT cross-modal transformer" : "cosine of CBT's pooled embeddings",
                                         segments: r.pairs, textToVideo: r.textToVideo, videoToText: r.videoToText,
                                         chance: TextVideoRetrieval.chance(r.pairs))
            try task.emit(report, table: TextVideoRetrieval.table(report))
            return
        }
        let (model, corpus) = try task.load()
        let scorer = AlignmentHeadScorer(model: model, maxTextTokens: maxTextTokens, maxVideoTokens: maxVideoTokens)
        let report = try TextVideoRetrieval.run(scorer: scorer, checkpoint: task.checkpoint, corpus: corpus, split: task.split, max: max, seed: seed)
        try task.emit(report, table: TextVideoRetrieval.table(report))
    }
}
