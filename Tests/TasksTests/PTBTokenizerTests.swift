import XCTest
@testable import Tasks

/// PTB tokenization against pycocoevalcap's (Stanford CoreNLP 3.4.1 + its punctuation removal).
final class PTBTokenizerTests: XCTestCase {
    private func check(_ pairs: [(String, String)], _ label: String, got batch: [String]? = nil,
                       file: StaticString = #filePath, line: UInt = #line) {
        var failures: [String] = []
        for (k, (raw, expected)) in pairs.enumerated() {
            let got = batch?[k] ?? PTBTokenizer.cocoTokenize(raw)
            if got != expected { failures.append("\(raw.debugDescription)\n   expected \(expected.debugDescription)\n        got \(got.debugDescription)") }
        }
        XCTAssert(failures.isEmpty, "\(label): \(failures.count) of \(pairs.count) differ:\n" + failures.prefix(25).joined(separator: "\n"),
                  file: file, line: line)
    }

    /// pycocoevalcap tokenizes all references in one run (images in order, each image's captions in
    /// order) and all predictions in another; a few rules look at the next line, so do the same.
    func testEveryFixtureCaptionMatchesPycocoevalcap() throws {
        let refs = try CaptionFiles.loadReferences(Fixture.path("caption_references"))
        let preds = try CaptionFiles.loadPredictions(Fixture.path("caption_results"))
        let tok = try XCTUnwrap(Fixture.json("ptb_tokenizer") as? [String: Any])
        let refTok = try XCTUnwrap(tok["references"] as? [String])  // in annotation-file order
        let resTok = try XCTUnwrap(tok["results"] as? [String])     // in results-file order
        let raw = try Fixture.rawCaptions()
        XCTAssertEqual(refTok.count, raw.references.count)
        XCTAssertEqual(resTok.count, raw.results.count)

        // Expected per image, in file order within each image.
        let annotations = try XCTUnwrap((Fixture.json("caption_references") as? [String: Any])?["annotations"] as? [[String: Any]])
        var expectedByImage: [String: [String]] = [:]
        for (a, t) in zip(annotations, refTok) { expectedByImage["\(a["image_id"]!)", default: []].append(t) }

        let batch = refs.imageIDs.flatMap { refs.captions(for: $0)! }
        let got = PTBTokenizer.cocoTokenize(batch)
        var pairs: [(String, String)] = []
        var expected: [String] = []
        for id in refs.imageIDs { expected += expectedByImage["\(id)"]! }
        for (k, raw) in batch.enumerated() { pairs.append((raw, expected[k])) }
        check(pairs, "references", got: got)

        let predBatch = refs.imageIDs.map { preds.caption(for: $0)! }
        let expectedPred = refs.imageIDs.map { id in resTok[preds.entries.firstIndex { $0.imageID == id }!] }
        check(Array(zip(predBatch, expectedPred)), "results", got: PTBTokenizer.cocoTokenize(predBatch))
    }

    func testHandWrittenProbesMatchCoreNLP() throws {
        let tok = try XCTUnwrap(Fixture.json("ptb_tokenizer") as? [String: Any])
        let probes = try XCTUnwrap(tok["probes"] as? [[String]]).map { ($0[0], $0[1]) }
        XCTAssertGreaterThan(probes.count, 20)
        // pycocoevalcap tokenized the probes as one run too.
        check(probes, "probes", got: PTBTokenizer.cocoTokenize(probes.map(\.0)))
    }

    func testClitics() {
        XCTAssertEqual(PTBTokenizer.tokens("He doesn't like it's"), ["he", "does", "n't", "like", "it", "'s"])
        XCTAssertEqual(PTBTokenizer.tokens("I can't, won't"), ["i", "ca", "n't", ",", "wo", "n't"])
        XCTAssertEqual(PTBTokenizer.tokens("Cannot gonna"), ["can", "not", "gon", "na"])
    }

    func testBracketsSurvivePunctuationRemovalAsInPycocoevalcap() {
        // CoreNLP lower-cases -LRB- to -lrb-, which pycocoevalcap's list (upper case) does not remove.
        XCTAssertEqual(PTBTokenizer.cocoTokenize("Add salt (optional)."), "add salt -lrb- optional -rrb-")
        XCTAssertEqual(PTBTokenizer.cocoTokenize("\"Stir,\" she said... -- ok!"), "stir she said ok")
    }

    func testEmptyAndWhitespaceCaptions() {
        XCTAssertEqual(PTBTokenizer.cocoTokenize(""), "")
        XCTAssertEqual(PTBTokenizer.cocoTokenize("  \t "), "")
        XCTAssertEqual(PTBTokenizer.cocoTokenize("..."), "")
    }
}
