import Foundation
import Tensor

// Nearest-centroid search, the inner loop of k-means and of visual-word assignment.
//
// Squared L2 distances are expanded as ‖x − c‖² = ‖x‖² − 2·x·c + ‖c‖² (as faiss's
// exhaustive_L2sqr_blas does): the x·c terms for a block of rows against all centroids are one
// sgemm, and the arg-min runs over that block while it is still in cache. Blocks have a fixed
// number of rows chosen from K alone (so ≈1 MB of scores per block, the size of one core's
// L2), every block's sgemm runs on one OpenBLAS thread, and blocks are spread over the workers;
// a row's result therefore never depends on the number of threads.

/// Rows per sgemm block when searching `k` centroids: about 2^18 scores (1 MB) per block.
@inline(__always)
func searchBlockRows(centroids k: Int) -> Int {
    min(1024, max(16, (1 << 18) / max(k, 1)))
}

/// Σ x[i]² for i in 0..<n.
@inline(__always)
func squaredNorm(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
    var i = 0
    while i + 16 <= n {
        let a = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
        let b = UnsafeRawPointer(x + i + 8).loadUnaligned(as: SIMD8<Float>.self)
        acc0 += a * a
        acc1 += b * b
        i += 16
    }
    while i + 8 <= n {
        let a = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
        acc0 += a * a
        i += 8
    }
    var s = (acc0 + acc1).sum()
    while i < n { s += x[i] * x[i]; i += 1 }
    return s
}

/// Σ (x[i] − y[i])² for i in 0..<n, computed directly (no cancellation).
@inline(__always)
func squaredDistance(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
    var i = 0
    while i + 16 <= n {
        let a = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            - UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self)
        let b = UnsafeRawPointer(x + i + 8).loadUnaligned(as: SIMD8<Float>.self)
            - UnsafeRawPointer(y + i + 8).loadUnaligned(as: SIMD8<Float>.self)
        acc0 += a * a
        acc1 += b * b
        i += 16
    }
    while i + 8 <= n {
        let a = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            - UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self)
        acc0 += a * a
        i += 8
    }
    var s = (acc0 + acc1).sum()
    while i < n { let d = x[i] - y[i]; s += d * d; i += 1 }
    return s
}

/// The smallest and second smallest of scores[j] + norms[j] over j in 0..<k, and the index of
/// the smallest (the lowest index among equal values). `second` is +∞ when k == 1.
///
/// Written for 8 lanes (two SSE registers per vector): the default x86-64 target has no AVX, and
/// wider vectors spill to the stack.
@inline(__always)
func minTwo(_ scores: UnsafePointer<Float>, _ norms: UnsafePointer<Float>, _ k: Int)
    -> (index: Int32, best: Float, second: Float) {
    var j = 0
    var bestIndex: Int32 = 0
    var best = Float.infinity
    var second = Float.infinity
    if k >= 8 {
        // Each of 8 lanes keeps its smallest value, that value's index, and its second smallest.
        var m1 = SIMD8<Float>(repeating: .infinity)
        var m2 = SIMD8<Float>(repeating: .infinity)
        var idx = SIMD8<Int32>(repeating: 0)
        var lane = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
        let step = SIMD8<Int32>(repeating: 8)
        while j + 8 <= k {
            let v = UnsafeRawPointer(scores + j).loadUnaligned(as: SIMD8<Float>.self)
                + UnsafeRawPointer(norms + j).loadUnaligned(as: SIMD8<Float>.self)
            // (pointwiseMin/Max are IEEE minimum/maximum, scalarised; a compare and a blend are not.)
            let smaller = v .< m1
            let larger = m1.replacing(with: v, where: .!smaller)      // max(m1, v)
            m2 = m2.replacing(with: larger, where: larger .< m2)      // min(m2, max(m1, v))
            m1 = m1.replacing(with: v, where: smaller)                // min(m1, v)
            idx.replace(with: lane, where: smaller)
            lane &+= step
            j += 8
        }
        // Across lanes: the smallest value, lowest index on ties.
        for l in 0..<8 where m1[l] < best || (m1[l] == best && idx[l] < bestIndex) {
            best = m1[l]; bestIndex = idx[l]
        }
        second = m2.min()
        for l in 0..<8 where idx[l] != bestIndex || m1[l] != best {
            second = Swift.min(second, m1[l])
        }
    }
    while j < k {
        let v = scores[j] + norms[j]
        if v < best {
            second = best; best = v; bestIndex = Int32(j)
        } else if v < second {
            second = v
        }
        j += 1
    }
    return (bestIndex, best, second)
}

/// Per-thread buffers for `CentroidSearch` (grown on demand, reused across calls).
final class SearchScratch {
    private(set) var scores: UnsafeMutablePointer<Float>      // [blockRows, k]
    private(set) var gathered: UnsafeMutablePointer<Float>    // [blockRows, dim]
    private var scoresCapacity = 0, gatheredCapacity = 0

    init() {
        scores = .allocate(capacity: 1)
        gathered = .allocate(capacity: 1)
    }

    func reserve(scores s: Int, gathered g: Int) {
        if s > scoresCapacity { scores.deallocate(); scores = .allocate(capacity: s); scoresCapacity = s }
        if g > gatheredCapacity { gathered.deallocate(); gathered = .allocate(capacity: g); gatheredCapacity = g }
    }

    deinit { scores.deallocate(); gathered.deallocate() }
}

/// One nearest-centroid search: for each selected row of `points` ([*, dim] row-major), its
/// nearest of the `k` centroids.
///
/// - `rows`: how many rows are selected; `indices` (ascending, `rows` of them) lists them, or nil
///   for rows 0..<rows. Outputs are written at the row's own index (`indices[i]`, or `i`).
/// - `pointNorms`: ‖x‖² per row (indexed like the outputs), or nil to compute them here.
/// - `labels`: in: the previous label (or −1); out: the nearest centroid.
/// - `best` / `second`: squared distances to the nearest and second nearest centroid (≥ 0).
struct CentroidSearch {
    var points: UnsafePointer<Float>
    var dim: Int
    var rows: Int
    var indices: UnsafePointer<Int32>? = nil
    var pointNorms: UnsafePointer<Float>? = nil
    var centroids: UnsafePointer<Float>
    var centroidNorms: UnsafePointer<Float>
    var k: Int
    var labels: UnsafeMutablePointer<Int32>
    var best: UnsafeMutablePointer<Float>? = nil
    var second: UnsafeMutablePointer<Float>? = nil

    var blockRows: Int { searchBlockRows(centroids: k) }
    var blocks: Int { (rows + blockRows - 1) / blockRows }

    /// Searches every block on up to `workers` threads; returns how many labels changed.
    func run(workers: Int) -> Int {
        if rows == 0 { return 0 }
        let blocks = self.blocks
        let changedPerBlock = UnsafeMutableBufferPointer<Int>.allocate(capacity: blocks)
        defer { changedPerBlock.deallocate() }
        VocabParallel.run(items: blocks, workers: workers) { next in
            let scratch = SearchScratch()
            while let b = next() { changedPerBlock[b] = searchBlock(b, scratch: scratch) }
        }
        return changedPerBlock.reduce(0, +)
    }

    /// Searches every block on this thread; returns how many labels changed.
    func run(scratch: SearchScratch) -> Int {
        var changed = 0
        for b in 0..<blocks { changed += searchBlock(b, scratch: scratch) }
        return changed
    }

    /// Block `b`: rows b·blockRows ..< min(rows, (b+1)·blockRows) of the selection.
    func searchBlock(_ b: Int, scratch: SearchScratch) -> Int {
        let blockRows = self.blockRows
        scratch.reserve(scores: blockRows * k, gathered: indices == nil ? 0 : blockRows * dim)
        let scores = scratch.scores
        let start = b * blockRows
        let m = min(blockRows, rows - start)
        // The block's rows, contiguous: in place, or copied when the selection has gaps.
        let a: UnsafePointer<Float>
        if let indices {
            let first = Int(indices[start])
            if Int(indices[start + m - 1]) - first == m - 1 {
                a = points + first * dim
            } else {
                let gathered = scratch.gathered
                for r in 0..<m {
                    (gathered + r * dim).update(from: points + Int(indices[start + r]) * dim, count: dim)
                }
                a = UnsafePointer(gathered)
            }
        } else {
            a = points + start * dim
        }
        // scores[r, j] = −2 · x_r · c_j
        BLAS.sgemm(transB: true, m: m, n: k, k: dim, alpha: -2, a: a, lda: dim,
                   b: centroids, ldb: dim, beta: 0, c: scores, ldc: k)
        var changed = 0
        for r in 0..<m {
            let row = indices.map { Int($0[start + r]) } ?? (start + r)
            let (j, v1, v2) = minTwo(scores + r * k, centroidNorms, k)
            let xn = pointNorms?[row] ?? squaredNorm(a + r * dim, dim)
            if labels[row] != j { changed += 1 }
            labels[row] = j
            best?[row] = max(0, xn + v1)
            second?[row] = max(0, xn + v2)
        }
        return changed
    }
}

/// `CentroidSearch(...).run(workers:)`: see there.
@discardableResult
func nearestCentroids(points: UnsafePointer<Float>, dim: Int, rows: Int, indices: UnsafePointer<Int32>?,
                      pointNorms: UnsafePointer<Float>?,
                      centroids: UnsafePointer<Float>, centroidNorms: UnsafePointer<Float>, k: Int,
                      labels: UnsafeMutablePointer<Int32>,
                      best: UnsafeMutablePointer<Float>?, second: UnsafeMutablePointer<Float>?,
                      workers: Int) -> Int {
    CentroidSearch(points: points, dim: dim, rows: rows, indices: indices, pointNorms: pointNorms,
                   centroids: centroids, centroidNorms: centroidNorms, k: k,
                   labels: labels, best: best, second: second).run(workers: workers)
}

/// ‖c_j‖² for each of `k` rows.
func rowSquaredNorms(_ x: UnsafePointer<Float>, rows: Int, dim: Int, into out: UnsafeMutablePointer<Float>, workers: Int = 1) {
    let chunk = 4096
    VocabParallel.forEach((rows + chunk - 1) / chunk, workers: workers) { c in
        for i in (c * chunk)..<min(rows, (c + 1) * chunk) { out[i] = squaredNorm(x + i * dim, dim) }
    }
}
