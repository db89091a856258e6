import ArgumentParser
import Distributed
import Foundation
import Recipe
import Tensor
import Tokenize

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Turn videos + transcripts into a tokenized corpus: visual words paired with WordPieces.",
        discussion: """
        A corpus is one of:
          a folder of videos with transcripts beside them (.vtt, .srt or .json),
          a JSONL manifest of {"id", "video", "transcript", ["group", "split"]},
          a HowTo100M or YouCook2 caption .json, with the videos in --videos.
        Settings come from a recipe (Recipes/tokenize-*.yaml; every key and its default: \
        Sources/Tokenize/Corpus/TokenizeRecipe.swift), overridden by --set key=value.

        The output folder holds .npy arrays and index.json (numpy reads them alone), the visual \
        vocabulary (vocab/), the text vocabulary, the resolved recipe, and failures.jsonl. \
        Re-running skips finished videos. The exit status is 0 only when every video succeeded.

        Under mpirun or srun, video i goes to rank i mod N, the visual vocabulary is fitted by \
        all ranks together (the same bytes as one process), and each rank writes its own shard \
        of the corpus (shards/NNNNN; rank 0 writes index.json last); the output folder must be on \
        a file system every rank sees. --shards N writes N shards from one process. Every reader \
        sees a sharded corpus as one.

        --append adds the --corpus videos to the existing corpus in --out as new shards, with \
        the corpus' own recipe.yaml and visual (and audio) vocabulary, without touching the \
        videos already in it; a different recipe or text vocabulary is refused.

        Examples:
          videobert tokenize --corpus demo/corpus/manifest.jsonl \\
              --recipe Recipes/tokenize-demo.yaml --out demo/tokens
          videobert tokenize --corpus ~/videos --out corpus --set kmeans.branching=8 \\
              --set kmeans.depth=3
          videobert tokenize --corpus new_videos/ --out corpus --append
          videobert tokenize --corpus raw_caption.json --videos ~/howto100m \\
              --out corpus --recipe Recipes/tokenize-howto100m-s3d.yaml \\
              --set features.dir=~/s3d_features
        """)

    @Option(help: "Corpus folder, manifest (.jsonl) or caption file (.json).") var corpus: String
    @Option(help: "Where the videos are, for a caption .json corpus (default: beside it).") var videos: String?
    @Option(help: "Output folder.") var out: String
    @Option(help: "Recipe YAML (default: the built-in defaults, as in the VideoBERT paper).") var recipe: String?
    @Option(name: .customLong("set"), help: "Override a recipe value, e.g. --set frames.fps=10 (repeatable).") var overrides: [String] = []
    @Flag(help: "Print the summary as JSON only.") var json = false
    @Flag(help: "Add the videos to the corpus in --out as new shards, with its recipe and vocabularies.") var append = false
    @Option(help: "Shards to write (default: one per rank; in one process, a single folder).") var shards: Int?

    func run() throws {
        var r: TokenizeRecipe
        do {
            // --append: the corpus' own recipe unless one is given (then it must be the same).
            let corpusRecipe = (out as NSString).appendingPathComponent("recipe.yaml")
            r = try RecipeLoader.load(TokenizeRecipe.self, file: recipe ?? (append && FileManager.default.fileExists(atPath: corpusRecipe) ? corpusRecipe : nil),
                                      overrides: overrides)
        } catch let e as RecipeError {
            throw VideoBertError(e.message, file: e.file)
        }
        if let p = r.problem() { throw VideoBertError(p, file: recipe ?? "--set") }
        let items = try CorpusSource.discover(corpus, videosDir: videos)
        if TokenizeRecipe.backboneSources.contains(r.features.source) {
            r = try FeaturesCommand.extractForTokenize(recipe: r, items: items, out: out)
        }
        let tokenizer = try CorpusTokenizer(recipe: r, items: items, out: out)
        // Under mpirun/srun the videos are divided among the ranks; rank 0 writes the corpus.
        let comm = worldCommunicator()
        if comm.size > 1 { Threads.configureBLAS() }
        tokenizer.communicator = comm
        if let shards, !(1...CorpusShards.maxShards).contains(shards) {
            throw VideoBertError("--shards \(shards) is out of range 1...\(CorpusShards.maxShards)", file: nil)
        }
        if append && !FileManager.default.fileExists(atPath: (out as NSString).appendingPathComponent("index.json")) {
            throw VideoBertError("--append: not a tokenized corpus (no index.json); tokenize it first without --append", file: out)
        }
        tokenizer.append = append
        tokenizer.shards = shards
        let (summary, failures) = try tokenizer.run()
        guard comm.isRoot else { return }
        if json {
            print(try JSON.string(summary))
        } else {
            print("tokenized \(summary.succeeded)/\(summary.videos) videos (\(summary.skipped) already done) in \(String(format: "%.1f", summary.seconds)) s → \(summary.out)")
            print("  \(summary.clips) clips, \(summary.segments) segments, \(summary.textTokens) text tokens, \(summary.visualWords) visual words\(summary.vocabularyReused ? " (vocabulary reused)" : "")")
            print("  splits: " + ["train", "val", "test"].map { "\($0) \(summary.splits[$0] ?? 0)" }.joined(separator: ", "))
            if !failures.isEmpty {
                print("  \(failures.count) failed (details in \((out as NSString).appendingPathComponent("failures.jsonl"))):")
                for f in failures.prefix(20) { print("    \(f.id): \(f.error)") }
                if failures.count > 20 { print("    ...") }
            }
            print(try JSON.string(summary))
        }
        if !failures.isEmpty { throw ExitCode(2) }
    }
}
