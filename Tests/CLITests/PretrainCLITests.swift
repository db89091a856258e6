import Foundation
import XCTest
import TestSupport

/// `videobert pretrain` end to end on a tokenized demo corpus: Ctrl-C saves and stops, --resume
/// finishes, the checkpoint is a Hugging Face folder that `embed` reads.
final class PretrainCLITests: XCTestCase {
    func testCtrlCSavesAndResumeFinishes() throws {
        let dir = NSTemporaryDirectory() + "ptcli-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let root = Repository.root
        XCTAssertEqual(try CLI.run(["demo-corpus", "--out", dir + "/c", "--videos", "4", "--size", "32x32", "--fps", "6"]).status, 0)
        let tok = try CLI.run(["tokenize", "--corpus", dir + "/c/manifest.jsonl", "--out", dir + "/t",
                               "--recipe", root + "/Recipes/tokenize-tiny.yaml", "--set", "text.vocab=" + root + "/Vocab/bert-base-uncased.txt"])
        XCTAssertEqual(tok.status, 0, tok.stderr)
        let args = ["pretrain", "--recipe", root + "/Recipes/tiny.yaml", "--set", "corpus=" + dir + "/t", "--set", "out=" + dir + "/run",
                    "--set", "log_every=1", "--set", "train.steps=400", "--set", "eval.split=train", "--set", "checkpoint.every=1000"]

        // Start, wait for the first logged step, then Ctrl-C.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLI.executable)
        p.arguments = args
        let err = Pipe()
        p.standardError = err
        p.standardOutput = Pipe()
        try p.run()
        let metrics = dir + "/run/metrics.jsonl"
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            if let s = try? String(contentsOfFile: metrics, encoding: .utf8), s.contains("\"step\":1") { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, 130, stderr)
        XCTAssertTrue(stderr.contains("stopped at step"), stderr)
        let saved = try FileManager.default.contentsOfDirectory(atPath: dir + "/run/checkpoints").filter { $0.hasPrefix("step-") }
        XCTAssertEqual(saved.count, 1, "\(saved)")
        let stoppedAt = Int(saved[0].dropFirst(5))!
        XCTAssertGreaterThanOrEqual(stoppedAt, 1)
        XCTAssertLessThan(stoppedAt, 400)

        // Resume and finish a few more steps.
        let r = try CLI.run(args.map { $0 == "train.steps=400" ? "train.steps=\(stoppedAt + 3)" : $0 } + ["--resume", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("resumed from"), r.stderr)
        let summary = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(summary["steps"] as? Int, stoppedAt + 3)
        let ckpt = summary["checkpoint"] as! String

        // The checkpoint is a BERT folder `embed` reads.
        try "{\"text\": \"now let's stir the tomatoes\", \"visual\": [1, 2, 3]}\n".write(toFile: dir + "/in.jsonl", atomically: true, encoding: .utf8)
        let e = try CLI.run(["embed", "--checkpoint", ckpt, "--input", dir + "/in.jsonl", "--out", dir + "/emb.npy"])
        XCTAssertEqual(e.status, 0, e.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/emb.npy"))
    }

    /// `variant: cbt` recipes run through the same command: a corpus tokenized with stored frames,
    /// a few steps of Recipes/cbt-tiny.yaml, a checkpoint whose `text/` folder `embed` reads.
    func testCBTRecipeRunsFromStoredFrames() throws {
        let dir = NSTemporaryDirectory() + "cbtcli-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let root = Repository.root
        XCTAssertEqual(try CLI.run(["demo-corpus", "--out", dir + "/c", "--videos", "4", "--size", "32x32", "--fps", "6"]).status, 0)
        let tok = try CLI.run(["tokenize", "--corpus", dir + "/c/manifest.jsonl", "--out", dir + "/t",
                               "--recipe", root + "/Recipes/tokenize-tiny.yaml", "--set", "text.vocab=" + root + "/Vocab/bert-base-uncased.txt",
                               "--set", "store.frames=true", "--set", "store.frame_size=16", "--set", "store.frames_per_clip=2"])
        XCTAssertEqual(tok.status, 0, tok.stderr)
        let r = try CLI.run(["pretrain", "--recipe", root + "/Recipes/cbt-tiny.yaml", "--set", "corpus=" + dir + "/t", "--set", "out=" + dir + "/run",
                             "--set", "train.steps=3", "--set", "train.batch_size=2", "--set", "eval.split=train", "--set", "eval.batches=1",
                             "--set", "retrieval.max_pairs=4", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("CBT: text 1 × 32, frames front-end"), r.stderr)
        let summary = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(summary["steps"] as? Int, 3)
        let eval = summary["eval"] as! [String: Any]
        XCTAssertNotNil(eval["nce_acc"]); XCTAssertNotNil(eval["cross_t2v_r1"])
        let ckpt = summary["checkpoint"] as! String
        try "{\"text\": \"now let's stir the tomatoes\"}\n".write(toFile: dir + "/in.jsonl", atomically: true, encoding: .utf8)
        let e = try CLI.run(["embed", "--checkpoint", ckpt + "/text", "--input", dir + "/in.jsonl", "--out", dir + "/emb.npy"])
        XCTAssertEqual(e.status, 0, e.stderr)
        // Retrieval with the CBT checkpoint's embeddings (and its cross-modal score).
        for scorer in ["pooled", "cross"] {
            let ret = try CLI.run(["retrieve", "--checkpoint", ckpt, "--corpus", dir + "/t", "--split", "train", "--max", "4",
                                   "--cbt-scorer", scorer, "--json"])
            XCTAssertEqual(ret.status, 0, ret.stderr)
            let report = try JSONSerialization.jsonObject(with: Data(ret.stdout.utf8)) as! [String: Any]
            XCTAssertEqual(report["segments"] as? Int, 4)
            XCTAssertTrue((report["scorer"] as! String).contains(scorer == "cross" ? "cross-modal" : "pooled"))
            let t2v = report["text_to_video"] as! [String: Any]
            XCTAssertEqual((t2v["count"] as! Int), 4)
            XCTAssertEqual((report["chance"] as! [String: Any])["median_rank"] as? Double, 2.5)
        }
        // A captioner fine-tuned from the CBT checkpoint (clip features in) captions through the
        // CLI; the tasks that score visual words refuse it, and a raw CBT checkpoint is pointed
        // to the commands that read it.
        let ft = try CLI.run(["finetune", "caption", "--recipe", root + "/Recipes/finetune-caption-cbt-demo.yaml", "--set", "init=" + ckpt,
                              "--set", "corpus=" + dir + "/t", "--set", "annotations=" + dir + "/c/annotations.json", "--set", "out=" + dir + "/cap",
                              "--set", "train.steps=3", "--set", "train.batch_size=2", "--set", "train.warmup_steps=1",
                              "--set", "data.eval_split=train", "--set", "eval.batches=1", "--json"])
        XCTAssertEqual(ft.status, 0, ft.stderr)
        let tuned = try JSONSerialization.jsonObject(with: Data(ft.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(tuned["input"] as? String, "CBT clip features")
        let captioner = tuned["checkpoint"] as! String
        let cap = try CLI.run(["caption", "--checkpoint", captioner, "--corpus", dir + "/t", "--annotations", dir + "/c/annotations.json",
                               "--split", "train", "--beam", "2", "--max-tokens", "4", "--out", dir + "/captions.json", "--json"])
        XCTAssertEqual(cap.status, 0, cap.stderr)
        let captions = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/captions.json"))) as! [[String: Any]]
        XCTAssertFalse(captions.isEmpty)
        XCTAssertTrue(captions.allSatisfy { ($0["image_id"] as? String)?.contains("#") == true && $0["caption"] is String })
        let zs = try CLI.run(["zero-shot", "--checkpoint", captioner, "--corpus", dir + "/t", "--annotations", dir + "/c/annotations.json",
                              "--labels", dir + "/c/labels.json", "--split", "train"])
        XCTAssertEqual(zs.status, 1)
        XCTAssertTrue(zs.stderr.contains(captioner) && zs.stderr.contains("fine-tuned from a CBT checkpoint"), zs.stderr)
        // `inspect` tells the two apart.
        for (folder, kind) in [(ckpt, "cbt"), (captioner, "cbt-captioner")] {
            let i = try CLI.run(["inspect", folder, "--json"])
            XCTAssertEqual(i.status, 0, i.stderr)
            let info = try JSONSerialization.jsonObject(with: Data(i.stdout.utf8)) as! [String: Any]
            XCTAssertEqual(info["kind"] as? String, kind)
            XCTAssertEqual(info["step"] as? Int, 3)
            XCTAssertGreaterThan(info["parameters"] as! Int, 1000)
            if kind == "cbt-captioner" {
                XCTAssertEqual(info["init"] as? String, ckpt)
                XCTAssertEqual(info["read_by"] as? [String], ["caption"])
                XCTAssertTrue((info["files"] as! [String]).contains("cbt/cbt_config.json"))
            }
        }
        let text = try CLI.run(["inspect", captioner])
        XCTAssertTrue(text.stdout.contains("captioner fine-tuned from a CBT checkpoint") && text.stdout.contains("fine-tuned from: " + ckpt), text.stdout)
        let neither = try CLI.run(["inspect", dir + "/c"])
        XCTAssertEqual(neither.status, 1)
        XCTAssertTrue(neither.stderr.contains("neither a tokenized corpus") && neither.stderr.contains(dir + "/c"), neither.stderr)
        let raw = try CLI.run(["caption", "--checkpoint", ckpt, "--corpus", dir + "/t", "--annotations", dir + "/c/annotations.json",
                               "--split", "train", "--out", dir + "/x.json"])
        XCTAssertEqual(raw.status, 1)
        XCTAssertTrue(raw.stderr.contains("is a CBT checkpoint"), raw.stderr)

        let bad = try CLI.run(["pretrain", "--recipe", root + "/Recipes/cbt-tiny.yaml", "--set", "variant=clip"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains("variant 'clip' is not known"), bad.stderr)
    }

    func testBadRecipeValuesAreNamed() throws {
        let r = try CLI.run(["pretrain", "--recipe", Repository.root + "/Recipes/tiny.yaml", "--set", "train.schedule=sawtooth"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("train.schedule must be linear, cosine or constant"), r.stderr)
        let r2 = try CLI.run(["pretrain", "--recipe", Repository.root + "/Recipes/tiny.yaml", "--set", "model.hiden_size=3"])
        XCTAssertTrue(r2.stderr.hasPrefix("error: --set: unknown key 'model.hiden_size'"), r2.stderr)
    }
}
