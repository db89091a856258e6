import Foundation
import Media
import Model
import Recipe
import Tasks
import Tensor
import Tokenize

/// Raw video files tokenized with the pipeline a checkpoint was trained on — the one path that
/// `caption VIDEO...`, `next-step VIDEO` and `serve`'s `POST /api/caption` share. The videos go
/// into a temporary corpus through `videobert tokenize`'s own code (`CorpusTokenizer`) with the
/// training corpus's recipe.yaml and its fitted visual vocabulary (kmeans.vocab), so decoding,
/// features, visual words and stored frames are those the corpus would have given them
/// (docs/ARCHITECTURE.md §2). The temporary corpus lives while `body` runs, then is removed.
struct RawVideos {
    /// The checkpoint's tokenized training corpus.
    var trainingCorpus: String
    /// Its recipe, as the videos were tokenized (vocabularies pointed at the corpus's).
    var recipe: TokenizeRecipe
    /// The videos that were tokenized (ids unique: base names, then -2, -3...).
    var items: [VideoItem]
    /// Video id → the file given.
    var paths: [String: String]
    var failures: [VideoCaptioner.Failure]
    /// The temporary corpus of `items` (nil when every video failed).
    var corpus: TaskCorpus?

    /// The training corpus: `corpus` when given, else the `corpus:` of the checkpoint's
    /// recipe.yaml; an error naming the checkpoint unless its kind is one of `accepting`.
    static func trainingCorpus(checkpoint: String, corpus: String?, accepting: Set<Checkpoint.Kind>, reads: String) throws -> String {
        let opened = try Checkpoint(folder: checkpoint)
        guard accepting.contains(opened.kind) else {
            let hint = [.videobertForecaster, .cbtForecaster].contains(opened.kind) && accepting.contains(.videobertCaptioner)
                ? "; for a forecaster, `videobert next-step VIDEO --checkpoint` forecasts what follows a video" : ""
            throw VideoBertError("is a \(opened.kind.rawValue) checkpoint: this reads \(reads)\(hint)", file: checkpoint)
        }
        if let corpus { return corpus }
        let recipe = opened.path(.recipe)
        guard let c = try RecipeLoader.topLevelString("corpus", file: recipe), !c.isEmpty else {
            throw VideoBertError("names no training corpus (corpus:); pass --corpus with the tokenized corpus it was trained on", file: recipe)
        }
        return c
    }

    /// Tokenizes `videos` (each with `transcript`, else the transcript beside it) and runs `body`
    /// on the result; the temporary corpus is removed afterwards. A video that cannot be read or
    /// is shorter than one clip is a failure (checked before decoding, so its reason is one line);
    /// the others are tokenized.
    static func tokenize<R>(_ videos: [String], checkpoint: String, corpus: String?, transcript: String?,
                            accepting: Set<Checkpoint.Kind>, reads: String, showProgress: Bool,
                            _ body: (RawVideos) throws -> R) throws -> R {
        let corpusPath = try trainingCorpus(checkpoint: checkpoint, corpus: corpus, accepting: accepting, reads: reads)
        let recipePath = (corpusPath as NSString).appendingPathComponent("recipe.yaml")
        guard FileManager.default.fileExists(atPath: recipePath) else {
            throw VideoBertError("the training corpus \(corpusPath) has no recipe.yaml (how its videos were tokenized); pass --corpus with the tokenized corpus the checkpoint was trained on", file: checkpoint)
        }
        var recipe = try RecipeLoader.load(TokenizeRecipe.self, file: recipePath)
        // The corpus's own vocabulary (fitted, or the one it was given), else the checkpoint's copy.
        let fitted = (corpusPath as NSString).appendingPathComponent("vocab")
        let copy = (checkpoint as NSString).appendingPathComponent(Checkpoint.File.visualVocab.rawValue)
        if recipe.kmeans.vocab.isEmpty || !FileManager.default.fileExists(atPath: recipe.kmeans.vocab) {
            guard let v = [fitted, copy].first(where: { FileManager.default.fileExists(atPath: $0) }) else {
                throw VideoBertError("has no visual vocabulary (vocab/), nor has the checkpoint \(checkpoint) (visual_vocab/)", file: corpusPath)
            }
            recipe.kmeans.vocab = v
        }
        // The text vocabulary where the recipe says, else the corpus's copy (the same file).
        if !FileManager.default.fileExists(atPath: recipe.text.vocab) { recipe.text.vocab = try TokenizedCorpus(path: corpusPath).textVocabPath }
        recipe.split.val = 0
        recipe.split.test = 0
        var raw = RawVideos(trainingCorpus: corpusPath, recipe: recipe, items: [], paths: [:], failures: [], corpus: nil)
        // Videos: ids from base names (unique), transcripts given or beside them.
        var items: [VideoItem] = []
        for file in videos {
            do {
                let item = try EncodeCommand.item(file, transcript: transcript)
                try preflight(file, clipSeconds: recipe.frames.clipSeconds)
                var id = item.id, n = 2
                while raw.paths[id] != nil { id = "\(item.id)-\(n)"; n += 1 }
                raw.paths[id] = file
                items.append(VideoItem(id: id, video: item.video, transcript: item.transcript, subset: "test"))
            } catch {
                raw.failures.append(.init(video: file, error: "\(error)"))
            }
        }
        guard !items.isEmpty else { return try body(raw) }
        let work = NSTemporaryDirectory() + "videobert-videos-\(getpid())-\(UUID().uuidString.prefix(8))"
        try AtomicFile.createDirectory(work)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let out = work + "/t"
        let tokenizer = try CorpusTokenizer(recipe: recipe, items: items, out: out)
        tokenizer.showProgress = showProgress
        var tokenizeFailures: [CorpusTokenizer.Failure]
        do {
            tokenizeFailures = try tokenizer.run().1
        } catch {
            // Every video failed: the tokenizer wrote why in failures.jsonl before throwing.
            guard let lines = try? String(contentsOfFile: out + "/failures.jsonl", encoding: .utf8) else { throw error }
            tokenizeFailures = lines.split(separator: "\n").compactMap { try? JSONDecoder().decode(CorpusTokenizer.Failure.self, from: Data($0.utf8)) }
            guard !tokenizeFailures.isEmpty else { throw error }
        }
        for f in tokenizeFailures { raw.failures.append(.init(video: raw.paths[f.id] ?? f.file ?? f.id, error: "\(f.stage): \(f.error)")) }
        let failed = Set(tokenizeFailures.map(\.id))
        raw.items = items.filter { !failed.contains($0.id) }
        if !raw.items.isEmpty { raw.corpus = try TaskCorpus(path: out) }
        return try body(raw)
    }

    /// The file opens as a video (a damaged or non-video file is named with FFmpeg's reason) and,
    /// when its container gives a duration, lasts at least one clip.
    static func preflight(_ file: String, clipSeconds: Double) throws {
        let reader = try VideoReader(path: file, threads: 1)
        if let d = reader.duration, d.isFinite, d + 1e-3 < clipSeconds {
            throw VideoBertError(String(format: "the video lasts %.2f s, shorter than one clip (%.2f s)", d, clipSeconds), file: file)
        }
    }
}
