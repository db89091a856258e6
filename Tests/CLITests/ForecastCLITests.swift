import Foundation
import TestSupport
import XCTest

/// `videobert finetune next-step` then `videobert next-step` with the forecaster it wrote, on the
/// tasks fixture's corpus (12 videos of 3 steps; train v0–v7, val v8–v9, test v10–v11) with step
/// annotations written here: every train video goes "cut the garlic" → "stir the rice" → "pour the
/// eggs", every val and test video "cut the garlic" → "pour the eggs" → "stir the rice". The train
/// and test transitions differ, so a bigram counted on the test split would be perfect on it and
/// one counted on the train split (as it must be) is wrong on every test query.
final class ForecastCLITests: XCTestCase {
    static let train = [("cut", "garlic"), ("stir", "rice"), ("pour", "eggs")]
    static let heldOut = [("cut", "garlic"), ("pour", "eggs"), ("stir", "rice")]

    func annotations(_ f: TasksCLIFixture) throws -> String {
        var database: [String: Any] = [:]
        for v in 0..<12 {
            let split = v < 8 ? "train" : v < 10 ? "val" : "test"
            let steps = (v < 8 ? Self.train : Self.heldOut).enumerated().map { i, s -> [String: Any] in
                ["id": i, "segment": [Double(3 * i), Double(3 * i + 3)], "sentence": "\(s.0) the \(s.1)", "verb": s.0, "noun": s.1]
            }
            database["v\(v)"] = ["subset": split, "annotations": steps]
        }
        let path = f.temporary("next-steps.json")
        try JSONSerialization.data(withJSONObject: ["database": database], options: [.sortedKeys]).write(to: URL(fileURLWithPath: path))
        return path
    }

    func recipe(_ f: TasksCLIFixture, annotations: String, out: String, steps: Int) throws -> String {
        let path = f.temporary("next-step.yaml")
        try """
        init: \(f.checkpoint)
        corpus: \(f.corpus)
        annotations: \(annotations)
        out: \(out)
        data:
          max_video_tokens: 8
          max_caption_tokens: 6
        train:
          batch_size: 8
          steps: \(steps)
          lr: 0.002
          warmup_steps: 1
          schedule: constant
        eval:
          every: 0
          batches: 1
        checkpoint:
          every: 3
          keep: 10
        log_every: 1
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testFinetuneReducesLossResumesExactlyAndNextStepReadsIt() throws {
        let f = try TasksCLIFixture.get()
        let ann = try annotations(f)
        // 24 steps straight: the next-step loss falls.
        let longOut = f.temporary("next-step-long")
        let long = try f.json(try f.run(["finetune", "next-step", "--recipe", try recipe(f, annotations: ann, out: longOut, steps: 24), "--json"]))
        XCTAssertEqual(long["steps"] as? Int, 24)
        XCTAssertEqual(long["train_captions"] as? Int, 16, "8 train videos × 2 steps followed by a next step")
        let lines = try String(contentsOfFile: longOut + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").compactMap {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let losses = lines.filter { $0["kind"] as? String == "train" }.compactMap { $0["loss"] as? Double }
        XCTAssertEqual(losses.count, 24)
        let first = losses.prefix(4).reduce(0, +) / 4, last = losses.suffix(4).reduce(0, +) / 4
        XCTAssertLessThan(last, 0.6 * first, "next-step loss \(first) → \(last)")
        // The anticipation head trains with it (the next step's verb and noun from the video alone).
        let heads = lines.filter { $0["kind"] as? String == "train" }.compactMap { $0["anticipation_loss"] as? Double }
        XCTAssertEqual(heads.count, 24)
        let headFirst = heads.prefix(4).reduce(0, +) / 4, headLast = heads.suffix(4).reduce(0, +) / 4
        XCTAssertLessThan(headLast, 0.8 * headFirst, "anticipation loss \(headFirst) → \(headLast)")

        // 6 steps straight, and 3 then --resume to 6: the same weights, bit for bit.
        let straightOut = f.temporary("next-step-straight"), resumedOut = f.temporary("next-step-resumed")
        let straight = try f.json(try f.run(["finetune", "next-step", "--recipe", try recipe(f, annotations: ann, out: straightOut, steps: 6), "--json"]))
        let resumedRecipe = try recipe(f, annotations: ann, out: resumedOut, steps: 3)
        _ = try f.json(try f.run(["finetune", "next-step", "--recipe", resumedRecipe, "--json"]))
        let resumed = try f.json(try f.run(["finetune", "next-step", "--recipe", resumedRecipe, "--set", "train.steps=6", "--resume", "--json"]))
        let a = try XCTUnwrap(straight["checkpoint"] as? String), b = try XCTUnwrap(resumed["checkpoint"] as? String)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: a + "/model.safetensors")),
                       try Data(contentsOf: URL(fileURLWithPath: b + "/model.safetensors")))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: a + "/anticipation.safetensors")),
                       try Data(contentsOf: URL(fileURLWithPath: b + "/anticipation.safetensors")))
        // A caption run cannot resume it (the target is part of the run's fingerprint).
        let asCaption = try f.run(["finetune", "caption", "--recipe", resumedRecipe, "--set", "train.steps=9", "--resume"])
        XCTAssertNotEqual(asCaption.status, 0)

        // The checkpoint is a forecaster.
        let info = try f.json(try f.run(["inspect", a, "--json"]))
        XCTAssertEqual(info["kind"] as? String, "videobert-forecaster")
        XCTAssertEqual(info["init"] as? String, f.checkpoint)

        // next-step ranks with the fine-tuned generator: another checkpoint, other scores.
        func evaluate(_ checkpoint: String, split: String = "test") throws -> [String: Any] {
            let r = try f.json(try f.run(["next-step", "--checkpoint", checkpoint, "--corpus", f.corpus, "--annotations", ann, "--split", split,
                                          "--candidates", "3", "--beam", "1", "--max-tokens", "6", "--json"]))
            return try XCTUnwrap(r["forecaster"] as? [String: Any])
        }
        let early = try evaluate(longOut + "/checkpoints/step-0000003"), late = try evaluate(long["checkpoint"] as! String)
        XCTAssertEqual(early["queries"] as? Int, 4)
        func scores(_ r: [String: Any]) -> [Double] { (r["examples"] as? [[String: Any]] ?? []).compactMap { $0["model_score"] as? Double } }
        XCTAssertEqual(scores(early).count, 4)
        XCTAssertNotEqual(scores(early), scores(late))
        XCTAssertEqual((late["ranking"] as? [[String: Any]])?.count, 6, "model, bigram, unigram, frequency, persistence, chance")
        XCTAssertEqual((late["generation"] as? [[String: Any]])?.count, 4)
        XCTAssertEqual(late["labelled_queries"] as? Int, 4)
        XCTAssertEqual((late["verdicts"] as? [String])?.count, 6, "sentence, CIDEr, verb and noun top-1 and top-5")
        // The anticipation head's row first, from the current video alone, with top-5.
        let anticipation = try XCTUnwrap(late["anticipation"] as? [[String: Any]])
        XCTAssertEqual(anticipation.map { ($0["system"] as? String ?? "").components(separatedBy: " (")[0] },
                       ["model: anticipation head", "model: labels its generated sentence names", "step-transition bigram",
                        "frequency", "persistence", "chance"])
        XCTAssertNotNil(anticipation[0]["verb_top5"] as? Double)
        XCTAssertNil(anticipation[1]["verb_top5"] as? Double)
        XCTAssertTrue((late["verdicts"] as? [String])?[2].contains("anticipation head, given the current video alone") == true)
        // Three verbs and three nouns: every top-5 holds the truth; the bigram's top-5 too.
        XCTAssertEqual(anticipation[0]["verb_top5"] as? Double, 1)
        XCTAssertEqual(anticipation[2]["noun_top5"] as? Double, 1)

        // A forecaster without the head (as trained before it existed) still evaluates: the
        // labels of its generated sentence are the model's row.
        let headless = f.temporary("next-step-headless")
        try FileManager.default.copyItem(atPath: a, toPath: headless)
        try FileManager.default.removeItem(atPath: headless + "/anticipation.safetensors")
        let old = try evaluate(headless)
        let oldRows = try XCTUnwrap(old["anticipation"] as? [[String: Any]])
        XCTAssertEqual(oldRows.count, 5)
        XCTAssertTrue((oldRows[0]["system"] as? String)?.hasPrefix("model: labels its generated sentence") == true)
        XCTAssertEqual((old["verdicts"] as? [String])?.count, 4)
        XCTAssertEqual(scores(old), scores(try evaluate(a)), "the generator is the same with or without the head")

        // The bigram is counted on the train split: wrong on every test query, right on every train one.
        func row(_ r: [String: Any], _ table: String, _ prefix: String) -> [String: Any]? {
            (r[table] as? [[String: Any]])?.first { ($0["system"] as? String)?.hasPrefix(prefix) == true }
        }
        XCTAssertEqual(row(late, "anticipation", "step-transition bigram")?["verb_top1"] as? Double, 0)
        XCTAssertEqual(row(late, "anticipation", "step-transition bigram")?["noun_top1"] as? Double, 0)
        XCTAssertEqual((row(late, "ranking", "step-transition bigram")?["accuracy"] as? [String: Any])?["accuracy_at_1"] as? Double, 0)
        let onTrain = try evaluate(long["checkpoint"] as! String, split: "train")
        XCTAssertEqual(row(onTrain, "anticipation", "step-transition bigram")?["verb_top1"] as? Double, 1)
        XCTAssertEqual((row(onTrain, "ranking", "step-transition bigram")?["accuracy"] as? [String: Any])?["accuracy_at_1"] as? Double, 1)
        let noSteps = try f.run(["next-step", "--checkpoint", a, "--corpus", f.corpus])
        XCTAssertEqual(noSteps.status, 1)
        XCTAssertTrue(noSteps.stderr.contains("--annotations") && noSteps.stderr.contains(a), noSteps.stderr)
        // The table says whether the model beats the bigram.
        let table = try f.run(["next-step", "--checkpoint", a, "--corpus", f.corpus, "--annotations", ann, "--candidates", "3", "--beam", "2"])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertTrue(table.stdout.contains("the step-transition bigram") && table.stdout.contains("anticipation"), table.stdout)
    }

    func testNextStepErrors() throws {
        let f = try TasksCLIFixture.get()
        let ann = try annotations(f)
        // A pretrained checkpoint keeps the zero-shot mode and refuses --annotations.
        let pre = try f.run(["next-step", "--checkpoint", f.checkpoint, "--corpus", f.corpus, "--annotations", ann])
        XCTAssertEqual(pre.status, 1)
        XCTAssertTrue(pre.stderr.contains("forecaster") && pre.stderr.contains(f.checkpoint), pre.stderr)
        // A caption recipe cannot set the next-step target.
        let r = try recipe(f, annotations: ann, out: f.temporary("x"), steps: 1)
        let caption = try f.run(["finetune", "caption", "--recipe", r, "--set", "target=next-step"])
        XCTAssertEqual(caption.status, 1)
        XCTAssertTrue(caption.stderr.contains("finetune next-step"), caption.stderr)
        let help = try f.run(["finetune", "next-step", "--help"])
        XCTAssertTrue(help.stdout.contains("Example"), help.stdout)
    }

    /// From a CBT checkpoint (clip features in): the forecaster trains, is a cbt-forecaster, and
    /// `next-step` evaluates it through the CBT visual path.
    func testForecasterFromCBTCheckpoint() throws {
        let dir = NSTemporaryDirectory() + "forecast-cbt-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let root = Repository.root
        XCTAssertEqual(try CLI.run(["demo-corpus", "--out", dir + "/c", "--videos", "4", "--size", "32x32", "--fps", "6"]).status, 0)
        let tok = try CLI.run(["tokenize", "--corpus", dir + "/c/manifest.jsonl", "--out", dir + "/t",
                               "--recipe", root + "/Recipes/tokenize-tiny.yaml", "--set", "text.vocab=" + root + "/Vocab/bert-base-uncased.txt",
                               "--set", "store.frames=true", "--set", "store.frame_size=16", "--set", "store.frames_per_clip=2"])
        XCTAssertEqual(tok.status, 0, tok.stderr)
        let quiet = ["VIDEOBERT_QUIET": "1"]
        let pre = try CLI.run(["pretrain", "--recipe", root + "/Recipes/cbt-tiny.yaml", "--set", "corpus=" + dir + "/t", "--set", "out=" + dir + "/run",
                               "--set", "train.steps=2", "--set", "train.batch_size=2", "--set", "eval.split=train", "--set", "eval.batches=1",
                               "--set", "retrieval.max_pairs=4", "--json"], env: quiet)
        XCTAssertEqual(pre.status, 0, pre.stderr)
        let ckpt = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(pre.stdout.utf8)) as? [String: Any])?["checkpoint"] as? String)
        let ft = try CLI.run(["finetune", "next-step", "--recipe", root + "/Recipes/finetune-caption-cbt-demo.yaml", "--set", "init=" + ckpt,
                              "--set", "corpus=" + dir + "/t", "--set", "annotations=" + dir + "/c/annotations.json", "--set", "out=" + dir + "/fc",
                              "--set", "train.steps=2", "--set", "train.batch_size=2", "--set", "train.warmup_steps=1",
                              "--set", "data.eval_split=train", "--set", "eval.batches=1", "--json"], env: quiet)
        XCTAssertEqual(ft.status, 0, ft.stderr)
        let tuned = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(ft.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(tuned["input"] as? String, "CBT clip features")
        let forecaster = try XCTUnwrap(tuned["checkpoint"] as? String)
        let info = try JSONSerialization.jsonObject(with: Data(try CLI.run(["inspect", forecaster, "--json"]).stdout.utf8)) as? [String: Any]
        XCTAssertEqual(info?["kind"] as? String, "cbt-forecaster")
        let r = try CLI.run(["next-step", "--checkpoint", forecaster, "--corpus", dir + "/t", "--annotations", dir + "/c/annotations.json",
                             "--split", "train", "--candidates", "3", "--beam", "1", "--max-tokens", "4", "--json"], env: quiet)
        XCTAssertEqual(r.status, 0, r.stderr)
        let report = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])?["forecaster"] as? [String: Any])
        XCTAssertGreaterThan(report["queries"] as? Int ?? 0, 0)
        XCTAssertEqual((report["anticipation"] as? [Any])?.count, 6, "the demo annotations give verb and noun: the head's row too")
    }
}
