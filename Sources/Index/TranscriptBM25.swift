import Foundation
import GRDB
import Tensor

/// FTS5's `bm25()` ranking of an index's transcripts (`VideoIndex.textRanking`), computed in
/// memory for the server (SearchEngine): the same scores, bit for bit, and the same order
/// (score, then row), without FTS5 scoring every matching row through SQL per request.
///
/// Nothing is tokenized here: the postings (term, row, frequency) and row lengths are FTS5's own,
/// read once through an `fts5vocab` 'instance' table; the row count and token total are the
/// ones FTS5's bm25() reads (the table's averages record); each query word is tokenized (porter
/// stemming, unicode61 folding) by an in-memory FTS5 table with the index's definition
/// (`IndexBuilder.ftsSchema`). The score is FTS5's formula, in its operation order
/// (https://github.com/sqlite/sqlite/blob/master/ext/fts5/fts5_aux.c, fts5Bm25Function and
/// fts5Bm25GetData: k1 = 1.2, b = 0.75, IDF = log((N - n + 0.5) / (n + 0.5)) floored to 1e-6).
/// A query that FTS5 would read differently (a word that is not exactly one token) returns nil
/// and the caller asks FTS5.
public final class TranscriptBM25: @unchecked Sendable {
    let termIDs: [String: Int]
    /// Postings of term t: rows[offsets[t] ..< offsets[t + 1]] ascending, with their frequencies.
    let offsets: [Int]
    let rows: [Int32]
    let frequencies: [Int32]
    /// Tokens per row (rows are 0..<length.count).
    let length: [Int32]
    let rowCount: Int64
    let averageLength: Double
    private let tokenizer: DatabaseQueue
    private let lock = NSLock()
    private var stems: [String: [String]] = [:]

    static let k1 = 1.2, b = 0.75

    /// Reads the postings of `index`; nil when its full-text table is not the one this code
    /// scores (another definition, rows outside 0..<segments, totals that do not add up).
    public static func load(_ index: VideoIndex) throws -> TranscriptBM25? {
        try index.reader().inDatabase { db -> TranscriptBM25? in
            guard let sql = try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE name = 'segments_fts'"),
                  sql == IndexBuilder.ftsSchema,
                  let averages = try Data.fetchOne(db, sql: "SELECT block FROM segments_fts_data WHERE id = 1") else { return nil }
            // The averages record: varint row count, then varint token total per column (one column).
            var p = 0
            guard let nRow = varint(averages, &p), let nToken = varint(averages, &p), nRow > 0 else { return nil }
            let segments = index.segmentCount
            try db.execute(sql: "CREATE VIRTUAL TABLE IF NOT EXISTS temp.videobert_vocab USING fts5vocab(main, segments_fts, 'instance')")
            defer { try? db.execute(sql: "DROP TABLE IF EXISTS temp.videobert_vocab") }
            var termIDs: [String: Int] = [:]
            var offsets: [Int] = [0], rows: [Int32] = [], frequencies: [Int32] = []
            var length = [Int32](repeating: 0, count: segments)
            var total: Int64 = 0
            var lastTerm: String?
            let cursor = try Row.fetchCursor(db, sql: "SELECT term, doc FROM temp.videobert_vocab")
            while let r = try cursor.next() {
                guard let term = String.fromDatabaseValue(r[0] as DatabaseValue), let doc = Int.fromDatabaseValue(r[1] as DatabaseValue),
                      doc >= 0, doc < segments else { return nil }
                if term != lastTerm {
                    if lastTerm != nil { offsets.append(rows.count) }
                    guard termIDs[term] == nil else { return nil }   // fts5vocab lists a term's instances together
                    termIDs[term] = termIDs.count
                    lastTerm = term
                }
                let d = Int32(doc)
                if rows.count > offsets[offsets.count - 1], rows[rows.count - 1] == d {
                    frequencies[frequencies.count - 1] += 1
                } else {
                    guard rows.count == offsets[offsets.count - 1] || rows[rows.count - 1] < d else { return nil }
                    rows.append(d); frequencies.append(1)
                }
                length[doc] += 1
                total += 1
            }
            if lastTerm != nil { offsets.append(rows.count) }
            guard total == nToken else { return nil }
            let tokenizer = try DatabaseQueue()
            try tokenizer.write { t in
                try t.execute(sql: IndexBuilder.ftsSchema)
                try t.execute(sql: "CREATE VIRTUAL TABLE segments_vocab USING fts5vocab(segments_fts, 'instance')")
            }
            return TranscriptBM25(termIDs: termIDs, offsets: offsets, rows: rows, frequencies: frequencies, length: length,
                                  rowCount: nRow, tokenTotal: nToken, tokenizer: tokenizer)
        }
    }

    private init(termIDs: [String: Int], offsets: [Int], rows: [Int32], frequencies: [Int32], length: [Int32],
                 rowCount: Int64, tokenTotal: Int64, tokenizer: DatabaseQueue) {
        self.termIDs = termIDs; self.offsets = offsets; self.rows = rows; self.frequencies = frequencies; self.length = length
        self.rowCount = rowCount
        averageLength = Double(tokenTotal) / Double(rowCount)
        self.tokenizer = tokenizer
    }

    /// SQLite's varint (sqlite3Fts5GetVarint: big-endian 7-bit groups, the 9th byte whole); nil past the end.
    static func varint(_ data: Data, _ p: inout Int) -> Int64? {
        let bytes = [UInt8](data)
        var v: UInt64 = 0
        for i in 0..<9 {
            guard p < bytes.count else { return nil }
            let c = bytes[p]; p += 1
            if i == 8 { v = (v << 8) | UInt64(c); break }
            v = (v << 7) | UInt64(c & 0x7f)
            if c & 0x80 == 0 { break }
        }
        return Int64(truncatingIfNeeded: v)
    }

    /// The tokens FTS5 makes of one query word (cached: a server sees the same words again).
    func tokens(_ word: String) throws -> [String] {
        lock.lock()
        if let t = stems[word] { lock.unlock(); return t }
        lock.unlock()
        let t = try tokenizer.write { db -> [String] in
            try db.execute(sql: "INSERT INTO segments_fts (rowid, text) VALUES (1, ?)", arguments: [word])
            defer { try? db.execute(sql: "DELETE FROM segments_fts") }
            return try String.fetchAll(db, sql: "SELECT term FROM segments_vocab ORDER BY offset")
        }
        lock.lock()
        if stems.count < 1 << 16 { stems[word] = t }
        lock.unlock()
        return t
    }

    /// `VideoIndex.textRanking(query, limit:)`, or nil when FTS5 must answer it.
    public func ranking(_ query: String, limit: Int) throws -> [(row: Int, score: Double)]? {
        let words = VideoIndex.queryWords(query)
        guard !words.isEmpty, limit > 0 else { return [] }
        // One phrase per word, in the query's order (a stem that two words share counts twice, as in FTS5).
        var lists: [Range<Int>] = [], idf: [Double] = []
        for w in words {
            let t = try tokens(w)
            guard t.count == 1 else { return nil }
            let range = termIDs[t[0]].map { offsets[$0]..<offsets[$0 + 1] } ?? 0..<0
            let hits = Double(range.count)
            var f = log((Double(rowCount) - hits + 0.5) / (hits + 0.5))
            if f <= 0 { f = 1e-6 }
            lists.append(range); idf.append(f)
        }
        let k1 = Self.k1, b = Self.b, avgdl = averageLength
        var top = TopK<Double>(limit: limit)
        var at = lists.map(\.lowerBound)
        rows.withUnsafeBufferPointer { rows in
            frequencies.withUnsafeBufferPointer { freq in
                length.withUnsafeBufferPointer { length in
                    while true {
                        var doc = Int32.max
                        for i in lists.indices where at[i] < lists[i].upperBound { doc = min(doc, rows[at[i]]) }
                        if doc == Int32.max { break }
                        let D = Double(length[Int(doc)])
                        var score = 0.0
                        for i in lists.indices where at[i] < lists[i].upperBound && rows[at[i]] == doc {
                            let f = Double(freq[at[i]])
                            score += idf[i] * ((f * (k1 + 1.0)) / (f + k1 * (1 - b + b * D / avgdl)))
                        }
                        for i in lists.indices where at[i] < lists[i].upperBound && rows[at[i]] == doc { at[i] += 1 }
                        // FTS5 gives -score and textRanking negates it back: the same double.
                        top.add(score, row: Int(doc))
                    }
                }
            }
        }
        return top.sorted().map { (row: $0.row, score: $0.score) }
    }
}
