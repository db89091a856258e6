import Foundation
import XCTest

/// `videobert finetune caption` then `videobert caption`.
final class CaptionCLITests: XCTestCase {
    func testFinetuneThenCaptionWritesCOCOFiles() throws {
        let f = try TasksCLIFixture.get()
        let out = f.temporary("caption-run")
        let recipe = f.temporary("caption.yaml")
        try """
        init: \(f.checkpoint)
        corpus: \(f.corpus)
        annotations: \(f.annotations)
        out: \(out)
        data:
          max_video_tokens: 8
          max_caption_tokens: 8
        train:
          batch_size: 8
          steps: 4
          lr: 0.001
          warmup_steps: 1
        eval:
          every: 2
          batches: 1
        checkpoint:
          every: 2
          keep: 1
        log_every: 2
        """.write(toFile: recipe, atomically: true, encoding: .utf8)
        let t = try f.json(try f.run(["finetune", "caption", "--recipe", recipe, "--json"]))
        XCTAssertEqual(t["steps"] as? Int, 4)
        let checkpoint = try XCTUnwrap(t["checkpoint"] as? String)
        XCTAssertTrue(checkpoint.hasSuffix("step-0000004"), checkpoint)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out + "/checkpoints"), ["step-0000004"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/metrics.jsonl"))
        XCTAssertEqual(t["input"] as? String, "visual words")
        // Without annotations: a caption for every corpus segment of the split with clips, not scored.
        let segmentsOut = f.temporary("segment-captions.json")
        let seg = try f.json(try f.run(["caption", "--checkpoint", checkpoint, "--corpus", f.corpus, "--split", "test", "--beam", "1",
                                        "--max-tokens", "4", "--out", segmentsOut, "--json"]))
        XCTAssertEqual((seg["rows"] as? [Any])?.count, 0)
        let segmentCaptions = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: segmentsOut))) as! [[String: Any]]
        XCTAssertEqual(segmentCaptions.count, seg["steps"] as? Int)
        XCTAssertGreaterThan(segmentCaptions.count, 0)
        let noRefs = try f.run(["caption", "--checkpoint", checkpoint, "--corpus", f.corpus, "--out", segmentsOut, "--refs-out", f.temporary("r.json")])
        XCTAssertNotEqual(noRefs.status, 0)
        XCTAssertTrue(noRefs.stderr.contains("--refs-out and --baseline need --annotations"), noRefs.stderr)
        // `inspect` names the pretrained checkpoint and the captioner made from it.
        let pre = try f.json(try f.run(["inspect", f.checkpoint, "--json"]))
        XCTAssertEqual(pre["kind"] as? String, "videobert")
        let tuned = try f.json(try f.run(["inspect", checkpoint, "--json"]))
        XCTAssertEqual(tuned["kind"] as? String, "videobert-captioner")
        XCTAssertEqual(tuned["init"] as? String, f.checkpoint)
        XCTAssertEqual(tuned["step"] as? Int, 4)
        XCTAssertEqual(tuned["parameters"] as? Int, pre["parameters"] as? Int)
        // Running again without --resume refuses; with --resume and more steps it continues.
        let again = try f.run(["finetune", "caption", "--recipe", recipe])
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.stderr.contains("--resume"), again.stderr)
        let more = try f.json(try f.run(["finetune", "caption", "--recipe", recipe, "--set", "train.steps=6", "--resume", "--json"]))
        XCTAssertEqual(more["steps"] as? Int, 6)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out + "/checkpoints"), ["step-0000006"], "keep: 1")

        let captions = f.temporary("captions.json"), refs = f.temporary("refs.json"), baseline = f.temporary("baseline.json")
        try #"[{"image_id": "v10#0", "caption": "cut the garlic"}]"#.write(toFile: baseline, atomically: true, encoding: .utf8)
        let c = try f.run(["caption", "--checkpoint", more["checkpoint"] as! String, "--corpus", f.corpus, "--annotations", f.annotations,
                           "--beam", "2", "--max-tokens", "5", "--out", captions, "--refs-out", refs, "--baseline", "one=" + baseline])
        XCTAssertEqual(c.status, 0, c.stderr)
        XCTAssertTrue(c.stdout.contains("model (beam 2)") && c.stdout.contains("most frequent train caption") && c.stdout.contains("one"), c.stdout)
        let results = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: captions))) as? [[String: Any]])
        XCTAssertEqual(results.count, 6)
        XCTAssertEqual(results.map { $0["image_id"] as? String }, ["v10#0", "v10#1", "v10#2", "v11#0", "v11#1", "v11#2"])
        let references = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: refs))) as? [String: Any])
        XCTAssertEqual((references["annotations"] as? [Any])?.count, 6)
        let e = try f.run(["evaluate", "captions", "--pred", captions, "--refs", refs, "--require-all"])
        XCTAssertEqual(e.status, 0, e.stderr)
        // Greedy through --json.
        let g = try f.json(try f.run(["caption", "--checkpoint", more["checkpoint"] as! String, "--corpus", f.corpus, "--annotations", f.annotations,
                                      "--beam", "1", "--out", captions, "--json"]))
        XCTAssertEqual((g["options"] as? [String: Any])?["beam"] as? Int, 1)
        XCTAssertEqual((g["rows"] as? [Any])?.count, 2)
    }

    func testRecipeAndOptionErrors() throws {
        let f = try TasksCLIFixture.get()
        let recipe = f.temporary("bad.yaml")
        try "init: \(f.checkpoint)\ncorpus: \(f.corpus)\nannotations: \(f.annotations)\ntrain:\n  stepz: 3\n".write(toFile: recipe, atomically: true, encoding: .utf8)
        let r = try f.run(["finetune", "caption", "--recipe", recipe])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("error: \(recipe)") && r.stderr.contains("stepz"), r.stderr)
        let tooLong = try f.run(["finetune", "caption", "--recipe", recipe.replacingOccurrences(of: "bad", with: "missing")])
        XCTAssertTrue(tooLong.stderr.contains("no such recipe file"), tooLong.stderr)
        let b = try f.run(["caption", "--checkpoint", f.checkpoint, "--corpus", f.corpus, "--annotations", f.annotations,
                           "--out", f.temporary("x.json"), "--baseline", "nofile"])
        XCTAssertNotEqual(b.status, 0)
        XCTAssertTrue(b.stderr.contains("NAME=FILE"), b.stderr)
        let help = try f.run(["finetune", "caption", "--help"])
        XCTAssertTrue(help.stdout.contains("Example"), help.stdout)
        let help2 = try f.run(["caption", "--help"])
        XCTAssertTrue(help2.stdout.contains("Example") && help2.stdout.contains("--length-penalty"), help2.stdout)
    }
}
