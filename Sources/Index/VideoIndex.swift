import Foundation
import GRDB
import Tensor

// An index folder (`videobert index`; README "Using a trained model on your videos"):
//
//   index.sqlite            SQLite: meta (key, value), videos, segments, and segments_fts, an FTS5
//                           table of the segments' transcript text (rowid = the segment's row)
//   embeddings-<gen>.npy    float32 [segments, E], unit rows, row = segments.row (only when the
//                           checkpoint has a dual encoder; meta.embeddings names the file)
//   thumbnails/<video key>-<fingerprint>/<k>.png   the frame at the middle of segment k
//
// index.sqlite is written under a temporary name and renamed over the old one, so a reader sees
// the old index or the new one; the files it names are written before and removed after.

/// One row of `segments`.
public struct IndexedSegment: Codable, Sendable, Equatable {
    /// "<video key>-<k>": the video's key (a hash of its path) and the segment's number in it.
    public var id: String
    /// The row of the embeddings matrix and of segments_fts.
    public var row: Int
    /// The manifest id or the file's base name.
    public var video: String
    public var path: String
    public var start: Double
    public var end: Double
    /// The transcript sentence ("" for a fixed window of a video without transcript).
    public var text: String
    /// Relative to the index folder.
    public var thumbnail: String

    public init(id: String, row: Int, video: String, path: String, start: Double, end: Double, text: String, thumbnail: String) {
        self.id = id; self.row = row; self.video = video; self.path = path; self.start = start; self.end = end
        self.text = text; self.thumbnail = thumbnail
    }
}

/// One row of `videos`.
public struct IndexedVideo: Codable, Sendable, Equatable {
    public var key: String
    public var id: String
    public var path: String
    /// What decides whether a re-run re-indexes it: sizes and modification times of the video
    /// and its transcript, the window, and the encoder.
    public var fingerprint: String
    public var duration: Double
    public var segments: Int
    /// "transcript" or "window".
    public var segmentation: String

    public init(key: String, id: String, path: String, fingerprint: String, duration: Double, segments: Int, segmentation: String) {
        self.key = key; self.id = id; self.path = path; self.fingerprint = fingerprint; self.duration = duration
        self.segments = segments; self.segmentation = segmentation
    }
}

/// A search result.
public struct SearchHit: Codable, Sendable, Equatable {
    public var id: String
    public var video: String
    public var path: String
    public var start: Double
    public var end: Double
    public var score: Double
    public var text: String
}

public enum SearchMode: String, Codable, Sendable, CaseIterable {
    /// BM25 over the transcripts (FTS5's bm25()).
    case text
    /// Cosine similarity of the query's and the segments' embeddings.
    case embedding
    /// Reciprocal-rank fusion of both (`VideoIndex.rrfK`); text alone when the index has no embeddings.
    case hybrid
}

/// A read-only open index: metadata, segments, BM25 and embedding search. Safe to share between
/// threads: SQLite reads go through a small pool of connections, the embeddings are immutable.
public final class VideoIndex: @unchecked Sendable {
    public static let databaseName = "index.sqlite"
    public static let formatVersion = "1"
    /// k of reciprocal-rank fusion, score = Σ 1 / (k + rank) over the lists a segment is in, rank
    /// from 1 (Cormack, Clarke & Büttcher 2009, "Reciprocal rank fusion outperforms Condorcet and
    /// individual rank learning methods": k = 60).
    public static let rrfK = 60.0
    /// Each list of a hybrid search is cut at max(this, top) before fusing.
    public static let fusionDepth = 100

    public let folder: String
    public let meta: [String: String]
    public let segmentCount: Int
    public let embeddings: MappedMatrix?
    private let readers: [DatabaseQueue]
    private let next = NSLock()
    private var turn = 0

    /// The checkpoint the index was built with ("" without one).
    public var checkpoint: String { meta["checkpoint"] ?? "" }
    /// The training corpus given at indexing (for the encoder), "" when none was given.
    public var corpus: String { meta["corpus"] ?? "" }
    /// The encoder's name ("cbt-pooled"), or "" when the index holds no embeddings.
    public var encoder: String { meta["encoder"] ?? "" }
    /// Why the index has (or has no) embeddings.
    public var note: String { meta["note"] ?? "" }

    /// - Parameter connections: SQLite connections for concurrent readers.
    public init(folder: String, connections: Int = 1) throws {
        let path = (folder as NSString).appendingPathComponent(Self.databaseName)
        guard FileManager.default.fileExists(atPath: path) else {
            throw VideoBertError("not an index folder (no \(Self.databaseName)); make one with `videobert index`", file: folder)
        }
        var config = Configuration()
        config.readonly = true
        config.label = "videobert-index"
        do {
            readers = try (0..<max(1, connections)).map { _ in try DatabaseQueue(path: path, configuration: config) }
            (meta, segmentCount) = try readers[0].read { db in
                var m: [String: String] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT key, value FROM meta") {
                    if let k = Self.value(row, "key", String.self), let v = Self.value(row, "value", String.self) { m[k] = v }
                }
                return (m, try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM segments") ?? 0)
            }
        } catch let e as VideoBertError {
            throw e
        } catch {
            throw VideoBertError("not a readable index: \(error)", file: path)
        }
        guard meta["format"] == Self.formatVersion else {
            throw VideoBertError("index format \(meta["format"] ?? "?"), this videobert reads \(Self.formatVersion)", file: path)
        }
        self.folder = folder
        if let name = meta["embeddings"], !name.isEmpty {
            guard !name.contains("/") else { throw VideoBertError("bad embeddings file name '\(name)'", file: path) }
            let m = try MappedMatrix(path: (folder as NSString).appendingPathComponent(name))
            guard m.rows == segmentCount else {
                throw VideoBertError("has \(m.rows) rows, the index \(segmentCount) segments", file: m.path)
            }
            embeddings = m
        } else {
            embeddings = nil
        }
    }

    func reader() -> DatabaseQueue {
        next.lock(); defer { next.unlock() }
        turn = (turn + 1) % readers.count
        return readers[turn]
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try reader().read(body)
        } catch let e as VideoBertError {
            throw e
        } catch {
            throw VideoBertError("reading the index: \(error)", file: (folder as NSString).appendingPathComponent(Self.databaseName))
        }
    }

    static let segmentColumns = "id, row, video, path, start, \"end\", text, thumbnail"

    /// A column's value, nil when it is NULL or does not convert (GRDB's typed subscripts stop
    /// the process on a failed conversion; the file is outside data).
    static func value<T: DatabaseValueConvertible>(_ row: Row, _ column: String, _: T.Type) -> T? {
        T.fromDatabaseValue(row[column] as DatabaseValue)
    }

    /// A row of `segments`; the file is outside data, so a missing or mistyped value is an error, not a crash.
    func segment(_ row: Row) throws -> IndexedSegment {
        guard let id = Self.value(row, "id", String.self), let r = Self.value(row, "row", Int.self), let video = Self.value(row, "video", String.self), let path = Self.value(row, "path", String.self),
              let start = Self.value(row, "start", Double.self), let end = Self.value(row, "end", Double.self), let text = Self.value(row, "text", String.self),
              let thumbnail = Self.value(row, "thumbnail", String.self) else {
            throw VideoBertError("a segment row with a missing or mistyped value", file: (folder as NSString).appendingPathComponent(Self.databaseName))
        }
        return IndexedSegment(id: id, row: r, video: video, path: path, start: start, end: end, text: text, thumbnail: thumbnail)
    }

    /// The segment with this id, nil when there is none.
    public func segment(id: String) throws -> IndexedSegment? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT \(Self.segmentColumns) FROM segments WHERE id = ?", arguments: [id]).map(segment)
        }
    }

    /// Segments by row, in the order given (rows that do not exist are skipped).
    public func segments(rows: [Int]) throws -> [IndexedSegment] {
        guard !rows.isEmpty else { return [] }
        let found = try read { db -> [Int: IndexedSegment] in
            var out: [Int: IndexedSegment] = [:]
            let statement = try db.cachedStatement(sql: "SELECT \(Self.segmentColumns) FROM segments WHERE row = ?")
            for r in rows { if let row = try Row.fetchOne(statement, arguments: [r]) { out[r] = try segment(row) } }
            return out
        }
        return rows.compactMap { found[$0] }
    }

    public func videos() throws -> [IndexedVideo] {
        let file = (folder as NSString).appendingPathComponent(Self.databaseName)
        return try read { db in
            try Row.fetchAll(db, sql: "SELECT key, id, path, fingerprint, duration, segments, segmentation FROM videos ORDER BY id").map { r in
                guard let key = Self.value(r, "key", String.self), let id = Self.value(r, "id", String.self), let path = Self.value(r, "path", String.self),
                      let fingerprint = Self.value(r, "fingerprint", String.self), let duration = Self.value(r, "duration", Double.self),
                      let segments = Self.value(r, "segments", Int.self), let segmentation = Self.value(r, "segmentation", String.self) else {
                    throw VideoBertError("a video row with a missing or mistyped value", file: file)
                }
                return IndexedVideo(key: key, id: id, path: path, fingerprint: fingerprint, duration: duration, segments: segments, segmentation: segmentation)
            }
        }
    }

    /// The indexed video with this key, nil when there is none.
    public func video(key: String) throws -> IndexedVideo? {
        try videos().first { $0.key == key }
    }

    // MARK: Search

    /// English stop words, Lucene's set (EnglishAnalyzer.ENGLISH_STOP_WORDS_SET,
    /// https://github.com/apache/lucene/blob/main/lucene/analysis/common/src/java/org/apache/lucene/analysis/en/EnglishAnalyzer.java).
    /// A word in most segments has an inverse document frequency of about 0 in BM25 (FTS5 clamps
    /// it to 1e-6), so leaving it out of the query leaves the ranking of the segments that match
    /// the other words as it was, and spares scoring nearly every segment.
    public static let stopWords: Set<String> = [
        "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of", "on",
        "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with",
    ]

    /// An FTS5 query that matches any of the query's words (letters and digits, lowercased, at
    /// most 64, stop words left out unless there is nothing else), each quoted so that no FTS5
    /// syntax gets through; nil when there is no word.
    public static func ftsQuery(_ query: String) -> String? {
        let words = queryWords(query)
        guard !words.isEmpty else { return nil }
        return words.map { "\"\($0)\"" }.joined(separator: " OR ")
    }

    /// The words of `ftsQuery`, in its order (each one phrase of the FTS5 query).
    static func queryWords(_ query: String) -> [String] {
        var words: [String] = [], current = ""
        for ch in query.lowercased() {
            if ch.isLetter || ch.isNumber { current.append(ch) } else if !current.isEmpty { words.append(current); current = "" }
            if words.count >= 64 { break }
        }
        if !current.isEmpty && words.count < 64 { words.append(current) }
        var seen = Set<String>()
        words = words.filter { seen.insert($0).inserted }
        let content = words.filter { !stopWords.contains($0) }
        return content.isEmpty ? words : content
    }

    /// BM25 (FTS5's bm25(), negated so that higher is better) over the transcripts: (row, score), best first.
    public func textRanking(_ query: String, limit: Int) throws -> [(row: Int, score: Double)] {
        guard let match = Self.ftsQuery(query), limit > 0 else { return [] }
        return try read { db in
            try Row.fetchAll(db, sql: "SELECT rowid, bm25(segments_fts) AS s FROM segments_fts WHERE segments_fts MATCH ? ORDER BY s, rowid LIMIT ?",
                             arguments: [match, limit]).compactMap { r in
                guard let row = Self.value(r, "rowid", Int.self), let s = Self.value(r, "s", Double.self) else { return nil }
                return (row: row, score: -s)
            }
        }
    }

    /// Cosine similarity of a unit query embedding with every segment's, the best `limit`:
    /// (row, score), best first, ties by row. The same computation as one query of
    /// `embeddingRankings` (a batch of one), so the same answer.
    public func embeddingRanking(_ query: [Float], limit: Int) throws -> [(row: Int, score: Double)] {
        try embeddingRankings([query], limit: limit)[0]
    }

    /// Rows of the mapped matrix per sgemm in `embeddingRankings`.
    static let rankingBlock = 2048

    private let normLock = NSLock()
    private var largestRowNorm: Double?

    /// The largest row norm of the embeddings (one pass, the first time it is asked for).
    func maxRowNorm(_ m: MappedMatrix) -> Double {
        normLock.lock(); defer { normLock.unlock() }
        if let n = largestRowNorm { return n }
        var largest = 0.0
        for r in 0..<m.rows {
            let row = m.row(r)
            var s = 0.0
            for v in row { s += Double(v) * Double(v) }
            if s.isFinite { largest = max(largest, s) } else { largest = .infinity }
        }
        largestRowNorm = largest.squareRoot()
        return largest.squareRoot()
    }

    /// `embeddingRanking` of several queries at once, each answer independent of the others in
    /// the batch (Tests/CLITests/SearchEngineTests). Two stages:
    /// 1. the mapped [N, E] matrix is streamed once, a block of rows at a time through one sgemm
    ///    ([B, E] × [E, rows] → [B, rows]); each query keeps its top `limit` by these float
    ///    scores and every row within `margin` of its running `limit`-th best;
    /// 2. those candidates are scored again exactly (a dot product in double, in index order) and
    ///    ranked by that score, then row.
    /// sgemm's rounding depends on the batch (its kernels and blocking); the exact score does
    /// not. The margin is twice the bound on a float dot product's error, 2·γ_E·|q|·max|row|
    /// with γ_E = E·u / (1 − E·u), u = 2⁻²⁴ (Higham, "Accuracy and Stability of Numerical
    /// Algorithms", §3.1), so every row of the exact top `limit` is a candidate: the answer is
    /// the exact top `limit` whatever the batch.
    public func embeddingRankings(_ queries: [[Float]], limit: Int) throws -> [[(row: Int, score: Double)]] {
        guard let m = embeddings else {
            throw VideoBertError("this index has no embeddings (\(note.isEmpty ? "built without a dual-encoder checkpoint" : note)); search with --mode text", file: folder)
        }
        for q in queries where q.count != m.columns {
            throw VideoBertError("the query embedding has \(q.count) values, the index \(m.columns)", file: m.path)
        }
        let N = m.rows, E = m.columns, B = queries.count
        guard N > 0, limit > 0, B > 0 else { return queries.map { _ in [] } }
        let K = min(limit, N)
        let u = 0x1p-24, gamma = Double(E) * u / (1 - Double(E) * u)
        let rowNorm = maxRowNorm(m)
        let margins: [Float] = queries.map { q in
            let qn = q.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            let bound = 2 * gamma * qn * rowNorm
            return bound.isFinite ? Float(bound * 1.0001) + Float.leastNormalMagnitude : .infinity
        }
        let packed = queries.flatMap { $0 }
        let R = min(Self.rankingBlock, N)
        var scores = [Float](repeating: 0, count: B * R)
        var tops = (0..<B).map { _ in TopK<Float>(limit: K) }
        var candidates: [[(row: Int, score: Float)]] = Array(repeating: [], count: B)
        packed.withUnsafeBufferPointer { q in
            scores.withUnsafeMutableBufferPointer { s in
                var r0 = 0
                while r0 < N {
                    let rows = min(R, N - r0)
                    BLAS.sgemm(transB: true, m: B, n: rows, k: E, a: q.baseAddress!, lda: E, b: m.values + r0 * E, ldb: E,
                               c: s.baseAddress!, ldc: rows)
                    for b in 0..<B {
                        let margin = margins[b]
                        var threshold = -Float.infinity   // rows below it can be neither in the top nor candidates
                        if tops[b].heap.count == K { threshold = tops[b].heap[0].score - margin }
                        for i in 0..<rows {
                            let x = s[b * rows + i]
                            if !(x >= threshold) && tops[b].heap.count == K { continue }
                            candidates[b].append((row: r0 + i, score: x))
                            tops[b].add(x, row: r0 + i)
                            if tops[b].heap.count == K { threshold = tops[b].heap[0].score - margin }
                        }
                        if candidates[b].count > 4 * K + 4096 { candidates[b].removeAll { !($0.score >= threshold) } }
                    }
                    r0 += rows
                }
            }
        }
        return (0..<B).map { b in
            let kth = tops[b].heap.count == K ? tops[b].heap[0].score : -Float.infinity
            let threshold = kth - margins[b]
            var exact = TopK<Double>(limit: K)
            queries[b].withUnsafeBufferPointer { q in
                for c in candidates[b] where c.score >= threshold || kth == -Float.infinity {
                    let row = m.row(c.row)
                    var dot = 0.0
                    for e in 0..<E { dot += Double(q[e]) * Double(row[e]) }
                    exact.add(dot, row: c.row)
                }
            }
            return exact.sorted().map { (row: $0.row, score: $0.score) }
        }
    }

    /// The `limit` largest scores (a bounded min-heap: O(N log limit)), best first, ties by index.
    static func top(_ scores: [Float], limit: Int) -> [(row: Int, score: Double)] {
        var t = TopK<Float>(limit: min(limit, scores.count))
        scores.withUnsafeBufferPointer { t.add($0, firstRow: 0) }
        return t.sorted().map { (row: $0.row, score: Double($0.score)) }
    }

    /// Reciprocal-rank fusion of ranked lists (`rrfK`): (row, score), best first, ties by row.
    public static func fuse(_ lists: [[(row: Int, score: Double)]], limit: Int) -> [(row: Int, score: Double)] {
        var fused: [Int: Double] = [:]
        for list in lists {
            for (rank, item) in list.enumerated() { fused[item.row, default: 0] += 1 / (rrfK + Double(rank + 1)) }
        }
        var pairs: [(row: Int, score: Double)] = fused.map { (row: $0.key, score: $0.value) }
        pairs.sort { a, b in a.score != b.score ? a.score > b.score : a.row < b.row }
        return Array(pairs.prefix(limit))
    }

    /// Ranked segments for `query`.
    /// - Parameter embed: the query's unit embedding (the index's encoder); needed by the
    ///   embedding and hybrid modes of an index with embeddings, not called otherwise.
    public func search(_ query: String, top: Int, mode: SearchMode, embed: (String) throws -> [Float]) throws -> [SearchHit] {
        guard top > 0 else { return [] }
        let ranked: [(row: Int, score: Double)]
        switch mode {
        case .text:
            ranked = try textRanking(query, limit: top)
        case .embedding:
            guard embeddings != nil else { _ = try embeddingRanking([], limit: top); return [] }
            ranked = try embeddingRanking(try embed(query), limit: top)
        case .hybrid:
            if embeddings == nil {
                ranked = try textRanking(query, limit: top)
            } else {
                let depth = max(Self.fusionDepth, top)
                ranked = Self.fuse([try textRanking(query, limit: depth), try embeddingRanking(try embed(query), limit: depth)], limit: top)
            }
        }
        let byRow = Dictionary(try segments(rows: ranked.map(\.row)).map { ($0.row, $0) }, uniquingKeysWith: { a, _ in a })
        return ranked.compactMap { r in
            byRow[r.row].map { s in SearchHit(id: s.id, video: s.video, path: s.path, start: s.start, end: s.end, score: r.score, text: s.text) }
        }
    }
}

/// The `limit` best (score, row) pairs seen: higher score first, then lower row; NaN counts as
/// -infinity. A bounded min-heap whose root is the worst kept (O(n log limit), no allocation
/// after the first `limit`).
struct TopK<S: BinaryFloatingPoint> {
    let limit: Int
    private(set) var heap: [(score: S, row: Int)] = []

    init(limit: Int) {
        self.limit = max(0, limit)
        heap.reserveCapacity(self.limit)
    }

    @inline(__always) static func worse(_ a: (score: S, row: Int), _ b: (score: S, row: Int)) -> Bool {
        a.score < b.score || (a.score == b.score && a.row > b.row)
    }

    @inline(__always) mutating func add(_ score: S, row: Int) {
        let x = (score: score.isNaN ? -S.infinity : score, row: row)
        if heap.count < limit {
            heap.append(x)
            var c = heap.count - 1
            while c > 0 { let p = (c - 1) / 2; if Self.worse(heap[c], heap[p]) { heap.swapAt(c, p); c = p } else { break } }
        } else if limit > 0 && Self.worse(heap[0], x) {
            heap[0] = x
            var p = 0
            while true {
                let l = 2 * p + 1, r = l + 1
                var m = p
                if l < limit && Self.worse(heap[l], heap[m]) { m = l }
                if r < limit && Self.worse(heap[r], heap[m]) { m = r }
                if m == p { break }
                heap.swapAt(p, m); p = m
            }
        }
    }

    /// Scores of consecutive rows from `firstRow`.
    mutating func add(_ scores: UnsafeBufferPointer<S>, firstRow: Int) {
        guard limit > 0 else { return }
        for i in 0..<scores.count {
            let s = scores[i]
            // A full heap keeps only what beats its root; rows only grow here, so a tie with the
            // root loses, and so does NaN (-infinity).
            if heap.count == limit && !(s > heap[0].score) { continue }
            add(s, row: firstRow + i)
        }
    }

    /// Best first.
    func sorted() -> [(score: S, row: Int)] { heap.sorted { Self.worse($1, $0) } }
}
