import Demo
import Features
import Foundation
import Media
import Tensor
import XCTest
import TestSupport

/// The demo corpus' sound (issue 17, item 7; `Sources/Demo/DemoSound.swift`): every video has an
/// AAC stream that AudioReader decodes to the synthesized track, the same seed gives the same
/// sound, the sounds of two verbs are told apart by the audio descriptor, and adding sound leaves
/// the frames, narration and splits as they were.
final class DemoSoundTests: XCTestCase {
    /// One small corpus with sound for the tests that only read it.
    nonisolated(unsafe) static var shared: (dir: String, plans: [DemoCorpus.VideoPlan])?

    static func options(videos: Int, seed: UInt64 = 7) -> DemoCorpus.Options {
        var o = DemoCorpus.Options()
        o.videos = videos
        o.seed = seed
        o.width = 32
        o.height = 32
        return o
    }

    func corpus() throws -> (dir: String, plans: [DemoCorpus.VideoPlan]) {
        if let s = Self.shared { return s }
        let dir = NSTemporaryDirectory() + "demo-sound-\(UUID().uuidString)"
        let demo = DemoCorpus(options: Self.options(videos: 12))
        try demo.generate(into: dir, workers: 2, encode: DemoCorpus.encodeH264)
        Self.shared = (dir, demo.plan())
        return Self.shared!
    }

    override class func tearDown() {
        if let s = shared { try? FileManager.default.removeItem(atPath: s.dir) }
        shared = nil
    }

    func testDemoVideosHaveAnAACStreamThatDecodesToTheTrack() throws {
        let (dir, plans) = try corpus()
        for p in plans.prefix(4) {
            let path = dir + "/videos/\(p.id).mp4"
            let reader = try AudioReader(path: path, sampleRate: DemoSound.sampleRate)
            XCTAssertEqual(reader.stream?.codecName, "aac", p.id)
            XCTAssertEqual(reader.stream?.channels, 1, p.id)
            let decoded = try reader.readAll()
            XCTAssertFalse(decoded.isSilent, p.id)
            let frames = Int((p.duration * 10).rounded(.down))
            let seconds = Double(frames) / 10
            XCTAssertEqual(decoded.seconds, seconds, accuracy: 0.07, p.id)
            // On the file's time line the decoded samples are the synthesized ones through AAC:
            // the residual is well below the signal.
            guard let track = p.sound else { return XCTFail("no sound planned") }
            let synth = DemoSound.render(track, stepTimes: p.stepTimes, seconds: seconds)
            let got = decoded.samples(from: 0, count: synth.count)
            var signal = 0.0, residual = 0.0, shifted = 0.0
            for i in 100..<(synth.count - 100) {
                signal += Double(synth[i] * synth[i])
                residual += Double((got[i] - synth[i]) * (got[i] - synth[i]))
                shifted += Double((got[i] - synth[i + 40]) * (got[i] - synth[i + 40]))
            }
            XCTAssertLessThan(residual, 0.1 * signal, "\(p.id): decoded audio is not the track")
            XCTAssertLessThan(residual, 0.5 * shifted, "\(p.id): decoded audio is off by samples")
        }
    }

    func testSameSeedSameSoundAndFiles() throws {
        let a = NSTemporaryDirectory() + "demo-sound-a-\(UUID().uuidString)"
        let b = NSTemporaryDirectory() + "demo-sound-b-\(UUID().uuidString)"
        defer { for d in [a, b] { try? FileManager.default.removeItem(atPath: d) } }
        let options = Self.options(videos: 2)
        try DemoCorpus(options: options).generate(into: a, workers: 1, encode: DemoCorpus.encodeH264)
        try DemoCorpus(options: options).generate(into: b, workers: 2, encode: DemoCorpus.encodeH264)
        for p in DemoCorpus(options: options).plan() {
            let fa = try Data(contentsOf: URL(fileURLWithPath: a + "/videos/\(p.id).mp4"))
            let fb = try Data(contentsOf: URL(fileURLWithPath: b + "/videos/\(p.id).mp4"))
            XCTAssertEqual(fa, fb, "\(p.id): the same seed wrote different files")
            let sa = try AudioReader(path: a + "/videos/\(p.id).mp4").readAll().samples
            let sb = try AudioReader(path: b + "/videos/\(p.id).mp4").readAll().samples
            XCTAssertEqual(sa, sb, p.id)
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: a + "/annotations.json")),
                       try Data(contentsOf: URL(fileURLWithPath: b + "/annotations.json")))
        // The synthesized tracks: equal for the seed, different for another seed.
        let p1 = DemoCorpus(options: options).plan()[0], p2 = DemoCorpus(options: Self.options(videos: 2, seed: 8)).plan()[0]
        let t1 = DemoSound.render(p1.sound!, stepTimes: p1.stepTimes, seconds: 3)
        XCTAssertEqual(t1, DemoSound.render(p1.sound!, stepTimes: p1.stepTimes, seconds: 3))
        XCTAssertNotEqual(t1, DemoSound.render(p2.sound!, stepTimes: p2.stepTimes, seconds: 3))
    }

    /// The built-in audio descriptor (log-mel mean and deviation) of 1 s from the middle of each
    /// matching `cut` and `stir` step of the corpus, decoded from the MP4s: a chopping clip is
    /// farther from every stirring clip than from any other chopping clip.
    func testChoppingAndStirringClipsAreToldApartByTheAudioDescriptor() throws {
        let (dir, plans) = try corpus()
        let descriptor = try AudioDescriptor()
        var cut: [[Float]] = [], stir: [[Float]] = []
        for p in plans {
            let decoded = try AudioReader(path: dir + "/videos/\(p.id).mp4").readAll()
            for (k, step) in p.steps.enumerated() where p.sound?.steps[k].kind == .matching {
                let mid = (p.stepTimes[k].start + p.stepTimes[k].end) / 2
                let d = descriptor.compute(decoded.samples(from: mid - 0.5, to: mid + 0.5))
                if step.verb == .cut { cut.append(d) } else if step.verb == .stir { stir.append(d) }
            }
        }
        XCTAssertGreaterThanOrEqual(cut.count, 3)
        XCTAssertGreaterThanOrEqual(stir.count, 3)
        func distance(_ a: [Float], _ b: [Float]) -> Double {
            zip(a, b).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }.squareRoot()
        }
        var within = 0.0
        for i in 0..<cut.count { for j in 0..<cut.count where j != i { within = max(within, distance(cut[i], cut[j])) } }
        var across = Double.infinity
        for c in cut { for s in stir { across = min(across, distance(c, s)) } }
        XCTAssertGreaterThan(across, within, "closest chop–stir pair \(across), farthest chop–chop pair \(within)")
    }

    /// Sound only adds an audio stream: the frames (pixels and times), the narration, the
    /// manifest and the annotations (without their sound fields) are those of the silent corpus.
    func testSoundLeavesFramesAndTextUnchanged() throws {
        let withSound = NSTemporaryDirectory() + "demo-sound-on-\(UUID().uuidString)"
        let without = NSTemporaryDirectory() + "demo-sound-off-\(UUID().uuidString)"
        defer { for d in [withSound, without] { try? FileManager.default.removeItem(atPath: d) } }
        var silent = Self.options(videos: 3)
        silent.sound = nil
        try DemoCorpus(options: Self.options(videos: 3)).generate(into: withSound, workers: 2, encode: DemoCorpus.encodeH264)
        try DemoCorpus(options: silent).generate(into: without, workers: 2, encode: DemoCorpus.encodeH264)
        XCTAssertEqual(try String(contentsOfFile: withSound + "/manifest.jsonl", encoding: .utf8),
                       try String(contentsOfFile: without + "/manifest.jsonl", encoding: .utf8))
        for p in DemoCorpus(options: silent).plan() {
            XCTAssertEqual(try String(contentsOfFile: withSound + "/videos/\(p.id).vtt", encoding: .utf8),
                           try String(contentsOfFile: without + "/videos/\(p.id).vtt", encoding: .utf8))
            XCTAssertNil(try AudioReader(path: without + "/videos/\(p.id).mp4").stream)
            var frames: [[(pixels: [UInt8], time: Double)]] = []
            for d in [withSound, without] {
                var f: [(pixels: [UInt8], time: Double)] = []
                try VideoReader(path: d + "/videos/\(p.id).mp4").forEachFrame(fps: FrameRate(10), width: 32, height: 32) {
                    f.append((Array($0.pixels), $0.time))
                }
                frames.append(f)
            }
            XCTAssertEqual(frames[0].count, frames[1].count, p.id)
            XCTAssertGreaterThan(frames[0].count, 10)
            for (x, y) in zip(frames[0], frames[1]) {
                XCTAssertEqual(x.time, y.time, p.id)
                XCTAssertEqual(x.pixels, y.pixels, p.id)
            }
        }
        func annotations(_ dir: String) throws -> NSDictionary {
            let root = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/annotations.json"))) as! [String: Any]
            var db = root["database"] as! [String: [String: Any]]
            for (id, var v) in db {
                v["annotations"] = (v["annotations"] as! [[String: Any]]).map { a -> [String: Any] in
                    var a = a; a["sound"] = nil; a["sound_kind"] = nil; return a
                }
                db[id] = v
            }
            return db as NSDictionary
        }
        XCTAssertEqual(try annotations(withSound), try annotations(without))
    }

    /// The documented rates (10% misleading, 10% silent) over many planned steps; a misleading
    /// step plays another verb's sound, a silent one none, the annotations say which.
    func testMisleadingAndSilentRates() throws {
        let plans = DemoCorpus(options: Self.options(videos: 600)).plan()
        var counts: [DemoSound.Kind: Int] = [:], total = 0
        for p in plans {
            guard let track = p.sound else { return XCTFail("no sound planned") }
            XCTAssertEqual(track.steps.count, p.steps.count)
            for (s, heard) in zip(p.steps, track.steps) {
                counts[heard.kind, default: 0] += 1
                total += 1
                switch heard.kind {
                case .matching: XCTAssertEqual(heard.verb, s.verb)
                case .misleading: XCTAssertNotNil(heard.verb); XCTAssertNotEqual(heard.verb, s.verb)
                case .silent: XCTAssertNil(heard.verb)
                }
            }
        }
        XCTAssertGreaterThan(total, 2500)
        XCTAssertEqual(Double(counts[.misleading] ?? 0) / Double(total), 0.1, accuracy: 0.02)
        XCTAssertEqual(Double(counts[.silent] ?? 0) / Double(total), 0.1, accuracy: 0.02)
        let (dir, small) = try corpus()
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/annotations.json"))) as! [String: Any]
        let db = root["database"] as! [String: [String: Any]]
        for p in small {
            let anns = db[p.id]!["annotations"] as! [[String: Any]]
            for (a, heard) in zip(anns, p.sound!.steps) {
                XCTAssertEqual(a["sound_kind"] as? String, heard.kind.rawValue)
                XCTAssertEqual(a["sound"] as? String, heard.verb?.rawValue)
            }
        }
    }
}
