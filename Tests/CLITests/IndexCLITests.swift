import Foundation
import TestSupport
import XCTest

/// `videobert index` and `videobert search` end to end: a demo corpus, a tiny CBT pretrained on
/// it (a few steps: the embeddings' plumbing is under test, not what so little training learns),
/// an index of its raw videos, searches in every mode.
final class IndexCLITests: XCTestCase {
    /// Built once under the lock by the first test that needs it; read-only afterwards.
    final class Fixture: @unchecked Sendable {
        nonisolated(unsafe) static var shared: Fixture?
        static let lock = NSLock()
        let dir: String, corpus: String, checkpoint: String, index: String
        let summary: [String: Any]

        init() throws {
            // One folder per test process, removed when the process exits.
            atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "videobert-indexcli-\(getpid())") }
            dir = NSTemporaryDirectory() + "videobert-indexcli-\(getpid())"
            corpus = dir + "/c"
            let root = Repository.root
            let gen = try CLI.run(["demo-corpus", "--out", corpus, "--videos", "24", "--size", "32x32", "--fps", "6"])
            guard gen.status == 0 else { throw VideoBertTestError("demo-corpus failed: \(gen.stderr)") }
            let tok = try CLI.run(["tokenize", "--corpus", corpus + "/manifest.jsonl", "--out", dir + "/t",
                                   "--recipe", root + "/Recipes/tokenize-tiny.yaml", "--set", "text.vocab=" + root + "/Vocab/bert-base-uncased.txt",
                                   "--set", "store.frames=true", "--set", "store.frame_size=16", "--set", "store.frames_per_clip=2"],
                                  env: ["VIDEOBERT_QUIET": "1"])
            guard tok.status == 0 else { throw VideoBertTestError("tokenize failed: \(tok.stderr)") }
            let r = try CLI.run(["pretrain", "--recipe", root + "/Recipes/cbt-tiny.yaml", "--set", "corpus=" + dir + "/t", "--set", "out=" + dir + "/run",
                                 "--set", "train.steps=3", "--set", "train.batch_size=2", "--set", "eval.split=train", "--set", "eval.batches=1",
                                 "--set", "retrieval.max_pairs=4", "--json"], env: ["VIDEOBERT_QUIET": "1"])
            guard r.status == 0, let s = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any],
                  let c = s["checkpoint"] as? String else { throw VideoBertTestError("pretrain failed: \(r.stderr)") }
            checkpoint = c
            index = dir + "/index"
            let ix = try CLI.run(["index", "--checkpoint", checkpoint, "--videos", corpus + "/manifest.jsonl", "--out", index],
                                 env: ["VIDEOBERT_QUIET": "1"])
            guard ix.status == 0, let sum = try JSONSerialization.jsonObject(with: Data(ix.stdout.utf8)) as? [String: Any] else {
                throw VideoBertTestError("index failed: \(ix.stderr)")
            }
            summary = sum
        }

        static func get() throws -> Fixture {
            lock.lock(); defer { lock.unlock() }
            if let shared { return shared }
            let f = try Fixture()
            shared = f
            return f
        }
    }

    struct VideoBertTestError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    func search(_ index: String, _ query: String, _ extra: [String] = []) throws -> [[String: Any]] {
        let r = try CLI.run(["search", index, query, "--json"] + extra, env: ["VIDEOBERT_QUIET": "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]], r.stdout)
    }

    func testIndexHoldsEverySegmentWithThumbnailAndEmbedding() throws {
        let f = try Fixture.get()
        XCTAssertEqual(f.summary["videos"] as? Int, 24)
        XCTAssertEqual(f.summary["indexed"] as? Int, 24)
        XCTAssertEqual(f.summary["failed"] as? Int, 0)
        XCTAssertEqual(f.summary["encoder"] as? String, "cbt-pooled")
        let segments = try XCTUnwrap(f.summary["segments"] as? Int)
        XCTAssertGreaterThanOrEqual(segments, 24)
        let files = try FileManager.default.contentsOfDirectory(atPath: f.index)
        let npy = try XCTUnwrap(files.first { $0.hasPrefix("embeddings-") && $0.hasSuffix(".npy") }, "\(files)")
        // [segments, 32] float32 unit rows.
        let data = try Data(contentsOf: URL(fileURLWithPath: f.index + "/" + npy))
        let header = String(decoding: data.prefix(128), as: UTF8.self)
        XCTAssertTrue(header.contains("'shape': (\(segments), 32)"), header)
        let thumbs = try FileManager.default.subpathsOfDirectory(atPath: f.index + "/thumbnails").filter { $0.hasSuffix(".png") }
        XCTAssertEqual(thumbs.count, segments)
        let png = try Data(contentsOf: URL(fileURLWithPath: f.index + "/thumbnails/" + thumbs[0]))
        XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
    }

    func testSearchModes() throws {
        let f = try Fixture.get()
        for mode in ["text", "embedding", "hybrid"] {
            let hits = try search(f.index, "stir the tomatoes", ["--mode", mode, "--top", "7"])
            XCTAssertEqual(hits.count, 7, mode)
            for h in hits {
                for key in ["video", "path", "start", "end", "score", "text", "id"] { XCTAssertNotNil(h[key], "\(mode): \(key)") }
                XCTAssertLessThan(h["start"] as! Double, h["end"] as! Double)
                XCTAssertTrue(FileManager.default.fileExists(atPath: h["path"] as! String))
            }
            let scores = hits.map { $0["score"] as! Double }
            XCTAssertEqual(scores, scores.sorted(by: >), mode)
            if mode == "embedding" { XCTAssertTrue(scores.allSatisfy { abs($0) <= 1.0001 }, "cosines: \(scores)") }
            if mode == "text" { XCTAssertTrue((hits[0]["text"] as! String).contains("tomato"), "\(hits[0])") }
        }
        // The table output, and a query with no word that matches.
        let table = try CLI.run(["search", f.index, "stir the tomatoes", "--mode", "text", "--top", "2"])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertTrue(table.stdout.hasPrefix("  1. "), table.stdout)
        XCTAssertEqual(try search(f.index, "zzzqqq", ["--mode", "text"]).count, 0)
        XCTAssertEqual(try search(f.index, "\")(*: OR NEAR", ["--mode", "text"]).count, 0)
    }

    /// Precision@10 of "stir the tomatoes" against the demo's ground truth (a segment is relevant
    /// when an annotated step "stir" + "tomatoes" overlaps it), beside chance (the fraction of
    /// relevant segments in the index).
    func testStirTheTomatoesRanksRelevantSegmentsAboveChance() throws {
        let f = try Fixture.get()
        let annotations = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: f.corpus + "/annotations.json"))) as! [String: Any]
        let database = annotations["database"] as! [String: [String: Any]]
        func relevant(_ h: [String: Any]) -> Bool {
            let steps = (database[h["video"] as! String]?["annotations"] as? [[String: Any]]) ?? []
            let (s, e) = (h["start"] as! Double, h["end"] as! Double)
            return steps.contains { st in
                let span = st["segment"] as! [Double]
                return st["verb"] as? String == "stir" && st["noun"] as? String == "tomatoes" && span[0] < e && span[1] > s
            }
        }
        let all = try search(f.index, "stir the tomatoes", ["--mode", "embedding", "--top", "10000"])
        XCTAssertEqual(all.count, f.summary["segments"] as? Int)
        let chance = Double(all.filter(relevant).count) / Double(all.count)
        XCTAssertGreaterThan(chance, 0, "the demo corpus has no 'stir the tomatoes' step: pick another seed")
        var report: [String: Double] = ["chance": chance]
        for mode in ["text", "hybrid", "embedding"] {
            let hits = try search(f.index, "stir the tomatoes", ["--mode", mode, "--top", "10"])
            report[mode] = Double(hits.filter(relevant).count) / 10
            if mode == "text" { XCTAssertTrue(relevant(hits[0]), "BM25's first hit: \(hits[0])") }
        }
        print("search 'stir the tomatoes' precision@10: \(report.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.2f", $0.value))" }.joined(separator: ", "))")
        // BM25 and the fusion find the narrated steps; the 3-step CBT's embeddings are reported only.
        XCTAssertGreaterThan(report["text"]!, 2 * chance, "\(report)")
        XCTAssertGreaterThan(report["hybrid"]!, 2 * chance, "\(report)")
    }

    /// Re-running adds new videos, keeps unchanged ones, drops deleted ones; a corrupt video is
    /// reported and the others finish; a folder without transcripts gets fixed windows.
    func testIncrementalAddDropAndBadVideo() throws {
        let f = try Fixture.get()
        let dir = NSTemporaryDirectory() + "indexinc-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let videos = dir + "/videos", index = dir + "/index"
        try FileManager.default.createDirectory(atPath: videos, withIntermediateDirectories: true)
        let names = try FileManager.default.contentsOfDirectory(atPath: f.corpus + "/videos").filter { $0.hasSuffix(".mp4") }.sorted()
        for n in names.prefix(3) {
            try FileManager.default.copyItem(atPath: f.corpus + "/videos/" + n, toPath: videos + "/" + n)
            let vtt = String(n.dropLast(4)) + ".vtt"
            try FileManager.default.copyItem(atPath: f.corpus + "/videos/" + vtt, toPath: videos + "/" + vtt)
        }
        // No transcript: 6 s windows.
        try FileManager.default.copyItem(atPath: f.corpus + "/videos/" + names[3], toPath: videos + "/silent.mp4")
        try Data("not a video at all".utf8).write(to: URL(fileURLWithPath: videos + "/broken.mp4"))
        func reindex() throws -> [String: Any] {
            let r = try CLI.run(["index", "--checkpoint", f.checkpoint, "--videos", videos, "--out", index, "--window", "6s"],
                                env: ["VIDEOBERT_QUIET": "1"])
            XCTAssertEqual(r.status, 0, r.stderr)
            return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stderr)
        }
        var s = try reindex()
        XCTAssertEqual(s["indexed"] as? Int, 4)
        XCTAssertEqual(s["failed"] as? Int, 1)
        let failures = try XCTUnwrap(s["failures"] as? [[String: Any]])
        XCTAssertTrue((failures[0]["video"] as! String).hasSuffix("broken.mp4"), "\(failures)")
        let windows = try search(index, "anything", ["--mode", "embedding", "--top", "1000"]).filter { $0["video"] as? String == "silent" }
        XCTAssertGreaterThanOrEqual(windows.count, 2)
        XCTAssertEqual(windows.map { $0["text"] as! String }, windows.map { _ in "" })
        XCTAssertEqual(Set(windows.map { $0["start"] as! Double }).count, windows.count)
        XCTAssertTrue(windows.allSatisfy { ($0["end"] as! Double) - ($0["start"] as! Double) <= 6.0001 })
        let before = try search(index, "the", ["--mode", "embedding", "--top", "1000"])

        // Unchanged: everything kept, same results.
        s = try reindex()
        XCTAssertEqual(s["indexed"] as? Int, 0)
        XCTAssertEqual(s["kept"] as? Int, 4)
        let again = try search(index, "the", ["--mode", "embedding", "--top", "1000"])
        XCTAssertEqual(again.map { $0["id"] as! String }, before.map { $0["id"] as! String })
        XCTAssertEqual(again.map { $0["score"] as! Double }, before.map { $0["score"] as! Double })

        // One added, one deleted (with its transcript), the broken one removed.
        try FileManager.default.copyItem(atPath: f.corpus + "/videos/" + names[4], toPath: videos + "/" + names[4])
        let gone = String(names[0].dropLast(4))
        try FileManager.default.removeItem(atPath: videos + "/" + names[0])
        try FileManager.default.removeItem(atPath: videos + "/" + gone + ".vtt")
        try FileManager.default.removeItem(atPath: videos + "/broken.mp4")
        s = try reindex()
        XCTAssertEqual(s["indexed"] as? Int, 1)
        XCTAssertEqual(s["kept"] as? Int, 3)
        XCTAssertEqual(s["dropped"] as? Int, 1)
        XCTAssertEqual(s["failed"] as? Int, 0)
        let after = try search(index, "the", ["--mode", "embedding", "--top", "1000"])
        XCTAssertEqual(after.count, s["segments"] as? Int)
        XCTAssertFalse(after.contains { $0["video"] as? String == gone })
        XCTAssertTrue(after.contains { $0["video"] as? String == String(names[4].dropLast(4)) })
        // Thumbnails and embeddings of the old index are gone.
        let thumbs = try FileManager.default.contentsOfDirectory(atPath: index + "/thumbnails")
        XCTAssertEqual(thumbs.count, 4, "\(thumbs)")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: index).filter { $0.hasSuffix(".npy") }.count, 1)
    }

    /// A VideoBERT checkpoint has no dual encoder: the index says so, text and hybrid search work
    /// on the transcripts, embedding search is a clear error; bad inputs are one-line errors.
    func testVideoBERTCheckpointAndBadInput() throws {
        let f = try Fixture.get()
        let tasks = try TasksCLIFixture.get()
        let dir = NSTemporaryDirectory() + "indexvb-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let manifest = dir + "/m.jsonl"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let lines = try String(contentsOfFile: f.corpus + "/manifest.jsonl", encoding: .utf8).split(separator: "\n").prefix(2)
        let absolute = lines.map { $0.replacingOccurrences(of: "\"videos/", with: "\"" + f.corpus + "/videos/") }
        try (absolute.joined(separator: "\n") + "\n").write(toFile: manifest, atomically: true, encoding: .utf8)
        let r = try CLI.run(["index", "--checkpoint", tasks.checkpoint, "--videos", manifest, "--out", dir + "/index"], env: ["VIDEOBERT_QUIET": "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let s = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(s["encoder"] as? String, "")
        XCTAssertTrue((s["note"] as! String).contains("no dual encoder"), "\(s)")
        XCTAssertFalse(try search(dir + "/index", "the", ["--mode", "hybrid"]).isEmpty)
        let e = try CLI.run(["search", dir + "/index", "the", "--mode", "embedding"])
        XCTAssertEqual(e.status, 1)
        XCTAssertTrue(e.stderr.hasPrefix("error: ") && e.stderr.contains("no embeddings"), e.stderr)

        let notIndex = try CLI.run(["search", dir, "the"])
        XCTAssertEqual(notIndex.status, 1)
        XCTAssertTrue(notIndex.stderr.contains("not an index folder"), notIndex.stderr)
        let noVideos = try CLI.run(["index", "--videos", dir + "/nope", "--out", dir + "/i2"])
        XCTAssertEqual(noVideos.status, 1)
        XCTAssertTrue(noVideos.stderr.contains(dir + "/nope"), noVideos.stderr)
        let badCheckpoint = try CLI.run(["index", "--checkpoint", dir, "--videos", manifest, "--out", dir + "/i3"])
        XCTAssertEqual(badCheckpoint.status, 1)
        XCTAssertTrue(badCheckpoint.stderr.contains(dir + ": is not a checkpoint (no config.json or cbt_config.json)"), badCheckpoint.stderr)
        let badWindow = try CLI.run(["index", "--videos", manifest, "--out", dir + "/i4", "--window", "-3s"])
        XCTAssertNotEqual(badWindow.status, 0)
    }
}
