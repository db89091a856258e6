import Demo
import Foundation
import Report
import Tensor
import Tokenize
import XCTest
import TestSupport

/// `videobert demo` end to end at toy size (the real run is minutes; this checks that every stage
/// runs, the table has every task, the report is complete, and a re-run reuses the stages).
final class DemoCLITests: XCTestCase {
    func testDemoRunsEveryStageAndReusesThem() throws {
        let dir = NSTemporaryDirectory() + "demo-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let root = Repository.root
        let args = ["demo", "--out", dir, "--root", root, "--videos", "20", "--size", "32x32", "--steps", "4", "--cbt-steps", "2",
                    "--caption-steps", "2", "--candidates", "3",
                    "--tokenize-set", "kmeans.branching=3", "--tokenize-set", "kmeans.iters=3",
                    "--pretrain-set", "model.hidden_size=32", "--pretrain-set", "model.intermediate_size=64", "--pretrain-set", "model.num_layers=1",
                    "--pretrain-set", "train.batch_size=4", "--pretrain-set", "eval.batches=1",
                    "--cbt-set", "train.batch_size=4", "--cbt-set", "eval.batches=1", "--cbt-set", "retrieval.max_pairs=8",
                    "--caption-set", "train.batch_size=4", "--caption-set", "eval.batches=1",
                    "--caption-cbt-set", "train.batch_size=4", "--caption-cbt-set", "eval.batches=1",
                    "--next-step-set", "train.batch_size=4", "--next-step-set", "eval.batches=1"]
        let r = try CLI.run(args)
        XCTAssertEqual(r.status, 0, r.stderr)
        for row in ["MLM accuracy", "masked-frame NCE accuracy", "verb top-1 / top-5", "noun top-1 / top-5", "fine-tuned: BLEU-4",
                    "zero-shot template", "fine-tuned from CBT (clip features)", "next clip's visual words", "next sentence among", "fine-tuned: next sentence among",
                    "fine-tuned: generated next step", "fine-tuned: next verb / noun top-1", "text→video R@1"] {
            XCTAssertTrue(r.stdout.contains(row), "table row '\(row)' missing:\n\(r.stdout)")
        }
        let html = try String(contentsOfFile: dir + "/report.html", encoding: .utf8)
        for section in ["Captions: fine-tuned model against the reference", "Zero-shot verbs and nouns", "Next step: visual words",
                        "Next step: the next sentence", "Visual words", "Caption fine-tuning from CBT", "<svg"] {
            XCTAssertTrue(html.contains(section), section)
        }
        for f in ["zero-shot", "caption", "caption-training", "next-step-visual", "next-step-text", "retrieval", "pretrain", "cbt", "caption-cbt", "caption-cbt-training",
                  "next-step-training", "next-step-forecast"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/results/\(f).json"), f)
        }
        // A re-run reuses every stage: same table, no training.
        let again = try CLI.run(args)
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertFalse(again.stderr.contains("pretrain: 1 layers"), again.stderr)
        func table(_ s: String) -> String { s.components(separatedBy: "\n").filter { $0.contains("%") }.joined(separator: "\n") }
        XCTAssertEqual(table(again.stdout), table(r.stdout))
    }

    /// The stage graph says what a recomputed stage makes stale: retraining VideoBERT drops its
    /// downstream results and the captioner fine-tuned from it, but nothing of CBT; new zero-shot
    /// results only re-score the captions (the captioner is not retrained).
    func testStageGraphSaysWhatIsStale() {
        XCTAssertEqual(Set(DemoArtifact.pretrain.downstream),
                       [.pretrainEval, .zeroShot, .caption, .captionTraining, .captionReport, .nextStepVisual, .nextStepText, .retrieval,
                        .forecaster, .forecasterTraining, .forecasterReport])
        XCTAssertEqual(Set(DemoArtifact.cbt.downstream), [.cbtEval, .captionCBT, .captionCBTTraining, .captionCBTReport])
        XCTAssertEqual(DemoArtifact.zeroShot.downstream, [.captionReport])
        XCTAssertEqual(Set(DemoArtifact.caption.downstream), [.captionTraining, .captionReport])
        XCTAssertTrue(DemoArtifact.retrieval.downstream.isEmpty)
        XCTAssertTrue(DemoArtifact.tokens.downstream.contains(.captionCBTReport))
        // Result files keep the names earlier demo folders have.
        XCTAssertEqual(DemoArtifact.pretrainEval.relativePath, "results/pretrain.json")
        XCTAssertEqual(DemoArtifact.captionCBTReport.relativePath, "results/caption-cbt.json")
        XCTAssertEqual(DemoArtifact.captionCBT.relativePath, "caption-cbt")
        XCTAssertEqual(Set(DemoArtifact.allCases.filter { !$0.isFolder }.map(\.relativePath)).count,
                       DemoArtifact.allCases.filter { !$0.isFolder }.count, "two results share a file")
    }

    func testOptionsNameTheFlagThatIsWrong() {
        var o = DemoPipeline.Options()
        XCTAssertNil(o.problem())
        o.videos = 5
        XCTAssertEqual(o.problem(), "--videos must be at least 20 (train, val and test splits need videos)")
        o.videos = 20
        o.candidates = 1
        XCTAssertTrue(o.problem()?.hasPrefix("--candidates") == true)
    }

    func testReadableTextAndImageStrip() throws {
        let vocab = try TextVocabulary.load(Repository.path("Vocab/bert-base-uncased.txt"))
        let ids = ["let", "'", "s", "stir", "the", "tom", "##ato", "##es", "."].map { vocab.id(of: $0)! }
        XCTAssertEqual(vocab.readableText(ids[...]), "let's stir the tomatoes.")
        let red = RGBImage(width: 2, height: 1, pixels: [255, 0, 0, 255, 0, 0])
        let blue = RGBImage(width: 2, height: 1, pixels: [0, 0, 255, 0, 0, 255])
        let strip = try XCTUnwrap(RGBImage.strip([red, blue], gap: 1))
        XCTAssertEqual(strip.width, 6)
        XCTAssertEqual(strip.pixels, [255, 0, 0, 255, 0, 0, 255, 255, 255, 0, 0, 255, 0, 0, 255, 255, 255, 255])
        XCTAssertNil(RGBImage.strip([]))
    }
}
