import Foundation
import XCTest
import Model
import Recipe
import Tensor
@testable import Tokenize
@testable import Train

final class TrainerTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "trainer-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func recipe(_ corpus: TokenizedCorpus, out: String, steps: Int = 20) -> PretrainRecipe {
        var r = PretrainRecipe()
        r.corpus = corpus.path
        r.out = out
        r.model.hiddenSize = 16; r.model.numLayers = 2; r.model.numHeads = 2; r.model.intermediateSize = 32
        r.model.maxPositions = 64; r.model.dropout = 0.1; r.model.attentionDropout = 0.1
        r.data.maxTextTokens = 12; r.data.maxVideoTokens = 12
        r.train.batchSize = 8; r.train.steps = steps; r.train.lr = 3e-3; r.train.warmupSteps = 3
        r.eval.every = 10; r.eval.batches = 2
        r.checkpoint.every = 5; r.checkpoint.keep = 2
        r.logEvery = 5
        return r
    }

    /// The checkpoint files that must be identical between runs (recipe.yaml differs: it holds `out`).
    func files(_ checkpoint: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in ["model.safetensors", "optimizer.safetensors", "trainer_state.json", "config.json"] {
            out[name] = try Data(contentsOf: URL(fileURLWithPath: checkpoint + "/" + name))
        }
        return out
    }

    func testLossFallsAndCheckpointsAreHuggingFaceFolders() throws {
        let corpus = try makeSyntheticCorpus()
        var r = recipe(corpus, out: dir + "/run", steps: 60)
        r.eval.every = 20
        // The synthetic val videos use tokens that train never shows; measure learning on train.
        r.eval.split = "train"
        let trainer = try Trainer(recipe: r, resume: false)
        trainer.showProgress = false
        let first = try trainer.evaluate()["loss"]!
        let summary = try trainer.run()
        XCTAssertEqual(summary.steps, 60)
        XCTAssertLessThan(summary.eval["loss"]!, first - 1.0, "held-out loss \(first) → \(summary.eval["loss"]!)")
        // The synthetic corpus makes video-only MFM easy: each video uses its own 10 words.
        XCTAssertGreaterThan(summary.eval["mfm_top5"] ?? 0, 0.1, "chance is 0.05")
        let ckpt = summary.checkpoint
        XCTAssertTrue(ckpt.hasSuffix("step-0000060"))
        for f in ["config.json", "model.safetensors", "vocab.txt", "visual_vocab/vocab.json", "recipe.yaml", "trainer_state.json", "optimizer.safetensors"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: ckpt + "/" + f), f)
        }
        // Only the newest two are kept.
        let kept = try FileManager.default.contentsOfDirectory(atPath: dir + "/run/checkpoints").sorted()
        XCTAssertEqual(kept, ["step-0000055", "step-0000060"])
        // The checkpoint loads back as a model with the same parameters.
        let model = try BertForPreTraining.load(from: ckpt, maxBatch: 2, maxSeq: 16)
        XCTAssertEqual(model.config.visualWords, 100)
        let metrics = try MetricsLog.read(dir + "/run/metrics.jsonl")
        XCTAssertEqual(metrics.filter { $0["kind"] as? String == "train" }.count, 12)
        XCTAssertEqual(metrics.filter { $0["kind"] as? String == "eval" }.count, 3)
        for key in ["loss", "mlm_loss", "mfm_loss", "align_loss", "lr", "tokens_per_s", "seconds", "grad_norm"] {
            XCTAssertNotNil(metrics[0][key], key)
        }
        let svg = try String(contentsOfFile: dir + "/run/loss.svg", encoding: .utf8)
        XCTAssertTrue(svg.contains("<polyline") && svg.contains("train loss") && svg.contains("held-out (train) loss"), svg)
    }

    func testSameSeedSameBytesAndResumeIsExact() throws {
        let corpus = try makeSyntheticCorpus()
        // A: 20 steps straight.
        let a = try Trainer(recipe: recipe(corpus, out: dir + "/a"), resume: false)
        a.showProgress = false
        let sa = try a.run()
        // B: the same recipe, again: identical bytes.
        let b = try Trainer(recipe: recipe(corpus, out: dir + "/b"), resume: false)
        b.showProgress = false
        let sb = try b.run()
        let fa = try files(sa.checkpoint), fb = try files(sb.checkpoint)
        for k in fa.keys.sorted() { XCTAssertEqual(fa[k], fb[k], k) }
        // C: stopped after step 7 (as Ctrl-C would), then resumed to the end.
        let c1 = try Trainer(recipe: recipe(corpus, out: dir + "/c"), resume: false)
        c1.showProgress = false
        c1.stopAtStep = 7
        let s1 = try c1.run()
        XCTAssertTrue(s1.stoppedEarly)
        XCTAssertTrue(s1.checkpoint.hasSuffix("step-0000007"))
        let c2 = try Trainer(recipe: recipe(corpus, out: dir + "/c"), resume: true)
        c2.showProgress = false
        let s2 = try c2.run()
        XCTAssertEqual(s2.steps, 20)
        let fc = try files(s2.checkpoint)
        for k in fa.keys.sorted() { XCTAssertEqual(fc[k], fa[k], "resumed run ends with the same bytes: \(k)") }
        // metrics.jsonl has each step once.
        let steps = try MetricsLog.read(dir + "/c/metrics.jsonl").filter { $0["kind"] as? String == "train" }.map { $0["step"] as! Int }
        XCTAssertEqual(steps, [5, 10, 15, 20])
    }

    func testRefusesToOverwriteAnotherRunAndChangedSettingsOnResume() throws {
        let corpus = try makeSyntheticCorpus()
        let t = try Trainer(recipe: recipe(corpus, out: dir + "/r", steps: 5), resume: false)
        t.showProgress = false
        _ = try t.run()
        XCTAssertThrowsError(try Trainer(recipe: recipe(corpus, out: dir + "/r", steps: 5), resume: false)) { e in
            XCTAssertTrue("\(e)".contains("--resume"), "\(e)")
        }
        var changed = recipe(corpus, out: dir + "/r", steps: 10)
        changed.model.hiddenSize = 32
        XCTAssertThrowsError(try Trainer(recipe: changed, resume: true)) { e in
            XCTAssertTrue("\(e)".contains("different model or data settings"), "\(e)")
        }
    }

    func testNonFiniteLossStopsWithStepAndLastCheckpoint() throws {
        let corpus = try makeSyntheticCorpus()
        var r = recipe(corpus, out: dir + "/nan", steps: 40)
        r.train.lr = 1e30; r.train.warmupSteps = 0; r.train.clipGrad = 0; r.train.weightDecay = 0
        let t = try Trainer(recipe: r, resume: false)
        t.showProgress = false
        XCTAssertThrowsError(try t.run()) { e in
            let s = "\(e)"
            XCTAssertTrue(s.contains("at step "), s)
            XCTAssertTrue(s.contains("last good checkpoint"), s)
        }
    }
}
