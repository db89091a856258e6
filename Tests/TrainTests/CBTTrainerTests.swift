import Foundation
import XCTest
import Model
import Recipe
import Tensor
@testable import Tokenize
@testable import Train

/// A synthetic corpus with stored frames (8×8, 2 per clip) and features (6-d), 6 videos × 8
/// segments as `makeSyntheticCorpus`: video k's words are 1000 + 10k + j, and its clips share a
/// colour of their own (plus per-clip noise), so the context of a masked clip tells which of
/// the batch's clips is its own (masked-frame NCE) and a text tells its video (cross-modal NCE).
func makeSyntheticCBTCorpus(videos: Int = 6, segments: Int = 8, featureDType: NPYDType = .float32) throws -> TokenizedCorpus {
    let dir = syntheticCorporaRoot + "/cbtcorpus-\(UUID().uuidString)"
    let F = 2, S = 8, dim = 6
    let builder = try CorpusBuilder(dir: dir, featureDim: dim, frameShape: [F, S, S, 3], featureDType: featureDType)
    var rng = SeededRNG(seed: 42)
    for k in 0..<videos {
        var segs: [AlignedSegment] = [], words: [Int32] = [], times: [(start: Double, end: Double)] = []
        var frames: [UInt8] = [], features: [Float] = []
        let colour = (0..<3).map { _ in 40 + rng.nextInt(176) }
        for s in 0..<segments {
            let clips = 2 + s % 3
            let begin = words.count
            for j in 0..<clips {
                words.append(Int32(10 * k + (s + j) % 10))
                times.append((Double(words.count), Double(words.count + 1)))
                for _ in 0..<(F * S * S) {
                    for c in 0..<3 { frames.append(UInt8(max(0, min(255, colour[c] + rng.nextInt(61) - 30)))) }
                }
                for d in 0..<dim { features.append(Float(colour[d % 3]) / 128 - 1 + 0.2 * rng.nextGaussian()) }
            }
            let text: [Int32] = (0..<(3 + s % 4)).map { Int32(1000 + 10 * k + ($0 + s) % 10) }
            segs.append(AlignedSegment(start: Double(begin), end: Double(words.count), textIDs: text, clipBegin: begin, clipEnd: words.count))
        }
        try builder.append(TokenizedVideo(id: "v\(k)", split: k < 4 ? "train" : "val", source: nil, duration: Double(words.count),
                                          clipWords: words, clipTimes: times, segments: segs, features: features, frames: frames))
    }
    let level0: [Float] = (0..<10).flatMap { i -> [Float] in [Float(i), 0, 0, 0] }
    let level1: [Float] = (0..<100).flatMap { w -> [Float] in [Float(w / 10), Float(w % 10) * 0.1, 0, 0] }
    try VisualVocabulary(branching: 10, depth: 2, dim: 4, levels: [level0, level1]).save(to: dir + "/vocab")
    var tokens = (0..<2000).map { "w\($0)" }
    tokens[0] = "[PAD]"; tokens[1] = "[unused0]"; tokens[100] = "[UNK]"; tokens[101] = "[CLS]"; tokens[102] = "[SEP]"; tokens[103] = "[MASK]"
    try (tokens.joined(separator: "\n") + "\n").write(toFile: dir + "/text_vocab.txt", atomically: true, encoding: .utf8)
    _ = try builder.finish(textVocab: .init(file: "text_vocab.txt", size: 2000, cased: false,
                                            fingerprint: try CorpusBuilder.fingerprint(of: dir + "/text_vocab.txt")),
                           visualVocab: .init(folder: "vocab", words: 100, branching: 10, depth: 2, dim: 4),
                           clipSeconds: 1, fps: 1, featureSource: "builtin", featureDim: dim, failures: 0)
    return try TokenizedCorpus(path: dir)
}

final class CBTTrainerTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "cbttrainer-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// Recipes/cbt-tiny.yaml with sizes for the synthetic corpus.
    func recipe(_ corpus: TokenizedCorpus, out: String, steps: Int = 12, source: String = "frames") throws -> CBTRecipe {
        var r = try RecipeLoader.load(CBTRecipe.self, file: ShippedRecipesTests.recipes + "/cbt-tiny.yaml")
        r.corpus = corpus.path
        r.out = out
        r.frontend.source = source
        r.frontend.channels = [4, 8]
        r.text.hiddenSize = 16; r.text.intermediateSize = 32
        r.visual.hiddenSize = 16; r.visual.intermediateSize = 32
        r.cross.hiddenSize = 16; r.cross.intermediateSize = 32
        r.model.embeddingSize = 16
        r.data.maxTextTokens = 12
        r.data.nceNegatives = 6
        r.train.batchSize = 4; r.train.steps = steps; r.train.lr = 5e-3; r.train.warmupSteps = 2
        r.eval.every = 0; r.eval.batches = 6
        r.checkpoint.every = 4; r.checkpoint.keep = 2
        r.logEvery = 4
        return r
    }

    /// A short run on the train split: every loss falls, masked-frame NCE accuracy ends above
    /// chance, the front-end's first convolution moves, and the checkpoint has the documented parts.
    func testTinyRunLearnsAndTrainsTheFrontEnd() throws {
        let corpus = try makeSyntheticCBTCorpus()
        var r = try recipe(corpus, out: dir + "/run", steps: 60)
        r.train.lr = 1e-2; r.train.warmupSteps = 6
        r.eval.split = "train"          // learning is measured where it happens
        r.model.dropout = 0; r.model.attentionDropout = 0
        let trainer = try CBTTrainer(recipe: r, resume: false)
        trainer.showProgress = false
        let conv1 = Array(trainer.model.store.parameter("frontend.conv1.weight"))
        let first = try trainer.evaluate()
        let summary = try trainer.run()
        let last = summary.eval
        print("  CBT tiny: \(first.filter { $0.key.hasSuffix("loss") || $0.key.hasSuffix("acc") }.sorted { $0.key < $1.key }) → \(last.filter { $0.key.hasSuffix("loss") || $0.key.hasSuffix("acc") }.sorted { $0.key < $1.key })")
        for key in ["loss", "mlm_loss", "nce_loss", "cross_loss", "pooled_loss"] {
            XCTAssertLessThan(last[key]!, first[key]!, "\(key) did not fall")
        }
        XCTAssertGreaterThan(last["nce_acc"]!, 2 * last["nce_chance"]!, "masked-frame NCE accuracy vs chance \(last["nce_chance"]!)")
        XCTAssertGreaterThan(last["nce_acc"]!, first["nce_acc"]!)
        // Every batch holds the 4 training videos: chance is 1/4 for each text.
        XCTAssertEqual(last["cross_chance"]!, 0.25, accuracy: 1e-12)
        XCTAssertGreaterThan(last["cross_acc"]!, 0.25)
        XCTAssertGreaterThan(last["pooled_acc"]!, 0.25)
        XCTAssertEqual(last["nce_chance"]!, 1.0 / 7, accuracy: 1e-12)
        for key in ["t2v_r1", "v2t_r5", "cross_t2v_r10", "cross_v2t_median_rank", "chance_r1", "retrieval_pairs"] {
            XCTAssertNotNil(last[key], key)
        }
        let moved = zip(conv1, trainer.model.store.parameter("frontend.conv1.weight")).map { abs($0 - $1) }.max()!
        XCTAssertGreaterThan(moved, 1e-3, "the front-end's first convolution did not move")
        let ckpt = summary.checkpoint
        for f in ["cbt_config.json", "model.safetensors", "text/config.json", "text/model.safetensors", "text/vocab.txt",
                  "recipe.yaml", "trainer_state.json", "optimizer.safetensors"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: ckpt + "/" + f), f)
        }
        let names = try SafeTensors.read(ckpt + "/model.safetensors").names
        for prefix in ["frontend.", "visual.", "cross.", "pooled."] { XCTAssertTrue(names.contains { $0.hasPrefix(prefix) }, prefix) }
        XCTAssertTrue(try SafeTensors.read(ckpt + "/optimizer.safetensors").names.contains("m.text.bert.embeddings.word_embeddings.weight"))
        // The text BERT is a BertForPreTraining folder the toolkit (and transformers) reads.
        _ = try BertForPreTraining.load(from: ckpt + "/text", maxBatch: 1, maxSeq: 8)
        let svg = try String(contentsOfFile: dir + "/run/loss.svg", encoding: .utf8)
        XCTAssertTrue(svg.contains("train nce_loss"), "loss.svg draws the CBT losses")
    }

    /// Same recipe and seed → same bytes; stopped at step 5 and resumed → the same bytes as
    /// straight through (features front-end, dropout on, gradient accumulation).
    func testResumeIsExact() throws {
        let corpus = try makeSyntheticCBTCorpus()
        func make(_ out: String) throws -> CBTRecipe {
            var r = try recipe(corpus, out: dir + "/" + out, steps: 8, source: "features")
            r.frontend.mlpHidden = 8
            r.model.dropout = 0.1; r.model.attentionDropout = 0.1
            r.train.gradAccum = 2
            return r
        }
        func files(_ checkpoint: String) throws -> [String: Data] {
            var out: [String: Data] = [:]
            for name in ["model.safetensors", "text/model.safetensors", "optimizer.safetensors", "trainer_state.json", "cbt_config.json"] {
                out[name] = try Data(contentsOf: URL(fileURLWithPath: checkpoint + "/" + name))
            }
            return out
        }
        let a = try CBTTrainer(recipe: make("a"), resume: false)
        a.showProgress = false
        let fa = try files(try a.run().checkpoint)
        let c1 = try CBTTrainer(recipe: make("c"), resume: false)
        c1.showProgress = false
        c1.stopAtStep = 5
        let s1 = try c1.run()
        XCTAssertTrue(s1.stoppedEarly)
        let c2 = try CBTTrainer(recipe: make("c"), resume: true)
        c2.showProgress = false
        let s2 = try c2.run()
        XCTAssertEqual(s2.steps, 8)
        let fc = try files(s2.checkpoint)
        for k in fa.keys.sorted() { XCTAssertEqual(fc[k], fa[k], "resumed run ends with the same bytes: \(k)") }
        var changed = try make("c")
        changed.visual.hiddenSize = 32
        XCTAssertThrowsError(try CBTTrainer(recipe: changed, resume: true)) { e in
            XCTAssertTrue("\(e)".contains("different model or data settings"), "\(e)")
        }
    }

    /// The shipped CBT recipes load and pass their checks; `variant` picks the recipe type;
    /// unknown keys and settings that do not apply are errors naming them.
    func testRecipes() throws {
        for name in ["cbt-tiny.yaml", "cbt-demo.yaml", "cbt-features.yaml"] {
            let path = ShippedRecipesTests.recipes + "/" + name
            XCTAssertEqual(try RecipeLoader.topLevelString("variant", file: path), "cbt", name)
            let r = try RecipeLoader.load(CBTRecipe.self, file: path)
            XCTAssertNil(r.problem(), name)
        }
        let features = try RecipeLoader.load(CBTRecipe.self, file: ShippedRecipesTests.recipes + "/cbt-features.yaml")
        XCTAssertEqual(features.frontend.source, "features")
        XCTAssertEqual(try RecipeLoader.topLevelString("variant", file: ShippedRecipesTests.recipes + "/tiny.yaml"), nil)
        XCTAssertEqual(try RecipeLoader.topLevelString("variant", file: nil, overrides: ["variant=cbt"]), "cbt")
        XCTAssertThrowsError(try RecipeLoader.load(CBTRecipe.self, yaml: "variant: cbt\nvisual:\n  depth: 3\n", name: "x.yaml")) { e in
            XCTAssertTrue("\(e)".contains("visual.depth") && "\(e)".contains("x.yaml"), "\(e)")
        }
        var r = CBTRecipe()
        r.corpus = "c"
        XCTAssertNil(r.problem())
        // VideoBERT's loss weights are not CBT settings; a CBT checkpoint's recipe.yaml written
        // when they were (always 1.0) still loads.
        XCTAssertThrowsError(try RecipeLoader.load(CBTRecipe.self, yaml: "variant: cbt\ntrain:\n  mfm_weight: 2\n", name: "x.yaml")) { e in
            XCTAssertTrue("\(e)".contains("train.mfm_weight") && "\(e)".contains("objectives.mlm_weight") && "\(e)".contains("x.yaml"), "\(e)")
        }
        let old = try RecipeLoader.load(CBTRecipe.self, yaml: "variant: cbt\ncorpus: c\ntrain:\n  lr: 0.001\n  mlm_weight: 1.0\n  mfm_weight: 1\n  align_weight: 1.0\n")
        XCTAssertEqual(old.train.lr, 1e-3)
        XCTAssertFalse(try RecipeLoader.yaml(old).contains("mfm_weight") || RecipeLoader.yaml(old).contains("align_weight"), "retired keys are not written back")
        r = CBTRecipe(); r.corpus = "c"; r.objectives.pooled = "cosine"
        XCTAssertEqual(r.problem(), "objectives.pooled must be infonce, hinge, variable_margin or none")
        var v = PretrainRecipe()
        v.corpus = "c"; v.variant = "cbt"
        XCTAssertNotNil(v.problem())
    }

    /// A corpus without stored frames is an error that says which tokenize option stores them.
    func testMissingFramesAreNamed() throws {
        let corpus = try makeSyntheticCorpus()
        var r = CBTRecipe()
        r.corpus = corpus.path
        r.out = dir + "/x"
        XCTAssertThrowsError(try CBTTrainer(recipe: r, resume: false)) { e in
            XCTAssertTrue("\(e)".contains("store.frames"), "\(e)")
        }
    }
}
