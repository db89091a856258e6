import Foundation
import XCTest

final class ZeroShotCLITests: XCTestCase {
    func testZeroShotWritesReportAndCaptionsThatEvaluateReads() throws {
        let f = try TasksCLIFixture.get()
        let captions = f.temporary("zs.json"), refs = f.temporary("refs.json"), report = f.temporary("report.json")
        let r = try f.run(["zero-shot", "--checkpoint", f.checkpoint, "--corpus", f.corpus, "--annotations", f.annotations,
                           "--labels", f.labels, "--captions-out", captions, "--refs-out", refs, "--out-json", report])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("verb top-1") && r.stdout.contains("chance (3 verbs, 4 nouns)"), r.stdout)
        let j = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any])
        XCTAssertEqual(j["steps"] as? Int, 6)
        let noun = try XCTUnwrap(j["noun"] as? [String: Any])
        XCTAssertEqual((noun["chance"] as? [String: Any])?["top1"] as? Double, 0.25)
        XCTAssertNotNil((noun["model"] as? [String: Any])?["top5"])
        XCTAssertEqual((j["predictions"] as? [Any])?.count, 6)
        let e = try f.run(["evaluate", "captions", "--pred", captions, "--refs", refs, "--json", "--require-all"])
        XCTAssertEqual(e.status, 0, e.stderr)
        XCTAssertTrue(e.stdout.contains("CIDEr"), e.stdout)
        // --json prints the same report.
        let js = try f.json(try f.run(["zero-shot", "--checkpoint", f.checkpoint, "--corpus", f.corpus, "--annotations", f.annotations, "--json",
                                        "--labels", f.labels, "--piece-scoring", "first"]))
        XCTAssertEqual((js["options"] as? [String: Any])?["piece_scoring"] as? String, "first")
        XCTAssertEqual(((js["verb"] as? [String: Any])?["labels"]) as? Int, 3)
    }

    func testErrorsNameTheFile() throws {
        let f = try TasksCLIFixture.get()
        let r = try f.run(["zero-shot", "--checkpoint", f.checkpoint, "--corpus", f.corpus, "--annotations", f.annotations])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "error: \(f.annotations): no 'verb'/'noun' fields to take labels from; pass a label list (--labels labels.json)\n")
        let missing = try f.run(["zero-shot", "--checkpoint", f.dir + "/nope", "--corpus", f.corpus, "--annotations", f.annotations, "--labels", f.labels])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.hasPrefix("error: \(f.dir)/nope"), missing.stderr)
        let split = try f.run(["zero-shot", "--checkpoint", f.checkpoint, "--corpus", f.corpus, "--annotations", f.annotations, "--labels", f.labels,
                               "--split", "holdout"])
        XCTAssertTrue(split.stderr.contains("no videos in split 'holdout' (splits: train, val, test)"), split.stderr)
        let help = try f.run(["zero-shot", "--help"])
        XCTAssertTrue(help.stdout.contains("Example:") && help.stdout.contains("--piece-scoring"), help.stdout)
    }
}
