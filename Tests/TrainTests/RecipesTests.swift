import Foundation
import XCTest
import TestSupport
import Recipe
import Tokenize
@testable import Train

/// Every shipped recipe loads with no unknown key, no wrong type, and passes its checks.
final class ShippedRecipesTests: XCTestCase {
    static let recipes = Repository.recipes

    func testEveryRecipeLoads() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.recipes).filter { $0.hasSuffix(".yaml") }.sorted()
        XCTAssertTrue(names.contains("tiny.yaml") && names.contains("tokenize-paper.yaml"), "\(names)")
        for name in names {
            let path = Self.recipes + "/" + name
            if name.hasPrefix("tokenize-") {
                var r = try RecipeLoader.load(TokenizeRecipe.self, file: path)
                if r.features.source == "npy" { r.features.dir = "/features" }
                XCTAssertNil(r.problem(), name)
            } else if name.hasPrefix("cbt-") {
                continue  // checked by the CBT tests
            } else if name.hasPrefix("fusion-") {
                XCTAssertNil(try RecipeLoader.load(FusionRecipe.self, file: path).problem(), name)
            } else if name.hasPrefix("finetune-") {
                continue  // checked by the Tasks tests
            } else {
                let r = try RecipeLoader.load(PretrainRecipe.self, file: path)
                XCTAssertNil(r.problem(), name)
            }
        }
    }

    func testPaperDefaults() throws {
        let r = try RecipeLoader.load(TokenizeRecipe.self, file: Self.recipes + "/tokenize-paper.yaml")
        XCTAssertEqual(r.frames.fps, 20)
        XCTAssertEqual(r.framesPerClip, 30)
        XCTAssertEqual(r.kmeans.branching, 12)
        XCTAssertEqual(r.kmeans.depth, 4)
        let large = try RecipeLoader.load(PretrainRecipe.self, file: Self.recipes + "/videobert-large.yaml")
        XCTAssertEqual(large.model.numLayers, 24); XCTAssertEqual(large.model.hiddenSize, 1024); XCTAssertEqual(large.model.numHeads, 16)
        XCTAssertEqual(large.train.batchSize * large.train.gradAccum, 128)
    }

    func testLearningRateSchedule() throws {
        var r = PretrainRecipe()
        r.train.lr = 1; r.train.warmupSteps = 10; r.train.steps = 110
        XCTAssertEqual(r.learningRate(step: 5), 0.5, accuracy: 1e-12)
        XCTAssertEqual(r.learningRate(step: 10), 1, accuracy: 1e-12)
        XCTAssertEqual(r.learningRate(step: 60), 0.5, accuracy: 1e-12)
        XCTAssertEqual(r.learningRate(step: 110), 0, accuracy: 1e-12)
        r.train.schedule = "cosine"
        XCTAssertEqual(r.learningRate(step: 60), 0.5, accuracy: 1e-12)
        XCTAssertEqual(r.learningRate(step: 35), 0.5 * (1 + cos(Double.pi / 4)), accuracy: 1e-12)
        r.train.schedule = "constant"
        XCTAssertEqual(r.learningRate(step: 100), 1)
    }

    /// Every training loop reads one optimisation section: the captioner's `train:` gives
    /// pretraining's for the same values (without accumulation), and so the same schedule.
    func testRecipesShareOneOptimizerSection() throws {
        var p = PretrainRecipe()
        p.train.lr = 3e-4; p.train.warmupSteps = 7; p.train.steps = 50; p.train.schedule = "cosine"; p.train.minLRRatio = 0.1
        p.train.weightDecay = 0.02; p.train.clipGrad = 0.5; p.train.seed = 3; p.train.batchSize = 6
        var c = CaptionRecipe()
        c.train.lr = 3e-4; c.train.warmupSteps = 7; c.train.steps = 50; c.train.schedule = "cosine"; c.train.minLRRatio = 0.1
        c.train.weightDecay = 0.02; c.train.clipGrad = 0.5; c.train.seed = 3; c.train.batchSize = 6
        XCTAssertEqual(p.train.optimization, c.train.optimizer)
        for step in [1, 7, 8, 30, 50] { XCTAssertEqual(p.learningRate(step: step), c.learningRate(step: step)) }
        XCTAssertEqual(c.train.optimizer.gradAccum, 1)
    }

    /// `train.anticipation_weight` is a forecaster's setting: a captioner's run fingerprint does not
    /// read it (so caption runs started before it existed resume), a forecaster's does.
    func testAnticipationWeightIsInTheForecasterFingerprintOnly() throws {
        var c = CaptionRecipe()
        c.initFrom = "i"; c.corpus = "c"; c.annotations = "a"
        let base = CaptionFineTuner.fingerprint(c)
        c.train.anticipationWeight = 3
        XCTAssertEqual(CaptionFineTuner.fingerprint(c), base)
        c.target = .nextStep
        let forecaster = CaptionFineTuner.fingerprint(c)
        c.train.anticipationWeight = 1
        XCTAssertNotEqual(CaptionFineTuner.fingerprint(c), forecaster)
        XCTAssertTrue(try RecipeLoader.yaml(c).contains("\n  anticipation_weight: "))
        c.target = .caption
        XCTAssertFalse(try RecipeLoader.yaml(c).replacingOccurrences(of: "\n  anticipation_weight: 1e+0", with: "").contains("anticipation"))
        let loaded = try RecipeLoader.load(CaptionRecipe.self, yaml: "init: i\ntrain:\n  anticipation_weight: 0.5\n")
        XCTAssertEqual(loaded.train.anticipationWeight, 0.5)
        XCTAssertThrowsError(try RecipeLoader.load(CaptionRecipe.self, yaml: "train:\n  anticipation_weight: -1\n"))
    }

    /// VideoBERT's `train:` section is the shared optimisation settings plus its loss weights, side
    /// by side in the file: read, overridden and written back flat (`train.lr`, `train.mlm_weight`).
    func testVideoBertTrainSectionIsOptimizationPlusItsWeights() throws {
        let r = try RecipeLoader.load(PretrainRecipe.self, yaml: "corpus: c\ntrain:\n  lr: 0.0003\n  mfm_weight: 0.5\n", name: "x.yaml",
                                      overrides: ["train.align_weight=0.25", "train.grad_accum=2"])
        XCTAssertEqual(r.train.lr, 3e-4)
        XCTAssertEqual(r.train.optimization.gradAccum, 2)
        XCTAssertEqual([r.train.mlmWeight, r.train.mfmWeight, r.train.alignWeight], [1, 0.5, 0.25])
        let yaml = try RecipeLoader.yaml(r)
        XCTAssertTrue(yaml.contains("\n  mfm_weight: ") && yaml.contains("\n  grad_accum: 2") && !yaml.contains("optimization"), yaml)
        XCTAssertEqual(try RecipeLoader.load(PretrainRecipe.self, yaml: yaml, name: "again.yaml"), r)
    }
}

/// The CBT memory estimate counts the convolutional front-end over every frame of a batch.
final class CBTMemoryEstimateTests: XCTestCase {
    func testConvFrontEndIsCounted() throws {
        // One 3×3 conv of 8 channels over 4×4 frames: im2col 9·3·16 + 2·8·16 + pooled 8·4 = 720
        // values per frame, with gradients ×2, ×4 bytes; parameters (27 + 1)·8 with grads and moments.
        let one = try XCTUnwrap(MemoryEstimate.convFrontEnd(channels: [8], size: 4, frames: 10))
        XCTAssertEqual(one.activationBytes, 720 * 10 * 8)
        XCTAssertEqual(one.parameterBytes, 28 * 8 * 16)
        var r = CBTRecipe()
        r.corpus = "c"
        let without = try XCTUnwrap(r.memoryEstimate(textConfig: nil))
        let with = try XCTUnwrap(r.memoryEstimate(textConfig: nil, frames: (perClip: 4, size: 32)))
        XCTAssertGreaterThan(with.total, without.total)
        r.frontend.channels = [4096, 8192, 16384]
        let wide = try XCTUnwrap(r.memoryEstimate(textConfig: nil, frames: (perClip: 4, size: 32)))
        XCTAssertGreaterThan(wide.total, 64 << 30, "wide convolutions over every frame of a batch need far more than a machine")
        r.frontend.source = "features"
        XCTAssertEqual(r.memoryEstimate(textConfig: nil, frames: (perClip: 4, size: 32))?.total, without.total)
        XCTAssertNil(MemoryEstimate.convFrontEnd(channels: [1 << 20], size: 1 << 20, frames: 1 << 20), "overflow is nil, not a trap")
    }
}
