import Foundation
import XCTest
import Model
import Tensor
@testable import Tasks

final class NextStepAndRetrievalTests: XCTestCase {
    func testRankOfTheTruthCountsTiesAgainstIt() {
        XCTAssertEqual(NextStepRanking.rankOfFirst([-1, -2, -3]), 1)
        XCTAssertEqual(NextStepRanking.rankOfFirst([-2, -1, -3, -2]), 3)
        XCTAssertEqual(RankingAccuracy(ranks: [1, 3, 2]).meanRank, 2)
        XCTAssertEqual(RankingAccuracy(ranks: [1, 3, 2]).accuracyAt1, 1.0 / 3, accuracy: 1e-12)
    }

    /// A hand-built case: after "now let's cut the garlic ." with the garlic/cut clips, the
    /// pseudo-log-likelihood of the true continuation of this world's sentences beats a sentence
    /// of words that never follow each other, and PLL equals the sum of the masked log-probs.
    func testPseudoLogLikelihoodRanksAWellFormedNextSentenceFirst() throws {
        let f = try TaskFixture.get()
        let model = try f.model()
        let context = model.encode("now let's cut the garlic .")
        let good = model.encode("now let's stir the rice .")
        let bad = model.encode(". the now rice stir let's")
        let video: [Int32] = [0, 24, 1, 25]
        let sums = NextStepRanking.pseudoLogLikelihoods(model: model, context: context, candidates: [good, bad], video: video, aggregate: .sum)
        XCTAssertGreaterThan(sums[0], sums[1])
        XCTAssertEqual(NextStepRanking.rankOfFirst(sums), 1)
        let means = NextStepRanking.pseudoLogLikelihoods(model: model, context: context, candidates: [good, bad], video: video, aggregate: .mean)
        XCTAssertEqual(means[0], sums[0] / Double(good.count), accuracy: 1e-9)
        // By hand: mask the third token of `good`.
        var text = context + good
        text[context.count + 2] = model.special.mask
        var direct = 0.0
        model.forEachBatch([.joint(text: text, video: video.map(model.visualID), special: model.special)]) { _, _, _, encoded in
            direct = Double(model.textLogProbabilities(encoded, rows: [Int32(1 + context.count + 2)])[Int(good[2])])
        }
        let one = NextStepRanking.pseudoLogLikelihoods(model: model, context: context, candidates: [good], video: video, aggregate: .sum)[0]
        var others = 0.0
        for i in good.indices where i != 2 {
            var t = context + good
            t[context.count + i] = model.special.mask
            model.forEachBatch([.joint(text: t, video: video.map(model.visualID), special: model.special)]) { _, _, _, encoded in
                others += Double(model.textLogProbabilities(encoded, rows: [Int32(1 + context.count + i)])[Int(good[i])])
            }
        }
        XCTAssertEqual(one, direct + others, accuracy: 1e-3)
    }

    func testNextStepReportsOnTheTinyWorld() throws {
        let f = try TaskFixture.get()
        let model = try f.model(), corpus = try f.corpus()
        var o = NextStepTextOptions()
        o.candidates = 4
        let text = try NextStepRanking.run(model: model, corpus: corpus, split: "test", options: o, showProgress: false)
        XCTAssertEqual(text.queries, 12, "4 test videos × 3 consecutive pairs")
        XCTAssertEqual(text.chance.accuracyAt1, 0.25)
        XCTAssertEqual(text.chance.meanRank, 2.5)
        XCTAssertTrue((1...4).contains(Int(text.model.meanRank.rounded())))
        var fo = ForecastOptions()
        fo.horizon = 2; fo.sampledPairs = 2; fo.samples = 2
        let visual = try VisualForecast.run(model: model, corpus: corpus, split: "test", options: fo, showProgress: false)
        XCTAssertEqual(visual.pairs, 12)
        XCTAssertEqual(visual.positions.map(\.model.count), [12, 12])
        XCTAssertEqual(visual.overall.model.count, 24)
        XCTAssertEqual(visual.positions[0].chance.top1, 1.0 / 32, accuracy: 1e-12)
        XCTAssertEqual(visual.continuations.count, 2)
        XCTAssertEqual(visual.continuations[0].samples.count, 2)
        XCTAssertTrue(visual.continuations[0].samples.allSatisfy { $0.count == 2 && $0.allSatisfy { (0..<32).contains($0) } })
        // Next-step in this world: the next segment's first clip shows its noun (words 0..23),
        // a word the model must have learned to put at video positions.
        XCTAssertGreaterThan(visual.overall.model.top5, 2 * visual.overall.chance.top5)
        XCTAssertGreaterThan(visual.overall.model.top5, visual.overall.frequency.top5)
        // The same seed samples the same continuations.
        let again = VisualForecast.sample(model: model, contexts: [visual.continuations[0].context], options: fo)
        XCTAssertEqual(again[0], visual.continuations[0].samples)
    }

    func testPersistenceAndFrequencyBaselines() throws {
        XCTAssertEqual(VisualForecast.persistence([3, 1, 3, 2], frequent: [9, 2, 8, 7]), [2, 3, 1, 9, 8])
        let f = try TaskFixture.get()
        let frequent = VisualForecast.frequentWords(try f.corpus(), split: "train")
        XCTAssertEqual(frequent.count, 32)
        XCTAssertEqual(Set(frequent).count, 32)
    }

    /// Retrieval metrics on a known score matrix: text i's true video is i.
    func testRetrievalMetricsOnAKnownMatrix() {
        // Text 0: its video scores highest (rank 1); text 1: one other video is higher (rank 2);
        // text 2: ties with two others (ties count against: rank 3).
        let s: [Float] = [0.9, 0.1, 0.2,
                          0.8, 0.5, 0.1,
                          0.4, 0.4, 0.4]
        let m = RetrievalMetrics.textVideo(similarity: s, N: 3)
        XCTAssertEqual(m.textToVideo.recallAt1, 1.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(m.textToVideo.medianRank, 2)
        // Video 0 column: 0.9 vs 0.8, 0.4 → rank 1; video 1: 0.5 vs 0.1, 0.4 → 1; video 2: 0.4 vs 0.2, 0.1 → 1.
        XCTAssertEqual(m.videoToText.recallAt1, 1)
        let chance = TextVideoRetrieval.chance(20)
        XCTAssertEqual(chance.recallAt1, 0.05); XCTAssertEqual(chance.recallAt5, 0.25); XCTAssertEqual(chance.medianRank, 10.5)
    }

    /// A scorer plugs in through the protocol (as a CBT embedding scorer will); the alignment head
    /// scores every pair of the matrix as a single pair would be scored.
    func testRetrievalWithScorers() throws {
        struct Oracle: TextVideoScorer {
            var name: String { "oracle" }
            func scores(segments: [Int], of corpus: TaskCorpus, progress: ProgressReporter?) throws -> [Float] {
                // Knows the truth: text i belongs with video i.
                var out: [Float] = []
                for i in segments.indices { for j in segments.indices { out.append(i == j ? 1 : 0) } }
                return out
            }
        }
        let f = try TaskFixture.get()
        let corpus = try f.corpus()
        let oracle = try TextVideoRetrieval.run(scorer: Oracle(), checkpoint: "-", corpus: corpus, split: "test", max: 0, showProgress: false)
        XCTAssertEqual(oracle.segments, 16)
        XCTAssertEqual(oracle.textToVideo.recallAt1, 1)
        XCTAssertEqual(oracle.videoToText.medianRank, 1)
        let model = try f.model()
        let head = AlignmentHeadScorer(model: model)
        let texts = [Array(corpus.corpus.text(of: 0)), Array(corpus.corpus.text(of: 5))]
        let videos = [Array(corpus.corpus.visual(of: 0)), Array(corpus.corpus.visual(of: 5)), Array(corpus.corpus.visual(of: 9))]
        let matrix = try head.scores(texts: texts, videos: videos, progress: nil)
        XCTAssertEqual(matrix.count, 6)
        model.forEachBatch([.joint(text: texts[1], video: videos[2].map(model.visualID), special: model.special)]) { _, _, _, encoded in
            XCTAssertEqual(model.model.alignmentScores(encoded)[0], matrix[5], accuracy: 1e-5)
        }
        let report = try TextVideoRetrieval.run(scorer: head, checkpoint: f.checkpoint, corpus: corpus, split: "test", max: 10, showProgress: false)
        XCTAssertEqual(report.segments, 10)
        XCTAssertEqual(report.chance.recallAt1, 0.1)
        XCTAssertEqual(report.chance.recallAt10, 1)
        XCTAssertGreaterThan(report.textToVideo.recallAt1, 2 * report.chance.recallAt1, "the alignment head learned the world")
        XCTAssertTrue(TextVideoRetrieval.table(report).contains("text → video"))
    }
}
