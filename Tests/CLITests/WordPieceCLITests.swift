import Foundation
import XCTest
import TestSupport

final class WordPieceCLITests: XCTestCase {
    func testIdsPerLineAsJSON() throws {
        let vocab = try Repository.bertVocabulary()
        // Reference ids from HF tokenizers' BertWordPieceTokenizer (uncased, no [CLS]/[SEP]).
        let r = try CLI.run(["wordpiece", "--vocab", vocab], stdin: "Hello, world!\n\nunaffable\nCafé 中文 [MASK] test")
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "[7592,1010,2088,999]\n[]\n[14477,20961,3468]\n[7668,1746,1861,103,3231]\n")
        let cased = try CLI.run(["wordpiece", "--vocab", vocab, "--cased"], stdin: "Hello hello\n")
        XCTAssertEqual(cased.stdout, "[100,7592]\n")
    }

    func testLargeInputKeepsOneLinePerLine() throws {
        let vocab = try Repository.bertVocabulary()
        let sample = ["so today we're going to make a 3-layer cake", "ok", "", "Ünïcödé ΣΑΣ 한국어 😀", "[Music]"]
        let lines = (0..<30000).map { sample[$0 % sample.count] + " \($0)" }
        let r = try CLI.run(["wordpiece", "--vocab", vocab], stdin: lines.joined(separator: "\n") + "\n")
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(out.count, lines.count + 1)  // + the empty string after the last newline
        // Line k differs from line k + 5 only in its number.
        let ids = try out.dropLast().map { try JSONDecoder().decode([Int].self, from: Data($0.utf8)) }
        XCTAssertEqual(ids[7].dropLast(), ids[7 + 5 * 1000].dropLast(2))  // "7" vs "5007" → 5007 splits in two
        XCTAssertEqual(ids[3].count, ids[8].count)
    }

    func testVocabularyErrors() throws {
        let dir = try temporaryFolder(named: "wordpiece-cli")
        let missing = dir + "/nope.txt"
        let r = try CLI.run(["wordpiece", "--vocab", missing], stdin: "hello\n")
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "error: \(missing): no such vocabulary file\n")
        let bad = dir + "/bad.txt"
        try Data([0x61, 0x0A, 0xC3, 0x28, 0x0A]).write(to: URL(fileURLWithPath: bad))
        let b = try CLI.run(["wordpiece", "--vocab", bad], stdin: "hello\n")
        XCTAssertEqual(b.status, 1)
        XCTAssertEqual(b.stderr, "error: \(bad): line 2: not valid UTF-8; a vocab.txt has one token per line\n")
        let json = dir + "/config.json"
        try "{\"vocab_size\": 30522}\n".write(toFile: json, atomically: true, encoding: .utf8)
        let j = try CLI.run(["wordpiece", "--vocab", json], stdin: "hello\n")
        XCTAssertEqual(j.status, 1)
        XCTAssertTrue(j.stderr.hasPrefix("error: \(json): no [UNK] entry"), j.stderr)
    }

    func testHelpHasExamples() throws {
        for args in [["wordpiece", "--help"], ["vocab", "--help"], ["vocab", "text", "--help"]] {
            let r = try CLI.run(args)
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("Example:"), "\(args): \(r.stdout)")
        }
        XCTAssertTrue(try CLI.run(["vocab", "--help"]).stdout.contains("text"))
    }

    func testVocabTextTrainsAUsableVocabulary() throws {
        let dir = try temporaryFolder(named: "wordpiece-cli")
        let corpus = dir + "/corpus"
        try FileManager.default.createDirectory(atPath: corpus, withIntermediateDirectories: true)
        let text = (0..<400).map { i in
            ["kimchi jjigae needs gochugaru and doenjang", "stir the gochujang sauce", "bibimbap with gochujang",
             "Ferment the kimchi for \(i % 7) days"][i % 4]
        }.joined(separator: "\n")
        try text.write(toFile: corpus + "/talk.txt", atomically: true, encoding: .utf8)
        try "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\ndoenjang jjigae\n".write(toFile: corpus + "/talk.vtt", atomically: true, encoding: .utf8)
        let out = dir + "/vocab.txt"
        let r = try CLI.run(["vocab", "text", corpus, "--size", "80", "--unused", "3", "--out", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        let summary = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(summary?["entries"] as? Int, 80)
        XCTAssertEqual(summary?["files"] as? Int, 2)
        let tokens = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map(String.init)
        XCTAssertEqual(Array(tokens.prefix(8)), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]", "[unused1]", "[unused2]"])
        XCTAssertTrue(tokens.contains("gochujang") || tokens.contains("kimchi"), "\(tokens)")
        // The new vocabulary tokenizes its corpus without [UNK].
        let ids = try CLI.run(["wordpiece", "--vocab", out], stdin: text)
        XCTAssertEqual(ids.status, 0, ids.stderr)
        let unk = try XCTUnwrap(tokens.firstIndex(of: "[UNK]"))
        let rows = try ids.stdout.split(separator: "\n").map { try JSONDecoder().decode([Int].self, from: Data($0.utf8)) }
        XCTAssertEqual(rows.count, 400)
        XCTAssertFalse(rows.joined().contains(unk))
        // No temporary files left beside the output.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["corpus", "vocab.txt"])

        let missing = try CLI.run(["vocab", "text", dir + "/none", "--out", out])
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(missing.stderr, "error: \(dir)/none: no such file or folder\n")
    }
}
