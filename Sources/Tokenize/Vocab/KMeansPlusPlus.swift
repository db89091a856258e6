import Foundation
import Tensor

/// Greedy k-means++ seeding (Arthur & Vassilvitskii 2007, "k-means++: the advantages of careful
/// seeding", §5; the variant scikit-learn uses): each new centre is the best, by the potential
/// Σ_x min(D(x)², d(x, c)²), of `trials` = 2 + ⌊ln K⌋ candidates drawn with probability
/// proportional to D(x)², where D(x) is the distance to the nearest centre chosen so far.
///
/// Distances from every point to the candidates are one small sgemm per block of rows
/// ([rows, dim] × [dim, trials]); blocks are split over the workers and the per-block sums are
/// added in block order, so the chosen centres never depend on the number of threads.
///
/// Cost: K steps × n points × trials × dim. The caller bounds it by seeding on a sample
/// (see `KMeans.initSampleSize`).
///
/// - points: [n, dim]; norms: ‖x‖² per point.
/// - Returns the indices (into `points`) of the K chosen centres, in the order chosen.
func greedyKMeansPlusPlus(points: UnsafePointer<Float>, norms: UnsafePointer<Float>, n: Int, dim: Int,
                          k: Int, rng: inout SeededRNG, workers: Int) -> [Int] {
    precondition(k >= 1 && n >= k)
    let trials = 2 + Int(Foundation.log(Double(k)))
    let blockRows = 1024
    let blocks = (n + blockRows - 1) / blockRows

    // closest[i] = squared distance from point i to its nearest chosen centre.     [n]
    let closest = UnsafeMutablePointer<Float>.allocate(capacity: n)
    // candidateDistances[i, t] = squared distance from point i to candidate t.   [n, trials]
    let candidateDistances = UnsafeMutablePointer<Float>.allocate(capacity: n * trials)
    // candidates[t, :] = the candidate rows, copied; candidateNorms[t] = their ‖c‖².
    let candidates = UnsafeMutablePointer<Float>.allocate(capacity: trials * dim)
    let candidateNorms = UnsafeMutablePointer<Float>.allocate(capacity: trials)
    // potentialPerBlock[b, t] = Σ_{i in block b} min(closest[i], candidateDistances[i, t]).
    let potentialPerBlock = UnsafeMutablePointer<Double>.allocate(capacity: blocks * trials)
    // cumulative[i] = Σ_{j ≤ i} closest[j], for drawing candidates.
    let cumulative = UnsafeMutablePointer<Double>.allocate(capacity: n)
    defer {
        closest.deallocate(); candidateDistances.deallocate(); candidates.deallocate()
        candidateNorms.deallocate(); potentialPerBlock.deallocate(); cumulative.deallocate()
    }

    /// Distances from every point to the first `count` rows of `candidates`, plus the potential each would give.
    func measure(count: Int) {
        VocabParallel.forEach(blocks, workers: workers) { b in
            let start = b * blockRows
            let m = min(blockRows, n - start)
            let out = candidateDistances + start * trials
            BLAS.sgemm(transB: true, m: m, n: count, k: dim, alpha: -2, a: points + start * dim, lda: dim,
                       b: candidates, ldb: dim, beta: 0, c: out, ldc: trials)
            let sums = potentialPerBlock + b * trials
            sums.update(repeating: 0, count: count)
            for r in 0..<m {
                let xn = norms[start + r]
                let current = closest[start + r]
                for t in 0..<count {
                    let d = max(0, out[r * trials + t] + xn + candidateNorms[t])
                    out[r * trials + t] = d
                    sums[t] += Double(min(current, d))
                }
            }
        }
    }

    func setCandidate(_ t: Int, point i: Int) {
        (candidates + t * dim).update(from: points + i * dim, count: dim)
        candidateNorms[t] = norms[i]
    }

    var chosen: [Int] = []
    chosen.reserveCapacity(k)
    // First centre: uniform.
    let first = rng.nextInt(n)
    chosen.append(first)
    setCandidate(0, point: first)
    closest.update(repeating: .infinity, count: n)
    measure(count: 1)
    for i in 0..<n { closest[i] = candidateDistances[i * trials] }

    var drawn = [Int](repeating: 0, count: trials)
    while chosen.count < k {
        var total = 0.0
        for i in 0..<n { total += Double(closest[i]); cumulative[i] = total }
        for t in 0..<trials {
            if total > 0 {
                // The first point whose cumulative sum exceeds u·total (binary search).
                let u = rng.nextDouble() * total
                var lo = 0, hi = n - 1
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if cumulative[mid] > u { hi = mid } else { lo = mid + 1 }
                }
                // Never a point already at distance 0 (a chosen centre or its duplicate).
                while lo > 0 && closest[lo] == 0 { lo -= 1 }
                drawn[t] = lo
            } else {
                // Every point coincides with a centre (fewer distinct points than K): any point.
                drawn[t] = rng.nextInt(n)
            }
            setCandidate(t, point: drawn[t])
        }
        measure(count: trials)
        // The candidate with the lowest potential (block sums added in block order).
        var bestTrial = 0
        var bestPotential = Double.infinity
        for t in 0..<trials {
            var p = 0.0
            for b in 0..<blocks { p += potentialPerBlock[b * trials + t] }
            if p < bestPotential { bestPotential = p; bestTrial = t }
        }
        chosen.append(drawn[bestTrial])
        for i in 0..<n { closest[i] = min(closest[i], candidateDistances[i * trials + bestTrial]) }
    }
    return chosen
}

