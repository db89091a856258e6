import ArgumentParser
import Foundation
import Index
import Tensor

extension SearchMode: ExpressibleByArgument {}

/// `videobert search`: ranked segments of an index for a text query.
struct SearchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Search an index (from `videobert index`) for the segments that match a text query.",
        discussion: """
        Modes: text ranks by BM25 over the transcripts (SQLite FTS5's bm25(), Porter-stemmed \
        words; any word of the query may match); embedding by the cosine similarity of the \
        query's embedding and the segments' (the index's checkpoint encodes the query; sgemm \
        over the memory-mapped matrix); hybrid (the default) fuses both rankings' top 100 by \
        reciprocal-rank fusion, score = sum over the lists of 1 / (60 + rank) — text alone when \
        the index has no embeddings.

        --json prints [{"id", "video", "path", "start", "end", "score", "text"}] (times in \
        seconds, video = the manifest id or the file's base name); otherwise a table.

        --rerank K re-scores the first stage's top K with a cross-encoder, the alignment head \
        of a VideoBERT checkpoint (--checkpoint, or the index's own): P(aligned) of \
        "[CLS] query [>] the segment's visual words [SEP]", the videos tokenized as the \
        checkpoint's training corpus was (as `caption VIDEO`); those K come first, by that \
        score (their score), the rest follow. An index built with a VideoBERT checkpoint has no \
        embeddings: its search is BM25 + rerank.

        Example:
          videobert search demo/index "cut the onion" --top 10
          videobert search demo/index "cut the onion" --rerank 20 \\
              --checkpoint demo/pretrain/checkpoints/step-0003000
          videobert search demo/index "stir the tomatoes" --mode embedding --json
        """)

    @Argument(help: "The index folder.") var index: String
    @Argument(help: "The query.") var query: String
    @Option(help: "Number of results.") var top: Int = 10
    @Option(help: "text, embedding or hybrid.") var mode: SearchMode = .hybrid
    @Option(help: "Encode the query with this checkpoint instead of the index's; with --rerank, a VideoBERT checkpoint is the cross-encoder.") var checkpoint: String?
    @Option(help: "Re-score the first stage's top K with the alignment head of a VideoBERT checkpoint (0: no second stage).") var rerank: Int = 0
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard top >= 1 && top <= 10_000 else { throw ValidationError("--top must be in 1...10000") }
        guard query.utf8.count <= 65_536 else { throw ValidationError("the query is longer than 64 KiB") }
        guard (0...1000).contains(rerank) else { throw ValidationError("--rerank must be in 0...1000") }
    }

    func run() throws {
        let index = try VideoIndex(folder: self.index)
        var encoderCheckpoint = checkpoint, cross: (checkpoint: String, corpus: String?)?
        if rerank > 0 {
            (encoderCheckpoint, cross) = try Self.crossEncoder(index: index, checkpoint: checkpoint)
        }
        var hits = try index.search(query, top: max(top, rerank), mode: mode) { q in
            try Self.queryEncoder(index: index, checkpoint: encoderCheckpoint).encodeText([q])[0]
        }
        if let cross {
            hits = Array(try Self.rerank(hits, k: rerank, query: query, checkpoint: cross.checkpoint, corpus: cross.corpus).prefix(top))
        }
        if json {
            let data = try JSONEncoder.sorted.encode(hits)
            print(String(decoding: data, as: UTF8.self))
            return
        }
        if hits.isEmpty { print("no results"); return }
        for (i, h) in hits.enumerated() {
            let text = h.text.isEmpty ? "(no transcript)" : h.text
            print("\(String(format: "%3d. %.4f", i + 1, h.score))  \(h.video)  \(Self.time(h.start))–\(Self.time(h.end))  \(text)")
        }
    }

    /// The encoder of the index's checkpoint (or `checkpoint`): what embedded its segments.
    static func queryEncoder(index: VideoIndex, checkpoint: String?) throws -> SegmentEncoder {
        let path = checkpoint ?? index.checkpoint
        guard !path.isEmpty else { throw VideoBertError("the index was built without a checkpoint; search with --mode text", file: index.folder) }
        let opened = try CheckpointEncoder.open(path, corpus: index.corpus.isEmpty ? nil : index.corpus)
        guard let encoder = opened.encoder else { throw VideoBertError(opened.note, file: path) }
        guard encoder.name == index.encoder, encoder.dimension == index.embeddings?.columns else {
            throw VideoBertError("encodes \(encoder.name) × \(encoder.dimension), the index holds \(index.encoder) × \(index.embeddings?.columns ?? 0)", file: path)
        }
        return encoder
    }

    static func time(_ t: Double) -> String {
        let s = max(0, t)
        return String(format: "%d:%05.2f", Int(s) / 60, s.truncatingRemainder(dividingBy: 60))
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }
}
