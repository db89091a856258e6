import Foundation
import XCTest
import Tensor
@testable import Tokenize
@testable import Train
import Model

/// The synthetic corpora of one test run live in one folder, removed when the process exits.
let syntheticCorporaRoot: String = {
    atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "videobert-test-corpora-\(getpid())") }
    return NSTemporaryDirectory() + "videobert-test-corpora-\(getpid())"
}()

/// A synthetic corpus: 6 videos × 8 segments. Video k's text ids are 1000 + 10k + j and its
/// visual words 10k + j, so every token says which video it came from.
func makeSyntheticCorpus(videos: Int = 6, segments: Int = 8, textVocab: Int = 2000, visualWords: Int = 100) throws -> TokenizedCorpus {
    let dir = syntheticCorporaRoot + "/synthcorpus-\(UUID().uuidString)"
    let builder = try CorpusBuilder(dir: dir, featureDim: nil, frameShape: nil)
    for k in 0..<videos {
        var segs: [AlignedSegment] = []
        var words: [Int32] = []
        var times: [(start: Double, end: Double)] = []
        for s in 0..<segments {
            let clips = 2 + s % 3
            let begin = words.count
            for j in 0..<clips { words.append(Int32(10 * k + (s + j) % 10)); times.append((Double(words.count), Double(words.count + 1))) }
            // Segment 0 is video-only, segment 1 text-only; the rest have both.
            let text: [Int32] = s == 0 ? [] : (0..<(3 + s)).map { Int32(1000 + 10 * k + $0 % 10) }
            segs.append(AlignedSegment(start: Double(begin), end: Double(words.count), textIDs: text,
                                       clipBegin: s == 1 ? words.count : begin, clipEnd: words.count))
        }
        try builder.append(TokenizedVideo(id: "v\(k)", split: k < 4 ? "train" : "val", source: nil, duration: Double(words.count),
                                          clipWords: words, clipTimes: times, segments: segs))
    }
    // A visual vocabulary of 10 × 10 words in 4 dimensions (word w's centroid encodes w).
    let level0: [Float] = (0..<10).flatMap { i -> [Float] in [Float(i), 0, 0, 0] }
    let level1: [Float] = (0..<100).flatMap { w -> [Float] in [Float(w / 10), Float(w % 10) * 0.1, 0, 0] }
    try VisualVocabulary(branching: 10, depth: 2, dim: 4, levels: [level0, level1]).save(to: dir + "/vocab")
    // A text vocabulary with BERT's special tokens at BERT's ids (see `testSpecial`).
    var tokens = (0..<textVocab).map { "w\($0)" }
    tokens[0] = "[PAD]"; tokens[1] = "[unused0]"; tokens[100] = "[UNK]"; tokens[101] = "[CLS]"; tokens[102] = "[SEP]"; tokens[103] = "[MASK]"
    try (tokens.joined(separator: "\n") + "\n").write(toFile: dir + "/text_vocab.txt", atomically: true, encoding: .utf8)
    _ = try builder.finish(textVocab: .init(file: "text_vocab.txt", size: textVocab, cased: false,
                                            fingerprint: try CorpusBuilder.fingerprint(of: dir + "/text_vocab.txt")),
                           visualVocab: .init(folder: "vocab", words: visualWords, branching: 10, depth: 2, dim: 4),
                           clipSeconds: 1, fps: 1, featureSource: "builtin", featureDim: 4, failures: 0)
    return try TokenizedCorpus(path: dir)
}

let testSpecial = SpecialTokens(pad: 0, unk: 100, cls: 101, sep: 102, mask: 103, videoSeparator: 1)

final class ExampleSamplerTests: XCTestCase {
    func testStructureOfSequences() throws {
        let corpus = try makeSyntheticCorpus()
        var s = ExampleSettings()
        s.maskProb = 0
        let sampler = try ExampleSampler(corpus: corpus, split: "train", settings: s, special: testSpecial, seed: 1)
        let b = sampler.nextBatch(64)
        var sawTV = false, sawText = false, sawVideo = false
        for i in 0..<b.B {
            let row = Array(b.inputIDs[(i * b.T)..<((i + 1) * b.T)])
            let types = Array(b.tokenTypeIDs[(i * b.T)..<((i + 1) * b.T)])
            let n = Int(b.attentionMask[(i * b.T)..<((i + 1) * b.T)].reduce(0, +))
            XCTAssertEqual(row[0], testSpecial.cls)
            XCTAssertEqual(row[n - 1], testSpecial.sep)
            XCTAssertTrue(row[n...].allSatisfy { $0 == testSpecial.pad })
            let hasText = row[1..<(n - 1)].contains { $0 >= 1000 && $0 < 2000 }
            let hasVideo = row[1..<(n - 1)].contains { $0 >= 2000 }
            if hasText && hasVideo {
                sawTV = true
                let sepAt = row.firstIndex(of: testSpecial.videoSeparator)!
                XCTAssertTrue(row[1..<sepAt].allSatisfy { $0 >= 1000 && $0 < 2000 })
                XCTAssertTrue(row[(sepAt + 1)..<(n - 1)].allSatisfy { $0 >= 2000 })
                XCTAssertEqual(types[sepAt], 0); XCTAssertEqual(types[sepAt + 1], 1); XCTAssertEqual(types[n - 1], 1)
                XCTAssertEqual(b.alignWeights[i], 1)
                // Label 1 ⇔ text and video from the same video.
                let textVideo = (Int(row[1]) - 1000) / 10, videoVideo = (Int(row[sepAt + 1]) - 2000) / 10
                XCTAssertEqual(b.alignLabels[i] == 1, textVideo == videoVideo)
            } else {
                XCTAssertEqual(b.alignWeights[i], 0)
                if hasText { sawText = true } else { sawVideo = true }
            }
            XCTAssertLessThanOrEqual(n, 1 + s.maxTextTokens + 1 + s.maxVideoTokens + 1)
        }
        XCTAssertTrue(sawTV && sawText && sawVideo)
    }

    func testMaskingRatesAndTargets() throws {
        let corpus = try makeSyntheticCorpus()
        let sampler = try ExampleSampler(corpus: corpus, split: "train", settings: ExampleSettings(), special: testSpecial, seed: 2)
        var masked = 0, kept = 0, random = 0, chosen = 0, tokens = 0
        for _ in 0..<50 {
            let b = sampler.nextBatch(32)
            for (r, target) in zip(b.textRows, b.textTargets) {
                XCTAssertTrue(target >= 1000 && target < 2000)
                let id = b.inputIDs[Int(r)]
                if id == testSpecial.mask { masked += 1 } else if id == target { kept += 1 } else { random += 1 }
            }
            for (r, target) in zip(b.videoRows, b.videoTargets) {
                XCTAssertTrue(target >= 0 && target < 100)
                let id = b.inputIDs[Int(r)]
                XCTAssertTrue(id == testSpecial.mask || id >= 2000, "video positions stay visual words")
            }
            chosen += b.textRows.count + b.videoRows.count
            tokens += b.inputIDs.enumerated().filter { b.attentionMask[$0.offset] == 1 && ($0.element >= 1000 || b.textRows.contains(Int32($0.offset)) || b.videoRows.contains(Int32($0.offset))) }.count
        }
        let total = Double(masked + kept + random)
        XCTAssertEqual(Double(masked) / total, 0.8, accuracy: 0.04)
        XCTAssertEqual(Double(kept) / total, 0.1, accuracy: 0.03)
        XCTAssertEqual(Double(chosen) / Double(tokens), 0.15, accuracy: 0.02)
    }

    func testDeterministicAndResumable() throws {
        let corpus = try makeSyntheticCorpus()
        let a = try ExampleSampler(corpus: corpus, split: "train", settings: ExampleSettings(), special: testSpecial, seed: 3)
        let b = try ExampleSampler(corpus: corpus, split: "train", settings: ExampleSettings(), special: testSpecial, seed: 3)
        for _ in 0..<5 { XCTAssertEqual(a.nextBatch(8).inputIDs, b.nextBatch(8).inputIDs) }
        // Save the state, run on, then restore into a fresh sampler: same batches.
        let saved = try JSONDecoder().decode(ExampleSampler.State.self, from: JSONEncoder().encode(a.currentState))
        let next = (0..<20).map { _ in a.nextBatch(8).inputIDs }
        let c = try ExampleSampler(corpus: corpus, split: "train", settings: ExampleSettings(), special: testSpecial, seed: 99)
        c.restore(saved)
        XCTAssertEqual((0..<20).map { _ in c.nextBatch(8).inputIDs }, next)
    }

    func testEmptySplitIsAnError() throws {
        let corpus = try makeSyntheticCorpus()
        XCTAssertThrowsError(try ExampleSampler(corpus: corpus, split: "test", settings: ExampleSettings(), special: testSpecial, seed: 0)) { e in
            XCTAssertTrue("\(e)".contains("'test' split has no segments"), "\(e)")
        }
    }
}

final class ExampleSamplerSliceTests: XCTestCase {
    /// Real tokens of example i of a batch (padding dropped).
    func rows(_ b: PretrainingBatch) -> [[Int32]] {
        (0..<b.B).map { i in (0..<b.T).filter { b.attentionMask[i * b.T + $0] == 1 }.map { b.inputIDs[i * b.T + $0] } }
    }

    func testSlicesOfAGlobalBatchEqualTheWholeBatch() throws {
        let corpus = try makeSyntheticCorpus()
        let whole = try ExampleSampler(corpus: corpus, split: "train", settings: ExampleSettings(), special: testSpecial, seed: 5)
        let r0 = try ExampleSampler(corpus: corpus, split: "train", settings: ExampleSettings(), special: testSpecial, seed: 5)
        let r1 = try ExampleSampler(corpus: corpus, split: "train", settings: ExampleSettings(), special: testSpecial, seed: 5)
        for _ in 0..<6 {
            let w = whole.nextBatch(16)
            let a = r0.nextBatch(global: 16, slice: 0..<8), b = r1.nextBatch(global: 16, slice: 8..<16)
            XCTAssertEqual(rows(a) + rows(b), rows(w))
            XCTAssertEqual(a.alignLabels + b.alignLabels, w.alignLabels)
            XCTAssertEqual(a.textTargets + b.textTargets, w.textTargets)
            XCTAssertEqual(a.videoTargets + b.videoTargets, w.videoTargets)
        }
        XCTAssertEqual(r0.currentState, r1.currentState, "every rank stays at the same data position")
    }
}
