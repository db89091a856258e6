import XCTest
@testable import Features

final class ClipDescriptorTests: XCTestCase {
    /// Frames of a bright vertical bar on a dark background moving `step` pixels per frame.
    func movingBar(frames: Int, h: Int = 32, w: Int = 32, step: Int, color: (UInt8, UInt8, UInt8) = (255, 255, 255)) -> [UInt8] {
        var out = [UInt8](repeating: 20, count: frames * h * w * 3)
        for f in 0..<frames {
            let x0 = 8 + f * step
            for r in 0..<h {
                for c in max(x0, 0)..<min(x0 + 4, w) {
                    let i = ((f * h + r) * w + c) * 3
                    out[i] = color.0; out[i + 1] = color.1; out[i + 2] = color.2
                }
            }
        }
        return out
    }

    func block(_ d: [Float], _ b: Int) -> ArraySlice<Float> {
        let (o, n) = ClipDescriptor.blocks[b]
        return d[o..<o + n]
    }

    func testDimensionDeterminismAndNorm() {
        let d = ClipDescriptor()
        let frames = movingBar(frames: 6, step: 2)
        let a = d.compute(frames: frames, count: 6, height: 32, width: 32)
        let b = ClipDescriptor().compute(frames: frames, count: 6, height: 32, width: 32)
        XCTAssertEqual(a.count, ClipDescriptor.dimension)
        XCTAssertEqual(a, b)
        let norm = a.reduce(0) { $0 + $1 * $1 }.squareRoot()
        XCTAssertEqual(norm, 1, accuracy: 1e-4, "five non-zero blocks of norm 1/√5")
        XCTAssertTrue(a.allSatisfy { $0.isFinite && $0 >= 0 })
    }

    func testStillClipHasNoMotionAndMovingClipDoes() {
        let d = ClipDescriptor()
        let still = d.compute(frames: movingBar(frames: 5, step: 0), count: 5, height: 32, width: 32)
        XCTAssertTrue(block(still, 3).allSatisfy { $0 == 0 })
        XCTAssertTrue(block(still, 4).allSatisfy { $0 == 0 })
        let moving = d.compute(frames: movingBar(frames: 5, step: 2), count: 5, height: 32, width: 32)
        XCTAssertGreaterThan(block(moving, 3).max()!, 0)
    }

    func testMotionDirectionSeparatesLeftFromRight() {
        let d = ClipDescriptor()
        let right = Array(block(d.compute(frames: movingBar(frames: 5, step: 2), count: 5, height: 32, width: 32), 4))
        let left = Array(block(d.compute(frames: movingBar(frames: 5, step: -2), count: 5, height: 32, width: 32), 4))
        // Bins of 45° starting at 0 (pointing right, +x): rightward motion puts its mass in bins 0 and 7,
        // leftward motion in bins 3 and 4.
        XCTAssertGreaterThan(right[0] + right[7], 2 * (right[3] + right[4]), "\(right)")
        XCTAssertGreaterThan(left[3] + left[4], 2 * (left[0] + left[7]), "\(left)")
    }

    func testColourChangesAppearanceBlocks() {
        let d = ClipDescriptor()
        let white = d.compute(frames: movingBar(frames: 3, step: 0, color: (255, 255, 255)), count: 3, height: 32, width: 32)
        let red = d.compute(frames: movingBar(frames: 3, step: 0, color: (255, 0, 0)), count: 3, height: 32, width: 32)
        let dist = zip(white, red).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        XCTAssertGreaterThan(dist, 0.01)
        // Same shape: texture nearly the same.
        let tex = zip(block(white, 2), block(red, 2)).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        XCTAssertLessThan(tex, 0.01)
    }
}

final class FrameResizeTests: XCTestCase {
    func testAreaAverage() {
        // 4×2 image: left half 0, right half 200 → 2×1: [0, 200]; 3×1: middle pixel mixes.
        var src = [UInt8](repeating: 0, count: 4 * 2 * 3)
        for r in 0..<2 { for c in 2..<4 { for k in 0..<3 { src[(r * 4 + c) * 3 + k] = 200 } } }
        var dst = [UInt8](repeating: 0, count: 2 * 1 * 3)
        src.withUnsafeBufferPointer { s in dst.withUnsafeMutableBufferPointer { d in
            FrameResize.area(src: s, srcWidth: 4, srcHeight: 2, dst: d, dstWidth: 2, dstHeight: 1) } }
        XCTAssertEqual(dst, [0, 0, 0, 200, 200, 200])
        var dst3 = [UInt8](repeating: 0, count: 3 * 3)
        src.withUnsafeBufferPointer { s in dst3.withUnsafeMutableBufferPointer { d in
            FrameResize.area(src: s, srcWidth: 4, srcHeight: 2, dst: d, dstWidth: 3, dstHeight: 1) } }
        XCTAssertEqual(dst3, [0, 0, 0, 100, 100, 100, 200, 200, 200])
    }
}
