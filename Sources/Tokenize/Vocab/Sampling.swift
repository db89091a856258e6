import Tensor

/// `m` distinct indices out of 0..<n, uniformly at random and in increasing order (Knuth, TAOCP
/// vol. 2, §3.4.2, Algorithm S: selection sampling). One pass, no extra memory, and sorted output,
/// so gathering the sample reads the data front to back.
func selectionSample(from n: Int, count m: Int, rng: inout SeededRNG) -> [Int] {
    precondition(m >= 0 && m <= n)
    if m == n { return Array(0..<n) }
    var out: [Int] = []
    out.reserveCapacity(m)
    var i = 0
    while out.count < m {
        // Keep i with probability (still needed) / (still available).
        if rng.nextDouble() * Double(n - i) < Double(m - out.count) { out.append(i) }
        i += 1
    }
    return out
}

/// Copies rows `indices` of `points` ([*, dim]) into a new [indices.count, dim] buffer.
func gatherRows(_ points: UnsafePointer<Float>, dim: Int, indices: [Int]) -> [Float] {
    [Float](unsafeUninitializedCapacity: indices.count * dim) { buf, count in
        for (r, i) in indices.enumerated() {
            (buf.baseAddress! + r * dim).initialize(from: points + i * dim, count: dim)
        }
        count = indices.count * dim
    }
}
