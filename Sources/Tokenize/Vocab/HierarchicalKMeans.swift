import Foundation
import Tensor

/// Fits a `VisualVocabulary`: hierarchical k-means as in VideoBERT (Sun et al. 2019, §4.1, which
/// tokenizes S3D clip features with d = 4 levels of k = 12 clusters: 12^4 = 20,736 visual words).
///
/// Level by level: every node's points are clustered into `branching` children with `KMeans`
/// (greedy k-means++ seeding, Lloyd iterations), then every point moves to its nearest child.
///
/// A node with fewer rows than K cannot be split: that is an error naming the node, its size,
/// and what to change. To make it rare, a child that will be split again must hold at least
/// K^(levels below it) rows (its share of the node's sample, and at least 2 sampled rows):
/// smaller clusters — typically a few isolated rows that k-means would keep as a cluster of
/// their own forever — are re-seeded by splitting the largest cluster (`KMeans.minClusterSize`).
///
/// ```swift
/// let features = try NPYFeatureFiles(path: "features/")        // or InMemoryFeatureRows
/// let hkm = HierarchicalKMeans(branching: 12, depth: 4, iterations: 20, seed: 0)
/// let vocab = try hkm.fit(features)
/// try vocab.save(to: "vocab/")
/// let words = try vocab.assign(features).leaves                // visual word per clip
/// ```
///
/// Memory and sampling, for corpora larger than memory:
/// - the tree is fitted on at most `maxPoints` rows (a seeded sample, held in memory);
/// - each node is fitted on at most `maxPointsPerNode` of its rows (a seeded sample; default
///   256 per child, faiss's max_points_per_centroid), which bounds the cost of every node's fit;
/// - the inertia is then measured over every row of the source, read in chunks.
///
/// Determinism: each node's sample and k-means draw from their own RNG stream derived from
/// `seed` and the node's position, and all parallel work is ordered, so the same seed and data
/// give the same vocabulary bytes for any thread count.
public struct HierarchicalKMeans: Sendable {
    /// K: children per node (paper: 12).
    public var branching: Int
    /// D: levels (paper: 4); K^D visual words.
    public var depth: Int
    /// Lloyd iterations per node (at most).
    public var iterations: Int
    public var seed: UInt64
    /// Fit the tree on a seeded sample of at most this many rows; nil = every row.
    public var maxPoints: Int?
    /// Fit each node on a seeded sample of at most this many of its rows; nil = 256 × branching.
    public var maxPointsPerNode: Int?
    public var normalization: VisualVocabulary.Normalization = .none
    public var workers: Int = VocabParallel.cores
    /// Progress bars on stderr.
    public var showProgress = false
    /// Ranks sharing the fit (MPI). Every rank holds the same fit rows and fits every node's
    /// children on the node's sample itself (small: at most `maxPointsPerNode` rows, so identical
    /// and cheap on each rank); what grows with the corpus — moving every row to its nearest
    /// child at each level — is split: rank r takes rows i with i mod N = r, and the labels and
    /// distances are combined with an allreduce. The result is the same bytes as one process.
    public var communicator: Communicator = SingleProcess()

    public init(branching: Int = 12, depth: Int = 4, iterations: Int = 20, seed: UInt64 = 0,
                maxPoints: Int? = nil, maxPointsPerNode: Int? = nil) {
        self.branching = branching; self.depth = depth; self.iterations = iterations; self.seed = seed
        self.maxPoints = maxPoints; self.maxPointsPerNode = maxPointsPerNode
    }

    /// The per-node sample cap in effect.
    public var pointsPerNode: Int { maxPointsPerNode ?? 256 * branching }

    /// Fits on the rows of `source` (see the type's notes on sampling), then measures the inertia
    /// over all of them.
    public func fit(_ source: FeatureRows) throws -> VisualVocabulary {
        let started = Date()
        try check(rows: source.rows, dim: source.dim, name: source.name)
        let n = source.rows, dim = source.dim
        let fitCount = min(n, maxPoints ?? n)
        var fitRows: [Float]
        if let memory = source as? InMemoryFeatureRows, fitCount == n {
            fitRows = memory.values
        } else {
            fitRows = [Float](repeating: 0, count: fitCount * dim)
            try fitRows.withUnsafeMutableBufferPointer { out in
                if fitCount == n {
                    try source.copyRows(0..<n, into: out.baseAddress!)
                } else {
                    var rng = SeededRNG(seed: seed, stream: Self.sampleStream)
                    try source.copyRows(at: selectionSample(from: n, count: fitCount, rng: &rng), into: out.baseAddress!)
                }
            }
        }
        if normalization == .l2 {
            fitRows.withUnsafeMutableBufferPointer { normalizeRows($0.baseAddress!, rows: fitCount, dim: dim) }
        }
        let tree = try fitRows.withUnsafeBufferPointer {
            try fitTree($0.baseAddress!, rows: fitCount, dim: dim, totalRows: n, name: source.name)
        }
        var vocab = try VisualVocabulary(branching: branching, depth: depth, dim: dim, normalization: normalization,
                                         levels: tree.levels)
        // The inertia over every row: the fit's own last assignment when it saw every row.
        let assignment: VisualVocabulary.Assignment
        if fitCount == n {
            assignment = VisualVocabulary.Assignment(leaves: tree.leaves, squaredDistances: tree.squaredDistances)
        } else {
            let bar = showProgress ? ProgressReporter(label: "vocab: assigning", total: n, unit: "clips") : nil
            assignment = try vocab.assign(source, workers: workers, progress: bar)
            bar?.finish()
        }
        var used = [Bool](repeating: false, count: vocab.leaves)
        for leaf in assignment.leaves { used[Int(leaf)] = true }
        vocab.info = VisualVocabulary.Info(inertia: assignment.inertia, seed: seed, iterations: iterations, points: n,
                                           fitPoints: fitCount, maxPointsPerNode: pointsPerNode,
                                           usedLeaves: used.reduce(0) { $0 + ($1 ? 1 : 0) },
                                           seconds: Date().timeIntervalSince(started))
        return vocab
    }

    /// Fits on `rows` in-memory vectors ([rows, dim] row-major); no copy unless sampling or
    /// normalising. The inertia covers every row.
    public func fit(_ points: UnsafeBufferPointer<Float>, rows: Int, dim: Int) throws -> VisualVocabulary {
        guard points.count >= rows * dim else { throw VideoBertError("fit: \(points.count) floats for \(rows) × \(dim)") }
        if (maxPoints ?? rows) < rows || normalization != .none {
            return try fit(InMemoryFeatureRows(Array(points.prefix(rows * dim)), rows: rows, dim: dim))
        }
        let started = Date()
        try check(rows: rows, dim: dim, name: nil)
        let tree = try fitTree(points.baseAddress!, rows: rows, dim: dim, totalRows: rows, name: nil)
        var vocab = try VisualVocabulary(branching: branching, depth: depth, dim: dim, normalization: normalization, levels: tree.levels)
        var used = [Bool](repeating: false, count: vocab.leaves)
        for leaf in tree.leaves { used[Int(leaf)] = true }
        vocab.info = VisualVocabulary.Info(inertia: tree.squaredDistances.reduce(0.0) { $0 + Double($1) }, seed: seed,
                                           iterations: iterations, points: rows, fitPoints: rows, maxPointsPerNode: pointsPerNode,
                                           usedLeaves: used.reduce(0) { $0 + ($1 ? 1 : 0) },
                                           seconds: Date().timeIntervalSince(started))
        return vocab
    }

    /// `fit` over an array ([rows, dim] row-major).
    public func fit(_ points: [Float], rows: Int, dim: Int) throws -> VisualVocabulary {
        try points.withUnsafeBufferPointer { try fit($0, rows: rows, dim: dim) }
    }

    static let sampleStream: UInt64 = 0x5A4D_504C_4553   // the fit sample's RNG stream

    private func check(rows: Int, dim: Int, name: String?) throws {
        guard branching >= 2 else { throw VideoBertError("branching must be ≥ 2 (got \(branching))") }
        guard depth >= 1 else { throw VideoBertError("depth must be ≥ 1 (got \(depth))") }
        guard iterations >= 0 else { throw VideoBertError("iterations must be ≥ 0 (got \(iterations))") }
        guard pointsPerNode >= branching else {
            throw VideoBertError("at most \(pointsPerNode) points per node cannot make \(branching) children; raise the sample size to ≥ \(branching)")
        }
        guard let leaves = VisualVocabulary.leafCount(branching: branching, depth: depth) else {
            throw VideoBertError("\(branching)^\(depth) visual words is too many (at most 2^31 − 1); lower the branching or depth")
        }
        guard rows <= Int(Int32.max) else { throw VideoBertError("at most 2^31 − 1 clips per fit (got \(rows))", file: name) }
        let fitCount = min(rows, maxPoints ?? rows)
        guard fitCount >= leaves else {
            let limit = fitCount < rows ? " (the fit uses a sample of \(fitCount) of the \(rows))" : ""
            throw VideoBertError("\(branching)^\(depth) = \(leaves) visual words need at least \(leaves) clips to fit, got \(fitCount)\(limit); "
                                 + "lower the branching or depth, or give more clips", file: name)
        }
    }

    struct Tree {
        var levels: [[Float]]
        /// Leaf of each fitted row, and its squared distance to the leaf centroid.
        var leaves: [Int32]
        var squaredDistances: [Float]
    }

    /// The level-by-level fit over `n` rows in memory.
    private func fitTree(_ x: UnsafePointer<Float>, rows n: Int, dim: Int, totalRows: Int, name: String?) throws -> Tree {
        let k = branching
        // node[i]: row i's node at the current depth (index among that depth's nodes).
        var node = [Int32](repeating: 0, count: n)
        var distance = [Float](repeating: 0, count: n)
        var pointNorms = [Float](repeating: 0, count: n)
        pointNorms.withUnsafeMutableBufferPointer { rowSquaredNorms(x, rows: n, dim: dim, into: $0.baseAddress!, workers: workers) }
        var levels: [[Float]] = []
        var width = 1   // nodes at the current depth
        for level in 0..<depth {
            // Rows grouped by node: members[offsets[p] ..< offsets[p+1]], ascending.
            var offsets = [Int](repeating: 0, count: width + 1)
            for p in node { offsets[Int(p) + 1] += 1 }
            for p in 0..<width { offsets[p + 1] += offsets[p] }
            var members = [Int32](repeating: 0, count: n)
            var fill = Array(offsets.dropLast())
            for i in 0..<n {
                let p = Int(node[i])
                members[fill[p]] = Int32(i)
                fill[p] += 1
            }
            for p in 0..<width where offsets[p + 1] - offsets[p] < k {
                throw tooFewPoints(level: level, node: p, count: offsets[p + 1] - offsets[p], fitRows: n, totalRows: totalRows, name: name)
            }

            // Fit every node's K children: nodes in parallel, or one node with all threads.
            let bar = showProgress ? ProgressReporter(label: "vocab: level \(level + 1)/\(depth)", total: width, unit: "nodes") : nil
            var centroids = [Float](repeating: 0, count: width * k * dim)
            let parallelNodes = width >= 2 && workers >= 2
            let errors = ErrorSlots(count: width)
            let (iterations, seed, perNode, workers) = (self.iterations, self.seed, self.pointsPerNode, self.workers)
            let firstGlobalID = (width - 1) / (k - 1)   // nodes above this depth: 1 + K + … + K^(level−1)
            let below = depth - level - 1                // splits still to come under each child
            let subtree = VisualVocabulary.leafCount(branching: k, depth: below) ?? Int(Int32.max)
            centroids.withUnsafeMutableBufferPointer { cp in
                members.withUnsafeBufferPointer { mp in
                    let out = cp.baseAddress!
                    let fitNode = { (p: Int, threads: Int) in
                        do {
                            let nodeSeed = SeededRNG(seed: seed, stream: UInt64(firstGlobalID + p)).state.0
                            let all = Array(mp[offsets[p]..<offsets[p + 1]])
                            var picked = all.map(Int.init)
                            if all.count > perNode {
                                var rng = SeededRNG(seed: nodeSeed, stream: 3)
                                picked = selectionSample(from: all.count, count: perNode, rng: &rng).map { Int(all[$0]) }
                            }
                            let sample = gatherRows(x, dim: dim, indices: picked)
                            var km = KMeans(clusters: k, iterations: iterations, seed: nodeSeed)
                            km.workers = threads
                            // Every child will be split `below` more times, so it needs at least
                            // K^below of the node's rows: in sample terms, that share of the
                            // sample, and never a lone sampled row (an isolated row in the
                            // sample is usually isolated in the data too).
                            if below > 0 {
                                let need = Double(subtree) * Double(picked.count) / Double(all.count)
                                km.minClusterSize = min(picked.count / k, max(2, Int(need.rounded(.up))))
                            }
                            let model = try km.fit(sample, rows: picked.count, dim: dim)
                            (out + p * k * dim).update(from: model.centroids, count: k * dim)
                        } catch {
                            errors.set(p, error)
                        }
                        bar?.advance()
                    }
                    if parallelNodes {
                        VocabParallel.forEach(width, workers: workers) { p in fitNode(p, 1) }
                    } else {
                        for p in 0..<width { fitNode(p, workers) }
                    }
                }
            }
            bar?.finish()
            try errors.throwFirst()

            // Every row moves to its nearest child.
            var norms = [Float](repeating: 0, count: width * k)
            centroids.withUnsafeBufferPointer { c in
                norms.withUnsafeMutableBufferPointer { rowSquaredNorms(c.baseAddress!, rows: width * k, dim: dim, into: $0.baseAddress!) }
            }
            var child = [Int32](repeating: 0, count: n)
            let lastLevel = level == depth - 1
            // This rank's rows of each node (all of them in one process).
            let (rank, ranks) = (communicator.rank, communicator.size)
            if ranks > 1 {
                var mine = [Int32](), mineOffsets = [0]
                mine.reserveCapacity(n / ranks + width)
                for p in 0..<width {
                    for j in offsets[p]..<offsets[p + 1] where Int(members[j]) % ranks == rank { mine.append(members[j]) }
                    mineOffsets.append(mine.count)
                }
                members = mine
                offsets = mineOffsets
                if lastLevel { for i in 0..<n { distance[i] = 0 } }
            }
            centroids.withUnsafeBufferPointer { cp in
                norms.withUnsafeBufferPointer { np in
                    members.withUnsafeBufferPointer { mp in
                        pointNorms.withUnsafeBufferPointer { pn in
                            child.withUnsafeMutableBufferPointer { chp in
                                distance.withUnsafeMutableBufferPointer { dp in
                                    let (childOut, distanceOut) = (chp.baseAddress!, dp.baseAddress!)
                                    let search = { (p: Int) -> CentroidSearch in
                                        CentroidSearch(points: x, dim: dim, rows: offsets[p + 1] - offsets[p],
                                                       indices: mp.baseAddress! + offsets[p], pointNorms: pn.baseAddress!,
                                                       centroids: cp.baseAddress! + p * k * dim, centroidNorms: np.baseAddress! + p * k, k: k,
                                                       labels: childOut, best: lastLevel ? distanceOut : nil)
                                    }
                                    if parallelNodes {
                                        VocabParallel.run(items: width, workers: workers) { next in
                                            let scratch = SearchScratch()
                                            while let p = next() { _ = search(p).run(scratch: scratch) }
                                        }
                                    } else {
                                        for p in 0..<width { _ = search(p).run(workers: workers) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            if ranks > 1 {
                // Each row was labelled by exactly one rank; the others hold 0 for it.
                var combined = child.map { Double($0) }
                communicator.allreduceSum(&combined)
                for i in 0..<n { child[i] = Int32(combined[i]) }
                if lastLevel {
                    var d = distance.map { Double($0) }
                    communicator.allreduceSum(&d)
                    for i in 0..<n { distance[i] = Float(d[i]) }
                }
            }
            for i in 0..<n { node[i] = node[i] * Int32(k) + child[i] }
            levels.append(centroids)
            width *= k
        }
        return Tree(levels: levels, leaves: node, squaredDistances: distance)
    }

    /// The error for a node with fewer rows than children, naming it and what to change.
    private func tooFewPoints(level: Int, node: Int, count: Int, fitRows: Int, totalRows: Int, name: String?) -> VideoBertError {
        var digits: [Int] = []
        var rest = node
        for _ in 0..<level { digits.insert(rest % branching, at: 0); rest /= branching }
        let where_ = level == 0 ? "the root" : "node \(digits.map(String.init).joined(separator: ".")) (level \(level) of \(depth))"
        let sample = fitRows < totalRows ? " (a sample of \(fitRows) of \(totalRows) clips; raise the sample size)" : ""
        return VideoBertError("visual vocabulary: \(where_) holds \(count) clips, fewer than the branching factor \(branching), "
                              + "so it cannot be split; lower the branching or depth (now \(branching)^\(depth) = "
                              + "\(VisualVocabulary.leafCount(branching: branching, depth: depth) ?? 0) words), or give more clips than the \(fitRows) used\(sample)",
                              file: name)
    }
}
