import Foundation
import Tensor
import Tokenize
import XCTest
import TestSupport

/// Sharded corpora (Sources/Tokenize/Corpus/CorpusShards.swift, docs/ARCHITECTURE.md §3): a
/// corpus written as shards reads exactly like the same corpus in one folder; `--append` adds
/// videos as a new shard whose rows are those of tokenizing everything at once; a damaged or
/// hostile shard list is a one-line error. (Shards written by 2 MPI ranks: DistributedCLITests.)
final class ShardedCorpusCLITests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "shards-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// A 4-video demo corpus with a small text vocabulary; manifests of all videos, of the first
    /// two and of the last two (every video in `train`, so splits do not depend on the set).
    /// Returns the tokenize arguments without --corpus and --out.
    func corpus() throws -> [String] {
        XCTAssertEqual(try CLI.run(["demo-corpus", "--out", dir + "/c", "--videos", "4", "--size", "32x32", "--fps", "6"]).status, 0)
        XCTAssertEqual(try CLI.run(["vocab", "text", dir + "/c/videos", "--size", "300", "--unused", "2", "--out", dir + "/v.txt"]).status, 0)
        let lines = try String(contentsOfFile: dir + "/c/manifest.jsonl", encoding: .utf8).split(separator: "\n").map { line -> String in
            var o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            o["split"] = "train"
            o["group"] = nil
            return String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self)
        }
        XCTAssertEqual(lines.count, 4)
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/c/all.jsonl", atomically: true, encoding: .utf8)
        try (lines[0..<2].joined(separator: "\n") + "\n").write(toFile: dir + "/c/first.jsonl", atomically: true, encoding: .utf8)
        try (lines[2..<4].joined(separator: "\n") + "\n").write(toFile: dir + "/c/last.jsonl", atomically: true, encoding: .utf8)
        return ["tokenize", "--recipe", Repository.root + "/Recipes/tokenize-tiny.yaml", "--set", "text.vocab=" + dir + "/v.txt",
                "--set", "store.features=true"]
    }

    /// Every column, the videos and the stored features of two corpora are the same.
    static func assertSameCorpus(_ a: TokenizedCorpus, _ b: TokenizedCorpus, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(a.index.videos, b.index.videos, file: file, line: line)
        XCTAssertEqual(a.index.counts, b.index.counts, file: file, line: line)
        XCTAssertEqual(a.index.extras, b.index.extras, file: file, line: line)
        XCTAssertEqual(Array(a.textIDs), Array(b.textIDs), file: file, line: line)
        XCTAssertEqual(Array(a.textOffsets), Array(b.textOffsets), file: file, line: line)
        XCTAssertEqual(Array(a.visualIDs), Array(b.visualIDs), file: file, line: line)
        XCTAssertEqual(Array(a.visualOffsets), Array(b.visualOffsets), file: file, line: line)
        XCTAssertEqual(Array(a.segmentVideo), Array(b.segmentVideo), file: file, line: line)
        XCTAssertEqual(Array(a.segmentTimes), Array(b.segmentTimes), file: file, line: line)
        XCTAssertEqual(Array(a.segmentClips), Array(b.segmentClips), file: file, line: line)
        XCTAssertEqual(Array(a.clipWords), Array(b.clipWords), file: file, line: line)
        XCTAssertEqual(Array(a.clipVideo), Array(b.clipVideo), file: file, line: line)
        XCTAssertEqual(Array(a.clipTimes), Array(b.clipTimes), file: file, line: line)
        for s in 0..<a.segmentCount {
            XCTAssertEqual(Array(a.text(of: s)), Array(b.text(of: s)), file: file, line: line)
            XCTAssertEqual(Array(a.visual(of: s)), Array(b.visual(of: s)), file: file, line: line)
        }
        if a.index.extras.contains("clip_features") {
            let clips = Array((0..<a.clipCount).reversed())
            XCTAssertEqual(try ClipInputs.load(corpus: a, source: "features").rows(clips).features,
                           try ClipInputs.load(corpus: b, source: "features").rows(clips).features, file: file, line: line)
        }
    }

    /// `--shards 2` from one process: two shard folders, no arrays beside index.json, and the
    /// same corpus as one folder, read by the same reader (`inspect` prints the same segments).
    func testTwoShardsReadLikeOneFolder() throws {
        let args = try corpus()
        let one = try CLI.run(args + ["--corpus", dir + "/c/all.jsonl", "--out", dir + "/one"])
        XCTAssertEqual(one.status, 0, one.stderr)
        let two = try CLI.run(args + ["--corpus", dir + "/c/all.jsonl", "--out", dir + "/two", "--shards", "2"])
        XCTAssertEqual(two.status, 0, two.stderr)
        let fm = FileManager.default
        XCTAssertTrue(fm.fileExists(atPath: dir + "/two/shards/00000/clip_words.npy"))
        XCTAssertTrue(fm.fileExists(atPath: dir + "/two/shards/00001/clip_features.npy"))
        XCTAssertFalse(fm.fileExists(atPath: dir + "/two/clip_words.npy"))
        let a = try TokenizedCorpus(path: dir + "/one"), b = try TokenizedCorpus(path: dir + "/two")
        XCTAssertNil(a.index.shards)
        XCTAssertEqual(b.index.shards?.map(\.folder), ["shards/00000", "shards/00001"])
        XCTAssertEqual(b.index.shards?.map(\.videos), [2, 2])
        try Self.assertSameCorpus(a, b)
        let i1 = try CLI.run(["inspect", dir + "/one", "--limit", "4"]), i2 = try CLI.run(["inspect", dir + "/two", "--limit", "4"])
        XCTAssertEqual(i2.status, 0, i2.stderr)
        XCTAssertTrue(i2.stdout.contains("shards: 2 (shards/00000: 2 videos, shards/00001: 2 videos)"), i2.stdout)
        XCTAssertEqual(i1.stdout.split(separator: "\n").filter { !$0.hasPrefix("corpus ") && !$0.hasPrefix("shards:") },
                       i2.stdout.split(separator: "\n").filter { !$0.hasPrefix("corpus ") && !$0.hasPrefix("shards:") })
        // Pretraining reads it as one corpus: the same losses.
        func pretrain(_ corpus: String, _ out: String) throws -> [Double] {
            let r = try CLI.run(["pretrain", "--recipe", Repository.root + "/Recipes/tiny.yaml", "--set", "corpus=" + corpus, "--set", "train.steps=3",
                                 "--set", "log_every=1", "--set", "eval.every=0", "--set", "eval.split=train", "--set", "out=" + out])
            XCTAssertEqual(r.status, 0, r.stderr)
            return try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").compactMap { line in
                let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                return o?["kind"] as? String == "train" ? (o?["loss"] as? NSNumber)?.doubleValue : nil
            }
        }
        let l1 = try pretrain(dir + "/one", dir + "/p1")
        XCTAssertEqual(l1.count, 3)
        XCTAssertEqual(l1, try pretrain(dir + "/two", dir + "/p2"))
        // Tokenizing the folder again as one folder removes the shards.
        XCTAssertEqual(try CLI.run(args + ["--corpus", dir + "/c/all.jsonl", "--out", dir + "/two"]).status, 0)
        XCTAssertFalse(fm.fileExists(atPath: dir + "/two/shards"))
        try Self.assertSameCorpus(a, try TokenizedCorpus(path: dir + "/two"))
    }

    /// Appending videos to a corpus adds a shard with the corpus' vocabulary: the appended videos'
    /// rows are those of tokenizing all the videos at once with that vocabulary, the videos
    /// already there are untouched, and the corpus reads as one. Appending twice numbers the
    /// shards on; a different recipe, a video already present, or a missing corpus are refused.
    func testAppendEqualsTokenizingEverything() throws {
        let args = try corpus()
        let first = try CLI.run(args + ["--corpus", dir + "/c/first.jsonl", "--out", dir + "/grow"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let before = try Data(contentsOf: URL(fileURLWithPath: dir + "/grow/clip_words.npy"))
        let added = try CLI.run(["tokenize", "--corpus", dir + "/c/last.jsonl", "--out", dir + "/grow", "--append"])
        XCTAssertEqual(added.status, 0, added.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/grow/clip_words.npy")), before, "the first videos are not re-tokenized")
        // Everything at once, with the grown corpus' vocabulary.
        let all = try CLI.run(args + ["--corpus", dir + "/c/all.jsonl", "--out", dir + "/all", "--set", "kmeans.vocab=" + dir + "/grow/vocab"])
        XCTAssertEqual(all.status, 0, all.stderr)
        let grown = try TokenizedCorpus(path: dir + "/grow"), whole = try TokenizedCorpus(path: dir + "/all")
        XCTAssertEqual(grown.index.shards?.map(\.folder), [".", "shards/00001"])
        try Self.assertSameCorpus(grown, whole)

        // Refusals: one line each, nothing changed.
        let indexBefore = try Data(contentsOf: URL(fileURLWithPath: dir + "/grow/index.json"))
        let again = try CLI.run(["tokenize", "--corpus", dir + "/c/last.jsonl", "--out", dir + "/grow", "--append"])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.stderr.contains("is already in the corpus"), again.stderr)
        let recipe = try CLI.run(["tokenize", "--corpus", dir + "/c/first.jsonl", "--out", dir + "/grow", "--append", "--set", "text.max_tokens=20"])
        XCTAssertNotEqual(recipe.status, 0)
        XCTAssertTrue(recipe.stderr.contains("the recipe differs from the corpus'") && recipe.stderr.contains("max_tokens"), recipe.stderr)
        XCTAssertEqual(recipe.stderr.split(separator: "\n").count, 1, recipe.stderr)
        let missing = try CLI.run(["tokenize", "--corpus", dir + "/c/first.jsonl", "--out", dir + "/nothing", "--append"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("no index.json"), missing.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/grow/index.json")), indexBefore)

        // A sharded corpus grows by shards/00002.
        let two = try CLI.run(args + ["--corpus", dir + "/c/first.jsonl", "--out", dir + "/sharded", "--shards", "2"])
        XCTAssertEqual(two.status, 0, two.stderr)
        XCTAssertEqual(try CLI.run(["tokenize", "--corpus", dir + "/c/last.jsonl", "--out", dir + "/sharded", "--append"]).status, 0)
        let sharded = try TokenizedCorpus(path: dir + "/sharded")
        XCTAssertEqual(sharded.index.shards?.map(\.folder), ["shards/00000", "shards/00001", "shards/00002"])
        try Self.assertSameCorpus(sharded, whole)
    }

    /// A damaged or hostile shard list in index.json is a one-line error naming index.json, for
    /// every reader (inspect here), never a crash or a read outside the corpus.
    func testHostileShardListsAreOneLineErrors() throws {
        let args = try corpus()
        XCTAssertEqual(try CLI.run(args + ["--corpus", dir + "/c/all.jsonl", "--out", dir + "/s", "--shards", "2"]).status, 0)
        let indexPath = dir + "/s/index.json"
        let original = try Data(contentsOf: URL(fileURLWithPath: indexPath))
        func damaged(_ edit: (inout [[String: Any]]) -> Void, expect: String, file: StaticString = #filePath, line: UInt = #line) throws {
            var o = try XCTUnwrap(JSONSerialization.jsonObject(with: original) as? [String: Any])
            var shards = try XCTUnwrap(o["shards"] as? [[String: Any]])
            edit(&shards)
            o["shards"] = shards
            try JSONSerialization.data(withJSONObject: o).write(to: URL(fileURLWithPath: indexPath))
            let r = try CLI.run(["inspect", dir + "/s"])
            XCTAssertNotEqual(r.status, 0, file: file, line: line)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr, file: file, line: line)
            XCTAssertTrue(r.stderr.hasPrefix("error: ") && r.stderr.contains(expect), r.stderr, file: file, line: line)
        }
        try damaged({ $0[1]["folder"] = "shards/00007" }, expect: "folder shards/00007 is missing")
        try damaged({ $0[1]["folder"] = "../s/shards/00001" }, expect: "is not '.' or shards/NNNNN")
        try damaged({ $0[1]["folder"] = "/etc" }, expect: "is not '.' or shards/NNNNN")
        try damaged({ $0[1]["folder"] = "shards/00000" }, expect: "listed twice")
        try damaged({ $0[0]["clips"] = 1 << 62 }, expect: "out of range")
        try damaged({ $0[0]["clips"] = -1 }, expect: "out of range")
        try damaged({ s in s[0]["clips"] = (s[0]["clips"] as! Int) + 1; s[1]["clips"] = (s[1]["clips"] as! Int) - 1 },
                    expect: "do not agree with its entry")
        try damaged({ $0.removeLast() }, expect: "do not add up")
        try damaged({ $0 = [] }, expect: "0 entries")
        try damaged({ $0 = Array(repeating: $0[0], count: CorpusShards.maxShards + 1) }, expect: "entries")
        // A shard folder renamed away after writing.
        try original.write(to: URL(fileURLWithPath: indexPath))
        try FileManager.default.moveItem(atPath: dir + "/s/shards/00001", toPath: dir + "/s/shards/gone")
        let r = try CLI.run(["inspect", dir + "/s"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("shards[1]: folder shards/00001 is missing"), r.stderr)
    }
}
