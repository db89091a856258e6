import Foundation

/// CIDEr-D exactly as pycocoevalcap's `Cider` computes it (cider/cider_scorer.py; Vedantam,
/// Zitnick and Parikh 2015, "CIDEr: Consensus-based Image Description Evaluation", §3 and the -D
/// variant of §6):
///
/// - n-grams of orders 1…4 weighted by TF-IDF; document frequencies come from the references of
///   the evaluated images only (an n-gram's df is the number of images whose references contain
///   it), and the "log of the number of documents" is log(number of images);
/// - per order, the cosine-like similarity with each reference, where the candidate's weights are
///   clipped by the reference's (`min(v_hyp, v_ref) · v_ref`) — the CIDEr-D clipping that stops
///   repeated words from gaming the score;
/// - a Gaussian length penalty exp(−δ²/2σ²) with σ = 6, where δ is the difference of the two
///   captions' lengths *as pycocoevalcap measures them*: the number of bigrams (its `counts2vec`
///   counts term frequencies of order index 1), i.e. words − 1;
/// - the mean over orders, divided by the number of references, times 10; the corpus score is the
///   mean over images.
public enum CiderD {
    public static let maxOrder = 4
    public static let sigma = 6.0

    public static func score(hypotheses: [String], references: [[String]]) -> (corpus: Double, perImage: [Double]) {
        precondition(hypotheses.count == references.count, "one hypothesis per image")
        let n = maxOrder
        var index = WordIndex()
        let hypCounts = hypotheses.map { NGramCounts(index.words($0), maxOrder: n) }
        let refCounts = references.map { refs in refs.map { NGramCounts(index.words($0), maxOrder: n) } }

        // Document frequency over the references of the evaluated images.
        var documentFrequency: [NGram: Int] = [:]
        for refs in refCounts {
            var seen = Set<NGram>()
            for counts in refs { for g in counts.grams { seen.insert(g) } }
            for g in seen { documentFrequency[g, default: 0] += 1 }
        }
        let logDocuments = log(Double(references.count))

        /// counts2vec: TF-IDF weights in n-gram insertion order, per-order norms, and the "length".
        func vector(_ counts: NGramCounts) -> (grams: [NGram], weights: [Double], lookup: [NGram: Double], norms: [Double], length: Int) {
            var weights: [Double] = []
            weights.reserveCapacity(counts.grams.count)
            var lookup: [NGram: Double] = [:]
            lookup.reserveCapacity(counts.grams.count)
            var squares = [Double](repeating: 0, count: n)
            var length = 0
            for (g, tf) in counts.items {
                let df = log(max(1.0, Double(documentFrequency[g] ?? 0)))
                let w = Double(tf) * (logDocuments - df)
                weights.append(w)
                lookup[g] = w
                squares[g.order - 1] += w * w
                if g.order == 2 { length += tf }  // pycocoevalcap's length: bigram count
            }
            return (counts.grams, weights, lookup, squares.map { $0.squareRoot() }, length)
        }

        var perImage: [Double] = []
        perImage.reserveCapacity(hypotheses.count)
        for (hyp, refs) in zip(hypCounts, refCounts) {
            precondition(!refs.isEmpty, "each image needs a reference")
            let h = vector(hyp)
            var sum = [Double](repeating: 0, count: n)
            for ref in refs {
                let r = vector(ref)
                let delta = Double(h.length - r.length)
                let penalty = exp(-(delta * delta) / (2 * sigma * sigma))
                var value = [Double](repeating: 0, count: n)
                for (g, wh) in zip(h.grams, h.weights) {
                    let wr = r.lookup[g] ?? 0
                    value[g.order - 1] += min(wh, wr) * wr
                }
                for k in 0..<n {
                    if h.norms[k] != 0 && r.norms[k] != 0 { value[k] /= h.norms[k] * r.norms[k] }
                    sum[k] += value[k] * penalty
                }
            }
            let mean = sum.reduce(0, +) / Double(n)
            perImage.append(mean / Double(refs.count) * 10)
        }
        return (perImage.isEmpty ? .nan : perImage.reduce(0, +) / Double(perImage.count), perImage)
    }
}
