import Foundation
import Tensor

/// Draws the frames of a demo recipe video: an ingredient (shape, colours, texture) on a kitchen
/// background, moved the way its step's verb moves things (stirring rotates it, cutting splits it,
/// pouring drops it in, ...), with camera jitter and sensor noise. Everything is a pure function
/// of the seed, so the same seed renders the same pixels.
public struct DemoRenderer: Sendable {
    public let width: Int
    public let height: Int

    /// One video's look: background colours and pattern, jitter and noise strength.
    public struct Look: Sendable {
        public var base: (Float, Float, Float)
        public var accent: (Float, Float, Float)
        public var pattern: Int       // 0 plain, 1 wood stripes, 2 tiles, 3 gradient
        public var jitter: Float      // pixels
        public var noise: Float       // amplitude, 0–255 scale
        public var seed: UInt64

        public static func random(_ rng: inout SeededRNG) -> Look {
            let palettes: [((Float, Float, Float), (Float, Float, Float))] = [
                ((200, 185, 160), (170, 150, 120)), ((120, 90, 60), (95, 70, 45)), ((220, 220, 215), (180, 185, 190)),
                ((70, 80, 90), (55, 62, 70)), ((160, 175, 150), (130, 145, 120)), ((230, 205, 170), (200, 170, 130)),
                ((90, 110, 140), (70, 85, 110)), ((150, 60, 50), (120, 45, 40)),
            ]
            let p = palettes[rng.nextInt(palettes.count)]
            return Look(base: p.0, accent: p.1, pattern: rng.nextInt(4), jitter: 0.5 + 1.5 * rng.nextFloat(),
                        noise: 3 + 5 * rng.nextFloat(), seed: rng.next())
        }
    }

    public init(width: Int, height: Int) {
        precondition(width >= 16 && height >= 16)
        self.width = width; self.height = height
    }

    /// Renders the frame at `time` seconds into a step (`progress` = time / step length, 0..<1).
    /// - Parameter out: RGB24 [height, width, 3].
    public func render(step: DemoWorld.Step, progress u: Float, frameIndex: Int, look: Look,
                       out: UnsafeMutableBufferPointer<UInt8>) {
        precondition(out.count >= width * height * 3)
        let ing = DemoWorld.ingredient(step.object)
        let W = Float(width), H = Float(height)
        let r = 0.24 * min(W, H)
        // Camera jitter: a smooth pseudo-random walk of the frame index.
        let jx = look.jitter * sinf(Float(frameIndex) * 0.37 + Float(look.seed % 97))
        let jy = look.jitter * cosf(Float(frameIndex) * 0.29 + Float(look.seed % 89))
        var cx = W / 2 + jx, cy = H / 2 + jy
        var theta: Float = 0, sx: Float = 1, sy: Float = 1
        var split: Float = 0          // cut: halves pushed apart by this many pixels
        var flipped = false
        var revealAngle: Float = -1   // peel: object pixels with polar angle below this show the inside
        var sliceCuts = 0
        var showObject = true
        var objectScale: Float = 1
        var tool: Tool = .none

        switch step.verb {
        case .stir:
            theta = 4 * .pi * u
            tool = .spoon(angle: 6 * .pi * u)
        case .cut:
            if u < 0.3 { tool = .knife(depth: u / 0.3) } else { split = (u - 0.3) / 0.7 * 0.5 * r; tool = .knife(depth: 1) }
        case .pour:
            let fall = min(1, u / 0.5)
            cy = H / 2 + jy - (1 - fall) * (H / 2 + r)
            tool = .stream(phase: u)
        case .flip:
            let c = cosf(2 * .pi * 2 * u)
            sy = max(abs(c), 0.08)
            flipped = c < 0
        case .shake:
            cx += sinf(2 * .pi * 5 * u) * 0.35 * r
        case .roll:
            cx = W * (0.2 + 0.6 * u) + jx
            theta = (cx - W * 0.2) / r
        case .mash:
            sy = 1 - 0.45 * abs(sinf(2 * .pi * 2.5 * u))
            sx = 1 / sy.squareRoot()
            tool = .masher(height: sy)
        case .peel:
            revealAngle = 2 * .pi * u
        case .sprinkle:
            objectScale = 0.45
            cx = W * 0.25 + jx; cy = H * 0.22 + jy
            theta = -0.6
            tool = .particles(phase: u)
        case .whisk:
            theta = 0.25 * sinf(2 * .pi * 8 * u)
            tool = .whisk(angle: 2 * .pi * 6 * u)
        case .slice:
            sliceCuts = Int(u * 6) + 1
        case .boil:
            cy = H * 0.42 + jy + sinf(2 * .pi * 3 * u) * 0.1 * r
            tool = .pot(phase: u)
        }
        _ = showObject
        showObject = true

        var rng = SeededRNG(seed: look.seed, stream: UInt64(frameIndex))
        let cosT = cosf(theta), sinT = sinf(theta)
        let rr = r * objectScale
        let primary = flipped ? ing.secondary : ing.primary
        let secondary = flipped ? ing.primary : ing.secondary
        for py in 0..<height {
            let fy = Float(py) + 0.5
            for px in 0..<width {
                let fx = Float(px) + 0.5
                var (R, G, B) = background(fx, fy, look)
                // Object, in its own coordinates (x right, y down, radius 1).
                var dx = fx - cx
                let dy = fy - cy
                var inside = false
                if split > 0 {
                    if dx < 0 { dx += split } else { dx -= split }
                    if abs(fx - cx) < split { dx = 1e6 }  // the gap between the halves
                }
                let lx = (cosT * dx + sinT * dy) / (rr * sx)
                let ly = (-sinT * dx + cosT * dy) / (rr * sy)
                if Self.insideShape(ing.shape, lx, ly) {
                    inside = true
                    if sliceCuts > 0 {
                        for k in 0..<sliceCuts {
                            let xcut = -0.8 + 1.6 * (Float(k) + 0.5) / 6
                            if abs(lx - xcut) < 0.05 { inside = false }
                        }
                    }
                }
                if inside {
                    var c = Self.textureColor(ing.texture, lx, ly, primary, secondary)
                    if revealAngle >= 0 {
                        var phi = atan2f(ly, lx); if phi < 0 { phi += 2 * .pi }
                        if phi < revealAngle { c = (Float(secondary.0), Float(secondary.1), Float(secondary.2)) }
                    }
                    // Simple shading toward the rim, so shapes read as objects.
                    let shade = 1 - 0.18 * min(1, lx * lx + ly * ly)
                    (R, G, B) = (c.0 * shade, c.1 * shade, c.2 * shade)
                }
                if let t = tool.color(fx, fy, cx: cx, cy: cy, r: rr, W: W, H: H, ing: ing) { (R, G, B) = t }
                let n = look.noise * (rng.nextFloat() - 0.5) * 2
                let i = (py * width + px) * 3
                out[i] = Self.clamp(R + n); out[i + 1] = Self.clamp(G + n); out[i + 2] = Self.clamp(B + n)
            }
        }
    }

    @inline(__always) static func clamp(_ v: Float) -> UInt8 { UInt8(max(0, min(255, v.rounded()))) }

    func background(_ x: Float, _ y: Float, _ look: Look) -> (Float, Float, Float) {
        let b = look.base, a = look.accent
        let H = Float(height), W = Float(width)
        var t: Float
        switch look.pattern {
        case 1: t = 0.5 + 0.5 * sinf(y / H * 18 + 2 * sinf(x / W * 3))
        case 2: t = ((Int(x / W * 6) + Int(y / H * 6)) % 2 == 0) ? 0.15 : 0.85
        case 3: t = y / H
        default: t = 0.3
        }
        return (b.0 + (a.0 - b.0) * t, b.1 + (a.1 - b.1) * t, b.2 + (a.2 - b.2) * t)
    }

    static func insideShape(_ s: DemoWorld.Shape, _ x: Float, _ y: Float) -> Bool {
        switch s {
        case .circle: return x * x + y * y <= 1
        case .square: return max(abs(x), abs(y)) <= 0.85
        case .triangle: return y >= -0.9 && y <= 0.8 && abs(x) <= (y + 0.9) / 1.7 * 0.95
        case .diamond: return abs(x) + abs(y) <= 1
        case .hexagon: return max(abs(x) * 0.866 + abs(y) * 0.5, abs(y)) <= 0.9
        case .star:
            let rho = (x * x + y * y).squareRoot()
            let phi = atan2f(y, x)
            return rho <= 0.62 + 0.36 * cosf(5 * phi)
        case .wide: return x * x + y * y / 0.36 <= 1
        case .tall: return x * x / 0.25 + y * y <= 1
        case .ring: let d = x * x + y * y; return d <= 1 && d >= 0.2
        case .cross: return (abs(x) <= 0.3 && abs(y) <= 0.95) || (abs(y) <= 0.3 && abs(x) <= 0.95)
        case .crescent: return x * x + y * y <= 1 && (x - 0.45) * (x - 0.45) + y * y > 0.49
        case .drop:
            return x * x + (y - 0.25) * (y - 0.25) <= 0.49 || (y < 0.25 && y > -1 && abs(x) <= (y + 1) / 1.25 * 0.7)
        }
    }

    static func textureColor(_ t: DemoWorld.Texture, _ x: Float, _ y: Float,
                             _ p: (UInt8, UInt8, UInt8), _ s: (UInt8, UInt8, UInt8)) -> (Float, Float, Float) {
        let P = (Float(p.0), Float(p.1), Float(p.2)), S = (Float(s.0), Float(s.1), Float(s.2))
        switch t {
        case .solid: return P
        case .stripes: return sinf(y * .pi * 3) > 0 ? P : S
        case .dots:
            let fx = x * 2.5 - (x * 2.5).rounded(.down) - 0.5, fy = y * 2.5 - (y * 2.5).rounded(.down) - 0.5
            return fx * fx + fy * fy < 0.06 ? S : P
        case .checker: return (Int((x + 2) * 2.5) + Int((y + 2) * 2.5)) % 2 == 0 ? P : S
        case .radial:
            let d = min(1, (x * x + y * y).squareRoot())
            return (S.0 + (P.0 - S.0) * d, S.1 + (P.1 - S.1) * d, S.2 + (P.2 - S.2) * d)
        }
    }

    /// Kitchen tools drawn over the scene, each tied to its verb.
    enum Tool {
        case none
        case spoon(angle: Float)
        case knife(depth: Float)
        case stream(phase: Float)
        case masher(height: Float)
        case particles(phase: Float)
        case whisk(angle: Float)
        case pot(phase: Float)

        func color(_ x: Float, _ y: Float, cx: Float, cy: Float, r: Float, W: Float, H: Float,
                   ing: DemoWorld.Ingredient) -> (Float, Float, Float)? {
            let steel: (Float, Float, Float) = (175, 180, 190)
            switch self {
            case .none: return nil
            case .spoon(let a):
                // A segment from the centre at angle a, length 1.3 r, with a round bowl at its end.
                let ex = cx + cosf(a) * 1.3 * r, ey = cy + sinf(a) * 1.3 * r
                if distToSegment(x, y, cx, cy, ex, ey) < 1.6 { return (120, 80, 40) }
                if (x - ex) * (x - ex) + (y - ey) * (y - ey) < 0.04 * r * r { return (120, 80, 40) }
                return nil
            case .knife(let depth):
                let bottom = (cy - r) + depth * 2 * r
                if abs(x - cx) < 1.5 && y < bottom && y > bottom - 1.6 * r { return steel }
                if abs(x - cx) < 3 && y < bottom - 1.6 * r && y > bottom - 2.4 * r { return (40, 30, 30) }
                return nil
            case .stream(let u):
                // Drops falling from the top centre into the object.
                if abs(x - W / 2) < 2.5 {
                    let k = (y / H * 6 - u * 24)
                    if k - k.rounded(.down) < 0.45 { return (Float(ing.primary.0), Float(ing.primary.1), Float(ing.primary.2)) }
                }
                return nil
            case .masher(let h):
                let top = cy - r * h - 2
                if abs(x - cx) < 0.9 * r && y > top - 4 && y <= top { return steel }
                if abs(x - cx) < 2 && y < top - 4 && y > top - 1.2 * r { return steel }
                return nil
            case .particles(let u):
                // Seasoning falling in a band below the shaker into a bowl.
                let bowlTop = H * 0.72
                if y > bowlTop && y < H * 0.92 && abs(x - W * 0.55) < W * 0.3 * (1 - (y - bowlTop) / (H * 0.4)) { return (110, 70, 40) }
                if y < bowlTop && x > W * 0.3 && x < W * 0.8 {
                    let gx = (x / 3).rounded(.down), gy = ((y - u * H * 3) / 4).rounded(.down)
                    let h = hash(Int(gx), Int(gy))
                    if h % 11 == 0 { return (Float(ing.primary.0), Float(ing.primary.1), Float(ing.primary.2)) }
                }
                return nil
            case .whisk(let a):
                // Two wire loops rotating around the centre.
                for k in 0..<2 {
                    let ang = a + Float(k) * .pi / 2
                    let ex = cx + cosf(ang) * 0.9 * r, ey = cy + sinf(ang) * 0.5 * r
                    let d = ((x - ex) * (x - ex) + (y - ey) * (y - ey)).squareRoot()
                    if abs(d - 0.35 * r) < 1.0 { return steel }
                }
                return nil
            case .pot(let u):
                let top = H * 0.55
                if y > top && y < H * 0.95 && abs(x - W / 2) < W * 0.36 {
                    // Bubbles rising inside the pot.
                    for b in 0..<5 {
                        let bx = W / 2 + (Float(b) - 2) * W * 0.13
                        let phase = (u * 3 + Float(b) * 0.23).truncatingRemainder(dividingBy: 1)
                        let by = H * 0.93 - phase * (H * 0.36)
                        if (x - bx) * (x - bx) + (y - by) * (y - by) < 6 { return (235, 240, 245) }
                    }
                    return (60, 62, 70)
                }
                return nil
            }
        }

        func distToSegment(_ x: Float, _ y: Float, _ ax: Float, _ ay: Float, _ bx: Float, _ by: Float) -> Float {
            let vx = bx - ax, vy = by - ay
            let t = max(0, min(1, ((x - ax) * vx + (y - ay) * vy) / max(vx * vx + vy * vy, 1e-6)))
            let px = ax + t * vx - x, py = ay + t * vy - y
            return (px * px + py * py).squareRoot()
        }

        func hash(_ a: Int, _ b: Int) -> Int {
            var h = UInt64(bitPattern: Int64(a &* 73_856_093 ^ b &* 19_349_663))
            h = (h ^ (h >> 13)) &* 0x5bd1_e995
            return Int(truncatingIfNeeded: (h ^ (h >> 15)) & 0x7fff_ffff)
        }
    }
}
