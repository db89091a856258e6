import Foundation

/// Text↔video retrieval metrics over N held-out (text, video) pairs, as reported by CBT
/// (Sun et al. 2019, Table 5) and the YouCook2/MSR-VTT retrieval literature (Miech et al. 2019):
/// recall at 1, 5 and 10 (fractions in [0, 1]) and the median rank (1 = perfect).
///
/// The rank of the true item is 1 + the number of OTHER items scoring at least as high as it:
/// ties count against the true item, so a model that scores everything alike gets rank N rather
/// than a perfect R@1.
public struct RetrievalMetrics: Sendable, Equatable, Codable {
    public var recallAt1: Double
    public var recallAt5: Double
    public var recallAt10: Double
    /// The median of the N ranks (numpy's median: the mean of the middle two for even N).
    public var medianRank: Double
    public var meanRank: Double
    /// Queries scored.
    public var count: Int

    enum CodingKeys: String, CodingKey {
        case recallAt1 = "r1", recallAt5 = "r5", recallAt10 = "r10"
        case medianRank = "median_rank", meanRank = "mean_rank", count
    }

    /// Metrics from 1-based ranks.
    public init(ranks: [Int]) {
        count = ranks.count
        guard !ranks.isEmpty else {
            (recallAt1, recallAt5, recallAt10, medianRank, meanRank) = (0, 0, 0, 0, 0)
            return
        }
        let n = Double(ranks.count)
        recallAt1 = Double(ranks.filter { $0 <= 1 }.count) / n
        recallAt5 = Double(ranks.filter { $0 <= 5 }.count) / n
        recallAt10 = Double(ranks.filter { $0 <= 10 }.count) / n
        let sorted = ranks.sorted()
        let middle = sorted.count / 2
        medianRank = sorted.count % 2 == 1 ? Double(sorted[middle]) : Double(sorted[middle - 1] + sorted[middle]) / 2
        meanRank = Double(ranks.reduce(0, +)) / n
    }

    /// Both directions from a similarity matrix: similarity[i, j] scores text i against video j,
    /// and (text i, video i) are the true pairs. Text→video ranks each row's diagonal entry among
    /// the row; video→text each column's among the column.
    /// - Parameter similarity: [N, N] row-major.
    public static func textVideo(similarity: UnsafePointer<Float>, N: Int) -> (textToVideo: RetrievalMetrics, videoToText: RetrievalMetrics) {
        var t2v: [Int] = [], v2t: [Int] = []
        t2v.reserveCapacity(N)
        v2t.reserveCapacity(N)
        for i in 0..<N {
            let truth = similarity[i * N + i]
            var rowRank = 1, columnRank = 1
            for j in 0..<N where j != i {
                if similarity[i * N + j] >= truth { rowRank += 1 }
                if similarity[j * N + i] >= truth { columnRank += 1 }
            }
            t2v.append(rowRank)
            v2t.append(columnRank)
        }
        return (RetrievalMetrics(ranks: t2v), RetrievalMetrics(ranks: v2t))
    }

    /// The same over a row-major array of N·N scores.
    public static func textVideo(similarity: [Float], N: Int) -> (textToVideo: RetrievalMetrics, videoToText: RetrievalMetrics) {
        precondition(similarity.count == N * N, "similarity matrix has \(similarity.count) entries, expected \(N)²")
        return similarity.withUnsafeBufferPointer { textVideo(similarity: $0.baseAddress!, N: N) }
    }
}
