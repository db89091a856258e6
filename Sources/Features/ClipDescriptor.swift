import Foundation

/// The built-in clip feature: a fixed 128-dimensional descriptor of a clip's sampled RGB frames
/// that captures appearance (colour layout, colour distribution, edges/texture) and motion
/// (where things change and in which direction). It needs no model weights, is deterministic
/// (the same frames give the same bytes) and works at any frame size (cells scale with it).
///
/// Layout (all computed on BT.601 full-range Y/Cb/Cr in [0, 1]):
///
/// | dims   | block               | what                                                                  |
/// |--------|---------------------|-----------------------------------------------------------------------|
/// | 0–47   | colour layout       | mean Y, Cb, Cr of each cell of a 4×4 grid, over all frames            |
/// | 48–71  | colour distribution | hue histogram (12 bins, weighted by saturation·value), saturation (6), value (6) |
/// | 72–103 | texture             | gradient-orientation histograms (8 unsigned bins, soft-binned, magnitude-weighted) in a 2×2 grid, over all frames |
/// | 104–119| motion energy       | mean |Y(t) − Y(t−1)| of each cell of a 4×4 grid                       |
/// | 120–127| motion direction    | histogram (8 bins over 360°) of normal-flow directions, −∂ₜY·∇Y/‖∇Y‖², weighted by |∂ₜY|·‖∇Y‖ |
///
/// Each block is scaled to unit L2 norm (an all-zero block, e.g. the motion of a still clip, stays
/// zero) and weighted by 1/√5, so every block counts equally in Euclidean distance (which is what
/// k-means uses) and the whole vector has norm ≤ 1. A single frame gives zero motion blocks.
public final class ClipDescriptor {
    public static let dimension = 128
    static let blocks: [(offset: Int, count: Int)] = [(0, 48), (48, 24), (72, 32), (104, 16), (120, 8)]

    private var y: [Float] = [], cb: [Float] = [], cr: [Float] = [], prevY: [Float] = []
    private var gx: [Float] = [], gy: [Float] = []

    public init() {}

    /// - Parameters:
    ///   - frames: `count` RGB24 frames, [count, height, width, 3] row-major.
    ///   - out: 128 floats.
    public func compute(frames: UnsafeBufferPointer<UInt8>, count: Int, height: Int, width: Int,
                        out: UnsafeMutableBufferPointer<Float>) {
        precondition(out.count >= Self.dimension)
        precondition(frames.count >= count * height * width * 3)
        precondition(width >= 4 && height >= 4, "frames must be at least 4×4")
        let hw = height * width
        if y.count != hw {
            y = .init(repeating: 0, count: hw); cb = y; cr = y; prevY = y; gx = y; gy = y
        }
        var desc = [Double](repeating: 0, count: Self.dimension)
        let cellsY = 4, cellsX = 4
        // Cell index of each row/column (4×4 and 2×2 grids).
        let rowCell4 = (0..<height).map { min($0 * cellsY / height, cellsY - 1) }
        let colCell4 = (0..<width).map { min($0 * cellsX / width, cellsX - 1) }
        var cellPixels4 = [Double](repeating: 0, count: 16)
        for r in 0..<height { for c in 0..<width { cellPixels4[rowCell4[r] * 4 + colCell4[c]] += 1 } }

        var motionPairs = 0
        y.withUnsafeMutableBufferPointer { Y in
        cb.withUnsafeMutableBufferPointer { CB in
        cr.withUnsafeMutableBufferPointer { CR in
        prevY.withUnsafeMutableBufferPointer { P in
        gx.withUnsafeMutableBufferPointer { GX in
        gy.withUnsafeMutableBufferPointer { GY in
            for f in 0..<max(count, 0) {
                let base = f * hw * 3
                // 1. Colour conversion; colour layout and colour distribution.
                for i in 0..<hw {
                    let r = Float(frames[base + 3 * i]) * (1 / 255)
                    let g = Float(frames[base + 3 * i + 1]) * (1 / 255)
                    let b = Float(frames[base + 3 * i + 2]) * (1 / 255)
                    Y[i] = 0.299 * r + 0.587 * g + 0.114 * b
                    CB[i] = 0.5 - 0.168736 * r - 0.331264 * g + 0.5 * b
                    CR[i] = 0.5 + 0.5 * r - 0.418688 * g - 0.081312 * b
                    // HSV
                    let mx = max(r, max(g, b)), mn = min(r, min(g, b))
                    let v = mx, d = mx - mn
                    let s: Float = mx > 0 ? d / mx : 0
                    if d > 1e-6 {
                        var h: Float
                        if mx == r { h = (g - b) / d } else if mx == g { h = 2 + (b - r) / d } else { h = 4 + (r - g) / d }
                        if h < 0 { h += 6 }
                        let bin = min(Int(h * 2), 11)  // 12 bins over [0, 6)
                        desc[48 + bin] += Double(s * v)
                    }
                    desc[60 + min(Int(s * 6), 5)] += 1
                    desc[66 + min(Int(v * 6), 5)] += 1
                }
                for r in 0..<height {
                    let rc = rowCell4[r] * 4
                    for c in 0..<width {
                        let i = r * width + c
                        let cell = (rc + colCell4[c]) * 3
                        desc[cell] += Double(Y[i]); desc[cell + 1] += Double(CB[i]); desc[cell + 2] += Double(CR[i])
                    }
                }
                // 2. Gradients (central differences, replicated border); texture histograms.
                for r in 0..<height {
                    let up = max(r - 1, 0) * width, down = min(r + 1, height - 1) * width, row = r * width
                    for c in 0..<width {
                        let left = max(c - 1, 0), right = min(c + 1, width - 1)
                        let dx = 0.5 * (Y[row + right] - Y[row + left])
                        let dy = 0.5 * (Y[down + c] - Y[up + c])
                        GX[row + c] = dx; GY[row + c] = dy
                        let mag = (dx * dx + dy * dy).squareRoot()
                        if mag < 1e-6 { continue }
                        var angle = atan2f(dy, dx)            // (−π, π]
                        if angle < 0 { angle += .pi }          // unsigned orientation [0, π)
                        let pos = angle / .pi * 8 - 0.5         // bin centres at (k + 0.5)·π/8
                        let lo = Int((pos + 8).rounded(.down)) - 8
                        let frac = pos - Float(lo)
                        let b0 = (lo + 8) % 8, b1 = (lo + 9) % 8
                        let cell = (r * 2 / height) * 2 + (c * 2 / width)
                        desc[72 + cell * 8 + b0] += Double(mag * (1 - frac))
                        desc[72 + cell * 8 + b1] += Double(mag * frac)
                    }
                }
                // 3. Motion against the previous frame.
                if f > 0 {
                    motionPairs += 1
                    for r in 0..<height {
                        let rc = rowCell4[r] * 4
                        for c in 0..<width {
                            let i = r * width + c
                            let dt = Y[i] - P[i]
                            desc[104 + rc + colCell4[c]] += Double(abs(dt))
                            let g2 = GX[i] * GX[i] + GY[i] * GY[i]
                            if g2 < 1e-4 || abs(dt) < 1e-3 { continue }
                            // Normal flow v = −∂ₜY ∇Y / ‖∇Y‖²: direction of ∇Y, flipped by the sign of ∂ₜY.
                            let vx = -dt * GX[i], vy = -dt * GY[i]
                            var angle = atan2f(vy, vx)
                            if angle < 0 { angle += 2 * .pi }
                            let bin = min(Int(angle / (2 * .pi) * 8), 7)
                            desc[120 + bin] += Double(abs(dt) * g2.squareRoot())
                        }
                    }
                }
                // Keep this frame's luma for the next pair.
                P.baseAddress!.update(from: Y.baseAddress!, count: hw)
            }
        }}}}}}
        // Averages.
        let frames = Double(max(count, 1))
        for cell in 0..<16 {
            for k in 0..<3 { desc[cell * 3 + k] /= cellPixels4[cell] * frames }
        }
        if motionPairs > 0 {
            for cell in 0..<16 { desc[104 + cell] /= cellPixels4[cell] * Double(motionPairs) }
        }
        // Block normalisation.
        let weight = 1 / Double(Self.blocks.count).squareRoot()
        for (offset, n) in Self.blocks {
            var norm = 0.0
            for k in offset..<offset + n { norm += desc[k] * desc[k] }
            norm = norm.squareRoot()
            let scale = norm > 1e-12 ? weight / norm : 0
            for k in offset..<offset + n { out[k] = Float(desc[k] * scale) }
        }
    }

    /// Convenience: descriptor of frames held in an array.
    public func compute(frames: [UInt8], count: Int, height: Int, width: Int) -> [Float] {
        var out = [Float](repeating: 0, count: Self.dimension)
        frames.withUnsafeBufferPointer { f in
            out.withUnsafeMutableBufferPointer { o in compute(frames: f, count: count, height: height, width: width, out: o) }
        }
        return out
    }
}
