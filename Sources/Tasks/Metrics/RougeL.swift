/// ROUGE-L exactly as pycocoevalcap's `Rouge` computes it (rouge/rouge.py; Lin 2004, the
/// LCS-based F-measure): per image, precision and recall of the longest common subsequence against
/// each reference, the maximum precision and the maximum recall over the references (taken
/// separately), F with β = 1.2, then the mean over images.
///
/// Words are split on single spaces as pycocoevalcap does (`split(" ")`), so an empty caption is
/// one empty word — which matches an empty reference.
public enum RougeL {
    public static let beta = 1.2

    public static func score(hypotheses: [String], references: [[String]]) -> (corpus: Double, perImage: [Double]) {
        precondition(hypotheses.count == references.count, "one hypothesis per image")
        var lcsRow: [Int] = []
        let perImage = zip(hypotheses, references).map { hyp, refs in
            imageScore(hypothesis: hyp, references: refs, scratch: &lcsRow)
        }
        return (perImage.isEmpty ? .nan : perImage.reduce(0, +) / Double(perImage.count), perImage)
    }

    static func imageScore(hypothesis: String, references: [String], scratch: inout [Int]) -> Double {
        precondition(!references.isEmpty, "each image needs a reference")
        let candidate = hypothesis.split(separator: " ", omittingEmptySubsequences: false)
        var precMax = -Double.infinity
        var recMax = -Double.infinity
        for ref in references {
            let tokens = ref.split(separator: " ", omittingEmptySubsequences: false)
            let lcs = lcsLength(tokens, candidate, row: &scratch)
            precMax = max(precMax, Double(lcs) / Double(candidate.count))
            recMax = max(recMax, Double(lcs) / Double(tokens.count))
        }
        guard precMax != 0, recMax != 0 else { return 0 }
        let b2 = beta * beta
        return ((1 + b2) * precMax * recMax) / (recMax + b2 * precMax)
    }

    /// Length of the longest common subsequence (one-row dynamic programme; both sides non-empty,
    /// since `split(" ")` always yields a word).
    static func lcsLength(_ a: [Substring], _ b: [Substring], row: inout [Int]) -> Int {
        let (long, short) = a.count >= b.count ? (a, b) : (b, a)
        row = [Int](repeating: 0, count: short.count + 1)
        guard !short.isEmpty else { return 0 }
        for x in long {
            var diagonal = 0  // row[j-1] of the previous line
            for j in 1...short.count {
                let above = row[j]
                row[j] = x == short[j - 1] ? diagonal + 1 : max(above, row[j - 1])
                diagonal = above
            }
        }
        return row[short.count]
    }
}
