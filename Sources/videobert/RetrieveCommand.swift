import ArgumentParser
import Backbones
import Foundation
import Model
import Tasks
import Tensor

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
        (--cbt-scorer pooled), or the cross-modal transformer's score (--cbt-scorer cross), over \
        the stored clips (frames or features) the model was trained on; segments are chosen as \
        above (--max, --seed), texts cut at --max-text-tokens, at most 16 segments per pass.

        A fusion checkpoint (`variant: fusion`: fusion_config.json) reports text → video, \
        text → video+audio and text → audio (R@1/5/10, median rank, beside chance): the cosine \
        of its text embedding and each segment's video, fused video+audio or audio embedding.

        With --clip PRESET (clip-vit-b32, clip-vit-b16, clip-vit-l14), --checkpoint is a Hugging Face \
        CLIP folder and the score is zero-shot: the cosine of CLIP's L2-normalised text embedding \
        (the segment's sentence) and video embedding (the mean of the segment's clip rows). The \
        corpus must be tokenized with features.source: PRESET, features.weights: the same folder \
        and store.features: true (its clip_features.npy are the rows).

        With --milnce, --checkpoint is MIL-NCE's s3d_howto100m.pth and --dictionary its \
        s3d_dict.npy: the score is the dot product of the sentence's 512-d text embedding and \
        the mean of the segment's 512-d clip embeddings, unnormalised as MIL-NCE scores. The \
        corpus must be tokenized with features.source: s3d-howto100m-joint and store.features: true.

        Example:
          videobert retrieve --checkpoint demo/pretrain/checkpoints/step-0003000 \\
              --corpus demo/tokens --split test --max 100 --out-json retrieval.json
          videobert retrieve --checkpoint demo/cbt/checkpoints/step-0000200 \\
              --corpus demo/tokens --split test
          videobert retrieve --checkpoint demo/fusion/checkpoints/step-0000300 \\
              --corpus demo/tokens --split test
          videobert retrieve --clip clip-vit-b32 --checkpoint clip-vit-base-patch32/ \\
              --corpus clip-tokens --split test
          videobert retrieve --milnce --checkpoint s3d_howto100m.pth \\
              --dictionary s3d_dict.npy --corpus s3d-tokens --split test
        """)

    @OptionGroup var task: TaskOptions
    @Option(help: "At most this many segments (a seeded random subset; 0: all).") var max: Int = 100
    @Option(help: "Seed of the subset.") var seed: UInt64 = 0
    @Option(help: "Text WordPieces kept per segment.") var maxTextTokens: Int = 32
    @Option(help: "Visual words kept per segment.") var maxVideoTokens: Int = 32
    @Option(help: "For a CBT checkpoint: pooled (embeddings' cosine) or cross (cross-modal transformer).") var cbtScorer: CBTScorer = .pooled

    @Option(help: "Zero-shot CLIP scores with this preset (clip-vit-b32, clip-vit-b16, clip-vit-l14); --checkpoint is then a Hugging Face CLIP folder.") var clip: String?
    @Option(help: "With --clip: CLIP's tokenizer vocabulary (default: the folder's vocab.json + merges.txt).") var clipVocab: String?

    @Flag(help: "Zero-shot MIL-NCE scores; --checkpoint is then s3d_howto100m.pth.") var milnce = false
    @Option(help: "With --milnce: MIL-NCE's vocabulary, s3d_dict.npy.") var dictionary: String?

    enum CBTScorer: String, ExpressibleByArgument, CaseIterable { case pooled, cross }

    func run() throws {
        try task.checkOutputs()
        let scorer: TextVideoScorer, corpus: TaskCorpus
        if milnce {
            guard clip == nil else { throw ValidationError("--milnce and --clip are two different scorers: give one") }
            guard let dictionary else { throw ValidationError("--milnce needs --dictionary (MIL-NCE's s3d_dict.npy)") }
            corpus = try TaskCorpus(path: task.corpus)
            scorer = try MILNCEScorer(text: try S3DText(weights: try WeightFile.open(task.checkpoint), dictionary: dictionary), corpus: corpus)
            let report = try TextVideoRetrieval.run(scorer: scorer, checkpoint: task.checkpoint, corpus: corpus, split: task.split, max: max, seed: seed)
            return try task.emit(report, table: TextVideoRetrieval.table(report))
        }
        if dictionary != nil { throw ValidationError("--dictionary is for --milnce") }
        if let clip {
            guard CLIPConfig.presets[clip] != nil else {
                throw ValidationError("--clip must be one of \(CLIPConfig.presets.keys.sorted().joined(separator: ", ")) (got '\(clip)')")
            }
            corpus = try TaskCorpus(path: task.corpus)
            let tokenizer = try CLIPTextCommand.tokenizer(vocab: clipVocab, weights: task.checkpoint)
            let tower = try CLIPTextTower(checkpoint: try CLIPCheckpoint(path: task.checkpoint, preset: clip), endId: tokenizer.endId)
            scorer = try ClipScorer(tower: tower, tokenizer: tokenizer, backbone: clip, corpus: corpus)
            let report = try TextVideoRetrieval.run(scorer: scorer, checkpoint: task.checkpoint, corpus: corpus, split: task.split, max: max, seed: seed)
            return try task.emit(report, table: TextVideoRetrieval.table(report))
        }
        let checkpoint = try Checkpoint(folder: task.checkpoint)
        if checkpoint.kind == .fusion {
            corpus = try TaskCorpus(path: task.corpus)
            let report = try FusionRetrieval.run(checkpoint: checkpoint, corpus: corpus, split: task.split, max: max, seed: seed,
                                                 maxTextTokens: maxTextTokens, batchSize: min(task.batch, 16))
            return try task.emit(report, table: FusionRetrieval.table(report))
        }
        if checkpoint.kind == .cbt {
            corpus = try TaskCorpus(path: task.corpus)
            scorer = try Tasks.CBTScorer(checkpoint: checkpoint, corpus: corpus, score: cbtScorer == .cross ? .cross : .pooled,
                                   maxTextTokens: maxTextTokens, batchSize: min(task.batch, 16))
        } else {
            let (model, c) = try task.load()
            corpus = c
            scorer = AlignmentHeadScorer(model: model, maxTextTokens: maxTextTokens, maxVideoTokens: maxVideoTokens)
        }
        let report = try TextVideoRetrieval.run(scorer: scorer, checkpoint: task.checkpoint, corpus: corpus, split: task.split, max: max, seed: seed)
        try task.emit(report, table: TextVideoRetrieval.table(report))
    }
}
