import Foundation
import Index
import Model
import Tasks
import Tensor

/// `search --rerank K`: the second stage of retrieve-then-rerank. The first stage's top K are
/// re-scored by a cross-encoder, the alignment head of a VideoBERT checkpoint (the `[CLS]`
/// next-sentence head pretraining trains on text/video pairs, docs/ARCHITECTURE.md §3), as
/// `retrieve` scores with it (Tasks/Retrieval/TextVideoRetrieval.swift, AlignmentHeadScorer):
/// P(aligned) of `[CLS] query [>] v1..vm [SEP]`, where v are the visual words of the clips
/// overlapping the hit's span — its video tokenized by the path `caption VIDEO` uses
/// (RawVideos.swift), so the words are those the checkpoint's training corpus would give it.
extension SearchCommand {
    static let videoBERTKinds: Set<Checkpoint.Kind> = [.videobert, .videobertCaptioner, .videobertForecaster]

    /// The query encoder to use (`checkpoint` unless it is a VideoBERT checkpoint) and the
    /// cross-encoder: `checkpoint` when it is a VideoBERT one, else the index's when it is.
    static func crossEncoder(index: VideoIndex, checkpoint: String?) throws -> (encoder: String?, cross: (checkpoint: String, corpus: String?)) {
        if let checkpoint, videoBERTKinds.contains(try Checkpoint(folder: checkpoint).kind) {
            return (nil, (checkpoint, nil))
        }
        let own = index.checkpoint
        if !own.isEmpty, let kind = try? Checkpoint(folder: own).kind, videoBERTKinds.contains(kind) {
            return (checkpoint, (own, index.corpus.isEmpty ? nil : index.corpus))
        }
        throw VideoBertError("--rerank needs a VideoBERT checkpoint (its alignment head is the cross-encoder): give one with --checkpoint", file: index.folder)
    }

    /// The first `k` hits re-ordered by the cross-encoder's score (which becomes their score;
    /// ties keep the first stage's order), then the others as they were.
    static func rerank(_ hits: [SearchHit], k: Int, query: String, checkpoint: String, corpus: String?) throws -> [SearchHit] {
        let head = Array(hits.prefix(k))
        guard !head.isEmpty else { return hits }
        var paths: [String] = []
        for h in head where !paths.contains(h.path) { paths.append(h.path) }
        let quiet = ProcessInfo.processInfo.environment["VIDEOBERT_QUIET"] != nil
        let scores: [Float] = try RawVideos.tokenize(paths, checkpoint: checkpoint, corpus: corpus, transcript: nil, accepting: videoBERTKinds,
                                                    reads: "VideoBERT checkpoints (the alignment head re-ranks)", showProgress: !quiet) { raw in
            if let f = raw.failures.first { throw VideoBertError("cannot re-rank: \(f.error)") }
            guard let corpus = raw.corpus else { throw VideoBertError("cannot re-rank: no video could be tokenized", file: checkpoint) }
            let model = try TaskModel(checkpoint: checkpoint, corpus: corpus, maxBatch: 16)
            let idByPath = Dictionary(raw.paths.map { ($0.value, $0.key) }, uniquingKeysWith: { a, _ in a })
            let videos = head.map { h -> [Int32] in
                guard let id = idByPath[h.path], let v = corpus.videoIndex[id] else { return [] }
                return corpus.visualWords(video: v, start: h.start, end: h.end)
            }
            return try AlignmentHeadScorer(model: model).scores(texts: [model.encode(query)], videos: videos, progress: nil)
        }
        let order = head.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
        return order.map { i in
            var h = head[i]
            h.score = Double(scores[i])
            return h
        } + hits.dropFirst(k)
    }
}
