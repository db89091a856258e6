import Foundation
import XCTest
import Tensor
@testable import Tasks

final class ZeroShotTests: XCTestCase {
    /// The tiny model learned that visual words name the noun and verb: zero-shot classification
    /// of held-out steps beats chance and the frequency baseline.
    func testZeroShotBeatsChanceOnTheTinyWorld() throws {
        let f = try TaskFixture.get()
        let report = try ZeroShotEvaluation.run(model: try f.model(), corpus: try f.corpus(), annotations: try f.annotations(),
                                                labels: try f.labels(), split: "test", showProgress: false)
        XCTAssertEqual(report.steps, 16)
        XCTAssertEqual(report.noun.model.count, 16)
        XCTAssertEqual(report.noun.chance.top1, 1.0 / 6, accuracy: 1e-12)
        XCTAssertEqual(report.verb.chance.top5, 1.0, accuracy: 1e-12, "4 verbs: top-5 is certain")
        XCTAssertEqual(report.frequencySource, "train annotations")
        XCTAssertGreaterThan(report.noun.model.top1, 0.5, "noun top-1 \(report.noun.model.top1); chance 0.17")
        XCTAssertGreaterThan(report.noun.model.top1, report.noun.frequency.top1 + 0.2)
        XCTAssertGreaterThan(report.verb.model.top1, 0.45, "verb top-1 \(report.verb.model.top1); chance 0.25")
        // Predictions and captions are well-formed.
        let p = report.predictions[0]
        XCTAssertEqual(p.verbs.count, 4); XCTAssertEqual(p.nouns.count, 5)
        XCTAssertEqual(p.caption, "\(p.verbs[0]) the \(p.nouns[0])")
        XCTAssertTrue(p.imageID.hasPrefix("video2") && p.imageID.contains("#"), p.imageID)
        XCTAssertEqual(report.captions.count, 2)
        XCTAssertGreaterThan(report.captions[0].scores.cider, report.captions[1].scores.cider, "model captions beat the frequency template")
        let table = ZeroShotEvaluation.table(report)
        XCTAssertTrue(table.contains("frequency (train annotations)") && table.contains("chance"), table)
    }

    /// A label of two WordPieces scores log p(first piece at the single [MASK]) + log p(second
    /// piece at a [MASK] after the first); with `first` only the first term. Checked against
    /// log-probabilities read directly from the model.
    func testMultiPieceLabelsAreScoredByFillingTheSlot() throws {
        let f = try TaskFixture.get()
        let model = try f.model()
        let pieces = model.encode("tomatoes")
        XCTAssertEqual(pieces.count, 2)
        let labels = try f.labels()
        let classifier = try ZeroShotClassifier(model: model, labels: labels)
        XCTAssertEqual(classifier.requests.count, 2, "the base input and one for the prefix 'tomato'")
        let visual: [Int32] = [20, 24, 21, 25]   // noun 5 (tomatoes), verb 0 (cut)
        let scores = classifier.scores(visual: [visual])[0]
        let mask = model.special.mask
        func logProb(verb: [Int32], noun: [Int32], readNoun: Bool, piece: Int32) -> Float {
            let t = classifier.templateText(verb: verb, noun: noun)
            var value: Float = 0
            model.forEachBatch([.joint(text: t.ids, video: visual.map(model.visualID), special: model.special)]) { _, _, _, encoded in
                value = model.textLogProbabilities(encoded, rows: [Int32(1 + (readNoun ? t.nounEnd : t.verbEnd))])[Int(piece)]
            }
            return value
        }
        let first = logProb(verb: [mask], noun: [mask], readNoun: true, piece: pieces[0])
        let second = logProb(verb: [mask], noun: [pieces[0], mask], readNoun: true, piece: pieces[1])
        XCTAssertEqual(scores.nouns[5], first + second, accuracy: 1e-4)
        XCTAssertEqual(scores.verbs[2], logProb(verb: [mask], noun: [mask], readNoun: false, piece: model.encode("pour")[0]), accuracy: 1e-4)
        var options = ZeroShotOptions()
        options.pieceScoring = .first
        let firstOnly = try ZeroShotClassifier(model: model, labels: labels, options: options)
        XCTAssertEqual(firstOnly.requests.count, 1)
        let firstScores = firstOnly.scores(visual: [visual, visual])
        XCTAssertEqual(firstScores[1].nouns[5], first, accuracy: 1e-4)
        XCTAssertEqual(firstScores[0].nouns[0], scores.nouns[0], accuracy: 1e-5, "one-piece labels score the same either way")
    }

    /// --calibrate: each label's score minus its score for the template without video.
    func testCalibrationSubtractsTheNoVideoPrior() throws {
        let f = try TaskFixture.get()
        let model = try f.model()
        let labels = try f.labels()
        let plain = try ZeroShotClassifier(model: model, labels: labels)
        var options = ZeroShotOptions()
        options.calibrate = true
        let calibrated = try ZeroShotClassifier(model: model, labels: labels, options: options)
        let visual: [[Int32]] = [[20, 24, 21, 25], [2, 3]]
        let raw = plain.scores(visual: visual), prior = plain.scores(visual: [[]])[0], cal = calibrated.scores(visual: visual)
        for i in visual.indices {
            for k in labels.nouns.indices { XCTAssertEqual(cal[i].nouns[k], raw[i].nouns[k] - prior.nouns[k], accuracy: 1e-4) }
            for k in labels.verbs.indices { XCTAssertEqual(cal[i].verbs[k], raw[i].verbs[k] - prior.verbs[k], accuracy: 1e-4) }
        }
        XCTAssertNotEqual(prior.nouns[0], 0)
        // Old JSON without the key still decodes.
        let old = try JSONDecoder().decode(ZeroShotOptions.self, from: Data(#"{"template": "now let's {verb} the {noun} .", "caption_template": "{verb} the {noun}", "piece_scoring": "fill", "max_video_tokens": 48, "listed": 5}"#.utf8))
        XCTAssertFalse(old.calibrate)
    }

    func testGroundTruthFromFieldsOrSentences() {
        let labels = LabelList(verbs: ["cut", "stir"], nouns: ["ice", "ice cream", "rice"])
        let fromFields = AnnotatedStep(video: "v", index: 0, start: 0, end: 1, captions: ["whatever"], verb: "Stir", noun: "rice")
        XCTAssertEqual(ZeroShotEvaluation.truth(of: fromFields, labels: labels).verb, 1)
        XCTAssertEqual(ZeroShotEvaluation.truth(of: fromFields, labels: labels).noun, 2)
        let fromSentence = AnnotatedStep(video: "v", index: 0, start: 0, end: 1, captions: ["Now cut the ice cream, then stir."])
        let t = ZeroShotEvaluation.truth(of: fromSentence, labels: labels)
        XCTAssertEqual(t.verb, 0, "the first verb mentioned")
        XCTAssertEqual(t.noun, 1, "the longer label at the same position")
        let none = AnnotatedStep(video: "v", index: 0, start: 0, end: 1, captions: ["slice the rices"])
        XCTAssertNil(ZeroShotEvaluation.truth(of: none, labels: labels).verb)
        XCTAssertNil(ZeroShotEvaluation.truth(of: none, labels: labels).noun, "whole words only")
    }

    func testRanksAndTopIndicesBreakTiesByOrder() {
        XCTAssertEqual(topIndices([0.1, 0.5, 0.5, -1, 0.9], k: 3), [4, 1, 2])
        XCTAssertEqual(rankOf(2, in: [0.1, 0.5, 0.5, -1, 0.9]), 3)
        XCTAssertEqual(rankOf(1, in: [0.1, 0.5, 0.5, -1, 0.9]), 2)
        XCTAssertEqual(TopKAccuracy(ranks: [1, 2, 6, 5]).top1, 0.25)
        XCTAssertEqual(TopKAccuracy(ranks: [1, 2, 6, 5]).top5, 0.75)
    }
}
