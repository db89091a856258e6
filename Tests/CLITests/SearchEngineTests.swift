import Foundation
import TestSupport
import Tensor
import XCTest
@testable import Index

/// The server's search (SearchEngine) gives what `VideoIndex.search` gives: in-memory BM25 equal
/// to FTS5's bm25() bit for bit, and a coalesced batch of embedding queries equal to the same
/// queries ranked one at a time.
final class SearchEngineTests: XCTestCase {
    static let verbs = ["stir", "stirring", "cut", "cuts", "pour", "flip", "shake", "roll", "mash", "peel", "sprinkle", "whisk", "slice", "boil"]
    static let nouns = ["tomatoes", "tomato", "onions", "garlic", "rice", "eggs", "fish", "café", "naïve", "butter", "salt"]

    /// A synthetic index (the bench's recipe at a small size): `videos` × `perVideo` segments of
    /// seeded transcripts (some empty, some punctuation only) and unit embeddings of `dim`.
    func syntheticIndex(videos: Int = 50, perVideo: Int = 100, dim: Int = 24, quantized: Bool = false) throws -> VideoIndex {
        let out = try temporaryFolder(named: "videobert-engine")
        var rng = SeededRNG(seed: 11)
        var kept: [IndexBuilder.Indexed] = []
        let fillers = ["now let's", "go ahead and", "i'm going to", "then you", "and", "the"]
        for v in 0..<videos {
            let key = String(format: "%016x", 0xABC0_0000 + v)
            var segments: [IndexedSegment] = [], embeddings: [[Float]] = []
            for k in 0..<perVideo {
                var words: [String] = []
                for _ in 0..<rng.nextInt(4) {
                    words += [fillers[rng.nextInt(fillers.count)], Self.verbs[rng.nextInt(Self.verbs.count)], "the", Self.nouns[rng.nextInt(Self.nouns.count)]]
                }
                let text = k % 37 == 5 ? "... !!" : words.joined(separator: rng.nextInt(5) == 0 ? ", " : " ")
                segments.append(IndexedSegment(id: "\(key)-\(k)", row: 0, video: "v\(v)", path: "/nonexistent/v\(v).mp4", start: Double(k), end: Double(k + 1),
                                               text: text, thumbnail: "thumbnails/none.png"))
                // Quantized values make exact ties between rows (the tie rule is under test too).
                var e = (0..<dim).map { _ in quantized ? Float(rng.nextInt(3)) - 1 : rng.nextFloat() - 0.5 }
                let inv = 1 / max(1e-12, e.reduce(0) { $0 + $1 * $1 }.squareRoot())
                for i in 0..<dim { e[i] *= inv }
                embeddings.append(e)
            }
            kept.append(.init(video: IndexedVideo(key: key, id: "v\(v)", path: "/nonexistent/v\(v).mp4", fingerprint: "synthetic",
                                                  duration: Double(perVideo), segments: perVideo, segmentation: "transcript"),
                              segments: segments, embeddings: embeddings))
        }
        _ = try IndexBuilder.write(folder: out, videos: &kept, encoder: ("synthetic", dim), note: "synthetic")
        return try VideoIndex(folder: out, connections: 2)
    }

    static var queries: [String] {
        var q = ["stir the tomatoes", "stirring tomato", "Cut the onion!", "the", "the and", "zzzqqq", "café", "naïve butter", "CAFE",
                 "pour pour pour rice", "garlic, salt & eggs", "now let's go ahead", "\")(*: OR NEAR", "sprinkle the salt then whisk the eggs"]
        for v in verbs { for n in nouns.prefix(4) { q.append("\(v) the \(n)") } }
        return q
    }

    func testInMemoryBM25EqualsFTS5BitForBit() throws {
        let index = try syntheticIndex()
        let bm25 = try XCTUnwrap(try TranscriptBM25.load(index), "the index's FTS5 table should be readable in memory")
        var inMemory = 0
        for q in Self.queries {
            for limit in [1, 10, 100, 5000] {
                let fts = try index.textRanking(q, limit: limit)
                guard let mine = try bm25.ranking(q, limit: limit) else { continue }
                inMemory += 1
                XCTAssertEqual(mine.map(\.row), fts.map(\.row), "\(q) top \(limit)")
                XCTAssertEqual(mine.map(\.score.bitPattern), fts.map(\.score.bitPattern), "\(q) top \(limit)")
            }
        }
        // Every query here is one token per word, so all are answered in memory.
        XCTAssertEqual(inMemory, Self.queries.count * 4)
        XCTAssertFalse(try index.textRanking("stir the tomatoes", limit: 5000).isEmpty)
        // Stemming is FTS5's: "stirring" is "stir", "tomatoes" "tomato".
        XCTAssertEqual(try bm25.tokens("stirring"), ["stir"])
        XCTAssertEqual(try bm25.tokens("Café"), ["cafe"])
    }

    func testCoalescedBatchRanksEqualSingleQueries() async throws {
        for quantized in [false, true] {
            let index = try syntheticIndex(videos: 45, perVideo: 100, dim: 24, quantized: quantized)   // 4,500 rows: three sgemm blocks
            let m = try XCTUnwrap(index.embeddings)
            var rng = SeededRNG(seed: 3)
            let queries: [[Float]] = (0..<19).map { i in
                // Some queries are rows of the matrix (exact ties at the top), the rest random.
                i % 4 == 0 ? Array(m.row(i * 97)) : (0..<24).map { _ in rng.nextFloat() - 0.5 }
            }
            let batch = try index.embeddingRankings(queries, limit: 30)
            for (i, q) in queries.enumerated() {
                let single = try index.embeddingRanking(q, limit: 30)
                XCTAssertEqual(batch[i].map(\.row), single.map(\.row), "query \(i), quantized \(quantized)")
                XCTAssertEqual(batch[i].map(\.score), single.map(\.score), "query \(i), quantized \(quantized)")
                // Against a brute force in double: the same scores to float rounding, best first, ties by row.
                let exact = (0..<m.rows).map { r in zip(m.row(r), q).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }
                for (k, hit) in single.enumerated() {
                    XCTAssertEqual(hit.score, exact[hit.row], accuracy: 1e-5)
                    if k > 0 {
                        let prev = single[k - 1]
                        XCTAssertTrue(prev.score > hit.score || (prev.score == hit.score && prev.row < hit.row), "order at \(k)")
                    }
                }
                let worst = single.last!.score
                XCTAssertEqual(exact.filter { $0 > worst + 1e-5 }.count, single.filter { $0.score > worst + 1e-5 }.count, "query \(i)")
            }
            // Through the batcher: concurrent callers with different limits get their single answers.
            let batcher = EmbeddingBatcher(index: index, workers: 2, maxBatch: 8)
            let results = try await withThrowingTaskGroup(of: (Int, [(row: Int, score: Double)]).self) { group in
                for (i, q) in queries.enumerated() { group.addTask { (i, try await batcher.rank(q, limit: 5 + i)) } }
                var out: [Int: [(row: Int, score: Double)]] = [:]
                for try await (i, r) in group { out[i] = r }
                return out
            }
            for (i, q) in queries.enumerated() {
                let single = try index.embeddingRanking(q, limit: 5 + i)
                XCTAssertEqual(results[i]?.map(\.row), single.map(\.row), "batcher query \(i)")
                XCTAssertEqual(results[i]?.map(\.score), single.map(\.score), "batcher query \(i)")
            }
            XCTAssertEqual(batcher.counts.queries, queries.count)
            // A query of the wrong size fails alone.
            do { _ = try await batcher.rank([1, 2, 3], limit: 3); XCTFail("a 3-value query against 24 columns") } catch let e as VideoBertError {
                XCTAssertTrue(e.description.contains("3 values"), e.description)
            }
            batcher.stop()
        }
    }

    /// SearchEngine.search = VideoIndex.search in every mode (the stand-in encoder of the bench).
    func testEngineSearchEqualsIndexSearch() async throws {
        let index = try syntheticIndex(videos: 30, perVideo: 100, dim: 16)
        let engine = try SearchEngine(index: index, workers: 2, maxBatch: 4)
        defer { engine.batcher?.stop() }
        XCTAssertTrue(engine.textInMemory)
        let embed: @Sendable (String) throws -> [Float] = { text in
            var rng = SeededRNG(seed: UInt64(truncatingIfNeeded: text.utf8.reduce(UInt64(1469598103934665603)) { ($0 ^ UInt64($1)) &* 1099511628211 }))
            var e = (0..<16).map { _ in rng.nextFloat() - 0.5 }
            let inv = 1 / max(1e-12, e.reduce(0) { $0 + $1 * $1 }.squareRoot())
            for i in 0..<16 { e[i] *= inv }
            return e
        }
        for mode in SearchMode.allCases {
            for q in Self.queries.prefix(30) {
                for top in [1, 10, 150] {
                    let expected = try index.search(q, top: top, mode: mode, embed: embed)
                    let got = try await engine.search(q, top: top, mode: mode, embed: embed)
                    XCTAssertEqual(got, expected, "\(mode) '\(q)' top \(top)")
                }
            }
        }
    }

    /// The demo index (real transcripts, a CBT checkpoint's embeddings): the engine answers as the CLI does.
    func testEngineOnTheDemoIndex() async throws {
        let f = try IndexCLITests.Fixture.get()
        let index = try VideoIndex(folder: f.index)
        let engine = try SearchEngine(index: index)
        defer { engine.batcher?.stop() }
        XCTAssertTrue(engine.textInMemory)
        let opened = try CheckpointEncoder.open(f.checkpoint)
        let encoder = try XCTUnwrap(opened.encoder)
        let embed: (String) throws -> [Float] = { try encoder.encodeText([$0])[0] }
        for q in ["stir the tomatoes", "cut the onion", "pour the oil", "the"] {
            for mode in SearchMode.allCases {
                let expected = try index.search(q, top: 10, mode: mode, embed: embed)
                let got = try await engine.search(q, top: 10, mode: mode, embed: embed)
                XCTAssertEqual(got, expected, "\(mode) '\(q)'")
            }
        }
    }
}
