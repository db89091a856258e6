import Features
import Foundation
import Media
import Tensor
import XCTest

/// `videobert audio` end to end: the built binary on files this test encodes.
final class AudioCLITests: XCTestCase {
    var folder: String!

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "/videobert-audio-cli-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() {
        if let folder { try? FileManager.default.removeItem(atPath: folder) }
    }

    func path(_ name: String) -> String { folder + "/" + name }

    /// `ffmpeg -i FILE -ac 1 -ar SR -f f32le -`: the samples the spectrogram is defined on.
    func ffmpegSamples(_ file: String, sampleRate: Int) throws -> [Float] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["ffmpeg", "-nostdin", "-v", "error", "-i", file, "-ac", "1", "-ar", "\(sampleRate)", "-f", "f32le", "-"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "the ffmpeg CLI (installed by tools/setup) must run")
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    func json(_ file: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as? [String: Any])
    }

    func testHelpHasExampleAndSettings() throws {
        let r = try CLI.run(["audio", "--help"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("Example:"), r.stdout)
        for key in LogMelSettings.keys { XCTAssertTrue(r.stdout.contains(key), key) }
    }

    /// The spectrogram of the samples the ffmpeg CLI decodes, with the settings asked for.
    func testWritesTheSpectrogramOfTheCLISamples() throws {
        let video = path("talk.mp4")
        try TestPattern.writeVideo(path: video, width: 32, height: 24, fps: FrameRate(25), seconds: 2,
                                   audio: AudioTrack(seconds: 2, sampleRate: 44_100, channels: 2))
        let out = path("out/talk-mel.npy")  // the folder does not exist yet
        let r = try CLI.run(["audio", video, "--out", out, "--set", "n_mels=40", "--set", "mel_scale=slaney",
                             "--set", "norm=slaney", "--set", "center=true", "--set", "sample_rate=22050",
                             "--set", "f_max=11025", "--set", "log=db", "--set", "power=2", "--set", "log_offset=1e-10"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let line = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let array = try NPY.read(out)
        XCTAssertEqual(array.dtype, .float32)
        XCTAssertEqual(array.shape.count, 2)
        XCTAssertEqual(array.shape[1], 40)
        XCTAssertEqual(line["frames"] as? Int, array.shape[0])
        XCTAssertEqual(line["has_audio"] as? Bool, true)

        let info = try json(path("out/talk-mel.json"))
        let settings = try XCTUnwrap(info["settings"] as? [String: Any])
        XCTAssertEqual(Set(settings.keys), Set(LogMelSettings.keys))
        XCTAssertEqual(settings["n_mels"] as? Int, 40)
        XCTAssertEqual(settings["norm"] as? String, "slaney")
        XCTAssertEqual(settings["n_fft"] as? Int, 512)  // a default
        let stream = try XCTUnwrap(info["stream"] as? [String: Any])
        XCTAssertEqual(stream["channels"] as? Int, 2)
        XCTAssertEqual(stream["codec"] as? String, "aac")
        XCTAssertEqual(info["silent"] as? Bool, false)
        XCTAssertEqual(info["hop_seconds"] as? Double ?? 0, 160.0 / 22_050, accuracy: 1e-12)

        var s = LogMelSettings()
        for (k, v) in [("n_mels", "40"), ("mel_scale", "slaney"), ("norm", "slaney"), ("center", "true"),
                       ("sample_rate", "22050"), ("f_max", "11025"), ("log", "db"), ("power", "2"), ("log_offset", "1e-10")] {
            try s.set(k, v)
        }
        let samples = try ffmpegSamples(video, sampleRate: 22_050)
        XCTAssertEqual(info["samples"] as? Int, samples.count)
        let expected = try LogMelSpectrogram(settings: s).compute(samples)
        let ours = try array.floats()
        XCTAssertEqual(ours.count, expected.count)
        var worst: Float = 0
        for i in 0..<min(ours.count, expected.count) { worst = max(worst, abs(ours[i] - expected[i])) }
        XCTAssertLessThan(worst, 1e-4, "vs the spectrogram of the ffmpeg CLI's samples")
    }

    func testNoAudioAndSilence() throws {
        let video = path("film.mp4")
        try TestPattern.writeVideo(path: video, width: 32, height: 24, fps: FrameRate(25), seconds: 1)
        let out = path("film.npy")
        var r = try CLI.run(["audio", video, "--out", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("no audio stream"), r.stderr)
        XCTAssertEqual(try NPY.read(out).shape, [0, 64])
        let info = try json(path("film.json"))
        XCTAssertTrue(info["stream"] is NSNull)
        XCTAssertEqual(info["silent"] as? Bool, true)

        let quiet = path("quiet.wav")
        try AudioFileWriter.write(path: quiet, track: AudioTrack(seconds: 1, amplitude: 0))
        r = try CLI.run(["audio", quiet, "--out", path("quiet.npy")])
        XCTAssertEqual(r.status, 0, r.stderr)
        let mel = try NPY.read(path("quiet.npy"))
        XCTAssertEqual(mel.shape, [1 + (16_000 - 512) / 160, 64])
        // Silence is log(0 + log_offset) everywhere.
        let values = try mel.floats()
        XCTAssertEqual(values.min() ?? 0, Float(log(0.01)), accuracy: 1e-6)
        XCTAssertEqual(values.max() ?? 0, Float(log(0.01)), accuracy: 1e-6)
        XCTAssertEqual(try json(path("quiet.json"))["silent"] as? Bool, true)
    }

    func testErrors() throws {
        let out = path("x.npy")
        let missing = path("missing.mp4")
        var r = try CLI.run(["audio", missing, "--out", out])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "error: \(missing): no such file\n")

        let whole = path("tone.mka")
        try AudioFileWriter.write(path: whole, track: AudioTrack(seconds: 3))
        let data = try Data(contentsOf: URL(fileURLWithPath: whole))
        let cut = path("cut.mka")
        try data.prefix(data.count * 6 / 10).write(to: URL(fileURLWithPath: cut))
        r = try CLI.run(["audio", cut, "--out", out])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("error: \(cut): ") && r.stderr.contains("truncated") && r.stderr.contains(" s"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no output after an error")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.contains(".tmp") }, [])
        r = try CLI.run(["audio", cut, "--out", out, "--tolerant"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertGreaterThan(try NPY.read(out).shape[0], 0)

        for (args, says) in [(["--set", "n_mels"], "KEY=VALUE"), (["--set", "hop=3"], "unknown log-mel setting"),
                             (["--set", "f_max=9000"], "f_max"), (["--set", "norm=l2"], "norm"),
                             (["--max-seconds", "0"], "--max-seconds")] {
            r = try CLI.run(["audio", whole, "--out", out] + args)
            XCTAssertEqual(r.status, 64, "\(args)")
            XCTAssertTrue(r.stderr.contains(says), r.stderr)
        }
        // An output that would be huge (hop 1, 1024 bands: 1024 values per sample) is refused before it is made.
        let long = path("long.wav")
        try AudioFileWriter.write(path: long, track: AudioTrack(seconds: 20))
        r = try CLI.run(["audio", long, "--out", out, "--set", "hop_length=1", "--set", "n_mels=1024"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("error: \(long): the spectrogram would have"), r.stderr)
        r = try CLI.run(["audio", long, "--out", out, "--max-seconds", "5"])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("more than 5.0 s of audio"), r.stderr)

        r = try CLI.run(["audio", whole, "--out", path("x.bin")])
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains(".npy"), r.stderr)
    }
}
