import Foundation
import XCTest
import TestSupport
import Model
import Recipe
import Tensor
@testable import Tasks
import Train

/// Captioners fine-tuned from CBT checkpoints (clip features in): the task world with stored
/// clip features (one-hot visual words plus noise), a short CBT run on it (Recipes/cbt-tiny.yaml
/// over features), then caption fine-tuning from that checkpoint, its files, exact resume,
/// generation, and which tasks accept such a checkpoint.
final class CBTCaptioningTests: XCTestCase {
    /// One world and one CBT checkpoint per test process (a second or two in a debug build).
    nonisolated(unsafe) private static var shared: (dir: String, world: (corpus: String, annotations: String, labels: String), cbt: String)?
    private static let lock = NSLock()

    static func fixture() throws -> (dir: String, world: (corpus: String, annotations: String, labels: String), cbt: String) {
        lock.lock(); defer { lock.unlock() }
        if let shared { return shared }
        atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "videobert-test-corpora-\(getpid())") }
        let dir = NSTemporaryDirectory() + "videobert-test-corpora-\(getpid())/cbt-caption-\(UUID().uuidString)"
        let world = try TaskWorld.write(to: dir, clipFeatures: true)
        let recipes = Repository.recipes
        var r = try RecipeLoader.load(CBTRecipe.self, file: recipes + "/cbt-tiny.yaml")
        r.corpus = world.corpus
        r.out = dir + "/cbt"
        r.frontend.source = "features"
        r.data.maxClips = 8
        r.text.numLayers = 2
        r.train.steps = 60; r.eval.every = 0; r.eval.batches = 1; r.retrieval.maxPairs = 8
        r.checkpoint.every = 10
        let trainer = try CBTTrainer(recipe: r, resume: false)
        trainer.showProgress = false
        let summary = try trainer.run()
        shared = (dir, world, summary.checkpoint)
        return shared!
    }

    var dir: String!
    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "cbt-captioning-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func recipe(init initFrom: String, world: (corpus: String, annotations: String, labels: String), out: String, steps: Int) -> CaptionRecipe {
        var r = CaptionRecipe()
        r.initFrom = initFrom
        r.corpus = world.corpus
        r.annotations = world.annotations
        r.out = out
        r.data.maxVideoTokens = 8; r.data.maxCaptionTokens = 8
        r.train.batchSize = 16; r.train.steps = steps; r.train.lr = 5e-3; r.train.warmupSteps = 10; r.train.dropout = 0.1
        r.eval.every = 0; r.eval.batches = 4
        r.checkpoint.every = 10; r.checkpoint.keep = 2
        r.logEvery = 10
        return r
    }

    /// Fine-tuning from the CBT checkpoint learns to caption held-out steps from their clip
    /// features alone (the caption's noun and verb are in no text the model reads), writes a
    /// checkpoint `videobert caption` reads, and resumes bit-exactly.
    func testFineTuningFromCBTLearnsFromClipFeaturesAndResumesExactly() throws {
        let f = try Self.fixture()
        var long = recipe(init: f.cbt, world: f.world, out: dir + "/a", steps: 1000)
        long.checkpoint.every = 1000; long.logEvery = 50
        let a = try CaptionFineTuner(recipe: long, resume: false)
        a.showProgress = false
        let before = a.evaluate()
        let sa = try a.run()
        XCTAssertEqual(sa.input, "CBT clip features")
        print("  CBT captioner: held-out loss \(before["loss"]!) → \(sa.eval["loss"]!), final train loss \(sa.finalLoss)")
        XCTAssertLessThan(sa.eval["loss"]!, before["loss"]! - 1, "held-out loss \(before["loss"]!) → \(sa.eval["loss"]!)")
        for file in ["config.json", "model.safetensors", "vocab.txt", "clip_projection.safetensors", "cbt/cbt_config.json",
                     "cbt/model.safetensors", "cbt/recipe.yaml", "recipe.yaml", "trainer_state.json", "optimizer.safetensors"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: sa.checkpoint + "/" + file), file)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: sa.checkpoint + "/visual_vocab"))
        XCTAssertTrue(try SafeTensors.read(sa.checkpoint + "/optimizer.safetensors").names.contains("m.clip_projection.weight"))

        // Generated captions name the step's noun and verb far above the frequency baseline.
        let corpus = try TaskCorpus(path: f.world.corpus)
        let annotations = try StepAnnotations.load(f.world.annotations)
        let model = try TaskModel(checkpoint: sa.checkpoint, corpus: corpus, maxBatch: 16, allowClipFeatures: true)
        XCTAssertNotNil(model.clipInput)
        var options = GenerationOptions()
        options.beam = 1; options.maxTokens = 6; options.maxVideoTokens = 8
        var verbs = 0, nouns = 0, total = 0
        var outputs: [CaptionTask.Output] = []
        for split in ["val", "test"] {
            let out = try CaptionTask.run(model: model, corpus: corpus, annotations: annotations, split: split, options: options, showProgress: false)
            let steps = try corpus.resolve(annotations).withVideo(in: split)
            XCTAssertEqual(out.results.count, steps.count)
            for (step, result) in zip(steps, out.results) {
                let words = Set(result.caption.split(separator: " ").map(String.init))
                let truth = step.step.captions[0].split(separator: " ").map(String.init)   // "<verb> the <noun>"
                if words.contains(truth[0]) { verbs += 1 }
                if words.contains(truth[2]) { nouns += 1 }
            }
            total += steps.count
            outputs.append(out)
        }
        print("  CBT captioner, val + test: verb in caption \(verbs)/\(total), noun \(nouns)/\(total)")
        // Chance: 1/4 of the verbs and 1/6 of the nouns (every label occurs in every split).
        XCTAssertGreaterThan(Double(verbs + nouns) / Double(2 * total), 0.5)
        let out = outputs[1]
        let model0 = out.report.rows[0], frequent = out.report.rows[1]
        XCTAssertGreaterThan(model0.scores.cider, frequent.scores.cider)

        // Stop at step 7, resume: the same bytes as the uninterrupted run.
        let c1 = try CaptionFineTuner(recipe: recipe(init: f.cbt, world: f.world, out: dir + "/c", steps: 20), resume: false)
        c1.showProgress = false
        c1.stopAtStep = 7
        XCTAssertTrue(try c1.run().stoppedEarly)
        let c2 = try CaptionFineTuner(recipe: recipe(init: f.cbt, world: f.world, out: dir + "/c", steps: 20), resume: true)
        c2.showProgress = false
        let sc = try c2.run()
        let d = try CaptionFineTuner(recipe: recipe(init: f.cbt, world: f.world, out: dir + "/d", steps: 20), resume: false)
        d.showProgress = false
        let sd = try d.run()
        for name in ["model.safetensors", "clip_projection.safetensors", "optimizer.safetensors", "trainer_state.json"] {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: sc.checkpoint + "/" + name)),
                           try Data(contentsOf: URL(fileURLWithPath: sd.checkpoint + "/" + name)), name)
        }
    }

    /// `train.tune_visual`: the CBT front-end and visual transformer train with the captioner
    /// (their saved weights move; the frozen rest of the CBT store does not), the run resumes
    /// bit-exactly, and `caption` reads the tuned visual path from the checkpoint's cbt/.
    func testTuningTheVisualPathTrainsItAndResumesExactly() throws {
        let f = try Self.fixture()
        func tuned(_ out: String, steps: Int) -> CaptionRecipe {
            var r = recipe(init: f.cbt, world: f.world, out: out, steps: steps)
            r.train.tuneVisual = true
            r.train.batchSize = 8
            return r
        }
        let a = try CaptionFineTuner(recipe: tuned(dir + "/a", steps: 20), resume: false)
        a.showProgress = false
        let before = a.evaluate()
        let sa = try a.run()
        XCTAssertEqual(sa.input, "CBT clip features (tuned)")
        XCTAssertLessThan(sa.eval["loss"]!, before["loss"]! - 0.5, "held-out loss \(before["loss"]!) → \(sa.eval["loss"]!)")
        let original = try SafeTensors.read(f.cbt + "/model.safetensors"), saved = try SafeTensors.read(sa.checkpoint + "/cbt/model.safetensors")
        XCTAssertEqual(Set(original.names), Set(saved.names))
        for name in original.names where !name.hasSuffix("attention.self.key.bias") {   // its true gradient is 0
            let moved = try original.floats(name) != saved.floats(name)
            let trained = name.hasPrefix("frontend.") || (name.hasPrefix("visual.") && !name.contains("nce_head") && !name.contains("mask_embedding"))
            XCTAssertEqual(moved, trained, "\(name): \(moved ? "moved" : "unchanged")")
        }
        XCTAssertTrue(try SafeTensors.read(sa.checkpoint + "/optimizer.safetensors").names.contains("m.cbt.frontend.proj.weight"))

        let c1 = try CaptionFineTuner(recipe: tuned(dir + "/c", steps: 20), resume: false)
        c1.showProgress = false
        c1.stopAtStep = 7
        XCTAssertTrue(try c1.run().stoppedEarly)
        let c2 = try CaptionFineTuner(recipe: tuned(dir + "/c", steps: 20), resume: true)
        c2.showProgress = false
        let sc = try c2.run()
        for name in ["model.safetensors", "clip_projection.safetensors", "cbt/model.safetensors", "optimizer.safetensors", "trainer_state.json"] {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: sc.checkpoint + "/" + name)),
                           try Data(contentsOf: URL(fileURLWithPath: sa.checkpoint + "/" + name)), name)
        }
        let corpus = try TaskCorpus(path: f.world.corpus)
        let model = try TaskModel(checkpoint: sa.checkpoint, corpus: corpus, maxBatch: 16, allowClipFeatures: true)
        var options = GenerationOptions()
        options.beam = 2; options.maxTokens = 4
        let out = try CaptionTask.run(model: model, corpus: corpus, annotations: try StepAnnotations.load(f.world.annotations), split: "test",
                                      options: options, showProgress: false)
        XCTAssertEqual(out.results.count, 16)
        // tune_visual needs a CBT init.
        var wrong = tuned(dir + "/w", steps: 2)
        wrong.initFrom = try TaskFixture.get().checkpoint
        wrong.corpus = try TaskFixture.get().corpusPath
        XCTAssertThrowsError(try CaptionFineTuner(recipe: wrong, resume: false)) { e in
            XCTAssertTrue("\(e)".contains("train.tune_visual needs a CBT checkpoint"), "\(e)")
        }
    }

    /// Only captioning reads a clip-feature captioner; a raw CBT checkpoint is pointed to the
    /// commands that read it; a corpus without the CBT's stored input is named.
    func testWhichCommandsReadWhichCheckpoints() throws {
        let f = try Self.fixture()
        let corpus = try TaskCorpus(path: f.world.corpus)
        let s = try CaptionFineTuner(recipe: recipe(init: f.cbt, world: f.world, out: dir + "/a", steps: 1000), resume: false)
        s.showProgress = false
        let checkpoint = try s.run().checkpoint
        XCTAssertThrowsError(try TaskModel(checkpoint: checkpoint, corpus: corpus)) { e in
            XCTAssertTrue("\(e)".contains("fine-tuned from a CBT checkpoint") && "\(e)".contains(checkpoint), "\(e)")
        }
        XCTAssertThrowsError(try TaskModel(checkpoint: f.cbt, corpus: corpus, allowClipFeatures: true)) { e in
            XCTAssertTrue("\(e)".contains("is a CBT checkpoint") && "\(e)".contains("finetune caption"), "\(e)")
        }
        // The VideoBERT task world has no stored clip features.
        let plain = try TaskFixture.get()
        var r = recipe(init: f.cbt, world: f.world, out: dir + "/b", steps: 2)
        r.corpus = plain.corpusPath
        XCTAssertThrowsError(try CaptionFineTuner(recipe: r, resume: false)) { e in
            XCTAssertTrue("\(e)".contains("clip_features.npy") && "\(e)".contains(plain.corpusPath), "\(e)")
        }
    }

    /// CBT retrieval is a `TextVideoScorer` built from the checkpoint alone (no trainer): the
    /// scores of a subset are the matching entries of the scores of all segments (so a seeded
    /// subset is scored as it would be among all), texts are cut at maxTextTokens, the pooled
    /// score is refused for a checkpoint trained without a pooled objective, and the trainer's
    /// held-out retrieval is the same computation.
    func testCBTScorerReadsTheCheckpointAndHonoursItsSettings() throws {
        let f = try Self.fixture()
        let checkpoint = try Checkpoint(folder: f.cbt)
        let corpus = try TaskCorpus(path: f.world.corpus)
        let all = TextVideoRetrieval.segments(corpus, split: "test", max: 0, seed: 0)
        XCTAssertGreaterThan(all.count, 4)
        for score in CBTScorer.Score.allCases {
            let scorer = try CBTScorer(checkpoint: checkpoint, corpus: corpus, score: score, maxTextTokens: 32, batchSize: 4)
            let full = try scorer.scores(segments: all, of: corpus, progress: nil)
            XCTAssertEqual(full.count, all.count * all.count)
            let pick = [1, 3, 4]
            let some = try scorer.scores(segments: pick.map { all[$0] }, of: corpus, progress: nil)
            for (i, a) in pick.enumerated() {
                for (j, b) in pick.enumerated() { XCTAssertEqual(some[i * pick.count + j], full[a * all.count + b], accuracy: 1e-4, "\(score)") }
            }
            let subset = try TextVideoRetrieval.run(scorer: scorer, checkpoint: f.cbt, corpus: corpus, split: "test", max: 4, seed: 7, showProgress: false)
            XCTAssertEqual(subset.segments, 4)
            XCTAssertTrue(subset.scorer.contains(score == .cross ? "cross-modal" : "pooled"), subset.scorer)
        }
        // --max-text-tokens: one WordPiece per text.
        let short = try CBTScorer(checkpoint: checkpoint, corpus: corpus, score: .pooled, maxTextTokens: 1, batchSize: 4)
        let long = try CBTScorer(checkpoint: checkpoint, corpus: corpus, score: .pooled, maxTextTokens: 32, batchSize: 4)
        let segments = Array(all.prefix(4))
        XCTAssertEqual(short.batch(segments[...], of: corpus.corpus).text.T, 3)
        XCTAssertGreaterThan(long.batch(segments[...], of: corpus.corpus).text.T, 3)
        XCTAssertNotEqual(try short.scores(segments: segments, of: corpus, progress: nil), try long.scores(segments: segments, of: corpus, progress: nil))

        // A checkpoint trained without a pooled objective: the pooled score is refused, the cross-modal one works.
        let copy = dir + "/no-pooled"
        try FileManager.default.copyItem(atPath: f.cbt, toPath: copy)
        let recipe = try String(contentsOfFile: copy + "/recipe.yaml", encoding: .utf8)
        XCTAssertTrue(recipe.contains("pooled: infonce"))
        try recipe.replacingOccurrences(of: "pooled: infonce", with: "pooled: none").write(toFile: copy + "/recipe.yaml", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try CBTScorer(checkpoint: Checkpoint(folder: copy), corpus: corpus, score: .pooled, maxTextTokens: 32)) {
            XCTAssertTrue("\($0)".contains("objectives.pooled: none") && "\($0)".contains(copy), "\($0)")
        }
        XCTAssertNoThrow(try CBTScorer(checkpoint: Checkpoint(folder: copy), corpus: corpus, score: .cross, maxTextTokens: 32))
        // Not a CBT checkpoint.
        XCTAssertThrowsError(try CBTScorer(checkpoint: Checkpoint(folder: f.cbt + "/text"), corpus: corpus, score: .pooled, maxTextTokens: 32)) {
            XCTAssertTrue("\($0)".contains("is not a CBT checkpoint"), "\($0)")
        }
    }
}
