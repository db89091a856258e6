import Foundation
import Tensor

/// What the narrator says during a step, with the noise of real ASR transcripts: chatter about
/// things not on screen, misspelled words, timing that drifts from the action, silent steps.
public struct Narrator: Sendable {
    /// Probability that a step is narrated at all.
    public var speakProbability = 0.92
    /// Probability of an extra sentence unrelated to what is shown.
    public var chatterProbability = 0.15
    /// Probability that a word is misspelled.
    public var typoProbability = 0.03
    /// Speech starts this many seconds off the step's start (uniform in the range).
    public var offset: ClosedRange<Double> = -0.5...0.8

    public init() {}

    static let templates = [
        "now let's {v} the {o}",
        "now let's {v} the {o}",
        "now let's {v} the {o}",
        "next we {v} the {o}",
        "i'm going to {v} the {o}",
        "{v} the {o} like this",
        "then you {v} the {o}",
        "go ahead and {v} the {o}",
    ]

    static let chatter = [
        "this is my favourite part",
        "don't forget to subscribe",
        "my kids love this recipe",
        "you can find these at any store",
        "it already smells amazing",
        "later we will add some {x}",
        "i usually buy my {x} at the market",
        "some people like to use {x} instead",
    ]

    public struct Line: Sendable, Equatable {
        public var start: Double
        public var end: Double
        public var text: String
    }

    /// Lines for one step spanning [start, end).
    public func lines(for step: DemoWorld.Step, start: Double, end: Double, rng: inout SeededRNG) -> [Line] {
        var out: [Line] = []
        let ing = DemoWorld.ingredient(step.object)
        if rng.nextDouble() < speakProbability {
            let t = Self.templates[rng.nextInt(Self.templates.count)]
            var text = t.replacingOccurrences(of: "{v}", with: step.verb.rawValue).replacingOccurrences(of: "{o}", with: ing.plural)
            text = misspell(text, rng: &rng)
            let off = offset.lowerBound + (offset.upperBound - offset.lowerBound) * rng.nextDouble()
            let s = max(0, start + off)
            let e = min(s + 1.2 + 0.15 * Double(text.split(separator: " ").count), end + 0.8)
            out.append(Line(start: s, end: max(e, s + 0.5), text: text))
        }
        if rng.nextDouble() < chatterProbability {
            let other = DemoWorld.ingredients[rng.nextInt(DemoWorld.ingredients.count)].plural
            let c = Self.chatter[rng.nextInt(Self.chatter.count)].replacingOccurrences(of: "{x}", with: other)
            let s = (out.last?.end ?? start) + 0.2
            if s + 1 < end { out.append(Line(start: s, end: min(end, s + 1.8), text: c)) }
        }
        return out
    }

    func misspell(_ text: String, rng: inout SeededRNG) -> String {
        text.split(separator: " ").map { word -> String in
            var w = Array(word)
            if w.count >= 4 && rng.nextDouble() < typoProbability {
                let i = 1 + rng.nextInt(w.count - 2)
                if rng.nextDouble() < 0.5 { w.swapAt(i, i - 1) } else { w.remove(at: i) }
            }
            return String(w)
        }.joined(separator: " ")
    }

    /// WebVTT text for the lines.
    public static func webVTT(_ lines: [Line]) -> String {
        var s = "WEBVTT\n\n"
        for (i, l) in lines.enumerated() {
            s += "\(i + 1)\n\(timestamp(l.start)) --> \(timestamp(l.end))\n\(l.text)\n\n"
        }
        return s
    }

    static func timestamp(_ t: Double) -> String {
        let ms = Int((t * 1000).rounded())
        return String(format: "%02d:%02d:%02d.%03d", ms / 3_600_000, (ms / 60_000) % 60, (ms / 1000) % 60, ms % 1000)
    }
}
