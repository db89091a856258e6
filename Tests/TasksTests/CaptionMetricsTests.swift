import Foundation
import XCTest
@testable import Tasks
import Tensor

/// BLEU, METEOR, ROUGE-L and CIDEr-D against pycocoevalcap on the fixture set
/// (tools/fixtures/caption_metrics.py: 220 cooking-caption images, 897 references).
final class CaptionMetricsTests: XCTestCase {
    struct Expected {
        var corpus: [String: Double]
        var imageIDs: [String]
        var perImage: [String: [Double]]
        var meteorExactStemCorpus: Double
        var meteorExactStemPerImage: [Double]
        var meteorExactStemStats: [[Double]]
    }

    static func expected() throws -> Expected {
        let root = try XCTUnwrap(Fixture.json("caption_expected") as? [String: Any])
        let es = try XCTUnwrap(root["meteor_exact_stem"] as? [String: Any])
        let ids = try XCTUnwrap(root["image_ids"] as? [Any]).map { "\($0)" }
        return Expected(
            corpus: try XCTUnwrap(root["corpus"] as? [String: Double]),
            imageIDs: ids,
            perImage: try XCTUnwrap(root["per_image"] as? [String: [Double]]),
            meteorExactStemCorpus: try XCTUnwrap(es["corpus"] as? Double),
            meteorExactStemPerImage: try XCTUnwrap(es["per_image"] as? [Double]),
            meteorExactStemStats: try XCTUnwrap(es["stats"] as? [String]).map { $0.split(separator: " ").map { Double($0)! } })
    }

    /// One evaluation shared by the tests (the fixture takes about a second in a debug build);
    /// a static let is initialized once, thread-safely.
    static let shared = Result {
        try CaptionEvaluator.evaluate(predictionsFile: Fixture.path("caption_results"),
                                      referencesFile: Fixture.path("caption_references"))
    }
    static func evaluation() throws -> CaptionEvaluation { try shared.get() }

    func testImagesAreEvaluatedInPycocoevalcapOrder() throws {
        let (e, x) = (try Self.evaluation(), try Self.expected())
        XCTAssertEqual(e.imageIDs.map(\.description), x.imageIDs)
        XCTAssertTrue(e.imagesWithoutPrediction.isEmpty)
    }

    func testBleuRougeCiderCorpusWithin1e3() throws {
        let (e, x) = (try Self.evaluation(), try Self.expected())
        for (key, value) in e.scores.named where key != "METEOR" {
            let ref = try XCTUnwrap(x.corpus[key])
            XCTAssertEqual(value, ref, accuracy: 1e-3, key)
            // In practice they agree to rounding: hold them to it so a slip shows.
            XCTAssertEqual(value, ref, accuracy: 1e-9, "\(key) drifted from pycocoevalcap")
        }
    }

    func testBleuRougeCiderPerImage() throws {
        let (e, x) = (try Self.evaluation(), try Self.expected())
        for key in ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"] {
            let ours = try XCTUnwrap(e.perImage[key]), ref = try XCTUnwrap(x.perImage[key])
            XCTAssertEqual(ours.count, ref.count, key)
            let worst = zip(ours, ref).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThan(worst, 1e-9, "\(key): max per-image difference \(worst)")
        }
    }

    /// Our METEOR implements the exact and stem modules: against the jar restricted to those it
    /// must agree statistic by statistic.
    func testMeteorMatchesTheJarsExactAndStemModules() throws {
        let (e, x) = (try Self.evaluation(), try Self.expected())
        XCTAssertEqual(e.meteorStats.count, x.meteorExactStemStats.count)
        var mismatches: [String] = []
        for (k, (ours, jar)) in zip(e.meteorStats, x.meteorExactStemStats).enumerated() {
            // jar layout: lengths (4), per module (4 modules) content/function test/ref, chunks, word matches (2)
            var row = [ours.testLength, ours.referenceLength, ours.testFunctionWords, ours.referenceFunctionWords]
            for m in 0..<4 {
                row += m < 2 ? [ours.testStageMatchesContent[m], ours.referenceStageMatchesContent[m],
                                ours.testStageMatchesFunction[m], ours.referenceStageMatchesFunction[m]] : [0, 0, 0, 0]
            }
            row += [ours.chunks, ours.testWordMatches, ours.referenceWordMatches]
            if row != jar { mismatches.append("image \(x.imageIDs[k]): ours \(row)\n   jar \(jar)") }
        }
        XCTAssert(mismatches.isEmpty, "\(mismatches.count) images differ:\n" + mismatches.prefix(10).joined(separator: "\n"))
        let perImage = try XCTUnwrap(e.perImage["METEOR"])
        let worst = zip(perImage, x.meteorExactStemPerImage).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThan(worst, 1e-9)
        XCTAssertEqual(e.scores.meteor, x.meteorExactStemCorpus, accuracy: 1e-9)
    }

    /// Against pycocoevalcap's default METEOR (exact, stem, WordNet synonyms, paraphrases) the
    /// missing modules cost a little: documented in Sources/Tasks/Metrics/Meteor/Meteor.swift and
    /// held here to the measured gap (corpus −0.0034; per image equal for 75 % of the images, mean
    /// |difference| 0.010, largest 0.47 on a five-word caption whose verb is a synonym).
    func testMeteorGapToPycocoevalcapDefaultIsAsDocumented() throws {
        let (e, x) = (try Self.evaluation(), try Self.expected())
        let gap = e.scores.meteor - (try XCTUnwrap(x.corpus["METEOR"]))
        XCTAssertLessThan(abs(gap), 0.005, "corpus METEOR gap \(gap)")
        let perImage = try XCTUnwrap(e.perImage["METEOR"]), ref = try XCTUnwrap(x.perImage["METEOR"])
        let diffs = zip(perImage, ref).map { abs($0 - $1) }
        let mean = diffs.reduce(0, +) / Double(diffs.count)
        let equal = Double(diffs.filter { $0 < 1e-12 }.count) / Double(diffs.count)
        XCTAssertLessThan(mean, 0.02, "mean per-image METEOR gap \(mean)")
        XCTAssertGreaterThan(equal, 0.6, "share of images where METEOR is identical: \(equal)")
        XCTAssertLessThan(diffs.max() ?? 0, 0.5, "largest per-image METEOR gap")
    }

    func testSnowballStemmerMatchesTheJar() throws {
        let pairs = try Fixture.pairs("english_stemmer")
        XCTAssertGreaterThan(pairs.count, 300)
        let wrong = pairs.filter { EnglishStemmer.stem($0.0) != $0.1 }.map { "\($0.0) → \(EnglishStemmer.stem($0.0)) (jar: \($0.1))" }
        XCTAssert(wrong.isEmpty, "\(wrong.count) stems differ: " + wrong.prefix(20).joined(separator: ", "))
    }

    func testMeteorNormalizerMatchesTheJar() throws {
        let changed = try Fixture.pairs("meteor_normalizer")
        XCTAssertGreaterThan(changed.count, 100)
        var wrong = changed.filter { MeteorNormalizer.normalize($0.0) != $0.1 }.map { "\($0.0.debugDescription) → \(MeteorNormalizer.normalize($0.0).debugDescription) (jar: \($0.1.debugDescription))" }
        // Every other tokenized caption was normalized by the jar too and came out unchanged.
        let changedInputs = Set(changed.map(\.0))
        let tok = try XCTUnwrap(Fixture.json("ptb_tokenizer") as? [String: Any])
        let all = (tok["references"] as? [String] ?? []) + (tok["results"] as? [String] ?? [])
            + (tok["probes"] as? [[String]] ?? []).map { $0[1] }
        for line in Set(all.map { $0.replacingOccurrences(of: "|||", with: "").replacingOccurrences(of: "  ", with: " ").trimmingCharacters(in: .whitespaces) })
        where !line.isEmpty && !changedInputs.contains(line) {
            let got = MeteorNormalizer.normalize(line)
            if got != line { wrong.append("\(line.debugDescription) → \(got.debugDescription) (jar: unchanged)") }
        }
        XCTAssert(wrong.isEmpty, "\(wrong.count) lines differ:\n" + wrong.prefix(20).joined(separator: "\n"))
    }
}
