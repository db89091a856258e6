import Foundation
import XCTest
import TestSupport
import Recipe
import Tensor
import Tokenize
@testable import Tasks
import Train

final class CaptioningTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "captioning-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func recipe(_ f: TaskFixture, out: String, steps: Int) -> CaptionRecipe {
        var r = CaptionRecipe()
        r.initFrom = f.checkpoint
        r.corpus = f.corpusPath
        r.annotations = f.annotationsPath
        r.out = out
        r.data.maxVideoTokens = 8; r.data.maxCaptionTokens = 8
        r.train.batchSize = 8; r.train.steps = steps; r.train.lr = 3e-3; r.train.warmupSteps = 5; r.train.dropout = 0.1
        r.eval.every = 10; r.eval.batches = 2
        r.checkpoint.every = 5; r.checkpoint.keep = 2
        r.logEvery = 5
        return r
    }

    func testShippedRecipeLoads() throws {
        let path = Repository.recipes + "/finetune-caption-demo.yaml"
        let r = try RecipeLoader.load(CaptionRecipe.self, file: path)
        XCTAssertNil(r.problem())
        XCTAssertEqual(r.train.steps, 600)
        XCTAssertLessThanOrEqual(r.maxSequence, 128)
        XCTAssertThrowsError(try RecipeLoader.load(CaptionRecipe.self, yaml: "train:\n  stepz: 3\n", name: "x.yaml"))
    }

    /// (caption, prefix) pairs: every prefix of every caption once per epoch, in the layout
    /// [CLS] w1..wk [MASK] [>] v [SEP], target w_{k+1} or [SEP].
    func testExamplesCoverEveryPrefixWithTheRightTargets() throws {
        let special = SpecialTokens(pad: 0, unk: 3, cls: 4, sep: 5, mask: 6, videoSeparator: 1)
        let items = [CaptionItem(imageID: "a#0", text: [10, 11], video: [0, 1]), CaptionItem(imageID: "b#0", text: [12], video: [2])]
        let ex = CaptionExamples(items: items, special: special, textVocabSize: 20, seed: 3)
        XCTAssertEqual(ex.pairCount, 5)
        let b = ex.nextBatch(5)
        var seen: [[Int32]] = []
        for i in 0..<b.B {
            let row = Array(b.inputIDs[(i * b.T)..<((i + 1) * b.T)])
            let maskAt = Int(b.textRows[i]) - i * b.T
            XCTAssertEqual(row[maskAt], special.mask)
            XCTAssertEqual(row[0], special.cls)
            XCTAssertEqual(row[maskAt + 1], special.videoSeparator)
            XCTAssertEqual(b.tokenTypeIDs[i * b.T + maskAt + 2], 1, "visual words are type 1")
            seen.append(Array(row[1..<maskAt]) + [b.textTargets[i]])
        }
        XCTAssertEqual(Set(seen), Set([[10], [10, 11], [10, 11, 5], [12], [12, 5]]))
        XCTAssertEqual(b.videoRows, [])
        XCTAssertEqual(b.alignWeights, [0, 0, 0, 0, 0])
        XCTAssertEqual(ex.state.epoch, 0)
        _ = ex.nextBatch(1)
        XCTAssertEqual(ex.state.epoch, 1, "the sixth pair starts a new epoch")
    }

    /// Fine-tuning lowers the held-out next-word loss, writes checkpoints every task reads, and
    /// a run stopped and resumed ends with the same bytes as an uninterrupted one.
    func testFineTuningLearnsAndResumesExactly() throws {
        let f = try TaskFixture.get()
        let a = try CaptionFineTuner(recipe: recipe(f, out: dir + "/a", steps: 20), resume: false)
        a.showProgress = false
        let before = a.evaluate()
        let sa = try a.run()
        XCTAssertLessThan(sa.eval["loss"]!, before["loss"]! - 0.3, "held-out loss \(before["loss"]!) → \(sa.eval["loss"]!)")
        XCTAssertTrue(sa.checkpoint.hasSuffix("step-0000020"))
        for file in ["config.json", "model.safetensors", "vocab.txt", "visual_vocab/vocab.json", "recipe.yaml", "trainer_state.json", "optimizer.safetensors"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: sa.checkpoint + "/" + file), file)
        }
        let metrics = try MetricsLog.read(dir + "/a/metrics.jsonl")
        XCTAssertEqual(metrics.filter { $0["kind"] as? String == "train" }.count, 4)
        XCTAssertEqual(metrics.filter { $0["kind"] as? String == "eval" }.count, 2)

        let c1 = try CaptionFineTuner(recipe: recipe(f, out: dir + "/c", steps: 20), resume: false)
        c1.showProgress = false
        c1.stopAtStep = 7
        XCTAssertTrue(try c1.run().stoppedEarly)
        let c2 = try CaptionFineTuner(recipe: recipe(f, out: dir + "/c", steps: 20), resume: true)
        c2.showProgress = false
        let sc = try c2.run()
        for name in ["model.safetensors", "optimizer.safetensors", "trainer_state.json"] {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: sc.checkpoint + "/" + name)),
                           try Data(contentsOf: URL(fileURLWithPath: sa.checkpoint + "/" + name)), name)
        }
        XCTAssertThrowsError(try CaptionFineTuner(recipe: recipe(f, out: dir + "/c", steps: 20), resume: false)) { e in
            XCTAssertTrue("\(e)".contains("--resume"), "\(e)")
        }
        // The fine-tuned checkpoint captions: beam 1 is exactly greedy; beams finish with [SEP].
        let model = try TaskModel(checkpoint: sa.checkpoint, corpus: try f.corpus(), maxBatch: 16)
        let steps = try f.corpus().resolve(try f.annotations()).withVideo(in: "test")
        let videos = steps.map(\.visual)
        let generator = CaptionGenerator(model: model)
        var options = GenerationOptions()
        options.maxTokens = 6
        options.beam = 1
        let greedy = generator.greedy(videos: videos, options: options)
        let beam1 = generator.beamSearch(videos: videos, options: options)
        XCTAssertEqual(greedy, beam1)
        options.beam = 3
        let beam3 = generator.beamSearch(videos: videos, options: options)
        XCTAssertEqual(beam3.count, videos.count)
        XCTAssertEqual(beam3, generator.beamSearch(videos: videos, options: options), "deterministic")
        XCTAssertTrue(beam3.allSatisfy { $0.finished || $0.ids.count == 6 })
        XCTAssertFalse(greedy.contains { $0.ids.contains(model.special.mask) || $0.ids.contains(model.special.cls) })
    }

    /// `CaptionTask` writes COCO results with "<video>#<step>" ids and matching references that
    /// the metrics read back; the frequent-caption baseline is scored beside the model.
    func testCaptionOutputsAreCOCOFiles() throws {
        let f = try TaskFixture.get()
        var options = GenerationOptions()
        options.beam = 2
        options.maxTokens = 5
        let out = try CaptionTask.run(model: try f.model(), corpus: try f.corpus(), annotations: try f.annotations(), split: "test",
                                      options: options, showProgress: false)
        XCTAssertEqual(out.results.count, 16)
        XCTAssertEqual(out.results[0].imageID, .string("video20#0"))
        let predPath = dir + "/captions.json", refPath = dir + "/refs.json"
        try writeJSONObject(CaptionTask.resultsJSON(out.results), to: predPath)
        try writeJSONObject(CaptionTask.referencesJSON(out.references), to: refPath)
        let raw = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: predPath))) as! [[String: Any]]
        XCTAssertEqual(Set(raw[0].keys), ["image_id", "caption"])
        let refs = try CaptionFiles.loadReferences(refPath)
        XCTAssertEqual(refs.count, 16)
        XCTAssertEqual(refs.captions(for: .string("video20#0"))!.count, 1)
        let e = try CaptionEvaluator.evaluate(predictionsFile: predPath, referencesFile: refPath, requireAll: true)
        XCTAssertEqual(e.scores, out.report.rows[0].scores)
        XCTAssertEqual(out.report.rows.map(\.system), ["model (beam 2)", "most frequent train caption"])
        XCTAssertNotNil(out.report.frequentCaption)
    }

    func testMostFrequentCaptionAndWordPieceText() {
        let steps = ["Cut the garlic.", "stir the rice", "cut  the garlic", "stir the rice"].enumerated().map { i, c in
            ResolvedStep(step: AnnotatedStep(video: "v", index: i, start: 0, end: 1, captions: [c]), video: 0, split: "train", visual: [1])
        }
        let f = CaptionTask.mostFrequentCaption(steps)!
        XCTAssertEqual(f.caption, "cut the garlic", "ties go to the first seen")
        XCTAssertEqual(f.count, 2)
        XCTAssertEqual(WordPieceText.join(["now", "let", "'", "s", "sp", "##rin", "##kle", "the", "tomato", "##es", "."]),
                       "now let's sprinkle the tomatoes.")
    }
}
