import Foundation
import Media
import Tensor
import TestSupport
import XCTest

/// `videobert pretrain` with `variant: fusion` and `videobert retrieve` on its checkpoint, from
/// videos with and without sound (test-pattern videos, a tone per video).
final class FusionCLITests: XCTestCase {
    func testFusionPretrainAndRetrieveWithAndWithoutAudio() throws {
        let dir = NSTemporaryDirectory() + "fusioncli-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let root = Repository.root
        let videos = dir + "/videos"
        try FileManager.default.createDirectory(atPath: videos, withIntermediateDirectories: true)
        for i in 0..<4 {
            try TestPattern.writeVideo(path: videos + "/v\(i).mp4", width: 32, height: 32, fps: FrameRate(10), seconds: 4,
                                       audio: AudioTrack(seconds: 4, frequency: [440, 880, 1_500, 3_000][i]), seed: i)
            try """
            WEBVTT

            00:00:00.200 --> 00:00:01.800
            we chop the onion number \(i).

            00:00:02.000 --> 00:00:03.800
            then stir pan \(i) slowly.

            """.write(toFile: videos + "/v\(i).vtt", atomically: true, encoding: .utf8)
        }
        let tokenize = ["tokenize", "--corpus", videos, "--recipe", root + "/Recipes/tokenize-tiny.yaml",
                        "--set", "text.vocab=" + root + "/Vocab/bert-base-uncased.txt", "--set", "store.features=true"]
        let withAudio = try CLI.run(tokenize + ["--out", dir + "/audio", "--set", "audio.enabled=true", "--set", "audio.branching=2",
                                                "--set", "audio.depth=1", "--set", "store.audio=true"])
        XCTAssertEqual(withAudio.status, 0, withAudio.stderr)
        let plain = try CLI.run(tokenize + ["--out", dir + "/plain"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        func pretrain(_ corpus: String, _ out: String) throws -> (CLIResult, [String: Any]) {
            let r = try CLI.run(["pretrain", "--recipe", root + "/Recipes/fusion-demo.yaml", "--set", "corpus=" + corpus, "--set", "out=" + out,
                                 "--set", "text.hidden_size=16", "--set", "text.intermediate_size=32", "--set", "audio.channels=[4, 8]",
                                 "--set", "audio.output_size=8", "--set", "fusion.hidden_size=16", "--set", "fusion.intermediate_size=32",
                                 "--set", "fusion.embedding_size=16", "--set", "train.steps=3", "--set", "train.batch_size=2",
                                 "--set", "eval.split=train", "--set", "eval.batches=1", "--json"])
            return (r, r.status == 0 ? try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any] : [:])
        }
        func retrieve(_ checkpoint: String, _ corpus: String) throws -> [String: Any] {
            let r = try CLI.run(["retrieve", "--checkpoint", checkpoint, "--corpus", corpus, "--split", "train", "--max", "0", "--json"])
            XCTAssertEqual(r.status, 0, r.stderr)
            return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        }
        // With sound: log-mel audio through the conv net, three retrieval targets beside chance.
        let (a, summary) = try pretrain(dir + "/audio", dir + "/run-audio")
        XCTAssertEqual(a.status, 0, a.stderr)
        XCTAssertTrue(a.stderr.contains("audio logmel"), a.stderr)
        XCTAssertNotNil((summary["eval"] as? [String: Any])?["t2va_r1"])
        let ckpt = summary["checkpoint"] as! String
        let report = try retrieve(ckpt, dir + "/audio")
        XCTAssertEqual(report["audio"] as? String, "logmel")
        let N = report["segments"] as! Int
        XCTAssertGreaterThanOrEqual(N, 4)
        for key in ["text_to_video", "text_to_video_audio", "text_to_audio", "chance"] {
            XCTAssertEqual((report[key] as? [String: Any])?["count"] as? Int, N, key)
        }
        let table = try CLI.run(["retrieve", "--checkpoint", ckpt, "--corpus", dir + "/audio", "--split", "train", "--max", "0"])
        XCTAssertTrue(table.stdout.contains("text → video+audio") && table.stdout.contains("chance"), table.stdout)
        let inspect = try CLI.run(["inspect", ckpt, "--json"])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(inspect.stdout.contains("\"fusion\""), inspect.stdout)

        // Without sound: text ↔ video only, and the run says so; retrieval reports text → video.
        let (p, plainSummary) = try pretrain(dir + "/plain", dir + "/run-plain")
        XCTAssertEqual(p.status, 0, p.stderr)
        XCTAssertTrue(p.stderr.contains("has no audio") && p.stderr.contains("text ↔ video (tv) only"), p.stderr)
        let plainReport = try retrieve(plainSummary["checkpoint"] as! String, dir + "/plain")
        XCTAssertNotNil(plainReport["text_to_video"])
        XCTAssertNil(plainReport["text_to_video_audio"])
        // A checkpoint trained on log-mel audio refuses a corpus without it, in one line.
        let mismatch = try CLI.run(["retrieve", "--checkpoint", ckpt, "--corpus", dir + "/plain", "--split", "train"])
        XCTAssertNotEqual(mismatch.status, 0)
        XCTAssertTrue(mismatch.stderr.contains("clip_audio.npy") && mismatch.stderr.split(separator: "\n").count == 1, mismatch.stderr)

        // Bad recipe keys: one line naming the key and the file.
        let bad = try CLI.run(["pretrain", "--recipe", root + "/Recipes/fusion-demo.yaml", "--set", "corpus=" + dir + "/plain",
                               "--set", "loss.t_av=0.5"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("unknown key 'loss.t_av'") && bad.stderr.contains("t_va"), bad.stderr)
        XCTAssertEqual(bad.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count, 1, bad.stderr)
        try "variant: fusion\ncorpus: \(dir)/plain\nfusion:\n  hidden_sise: 8\n".write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
        let badFile = try CLI.run(["pretrain", "--recipe", dir + "/bad.yaml"])
        XCTAssertNotEqual(badFile.status, 0)
        XCTAssertTrue(badFile.stderr.contains("bad.yaml") && badFile.stderr.contains("hidden_sise"), badFile.stderr)
        XCTAssertEqual(badFile.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count, 1, badFile.stderr)
    }
}
