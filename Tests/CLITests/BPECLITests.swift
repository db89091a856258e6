import Foundation
import TestSupport
import XCTest

/// `videobert bpe` end to end: the fixture's lines (tools/fixtures/clip_bpe.py) through the binary
/// give CLIP's reference ids, and with --normalization huggingface transformers' ids.
final class BPECLITests: XCTestCase {
    struct Case: Decodable { let text: String; let ids: [Int32]; let mojibake: Bool?; let hf_nfc: Bool?; let hf: [Int32]? }
    struct Fixture: Decodable { let cases: [Case] }

    func testLinesGiveTheReferenceIds() throws {
        let vocab = Repository.path("Vocab/clip-bpe-16e6.txt.gz")
        let data = try Data(contentsOf: URL(fileURLWithPath: Repository.path("Tests/TokenizeTests/Resources/clip_bpe.json")))
        // One line per case: texts without line breaks (the command reads lines).
        let cases = try JSONDecoder().decode(Fixture.self, from: data).cases.filter {
            $0.mojibake != true && $0.hf_nfc != true && !$0.text.unicodeScalars.contains { [0x0A, 0x0D].contains($0.value) }
        }
        XCTAssertGreaterThan(cases.count, 300)
        let stdin = cases.map(\.text).joined(separator: "\n") + "\n"
        for (normalization, expected) in [("clip", cases.map(\.ids)), ("huggingface", cases.map { $0.hf ?? $0.ids })] {
            let r = try CLI.run(["bpe", "--vocab", vocab, "--normalization", normalization], stdin: stdin)
            XCTAssertEqual(r.status, 0, r.stderr)
            let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            XCTAssertEqual(lines.count, cases.count, normalization)
            for (line, (ids, c)) in zip(lines, zip(expected, cases)) {
                XCTAssertEqual(try JSONDecoder().decode([Int32].self, from: Data(line.utf8)), ids, "\(normalization): \(c.text.debugDescription)")
            }
        }
        let padded = try CLI.run(["bpe", "--vocab", vocab, "--context", "8"], stdin: "a photo of a cat\n")
        XCTAssertEqual(padded.stdout, "[49406,320,1125,539,320,2368,49407,0]\n", padded.stderr)
        let missing = try CLI.run(["bpe", "--vocab", "/nonexistent/merges.txt.gz"], stdin: "x\n")
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(missing.stderr, "error: /nonexistent/merges.txt.gz: no such CLIP vocabulary (a bpe_simple_vocab_16e6.txt.gz or a Hugging Face CLIP folder)\n")
    }
}
