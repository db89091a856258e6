import Foundation
import XCTest
import TestSupport
import Tensor
@testable import Tokenize

/// A parity fixture written by tools/fixtures/wordpiece.py.
struct WordPieceFixture: Decodable {
    struct Case: Decodable {
        var text: String
        var ids: [Int32]
        var legacy: [Int32]?
    }
    var lowercase: Bool
    var vocab_sha256: String
    var cases: [Case]
    struct WordCase: Decodable {
        var text: String
        var words: [String]
    }
    var word_cases: [WordCase]
    var scalar_block_size: Int
    var scalar_block_fnv64: [String]

    static func load(_ name: String) throws -> WordPieceFixture {
        let url = try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Resources"),
                                "fixture \(name).json missing: run tools/fixtures/wordpiece.py")
        return try JSONDecoder().decode(WordPieceFixture.self, from: Data(contentsOf: url))
    }
}

final class WordPieceTests: XCTestCase {
    static let vocabulary: TextVocabulary? = try? TextVocabulary.load(bertVocabularyPathUnchecked())

    static func bertVocabularyPathUnchecked() -> String { Repository.path("Vocab/bert-base-uncased.txt") }

    func bertVocabulary() throws -> TextVocabulary {
        _ = try Repository.bertVocabulary()
        return try XCTUnwrap(Self.vocabulary, "cannot load the BERT vocabulary")
    }

    // MARK: Parity with HF tokenizers

    func checkFixture(_ name: String) throws {
        let fixture = try WordPieceFixture.load(name)
        let vocabulary = try bertVocabulary()
        XCTAssertEqual(vocabulary.count, 30522)
        let tokenizer = BertTokenizer(vocabulary: vocabulary, lowercase: fixture.lowercase)
        var failures: [String] = []
        for c in fixture.cases {
            let ids = tokenizer.encode(c.text)
            if ids != c.ids {
                failures.append("\(c.text.debugDescription): got \(ids) want \(c.ids)")
            }
        }
        XCTAssertTrue(failures.isEmpty, "\(failures.count) of \(fixture.cases.count) lines differ from HF tokenizers:\n"
                      + failures.prefix(10).joined(separator: "\n"))
        // The batch API gives the same ids.
        XCTAssertEqual(tokenizer.encode(lines: fixture.cases.map(\.text)), fixture.cases.map(\.ids))
        // The fixture does exercise lines where the Python reference disagrees with HF.
        XCTAssertGreaterThan(fixture.cases.filter { $0.legacy != nil }.count, 10)
        XCTAssertGreaterThan(fixture.cases.count, 300)
    }

    func testUncasedIdsEqualHFTokenizers() throws { try checkFixture("wordpiece_uncased") }
    func testCasedIdsEqualHFTokenizers() throws { try checkFixture("wordpiece_cased") }

    /// Every Unicode scalar, between two letters: the words of our basic tokenization hash to the
    /// same value as HF's normalizer + pre-tokenizer output, block by block.
    func checkEveryScalar(_ name: String) throws {
        let fixture = try WordPieceFixture.load(name)
        let basic = BasicTokenizer(lowercase: fixture.lowercase)
        let blockSize = fixture.scalar_block_size
        XCTAssertEqual(fixture.scalar_block_fnv64.count, 0x110000 / blockSize)
        var differing: [String] = []
        var text: [UInt8] = []
        for (k, expected) in fixture.scalar_block_fnv64.enumerated() {
            text.removeAll(keepingCapacity: true)
            for v in (k * blockSize)..<((k + 1) * blockSize) {
                guard let s = Unicode.Scalar(v) else { continue }
                text.append(0x78)
                text.append(contentsOf: String(s).utf8)
                text.append(contentsOf: [0x78, 0x20])
            }
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            text.withUnsafeBufferPointer { buffer in
                for word in basic.words(utf8: buffer) {
                    for b in word.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
                    h = (h ^ 0xFF) &* 0x100_0000_01b3
                }
            }
            if String(format: "%016llx", h) != expected {
                differing.append(String(format: "U+%04X–U+%04X", k * blockSize, (k + 1) * blockSize - 1))
            }
        }
        XCTAssertTrue(differing.isEmpty, "basic tokenization differs from HF tokenizers in blocks \(differing.prefix(20))")
    }

    func testEveryScalarUncasedMatchesHF() throws { try checkEveryScalar("wordpiece_uncased") }
    func testEveryScalarCasedMatchesHF() throws { try checkEveryScalar("wordpiece_cased") }

    /// The words themselves (HF's normalizer + pre-tokenizer output), including lines that put
    /// every combining mark beside others, where canonical reordering shows.
    func checkWords(_ name: String) throws {
        let fixture = try WordPieceFixture.load(name)
        let basic = BasicTokenizer(lowercase: fixture.lowercase)
        var failures: [String] = []
        // Compared as bytes: Swift's String == is canonical equivalence, blind to mark order.
        for c in fixture.word_cases where basic.tokenize(c.text).map({ Array($0.utf8) }) != c.words.map({ Array($0.utf8) }) {
            failures.append("\(c.text.debugDescription): got \(basic.tokenize(c.text)) want \(c.words)")
        }
        XCTAssertTrue(failures.isEmpty, "\(failures.count) of \(fixture.word_cases.count) lines differ:\n" + failures.prefix(5).joined(separator: "\n"))
    }

    func testUncasedWordsEqualHFPreTokenizer() throws { try checkWords("wordpiece_uncased") }
    func testCasedWordsEqualHFPreTokenizer() throws { try checkWords("wordpiece_cased") }

    // MARK: Behaviour on a small vocabulary

    func tinyVocabulary(_ extra: [String] = []) -> TextVocabulary {
        TextVocabulary(tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "a", "##a",
                                "b", ",", "hello", "##ll", "he", "cafe", "中"] + extra)
    }

    func testGreedyLongestMatchFirst() {
        let t = BertTokenizer(vocabulary: tinyVocabulary())
        XCTAssertEqual(t.tokenize("unaffable"), ["un", "##aff", "##able"])
        XCTAssertEqual(t.tokenize("UnAffable, hello"), ["un", "##aff", "##able", ",", "hello"])
        // Not decomposable: the whole word is [UNK], nothing partial.
        XCTAssertEqual(t.tokenize("unaffablex b"), ["[UNK]", "b"])
        // Accents stripped (NFD, Mn dropped) when uncased; kept when cased.
        XCTAssertEqual(t.tokenize("Café"), ["cafe"])
        XCTAssertEqual(BertTokenizer(vocabulary: tinyVocabulary(), lowercase: false).tokenize("Café cafe"), ["[UNK]", "cafe"])
        // CJK ideographs are words of their own.
        XCTAssertEqual(t.tokenize("a中b"), ["a", "中", "b"])
        // Special tokens written in the text.
        XCTAssertEqual(t.tokenize("a[MASK]b [mask]"), ["a", "[MASK]", "b", "[UNK]", "[UNK]", "[UNK]"])
        XCTAssertEqual(t.encode(""), [])
        XCTAssertEqual(t.encode(" \t\u{200B} "), [])
    }

    func testMaxInputCharsPerWord() {
        let t = BertTokenizer(vocabulary: tinyVocabulary())
        XCTAssertEqual(t.encode(String(repeating: "a", count: 100)), [8] + Array(repeating: 9, count: 99))
        XCTAssertEqual(t.encode(String(repeating: "a", count: 101)), [1])
        // Counted after normalization: "á" is one character once the accent is stripped...
        XCTAssertEqual(t.encode(String(repeating: "a\u{301}", count: 100)).count, 100)
        // ...and removed characters do not count.
        XCTAssertEqual(t.encode(String(repeating: "a\u{200B}", count: 100)).count, 100)
        XCTAssertEqual(WordPieceTokenizer(vocabulary: tinyVocabulary()).encode(word: String(repeating: "a", count: 101)), [1])
        XCTAssertEqual(WordPieceTokenizer(vocabulary: tinyVocabulary()).tokenize(word: "unaffable"), ["un", "##aff", "##able"])
    }

    func testBasicTokenizerWords() {
        let basic = BasicTokenizer(lowercase: true)
        XCTAssertEqual(basic.tokenize(" Héllo,\u{00A0}WORLD!! 你好 \u{0007}ok "), ["hello", ",", "world", "!", "!", "你", "好", "ok"])
        XCTAssertEqual(BasicTokenizer(lowercase: false).tokenize("Héllo, [MASK]"), ["Héllo", ",", "[", "MASK", "]"])
        // Canonical reordering across scalars of kept combining marks (class 216 before 226 wins).
        // (Compared as bytes: Swift's String == is canonical equivalence, blind to mark order.)
        XCTAssertEqual(basic.tokenize("x\u{1D16D}\u{1D165}").map { Array($0.utf8) }, [Array("x\u{1D165}\u{1D16D}".utf8)])
        XCTAssertEqual(basic.tokenize("x\u{1DF6}\u{1DFB}").map { Array($0.utf8) }, [Array("x\u{1DF6}\u{1DFB}".utf8)],
                       "U+1DF6 is newer than HF's normalization data (Unicode 9.0): class 0, no reordering")
        // HF order: strip accents, then lower-case, per scalar: Σ → σ even at the end of a word.
        XCTAssertEqual(basic.tokenize("ΣΑΣ"), ["σασ"])
    }

    func testInvalidUTF8IsDropped() {
        let t = BertTokenizer(vocabulary: tinyVocabulary())
        let bytes: [UInt8] = [0x75, 0x6E, 0xFF, 0x61, 0x66, 0x66, 0xC3, 0x61, 0x62, 0x6C, 0x65, 0xE2, 0x82]
        var ids: [Int32] = []
        t.withSession { session in
            bytes.withUnsafeBufferPointer { session.encode(utf8: $0, appendingTo: &ids) }
        }
        XCTAssertEqual(ids, t.encode("unaffable"))
    }

    func testConcurrentEncodingMatchesSerial() throws {
        let fixture = try WordPieceFixture.load("wordpiece_uncased")
        let tokenizer = BertTokenizer(vocabulary: try bertVocabulary())
        let texts = fixture.cases.map(\.text)
        let serial = tokenizer.encode(lines: texts)
        let results = UnsafeMutableBufferPointer<[Int32]>.allocate(capacity: texts.count)
        results.initialize(repeating: [])
        defer { results.deallocate() }
        nonisolated(unsafe) let out = results  // each index written by one iteration only
        DispatchQueue.concurrentPerform(iterations: texts.count) { i in out[i] = tokenizer.encode(texts[i]) }
        XCTAssertEqual(Array(results), serial)
    }

    // MARK: vocab.txt

    func write(_ data: Data) throws -> String {
        let path = NSTemporaryDirectory() + "vocab-\(UUID().uuidString).txt"
        try data.write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testVocabularyFileParsing() throws {
        // CRLF, trailing white space trimmed, the last duplicate wins, no final newline needed.
        let path = try write(Data("[UNK]\r\nhello  \nworld\nhello\n##s".utf8))
        let v = try TextVocabulary.load(path)
        XCTAssertEqual(v.tokens, ["[UNK]", "hello", "world", "hello", "##s"])
        XCTAssertEqual(v.id(of: "hello"), 3)
        XCTAssertEqual(BertTokenizer(vocabulary: v).encode("Hello worlds"), [3, 2, 4])
    }

    func testVocabularyErrorsNameTheFile() throws {
        let missing = NSTemporaryDirectory() + "no-such-vocab-\(UUID().uuidString).txt"
        XCTAssertThrowsError(try TextVocabulary.load(missing)) { e in
            XCTAssertEqual("\(e)", "\(missing): no such vocabulary file")
        }
        let binary = try write(Data([0x5B, 0x55, 0x4E, 0x4B, 0x5D, 0x0A, 0xFF, 0xFE, 0x00]))
        XCTAssertThrowsError(try TextVocabulary.load(binary)) { e in
            XCTAssertEqual("\(e)", "\(binary): line 2: not valid UTF-8; a vocab.txt has one token per line")
        }
        let empty = try write(Data())
        XCTAssertThrowsError(try TextVocabulary.load(empty)) { e in XCTAssertTrue("\(e)".hasPrefix("\(empty): empty vocabulary")) }
        let noUnknown = try write(Data("{\"a\": 1}\n".utf8))
        XCTAssertThrowsError(try TextVocabulary.load(noUnknown)) { e in
            XCTAssertEqual("\(e)", "\(noUnknown): no [UNK] entry in 1 lines; not a BERT WordPiece vocabulary")
        }
    }
}
