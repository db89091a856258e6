import Foundation
import Tensor

/// The sound track of a demo video (issue 17, item 7): every verb has its own synthetic sound
/// (chopping impulses for `cut`, a stirring swish for `stir`, band noise for `pour`, bubbles for
/// `boil`, sizzling for `flip`, ...), played during its step over the video's room noise. Some
/// steps are heard wrong on purpose, as in real videos (music, a voice-over, another pan on the
/// stove): with probability `misleadingRate` a step plays the sound of another verb, with
/// probability `silentRate` it plays nothing but the room. What each step plays goes into the
/// corpus' annotations (`sound`, `sound_kind`), so tests and the ablations know.
///
/// Everything is a pure function of the corpus seed (and of the video's plan): the same seed gives
/// the same samples, bit for bit (Double arithmetic in a fixed order; no threads inside a track).
/// Samples are mono float at `sampleRate`, roughly within ±0.9.
public struct DemoSound: Sendable, Equatable {
    /// 16 kHz: the sample rate of the log-mel defaults (`audio.sample_rate`), so nothing is resampled.
    public static let sampleRate = 16_000
    /// Probability that a step plays another verb's sound (uniform among the other verbs).
    public var misleadingRate = 0.1
    /// Probability that a step plays only the room noise.
    public var silentRate = 0.1

    public init() {}

    /// What a step plays.
    public enum Kind: String, Sendable, Codable, CaseIterable { case matching, misleading, silent }

    public struct StepSound: Sendable, Equatable {
        public var kind: Kind
        /// The verb whose sound is heard; nil when the step is silent.
        public var verb: DemoWorld.Verb?
        /// Loudness of the step's sound (uniform in 0.7–1.3).
        public var gain: Double
    }

    /// One video's sound: the room and every step's choice.
    public struct Track: Sendable, Equatable {
        /// Level of the room noise (uniform in 0.004–0.015: a quiet kitchen, well below the steps).
        public var roomLevel: Double
        /// Mains hum frequency (50 or 60 Hz) and level (0–0.004).
        public var humFrequency: Double
        public var humLevel: Double
        public var steps: [StepSound]
        /// Seeds the noise of the samples (each step from its own stream).
        public var seed: UInt64
    }

    /// Chooses the sound of each step; consumes only `rng` (a stream of its own, so the frames and
    /// the narration drawn from the corpus' main stream are those of a corpus without sound).
    public func plan(steps: [DemoWorld.Step], rng: inout SeededRNG) -> Track {
        let roomLevel = 0.004 + 0.011 * rng.nextDouble()
        let hum = rng.nextDouble() < 0.5 ? 50.0 : 60.0
        let humLevel = 0.004 * rng.nextDouble()
        var out: [StepSound] = []
        for s in steps {
            let u = rng.nextDouble()
            let other = DemoWorld.Verb.allCases.filter { $0 != s.verb }
            let pick = other[rng.nextInt(other.count)]
            let gain = 0.7 + 0.6 * rng.nextDouble()
            if u < silentRate {
                out.append(StepSound(kind: .silent, verb: nil, gain: gain))
            } else if u < silentRate + misleadingRate {
                out.append(StepSound(kind: .misleading, verb: pick, gain: gain))
            } else {
                out.append(StepSound(kind: .matching, verb: s.verb, gain: gain))
            }
        }
        return Track(roomLevel: roomLevel, humFrequency: hum, humLevel: humLevel, steps: out, seed: rng.next())
    }

    /// The whole track: `round(seconds × sampleRate)` samples, the room everywhere and each step's
    /// sound over [start, end) with 20 ms fades.
    public static func render(_ track: Track, stepTimes: [(start: Double, end: Double)], seconds: Double) -> [Float] {
        let sr = Double(sampleRate)
        let n = max(0, Int((seconds * sr).rounded()))
        var mix = [Double](repeating: 0, count: n)
        // Room: low-passed (brown-ish) noise with a little hiss, and mains hum.
        var rng = SeededRNG(seed: track.seed, stream: 0x726f_6f6d)  // "room"
        var low = 0.0
        let lowAlpha = 1 - exp(-2 * Double.pi * 400 / sr)
        let humPhase = 2 * Double.pi * rng.nextDouble()
        for i in 0..<n {
            let w = gaussian(&rng)
            low += lowAlpha * (w - low)
            let t = Double(i) / sr
            mix[i] = track.roomLevel * (3 * low + 0.25 * w) + track.humLevel * sin(2 * Double.pi * track.humFrequency * t + humPhase)
        }
        for (k, step) in track.steps.enumerated() where k < stepTimes.count {
            guard let verb = step.verb else { continue }
            let first = max(0, Int((stepTimes[k].start * sr).rounded()))
            let last = min(n, Int((stepTimes[k].end * sr).rounded()))
            guard last > first else { continue }
            var srng = SeededRNG(seed: track.seed, stream: UInt64(k + 1))
            let sound = synthesize(verb, count: last - first, rng: &srng)
            let fade = Int(0.02 * sr)
            for i in 0..<(last - first) {
                let edge = min(i, last - first - 1 - i)
                let env = edge < fade ? Double(edge) / Double(fade) : 1
                mix[first + i] += step.gain * env * sound[i]
            }
        }
        return mix.map { Float(max(-0.95, min(0.95, $0))) }
    }

    /// The sound of one verb, `count` samples at `sampleRate` (RMS around 0.05–0.1).
    public static func synthesize(_ verb: DemoWorld.Verb, count: Int, rng: inout SeededRNG) -> [Double] {
        let sr = Double(sampleRate)
        var x = [Double](repeating: 0, count: count)
        let seconds = Double(count) / sr
        switch verb {
        case .cut:
            // Chopping: a knife on a board every ~0.3 s: a click, the board's ring, a low thump.
            for t in events(every: 0.3, jitter: 0.04, seconds: seconds, rng: &rng) {
                let a = 0.35 + 0.15 * rng.nextDouble()
                addNoiseBurst(&x, at: t, length: 0.004, amplitude: a, rng: &rng)
                addRing(&x, at: t, frequency: 650 + 100 * rng.nextDouble(), decay: 0.03, amplitude: a)
                addRing(&x, at: t, frequency: 170, decay: 0.05, amplitude: 0.8 * a)
            }
        case .slice:
            // Slicing: lighter, faster knife ticks with a high ring and a scrape between them.
            for t in events(every: 0.17, jitter: 0.02, seconds: seconds, rng: &rng) {
                let a = 0.2 + 0.1 * rng.nextDouble()
                addRing(&x, at: t, frequency: 2300 + 300 * rng.nextDouble(), decay: 0.012, amplitude: a)
                addBandNoise(&x, from: t + 0.03, length: 0.07, center: 3000, q: 2, amplitude: 0.25 * a, shaped: true, rng: &rng)
            }
        case .stir:
            // Stirring: a swish of mid-band noise that swells once per turn, a spoon's clink per turn.
            let rate = 1.4 + 0.4 * rng.nextDouble()
            var bp = Biquad.bandpass(center: 1400, q: 0.8)
            let phase = rng.nextDouble()
            for i in 0..<count {
                let t = Double(i) / sr
                let swell = 0.5 + 0.5 * sin(2 * Double.pi * (rate * t + phase))
                x[i] += 0.5 * swell * swell * bp.run(gaussian(&rng))
            }
            for t in events(every: 1 / rate, jitter: 0.05, seconds: seconds, rng: &rng) {
                addRing(&x, at: t, frequency: 3200, decay: 0.05, amplitude: 0.06)
                addRing(&x, at: t, frequency: 4700, decay: 0.03, amplitude: 0.04)
            }
        case .pour:
            // Pouring: steady band noise around 600 Hz with a gurgling wobble.
            var bp = Biquad.bandpass(center: 600, q: 1.2)
            let wobble = 6 + 3 * rng.nextDouble()
            for i in 0..<count {
                let t = Double(i) / sr
                x[i] = 0.45 * (0.8 + 0.2 * sin(2 * Double.pi * wobble * t)) * bp.run(gaussian(&rng))
            }
        case .boil:
            // Boiling: bubbles (short rising chirps) about 25 a second over a low rumble.
            var lp = Biquad.lowpass(cutoff: 150)
            for i in 0..<count { x[i] = 0.25 * lp.run(gaussian(&rng)) }
            for t in poisson(rate: 25, seconds: seconds, rng: &rng) {
                addChirp(&x, at: t, from: 300 + 900 * rng.nextDouble(), rise: 1.3, length: 0.03, amplitude: 0.12 + 0.1 * rng.nextDouble())
            }
        case .flip:
            // Sizzling in the pan: high crackling hiss and pops; a thud at each of the two flips.
            var hp = Biquad.highpass(cutoff: 3500)
            for i in 0..<count { x[i] = 0.08 * hp.run(gaussian(&rng)) }
            for t in poisson(rate: 60, seconds: seconds, rng: &rng) {
                addNoiseBurst(&x, at: t, length: 0.0015, amplitude: 0.15 + 0.2 * rng.nextDouble(), rng: &rng)
            }
            for k in [0.25, 0.75] { addRing(&x, at: k * seconds, frequency: 110, decay: 0.06, amplitude: 0.3) }
        case .shake:
            // Shaking: rattling bursts (many small grains) at each change of direction.
            for t in events(every: seconds / 10, jitter: 0.02, seconds: seconds, rng: &rng) {
                for _ in 0..<12 {
                    addRing(&x, at: t + 0.08 * rng.nextDouble(), frequency: 3500 + 2000 * rng.nextDouble(), decay: 0.004,
                            amplitude: 0.1 + 0.1 * rng.nextDouble())
                }
            }
        case .roll:
            // Rolling: a low rumble that slowly rises and falls.
            var bp = Biquad.bandpass(center: 180, q: 0.7)
            let phase = rng.nextDouble()
            for i in 0..<count {
                let t = Double(i) / sr
                x[i] = 0.6 * (0.7 + 0.3 * sin(2 * Double.pi * (0.5 * t + phase))) * bp.run(gaussian(&rng))
            }
        case .mash:
            // Mashing: thuds with a wet squish about every 0.6 s.
            for t in events(every: 0.6, jitter: 0.05, seconds: seconds, rng: &rng) {
                addRing(&x, at: t, frequency: 90, decay: 0.08, amplitude: 0.45)
                addBandNoise(&x, from: t, length: 0.15, center: 400, q: 1.5, amplitude: 0.35, shaped: true, rng: &rng)
            }
        case .peel:
            // Peeling: scraping strokes of high band noise, one every half second.
            for t in events(every: 0.5, jitter: 0.05, seconds: seconds, rng: &rng) {
                addBandNoise(&x, from: t, length: 0.3, center: 4200, q: 2, amplitude: 0.4, shaped: true, rng: &rng)
            }
        case .sprinkle:
            // Sprinkling: a tinkle of tiny high grains, about 50 a second.
            for t in poisson(rate: 50, seconds: seconds, rng: &rng) {
                addRing(&x, at: t, frequency: 6000 + 1500 * rng.nextDouble(), decay: 0.003, amplitude: 0.1 + 0.15 * rng.nextDouble())
            }
        case .whisk:
            // Whisking: fast metallic ticks (about 9 a second) over a modulated swish.
            var bp = Biquad.bandpass(center: 2500, q: 1)
            for i in 0..<count {
                let t = Double(i) / sr
                x[i] = 0.15 * (0.5 + 0.5 * sin(2 * Double.pi * 9 * t)) * bp.run(gaussian(&rng))
            }
            for t in events(every: 1.0 / 9, jitter: 0.01, seconds: seconds, rng: &rng) {
                addRing(&x, at: t, frequency: 3500, decay: 0.015, amplitude: 0.15)
            }
        }
        return x
    }

    // MARK: - building blocks

    /// Event times every `every` seconds (± jitter), starting within the first period.
    static func events(every: Double, jitter: Double, seconds: Double, rng: inout SeededRNG) -> [Double] {
        var out: [Double] = []
        var t = every * rng.nextDouble()
        while t < seconds {
            out.append(t)
            t += max(0.01, every + jitter * (2 * rng.nextDouble() - 1))
        }
        return out
    }

    /// Event times of a Poisson process of `rate` per second.
    static func poisson(rate: Double, seconds: Double, rng: inout SeededRNG) -> [Double] {
        var out: [Double] = []
        var t = -log(1 - rng.nextDouble()) / rate
        while t < seconds {
            out.append(t)
            t += -log(1 - rng.nextDouble()) / rate
        }
        return out
    }

    /// A standard normal variate (Box–Muller in Double).
    static func gaussian(_ rng: inout SeededRNG) -> Double {
        let u1 = max(rng.nextDouble(), 1e-12), u2 = rng.nextDouble()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// A damped sinusoid starting at `t`.
    static func addRing(_ x: inout [Double], at t: Double, frequency: Double, decay: Double, amplitude: Double) {
        let sr = Double(sampleRate)
        let first = Int((t * sr).rounded())
        let length = Int(6 * decay * sr)
        guard first >= 0 else { return }
        for i in 0..<length where first + i < x.count {
            let s = Double(i) / sr
            x[first + i] += amplitude * exp(-s / decay) * sin(2 * Double.pi * frequency * s)
        }
    }

    /// White noise with a fast exponential decay (a click).
    static func addNoiseBurst(_ x: inout [Double], at t: Double, length: Double, amplitude: Double, rng: inout SeededRNG) {
        let sr = Double(sampleRate)
        let first = Int((t * sr).rounded())
        let n = Int(3 * length * sr)
        guard first >= 0 else { return }
        for i in 0..<n {
            let g = gaussian(&rng)
            if first + i < x.count { x[first + i] += amplitude * exp(-Double(i) / (length * sr)) * g }
        }
    }

    /// Band-passed noise over [t, t + length), with a half-sine envelope when `shaped`.
    static func addBandNoise(_ x: inout [Double], from t: Double, length: Double, center: Double, q: Double, amplitude: Double,
                             shaped: Bool, rng: inout SeededRNG) {
        let sr = Double(sampleRate)
        let first = Int((t * sr).rounded())
        let n = Int(length * sr)
        guard first >= 0, n > 0 else { return }
        var bp = Biquad.bandpass(center: center, q: q)
        for i in 0..<n {
            let v = bp.run(gaussian(&rng))
            let env = shaped ? sin(Double.pi * Double(i) / Double(n)) : 1
            if first + i < x.count { x[first + i] += amplitude * env * v }
        }
    }

    /// A sine whose frequency rises by `rise`× over `length`, with a decaying envelope (a bubble).
    static func addChirp(_ x: inout [Double], at t: Double, from f0: Double, rise: Double, length: Double, amplitude: Double) {
        let sr = Double(sampleRate)
        let first = Int((t * sr).rounded())
        let n = Int(length * sr)
        guard first >= 0, n > 0 else { return }
        var phase = 0.0
        for i in 0..<n where first + i < x.count {
            let u = Double(i) / Double(n)
            phase += 2 * Double.pi * f0 * (1 + (rise - 1) * u) / sr
            x[first + i] += amplitude * exp(-3 * u) * sin(phase)
        }
    }

    /// A second-order IIR filter: the RBJ Audio EQ Cookbook's band-pass (0 dB peak), low-pass and
    /// high-pass (https://www.w3.org/TR/audio-eq-cookbook/), direct form I.
    struct Biquad {
        var b0, b1, b2, a1, a2: Double
        var x1 = 0.0, x2 = 0.0, y1 = 0.0, y2 = 0.0

        init(b0: Double, b1: Double, b2: Double, a0: Double, a1: Double, a2: Double) {
            self.b0 = b0 / a0; self.b1 = b1 / a0; self.b2 = b2 / a0; self.a1 = a1 / a0; self.a2 = a2 / a0
        }

        static func bandpass(center: Double, q: Double) -> Biquad {
            let w0 = 2 * Double.pi * center / Double(sampleRate), alpha = sin(w0) / (2 * q)
            return Biquad(b0: alpha, b1: 0, b2: -alpha, a0: 1 + alpha, a1: -2 * cos(w0), a2: 1 - alpha)
        }

        static func lowpass(cutoff: Double, q: Double = 0.7071) -> Biquad {
            let w0 = 2 * Double.pi * cutoff / Double(sampleRate), alpha = sin(w0) / (2 * q), c = cos(w0)
            return Biquad(b0: (1 - c) / 2, b1: 1 - c, b2: (1 - c) / 2, a0: 1 + alpha, a1: -2 * c, a2: 1 - alpha)
        }

        static func highpass(cutoff: Double, q: Double = 0.7071) -> Biquad {
            let w0 = 2 * Double.pi * cutoff / Double(sampleRate), alpha = sin(w0) / (2 * q), c = cos(w0)
            return Biquad(b0: (1 + c) / 2, b1: -(1 + c), b2: (1 + c) / 2, a0: 1 + alpha, a1: -2 * c, a2: 1 - alpha)
        }

        mutating func run(_ x: Double) -> Double {
            let y = b0 * x + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2
            x2 = x1; x1 = x; y2 = y1; y1 = y
            return y
        }
    }
}
