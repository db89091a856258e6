import Foundation
import GRDB
import Tensor

/// `VideoIndex.search` for a server: the same results (Tests/CLITests/IndexLibraryTests), with
/// what a request costs taken off SQLite and off the request's thread:
/// - BM25 in memory (`TranscriptBM25`; FTS5 for a query it cannot read the same way),
/// - the segments' rows in memory (one array by row),
/// - embedding scores through `EmbeddingBatcher`: the queries that wait are ranked together, one
///   pass of sgemm over the mapped matrix per batch instead of one pass per query.
public final class SearchEngine: @unchecked Sendable {
    public let index: VideoIndex
    let bm25: TranscriptBM25?
    let byRow: [IndexedSegment]?
    public let batcher: EmbeddingBatcher?

    /// - Parameters:
    ///   - workers: threads that rank embedding batches.
    ///   - maxBatch: most queries per batch.
    public init(index: VideoIndex, workers: Int = 1, maxBatch: Int = 64) throws {
        self.index = index
        bm25 = try TranscriptBM25.load(index)
        byRow = try index.read { db -> [IndexedSegment]? in
            var out: [IndexedSegment] = []
            out.reserveCapacity(index.segmentCount)
            let cursor = try Row.fetchCursor(db, sql: "SELECT \(VideoIndex.segmentColumns) FROM segments ORDER BY row")
            while let r = try cursor.next() {
                let s = try index.segment(r)
                guard s.row == out.count else { return nil }   // rows are 0..<segments in every index this code writes
                out.append(s)
            }
            return out.count == index.segmentCount ? out : nil
        }
        batcher = index.embeddings == nil ? nil : EmbeddingBatcher(index: index, workers: workers, maxBatch: maxBatch)
    }

    /// Whether BM25 is answered in memory (false: by FTS5, for an index this code did not write).
    public var textInMemory: Bool { bm25 != nil }

    public func textRanking(_ query: String, limit: Int) throws -> [(row: Int, score: Double)] {
        if let bm25, let r = try bm25.ranking(query, limit: limit) { return r }
        return try index.textRanking(query, limit: limit)
    }

    func embeddingRanking(_ query: [Float], limit: Int) async throws -> [(row: Int, score: Double)] {
        guard let batcher else { return try index.embeddingRanking(query, limit: limit) }
        return try await batcher.rank(query, limit: limit)
    }

    /// `VideoIndex.search(query, top:, mode:, embed:)`, step for step.
    public func search(_ query: String, top: Int, mode: SearchMode, embed: (String) throws -> [Float]) async throws -> [SearchHit] {
        guard top > 0 else { return [] }
        let ranked: [(row: Int, score: Double)]
        switch mode {
        case .text:
            ranked = try textRanking(query, limit: top)
        case .embedding:
            guard index.embeddings != nil else { _ = try index.embeddingRanking([], limit: top); return [] }
            ranked = try await embeddingRanking(try embed(query), limit: top)
        case .hybrid:
            if index.embeddings == nil {
                ranked = try textRanking(query, limit: top)
            } else {
                let depth = max(VideoIndex.fusionDepth, top)
                let text = try textRanking(query, limit: depth)
                ranked = VideoIndex.fuse([text, try await embeddingRanking(try embed(query), limit: depth)], limit: top)
            }
        }
        let segments: [Int: IndexedSegment]
        if let byRow {
            segments = Dictionary(ranked.compactMap { r in r.row >= 0 && r.row < byRow.count ? (r.row, byRow[r.row]) : nil }, uniquingKeysWith: { a, _ in a })
        } else {
            segments = Dictionary(try index.segments(rows: ranked.map(\.row)).map { ($0.row, $0) }, uniquingKeysWith: { a, _ in a })
        }
        return ranked.compactMap { r in
            segments[r.row].map { s in SearchHit(id: s.id, video: s.video, path: s.path, start: s.start, end: s.end, score: r.score, text: s.text) }
        }
    }
}

/// Request coalescing for embedding search: `rank` queues a query and suspends; a worker thread
/// takes every query waiting (up to `maxBatch`), ranks them with one `VideoIndex.embeddingRankings`
/// (the matrix streamed once for the batch, through sgemm) and resumes each with its own top
/// `limit`. A batch is ranked at the largest limit in it and each list cut to its own: the top
/// is ordered by (score, row), so its first k are the top k.
public final class EmbeddingBatcher: @unchecked Sendable {
    struct Waiting {
        var query: [Float]
        var limit: Int
        var done: CheckedContinuation<[(row: Int, score: Double)], Error>
    }

    let index: VideoIndex
    let maxBatch: Int
    private let condition = NSCondition()
    private var queue: [Waiting] = []
    private var stopped = false
    private var batches = 0, queries = 0

    public init(index: VideoIndex, workers: Int = 1, maxBatch: Int = 64) {
        self.index = index
        self.maxBatch = max(1, maxBatch)
        for _ in 0..<max(1, workers) {
            let t = Thread { [self] in work() }
            t.name = "videobert-embedding-batcher"
            t.start()
        }
    }

    /// Stops the workers once the queue is empty (their threads hold the batcher until then);
    /// a stopped batcher ranks on the caller's thread.
    public func stop() {
        condition.lock(); stopped = true; condition.broadcast(); condition.unlock()
    }

    /// (batches ranked, queries in them) so far.
    public var counts: (batches: Int, queries: Int) {
        condition.lock(); defer { condition.unlock() }
        return (batches, queries)
    }

    public func rank(_ query: [Float], limit: Int) async throws -> [(row: Int, score: Double)] {
        try await withCheckedThrowingContinuation { c in
            condition.lock()
            if stopped {
                condition.unlock()
                c.resume(with: Result { try index.embeddingRanking(query, limit: limit) })
                return
            }
            queue.append(Waiting(query: query, limit: limit, done: c))
            condition.signal()
            condition.unlock()
        }
    }

    private func work() {
        while true {
            condition.lock()
            while queue.isEmpty && !stopped { condition.wait() }
            if queue.isEmpty && stopped { condition.unlock(); return }
            let take = min(queue.count, maxBatch)
            let batch = Array(queue.prefix(take))
            queue.removeFirst(take)
            batches += 1; queries += take
            condition.unlock()
            run(batch)
        }
    }

    private func run(_ batch: [Waiting]) {
        // A query the index cannot rank (wrong dimension) fails alone.
        let dimension = index.embeddings?.columns ?? -1
        let good = batch.filter { $0.query.count == dimension && $0.limit > 0 }
        for w in batch where !(w.query.count == dimension && w.limit > 0) {
            w.done.resume(with: Result { try index.embeddingRanking(w.query, limit: w.limit) })
        }
        guard !good.isEmpty else { return }
        do {
            let lists = try index.embeddingRankings(good.map(\.query), limit: good.map(\.limit).max()!)
            for (w, list) in zip(good, lists) { w.done.resume(returning: Array(list.prefix(w.limit))) }
        } catch {
            for w in good { w.done.resume(throwing: error) }
        }
    }
}
