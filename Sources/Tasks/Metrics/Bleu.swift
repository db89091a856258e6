import Foundation

/// BLEU-1…4 exactly as pycocoevalcap's `Bleu(4)` computes it (bleu/bleu_scorer.py, David Chiang's
/// scorer as modified for COCO): Papineni et al. 2002, corpus-level.
///
/// - n-gram precisions are clipped by the maximum count of the n-gram in any one reference and
///   summed over the corpus before dividing (corpus BLEU, not an average of sentence BLEU);
/// - the brevity penalty uses the "closest" reference length per caption (ties: the shorter);
/// - pycocoevalcap's smoothing constants: `tiny = 1e-15` added to matches and `small = 1e-9` to
///   the n-gram totals, so empty captions give 0 rather than a division by zero;
/// - per-image scores are the same formula on one caption (what pycocoevalcap returns as `scores`).
public enum Bleu {
    static let tiny = 1e-15
    static let small = 1e-9

    /// Sufficient statistics of one caption against its references.
    struct Stats {
        var testLength = 0
        var referenceLength = 0  // closest reference length
        var guess: [Int]
        var correct: [Int]
    }

    /// - Parameters:
    ///   - hypotheses: one tokenized caption per image.
    ///   - references: the tokenized references of each image (at least one each).
    ///   - n: highest n-gram order (1…4).
    /// - Returns: corpus BLEU-1…n and, per image, BLEU-1…n.
    public static func score(hypotheses: [String], references: [[String]], n: Int = 4) -> (corpus: [Double], perImage: [[Double]]) {
        precondition(hypotheses.count == references.count, "one hypothesis per image")
        var perImage: [[Double]] = []
        perImage.reserveCapacity(hypotheses.count)
        var totalTest = 0
        var totalRef = 0
        var totalGuess = [Int](repeating: 0, count: n)
        var totalCorrect = [Int](repeating: 0, count: n)
        var index = WordIndex()
        for (hyp, refs) in zip(hypotheses, references) {
            let st = stats(hypothesis: hyp, references: refs, n: n, index: &index)
            totalTest += st.testLength
            totalRef += st.referenceLength
            for k in 0..<n {
                totalGuess[k] += st.guess[k]
                totalCorrect[k] += st.correct[k]
            }
            perImage.append(bleu(correct: st.correct, guess: st.guess, testLength: st.testLength, referenceLength: st.referenceLength))
        }
        let corpus = bleu(correct: totalCorrect, guess: totalGuess, testLength: totalTest, referenceLength: totalRef)
        return (corpus, perImage)
    }

    static func stats(hypothesis: String, references: [String], n: Int, index: inout WordIndex) -> Stats {
        // cook_refs: reference lengths and the maximum count of each n-gram over the references
        var refLengths: [Int] = []
        var maxCounts: [NGram: Int] = [:]
        for ref in references {
            let words = index.words(ref)
            refLengths.append(words.count)
            for (g, c) in NGramCounts(words, maxOrder: n).items where c > maxCounts[g, default: 0] { maxCounts[g] = c }
        }
        // cook_test
        let words = index.words(hypothesis)
        let testLength = words.count
        var st = Stats(testLength: testLength, guess: (1...n).map { max(0, testLength - $0 + 1) },
                       correct: [Int](repeating: 0, count: n))
        for (g, c) in NGramCounts(words, maxOrder: n).items {
            st.correct[g.order - 1] += min(maxCounts[g, default: 0], c)
        }
        // "closest": min over (|l - testlen|, l)
        st.referenceLength = refLengths.min { a, b in
            let da = abs(a - testLength), db = abs(b - testLength)
            return da != db ? da < db : a < b
        } ?? 0
        return st
    }

    /// BLEU-1…n from clipped matches and totals, with pycocoevalcap's constants and brevity penalty.
    static func bleu(correct: [Int], guess: [Int], testLength: Int, referenceLength: Int) -> [Double] {
        var out: [Double] = []
        var product = 1.0
        for k in 0..<correct.count {
            product *= (Double(correct[k]) + tiny) / (Double(guess[k]) + small)
            out.append(pow(product, 1.0 / Double(k + 1)))
        }
        let ratio = (Double(testLength) + tiny) / (Double(referenceLength) + small)
        if ratio < 1 {
            let penalty = exp(1 - 1 / ratio)
            out = out.map { $0 * penalty }
        }
        return out
    }
}
