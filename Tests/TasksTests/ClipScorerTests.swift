import Backbones
import Foundation
import XCTest
@testable import Tasks
import Tensor
import TestSupport
@testable import Tokenize

/// `ClipScorer`: zero-shot text→video scores from a corpus whose clip rows are CLIP embeddings.
/// The towers' parity with transformers is Tests/BackbonesTests/CLIPTests.swift; here a small
/// random text tower, a corpus whose clip rows are built from each sentence's own text embedding
/// (so retrieval must be perfect), and every score checked against the cosine computed here.
final class ClipScorerTests: XCTestCase {
    static let sentences = ["now let's cut the garlic .", "stir the rice", "pour the eggs", "peel the corn", "cut the fish", "stir the tomatoes"]

    func tinyTower(_ dir: String) throws -> CLIPTextTower {
        var config = CLIPConfig.vitB32
        config.text = CLIPTowerShape(hidden: 16, intermediate: 32, layers: 2, heads: 2, activation: "quick_gelu", eps: 1e-5)
        config.projectionDim = 8
        var rng = SeededRNG(seed: 3)
        var tensors: [(String, [Int], [Float])] = []
        for (name, shape) in config.stateDictShapes(vision: false) {
            let n = shape.reduce(1, *)
            tensors.append((name, shape, (0..<n).map { _ in name.contains("norm") && name.hasSuffix(".weight") ? 1 + 0.1 * rng.nextGaussian() : 0.3 * rng.nextGaussian() }))
        }
        var buffers: [UnsafeMutableBufferPointer<Float>] = []
        defer { buffers.forEach { $0.deallocate() } }
        for t in tensors {
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: t.2.count)
            _ = b.initialize(from: t.2)
            buffers.append(b)
        }
        let path = dir + "/text.safetensors"
        try SafeTensors.write(zip(tensors, buffers).map { ($0.0, $0.1, UnsafeBufferPointer($1)) }, to: path)
        return try CLIPTextTower(config: config, weights: try WeightFile.open(path))
    }

    /// A test-split corpus of one segment per sentence in `sentences`, video v's clip rows `rows(v)`.
    static func corpus(_ dir: String, rows: (Int) -> [[Float]], dim: Int, tokens: [String], sentences: [String] = ClipScorerTests.sentences) throws -> String {
        let corpusDir = dir + "/corpus"
        let vocabulary = TextVocabulary(tokens: tokens)
        let tokenizer = BertTokenizer(vocabulary: vocabulary)
        let builder = try CorpusBuilder(dir: corpusDir, featureDim: dim, frameShape: nil)
        for (v, sentence) in sentences.enumerated() {
            let r = rows(v)
            try builder.append(TokenizedVideo(id: "video\(v)", split: "test", source: nil, duration: Double(r.count),
                                              clipWords: r.map { _ in 0 }, clipTimes: (0..<r.count).map { (Double($0), Double($0 + 1)) },
                                              segments: [AlignedSegment(start: 0, end: Double(r.count), textIDs: tokenizer.encode(sentence),
                                                                        clipBegin: 0, clipEnd: r.count)],
                                              features: r.flatMap { $0 }))
        }
        try VisualVocabulary(branching: 2, depth: 1, dim: dim, levels: [[Float](repeating: 0, count: 2 * dim)]).save(to: corpusDir + "/vocab")
        try vocabulary.write(to: corpusDir + "/text_vocab.txt")
        _ = try builder.finish(textVocab: .init(file: "text_vocab.txt", size: tokens.count, cased: false,
                                                fingerprint: try CorpusBuilder.fingerprint(of: corpusDir + "/text_vocab.txt")),
                               visualVocab: .init(folder: "vocab", words: 2, branching: 2, depth: 1, dim: dim),
                               clipSeconds: 1, fps: 1, featureSource: "npy", featureDim: dim, failures: 0)
        return corpusDir
    }

    func testScoresAreCosinesOfTextAndMeanClipEmbeddingsAndRetrievalFindsEachSentencesVideo() throws {
        let dir = try temporaryFolder(named: "clip-scorer")
        let vocabPath = Repository.path("Vocab/clip-bpe-16e6.txt.gz")
        guard FileManager.default.fileExists(atPath: vocabPath) else { return XCTFail("\(vocabPath) is missing: run tools/setup") }
        let clipTokenizer = try CLIPTokenizer(path: vocabPath)
        let tower = try tinyTower(dir)
        let tokens = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "'", "s", "now", "let", "cut", "the", "garlic", "stir", "rice",
                      "pour", "eggs", "peel", "corn", "fish", "tomatoes"]
        // What the scorer should read back as each segment's sentence.
        XCTAssertEqual(WordPieceText.join(["now", "let", "'", "s", "cut", "the", "garlic", "."]), "now let's cut the garlic.")
        let wanted = Self.sentences.map { s in s == Self.sentences[0] ? "now let's cut the garlic." : s }
        let text = try tower.features(wanted.map { clipTokenizer.tokenize($0) })
        let E = tower.featureDim
        var rng = SeededRNG(seed: 5)
        // Video v: 3 clips whose mean is its sentence's embedding ×2 (each clip alone is off by noise).
        let noise = (0..<(Self.sentences.count * 3 * E)).map { _ in rng.nextGaussian() }
        func rows(_ v: Int) -> [[Float]] {
            (0..<3).map { c in (0..<E).map { d in 2 * text[v * E + d] + (c == 2 ? -(noise[(v * 3) * E + d] + noise[(v * 3 + 1) * E + d]) : noise[(v * 3 + c) * E + d]) } }
        }
        let corpusPath = try Self.corpus(dir, rows: rows, dim: E, tokens: tokens)
        let corpus = try TaskCorpus(path: corpusPath)
        let scorer = try ClipScorer(tower: tower, tokenizer: clipTokenizer, backbone: "clip-vit-b32", corpus: corpus)
        let segments = Array(0..<Self.sentences.count)
        XCTAssertEqual(segments.map { scorer.sentence($0, of: corpus) }, wanted)
        let scores = try scorer.scores(segments: segments, of: corpus, progress: nil)
        func unit(_ x: ArraySlice<Float>) -> [Float] { let n = x.reduce(0) { $0 + $1 * $1 }.squareRoot(); return x.map { $0 / n } }
        for i in segments {
            let t = unit(text[(i * E)..<((i + 1) * E)])
            for j in segments {
                let r = rows(j)
                let mean = unit((0..<E).map { d in r.reduce(0) { $0 + $1[d] } / 3 }[...])
                XCTAssertEqual(scores[i * segments.count + j], zip(t, mean).reduce(0) { $0 + $1.0 * $1.1 }, accuracy: 1e-5, "text \(i), video \(j)")
            }
        }
        let report = try TextVideoRetrieval.run(scorer: scorer, checkpoint: "tiny", corpus: corpus, split: "test", max: 0, showProgress: false)
        XCTAssertEqual(report.textToVideo.recallAt1, 1)
        XCTAssertEqual(report.videoToText.recallAt1, 1)
        XCTAssertEqual(report.scorer, "cosine of CLIP (clip-vit-b32) text and video embeddings")

        // Clip rows of another size: one line naming the corpus.
        let other = try Self.corpus(dir + "/other", rows: { _ in [[1, 2, 3]] }, dim: 3, tokens: tokens)
        XCTAssertThrowsError(try ClipScorer(tower: tower, tokenizer: clipTokenizer, backbone: "clip-vit-b32", corpus: try TaskCorpus(path: other))) { e in
            XCTAssertTrue("\(e)".contains("its clip features have 3 values, clip-vit-b32's embedding 8"), "\(e)")
        }
    }
}
