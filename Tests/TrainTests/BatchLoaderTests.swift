import Foundation
import XCTest
import Model
import Recipe
import Tensor
@testable import Tokenize
@testable import Train

/// The streaming data loader (`train.loader`, Sources/Train/BatchLoader.swift): batches drawn on
/// a background thread give the same bytes as drawn inline, however slow the producer or the
/// consumer, and a run stopped and resumed with the loader on ends with the same bytes as one
/// straight through; metrics.jsonl reports the data wait per step.
final class BatchLoaderTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "loader-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func videoBertRecipe(_ corpus: TokenizedCorpus, out: String, loader: String) -> PretrainRecipe {
        var r = PretrainRecipe()
        r.corpus = corpus.path
        r.out = dir + "/" + out
        r.model.hiddenSize = 16; r.model.numLayers = 2; r.model.numHeads = 2; r.model.intermediateSize = 32
        r.model.maxPositions = 64; r.model.dropout = 0.1; r.model.attentionDropout = 0.1
        r.data.maxTextTokens = 12; r.data.maxVideoTokens = 12
        r.train.batchSize = 8; r.train.steps = 12; r.train.lr = 3e-3; r.train.warmupSteps = 3; r.train.gradAccum = 2
        r.train.loader = loader
        r.eval.every = 6; r.eval.batches = 2
        r.checkpoint.every = 4; r.checkpoint.keep = 2
        r.logEvery = 2
        return r
    }

    func files(_ checkpoint: String, _ names: [String]) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in names { out[name] = try Data(contentsOf: URL(fileURLWithPath: checkpoint + "/" + name)) }
        return out
    }

    /// VideoBERT: inline straight through; background with a slow producer straight through;
    /// background with a slow consumer stopped at step 5, resumed with a slow producer — the same
    /// checkpoint bytes all three (the trainer state holds the position of the batches trained on,
    /// not of those drawn ahead).
    func testVideoBertLoaderModesAndResumeGiveTheSameBytes() throws {
        let corpus = try makeSyntheticCorpus()
        let names = ["model.safetensors", "optimizer.safetensors", "trainer_state.json"]
        let inline = try Trainer(recipe: videoBertRecipe(corpus, out: "inline", loader: "inline"), resume: false)
        inline.showProgress = false
        XCTAssertFalse(inline.task.loader.background)
        let expected = try files(try inline.run().checkpoint, names)

        let slowProducer = try Trainer(recipe: videoBertRecipe(corpus, out: "producer", loader: "background"), resume: false)
        slowProducer.showProgress = false
        XCTAssertTrue(slowProducer.task.loader.background)
        slowProducer.task.loader.testDelays = (produce: 0.02, consume: 0)
        let fp = try files(try slowProducer.run().checkpoint, names)
        for k in names { XCTAssertEqual(fp[k], expected[k], "slow producer: \(k)") }

        let first = try Trainer(recipe: videoBertRecipe(corpus, out: "resumed", loader: "background"), resume: false)
        first.showProgress = false
        first.stopAtStep = 5
        first.task.loader.testDelays = (produce: 0, consume: 0.02)
        let s1 = try first.run()
        XCTAssertTrue(s1.stoppedEarly)
        let second = try Trainer(recipe: videoBertRecipe(corpus, out: "resumed", loader: "background"), resume: true)
        second.showProgress = false
        second.task.loader.testDelays = (produce: 0.02, consume: 0)
        let s2 = try second.run()
        XCTAssertEqual(s2.steps, 12)
        let fr = try files(s2.checkpoint, names)
        for k in names { XCTAssertEqual(fr[k], expected[k], "slow consumer, stopped and resumed: \(k)") }

        // The profile line: data wait per step in every train line of metrics.jsonl.
        let train = try MetricsLog.read(dir + "/producer/metrics.jsonl").filter { $0["kind"] as? String == "train" }
        XCTAssertEqual(train.count, 6)
        for line in train {
            let wait = try XCTUnwrap(line["data_wait_s"] as? Double, "\(line)")
            XCTAssertTrue(wait >= 0 && wait < 60, "\(wait)")
        }
    }

    /// CBT (features front-end, gradient accumulation): background with a slow consumer, stopped
    /// and resumed, ends with the bytes of an inline run straight through.
    func testCBTLoaderResumeGivesTheSameBytes() throws {
        let corpus = try makeSyntheticCBTCorpus()
        func make(_ out: String, _ loader: String) throws -> CBTRecipe {
            var r = try RecipeLoader.load(CBTRecipe.self, file: ShippedRecipesTests.recipes + "/cbt-tiny.yaml")
            r.corpus = corpus.path
            r.out = dir + "/" + out
            r.frontend.source = "features"
            r.frontend.mlpHidden = 8
            r.text.hiddenSize = 16; r.text.intermediateSize = 32
            r.visual.hiddenSize = 16; r.visual.intermediateSize = 32
            r.cross.hiddenSize = 16; r.cross.intermediateSize = 32
            r.model.embeddingSize = 16
            r.model.dropout = 0.1; r.model.attentionDropout = 0.1
            r.data.maxTextTokens = 12
            r.data.nceNegatives = 6
            r.train.batchSize = 4; r.train.steps = 8; r.train.lr = 5e-3; r.train.warmupSteps = 2; r.train.gradAccum = 2
            r.train.loader = loader
            r.eval.every = 0; r.eval.batches = 6
            r.checkpoint.every = 4; r.checkpoint.keep = 2
            r.logEvery = 4
            return r
        }
        let names = ["model.safetensors", "text/model.safetensors", "optimizer.safetensors", "trainer_state.json"]
        let a = try CBTTrainer(recipe: make("a", "inline"), resume: false)
        a.showProgress = false
        let expected = try files(try a.run().checkpoint, names)
        let c1 = try CBTTrainer(recipe: make("c", "background"), resume: false)
        c1.showProgress = false
        c1.stopAtStep = 5
        c1.task.loader.testDelays = (produce: 0, consume: 0.02)
        XCTAssertTrue(try c1.run().stoppedEarly)
        let c2 = try CBTTrainer(recipe: make("c", "background"), resume: true)
        c2.showProgress = false
        c2.task.loader.testDelays = (produce: 0.02, consume: 0)
        let s2 = try c2.run()
        XCTAssertEqual(s2.steps, 8)
        let fc = try files(s2.checkpoint, names)
        for k in names { XCTAssertEqual(fc[k], expected[k], "resumed with the loader on: \(k)") }
    }

    /// `train.loader` takes background or inline; anything else is refused naming the key.
    func testLoaderKey() throws {
        XCTAssertEqual(PretrainRecipe().train.loader, "background")
        XCTAssertEqual(CBTRecipe().train.loader, "background")
        let r = try RecipeLoader.load(PretrainRecipe.self, yaml: "train:\n  loader: inline\n")
        XCTAssertEqual(r.train.loader, "inline")
        var bad = Optimization()
        bad.loader = "threads"
        XCTAssertEqual(bad.problem(), "train.loader must be background or inline")
    }
}
