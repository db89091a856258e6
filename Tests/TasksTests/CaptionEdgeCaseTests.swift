import Foundation
import XCTest
@testable import Tasks
import Tensor

/// Input handling and the corners of the metrics (empty captions, missing predictions, ids).
final class CaptionEdgeCaseTests: XCTestCase {
    func entries(_ pairs: [(ImageID, String)]) -> [CaptionEntry] { pairs.map { CaptionEntry(imageID: $0.0, caption: $0.1) } }

    func temporaryFile(_ name: String, _ text: String) throws -> String {
        let dir = NSTemporaryDirectory() + "caption-edge-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func assertError(_ body: () throws -> Void, contains parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        do {
            try body()
            XCTFail("expected an error containing \(parts)", file: file, line: line)
        } catch let e as VideoBertError {
            for p in parts { XCTAssertTrue(e.description.contains(p), "\"\(e.description)\" lacks \"\(p)\"", file: file, line: line) }
            XCTAssertFalse(e.description.contains("\n"), "errors are one line", file: file, line: line)
        } catch {
            XCTFail("unexpected \(error)", file: file, line: line)
        }
    }

    let refs = CaptionReferences([
        CaptionEntry(imageID: .int(1), caption: "A man is slicing onions."),
        CaptionEntry(imageID: .int(1), caption: "Someone cuts an onion on a board."),
        CaptionEntry(imageID: .string("v2"), caption: "Stir the soup with a spoon."),
        CaptionEntry(imageID: .string("v2"), caption: "The soup is stirred."),
        CaptionEntry(imageID: .int(3), caption: "Pour the batter into the pan."),
    ])

    func testEmptyPredictionScoresZeroWithoutBreakingTheOthers() throws {
        let preds = try CaptionPredictions(entries([(.int(1), "a man is slicing onions"), (.string("v2"), ""), (.int(3), "   ")]))
        let e = try CaptionEvaluator.evaluate(predictions: preds, references: refs)
        for (name, value) in e.scores.named { XCTAssertTrue(value.isFinite, name) }
        for key in ["METEOR", "ROUGE_L", "CIDEr"] {
            let s = try XCTUnwrap(e.perImage[key])
            XCTAssertEqual(s[1], 0, key)
            XCTAssertEqual(s[2], 0, key)
            XCTAssertGreaterThan(s[0], 0.5, key)
        }
        XCTAssertEqual(try XCTUnwrap(e.perImage["METEOR"])[0], 1, accuracy: 1e-12, "identical caption: METEOR 1")
        XCTAssertEqual(try XCTUnwrap(e.perImage["ROUGE_L"])[0], 1, accuracy: 1e-12)
        XCTAssertLessThan(try XCTUnwrap(e.perImage["Bleu_1"])[1], 1e-6)
    }

    /// A reference image without a prediction is left out of every score — including CIDEr's
    /// document frequencies — exactly as if it were not in the references (pycocoevalcap with
    /// params['image_id'] = the predicted images).
    func testMissingPredictionIsSkippedAndListed() throws {
        let preds = try CaptionPredictions(entries([(.int(1), "a man slices an onion"), (.string("v2"), "stir the soup")]))
        let e = try CaptionEvaluator.evaluate(predictions: preds, references: refs)
        XCTAssertEqual(e.imageIDs, [.int(1), .string("v2")])
        XCTAssertEqual(e.imagesWithoutPrediction, [.int(3)])
        let only = CaptionReferences(refs.imageIDs.prefix(2).flatMap { id in refs.captions(for: id)!.map { CaptionEntry(imageID: id, caption: $0) } })
        XCTAssertEqual(try CaptionEvaluator.evaluate(predictions: preds, references: only).scores, e.scores)
        assertError({ _ = try CaptionEvaluator.evaluate(predictions: preds, references: refs, requireAll: true, predictionsFile: "p.json") },
                    contains: ["p.json", "1 reference image_id(s) have no prediction", "3"])
    }

    func testUnknownPredictedIdsAreAnErrorListingAFew() throws {
        let preds = try CaptionPredictions(entries((10..<20).map { (.int($0), "x") } + [(.int(1), "onions")]))
        assertError({ _ = try CaptionEvaluator.evaluate(predictions: preds, references: refs, predictionsFile: "p.json", referencesFile: "r.json") },
                    contains: ["p.json: 10 predicted image_id(s) not in the references r.json", "10, 11, 12, 13, 14 and 5 more"])
    }

    func testIdsMatchByTextAndPlainListReferencesAreAccepted() throws {
        let refsPath = try temporaryFile("refs.json", #"[{"image_id": "7", "caption": "Stir the soup."}, {"image_id": 8, "caption": "Add salt."}]"#)
        let predPath = try temporaryFile("pred.json", #"[{"image_id": 7, "caption": "stir the soup"}, {"image_id": "8", "caption": "add salt"}]"#)
        let e = try CaptionEvaluator.evaluate(predictionsFile: predPath, referencesFile: refsPath)
        XCTAssertEqual(e.imageIDs.map(\.description), ["7", "8"])
        XCTAssertEqual(e.scores.rougeL, 1, accuracy: 1e-12)
        XCTAssertEqual(e.scores.meteor, 1, accuracy: 1e-12)
    }

    func testFileErrorsNameTheFileAndTheEntry() throws {
        let missingCaption = try temporaryFile("refs.json", #"{"annotations": [{"image_id": 1, "caption": "ok"}, {"image_id": 2}]}"#)
        assertError({ _ = try CaptionFiles.loadReferences(missingCaption) }, contains: ["refs.json", "annotations[1]", "missing key \"caption\""])
        let badID = try temporaryFile("pred.json", #"[{"image_id": 1, "caption": "a"}, {"image_id": 2.5, "caption": "b"}]"#)
        assertError({ _ = try CaptionFiles.loadPredictions(badID) }, contains: ["pred.json", "[1].image_id", "integer or a string", "2.5"])
        let boolID = try temporaryFile("pred.json", #"[{"image_id": true, "caption": "a"}]"#)
        assertError({ _ = try CaptionFiles.loadPredictions(boolID) }, contains: ["[0].image_id", "a boolean"])
        let nullCaption = try temporaryFile("pred.json", #"[{"image_id": 1, "caption": null}]"#)
        assertError({ _ = try CaptionFiles.loadPredictions(nullCaption) }, contains: ["[0].caption", "expected a string, got null"])
        let duplicate = try temporaryFile("pred.json", #"[{"image_id": 1, "caption": "a"}, {"image_id": "1", "caption": "b"}]"#)
        assertError({ _ = try CaptionFiles.loadPredictions(duplicate) }, contains: ["pred.json", "[1]", "second prediction for image_id 1", "[0]"])
        let resultsAsRefs = try temporaryFile("refs.json", #"{"images": []}"#)
        assertError({ _ = try CaptionFiles.loadReferences(resultsAsRefs) }, contains: ["refs.json", "no \"annotations\""])
        let notJSON = try temporaryFile("refs.json", "{annotations: oops")
        assertError({ _ = try CaptionFiles.loadReferences(notJSON) }, contains: ["refs.json", "invalid JSON"])
        assertError({ _ = try CaptionFiles.loadReferences("/nonexistent/refs.json") }, contains: ["/nonexistent/refs.json", "no such file"])
    }

    /// METEOR by hand: "cats sat" against "the cat sat". cats~cat is a stem match (weight 0.6), sat
    /// exact; "the" is a function word (weight 1 − δ). One chunk over two matched words per side.
    func testMeteorByHand() {
        let (a, b, g, d) = (0.85, 0.2, 0.6, 0.75)
        let p = (1 * 1.0 * d + 1 * 0.6 * d) / (d * 2)
        let r = (1 * 1.0 * d + 1 * 0.6 * d) / (d * 2 + (1 - d) * 1)
        let fMean = 1 / ((1 - a) / p + a / r)
        let expected = fMean * (1 - g * pow(1.0 / 2.0, b))
        let m = Meteor.score(hypotheses: ["cats sat"], references: [["the cat sat"]])
        XCTAssertEqual(m.corpus, expected, accuracy: 1e-12)
        XCTAssertEqual(m.stats[0].testStageMatchesContent, [1, 1])
        XCTAssertEqual(m.stats[0].chunks, 1)
        // Word order: two chunks instead of one lowers the score.
        let swapped = Meteor.score(hypotheses: ["sat cats"], references: [["the cat sat"]])
        XCTAssertEqual(swapped.stats[0].chunks, 2)
        XCTAssertLessThan(swapped.corpus, m.corpus)
        // The best reference counts.
        XCTAssertEqual(Meteor.score(hypotheses: ["stir the soup"], references: [["add salt", "stir the soup"]]).corpus, 1, accuracy: 1e-12)
    }

    /// BLEU by hand on one caption: "the cat sat on the mat" vs "the cat is on the mat".
    func testBleuByHand() {
        let s = Bleu.score(hypotheses: ["the cat sat on the mat"], references: [["the cat is on the mat"]])
        // clipped matches: 1-grams 5/6, 2-grams 3/5, 3-grams 1/4, 4-grams 0/3. Equal lengths, yet
        // pycocoevalcap's smoothing makes the length ratio (6 + tiny) / (6 + small) just below 1, so
        // its brevity penalty applies (by 1.7e-10).
        let tiny = 1e-15, small = 1e-9
        let p = [(5 + tiny) / (6 + small), (3 + tiny) / (5 + small), (1 + tiny) / (4 + small), (0 + tiny) / (3 + small)]
        let penalty = exp(1 - 1 / ((6 + tiny) / (6 + small)))
        XCTAssertLessThan(penalty, 1)
        for n in 1...4 {
            let expected = pow(p.prefix(n).reduce(1, *), 1 / Double(n)) * penalty
            XCTAssertEqual(s.corpus[n - 1], expected, accuracy: 1e-12, "BLEU-\(n)")
        }
    }
}
