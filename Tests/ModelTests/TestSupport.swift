import Foundation
import XCTest
import Tensor
@testable import Model

/// Owned, zeroed float storage for tests (kernels take raw pointers).
final class Floats {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    convenience init(_ values: [Float]) {
        self.init(count: values.count)
        for (i, v) in values.enumerated() { pointer[i] = v }
    }

    convenience init(_ values: [Double]) { self.init(values.map { Float($0) }) }

    /// Uniform values in [-scale, scale).
    convenience init(random count: Int, scale: Float = 1, rng: inout SeededRNG) {
        self.init(count: count)
        for i in 0..<count { pointer[i] = (rng.nextFloat() * 2 - 1) * scale }
    }

    deinit { pointer.deallocate() }

    var p: UnsafeMutablePointer<Float> { pointer }
    var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
    subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }
    func zero() { pointer.update(repeating: 0, count: count) }
    func copy() -> Floats { Floats(array) }
}

/// Owned Int32 storage.
final class Ints {
    let pointer: UnsafeMutablePointer<Int32>
    let count: Int
    init(_ values: [Int]) {
        count = values.count
        pointer = .allocate(capacity: max(count, 1))
        for (i, v) in values.enumerated() { pointer[i] = Int32(v) }
    }
    convenience init(_ values: [Double]) { self.init(values.map { Int($0) }) }
    deinit { pointer.deallocate() }
    var p: UnsafeMutablePointer<Int32> { pointer }
}

/// Finite-difference gradient check (docs/ARCHITECTURE.md §6: every layer's backward, rel. 1e-3).
///
/// The scalar loss is L = Σ out ⊙ R with a fixed random R, accumulated in Double, so backward is
/// called with dout = R. Numerical gradients use the fourth-order central difference
/// (8·(L(x+h) − L(x−h)) − (L(x+2h) − L(x−2h))) / 12h: its truncation error is O(h⁴), which lets h
/// be large enough (1e-2) that float32 rounding in the forward pass stays far below 1e-3.
///
/// Gradient buffers start from random values, and the analytic gradient is what backward ADDED,
/// so a backward that assigns instead of accumulating fails.
/// Each tensor passes when ‖g_num − g_ana‖ / (‖g_num‖ + ‖g_ana‖) ≤ tolerance, and its
/// numerical gradient must not be all zero (unless listed in `allowZero`), so no check is vacuous.
func gradientCheck(_ label: String,
                   inputs: [(name: String, values: Floats)],
                   outputs: Int,
                   h: Float = 1e-2,
                   tolerance: Double = 1e-3,
                   allowZero: Set<String> = [],
                   seed: UInt64 = 99,
                   forward: (_ out: UnsafeMutablePointer<Float>) -> Void,
                   backward: (_ dout: UnsafeMutablePointer<Float>, _ grads: [UnsafeMutablePointer<Float>]) -> Void,
                   file: StaticString = #filePath, line: UInt = #line) {
    var rng = SeededRNG(seed: seed)
    let out = Floats(count: outputs)
    let r = Floats(random: outputs, scale: 1, rng: &rng)
    func loss() -> Double {
        forward(out.p)
        var s: Double = 0
        for i in 0..<outputs { s += Double(out[i]) * Double(r[i]) }
        return s
    }
    // Analytic: forward at the base point, then backward into buffers with random initial values.
    let initial = inputs.map { Floats(random: $0.values.count, scale: 0.5, rng: &rng) }
    let grads = initial.map { $0.copy() }
    _ = loss()
    backward(r.p, grads.map(\.p))
    for (k, input) in inputs.enumerated() {
        let x = input.values
        var diff: Double = 0, numNorm: Double = 0, anaNorm: Double = 0, maxDiff: Double = 0
        for i in 0..<x.count {
            let saved = x[i]
            x[i] = saved + h; let lp1 = loss()
            x[i] = saved - h; let lm1 = loss()
            x[i] = saved + 2 * h; let lp2 = loss()
            x[i] = saved - 2 * h; let lm2 = loss()
            x[i] = saved
            let numerical = (8 * (lp1 - lm1) - (lp2 - lm2)) / (12 * Double(h))
            let analytic = Double(grads[k][i]) - Double(initial[k][i])
            diff += (numerical - analytic) * (numerical - analytic)
            numNorm += numerical * numerical
            anaNorm += analytic * analytic
            maxDiff = max(maxDiff, abs(numerical - analytic))
        }
        let denominator = numNorm.squareRoot() + anaNorm.squareRoot()
        let relative = denominator == 0 ? 0 : diff.squareRoot() / denominator
        if !allowZero.contains(input.name) {
            XCTAssertGreaterThan(numNorm, 0, "\(label): numerical gradient of \(input.name) is all zero", file: file, line: line)
        }
        print("  \(label) d\(input.name): relative error \(relative)")
        XCTAssertLessThanOrEqual(relative, tolerance,
                                 "\(label): \(input.name) relative error \(relative), max |diff| \(maxDiff)", file: file, line: line)
    }
}

/// llm.c's check_tensor: compares element by element with |a − b| ≤ atol + rtol·|b|, prints the
/// max difference, and fails naming the first bad index.
@discardableResult
func checkTensor(_ actual: UnsafePointer<Float>, _ expected: [Double], _ label: String,
                 atol: Double, rtol: Double, file: StaticString = #filePath, line: UInt = #line) -> Bool {
    var maxDiff: Double = 0
    var firstBad: Int? = nil
    for i in 0..<expected.count {
        let d = abs(Double(actual[i]) - expected[i])
        maxDiff = max(maxDiff, d)
        if firstBad == nil && !(d <= atol + rtol * abs(expected[i])) { firstBad = i }
    }
    if let i = firstBad {
        XCTFail("\(label): element \(i) is \(actual[i]), expected \(expected[i]) (max diff \(maxDiff))", file: file, line: line)
        return false
    }
    print("  \(label): OK (max diff \(maxDiff))")
    return true
}

func checkTensor(_ actual: Floats, _ expected: [Double], _ label: String, atol: Double, rtol: Double,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "\(label): size", file: file, line: line)
    guard actual.count == expected.count else { return }
    checkTensor(actual.p, expected, label, atol: atol, rtol: rtol, file: file, line: line)
}

/// The PyTorch fixture written by tools/fixtures/layers.py: case → name → flat values.
enum LayersFixture {
    static let cases: [String: [String: [Double]]] = {
        guard let url = Bundle.module.url(forResource: "layers", withExtension: "json", subdirectory: "Resources") else {
            fatalError("Resources/layers.json missing: run tools/fixtures/layers.py")
        }
        return try! JSON.decode([String: [String: [Double]]].self, from: url.path)
    }()

    static func `case`(_ name: String) -> [String: [Double]] {
        guard let c = cases[name] else { fatalError("fixture has no case '\(name)'") }
        return c
    }
}

extension Dictionary where Key == String, Value == [Double] {
    func int(_ key: String) -> Int { Int(self[key]![0]) }
    func scalar(_ key: String) -> Double { self[key]![0] }
    func floats(_ key: String) -> Floats { Floats(self[key]!) }
    func values(_ key: String) -> [Double] {
        guard let v = self[key] else { fatalError("fixture key '\(key)' missing") }
        return v
    }
}
