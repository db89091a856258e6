import Foundation
import Media
import XCTest
import TestSupport

/// End to end: render a few demo videos, add every kind of bad input, tokenize, check the corpus,
/// the failures, the exit status, and that a re-run resumes.
final class TokenizeCLITests: XCTestCase {

    func testTokenizeCorpusWithBadInputsAndResume() throws {
        let dir = NSTemporaryDirectory() + "tokcli-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gen = try CLI.run(["demo-corpus", "--out", dir + "/gen", "--videos", "4", "--size", "48x48", "--fps", "8"])
        XCTAssertEqual(gen.status, 0, gen.stderr)
        let videos = dir + "/gen/videos"
        // Bad inputs beside the good videos.
        try Data().write(to: URL(fileURLWithPath: videos + "/empty.mp4"))
        try "this is not a video\n".write(toFile: videos + "/text.mp4", atomically: true, encoding: .utf8)
        var random = [UInt8](repeating: 0, count: 4096)
        for i in random.indices { random[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 7) }
        try Data(random).write(to: URL(fileURLWithPath: videos + "/random.mkv"))
        let good = try FileManager.default.contentsOfDirectory(atPath: videos).filter { $0.hasSuffix(".mp4") && $0.hasPrefix("demo") }.sorted()
        let whole = try Data(contentsOf: URL(fileURLWithPath: videos + "/" + good[0]))
        try whole.prefix(whole.count / 3).write(to: URL(fileURLWithPath: videos + "/truncated.mp4"))
        // An MP4 with sound and no picture.
        try AudioFileWriter.write(path: videos + "/audioonly.mp4", track: AudioTrack(seconds: 1))
        // A good video with a broken transcript.
        try FileManager.default.copyItem(atPath: videos + "/" + good[1], toPath: videos + "/badcaptions.mp4")
        try "WEBVTT\n\n00:00:01.000 --> nonsense\nhello\n".write(toFile: videos + "/badcaptions.vtt", atomically: true, encoding: .utf8)

        let out = dir + "/tokens"
        let args = ["tokenize", "--corpus", videos, "--out", out, "--recipe", Repository.root + "/Recipes/tokenize-tiny.yaml",
                    "--set", "text.vocab=" + Repository.root + "/Vocab/bert-base-uncased.txt",
                    "--set", "store.frames=true", "--set", "store.frame_size=8", "--set", "store.frames_per_clip=2",
                    "--set", "store.features=true"]
        let r = try CLI.run(args)
        XCTAssertEqual(r.status, 2, "some videos failed, so the exit status is not 0\n" + r.stderr)
        XCTAssertTrue(r.stdout.contains("tokenized 4/10 videos"), r.stdout)

        // failures.jsonl names each bad file and why.
        let failures = try String(contentsOfFile: out + "/failures.jsonl", encoding: .utf8)
            .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let byID = Dictionary(uniqueKeysWithValues: failures.map { ($0["id"] as! String, $0) })
        XCTAssertEqual(Set(byID.keys), ["empty", "text", "random", "truncated", "badcaptions", "audioonly"])
        XCTAssertEqual(byID["badcaptions"]?["stage"] as? String, "transcript")
        XCTAssertTrue((byID["badcaptions"]?["error"] as? String ?? "").contains("badcaptions.vtt: line 3"), "\(byID["badcaptions"]!)")
        XCTAssertTrue((byID["audioonly"]?["error"] as? String ?? "").contains("video stream"), "\(byID["audioonly"]!)")
        for id in ["empty", "text", "random", "truncated", "audioonly"] {
            XCTAssertEqual(byID[id]?["stage"] as? String, "video", id)
            XCTAssertTrue((byID[id]?["error"] as? String ?? "").contains(id + "."), "\(byID[id]!)")
        }

        // The corpus: index and arrays agree.
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/index.json"))) as! [String: Any]
        let counts = index["counts"] as! [String: Any]
        XCTAssertEqual(counts["videos"] as? Int, 4)
        XCTAssertEqual(counts["failures"] as? Int, 6)
        // Stored clip features and low-resolution frames, one row per clip.
        let clips = counts["clips"] as! Int
        let framesHeader = String(decoding: try Data(contentsOf: URL(fileURLWithPath: out + "/clip_frames.npy")).prefix(128), as: UTF8.self)
        XCTAssertTrue(framesHeader.contains("'shape': (\(clips), 2, 8, 8, 3)"), framesHeader)
        let featuresHeader = String(decoding: try Data(contentsOf: URL(fileURLWithPath: out + "/clip_features.npy")).prefix(128), as: UTF8.self)
        XCTAssertTrue(featuresHeader.contains("'shape': (\(clips), 128)"), featuresHeader)
        XCTAssertGreaterThan(counts["segments"] as! Int, 8)
        let inspect = try CLI.run(["inspect", out, "--limit", "1"])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(inspect.stdout.contains("the "), inspect.stdout)
        XCTAssertTrue(inspect.stdout.contains(" | v"), inspect.stdout)
        XCTAssertTrue(inspect.stdout.contains("stored for CBT: clip_features \(clips)×128, clip_frames \(clips)×2×8×8×3"), inspect.stdout)

        // Contact sheets of the visual words, decoded from the source videos.
        let show = try CLI.run(["vocab", "show", "--corpus", out, "--out", dir + "/words", "--per-word", "2"])
        XCTAssertEqual(show.status, 0, show.stderr)
        let pngs = try FileManager.default.contentsOfDirectory(atPath: dir + "/words").filter { $0.hasPrefix("word_") }
        XCTAssertGreaterThan(pngs.count, 1)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/words/words.png"))

        // Re-run: finished videos are skipped, the result is the same.
        let before = try Data(contentsOf: URL(fileURLWithPath: out + "/visual_ids.npy"))
        let r2 = try CLI.run(args + ["--json"])
        XCTAssertEqual(r2.status, 2)
        let summary = try JSONSerialization.jsonObject(with: Data(r2.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(summary["skipped"] as? Int, 4)
        XCTAssertEqual(summary["vocabulary_reused"] as? Bool, true)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out + "/visual_ids.npy")), before)
        // No temporary files left behind.
        let all = FileManager.default.enumerator(atPath: out)!.allObjects as! [String]
        XCTAssertTrue(all.filter { $0.contains(".tmp") }.isEmpty, "\(all)")
    }

    /// The same seed renders the same corpus, byte for byte, in another process: the H.264
    /// files too (libx264's mbtree lookahead used to make them depend on the process's memory;
    /// swscale read past the end of the RGB frame), so tokens and the demo's numbers repeat.
    func testDemoCorpusIsByteIdenticalAcrossRuns() throws {
        let dir = NSTemporaryDirectory() + "democorpus-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for run in ["a", "b"] {
            let r = try CLI.run(["demo-corpus", "--out", dir + "/" + run, "--videos", "6", "--size", "64x64"])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        let files = try FileManager.default.subpathsOfDirectory(atPath: dir + "/a").filter { $0.hasSuffix(".mp4") || $0.hasSuffix(".vtt") }
        XCTAssertEqual(files.filter { $0.hasSuffix(".mp4") }.count, 6)
        for f in files.sorted() {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/a/" + f)), try Data(contentsOf: URL(fileURLWithPath: dir + "/b/" + f)), f)
        }
    }

    func testRecipeErrorsNameKeyAndFile() throws {
        let r = try CLI.run(["tokenize", "--corpus", "/nonexistent", "--out", "/tmp/x", "--set", "kmeans.brnching=3"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("error: --set: unknown key 'kmeans.brnching'"), r.stderr)
        let r2 = try CLI.run(["tokenize", "--corpus", "/nonexistent", "--out", "/tmp/x"])
        XCTAssertEqual(r2.stderr, "error: /nonexistent: no such corpus folder or file\n")
    }
}

final class TokenizeImportedFeaturesTests: XCTestCase {
    /// HowTo100M layout: raw_caption.json + one S3D-style .npy per video (1 s per row), no videos.
    func testHowTo100MCaptionsWithImportedFeatures() throws {
        let dir = NSTemporaryDirectory() + "tokh-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/s3d", withIntermediateDirectories: true)
        var captions: [String: Any] = [:]
        for v in 0..<5 {
            let rows = 20 + v
            // Two regimes per video so k-means has structure: rows alternate around two centres.
            var values: [Float] = []
            for r in 0..<rows { for d in 0..<8 { values.append(Float((r / 5 + d + v) % 3) + 0.01 * Float(r)) } }
            try writeNPY(values, shape: [rows, 8], to: dir + "/s3d/vid\(v).npy", float16: v % 2 == 1)
            captions["vid\(v)"] = ["start": [1.0, 6.5, 12.0], "end": [4.0, 9.0, 15.5],
                                   "text": ["first we add some water", "then stir it slowly", "and serve it hot"]]
        }
        try JSONSerialization.data(withJSONObject: captions).write(to: URL(fileURLWithPath: dir + "/raw_caption.json"))
        let out = dir + "/tokens"
        let r = try CLI.run(["tokenize", "--corpus", dir + "/raw_caption.json", "--out", out,
                             "--recipe", Repository.root + "/Recipes/tokenize-howto100m-s3d.yaml",
                             "--set", "features.dir=" + dir + "/s3d", "--set", "kmeans.branching=3", "--set", "kmeans.depth=2",
                             "--set", "store.features=true",
                             "--set", "text.vocab=" + Repository.root + "/Vocab/bert-base-uncased.txt", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let summary = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(summary["clips"] as? Int, 20 + 21 + 22 + 23 + 24)
        XCTAssertEqual(summary["visual_words"] as? Int, 9)
        let inspect = try CLI.run(["inspect", out, "--video", "vid0", "--json"])
        let lines = inspect.stdout.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let spoken = lines.filter { !($0["text"] as! String).isEmpty }
        XCTAssertEqual(spoken.map { $0["text"] as! String }, ["first we add some water", "then stir it slowly", "and serve it hot"])
        // 1 s rows: the sentence at 1.0–4.0 s covers rows 1, 2, 3.
        XCTAssertEqual((spoken[0]["visual_ids"] as! [Int]).count, 3)
        // Stored features: [clips, 8] float32.
        let header = try String(decoding: Data(contentsOf: URL(fileURLWithPath: out + "/clip_features.npy")).prefix(128), as: UTF8.self)
        XCTAssertTrue(header.contains("'shape': (110, 8)"), header)
    }
}
