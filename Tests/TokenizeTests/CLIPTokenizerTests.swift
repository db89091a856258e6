import Foundation
@testable import Tensor
import TestSupport
@testable import Tokenize
import XCTest

/// CLIP's byte-level BPE against its references (tools/fixtures/clip_bpe.py →
/// Resources/clip_bpe.json): CLIP's own tokenizer (clip/simple_tokenizer.py with ftfy) and
/// transformers' CLIPTokenizer, on the WordPiece fixture's hostile lines plus lines for CLIP's
/// cleaning (HTML entities, quotes, ligatures, widths, escapes, contractions, specials).
final class CLIPTokenizerTests: XCTestCase {
    struct Case: Decodable { let text: String; let ids: [Int32]; let mojibake: Bool?; let hf_nfc: Bool?; let hf: [Int32]? }
    struct Fixture: Decodable {
        struct Context: Decodable { let text: String; let ids: [Int32] }
        let context_77: Context
        let cases: [Case]
    }

    static let fixture: Fixture? = {
        guard let url = Bundle.module.url(forResource: "clip_bpe", withExtension: "json", subdirectory: "Resources"),
              let data = try? Data(contentsOf: url) else { return nil }
        return try? JSONDecoder().decode(Fixture.self, from: data)
    }()

    /// Vocab/clip-bpe-16e6.txt.gz, installed by tools/setup; a failure when it is missing.
    static func mergesPath() throws -> String {
        let path = Repository.path("Vocab/clip-bpe-16e6.txt.gz")
        guard FileManager.default.fileExists(atPath: path) else {
            throw VideoBertError("missing: run tools/setup", file: path)
        }
        return path
    }

    /// Read once per normalization for the whole test case (about a second each in debug builds).
    nonisolated(unsafe) static var loaded: [CLIPTokenizer.Normalization: CLIPTokenizer] = [:]

    func tokenizer(_ normalization: CLIPTokenizer.Normalization) throws -> CLIPTokenizer {
        if let t = Self.loaded[normalization] { return t }
        let t = try CLIPTokenizer(bpeFile: try Self.mergesPath(), normalization: normalization)
        Self.loaded[normalization] = t
        return t
    }

    func testVocabularyHasCLIPsSizeAndSpecials() throws {
        let t = try tokenizer(.clip)
        XCTAssertEqual(t.tokens.count, 49_408)
        XCTAssertEqual(t.startId, 49_406)
        XCTAssertEqual(t.endId, 49_407)
    }

    func testIdsEqualCLIPsReferenceTokenizer() throws {
        let fixture = try XCTUnwrap(Self.fixture, "Resources/clip_bpe.json")
        let t = try tokenizer(.clip)
        var compared = 0, mojibake = 0
        for c in fixture.cases {
            // ftfy's mojibake repair (fix_encoding) is not reproduced: those lines are counted.
            if c.mojibake == true { mojibake += 1; continue }
            XCTAssertEqual(t.encode(c.text), c.ids, "\(c.text.debugDescription)")
            compared += 1
        }
        XCTAssertGreaterThan(compared, 400)
        XCTAssertLessThanOrEqual(mojibake, 2)
    }

    func testIdsEqualTransformersCLIPTokenizer() throws {
        let fixture = try XCTUnwrap(Self.fixture, "Resources/clip_bpe.json")
        let t = try tokenizer(.huggingFace)
        var differing = 0, olderNFC = 0
        for c in fixture.cases {
            // tokenizers' NFC has older tables (marks added since are not reordered): not copied.
            if c.hf_nfc == true { olderNFC += 1; continue }
            XCTAssertEqual(t.encode(c.text), c.hf ?? c.ids, "\(c.text.debugDescription)")
            if c.hf != nil { differing += 1 }
        }
        XCTAssertLessThanOrEqual(olderNFC, 20)
        // The two references really differ (entities, quotes, widths, scripts): both are tested.
        XCTAssertGreaterThan(differing, 20)
    }

    func testClipTokenizePadsAndTruncatesAsClip() throws {
        let fixture = try XCTUnwrap(Self.fixture)
        let t = try tokenizer(.clip)
        let ids = t.tokenize(fixture.context_77.text)
        XCTAssertEqual(ids.count, 77)
        XCTAssertEqual(Array(ids.prefix(fixture.context_77.ids.count)), fixture.context_77.ids)
        XCTAssertTrue(ids.dropFirst(fixture.context_77.ids.count).allSatisfy { $0 == 0 })
        let long = t.tokenize(String(repeating: "onion ", count: 200))
        XCTAssertEqual(long.count, 77)
        XCTAssertEqual(long.first, t.startId)
        XCTAssertEqual(long.last, t.endId)
        XCTAssertEqual(t.decode(t.encode("slice the onion &amp; fry it")), "slice the onion & fry it ")
    }

    /// A Hugging Face CLIP folder (vocab.json + merges.txt) gives the same tokenizer as the merges file.
    func testHuggingFaceFolderReadsTheSame() throws {
        let gz = try tokenizer(.huggingFace)
        let dir = NSTemporaryDirectory() + "clip-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var vocab: [String: Int] = [:]
        for (i, token) in gz.tokens.enumerated() { vocab[token] = i }
        try JSONSerialization.data(withJSONObject: vocab).write(to: URL(fileURLWithPath: dir + "/vocab.json"))
        let merges = try CLIPTokenizer.readMerges(try Self.mergesPath())
        try ("#version: 0.2\n" + merges.map { "\($0.0) \($0.1)" }.joined(separator: "\n") + "\n")
            .write(toFile: dir + "/merges.txt", atomically: true, encoding: .utf8)
        let folder = try CLIPTokenizer(path: dir)
        XCTAssertEqual(folder.normalization, .huggingFace)
        for text in ["a photo of a cat", "Slice the ONION, then fry it!!", "“curly” &amp; ｆｕｌｌ"] {
            XCTAssertEqual(folder.encode(text), gz.encode(text), text)
        }
    }

    func testHostileVocabulariesAreOneLineErrors() throws {
        let dir = NSTemporaryDirectory() + "clip-bad-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func error(_ body: () throws -> Void) -> String {
            do { try body(); return "" } catch { return "\(error)" }
        }
        // Not a JSON object; ids that collide; a merge that is not two symbols.
        try Data("[1, 2]".utf8).write(to: URL(fileURLWithPath: dir + "/vocab.json"))
        try Data("#version: 0.2\na b\n".utf8).write(to: URL(fileURLWithPath: dir + "/merges.txt"))
        XCTAssertTrue(error { _ = try CLIPTokenizer(path: dir) }.contains("vocab.json: not a JSON object"))
        try Data(#"{"a": 0, "b": 0}"#.utf8).write(to: URL(fileURLWithPath: dir + "/vocab.json"))
        XCTAssertTrue(error { _ = try CLIPTokenizer(path: dir) }.contains("is not a unique integer"))
        try Data("#version\nx\n".utf8).write(to: URL(fileURLWithPath: dir + "/bad.txt"))
        XCTAssertTrue(error { _ = try CLIPTokenizer(path: dir + "/bad.txt") }.contains("bad.txt: line 2: not a merge"))
        // A truncated gzip file, and a small one that inflates past the limit.
        let real = try Data(contentsOf: URL(fileURLWithPath: try Self.mergesPath()))
        try real.prefix(5000).write(to: URL(fileURLWithPath: dir + "/cut.txt.gz"))
        XCTAssertTrue(error { _ = try CLIPTokenizer(path: dir + "/cut.txt.gz") }.contains("truncated gzip data"))
        XCTAssertTrue(error { _ = try Gzip.decompress(real, limit: 1000, file: "x.gz") }.contains("more than 1000 bytes"))
        XCTAssertTrue(error { _ = try CLIPTokenizer(path: dir + "/missing.gz") }.contains("no such CLIP vocabulary"))
    }
}
