import Foundation
import XCTest
import TestSupport

/// `videobert evaluate captions` end to end.
final class EvaluateCLITests: XCTestCase {
    /// References for two images and predictions that copy one reference each (up to case and
    /// punctuation, which the PTB tokenizer removes).
    func writeFiles(_ dir: String, predictions: String? = nil) throws -> (pred: String, refs: String) {
        let refs = dir + "/refs.json", pred = dir + "/pred.json"
        try #"""
        {"images": [{"id": 1}, {"id": "v2"}], "annotations": [
          {"image_id": 1, "caption": "A man is cutting onions."},
          {"image_id": 1, "caption": "Someone slices an onion on a board."},
          {"image_id": "v2", "caption": "Stir the soup with a wooden spoon."},
          {"image_id": "v2", "caption": "The soup is being stirred."}
        ]}
        """#.write(toFile: refs, atomically: true, encoding: .utf8)
        try (predictions ?? #"""
        [{"image_id": 1, "caption": "a man is cutting onions"},
         {"image_id": "v2", "caption": "Stir the soup with a wooden spoon!"}]
        """#).write(toFile: pred, atomically: true, encoding: .utf8)
        return (pred, refs)
    }

    func testJSONHasPycocoevalcapKeys() throws {
        let (pred, refs) = try writeFiles(try temporaryFolder(named: "evaluate-cli"))
        let r = try CLI.run(["evaluate", "captions", "--pred", pred, "--refs", refs, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "--json prints the JSON only")
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Double])
        XCTAssertEqual(Set(obj.keys), ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr"])
        // Both predictions equal a reference after tokenization.
        for key in ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L"] {
            XCTAssertEqual(try XCTUnwrap(obj[key]), 1, accuracy: 1e-6, key)
        }
        // CIDEr-D: an exact copy scores its cosine with the other reference too; below 10, above 0.
        let cider = try XCTUnwrap(obj["CIDEr"])
        XCTAssertGreaterThan(cider, 1)
        XCTAssertLessThan(cider, 10)
    }

    func testTableForPeopleThenJSON() throws {
        let (pred, refs) = try writeFiles(try temporaryFolder(named: "evaluate-cli"), predictions: #"""
        [{"image_id": 1, "caption": "a man slices onions"}, {"image_id": "v2", "caption": "stir soup"}]
        """#)
        let r = try CLI.run(["evaluate", "captions", "--pred", pred, "--refs", refs])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("2 images scored"), r.stdout)
        for name in ["Bleu_1", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr"] { XCTAssertTrue(r.stdout.contains("  \(name)"), name) }
        let json = try XCTUnwrap(r.stdout.split(separator: "\n").last)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Double])
        XCTAssertLessThan(try XCTUnwrap(obj["METEOR"]), 1)
        XCTAssertGreaterThan(try XCTUnwrap(obj["METEOR"]), 0)
    }

    func testMissingPredictionWarnsOrFailsWithRequireAll() throws {
        let (pred, refs) = try writeFiles(try temporaryFolder(named: "evaluate-cli"), predictions: #"[{"image_id": 1, "caption": "a man cuts onions"}]"#)
        let r = try CLI.run(["evaluate", "captions", "--pred", pred, "--refs", refs, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("warning:") && r.stderr.contains("1 reference image(s) have no prediction") && r.stderr.contains("v2"), r.stderr)
        let strict = try CLI.run(["evaluate", "captions", "--pred", pred, "--refs", refs, "--require-all"])
        XCTAssertEqual(strict.status, 1)
        XCTAssertTrue(strict.stderr.hasPrefix("error: \(pred): 1 reference image_id(s) have no prediction: \"v2\""), strict.stderr)
    }

    func testErrorsNameTheFile() throws {
        let dir = try temporaryFolder(named: "evaluate-cli")
        let (pred, refs) = try writeFiles(dir, predictions: #"[{"image_id": 1, "caption": "x"}, {"image_id": 99, "caption": "y"}]"#)
        let unknown = try CLI.run(["evaluate", "captions", "--pred", pred, "--refs", refs])
        XCTAssertEqual(unknown.status, 1)
        XCTAssertEqual(unknown.stderr, "error: \(pred): 1 predicted image_id(s) not in the references \(refs): 99\n")
        let missing = try CLI.run(["evaluate", "captions", "--pred", dir + "/nope.json", "--refs", refs])
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(missing.stderr, "error: \(dir)/nope.json: no such file\n")
        try #"[{"image_id": 1}]"#.write(toFile: pred, atomically: true, encoding: .utf8)
        let bad = try CLI.run(["evaluate", "captions", "--pred", pred, "--refs", refs])
        XCTAssertEqual(bad.stderr, "error: \(pred): [0]: missing key \"caption\"\n")
    }

    func testHelpHasAnExample() throws {
        let r = try CLI.run(["evaluate", "captions", "--help"])
        XCTAssertEqual(r.status, 0)
        XCTAssertTrue(r.stdout.contains("Example:") && r.stdout.contains("videobert evaluate captions --pred"), r.stdout)
        let group = try CLI.run(["evaluate", "--help"])
        XCTAssertTrue(group.stdout.contains("captions") && group.stdout.contains("Example:"), group.stdout)
    }
}
