import Foundation
import Recipe
import Tensor
import Tokenize
import XCTest
@testable import Index

/// The Index module's parts: the CBT encoder decodes raw videos into exactly the clips the
/// training corpus stored; top-K, fusion and FTS5 query building.
final class IndexLibraryTests: XCTestCase {
    /// `CBTPooledEncoder.decodeClips` on a raw demo video gives the clip times and the stored
    /// frames (uint8, bit for bit) that `videobert tokenize` wrote into the corpus for it.
    func testRawVideoClipsEqualTheCorpusStoredFrames() throws {
        let f = try IndexCLITests.Fixture.get()
        let corpus = try TokenizedCorpus(path: f.dir + "/t")
        let recipe = try RecipeLoader.load(TokenizeRecipe.self, file: f.dir + "/t/recipe.yaml")
        let stored = try NPY.read(f.dir + "/t/clip_frames.npy")
        let all = try stored.values(UInt8.self)
        let per = stored.shape.dropFirst().reduce(1, *)
        XCTAssertEqual(per, 2 * 16 * 16 * 3)
        for video in corpus.index.videos.prefix(3) {
            let source = try XCTUnwrap(video.source)
            let path = source.hasPrefix("/") ? source : f.corpus + "/videos/" + (source as NSString).lastPathComponent
            let d = try CBTPooledEncoder.decodeClips(path, recipe: recipe)
            XCTAssertEqual(d.starts.count, video.clipEnd - video.clipBegin, video.id)
            XCTAssertEqual(d.frames, Array(all[(video.clipBegin * per)..<(video.clipEnd * per)]), video.id)
            for (i, s) in d.starts.enumerated() {
                XCTAssertEqual(Float(s), corpus.clipTimes[2 * (video.clipBegin + i)], accuracy: 1e-3, video.id)
            }
        }
    }

    /// The encoder's embeddings are unit rows, the same for the same input (up to the batch position's rounding), and a video's
    /// segments differ from each other.
    func testEncoderGivesUnitDeterministicEmbeddings() throws {
        let f = try IndexCLITests.Fixture.get()
        let opened = try CheckpointEncoder.open(f.checkpoint)
        let e = try XCTUnwrap(opened.encoder)
        XCTAssertEqual(opened.kind, "cbt")
        XCTAssertEqual(e.dimension, 32)
        let t = try e.encodeText(["stir the tomatoes", "cut the onion", "stir the tomatoes", ""])
        XCTAssertEqual(t.count, 4)
        for row in t { XCTAssertEqual(row.reduce(0) { $0 + $1 * $1 }, 1, accuracy: 1e-4) }
        XCTAssertLessThan(zip(t[0], t[2]).map { abs($0 - $1) }.max()!, 1e-5)
        XCTAssertGreaterThan(zip(t[0], t[1]).map { abs($0 - $1) }.max()!, 1e-3)
        let video = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: f.corpus + "/videos").sorted().first { $0.hasSuffix(".mp4") })
        let spans = [(start: 0.0, end: 3.0), (start: 3.0, end: 6.0), (start: 0.0, end: 3.0)]
        let v = try e.encodeSegments(video: f.corpus + "/videos/" + video, spans: spans)
        XCTAssertEqual(v.count, 3)
        for row in v { XCTAssertEqual(row.reduce(0) { $0 + $1 * $1 }, 1, accuracy: 1e-4) }
        XCTAssertLessThan(zip(v[0], v[2]).map { abs($0 - $1) }.max()!, 1e-5)
        XCTAssertGreaterThan(zip(v[0], v[1]).map { abs($0 - $1) }.max()!, 1e-3)
        XCTAssertThrowsError(try e.encodeSegments(video: f.dir + "/nope.mp4", spans: spans))
    }

    func testTopKMatchesASortAndFusionIsReciprocalRank() {
        var rng = SystemRandomNumberGenerator()
        let scores = (0..<5000).map { _ in Float(Int.random(in: 0..<300, using: &rng)) / 7 }   // many ties
        let expected = scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
        for k in [1, 10, 100, 5000, 9000] {
            XCTAssertEqual(VideoIndex.top(scores, limit: k).map(\.row), Array(expected.prefix(k)), "k = \(k)")
        }
        XCTAssertTrue(VideoIndex.top([], limit: 5).isEmpty)
        let fused = VideoIndex.fuse([[(row: 7, score: 9), (row: 3, score: 8)], [(row: 3, score: 1), (row: 5, score: 0.5)]], limit: 10)
        XCTAssertEqual(fused.map(\.row), [3, 7, 5])
        XCTAssertEqual(fused[0].score, 1 / 62 + 1 / 61, accuracy: 1e-12)
        XCTAssertEqual(fused[1].score, 1 / 61, accuracy: 1e-12)
    }

    func testFTSQueryQuotesWordsAndDropsSyntax() {
        XCTAssertEqual(VideoIndex.ftsQuery("Cut the onion!"), "\"cut\" OR \"onion\"")
        XCTAssertEqual(VideoIndex.ftsQuery("The THE and"), "\"the\" OR \"and\"")   // only stop words: kept
        XCTAssertEqual(VideoIndex.ftsQuery("a\" OR b* NEAR(c)"), "\"b\" OR \"near\" OR \"c\"")
        XCTAssertNil(VideoIndex.ftsQuery("  ?!*() "))
        XCTAssertEqual(VideoIndex.ftsQuery(String(repeating: "w ", count: 1000)), "\"w\"")
        let many = (0..<500).map { "w\($0)" }.joined(separator: " ")
        XCTAssertEqual(VideoIndex.ftsQuery(many)?.components(separatedBy: " OR ").count, 64)
    }
}
