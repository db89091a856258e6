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
///   `initSampleSize(rows:)` points. k-means++ costs K · S · (2 + ln K) · dim, so on all points
///   it would cost several Lloyd iterations for large K; a sample of 8 points per centroid (at
///   least 1,024) keeps it below one iteration's cost for any K, and, measured on the
///   benchmark mixture (tools/bench/kmeans.py: 100,000 × 512 into 1,024), gives 4–5 % lower
///   inertia after 10 iterations than faiss's random seeding, while 2 points per centroid gave
///   no gain over random seeding.
/// - Lloyd: distances through sgemm (`nearestCentroids`), centroid = mean of its points
///   (summed in Float64, in point order). Hamerly's bounds (G. Hamerly, "Making k-means even
///   faster", SDM 2010) skip the points whose centroid provably cannot have changed: each point
///   keeps an upper bound on the distance to its centroid and a lower bound on the distance to
///   any other; when centroids move, the bounds move by the drift, and only points whose bounds
///   cross are searched again. The assignments are those of plain Lloyd (up to float rounding
///   on exact ties); only the work differs. Iterations stop early when no point changes centroid.
/// - Empty clusters: re-seeded as in scikit-learn (`_relocate_empty_clusters`): each empty
///   cluster takes the point farthest from its centroid (among clusters that keep at least one
///   point) as a singleton — the point the current centroids explain worst, so the objective
///   drops the most.
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
    /// k-means++ runs on a seeded sample of this many points per centroid (at least 1,024 points).
    public var initPointsPerCentroid: Int = 8
    /// Threads (each sgemm inside runs on one OpenBLAS thread).
    public var workers: Int = VocabParallel.cores
    /// Hamerly's bounds; false searches every point every iteration (same result, more work).
    public var useBounds: Bool = true

    public init(clusters: Int, iterations: Int = 20, seed: UInt64 = 0, maxPointsPerCentroid: Int? = nil) {
        self.clusters = clusters
        self.iterations = iterations
        self.seed = seed
        self.maxPointsPerCentroid = maxPointsPerCentroid
    }

    /// How many points k-means++ seeds from, for `rows` points to fit.
    public func initSampleSize(rows: Int) -> Int {
        min(rows, max(1024, initPointsPerCentroid * clusters))
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
                                                rng: &seedingRNG, workers: workers).map { picked[$0] }
                }
            } else {
                chosen = greedyKMeansPlusPlus(points: fitPoints, norms: state.pointNorms, n: n, dim: dim, k: clusters,
                                              rng: &seedingRNG, workers: workers)
            }
            for (j, i) in chosen.enumerated() {
                (state.centroids + j * dim).update(from: fitPoints + i * dim, count: dim)
            }
            let initSeconds = Date().timeIntervalSince(started)
            let summary = state.iterate(iterations: iterations, useBounds: useBounds) { p in
                var p = p
                p.seconds = Date().timeIntervalSince(started)
                progress?(p)
            }
            return KMeansModel(clusters: clusters, dim: dim,
                               centroids: Array(UnsafeBufferPointer(start: state.centroids, count: clusters * dim)),
                               inertia: summary.inertia, inertiaHistory: summary.history, pointsUsed: n,
                               iterationsRun: summary.history.count, reseededClusters: summary.reseeded,
                               searchedFraction: summary.searchedFraction,
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
    /// Points whose distances to all centroids were computed (the rest were skipped by the bounds).
    public var searched: Int
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
    /// Mean fraction of points fully searched per iteration (1 without bounds).
    public let searchedFraction: Double
    /// Seeding time, and total fit time (seconds).
    public let initSeconds: Double
    public let seconds: Double

    public init(clusters: Int, dim: Int, centroids: [Float], inertia: Double, inertiaHistory: [Double] = [],
                pointsUsed: Int = 0, iterationsRun: Int = 0, reseededClusters: Int = 0, searchedFraction: Double = 1,
                initSeconds: Double = 0, seconds: Double = 0) {
        precondition(centroids.count == clusters * dim)
        self.clusters = clusters; self.dim = dim; self.centroids = centroids; self.inertia = inertia
        self.inertiaHistory = inertiaHistory; self.pointsUsed = pointsUsed; self.iterationsRun = iterationsRun
        self.reseededClusters = reseededClusters; self.searchedFraction = searchedFraction
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
    let upper: UnsafeMutablePointer<Float>            // [n]    ≥ distance to own centroid
    let lower: UnsafeMutablePointer<Float>            // [n]    ≤ distance to any other centroid
    let searchFlags: UnsafeMutablePointer<UInt8>      // [n]    1 = search this point again
    let active: UnsafeMutablePointer<Int32>           // [n]    the points to search, ascending
    let members: UnsafeMutablePointer<Int32>          // [n]    points grouped by centroid
    let offsets: UnsafeMutablePointer<Int>            // [k+1]  members of j: offsets[j]..<offsets[j+1]
    let centroids: UnsafeMutablePointer<Float>        // [k, dim]
    let previous: UnsafeMutablePointer<Float>         // [k, dim] centroids before the update
    let centroidNorms: UnsafeMutablePointer<Float>    // [k]
    let sums: UnsafeMutablePointer<Double>            // [k, dim] Σ x per cluster
    let sumSquares: UnsafeMutablePointer<Double>      // [k]    Σ ‖x‖² per cluster
    let drift: UnsafeMutablePointer<Float>            // [k]    ‖c_new − c_old‖
    let halfGap: UnsafeMutablePointer<Float>          // [k]    ½ min_{j'≠j} ‖c_j − c_j'‖

    /// Centroid–centroid distances cost K²·dim; above this K the half-gap test is skipped.
    static let maxClustersForGapTest = 4096

    init(points: UnsafePointer<Float>, n: Int, dim: Int, k: Int, workers: Int) {
        self.points = points; self.n = n; self.dim = dim; self.k = k; self.workers = workers
        pointNorms = .allocate(capacity: n)
        labels = .allocate(capacity: n)
        upper = .allocate(capacity: n)
        lower = .allocate(capacity: n)
        searchFlags = .allocate(capacity: n)
        active = .allocate(capacity: n)
        members = .allocate(capacity: n)
        offsets = .allocate(capacity: k + 1)
        centroids = .allocate(capacity: k * dim)
        previous = .allocate(capacity: k * dim)
        centroidNorms = .allocate(capacity: k)
        sums = .allocate(capacity: k * dim)
        sumSquares = .allocate(capacity: k)
        drift = .allocate(capacity: k)
        halfGap = .allocate(capacity: k)
        labels.update(repeating: -1, count: n)
        halfGap.update(repeating: 0, count: k)
        rowSquaredNorms(points, rows: n, dim: dim, into: pointNorms, workers: workers)
    }

    func deallocate() {
        pointNorms.deallocate(); labels.deallocate(); upper.deallocate(); lower.deallocate()
        searchFlags.deallocate(); active.deallocate(); members.deallocate(); offsets.deallocate()
        centroids.deallocate(); previous.deallocate(); centroidNorms.deallocate(); sums.deallocate()
        sumSquares.deallocate(); drift.deallocate(); halfGap.deallocate()
    }

    struct Summary { var inertia: Double; var history: [Double]; var reseeded: Int; var searchedFraction: Double }

    /// Runs up to `iterations` Lloyd iterations from the centroids in `centroids`.
    func iterate(iterations: Int, useBounds: Bool, progress: (KMeansProgress) -> Void) -> Summary {
        var history: [Double] = []
        var reseeded = 0
        var searchedTotal = 0.0
        var searchPasses = 0
        var maxDrift: Float = 0, secondMaxDrift: Float = 0, maxDriftCluster = -1
        var inertia = Double.nan
        for it in 0..<iterations {
            rowSquaredNorms(centroids, rows: k, dim: dim, into: centroidNorms)
            // 1. Which points must be searched.
            var searched = n
            var selection: UnsafePointer<Int32>? = nil
            if useBounds && it > 0 {
                searched = selectByBounds(maxDrift: maxDrift, secondMaxDrift: secondMaxDrift, maxDriftCluster: maxDriftCluster)
                selection = UnsafePointer(active)
            }
            // 2. Search them: nearest and second nearest centroid (squared), then to distances.
            let changed = nearestCentroids(points: points, dim: dim, rows: searched, indices: selection,
                                           pointNorms: pointNorms, centroids: centroids, centroidNorms: centroidNorms, k: k,
                                           labels: labels, best: upper, second: lower, workers: workers)
            if useBounds { takeSquareRoots(count: searched, selection: selection) }
            searchedTotal += Double(searched) / Double(n)
            searchPasses += 1
            if it > 0 && changed == 0 {
                // Same assignment as last time: the update would give the same centroids.
                break
            }
            // 3. Update.
            let empty = accumulate()
            if empty > 0 { reseedEmptyClusters(); reseeded += empty }
            inertia = updateCentroids()
            (maxDrift, secondMaxDrift, maxDriftCluster) = largestDrifts()
            if useBounds && k > 1 && k <= Self.maxClustersForGapTest { computeHalfGaps() }
            history.append(inertia)
            progress(KMeansProgress(iteration: it + 1, iterations: iterations, inertia: inertia, changed: changed,
                                    searched: searched, points: n, seconds: 0))
        }
        if history.isEmpty {
            // No update ran (0 iterations): the inertia of the initial centroids.
            rowSquaredNorms(centroids, rows: k, dim: dim, into: centroidNorms)
            nearestCentroids(points: points, dim: dim, rows: n, indices: nil, pointNorms: pointNorms, centroids: centroids,
                             centroidNorms: centroidNorms, k: k, labels: labels, best: upper, second: nil, workers: workers)
            inertia = (0..<n).reduce(0.0) { $0 + Double(upper[$1]) }
        }
        return Summary(inertia: inertia, history: history, reseeded: reseeded,
                       searchedFraction: searchPasses > 0 ? searchedTotal / Double(searchPasses) : 1)
    }

    /// Moves every point's bounds by the centroid drifts and lists (in `active`) the points whose
    /// centroid may have changed (Hamerly 2010, Algorithm 2). Returns how many.
    private func selectByBounds(maxDrift: Float, secondMaxDrift: Float, maxDriftCluster: Int) -> Int {
        let chunk = 8192
        let chunks = (n + chunk - 1) / chunk
        let (points, dim, labels, upper, lower, drift, halfGap, centroids, flags) =
            (self.points, self.dim, self.labels, self.upper, self.lower, self.drift, self.halfGap, self.centroids, self.searchFlags)
        VocabParallel.forEach(chunks, workers: workers) { c in
            for i in (c * chunk)..<min(n, (c + 1) * chunk) {
                let a = Int(labels[i])
                var u = upper[i] + drift[a]
                let l = lower[i] - (a == maxDriftCluster ? secondMaxDrift : maxDrift)
                lower[i] = l
                let bound = max(halfGap[a], l)
                var search: UInt8 = 0
                if u > bound {
                    // Tighten the upper bound to the exact distance, and test again.
                    u = squaredDistance(points + i * dim, centroids + a * dim, dim).squareRoot()
                    if u > bound { search = 1 }
                }
                upper[i] = u
                flags[i] = search
            }
        }
        var count = 0
        for i in 0..<n where flags[i] != 0 {
            active[count] = Int32(i)
            count += 1
        }
        return count
    }

    private func takeSquareRoots(count: Int, selection: UnsafePointer<Int32>?) {
        let (upper, lower) = (self.upper, self.lower)
        let chunk = 8192
        VocabParallel.forEach((count + chunk - 1) / chunk, workers: workers) { c in
            for r in (c * chunk)..<min(count, (c + 1) * chunk) {
                let i = selection.map { Int($0[r]) } ?? r
                upper[i] = upper[i].squareRoot()
                lower[i] = lower[i].squareRoot()
            }
        }
    }

    /// Groups points by centroid and sums each group in point order (Float64).
    /// Returns the number of empty clusters.
    private func accumulate() -> Int {
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
        var empty = 0
        for j in 0..<k where offsets[j + 1] == offsets[j] { empty += 1 }
        return empty
    }

    /// Each empty cluster takes, as a singleton, the point farthest from its current centroid
    /// among clusters that keep at least one point (largest distance first, lowest index on ties).
    private func reseedEmptyClusters() {
        var counts = (0..<k).map { offsets[$0 + 1] - offsets[$0] }
        // Exact squared distance of every point to its centroid (the bounds are only bounds).
        var distance = [Float](repeating: 0, count: n)
        let (points, dim, labels, centroids) = (self.points, self.dim, self.labels, self.centroids)
        distance.withUnsafeMutableBufferPointer { d in
            let out = d.baseAddress!
            let chunk = 8192
            VocabParallel.forEach((n + chunk - 1) / chunk, workers: workers) { c in
                for i in (c * chunk)..<min(n, (c + 1) * chunk) {
                    out[i] = squaredDistance(points + i * dim, centroids + Int(labels[i]) * dim, dim)
                }
            }
        }
        let order = (0..<n).sorted { distance[$0] != distance[$1] ? distance[$0] > distance[$1] : $0 < $1 }
        var next = 0
        for e in 0..<k where counts[e] == 0 {
            while counts[Int(labels[order[next]])] < 2 { next += 1 }
            let p = order[next]
            next += 1
            let from = Int(labels[p])
            let x = points + p * dim
            var squares = 0.0
            for c in 0..<dim {
                let v = Double(x[c])
                sums[from * dim + c] -= v
                sums[e * dim + c] = v
                squares += v * v
            }
            sumSquares[from] -= squares
            sumSquares[e] = squares
            counts[from] -= 1
            counts[e] = 1
            labels[p] = Int32(e)
            // Distance 0 to its new centroid; no lower bound known: searched next iteration.
            upper[p] = 0
            lower[p] = 0
        }
        // Keep `offsets` consistent with the counts (only the sizes are used from here on).
        offsets[0] = 0
        for j in 0..<k { offsets[j + 1] = offsets[j] + counts[j] }
    }

    /// centroid = sum / count; returns the inertia Σ_j (Σ‖x‖² − ‖Σx‖²/n_j).
    private func updateCentroids() -> Double {
        previous.update(from: centroids, count: k * dim)
        var inertia = 0.0
        for j in 0..<k {
            let count = offsets[j + 1] - offsets[j]
            guard count > 0 else { continue }   // cannot happen after re-seeding; keeps the old centroid
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

    /// drift[j] = ‖c_new − c_old‖; returns the largest, the second largest and the cluster of the largest.
    private func largestDrifts() -> (Float, Float, Int) {
        var first: Float = 0, second: Float = 0, which = -1
        for j in 0..<k {
            let d = squaredDistance(centroids + j * dim, previous + j * dim, dim).squareRoot()
            drift[j] = d
            if d > first { second = first; first = d; which = j } else if d > second { second = d }
        }
        return (first, second, which)
    }

    /// halfGap[j] = ½ min_{j'≠j} ‖c_j − c_j'‖, from one K×K sgemm (Hamerly's s(j)).
    private func computeHalfGaps() {
        rowSquaredNorms(centroids, rows: k, dim: dim, into: centroidNorms)
        let gram = UnsafeMutablePointer<Float>.allocate(capacity: k * k)   // [k, k] c_j · c_j'
        defer { gram.deallocate() }
        BLAS.sgemm(transB: true, m: k, n: k, k: dim, a: centroids, lda: dim, b: centroids, ldb: dim, c: gram, ldc: k)
        for j in 0..<k {
            var nearest = Float.infinity
            let row = gram + j * k
            for j2 in 0..<k where j2 != j {
                nearest = min(nearest, centroidNorms[j] + centroidNorms[j2] - 2 * row[j2])
            }
            halfGap[j] = 0.5 * max(0, nearest).squareRoot()
        }
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
        squares = squares.addingProduct(v, v)
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
