import Foundation
import Tensor

/// A fitted hierarchical k-means tree: the visual words of VideoBERT (Sun et al. 2019, §4.1:
/// hierarchical k-means with k = 12 and 4 levels gives 12^4 = 20,736 visual words).
///
/// Every node has `branching` (K) children and the tree has `depth` (D) levels. Nodes at depth
/// l + 1 are numbered 0..<K^(l+1) so that child c of node p is p·K + c; a leaf id is therefore
/// the path of child digits read as a base-K number (most significant first).
///
/// A vector's visual word is found by greedy descent: from the root, go to the nearest of the
/// current node's K children, D times (D·K distances instead of K^D).
///
/// On disk (a folder, written to a temporary name and renamed):
/// - `level{l}.npy`: float32 [K^(l+1), dim], the centroids of the nodes at depth l + 1;
///   `level{D-1}.npy` holds the leaf centroids.
/// - `vocab.json`: the shape, the normalisation applied to vectors before use, and how it was
///   fitted (see `Info`), with `format` and `format_version`.
public struct VisualVocabulary: Sendable, Equatable {
    /// What is done to a feature vector before it is clustered or assigned.
    public enum Normalization: String, Codable, Sendable, CaseIterable {
        /// Used as is.
        case none
        /// Scaled to unit L2 norm (zero vectors stay zero).
        case l2
    }

    /// How the vocabulary was fitted (stored in vocab.json).
    public struct Info: Codable, Sendable, Equatable {
        /// Σ over the `points` clips of the squared distance to their leaf centroid (after normalisation).
        public var inertia: Double
        public var seed: UInt64
        /// Lloyd iterations per node (at most).
        public var iterations: Int
        /// Clips assigned when the inertia was measured (every clip given).
        public var points: Int
        /// Clips the tree was fitted on (a seeded sample when fewer than `points`).
        public var fitPoints: Int
        /// Each node was fitted on at most this many of its clips.
        public var maxPointsPerNode: Int
        /// Leaves that received at least one of the `points` clips.
        public var usedLeaves: Int
        public var seconds: Double

        public init(inertia: Double = 0, seed: UInt64 = 0, iterations: Int = 0, points: Int = 0, fitPoints: Int = 0,
                    maxPointsPerNode: Int = 0, usedLeaves: Int = 0, seconds: Double = 0) {
            self.inertia = inertia; self.seed = seed; self.iterations = iterations; self.points = points
            self.fitPoints = fitPoints; self.maxPointsPerNode = maxPointsPerNode; self.usedLeaves = usedLeaves
            self.seconds = seconds
        }

        enum CodingKeys: String, CodingKey {
            case inertia, seed, points, seconds
            case iterations = "iters", fitPoints = "fit_points", maxPointsPerNode = "max_points_per_node", usedLeaves = "used_leaves"
        }
    }

    public static let format = "videobert-visual-vocabulary"
    public static let formatVersion = 1

    /// K: children per node.
    public let branching: Int
    /// D: levels.
    public let depth: Int
    /// Feature dimension.
    public let dim: Int
    public let normalization: Normalization
    /// levels[l]: [K^(l+1), dim] row-major centroids of the nodes at depth l + 1.
    public let levels: [[Float]]
    public var info: Info
    /// levelNorms[l][j] = ‖levels[l][j]‖².
    let levelNorms: [[Float]]

    /// K^D visual words.
    public var leaves: Int { levels.count == depth ? levels[depth - 1].count / dim : 0 }

    public init(branching: Int, depth: Int, dim: Int, normalization: Normalization = .none,
                levels: [[Float]], info: Info = Info()) throws {
        guard branching >= 2 else { throw VideoBertError("visual vocabulary branching must be ≥ 2 (got \(branching))") }
        guard depth >= 1 else { throw VideoBertError("visual vocabulary depth must be ≥ 1 (got \(depth))") }
        guard dim >= 1 else { throw VideoBertError("visual vocabulary dimension must be ≥ 1 (got \(dim))") }
        guard let leaves = Self.leafCount(branching: branching, depth: depth) else {
            throw VideoBertError("\(branching)^\(depth) visual words is too many (at most 2^31 − 1)")
        }
        _ = leaves
        guard levels.count == depth else {
            throw VideoBertError("visual vocabulary of depth \(depth) needs \(depth) levels, got \(levels.count)")
        }
        var width = 1
        for (l, level) in levels.enumerated() {
            width *= branching
            guard level.count == width * dim else {
                throw VideoBertError("level \(l) holds \(level.count) values, expected \(width) × \(dim)")
            }
        }
        self.branching = branching; self.depth = depth; self.dim = dim; self.normalization = normalization
        self.levels = levels; self.info = info
        self.levelNorms = levels.enumerated().map { l, level in
            var norms = [Float](repeating: 0, count: level.count / dim)
            level.withUnsafeBufferPointer { c in
                norms.withUnsafeMutableBufferPointer { rowSquaredNorms(c.baseAddress!, rows: $0.count, dim: dim, into: $0.baseAddress!) }
            }
            return norms
        }
    }

    /// K^D, or nil when it does not fit an Int32 id.
    public static func leafCount(branching: Int, depth: Int) -> Int? {
        var n = 1
        for _ in 0..<depth {
            let (p, overflow) = n.multipliedReportingOverflow(by: branching)
            if overflow || p > Int(Int32.max) { return nil }
            n = p
        }
        return n
    }

    public static func == (a: VisualVocabulary, b: VisualVocabulary) -> Bool {
        a.branching == b.branching && a.depth == b.depth && a.dim == b.dim && a.normalization == b.normalization
            && a.levels == b.levels && a.info == b.info
    }

    /// The centroid of leaf (visual word) `leaf`.
    public func leafCentroid(_ leaf: Int) -> ArraySlice<Float> {
        precondition(leaf >= 0 && leaf < leaves, "leaf \(leaf) out of 0..<\(leaves)")
        return levels[depth - 1][(leaf * dim)..<((leaf + 1) * dim)]
    }

    /// The centroid of node `node` at depth `level` + 1.
    public func centroid(level: Int, node: Int) -> ArraySlice<Float> {
        levels[level][(node * dim)..<((node + 1) * dim)]
    }

    /// The child digits (each 0..<K) from the root down to `leaf`.
    public func path(ofLeaf leaf: Int) -> [Int] {
        var digits = [Int](repeating: 0, count: depth)
        var rest = leaf
        for l in stride(from: depth - 1, through: 0, by: -1) {
            digits[l] = rest % branching
            rest /= branching
        }
        return digits
    }

    // MARK: Assignment

    /// Visual words of a batch of vectors, and each vector's squared distance to its leaf centroid.
    public struct Assignment: Sendable, Equatable {
        public var leaves: [Int32]
        public var squaredDistances: [Float]
        /// Σ squaredDistances (Float64, in row order).
        public var inertia: Double { squaredDistances.reduce(0.0) { $0 + Double($1) } }
    }

    /// Rows per assignment chunk (a unit of parallel work).
    static let chunkRows = 4096

    /// Visual words of `rows` vectors ([rows, dim] row-major), by greedy descent, batched: at each
    /// level the rows are grouped by their current node and each group is one sgemm against that
    /// node's K children. Chunks of rows run in parallel; the result is the same for any thread count.
    public func assign(_ points: UnsafeBufferPointer<Float>, rows: Int, workers: Int = VocabParallel.cores) -> Assignment {
        precondition(points.count >= rows * dim, "assign: \(points.count) floats for \(rows) × \(dim)")
        var leaves = [Int32](repeating: 0, count: rows)
        var distances = [Float](repeating: 0, count: rows)
        let chunks = (rows + Self.chunkRows - 1) / Self.chunkRows
        leaves.withUnsafeMutableBufferPointer { lp in
            distances.withUnsafeMutableBufferPointer { dp in
                let (leafOut, distanceOut) = (lp.baseAddress!, dp.baseAddress!)
                VocabParallel.run(items: chunks, workers: workers) { next in
                    let scratch = DescentScratch(rows: Self.chunkRows, dim: dim)
                    while let c = next() {
                        let start = c * Self.chunkRows
                        let count = min(Self.chunkRows, rows - start)
                        var x = points.baseAddress! + start * dim
                        if normalization == .l2 {
                            scratch.rows.update(from: x, count: count * dim)
                            normalizeRows(scratch.rows, rows: count, dim: dim)
                            x = UnsafePointer(scratch.rows)
                        }
                        (leafOut + start).update(repeating: 0, count: count)
                        descend(x, rows: count, levels: 0..<depth, nodes: leafOut + start,
                                distances: distanceOut + start, scratch: scratch)
                    }
                }
            }
        }
        return Assignment(leaves: leaves, squaredDistances: distances)
    }

    /// `assign` over an array.
    public func assign(_ points: [Float], rows: Int, workers: Int = VocabParallel.cores) -> Assignment {
        points.withUnsafeBufferPointer { assign($0, rows: rows, workers: workers) }
    }

    /// Visual words of every row of `source`, read in chunks (memory: one chunk per thread plus
    /// the results), with an optional progress bar.
    public func assign(_ source: FeatureRows, workers: Int = VocabParallel.cores,
                       progress: ProgressReporter? = nil) throws -> Assignment {
        guard source.dim == dim else {
            throw VideoBertError("features have dimension \(source.dim), the visual vocabulary \(dim)", file: source.name)
        }
        let rows = source.rows
        var leaves = [Int32](repeating: 0, count: rows)
        var distances = [Float](repeating: 0, count: rows)
        let chunkRows = Self.chunkRows
        let chunks = (rows + chunkRows - 1) / chunkRows
        let errors = ErrorSlots(count: chunks)
        leaves.withUnsafeMutableBufferPointer { lp in
            distances.withUnsafeMutableBufferPointer { dp in
                let (leafOut, distanceOut) = (lp.baseAddress!, dp.baseAddress!)
                VocabParallel.run(items: chunks, workers: workers) { next in
                    let scratch = DescentScratch(rows: chunkRows, dim: dim)
                    while let c = next() {
                        let start = c * chunkRows
                        let count = min(chunkRows, rows - start)
                        do {
                            try source.copyRows(start..<(start + count), into: scratch.rows)
                        } catch {
                            errors.set(c, error)
                            continue
                        }
                        if normalization == .l2 { normalizeRows(scratch.rows, rows: count, dim: dim) }
                        (leafOut + start).update(repeating: 0, count: count)
                        descend(scratch.rows, rows: count, levels: 0..<depth, nodes: leafOut + start,
                                distances: distanceOut + start, scratch: scratch)
                        progress?.advance(count)
                    }
                }
            }
        }
        try errors.throwFirst()
        return Assignment(leaves: leaves, squaredDistances: distances)
    }

    /// Moves `rows` vectors down the levels in `levels`: on entry nodes[i] is row i's node at
    /// depth levels.lowerBound (0 = the root), on exit its node at depth levels.upperBound;
    /// `distances[i]` gets the squared distance to that last node's centroid.
    func descend(_ x: UnsafePointer<Float>, rows: Int, levels range: Range<Int>,
                 nodes: UnsafeMutablePointer<Int32>, distances: UnsafeMutablePointer<Float>?,
                 scratch: DescentScratch) {
        if rows == 0 { return }
        rowSquaredNorms(x, rows: rows, dim: dim, into: scratch.norms)
        for l in range {
            levels[l].withUnsafeBufferPointer { centroids in
                levelNorms[l].withUnsafeBufferPointer { norms in
                    descendOneLevel(x, rows: rows, level: l, centroids: centroids.baseAddress!, norms: norms.baseAddress!,
                                    nodes: nodes, distances: l == range.upperBound - 1 ? distances : nil, scratch: scratch)
                }
            }
        }
    }

    /// One level of `descend`: groups the rows by node (sorting (node, row) keys), then one
    /// sgemm per group against that node's K children.
    private func descendOneLevel(_ x: UnsafePointer<Float>, rows: Int, level: Int,
                                 centroids: UnsafePointer<Float>, norms: UnsafePointer<Float>,
                                 nodes: UnsafeMutablePointer<Int32>, distances: UnsafeMutablePointer<Float>?,
                                 scratch: DescentScratch) {
        let k = branching
        let keys = scratch.keys
        for i in 0..<rows { keys[i] = UInt64(UInt32(nodes[i])) << 32 | UInt64(i) }
        var sortedKeys = UnsafeMutableBufferPointer(start: keys, count: rows)
        sortedKeys.sort()
        let order = scratch.order
        for i in 0..<rows { order[i] = Int32(truncatingIfNeeded: keys[i] & 0xFFFF_FFFF) }
        let child = scratch.child
        var start = 0
        while start < rows {
            let node = Int(keys[start] >> 32)
            var end = start + 1
            while end < rows && Int(keys[end] >> 32) == node { end += 1 }
            for r in start..<end { child[Int(order[r])] = -1 }
            _ = CentroidSearch(points: x, dim: dim, rows: end - start, indices: order + start, pointNorms: scratch.norms,
                               centroids: centroids + node * k * dim, centroidNorms: norms + node * k, k: k,
                               labels: child, best: distances).run(scratch: scratch.search)
            for r in start..<end {
                let i = Int(order[r])
                nodes[i] = Int32(node * k) + child[i]
            }
            start = end
        }
    }

    // MARK: Files

    struct FileContents: Codable {
        var format: String
        var formatVersion: Int
        var branching: Int
        var depth: Int
        var dim: Int
        var leaves: Int
        var normalization: Normalization
        var levels: [String]
        var inertia: Double
        var seed: UInt64
        var iterations: Int
        var points: Int
        var fitPoints: Int
        var maxPointsPerNode: Int
        var usedLeaves: Int
        var seconds: Double

        enum CodingKeys: String, CodingKey, CaseIterable {
            case format, branching, depth, dim, leaves, normalization, levels, inertia, seed, points, seconds
            case iterations = "iters", formatVersion = "format_version", fitPoints = "fit_points", maxPointsPerNode = "max_points_per_node"
            case usedLeaves = "used_leaves"
        }
    }

    static func levelFile(_ l: Int) -> String { "level\(l).npy" }

    /// Writes the folder `dir` atomically: everything goes to a temporary folder beside it, which
    /// is then renamed over `dir`. An existing folder is replaced only if it is a visual vocabulary.
    public func save(to dir: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) {
            let existing = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            let isVocab = existing.contains("vocab.json")
            if !isDir.boolValue || (!existing.isEmpty && !isVocab) {
                throw VideoBertError("exists and is not a visual vocabulary folder; choose another output", file: dir)
            }
        }
        try AtomicFile.createParent(of: dir)
        let tmp = AtomicFile.temporaryPath(for: dir)
        do {
            try AtomicFile.createDirectory(tmp)
            var names: [String] = []
            var width = 1
            for l in 0..<depth {
                width *= branching
                let name = Self.levelFile(l)
                try NPY.write(levels[l], shape: [width, dim], to: (tmp as NSString).appendingPathComponent(name))
                names.append(name)
            }
            let contents = FileContents(format: Self.format, formatVersion: Self.formatVersion, branching: branching, depth: depth,
                                        dim: dim, leaves: leaves, normalization: normalization, levels: names,
                                        inertia: info.inertia, seed: info.seed, iterations: info.iterations, points: info.points,
                                        fitPoints: info.fitPoints, maxPointsPerNode: info.maxPointsPerNode,
                                        usedLeaves: info.usedLeaves, seconds: info.seconds)
            try JSON.write(contents, to: (tmp as NSString).appendingPathComponent("vocab.json"))
            try AtomicFile.commit(temporary: tmp, to: dir)
        } catch {
            try? FileManager.default.removeItem(atPath: tmp)
            throw error
        }
    }

    /// Reads a folder written by `save`, checking every key, shape and value.
    public static func load(from dir: String) throws -> VisualVocabulary {
        let jsonPath = (dir as NSString).appendingPathComponent("vocab.json")
        guard FileManager.default.fileExists(atPath: jsonPath) else {
            throw VideoBertError(FileManager.default.fileExists(atPath: dir)
                                 ? "not a visual vocabulary folder (no vocab.json)" : "no such folder", file: dir)
        }
        // No key missing (the decoder checks) and none unknown (checked here).
        if let data = try InputFile.readIfExists(jsonPath),
           let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            let known = Set(FileContents.CodingKeys.allCases.map(\.stringValue))
            if let extra = object.keys.sorted().first(where: { !known.contains($0) }) {
                throw VideoBertError("unknown key '\(extra)'", file: jsonPath)
            }
        }
        let c = try JSON.decode(FileContents.self, from: jsonPath)
        guard c.format == format else { throw VideoBertError("format is '\(c.format)', expected '\(format)'", file: jsonPath) }
        guard c.formatVersion == formatVersion else {
            throw VideoBertError("format_version \(c.formatVersion) is not supported (this build reads \(formatVersion))", file: jsonPath)
        }
        guard c.levels.count == c.depth else {
            throw VideoBertError("depth \(c.depth) but \(c.levels.count) level files", file: jsonPath)
        }
        var levels: [[Float]] = []
        var width = 1
        for (l, name) in c.levels.enumerated() {
            width *= max(c.branching, 1)
            let path = (dir as NSString).appendingPathComponent(name)
            let array = try NPY.read(path)
            guard array.dtype == .float32, array.shape == [width, c.dim] else {
                throw VideoBertError("level \(l) must be float32 [\(width), \(c.dim)], found \(array.dtype.rawValue) \(array.shape)", file: path)
            }
            let values = try array.values(Float.self)
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw VideoBertError("centroid \(bad / c.dim) holds a NaN or infinite value", file: path)
            }
            levels.append(values)
        }
        let vocab: VisualVocabulary
        do {
            vocab = try VisualVocabulary(branching: c.branching, depth: c.depth, dim: c.dim, normalization: c.normalization, levels: levels,
                                         info: Info(inertia: c.inertia, seed: c.seed, iterations: c.iterations, points: c.points,
                                                    fitPoints: c.fitPoints, maxPointsPerNode: c.maxPointsPerNode,
                                                    usedLeaves: c.usedLeaves, seconds: c.seconds))
        } catch let e as VideoBertError {
            throw VideoBertError(e.message, file: jsonPath)
        }
        guard vocab.leaves == c.leaves else {
            throw VideoBertError("leaves is \(c.leaves), but \(c.branching)^\(c.depth) = \(vocab.leaves)", file: jsonPath)
        }
        return vocab
    }
}

/// Per-thread buffers for greedy descent over a chunk of rows.
final class DescentScratch {
    let rows: UnsafeMutablePointer<Float>     // [chunk, dim] rows read or normalised
    let norms: UnsafeMutablePointer<Float>    // [chunk] ‖x‖²
    let keys: UnsafeMutablePointer<UInt64>    // [chunk] node << 32 | row
    let order: UnsafeMutablePointer<Int32>    // [chunk] rows grouped by node
    let child: UnsafeMutablePointer<Int32>    // [chunk] chosen child
    let search = SearchScratch()

    init(rows: Int, dim: Int) {
        self.rows = .allocate(capacity: rows * dim)
        norms = .allocate(capacity: rows)
        keys = .allocate(capacity: rows)
        order = .allocate(capacity: rows)
        child = .allocate(capacity: rows)
    }

    deinit {
        rows.deallocate(); norms.deallocate(); keys.deallocate(); order.deallocate(); child.deallocate()
    }
}

/// Scales each row to unit L2 norm (zero rows stay zero).
func normalizeRows(_ x: UnsafeMutablePointer<Float>, rows: Int, dim: Int) {
    for r in 0..<rows {
        let row = x + r * dim
        let norm = squaredNorm(row, dim).squareRoot()
        if norm > 0 {
            let inv = 1 / norm
            for c in 0..<dim { row[c] *= inv }
        }
    }
}

/// The first error thrown by any of several parallel items (each item writes its own slot).
final class ErrorSlots: @unchecked Sendable {
    // @unchecked: each slot is written by one item only, and read after all items finished.
    private var slots: [Error?]
    private let lock = NSLock()
    init(count: Int) { slots = [Error?](repeating: nil, count: count) }
    func set(_ i: Int, _ error: Error) { lock.lock(); slots[i] = error; lock.unlock() }
    func throwFirst() throws {
        if let e = slots.lazy.compactMap({ $0 }).first { throw e }
    }
}
