import Foundation
import XCTest
import Tensor
@testable import Tokenize

final class WordPieceTrainerTests: XCTestCase {
    func resource(_ name: String) throws -> String {
        let url = try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "txt", subdirectory: "Resources"),
                                "\(name).txt missing: run tools/fixtures/wordpiece_train.py")
        return url.path
    }

    /// The settings tools/fixtures/wordpiece_train.py gives HF's trainer.
    func fixtureOptions() -> WordPieceTrainer.Options {
        var o = WordPieceTrainer.Options()
        o.vocabularySize = 800
        o.minFrequency = 2
        o.limitAlphabet = 1000
        o.unusedSlots = 10
        return o
    }

    func testTrainedVocabularyCoversCorpusAndAgreesWithHF() throws {
        let lines = try TextCorpusReader.lines(ofFile: try resource("vocab_train_corpus"))
        var trainer = WordPieceTrainer(options: fixtureOptions())
        trainer.add(lines: lines)
        let (vocabulary, summary) = trainer.train()
        XCTAssertEqual(vocabulary.count, 800)
        XCTAssertEqual(summary.entries, 800)

        // Specials first, then the [unusedN] slots.
        let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (0..<10).map { "[unused\($0)]" }
        XCTAssertEqual(Array(vocabulary.tokens.prefix(15)), specials)

        // Every character of every word: as a word start, and as "##c" where it continues a word.
        let basic = BasicTokenizer(lowercase: true)
        for line in lines {
            for word in basic.tokenize(line) {
                for (i, s) in word.unicodeScalars.enumerated() {
                    let piece = i == 0 ? String(s) : "##" + String(s)
                    XCTAssertNotNil(vocabulary.id(of: piece), "\(piece) of \(word) not in the vocabulary")
                }
            }
        }

        // So the tokenizer never needs [UNK] on the training text.
        let tokenizer = BertTokenizer(vocabulary: vocabulary)
        let unk = try XCTUnwrap(vocabulary.id(of: "[UNK]"))
        let ids = tokenizer.encode(lines: lines).flatMap { $0 }
        XCTAssertFalse(ids.contains(unk))
        // And the merges did their job: far fewer pieces than characters.
        let characters = lines.reduce(0) { $0 + basic.tokenize($1).reduce(0) { $0 + $1.unicodeScalars.count } }
        XCTAssertLessThan(ids.count * 2, characters)

        // HF tokenizers' trainer on the same corpus and settings. Not identical (HF breaks ties
        // between equally frequent pairs by hash-map order, so its own runs differ; the fixture
        // script measured ≥ 98% agreement between HF runs); compare what is well defined:
        let hf = try TextVocabulary.load(try resource("vocab_train_hf"))
        XCTAssertEqual(hf.count, vocabulary.count)
        // the specials and the alphabet (sorted by code point), position by position;
        let alphabetEnd = 15 + summary.alphabet
        XCTAssertEqual(Array(vocabulary.tokens[0..<alphabetEnd]), Array(hf.tokens[0..<alphabetEnd]))
        // the learned tokens as a set.
        let shared = Set(vocabulary.tokens).intersection(hf.tokens).count
        let overlap = Double(shared) / Double(hf.count)
        XCTAssertGreaterThanOrEqual(overlap, 0.95, "only \(shared) of \(hf.count) tokens shared with HF's trainer")
        print("vocab text: \(shared)/\(hf.count) tokens shared with HF tokenizers' WordPieceTrainer (\(overlap))")

        // Deterministic.
        XCTAssertEqual(trainer.train().vocabulary, vocabulary)
    }

    func testMinFrequencyAndTieBreaking() {
        var o = WordPieceTrainer.Options()
        o.vocabularySize = 100
        o.minFrequency = 2
        o.specialTokens = ["[UNK]"]
        var trainer = WordPieceTrainer(options: o)
        trainer.add(lines: ["abab abab", "cd"])
        let v = trainer.train().vocabulary
        // Alphabet sorted, then "##" pieces in word order (##b 5, ##a 6, ##d 7). All three pairs
        // of "abab" occur twice; the smallest ids go first: (a, ##b) → "ab", then (##a, ##b) →
        // "##ab" (ids 6, 5 < 8, 6), then (ab, ##ab) → "abab". "cd" occurs once: never merged.
        XCTAssertEqual(v.tokens, ["[UNK]", "a", "b", "c", "d", "##b", "##a", "##d", "ab", "##ab", "abab"])
        XCTAssertEqual(BertTokenizer(vocabulary: v).tokenize("abab cd"), ["abab", "c", "##d"])
    }

    func testAlphabetLimitKeepsMostFrequent() {
        var o = WordPieceTrainer.Options()
        o.limitAlphabet = 2
        o.specialTokens = ["[UNK]"]
        var trainer = WordPieceTrainer(options: o)
        trainer.add(lines: ["aaa bbb c"])
        let v = trainer.train().vocabulary
        XCTAssertNotNil(v.id(of: "a"))
        XCTAssertNotNil(v.id(of: "b"))
        XCTAssertNil(v.id(of: "c"))
    }

    func testSubtitlesAreReadAsText() throws {
        let dir = NSTemporaryDirectory() + "corpus-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        try "WEBVTT\nKind: captions\n\nNOTE a comment\nstill the note\n\n1\n00:00:01.000 --> 00:00:02.000 align:start\nhello <c.yellow>there</c>\n\n00:00:02.000 --> 00:00:03.000\nsecond cue\n"
            .write(toFile: dir + "/a.vtt", atomically: true, encoding: .utf8)
        try "1\r\n00:00:01,000 --> 00:00:02,000\r\nsrt line\r\n\r\n2\r\n00:00:02,000 --> 00:00:03,000\r\n42 is the answer\r\n"
            .write(toFile: dir + "/b.srt", atomically: true, encoding: .utf8)
        try "plain\n\ntext\n".write(toFile: dir + "/c.txt", atomically: true, encoding: .utf8)
        try #"{"v1": {"start": [0, 2], "end": [2, 4], "text": ["json caption", "and more"]}}"#
            .write(toFile: dir + "/d.json", atomically: true, encoding: .utf8)
        try "ignored".write(toFile: dir + "/e.md", atomically: true, encoding: .utf8)
        let files = try TextCorpusReader.files([dir])
        XCTAssertEqual(files.map { ($0 as NSString).lastPathComponent }, ["a.vtt", "b.srt", "c.txt", "d.json"])
        XCTAssertEqual(try files.flatMap { try TextCorpusReader.lines(ofFile: $0) },
                       ["hello there", "second cue", "srt line", "42 is the answer", "plain", "text", "json caption", "and more"])
        XCTAssertThrowsError(try TextCorpusReader.files([dir + "/missing"])) { e in
            XCTAssertEqual("\(e)", "\(dir)/missing: no such file or folder")
        }
    }
}
