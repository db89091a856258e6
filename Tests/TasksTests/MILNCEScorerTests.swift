import Backbones
import Foundation
import XCTest
@testable import Tasks
import Tensor
import TestSupport
@testable import Tokenize

/// `MILNCEScorer`: zero-shot text→video scores from a corpus whose clip rows are MIL-NCE joint
/// embeddings. The text tower's parity with the reference is Tests/BackbonesTests (S3DText); here a
/// seeded random tower at full width (300 → 2048 → 512) over a small vocabulary, a corpus whose clip
/// rows are built from each sentence's own text embedding, and every score checked against the
/// dot product computed here.
final class MILNCEScorerTests: XCTestCase {
    static let words = ["now", "let's", "cut", "the", "garlic", "stir", "rice", "pour", "eggs", "peel", "corn", "fish", "tomatoes"]

    /// A 1-D '<U12' .npy of `words` (s3d_dict.npy's format).
    static func writeDictionary(_ words: [String], to path: String) throws {
        let width = 12
        var header = "{'descr': '<U\(width)', 'fortran_order': False, 'shape': (\(words.count),), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xff), UInt8(header.utf8.count >> 8)] + Array(header.utf8)
        for w in words {
            var scalars = w.unicodeScalars.map { $0.value }
            scalars += [UInt32](repeating: 0, count: width - scalars.count)
            for v in scalars { bytes += [UInt8(v & 0xff), UInt8((v >> 8) & 0xff), UInt8((v >> 16) & 0xff), UInt8(v >> 24)] }
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// MIL-NCE's text tower with seeded weights, written as the `text_module.*` of a state dict.
    static func tower(_ dir: String, words: Int) throws -> (S3DText, weights: String, dictionary: String) {
        var rng = SeededRNG(seed: 11)
        var tensors: [(String, [Int], [Float])] = []
        for (name, shape) in S3DText.stateDictShapes(words: words + 1) {
            let n = shape.reduce(1, *)
            tensors.append((name, shape, (0..<n).map { _ in 0.05 * rng.nextGaussian() }))
        }
        var buffers: [UnsafeMutableBufferPointer<Float>] = []
        defer { buffers.forEach { $0.deallocate() } }
        for t in tensors {
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: t.2.count)
            _ = b.initialize(from: t.2)
            buffers.append(b)
        }
        let weights = dir + "/s3d_howto100m.safetensors", dictionary = dir + "/s3d_dict.npy"
        try SafeTensors.write(zip(tensors, buffers).map { ($0.0, $0.1, UnsafeBufferPointer($1)) }, to: weights)
        try writeDictionary(Self.words, to: dictionary)
        return (try S3DText(weights: try WeightFile.open(weights), dictionary: dictionary), weights, dictionary)
    }

    func testScoresAreDotProductsOfTextAndMeanClipEmbeddingsAndRetrievalFindsEachSentencesVideo() throws {
        let dir = try temporaryFolder(named: "milnce-scorer")
        let (text, _, _) = try Self.tower(dir, words: Self.words.count)
        let tokens = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "'", "s", "now", "let", "cut", "the", "garlic", "stir", "rice",
                      "pour", "eggs", "peel", "corn", "fish", "tomatoes"]
        let wanted = ClipScorerTests.sentences.map { s in s == ClipScorerTests.sentences[0] ? "now let's cut the garlic." : s }
        let E = text.dim
        XCTAssertEqual(E, 512)
        let embedded = text.embed(wanted)
        var rng = SeededRNG(seed: 5)
        let noise = (0..<(wanted.count * 2 * E)).map { _ in 0.5 * rng.nextGaussian() }
        // Video v: 2 clips whose mean is its sentence's embedding over its norm (each clip alone is
        // off by noise). Scores are unnormalised dot products, so text i's best video is then the
        // one of largest cosine: its own.
        let norms = (0..<wanted.count).map { v in (0..<E).reduce(Float(0)) { $0 + embedded[v * E + $1] * embedded[v * E + $1] }.squareRoot() }
        func rows(_ v: Int) -> [[Float]] {
            (0..<2).map { c in (0..<E).map { d in embedded[v * E + d] / norms[v] + (c == 0 ? 1 : -1) * noise[v * 2 * E + d] } }
        }
        let corpus = try TaskCorpus(path: try ClipScorerTests.corpus(dir, rows: rows, dim: E, tokens: tokens))
        let scorer = try MILNCEScorer(text: text, corpus: corpus)
        let segments = Array(0..<wanted.count)
        XCTAssertEqual(segments.map { scorer.sentence($0, of: corpus) }, wanted)
        let scores = try scorer.scores(segments: segments, of: corpus, progress: nil)
        for i in segments {
            for j in segments {
                let r = rows(j)
                let mean = (0..<E).map { d in (r[0][d] + r[1][d]) / 2 }
                let dot = (0..<E).reduce(Float(0)) { $0 + embedded[i * E + $1] * mean[$1] }
                XCTAssertEqual(scores[i * segments.count + j], dot, accuracy: 1e-4 * max(1, abs(dot)), "text \(i), video \(j)")
            }
        }
        let report = try TextVideoRetrieval.run(scorer: scorer, checkpoint: "tiny", corpus: corpus, split: "test", max: 0, showProgress: false)
        XCTAssertEqual(report.textToVideo.recallAt1, 1)
        XCTAssertEqual(report.scorer, "dot product of MIL-NCE (s3d-howto100m) text and video embeddings")

        // Clip rows of another width (mixed_5c's 1024, say): one line naming the corpus and the source.
        let other = try ClipScorerTests.corpus(dir + "/other", rows: { _ in [[1, 2, 3]] }, dim: 3, tokens: tokens)
        XCTAssertThrowsError(try MILNCEScorer(text: text, corpus: try TaskCorpus(path: other))) { e in
            XCTAssertTrue("\(e)".contains("its clip features have 3 values, MIL-NCE's joint embedding 512: tokenize with features.source: s3d-howto100m-joint"), "\(e)")
        }
    }
}
