import Foundation
import Tasks
import XCTest

/// `search --rerank K`: the first stage's top K re-ordered by the alignment head of a VideoBERT
/// checkpoint (the set kept, the order the cross-encoder's scores, computed here on the
/// training corpus's visual words of the same spans); an index built with a VideoBERT
/// checkpoint says its search is BM25 + rerank.
final class SearchRerankCLITests: XCTestCase {
    func hits(_ r: CLIResult) throws -> [[String: Any]] {
        XCTAssertEqual(r.status, 0, r.stderr)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]], r.stdout)
    }

    func testRerankOrdersTheFirstStageByTheAlignmentHead() throws {
        let f = try IndexCLITests.Fixture.get()
        let pretrained = try ApplyFixture.get().pretrained
        let dir = try temporaryFolder(named: "videobert-search-rerank")
        // An index of 6 demo videos with the VideoBERT checkpoint.
        let lines = try String(contentsOfFile: f.corpus + "/manifest.jsonl", encoding: .utf8).split(separator: "\n").prefix(6)
        let manifest = dir + "/manifest.jsonl"
        let absolute = try lines.map { line -> String in
            var entry = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            for key in ["video", "transcript"] {
                if let p = entry[key] as? String, !p.hasPrefix("/") { entry[key] = f.corpus + "/" + p }
            }
            return String(decoding: try JSONSerialization.data(withJSONObject: entry), as: UTF8.self)
        }
        try (absolute.joined(separator: "\n") + "\n").write(toFile: manifest, atomically: true, encoding: .utf8)
        let ix = try ApplyFixture.run(["index", "--checkpoint", pretrained, "--videos", manifest, "--out", dir + "/index"])
        XCTAssertEqual(ix.status, 0, ix.stderr)
        let summary = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(ix.stdout.utf8)) as? [String: Any])
        XCTAssertTrue((summary["note"] as? String ?? "").contains("--rerank"), "\(summary)")

        let query = "now let's stir the tomatoes"
        let first = try hits(try ApplyFixture.run(["search", dir + "/index", query, "--top", "8", "--json"]))
        XCTAssertGreaterThan(first.count, 2)
        let second = try hits(try ApplyFixture.run(["search", dir + "/index", query, "--top", "8", "--rerank", "8", "--json"]))
        XCTAssertEqual(Set(second.compactMap { $0["id"] as? String }), Set(first.compactMap { $0["id"] as? String }))
        let scores = second.compactMap { $0["score"] as? Double }
        XCTAssertEqual(scores, scores.sorted(by: >))
        // The alignment head's P(aligned) of each hit's span, on the training corpus's tokens.
        let corpus = try TaskCorpus(path: f.dir + "/t")
        let model = try TaskModel(checkpoint: pretrained, corpus: corpus)
        let videos = try second.map { h -> [Int32] in
            let v = try XCTUnwrap(corpus.videoIndex[try XCTUnwrap(h["video"] as? String)])
            return corpus.visualWords(video: v, start: try XCTUnwrap(h["start"] as? Double), end: try XCTUnwrap(h["end"] as? Double))
        }
        let expected = try AlignmentHeadScorer(model: model).scores(texts: [model.encode(query)], videos: videos, progress: nil)
        for (s, e) in zip(scores, expected) { XCTAssertEqual(s, Double(e), accuracy: 1e-4) }

        // K below --top: the K re-ranked first, the rest in the first stage's order.
        let partial = try hits(try ApplyFixture.run(["search", dir + "/index", query, "--top", "8", "--rerank", "2", "--json"]))
        XCTAssertEqual(Set(partial.prefix(2).compactMap { $0["id"] as? String }), Set(first.prefix(2).compactMap { $0["id"] as? String }))
        XCTAssertEqual(partial.dropFirst(2).compactMap { $0["id"] as? String }, first.dropFirst(2).compactMap { $0["id"] as? String })

        // The CBT index: its embeddings first, the VideoBERT checkpoint re-ranks; without one, an error.
        let cbt = try hits(try ApplyFixture.run(["search", f.index, query, "--top", "3", "--rerank", "3", "--checkpoint", pretrained, "--json"]))
        XCTAssertEqual(cbt.count, 3)
        let none = try ApplyFixture.run(["search", f.index, query, "--rerank", "3"])
        XCTAssertEqual(none.status, 1)
        XCTAssertTrue(none.stderr.contains("--rerank needs a VideoBERT checkpoint"), none.stderr)
    }
}
