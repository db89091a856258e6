import Foundation
import Tensor

/// Flat k-means: greedy k-means++ seeding, then Lloyd iterations.
///
/// ```swift
/// var km = KMeans(clusters: 1024, iterations: 10, seed: 7)
/// let model = try points.withUnsafeBufferPointer { try km.fit($0, rows: n, dim: 512) }
/// let (labels, distances) = points.withUnsafeBufferPointer { model.assign($0, rows: n) }
/// ```
///
/// - Seeding: greedy k-means++ (see `greedyKMeansPlusPlus`) on a seeded sample of
///   `initSampleSize(rows:)` points: 16 per centroid, at least 1,024, and at most what keeps
///   the seeding's cost (sample × K × (2 + ln K) × dim) near two Lloyd iterations over the fit
///   set (sample ≤ 2 × rows / (2 + ln K)); greedy k-means++ over every point, as scikit-learn
///   does, costs 2 + ln K full iterations. Measured on the benchmark mixture
///   (tools/bench/kmeans.py: 100,000 × 512 into 1,024, 10 iterations), final inertia:
///   8 per centroid 76.49 M, 16 per centroid 75.95 M, 32 per centroid 75.95 M; scikit-learn's
///   greedy k-means++ on all points 75.49 M; faiss's random seeding 80.50 M. Plain
///   (one-candidate) k-means++ on the sample did no better than random seeding there.
/// - Lloyd: distances through sgemm (`CentroidSearch`), centroid = mean of its points (summed
///   in Float64, in point order). After the first iterations most clusters keep exactly the
///   same points, so their centroids come out bit-for-bit unchanged (measured on the benchmark
///   mixture: from the third iteration on, over 90 % of the 1,024 centroids stay put). A point
///   whose centroid did not move was nearer to it than to every other centroid, and the
///   unmoved ones are where they were; so it only needs its distances to the centroids that
///   moved. Only points whose own centroid moved are searched against all K. The assignment
///   is exactly Lloyd's (ties go to the lowest index either way); only the work differs. This
///   is exact, unlike triangle-inequality bounds (Hamerly 2010, Elkan 2003), which rarely
///   prune in high dimensions where distances concentrate. Iterations stop early when no
///   centroid moves.
/// - Empty clusters (and, with `minClusterSize` > 1, clusters smaller than that) are re-seeded
///   by splitting the largest cluster, as faiss does (Clustering.cpp, split_clusters): the
///   re-seeded centroid and the largest one become its centroid ± a small step (10⁻³ of the
///   cluster's RMS radius) along a seeded random direction, so the next assignment divides that
///   cluster's points between them by a hyperplane through its mean. (scikit-learn moves the
///   point farthest from its centroid instead; that point is often an outlier, which then
///   stays a cluster of one — useless for a hierarchy that must split every node again.)
/// - Sampling: with `maxPointsPerCentroid` set, at most that many points per centroid (a
///   seeded sample, like faiss's max_points_per_centroid = 256) are used to fit; `assign` then
///   labels any number of points.
/// - Determinism: the same seed, data and settings give the same centroid bytes for any number
///   of threads (fixed block layout, one OpenBLAS thread per block, ordered reductions).
public struct KMeans: Sendable {
    /// K, the number of centroids.
    public var clusters: Int
    /// Lloyd iterations (assignment + update), at most; fewer when the assignment stops changing.
    public var iterations: Int
    public var seed: UInt64
    /// Fit on a seeded sample of at most this many points per centroid; nil = every point.
    public var maxPointsPerCentroid: Int?
    /// k-means++ runs on a seeded sample of this many points per centroid (see `initSampleSize`).
    public var initPointsPerCentroid: Int = 16
    /// Clusters with fewer points than this (empty ones included) are re-seeded after each
    /// update (see above). 1 = only empty clusters. The hierarchical fit raises it so that every
    /// child keeps enough points to be split again.
    public var minClusterSize: Int = 1
    /// k-means++ steps whose candidates are drawn together (see `greedyKMeansPlusPlus`); nil =
    /// K/64 up to 64/trials (1, exact greedy k-means++, below K = 128).
    public var seedingStepsPerRound: Int?
    /// Threads (each sgemm inside runs on one OpenBLAS thread).
    public var workers: Int = VocabParallel.cores
    /// Search only against the centroids that moved, for points whose centroid did not (see
    /// above); false searches every point against every centroid (same result, more work).
    public var skipUnmovedCentroids: Bool = true

    public init(clusters: Int, iterations: Int = 20, seed: UInt64 = 0, maxPointsPerCentroid: Int? = nil) {
        self.clusters = clusters
        self.iterations = iterations
        self.seed = seed
        self.maxPointsPerCentroid = maxPointsPerCentroid
    }

    /// How many points k-means++ seeds from, for `rows` points to fit: `initPointsPerCentroid`
    /// per centroid, at least 1,024, at most 2 × rows / (2 + ln K) (about two Lloyd iterations).
    public func initSampleSize(rows: Int) -> Int {
        let trials = 2 + Int(Foundation.log(Double(max(clusters, 1))))
        let budget = 2 * rows / trials
        return min(rows, max(1024, min(initPointsPerCentroid * clusters, budget)))
    }

    /// How many points the fit uses, for `rows` given.
    public func fitSampleSize(rows: Int) -> Int {
        guard let m = maxPointsPerCentroid else { return rows }
        return min(rows, max(clusters, m * clusters))
    }

    /// Fits `clusters` centroids to `rows` points of `dim` floats (row-major in `points`).
    /// `initialCentroids` ([clusters, dim]) replaces the k-means++ seeding (a warm start).
    /// `progress` is called after every iteration.
    public func fit(_ points: UnsafeBufferPointer<Float>, rows: Int, dim: Int, initialCentroids: [Float]? = nil,
                    progress: ((KMeansProgress) -> Void)? = nil) throws -> KMeansModel {
        guard clusters >= 1 else { throw VideoBertError("k-means needs at least 1 cluster (got \(clusters))") }
        guard iterations >= 0 else { throw VideoBertError("k-means iterations must be ≥ 0 (got \(iterations))") }
        guard dim >= 1 else { throw VideoBertError("k-means needs points of dimension ≥ 1 (got \(dim))") }
        guard points.count >= rows * dim else {
            throw VideoBertError("k-means was given \(points.count) floats for \(rows) × \(dim) points")
        }
        guard rows >= clusters else {
            throw VideoBertError("k-means into \(clusters) clusters needs at least \(clusters) points, got \(rows)")
        }
        if let initialCentroids, initialCentroids.count != clusters * dim {
            throw VideoBertError("k-means was given \(initialCentroids.count) initial centroid values, expected \(clusters) × \(dim)")
        }
        if let m = maxPointsPerCentroid, m < 1 {
            throw VideoBertError("max points per centroid must be ≥ 1 (got \(m))")
        }
        let base = points.baseAddress!
        if !allFinite(base, rows * dim) {
            let bad = (0..<(rows * dim)).first { !base[$0].isFinite } ?? 0
            throw VideoBertError("k-means input row \(bad / dim) holds a NaN or infinite value")
        }
        let started = Date()
        var samplingRNG = SeededRNG(seed: seed, stream: 1)
        var seedingRNG = SeededRNG(seed: seed, stream: 2)

        // The points to fit: all, or a seeded sample.
        let n = fitSampleSize(rows: rows)
        var sampleStore: [Float] = []
        if n < rows {
            sampleStore = gatherRows(base, dim: dim, indices: selectionSample(from: rows, count: n, rng: &samplingRNG))
        }
        let run = { (fitPoints: UnsafePointer<Float>) throws -> KMeansModel in
            let state = LloydState(points: fitPoints, n: n, dim: dim, k: clusters, workers: workers)
            var splitRNG = SeededRNG(seed: seed, stream: 4)
            defer { state.deallocate() }
            // k-means++ on a sample of the fit set.
            let s = initSampleSize(rows: n)
            let chosen: [Int]
            if let initialCentroids {
                state.centroids.update(from: initialCentroids, count: clusters * dim)
                chosen = []
            } else if s < n {
                let picked = selectionSample(from: n, count: s, rng: &samplingRNG)
                let sample = gatherRows(fitPoints, dim: dim, indices: picked)
                var sampleNorms = [Float](repeating: 0, count: s)
                chosen = sample.withUnsafeBufferPointer { sp in
                    sampleNorms.withUnsafeMutableBufferPointer { rowSquaredNorms(sp.baseAddress!, rows: s, dim: dim, into: $0.baseAddress!, workers: workers) }
                    return greedyKMeansPlusPlus(points: sp.baseAddress!, norms: sampleNorms, n: s, dim: dim, k: clusters,
                                                rng: &seedingRNG, workers: workers,
                                                stepsPerRound: seedingStepsPerRound).map { picked[$0] }
                }
            } else {
                chosen = greedyKMeansPlusPlus(points: fitPoints, norms: state.pointNorms, n: n, dim: dim, k: clusters,
                                              rng: &seedingRNG, workers: workers, stepsPerRound: seedingStepsPerRound)
            }
            for (j, i) in chosen.enumerated() {
                (state.centroids + j * dim).update(from: fitPoints + i * dim, count: dim)
            }
            let initSeconds = Date().timeIntervalSince(started)
            let summary = state.iterate(iterations: iterations, skipUnmoved: skipUnmovedCentroids,
                                        minClusterSize: max(1, minClusterSize), rng: &splitRNG) { p in
                var p = p
                p.seconds = Date().timeIntervalSince(started)
                progress?(p)
            }
            return KMeansModel(clusters: clusters, dim: dim,
                               centroids: Array(UnsafeBufferPointer(start: state.centroids, count: clusters * dim)),
                               inertia: summary.inertia, inertiaHistory: summary.history, pointsUsed: n,
                               iterationsRun: summary.history.count, reseededClusters: summary.reseeded,
                               distanceFraction: summary.distanceFraction,
                               initSeconds: initSeconds, seconds: Date().timeIntervalSince(started))
        }
        if n < rows {
            return try sampleStore.withUnsafeBufferPointer { try run($0.baseAddress!) }
        }
        return try run(base)
    }

    /// `fit` over an array.
    public func fit(_ points: [Float], rows: Int, dim: Int, initialCentroids: [Float]? = nil,
                    progress: ((KMeansProgress) -> Void)? = nil) throws -> KMeansModel {
        try points.withUnsafeBufferPointer { try fit($0, rows: rows, dim: dim, initialCentroids: initialCentroids, progress: progress) }
    }
}

/// Reported after every Lloyd iteration.
public struct KMeansProgress: Sendable {
    /// 1-based.
    public var iteration: Int
    public var iterations: Int
    /// Σ ‖x − c(x)‖² after this iteration's update.
    public var inertia: Double
    /// Points that changed centroid.
    public var changed: Int
    /// Centroids the previous update moved (all K in the first iteration).
    public var movedCentroids: Int
    /// Point–centroid distances computed, as a fraction of points × K.
    public var distanceFraction: Double
    public var points: Int
    /// Since the fit began.
    public var seconds: Double
}

/// Fitted k-means centroids.
public struct KMeansModel: Sendable, Equatable {
    public let clusters: Int
    public let dim: Int
    /// [clusters, dim] row-major.
    public let centroids: [Float]
    /// Σ over the fitted points of ‖x − c‖², c the centroid of x's final assignment (computed
    /// in Float64 from the per-cluster sums: Σ‖x‖² − ‖Σx‖²/n per cluster).
    public let inertia: Double
    /// The inertia after each iteration.
    public let inertiaHistory: [Double]
    /// Points the fit used (all, or the sample).
    public let pointsUsed: Int
    public let iterationsRun: Int
    /// Empty clusters re-seeded, over all iterations.
    public let reseededClusters: Int
    /// Point–centroid distances computed over all iterations, as a fraction of iterations × points × K.
    public let distanceFraction: Double
    /// Seeding time, and total fit time (seconds).
    public let initSeconds: Double
    public let seconds: Double

    public init(clusters: Int, dim: Int, centroids: [Float], inertia: Double, inertiaHistory: [Double] = [],
                pointsUsed: Int = 0, iterationsRun: Int = 0, reseededClusters: Int = 0, distanceFraction: Double = 1,
                initSeconds: Double = 0, seconds: Double = 0) {
        precondition(centroids.count == clusters * dim)
        self.clusters = clusters; self.dim = dim; self.centroids = centroids; self.inertia = inertia
        self.inertiaHistory = inertiaHistory; self.pointsUsed = pointsUsed; self.iterationsRun = iterationsRun
        self.reseededClusters = reseededClusters; self.distanceFraction = distanceFraction
        self.initSeconds = initSeconds; self.seconds = seconds
    }

    /// Centroid `j`.
    public func centroid(_ j: Int) -> ArraySlice<Float> { centroids[(j * dim)..<((j + 1) * dim)] }

    /// The nearest centroid of each of `rows` points, and the squared distance to it.
    public func assign(_ points: UnsafeBufferPointer<Float>, rows: Int,
                       workers: Int = VocabParallel.cores) -> (labels: [Int32], squaredDistances: [Float]) {
        precondition(points.count >= rows * dim)
        var labels = [Int32](repeating: -1, count: rows)
        var distances = [Float](repeating: 0, count: rows)
        if rows == 0 { return (labels, distances) }
        var norms = [Float](repeating: 0, count: clusters)
        centroids.withUnsafeBufferPointer { c in
            norms.withUnsafeMutableBufferPointer { rowSquaredNorms(c.baseAddress!, rows: clusters, dim: dim, into: $0.baseAddress!) }
            _ = labels.withUnsafeMutableBufferPointer { l in
                distances.withUnsafeMutableBufferPointer { d in
                    nearestCentroids(points: points.baseAddress!, dim: dim, rows: rows, indices: nil, pointNorms: nil,
                                     centroids: c.baseAddress!, centroidNorms: norms, k: clusters,
                                     labels: l.baseAddress!, best: d.baseAddress!, second: nil, workers: workers)
                }
            }
        }
        return (labels, distances)
    }

    /// Σ over `rows` points of the squared distance to the nearest centroid (Float64 sum).
    public func inertia(of points: UnsafeBufferPointer<Float>, rows: Int, workers: Int = VocabParallel.cores) -> Double {
        assign(points, rows: rows, workers: workers).squaredDistances.reduce(0.0) { $0 + Double($1) }
    }
}

// MARK: - Lloyd iterations

/// The working buffers of one Lloyd run over `n` points (all raw allocations, freed by `deallocate`).
struct LloydState {
    let points: UnsafePointer<Float>   // [n, dim], not owned
    let n: Int, dim: Int, k: Int, workers: Int
    let pointNorms: UnsafeMutablePointer<Float>       // [n]    ‖x‖²
    let labels: UnsafeMutablePointer<Int32>           // [n]    current centroid
    let best: UnsafeMutablePointer<Float>             // [n]    squared distance to it
    let lower: UnsafeMutablePointer<Float>            // [n]    ≤ squared distance to every unmoved other centroid
    let kind: UnsafeMutablePointer<UInt8>             // [n]    how to search this point (see assignAgainstMoved)
    let movedSecond: UnsafeMutablePointer<Float>      // [n]    squared distance to the second nearest moved centroid
    let fullSearch: UnsafeMutablePointer<Int32>       // [n]    points whose centroid moved, ascending
    let movedSearch: UnsafeMutablePointer<Int32>      // [n]    points whose centroid stayed, ascending
    let movedLabel: UnsafeMutablePointer<Int32>       // [n]    nearest moved centroid (index into `moved`)
    let movedBest: UnsafeMutablePointer<Float>        // [n]    squared distance to it
    let members: UnsafeMutablePointer<Int32>          // [n]    points grouped by centroid
    let offsets: UnsafeMutablePointer<Int>            // [k+1]  members of j: offsets[j]..<offsets[j+1]
    let counts: UnsafeMutablePointer<Int>             // [k]    points per cluster
    let previousLabels: UnsafeMutablePointer<Int32>   // [n]    labels before this assignment
    let centroids: UnsafeMutablePointer<Float>        // [k, dim]
    let previous: UnsafeMutablePointer<Float>         // [k, dim] centroids before the update
    let centroidNorms: UnsafeMutablePointer<Float>    // [k]
    let isMoved: UnsafeMutablePointer<Bool>           // [k]    centroid changed in the last update
    let moved: UnsafeMutablePointer<Int32>            // [k]    the moved centroids, ascending
    let movedCentroids: UnsafeMutablePointer<Float>   // [k, dim] their values, packed
    let movedNorms: UnsafeMutablePointer<Float>       // [k]
    let sums: UnsafeMutablePointer<Double>            // [k, dim] Σ x per cluster
    let sumSquares: UnsafeMutablePointer<Double>      // [k]    Σ ‖x‖² per cluster

    init(points: UnsafePointer<Float>, n: Int, dim: Int, k: Int, workers: Int) {
        self.points = points; self.n = n; self.dim = dim; self.k = k; self.workers = workers
        pointNorms = .allocate(capacity: n)
        labels = .allocate(capacity: n)
        best = .allocate(capacity: n)
        lower = .allocate(capacity: n)
        kind = .allocate(capacity: n)
        movedSecond = .allocate(capacity: n)
        fullSearch = .allocate(capacity: n)
        movedSearch = .allocate(capacity: n)
        movedLabel = .allocate(capacity: n)
        movedBest = .allocate(capacity: n)
        members = .allocate(capacity: n)
        offsets = .allocate(capacity: k + 1)
        counts = .allocate(capacity: k)
        previousLabels = .allocate(capacity: n)
        centroids = .allocate(capacity: k * dim)
        previous = .allocate(capacity: k * dim)
        centroidNorms = .allocate(capacity: k)
        isMoved = .allocate(capacity: k)
        moved = .allocate(capacity: k)
        movedCentroids = .allocate(capacity: k * dim)
        movedNorms = .allocate(capacity: k)
        sums = .allocate(capacity: k * dim)
        sumSquares = .allocate(capacity: k)
        labels.update(repeating: -1, count: n)
        rowSquaredNorms(points, rows: n, dim: dim, into: pointNorms, workers: workers)
    }

    func deallocate() {
        pointNorms.deallocate(); labels.deallocate(); best.deallocate(); fullSearch.deallocate()
        lower.deallocate(); kind.deallocate(); movedSecond.deallocate()
        movedSearch.deallocate(); movedLabel.deallocate(); movedBest.deallocate(); members.deallocate()
        offsets.deallocate(); counts.deallocate(); previousLabels.deallocate(); centroids.deallocate(); previous.deallocate(); centroidNorms.deallocate()
        isMoved.deallocate(); moved.deallocate(); movedCentroids.deallocate(); movedNorms.deallocate()
        sums.deallocate(); sumSquares.deallocate()
    }

    struct Summary { var inertia: Double; var history: [Double]; var reseeded: Int; var distanceFraction: Double }

    /// Runs up to `iterations` Lloyd iterations from the centroids in `centroids`.
    func iterate(iterations: Int, skipUnmoved: Bool, minClusterSize: Int, rng: inout SeededRNG,
                 progress: (KMeansProgress) -> Void) -> Summary {
        var history: [Double] = []
        var reseeded = 0
        var distances = 0.0
        var searches = 0
        var inertia = Double.nan
        var movedCount = k
        var overridden = false   // the last update re-seeded, so centroids are not all means
        for it in 0..<iterations {
            rowSquaredNorms(centroids, rows: k, dim: dim, into: centroidNorms)
            previousLabels.update(from: labels, count: n)
            // 1. Assignment.
            let changed: Int
            let fraction: Double
            if it == 0 || !skipUnmoved || 2 * movedCount >= k {
                // Everything against everything (first iteration, or most centroids moved).
                changed = CentroidSearch(points: points, dim: dim, rows: n, pointNorms: pointNorms,
                                         centroids: centroids, centroidNorms: centroidNorms, k: k,
                                         labels: labels, best: best, second: lower).run(workers: workers)
                fraction = 1
            } else {
                (changed, fraction) = assignAgainstMoved(movedCount: movedCount)
            }
            distances += fraction
            searches += 1
            if it > 0 && changed == 0 && !overridden {
                // Same assignment as last time: the update would give the same centroids.
                break
            }
            // 2. Update.
            // The sums are built once, then follow the points that change cluster: after the
            // first iterations only a few percent do (Float64 sums; the order is fixed).
            if it == 0 { accumulate() } else { applyChanges() }
            inertia = updateCentroids()
            let split = splitLargestClusters(minSize: minClusterSize, rng: &rng, inertia: &inertia)
            reseeded += split
            overridden = split > 0
            let previouslyMoved = movedCount
            movedCount = markMovedCentroids()
            history.append(inertia)
            progress(KMeansProgress(iteration: it + 1, iterations: iterations, inertia: inertia, changed: changed,
                                    movedCentroids: it == 0 ? k : previouslyMoved, distanceFraction: fraction,
                                    points: n, seconds: 0))
            if movedCount == 0 { break }
        }
        if history.isEmpty {
            // No update ran (0 iterations): the inertia of the initial centroids.
            rowSquaredNorms(centroids, rows: k, dim: dim, into: centroidNorms)
            _ = CentroidSearch(points: points, dim: dim, rows: n, pointNorms: pointNorms, centroids: centroids,
                               centroidNorms: centroidNorms, k: k, labels: labels, best: best).run(workers: workers)
            inertia = (0..<n).reduce(0.0) { $0 + Double(best[$1]) }
        }
        return Summary(inertia: inertia, history: history, reseeded: reseeded,
                       distanceFraction: searches > 0 ? distances / Double(searches) : 1)
    }

    /// The assignment when only `movedCount` centroids moved. Every point keeps `lower`, a lower
    /// bound on its squared distance to every centroid other than its own that has not moved
    /// since the bound was set. Three kinds of point:
    /// - A, its centroid did not move: the unmoved others are still no nearer, so only the moved
    ///   centroids can take it; it is searched against those alone.
    /// - B, its centroid moved but is still within `lower`: again only moved centroids (its own
    ///   among them) can be nearest; searched against the moved ones.
    /// - C, its centroid moved beyond `lower`: searched against all K.
    /// The result is Lloyd's assignment (exact ties aside). Returns the points that changed and
    /// the fraction of point–centroid distances computed.
    private func assignAgainstMoved(movedCount m: Int) -> (Int, Double) {
        // Pack the moved centroids.
        var j = 0
        for c in 0..<k where isMoved[c] {
            moved[j] = Int32(c)
            (movedCentroids + j * dim).update(from: centroids + c * dim, count: dim)
            movedNorms[j] = centroidNorms[c]
            j += 1
        }
        // Classify (in parallel; each point writes its own slots), then list in point order.
        let (points, dim, labels, best, lower, kind, isMoved, centroids) =
            (self.points, self.dim, self.labels, self.best, self.lower, self.kind, self.isMoved, self.centroids)
        let chunk = 8192
        VocabParallel.forEach((n + chunk - 1) / chunk, workers: workers) { c in
            for i in (c * chunk)..<min(n, (c + 1) * chunk) {
                let a = Int(labels[i])
                if !isMoved[a] { kind[i] = 0; continue }
                let u = squaredDistance(points + i * dim, centroids + a * dim, dim)
                if u <= lower[i] { kind[i] = 1; best[i] = u } else { kind[i] = 2 }
            }
        }
        var full = 0, partial = 0
        for i in 0..<n {
            if kind[i] == 2 { fullSearch[full] = Int32(i); full += 1 } else { movedSearch[partial] = Int32(i); partial += 1 }
        }
        // C: against everything (exact nearest and second nearest).
        var changed = CentroidSearch(points: points, dim: dim, rows: full, indices: fullSearch, pointNorms: pointNorms,
                                     centroids: centroids, centroidNorms: centroidNorms, k: k,
                                     labels: labels, best: best, second: lower).run(workers: workers)
        // A and B: against the moved centroids.
        for r in 0..<partial { movedLabel[Int(movedSearch[r])] = -1 }
        _ = CentroidSearch(points: points, dim: dim, rows: partial, indices: movedSearch, pointNorms: pointNorms,
                           centroids: movedCentroids, centroidNorms: movedNorms, k: m,
                           labels: movedLabel, best: movedBest, second: movedSecond).run(workers: workers)
        for r in 0..<partial {
            let i = Int(movedSearch[r])
            let a = labels[i]
            let candidate = moved[Int(movedLabel[i])]
            let (m1, m2) = (movedBest[i], movedSecond[i])
            if kind[i] == 1 {
                // B: the nearest moved centroid is the nearest of all (its own is among them).
                if candidate != a { changed += 1 }
                labels[i] = candidate
                best[i] = m1
                lower[i] = min(lower[i], m2)
            } else if m1 < best[i] || (m1 == best[i] && candidate < a) {
                // A, taken by a moved centroid: the old one joins the others.
                changed += 1
                lower[i] = min(lower[i], best[i], m2)
                labels[i] = candidate
                best[i] = m1
            } else {
                // A, kept: the moved centroids are now others.
                lower[i] = min(lower[i], m1)
            }
        }
        return (changed, (Double(full) * Double(k) + Double(partial) * Double(m)) / (Double(n) * Double(k)))
    }

    /// Moves every point whose label changed from its old cluster's sums to its new one's, in
    /// point order.
    private func applyChanges() {
        for i in 0..<n where labels[i] != previousLabels[i] {
            let from = Int(previousLabels[i]), to = Int(labels[i])
            let x = points + i * dim
            let fromSum = sums + from * dim, toSum = sums + to * dim
            var squares = 0.0
            for c in 0..<dim {
                let v = Double(x[c])
                fromSum[c] -= v
                toSum[c] += v
                squares += v * v
            }
            sumSquares[from] -= squares
            sumSquares[to] += squares
            counts[from] -= 1
            counts[to] += 1
        }
    }

    /// Groups points by centroid and sums each group in point order (Float64).
    private func accumulate() {
        offsets.update(repeating: 0, count: k + 1)
        for i in 0..<n { offsets[Int(labels[i]) + 1] += 1 }
        for j in 0..<k { offsets[j + 1] += offsets[j] }
        var fill = [Int](UnsafeBufferPointer(start: offsets, count: k))
        for i in 0..<n {
            let j = Int(labels[i])
            members[fill[j]] = Int32(i)
            fill[j] += 1
        }
        let (points, dim, members, offsets, sums, sumSquares) = (self.points, self.dim, self.members, self.offsets, self.sums, self.sumSquares)
        VocabParallel.forEach(k, workers: workers) { j in
            let acc = sums + j * dim
            acc.update(repeating: 0, count: dim)
            var squares = 0.0
            for m in offsets[j]..<offsets[j + 1] {
                squares += addRow(points + Int(members[m]) * dim, to: acc, dim)
            }
            sumSquares[j] = squares
        }
        for j in 0..<k { counts[j] = offsets[j + 1] - offsets[j] }
    }

    /// Re-seeds every cluster with fewer than `minSize` points (ascending index) by splitting
    /// the cluster with the most points (lowest index on ties; sizes are halved as they are
    /// split): both centroids become its centroid ± 10⁻³ of its RMS radius along a random unit
    /// direction. Labels and sums are left as they are (the next assignment moves the points),
    /// and `inertia` is corrected to the new centroids. Returns how many clusters were re-seeded.
    private func splitLargestClusters(minSize: Int, rng: inout SeededRNG, inertia: inout Double) -> Int {
        var small: [Int] = []
        for j in 0..<k where counts[j] < minSize { small.append(j) }
        if small.isEmpty { return 0 }
        var size = (0..<k).map { Double(counts[$0]) }
        var touched = Set<Int>()
        var direction = [Float](repeating: 0, count: dim)
        var done = 0
        for e in small {
            var b = -1
            for j in 0..<k where j != e && (b < 0 || size[j] > size[b]) { b = j }
            // Nothing left worth splitting (fewer points than clusters of the minimum size).
            guard b >= 0, size[b] >= 2 * Double(minSize), size[b] >= 2 else { break }
            let nb = Double(counts[b])
            var radius = 0.0
            if nb > 0 {
                var sumNorm = 0.0
                for c in 0..<dim { sumNorm += sums[b * dim + c] * sums[b * dim + c] }
                radius = max(0, (sumSquares[b] - sumNorm / nb) / nb).squareRoot()
            }
            var norm: Float = 0
            for c in 0..<dim { direction[c] = rng.nextGaussian(); norm += direction[c] * direction[c] }
            let step = Float(1e-3 * max(radius, 1e-12)) / max(norm.squareRoot(), .leastNormalMagnitude)
            for c in 0..<dim {
                let centre = centroids[b * dim + c]
                centroids[e * dim + c] = centre + step * direction[c]
                centroids[b * dim + c] = centre - step * direction[c]
            }
            size[e] = (size[b] / 2).rounded(.down)
            size[b] -= size[e]
            touched.insert(e); touched.insert(b)
            done += 1
        }
        // The inertia of the current labels against the moved centroids: for each touched
        // cluster, Σ‖x − c‖² = Σ‖x‖² − 2 c·Σx + n‖c‖² (the others are unchanged).
        for j in touched {
            let nj = Double(counts[j])
            var before = 0.0, after = 0.0
            if nj > 0 {
                var sumNorm = 0.0, dot = 0.0, cNorm = 0.0
                for c in 0..<dim {
                    let s = sums[j * dim + c], v = Double(centroids[j * dim + c])
                    sumNorm += s * s; dot += v * s; cNorm += v * v
                }
                before = max(0, sumSquares[j] - sumNorm / nj)
                after = max(0, sumSquares[j] - 2 * dot + nj * cNorm)
            }
            inertia += after - before
        }
        return done
    }

    /// centroid = sum / count; returns the inertia Σ_j (Σ‖x‖² − ‖Σx‖²/n_j).
    private func updateCentroids() -> Double {
        previous.update(from: centroids, count: k * dim)
        var inertia = 0.0
        for j in 0..<k {
            let count = counts[j]
            guard count > 0 else { continue }   // empty: keeps its centroid until re-seeded
            let s = sums + j * dim
            let inv = 1.0 / Double(count)
            var sumNorm = 0.0
            for c in 0..<dim {
                centroids[j * dim + c] = Float(s[c] * inv)
                sumNorm += s[c] * s[c]
            }
            inertia += max(0, sumSquares[j] - sumNorm * inv)
        }
        return inertia
    }

    /// isMoved[j] = centroid j differs (in any bit) from before the update; returns how many.
    private func markMovedCentroids() -> Int {
        var count = 0
        for j in 0..<k {
            let a = UnsafeRawPointer(centroids + j * dim), b = UnsafeRawPointer(previous + j * dim)
            let changed = memcmp(a, b, dim * MemoryLayout<Float>.size) != 0
            isMoved[j] = changed
            if changed { count += 1 }
        }
        return count
    }
}

/// acc[c] += x[c] for c in 0..<n (in Float64); returns Σ x[c]² (Float64).
@inline(__always)
func addRow(_ x: UnsafePointer<Float>, to acc: UnsafeMutablePointer<Double>, _ n: Int) -> Double {
    var squares = SIMD8<Double>()
    var c = 0
    while c + 8 <= n {
        let v = SIMD8<Double>(UnsafeRawPointer(x + c).loadUnaligned(as: SIMD8<Float>.self))
        let a = UnsafeMutableRawPointer(acc + c)
        a.storeBytes(of: a.loadUnaligned(as: SIMD8<Double>.self) + v, as: SIMD8<Double>.self)
        squares += v * v
        c += 8
    }
    var s = squares.sum()
    while c < n {
        let v = Double(x[c])
        acc[c] += v
        s += v * v
        c += 1
    }
    return s
}
