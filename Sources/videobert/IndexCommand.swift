import ArgumentParser
import Foundation
import Index
import Tensor

/// `videobert index`: a searchable index of a video collection.
struct IndexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "index",
        abstract: "Index a collection of videos: segments, thumbnails, transcripts (SQLite FTS5) and embeddings.",
        discussion: """
        Every video of --videos (a folder of videos with their transcripts beside them, or a JSONL \
        manifest of {"id", "video", "transcript"}, as `videobert tokenize` reads) is cut into \
        segments: the sentences of its transcript, or fixed --window windows when it has none. Each \
        segment gets its times, its text, a thumbnail (the frame at its middle) and, when the \
        checkpoint has a dual encoder (a CBT trained with a pooled objective), its embedding; a \
        VideoBERT checkpoint has none (search is then BM25 over the transcripts), and the index \
        says so. Videos are decoded as the checkpoint's training corpus was (its recipe.yaml; \
        --corpus when that corpus has moved).

        Incremental: re-running keeps unchanged videos (same path, size and modification time of \
        the video and its transcript), indexes new and changed ones and drops those no longer \
        listed. A video that fails is reported and the others finish. Prints a JSON summary.

        Example:
          videobert index --checkpoint demo/cbt/checkpoints/step-0000600 \\
              --videos demo/corpus/manifest.jsonl --out demo/index
          videobert index --videos ~/Videos --out videos.index --window 10
        """)

    @Option(help: "A checkpoint folder (CBT: text and video embeddings; VideoBERT: none). Without one, transcripts only.")
    var checkpoint: String?
    @Option(help: "A folder of videos (transcripts beside them) or a JSONL manifest.") var videos: String
    @Option(help: "The index folder (created; updated when it exists).") var out: String
    @Option(help: "The tokenized corpus the checkpoint was trained on (default: the one its recipe.yaml names).") var corpus: String?
    @Option(help: "Segment length for videos without transcript, e.g. 6s or 6.") var window: String = "6s"
    @Option(help: "Thumbnail width at most, in pixels.") var thumbnailWidth: Int = 160

    func validate() throws {
        guard let w = Self.seconds(window), w > 0, w <= 3600 else { throw ValidationError("--window must be seconds in (0, 3600], e.g. 6s") }
        guard thumbnailWidth >= 16 && thumbnailWidth <= 1920 else { throw ValidationError("--thumbnail-width must be in 16...1920") }
    }

    static func seconds(_ s: String) -> Double? {
        let t = s.hasSuffix("s") ? String(s.dropLast()) : s
        guard let v = Double(t), v.isFinite else { return nil }
        return v
    }

    func run() throws {
        var options = IndexBuilder.Options(videos: videos, out: out)
        options.checkpoint = checkpoint
        options.corpus = corpus
        options.window = Self.seconds(window)!
        options.thumbnailWidth = thumbnailWidth
        options.showProgress = ProcessInfo.processInfo.environment["VIDEOBERT_QUIET"] == nil
        let summary = try IndexBuilder(options: options).run()
        print(try JSON.string(summary))
        logLine("index: \(summary.segments) segments of \(summary.videos - summary.failed) videos (\(summary.indexed) indexed, \(summary.kept) kept, \(summary.dropped) dropped, \(summary.failed) failed) → \(out)")
        if summary.encoder.isEmpty { logLine("index: no embeddings: \(summary.note)") }
    }
}
