import Foundation
import Tensor

/// Generates the built-in demo corpus: short cooking videos, each a dish made in steps
/// (a verb applied to an ingredient), with WebVTT narration beside each video, a manifest, and
/// the ground truth of every step in YouCook2's annotation format (plus `verb`/`noun` fields)
/// for the downstream evaluations. Each video has a sound track (`DemoSound`: every verb its own
/// sound over room noise, some steps misleading or silent), an AAC stream in the MP4.
///
/// Layout of `out`:
/// ```
/// videos/<id>.mp4, videos/<id>.vtt   the corpus (a folder corpus for `videobert tokenize`)
/// manifest.jsonl                     {"id", "video", "transcript", "group", "split"} per video
/// annotations.json                   {"database": {id: {"subset", "duration", "dish", "annotations":
///                                      [{"segment": [s, e], "sentence", "verb", "noun",
///                                        "sound", "sound_kind"}]}}}  (sound: the verb heard or
///                                        null; sound_kind: matching | misleading | silent)
/// labels.json                        {"verbs": [...], "nouns": [...]} (label lists for zero-shot classification)
/// ```
public struct DemoCorpus {
    public struct Options: Sendable {
        public var videos = 120
        public var seed: UInt64 = 0
        public var width = 96
        public var height = 96
        public var fps = 10
        /// Seconds per step (uniform in the range).
        public var stepSeconds: ClosedRange<Double> = 3.0...4.5
        /// Fractions of dishes' videos held out (split by video: each video is one cooking session).
        public var valFraction = 0.1
        public var testFraction = 0.15
        /// The sound tracks; nil writes videos without an audio stream (as before issue 17: the
        /// frames, narration and splits are the same either way).
        public var sound: DemoSound? = DemoSound()
        public init() {}
    }

    /// Encodes one video: called with the final path, frame count, a function that renders
    /// frame i, and the sound track (mono at `DemoSound.sampleRate`, from time 0; nil: no audio
    /// stream). It must write atomically (nothing at `path` until the video is complete).
    public typealias Encode = (_ path: String, _ width: Int, _ height: Int, _ fps: Int, _ frames: Int,
                               _ sound: [Float]?,
                               _ render: (Int, UnsafeMutableBufferPointer<UInt8>) -> Void) throws -> Void

    public struct VideoPlan: @unchecked Sendable {  // tuples of Doubles only
        public var id: String
        public var dish: String
        public var split: String
        public var steps: [DemoWorld.Step]
        public var stepTimes: [(start: Double, end: Double)]
        public var lines: [Narrator.Line]
        public var look: DemoRenderer.Look
        public var duration: Double
        /// What each step sounds like (nil without sound).
        public var sound: DemoSound.Track?
    }

    public let options: Options
    public init(options: Options) { self.options = options }

    /// Everything about every video except its pixels: deterministic for the seed.
    public func plan() -> [VideoPlan] {
        var rng = SeededRNG(seed: options.seed)
        let narrator = Narrator()
        var plans: [VideoPlan] = []
        let n = options.videos
        let nTest = n >= 3 ? max(1, Int((Double(n) * options.testFraction).rounded())) : 0
        let nVal = n >= 3 ? max(1, Int((Double(n) * options.valFraction).rounded())) : 0
        // Splits interleaved over the sequence so every dish appears in train.
        var splitOf = [String](repeating: "train", count: n)
        var order = Array(0..<n)
        for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, rng.nextInt(i + 1)) }
        for (k, i) in order.enumerated() {
            if k < nTest { splitOf[i] = "test" } else if k < nTest + nVal { splitOf[i] = "val" }
        }
        for v in 0..<n {
            let dish = DemoWorld.dishes[v % DemoWorld.dishes.count]
            let steps = DemoWorld.sampleSteps(dish, rng: &rng)
            var t = 0.5 + rng.nextDouble()  // a little lead-in without action
            var times: [(Double, Double)] = []
            var lines: [Narrator.Line] = []
            for s in steps {
                let len = options.stepSeconds.lowerBound + (options.stepSeconds.upperBound - options.stepSeconds.lowerBound) * rng.nextDouble()
                times.append((t, t + len))
                lines += narrator.lines(for: s, start: t, end: t + len, rng: &rng)
                t += len
            }
            let duration = t + 0.5
            let id = String(format: "demo%04d-", v) + dish.name.replacingOccurrences(of: " ", with: "-")
            let look = DemoRenderer.Look.random(&rng)
            // The sound's own stream: the main one (frames, narration, splits) is untouched by it.
            var soundRNG = SeededRNG(seed: options.seed, stream: 0x736f_756e_6400 &+ UInt64(v))  // "sound"
            let sound = options.sound.map { $0.plan(steps: steps, rng: &soundRNG) }
            plans.append(VideoPlan(id: id, dish: dish.name, split: splitOf[v], steps: steps, stepTimes: times,
                                   lines: lines.sorted { $0.start < $1.start }, look: look, duration: duration, sound: sound))
        }
        return plans
    }

    /// Renders and writes the whole corpus into `out`, `workers` videos at a time; videos already
    /// there are kept (a re-run only fills in what is missing). `progress` is called after each video.
    public func generate(into out: String, workers: Int = 2, encode: @escaping Encode,
                         progress: (@Sendable (Int, Int) -> Void)? = nil) throws {
        let plans = plan()
        let videoDir = (out as NSString).appendingPathComponent("videos")
        try AtomicFile.createDirectory(videoDir)
        let renderer = DemoRenderer(width: options.width, height: options.height)
        let fps = options.fps
        let lock = NSLock()
        nonisolated(unsafe) var next = 0
        nonisolated(unsafe) var done = 0
        nonisolated(unsafe) var firstError: Error? = nil
        nonisolated(unsafe) let encodeFn = encode
        DispatchQueue.concurrentPerform(iterations: max(1, min(workers, plans.count))) { _ in
            while true {
                lock.lock()
                guard next < plans.count, firstError == nil else { lock.unlock(); return }
                let p = plans[next]
                next += 1
                lock.unlock()
                do {
                    try Self.renderVideo(p, dir: videoDir, renderer: renderer, fps: fps, encode: encodeFn)
                } catch {
                    lock.lock(); if firstError == nil { firstError = error }; lock.unlock()
                    return
                }
                lock.lock(); done += 1; let d = done; lock.unlock()
                progress?(d, plans.count)
            }
        }
        if let firstError { throw firstError }
        var manifest = ""
        var database: [String: Any] = [:]
        for p in plans {
            let entry: [String: Any] = ["id": p.id, "video": "videos/\(p.id).mp4", "transcript": "videos/\(p.id).vtt",
                                        "group": p.id, "split": p.split]
            manifest += String(decoding: try JSONSerialization.data(withJSONObject: entry, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self) + "\n"
            let anns: [[String: Any]] = zip(p.steps, p.stepTimes).enumerated().map { i, st in
                let ing = DemoWorld.ingredient(st.0.object)
                var a: [String: Any] = ["id": i, "segment": [Self.round3(st.1.start), Self.round3(st.1.end)],
                                        "sentence": "\(st.0.verb.rawValue) the \(ing.plural)", "verb": st.0.verb.rawValue, "noun": ing.plural]
                if let track = p.sound, i < track.steps.count {
                    a["sound"] = track.steps[i].verb.map { $0.rawValue as Any } ?? NSNull()
                    a["sound_kind"] = track.steps[i].kind.rawValue
                }
                return a
            }
            let subset = ["train": "training", "val": "validation", "test": "testing"][p.split]!
            database[p.id] = ["subset": subset, "duration": Self.round3(p.duration), "dish": p.dish, "annotations": anns]
        }
        try AtomicFile.write(manifest, to: (out as NSString).appendingPathComponent("manifest.jsonl"))
        let ann = try JSONSerialization.data(withJSONObject: ["database": database], options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        try AtomicFile.write(ann, to: (out as NSString).appendingPathComponent("annotations.json"))
        let labels: [String: Any] = ["verbs": DemoWorld.Verb.allCases.map(\.rawValue),
                                     "nouns": DemoWorld.ingredients.map(\.plural)]
        try AtomicFile.write(try JSONSerialization.data(withJSONObject: labels, options: [.sortedKeys, .prettyPrinted]),
                             to: (out as NSString).appendingPathComponent("labels.json"))
    }

    /// Renders one video and its narration (skipping a video file that is already complete).
    static func renderVideo(_ p: VideoPlan, dir: String, renderer: DemoRenderer, fps: Int, encode: Encode) throws {
        let videoPath = (dir as NSString).appendingPathComponent(p.id + ".mp4")
        let vttPath = (dir as NSString).appendingPathComponent(p.id + ".vtt")
        if !FileManager.default.fileExists(atPath: videoPath) {
            let frames = Int((p.duration * Double(fps)).rounded(.down))
            let sound = p.sound.map { DemoSound.render($0, stepTimes: p.stepTimes, seconds: Double(frames) / Double(fps)) }
            try encode(videoPath, renderer.width, renderer.height, fps, frames, sound) { i, buf in
                let time = Double(i) / Double(fps)
                let stepIndex = p.stepTimes.lastIndex { $0.start <= time } ?? 0
                let (s, e) = p.stepTimes[stepIndex]
                // Before the first step the scene holds its first pose; after the last, its last.
                let u = time < p.stepTimes[0].start ? 0 : Float(max(0, min((time - s) / (e - s), 0.999)))
                renderer.render(step: p.steps[stepIndex], progress: u, frameIndex: i, look: p.look, out: buf)
            }
        }
        try AtomicFile.write(Narrator.webVTT(p.lines), to: vttPath)
    }

    static func round3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }
}
