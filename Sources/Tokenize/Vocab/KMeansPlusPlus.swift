import Foundation
import Tensor

/// Greedy k-means++ seeding (Arthur & Vassilvitskii 2007, "k-means++: the advantages of careful
/// seeding"; the greedy variant their conclusion mentions, as scikit-learn implements it in
/// `_kmeans_plusplus` with 2 + ⌊ln K⌋ local trials): each new centre is the best, by the potential
/// Σ_x min(D(x)², d(x, c)²), of `trials` = 2 + ⌊ln K⌋ candidates drawn with probability
/// proportional to D(x)², where D(x) is the distance to the nearest centre chosen so far.
///
/// Rounds: the candidates of `stepsPerRound` consecutive steps are drawn together, from D at
/// the start of the round, so that their distances to every point are one sgemm
/// [n, dim] × [dim, steps·trials] instead of `steps` thin ones (a thin sgemm spends most of its
/// time packing the n points; measured: 8 columns run at ~15 GFLOP/s per core, 64 columns at
/// several times that). The steps of a round are then taken one after the other exactly as in
/// greedy k-means++: each picks the candidate of its group that lowers the potential most given
/// the centres chosen so far, this round's included. The only approximation is that a later
/// step's candidates were drawn before the round's earlier centres were added; the default keeps
/// a round to at most 1/64 of K (and 1 step, exact greedy k-means++, for K < 128).
///
/// Blocks of points are split over the workers and every sum is added in block order, so the
/// chosen centres never depend on the number of threads.
///
/// Cost: n · K · trials · dim multiply–adds. The caller bounds it by seeding on a sample
/// (see `KMeans.initSampleSize`).
///
/// - points: [n, dim]; norms: ‖x‖² per point.
/// - Returns the indices (into `points`) of the K chosen centres, in the order chosen.
func greedyKMeansPlusPlus(points: UnsafePointer<Float>, norms: UnsafePointer<Float>, n: Int, dim: Int,
                          k: Int, rng: inout SeededRNG, workers: Int, stepsPerRound: Int? = nil) -> [Int] {
    precondition(k >= 1 && n >= k)
    let trials = 2 + Int(Foundation.log(Double(k)))
    let perRound = max(1, stepsPerRound ?? min(64 / trials, k / 64))
    let width = perRound * trials          // candidates per round
    let blockRows = 1024
    let blocks = (n + blockRows - 1) / blockRows

    // closest[i] = squared distance from point i to its nearest chosen centre.       [n]
    let closest = UnsafeMutablePointer<Float>.allocate(capacity: n)
    // distances[i, c] = squared distance from point i to candidate c of the round.   [n, width]
    let distances = UnsafeMutablePointer<Float>.allocate(capacity: n * width)
    // candidates[c, :] = the candidate rows, copied; candidateNorms[c] = their ‖c‖².   [width, dim]
    let candidates = UnsafeMutablePointer<Float>.allocate(capacity: width * dim)
    let candidateNorms = UnsafeMutablePointer<Float>.allocate(capacity: width)
    // potentialPerBlock[b, t] = Σ_{i in block b} min(closest[i], distances[i, group·trials + t]).
    let potentialPerBlock = UnsafeMutablePointer<Double>.allocate(capacity: blocks * trials)
    // cumulative[i] = Σ_{j ≤ i} closest[j], for drawing candidates.
    let cumulative = UnsafeMutablePointer<Double>.allocate(capacity: n)
    defer {
        closest.deallocate(); distances.deallocate(); candidates.deallocate()
        candidateNorms.deallocate(); potentialPerBlock.deallocate(); cumulative.deallocate()
    }

    /// distances[:, 0..<count] for the first `count` candidates.
    func measure(count: Int) {
        VocabParallel.forEach(blocks, workers: workers) { b in
            let start = b * blockRows
            let m = min(blockRows, n - start)
            let out = distances + start * width
            BLAS.sgemm(transB: true, m: m, n: count, k: dim, alpha: -2, a: points + start * dim, lda: dim,
                       b: candidates, ldb: dim, beta: 0, c: out, ldc: width)
            for r in 0..<m {
                let xn = norms[start + r]
                let row = out + r * width
                for c in 0..<count { row[c] = max(0, row[c] + xn + candidateNorms[c]) }
            }
        }
    }

    /// Optionally lowers `closest` by candidate column `apply`, then sums, for the `trials`
    /// candidates of `group`, the potential each would leave; returns the best trial.
    func step(apply: Int?, group: Int?) -> Int {
        VocabParallel.forEach(blocks, workers: workers) { b in
            let start = b * blockRows
            let end = min(n, start + blockRows)
            if let apply {
                for i in start..<end { closest[i] = min(closest[i], distances[i * width + apply]) }
            }
            if let group {
                let sums = potentialPerBlock + b * trials
                sums.update(repeating: 0, count: trials)
                for i in start..<end {
                    let current = closest[i]
                    let row = distances + i * width + group * trials
                    for t in 0..<trials { sums[t] += Double(min(current, row[t])) }
                }
            }
        }
        guard group != nil else { return 0 }
        var bestTrial = 0
        var bestPotential = Double.infinity
        for t in 0..<trials {
            var p = 0.0
            for b in 0..<blocks { p += potentialPerBlock[b * trials + t] }
            if p < bestPotential { bestPotential = p; bestTrial = t }
        }
        return bestTrial
    }

    func setCandidate(_ c: Int, point i: Int) {
        (candidates + c * dim).update(from: points + i * dim, count: dim)
        candidateNorms[c] = norms[i]
    }

    var chosen: [Int] = []
    chosen.reserveCapacity(k)
    // First centre: uniform.
    let first = rng.nextInt(n)
    chosen.append(first)
    setCandidate(0, point: first)
    closest.update(repeating: .infinity, count: n)
    measure(count: 1)
    _ = step(apply: 0, group: nil)

    var drawn = [Int](repeating: 0, count: width)
    while chosen.count < k {
        let steps = min(perRound, k - chosen.count)
        var total = 0.0
        for i in 0..<n { total += Double(closest[i]); cumulative[i] = total }
        for c in 0..<(steps * trials) {
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
                drawn[c] = lo
            } else {
                // Every point coincides with a centre (fewer distinct points than K): any point.
                drawn[c] = rng.nextInt(n)
            }
            setCandidate(c, point: drawn[c])
        }
        measure(count: steps * trials)
        var previous: Int? = nil
        for g in 0..<steps {
            let t = step(apply: previous, group: g)
            chosen.append(drawn[g * trials + t])
            previous = g * trials + t
        }
        _ = step(apply: previous, group: nil)
    }
    return chosen
}
