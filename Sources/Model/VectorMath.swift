// Vectorized exp and the normal CDF for the elementwise hot spots (GELU over B·T·FF elements,
// softmax over attention rows and over the ~50k-word vocabulary). libm's scalar expf/erff cost a
// call per element; these work on 8 lanes with adds, multiplies and bit operations only.

typealias Float8 = SIMD8<Float>

// Lane-wise max/min through compare-and-select: the standard library's generic pointwiseMax and
// pointwiseMin are not inlined here (a call per vector), while these compile to max/min
// instructions.
@inline(__always)
func max8(_ a: Float8, _ b: Float8) -> Float8 { a.replacing(with: b, where: a .< b) }

@inline(__always)
func min8(_ a: Float8, _ b: Float8) -> Float8 { a.replacing(with: b, where: b .< a) }

/// e^x per lane, Cephes `expf` (range reduction x = n·ln2 + r with |r| ≤ ln2/2, degree-6
/// polynomial, 2^n built in the exponent bits): relative error ≤ 2e-7 on [−87.3, 88.7].
/// Lanes below −87.3 give exactly 0 (libm gives a denormal or 0 there; softmax of masked
/// scores at torch.finfo.min must be exactly 0); lanes above 88.7 saturate at e^88.7.
@inline(__always)
func exp8(_ x: Float8) -> Float8 {
    let lo: Float = -87.33654, hi: Float = 88.72283
    let xc = min8(max8(x, Float8(repeating: lo)), Float8(repeating: hi))
    // n = round(x / ln2) by the 1.5·2²³ trick: the sum's low mantissa bits hold n.
    let shifter = Float8(repeating: 12_582_912)
    let m = xc * 1.442_695_04 + shifter
    let n = m - shifter
    let r = xc - n * 0.693_359_375 - n * -2.121_944_4e-4
    var p = Float8(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_12e-1
    let er = p * (r * r) + r + 1
    let nBits = unsafeBitCast(m, to: SIMD8<Int32>.self) &- unsafeBitCast(shifter, to: SIMD8<Int32>.self)
    let scale = unsafeBitCast((nBits &+ 127) &<< 23, to: Float8.self)
    var result = er * scale
    result.replace(with: 0, where: x .< lo)
    return result
}

/// e^x for one value through the vector path (tails of loops).
@inline(__always)
func exp1(_ x: Float) -> Float { exp8(Float8(repeating: x))[0] }

/// The standard normal CDF Φ(x) = 0.5·(1 + erf(x/√2)) and density φ(x) = exp(−x²/2)/√(2π) per
/// lane. erf by Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7, the formula of PyTorch's
/// vectorized `erf`): erf(z) = 1 − t·(a1 + t·(a2 + t·(a3 + t·(a4 + t·a5))))·e^{−z²}, t = 1/(1 + p·z),
/// z ≥ 0; and e^{−z²} = e^{−x²/2} is exactly φ's exponential, shared.
@inline(__always)
func normalCDFAndPDF8(_ x: Float8) -> (cdf: Float8, pdf: Float8) {
    let z = max8(x, -x) * 0.707_106_78
    let t = 1 / (1 + 0.327_591_1 * z)
    var q = Float8(repeating: 1.061_405_429)
    q = q * t - 1.453_152_027
    q = q * t + 1.421_413_741
    q = q * t - 0.284_496_736
    q = q * t + 0.254_829_592
    q = q * t
    let e = exp8(-0.5 * x * x)
    let half = 0.5 * q * e                 // = 0.5·erfc(|x|/√2) = Φ(−|x|)
    var cdf = 1 - half
    cdf.replace(with: half, where: x .< 0)
    return (cdf, e * 0.398_942_28)
}

@inline(__always)
func load8(_ p: UnsafePointer<Float>) -> Float8 {
    UnsafeRawPointer(p).loadUnaligned(as: Float8.self)
}

@inline(__always)
func store8(_ v: Float8, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Float8.self)
}

/// The first `count` (< 8) floats at p, zero-padded.
@inline(__always)
func loadPartial8(_ p: UnsafePointer<Float>, _ count: Int) -> Float8 {
    var v = Float8()
    for k in 0..<count { v[k] = p[k] }
    return v
}

@inline(__always)
func storePartial8(_ v: Float8, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
    for k in 0..<count { p[k] = v[k] }
}
