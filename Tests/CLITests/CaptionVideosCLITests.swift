import Foundation
import TestSupport
import XCTest

/// `videobert caption VIDEO... --checkpoint C`: raw video files captioned with the pipeline of the
/// checkpoint's training corpus give the captions `caption --corpus` gives for the same segments.
/// A tiny VideoBERT (3 steps) fine-tuned for captioning (2 steps) on IndexCLITests' demo corpus.
final class CaptionVideosCLITests: XCTestCase {
    func run(_ args: [String]) throws -> CLIResult { try CLI.run(args, env: ["VIDEOBERT_QUIET": "1"]) }

    func json(_ r: CLIResult) throws -> Any {
        XCTAssertEqual(r.status, 0, r.stderr)
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
    }

    func testRawVideoCaptionsEqualCorpusCaptions() throws {
        let f = try IndexCLITests.Fixture.get()
        let dir = try temporaryFolder(named: "videobert-caption-videos")
        // The tiny captioner the raw-video tests share (ApplyFixture: 3 pretraining steps, 2 of caption fine-tuning).
        let checkpoint = try ApplyFixture.get().captioner()

        // The corpus's captions of every test-split segment.
        let corpusOut = dir + "/corpus-captions.json"
        let c = try run(["caption", "--checkpoint", checkpoint, "--corpus", f.dir + "/t", "--split", "test", "--beam", "2", "--max-tokens", "5",
                         "--out", corpusOut, "--json"])
        XCTAssertEqual(c.status, 0, c.stderr)
        let corpusCaptions = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: corpusOut))) as? [[String: Any]])
        var expected: [String: String] = [:]
        for e in corpusCaptions { expected[try XCTUnwrap(e["image_id"] as? String)] = e["caption"] as? String }
        let testVideos = Set(expected.keys.map { String($0.split(separator: "#")[0]) }).sorted().prefix(2)
        XCTAssertEqual(testVideos.count, 2, "\(expected.keys)")

        // The same videos as raw files (the corpus recipe is found through the checkpoint's recipe.yaml).
        let files = testVideos.map { f.corpus + "/videos/\($0).mp4" }
        let r = try run(["caption"] + files + ["--checkpoint", checkpoint, "--beam", "2", "--max-tokens", "5", "--format", "json"])
        let raw = try XCTUnwrap(try json(r) as? [[String: Any]], r.stdout)
        let rawIDs = raw.map { "\($0["video"] as! String)#\($0["index"] as! Int)" }
        XCTAssertEqual(Set(rawIDs), Set(expected.keys.filter { testVideos.contains(String($0.split(separator: "#")[0])) }))
        for (id, seg) in zip(rawIDs, raw) {
            XCTAssertEqual(seg["caption"] as? String, expected[id], id)
            XCTAssertLessThan(try XCTUnwrap(seg["start"] as? Double), try XCTUnwrap(seg["end"] as? Double))
        }

        // WebVTT (the default) and SRT, one per video in a folder; a bad video is reported, the other captioned.
        try Data("not a video".utf8).write(to: URL(fileURLWithPath: dir + "/broken.mp4"))
        let v = try run(["caption", files[0], dir + "/broken.mp4", "--checkpoint", checkpoint, "--beam", "1", "--max-tokens", "3", "--out", dir + "/subs"])
        XCTAssertEqual(v.status, 1, v.stderr)
        XCTAssertTrue(v.stderr.contains("broken.mp4"), v.stderr)
        let vtt = try String(contentsOfFile: dir + "/subs/\(testVideos.first!).vtt", encoding: .utf8)
        XCTAssertTrue(vtt.hasPrefix("WEBVTT\n\n00:00:"), vtt)
        XCTAssertTrue(vtt.contains(" --> "), vtt)
        let s = try run(["caption", files[0], "--checkpoint", checkpoint, "--beam", "1", "--max-tokens", "3", "--out", dir + "/one.srt"])
        XCTAssertEqual(s.status, 0, s.stderr)
        let srt = try String(contentsOfFile: dir + "/one.srt", encoding: .utf8)
        XCTAssertTrue(srt.hasPrefix("1\n00:00:"), srt)
        XCTAssertTrue(srt.contains(",") && srt.contains(" --> "), srt)

        // Without a transcript (a copy of the video alone): --window windows over its duration.
        try FileManager.default.copyItem(atPath: files[0], toPath: dir + "/alone.mp4")
        let w = try run(["caption", dir + "/alone.mp4", "--checkpoint", checkpoint, "--beam", "1", "--max-tokens", "3", "--window", "2s", "--format", "json"])
        let windows = try XCTUnwrap(try json(w) as? [[String: Any]], w.stdout)
        XCTAssertGreaterThan(windows.count, 1)
        for (k, seg) in windows.enumerated() {
            XCTAssertEqual(seg["start"] as? Double, Double(k) * 2)
            XCTAssertEqual(seg["video"] as? String, "alone")
        }

        // Usage errors: corpus-only options with videos, several videos to standard output as WebVTT.
        for bad in [[files[0], "--annotations", "x.json"], files + ["--format", "vtt"], ["--corpus", f.dir + "/t", "--format", "srt", "--out", dir + "/x.json"]] {
            let u = try run(["caption", "--checkpoint", checkpoint] + bad)
            XCTAssertEqual(u.status, 64, "\(bad): \(u.stderr)")
        }
    }
}
