import ArgumentParser
import Demo
import Foundation
import Recipe
import Tensor
import Tokenize

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the whole toolkit on the built-in demo corpus, with no data of your own.",
        discussion: """
        Stages (each reuses its output when it is already there, so a re-run only does what is missing):
          1. corpus   render cooking videos with narration          (<out>/corpus)
          2. tokens   tokenize with Recipes/tokenize-demo.yaml      (<out>/tokens)
          3. words    contact sheets of the visual words            (<out>/words)

        Example:
          videobert demo --out demo
        """)

    @Option(help: "Output folder.") var out: String = "demo"
    @Option(help: "Videos in the demo corpus.") var videos: Int = 120
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Where Recipes/ and Vocab/ are (default: the current folder).") var root: String = "."

    func run() throws {
        let started = Date()
        let corpusDir = (out as NSString).appendingPathComponent("corpus")
        let tokensDir = (out as NSString).appendingPathComponent("tokens")
        let wordsDir = (out as NSString).appendingPathComponent("words")
        let recipePath = (root as NSString).appendingPathComponent("Recipes/tokenize-demo.yaml")
        let vocabPath = (root as NSString).appendingPathComponent("Vocab/bert-base-uncased.txt")
        guard FileManager.default.fileExists(atPath: vocabPath) else {
            throw VideoBertError("BERT vocabulary missing: run tools/setup (or pass --root to the repository)", file: vocabPath)
        }
        var rows: [(String, String)] = []

        // 1. corpus
        let manifest = (corpusDir as NSString).appendingPathComponent("manifest.jsonl")
        var t0 = Date()
        var options = DemoCorpus.Options()
        options.videos = videos
        options.seed = seed
        let progress = ProgressReporter(label: "1/3 corpus", total: videos, unit: "videos")
        try DemoCorpus(options: options).generate(into: corpusDir, workers: 2, encode: DemoCorpusCommand.encode) { _, _ in progress.advance() }
        progress.finish()
        rows.append(("corpus", "\(videos) videos in \(String(format: "%.0f", Date().timeIntervalSince(t0))) s"))

        // 2. tokens
        t0 = Date()
        let recipe = try RecipeLoader.load(TokenizeRecipe.self, file: recipePath, overrides: ["text.vocab=\(vocabPath)"])
        let items = try CorpusSource.discover(manifest)
        let tokenizer = try CorpusTokenizer(recipe: recipe, items: items, out: tokensDir)
        let (summary, failures) = try tokenizer.run()
        if !failures.isEmpty {
            throw VideoBertError("\(failures.count) demo videos failed to tokenize (see failures.jsonl)", file: tokensDir)
        }
        rows.append(("tokens", "\(summary.clips) clips, \(summary.segments) segments, \(summary.visualWords) visual words in \(String(format: "%.0f", Date().timeIntervalSince(t0))) s"))

        // 3. words
        t0 = Date()
        let sheets = try VisualWordSheets(corpus: TokenizedCorpus(path: tokensDir))
        let drawn = try sheets.write(to: wordsDir, perWord: 6, framesPerClip: 4, side: 32)
        rows.append(("words", "\(drawn.count) contact sheets in \(String(format: "%.0f", Date().timeIntervalSince(t0))) s"))

        print("")
        let width = rows.map(\.0.count).max()!
        for (k, v) in rows { print(k.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + v) }
        print("total \(String(format: "%.0f", Date().timeIntervalSince(started))) s → \(out)")
    }
}
