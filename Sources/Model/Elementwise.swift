import Foundation
import Tensor

// Elementwise layers as forward/backward pairs: GELU, tanh, residual add, dropout.
// N is the number of elements (e.g. B·T·C). Backward functions accumulate (+=).

// MARK: - GELU, BERT's exact (erf) form

/// out = 0.5 · x · (1 + erf(x / √2)) = x·Φ(x)  (Hendrycks & Gimpel 2016; HF `ACT2FN["gelu"]`,
/// torch `gelu(approximate="none")`). Φ through `normalCDFAndPDF8` (absolute error ≈ 1e-7,
/// as PyTorch's own vectorized erf).
/// - Parameters:
///   - out: [N] (written). Not the same memory as `inp`: backward needs the input.
///   - inp: [N] pre-activation, saved for backward.
public func geluForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, N: Int) {
    Parallel.forEachRange(N, grain: 16_384) { r in
        var i = r.lowerBound
        while i + 8 <= r.upperBound {
            let x = load8(inp + i)
            store8(x * normalCDFAndPDF8(x).cdf, out + i)
            i += 8
        }
        if i < r.upperBound {
            let n = r.upperBound - i
            let x = loadPartial8(inp + i, n)
            storePartial8(x * normalCDFAndPDF8(x).cdf, out + i, n)
        }
    }
}

/// dinp += dout · (Φ(x) + x·φ(x)) with Φ(x) = 0.5·(1 + erf(x/√2)), φ(x) = exp(−x²/2)/√(2π):
/// the exact derivative of the erf form.
/// - Parameters:
///   - dinp: [N] accumulated (+=), or overwritten when `accumulate` is false (saves zeroing it).
///   - inp: [N] the forward input.
///   - dout: [N].
public func geluBackward(dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, dout: UnsafePointer<Float>, N: Int,
                         accumulate: Bool = true) {
    Parallel.forEachRange(N, grain: 16_384) { r in
        var i = r.lowerBound
        while i + 8 <= r.upperBound {
            let x = load8(inp + i)
            let (cdf, pdf) = normalCDFAndPDF8(x)
            let g = load8(dout + i) * (cdf + x * pdf)
            store8(accumulate ? load8(dinp + i) + g : g, dinp + i)
            i += 8
        }
        if i < r.upperBound {
            let n = r.upperBound - i
            let x = loadPartial8(inp + i, n)
            let (cdf, pdf) = normalCDFAndPDF8(x)
            let g = loadPartial8(dout + i, n) * (cdf + x * pdf)
            storePartial8(accumulate ? loadPartial8(dinp + i, n) + g : g, dinp + i, n)
        }
    }
}

// MARK: - tanh (BERT pooler)

/// out = tanh(inp) (BERT's pooler: tanh(dense([CLS]))).
/// - Parameters:
///   - out: [N] (written; saved for backward). May alias `inp`.
///   - inp: [N].
public func tanhForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, N: Int) {
    Parallel.forEachRange(N, grain: 8_192) { r in
        for i in r { out[i] = Foundation.tanh(inp[i]) }
    }
}

/// dinp += dout · (1 − out²).
/// - Parameters:
///   - dinp: [N] accumulated (+=).
///   - dout: [N].
///   - out: [N] the forward output.
public func tanhBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, out: UnsafePointer<Float>, N: Int) {
    Parallel.forEachRange(N, grain: 16_384) { r in
        for i in r { dinp[i] += dout[i] * (1 - out[i] * out[i]) }
    }
}

// MARK: - Residual add

/// out = inp1 + inp2.
/// - Parameters:
///   - out: [N] (written). May alias either input.
///   - inp1, inp2: [N].
public func residualForward(out: UnsafeMutablePointer<Float>, inp1: UnsafePointer<Float>, inp2: UnsafePointer<Float>, N: Int) {
    Parallel.forEachRange(N, grain: 32_768) { r in
        for i in r { out[i] = inp1[i] + inp2[i] }
    }
}

/// dinp1 += dout; dinp2 += dout.
/// - Parameters:
///   - dinp1, dinp2: [N] accumulated (+=); distinct buffers.
///   - dout: [N].
public func residualBackward(dinp1: UnsafeMutablePointer<Float>, dinp2: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, N: Int) {
    Parallel.forEachRange(N, grain: 32_768) { r in
        for i in r {
            let g = dout[i]
            dinp1[i] += g
            dinp2[i] += g
        }
    }
}

// MARK: - Dropout with a seeded mask

/// Elements per dropout chunk; chunk c draws from `SeededRNG(seed:stream: c)`, so the mask depends
/// only on (seed, N) and not on the number of threads.
let dropoutChunk = 16_384

/// A dropout seed for one call site of one step: distinct (step, site) pairs give independent masks.
/// `base` is the run's seed; `site` numbers the dropout in the model (e.g. layer · 4 + position).
public func dropoutSeed(base: UInt64, step: Int, site: Int) -> UInt64 {
    var rng = SeededRNG(seed: base ^ 0x6472_6F70_6F75_74, stream: UInt64(truncatingIfNeeded: step) &* 0x1_0000_0001 &+ UInt64(truncatingIfNeeded: site))
    return rng.next()
}

/// out[i] = inp[i] / (1 − p) with probability 1 − p, else 0 (inverted dropout, as torch).
/// Identity when p = 0: pass p = 0 in evaluation.
/// - Parameters:
///   - out: [N] (written). May alias `inp`.
///   - inp: [N].
///   - p: drop probability in [0, 1).
///   - seed: the mask's seed (`dropoutSeed`); backward regenerates the same mask from it.
public func dropoutForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, p: Float, seed: UInt64, N: Int) {
    precondition(p >= 0 && p < 1, "dropout probability must be in [0, 1)")
    if p == 0 {
        if UnsafePointer(out) != inp { out.update(from: inp, count: N) }
        return
    }
    let chunks = (N + dropoutChunk - 1) / dropoutChunk
    Parallel.concurrentPerform(chunks) { c in
        let start = c * dropoutChunk
        var rng = SeededRNG(seed: seed, stream: UInt64(c))
        applyDropoutMask(out: out + start, inp: inp + start, count: min(dropoutChunk, N - start), p: p, rng: &rng)
    }
}

/// dinp += dout ⊙ keep / (1 − p), with the mask regenerated from `seed`.
/// - Parameters:
///   - dinp: [N] accumulated (+=), or overwritten when `accumulate` is false (saves zeroing it).
///     May not alias `dout`.
///   - dout: [N].
///   - p, seed: exactly as given to forward.
public func dropoutBackward(dinp: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, p: Float, seed: UInt64, N: Int,
                            accumulate: Bool = true) {
    if p == 0 {
        Parallel.forEachRange(N, grain: 32_768) { r in
            if accumulate { for i in r { dinp[i] += dout[i] } } else { (dinp + r.lowerBound).update(from: dout + r.lowerBound, count: r.count) }
        }
        return
    }
    let scale = 1 / (1 - p)
    let chunks = (N + dropoutChunk - 1) / dropoutChunk
    Parallel.concurrentPerform(chunks) { c in
        let start = c * dropoutChunk
        var mask = DropoutBits(SeededRNG(seed: seed, stream: UInt64(c)), p: p)
        if accumulate {
            for i in start..<min(start + dropoutChunk, N) where mask.keep() { dinp[i] += dout[i] * scale }
        } else {
            for i in start..<min(start + dropoutChunk, N) { dinp[i] = mask.keep() ? dout[i] * scale : 0 }
        }
    }
}

/// out = residual + dropout(inp): `dropoutForward` and `residualForward` in one pass, with the
/// same mask as `dropoutForward(seed:)` (so `dropoutBackward` with that seed is its backward for
/// the `inp` branch; the `residual` branch's gradient is dout itself).
/// - Parameters:
///   - out: [N] (written). May alias `residual` or `inp`.
///   - residual: [N] the skip connection.
///   - inp: [N] the branch that goes through dropout.
public func dropoutResidualForward(out: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                                   p: Float, seed: UInt64, N: Int) {
    precondition(p >= 0 && p < 1, "dropout probability must be in [0, 1)")
    if p == 0 {
        residualForward(out: out, inp1: residual, inp2: inp, N: N)
        return
    }
    let scale = 1 / (1 - p)
    let chunks = (N + dropoutChunk - 1) / dropoutChunk
    Parallel.concurrentPerform(chunks) { c in
        let start = c * dropoutChunk
        var mask = DropoutBits(SeededRNG(seed: seed, stream: UInt64(c)), p: p)
        for i in start..<min(start + dropoutChunk, N) {
            out[i] = residual[i] + (mask.keep() ? inp[i] * scale : 0)
        }
    }
}

/// out[i] = keep ? inp[i] / (1 − p) : 0, with the keep decisions of `DropoutBits` over `rng`'s
/// sequence, in element order. Advances `rng` by ⌈count / 4⌉ draws.
@inline(__always)
func applyDropoutMask(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int, p: Float, rng: inout SeededRNG) {
    let scale = 1 / (1 - p)
    var mask = DropoutBits(rng, p: p)
    for i in 0..<count {
        out[i] = mask.keep() ? inp[i] * scale : 0
    }
    rng.state = mask.stream.state
}

/// Dropout's keep/drop decisions, four per 64-bit draw of SeededRNG's sequence (one draw per
/// element was the largest cost of attention dropout): the draw's 16-bit quarters, low first, are
/// uniforms u in 0..<65536, and an element is kept iff u ≥ round(p · 65536). So the drop
/// probability is p rounded to a multiple of 2⁻¹⁶ (0.1 → 0.1000061); the kept values are scaled
/// by 1 / (1 − p) as torch does. Masks depend only on the seed and the element index (every user
/// starts a fresh generator at an index that is a multiple of 4), so backward regenerates them.
struct DropoutBits {
    var stream: MaskStream
    let threshold: UInt64
    var bits: UInt64 = 0
    var left = 0

    @inline(__always)
    init(_ rng: SeededRNG, p: Float) {
        stream = MaskStream(rng)
        threshold = UInt64((Double(p) * 65_536).rounded())
    }

    @inline(__always)
    mutating func keep() -> Bool {
        if left == 0 {
            bits = stream.next()
            left = 4
        }
        let u = bits & 0xFFFF
        bits >>= 16
        left -= 1
        return u >= threshold
    }
}

/// SeededRNG's exact xoshiro256** sequence, copied into the caller so that the per-element draw
/// inlines (SeededRNG lives in module Tensor, and a cross-module call per element costs more
/// than the draw). Same numbers as `SeededRNG.nextFloat()`; StorageTests checks it.
struct MaskStream {
    var s0, s1, s2, s3: UInt64

    @inline(__always)
    init(_ rng: SeededRNG) { (s0, s1, s2, s3) = rng.state }

    var state: (UInt64, UInt64, UInt64, UInt64) { (s0, s1, s2, s3) }

    @inline(__always)
    mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// Uniform in [0, 1) from the top 24 bits, as SeededRNG.nextFloat.
    @inline(__always)
    mutating func nextFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }
}
