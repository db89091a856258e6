import Foundation
import XCTest
@testable import Media
import Tensor

extension FFmpegCLI {
    /// `ffmpeg -i FILE -ac 1 -ar SR -f f32le -`: the reference samples (mono float32).
    static func monoSamples(_ file: String, sampleRate: Int) throws -> [Float] {
        guard let executable else {
            throw VideoBertError("the ffmpeg CLI is not on PATH; run tools/setup (it is the reference for audio parity)")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = ["-nostdin", "-v", "error", "-i", file, "-vn", "-ac", "1", "-ar", "\(sampleRate)", "-f", "f32le", "-"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        if p.terminationStatus != 0 { throw VideoBertError("ffmpeg failed (\(p.terminationStatus))", file: file) }
        return data.withUnsafeBytes { raw in Array(raw.bindMemory(to: Float.self)) }
    }
}

/// `AudioReader` against `ffmpeg -i X -ac 1 -ar SR -f f32le -` on files the tests write, and the
/// documented cases: no audio stream, silence, 7.1, 8 kHz and 96 kHz sources, truncated files.
final class AudioReaderTests: XCTestCase {
    var scratch: ScratchFolder!
    override func setUpWithError() throws { scratch = try ScratchFolder() }
    override func tearDown() { scratch?.cleanUp() }

    /// Our samples equal the CLI's: the same count, and every sample within 1e-6 (both run
    /// libswresample with its default options; measured difference 0).
    @discardableResult
    func assertAudioParity(_ file: String, sampleRate: Int = 16_000, line: UInt = #line) throws -> DecodedAudio {
        let ours = try AudioReader(path: file, sampleRate: sampleRate).readAll()
        let reference = try FFmpegCLI.monoSamples(file, sampleRate: sampleRate)
        XCTAssertGreaterThan(reference.count, 0, "ffmpeg decoded no audio from \(file)", line: line)
        XCTAssertEqual(ours.samples.count, reference.count, "sample count vs ffmpeg CLI (\(file))", line: line)
        var worst: Float = 0
        for i in 0..<min(ours.samples.count, reference.count) { worst = max(worst, abs(ours.samples[i] - reference[i])) }
        XCTAssertLessThanOrEqual(worst, 1e-6, "largest difference vs ffmpeg CLI (\(file))", line: line)
        XCTAssertEqual(ours.sampleRate, sampleRate, line: line)
        return ours
    }

    func testVideoWithStereoAACMatchesTheCLI() throws {
        let video = scratch.file("talk.mp4")
        try TestPattern.writeVideo(path: video, width: 32, height: 24, fps: FrameRate(25), seconds: 2,
                                   audio: AudioTrack(seconds: 2, sampleRate: 44_100, channels: 2))
        let audio = try assertAudioParity(video)
        XCTAssertEqual(audio.stream?.codecName, "aac")
        XCTAssertEqual(audio.stream?.channels, 2)
        XCTAssertEqual(audio.stream?.sampleRate, 44_100)
        XCTAssertEqual(audio.stream?.channelLayout, "stereo")
        XCTAssertEqual(audio.seconds, 2, accuracy: 0.05)
        XCTAssertGreaterThan(audio.peak, 0.2)
        XCTAssertFalse(audio.isSilent)
        // Other output rates too.
        try assertAudioParity(video, sampleRate: 22_050)
        try assertAudioParity(video, sampleRate: 8_000)
    }

    func testAudioOnlyFilesMatchTheCLI() throws {
        for name in ["tone.wav", "tone.mka", "tone.m4a"] {
            let path = scratch.file(name)
            try AudioFileWriter.write(path: path, track: AudioTrack(seconds: 1.3, sampleRate: 22_050, frequency: 330))
            let audio = try assertAudioParity(path)
            XCTAssertEqual(audio.stream?.channels, 1, name)
            XCTAssertEqual(audio.seconds, 1.3, accuracy: 0.05, name)
        }
    }

    /// A 440 Hz tone resampled from 16 kHz (same rate: only the format changes) is the sine itself.
    func testSameRateIsTheSignalItself() throws {
        let path = scratch.file("tone.wav")
        try AudioFileWriter.write(path: path, track: AudioTrack(seconds: 0.5, sampleRate: 16_000, frequency: 440))
        let audio = try assertAudioParity(path)
        XCTAssertEqual(audio.samples.count, 8_000)
        for i in stride(from: 0, to: 8_000, by: 97) {
            let expected = Float(Int16(0.3 * sin(2 * Double.pi * 440 * Double(i) / 16_000) * 32767)) / 32768
            XCTAssertEqual(audio.samples[i], expected, accuracy: 1e-6)
        }
    }

    func testSevenOneStreamIsMixedToMono() throws {
        for name in ["surround.mkv", "surround.m4a"] {
            let path = scratch.file(name)
            try AudioFileWriter.write(path: path, track: AudioTrack(seconds: 1, sampleRate: 48_000, channels: 8))
            let audio = try assertAudioParity(path)
            XCTAssertEqual(audio.stream?.channels, 8, name)
            // Matroska PCM stores a channel count, not a layout: mixed as FFmpeg's default 7.1 (as the CLI).
            XCTAssertEqual(audio.stream?.channelLayout, name.hasSuffix(".mkv") ? "8 channels" : "7.1", name)
            XCTAssertFalse(audio.isSilent, name)
        }
    }

    func testLowAndHighRateSources() throws {
        for rate in [8_000, 96_000] {
            let path = scratch.file("tone-\(rate).wav")
            try AudioFileWriter.write(path: path, track: AudioTrack(seconds: 1, sampleRate: rate, frequency: 1_000))
            let audio = try assertAudioParity(path)
            XCTAssertEqual(audio.stream?.sampleRate, rate)
            XCTAssertEqual(audio.samples.count, 16_000, accuracy: 32)
            // Upsampling to 96 kHz output as well.
            try assertAudioParity(path, sampleRate: 96_000)
        }
    }

    func testVideoOnlyFileHasNoAudio() throws {
        let video = scratch.file("silent-film.mp4")
        try TestPattern.writeVideo(path: video, width: 32, height: 24, fps: FrameRate(25), seconds: 1)
        let reader = try AudioReader(path: video)
        XCTAssertNil(reader.stream)
        let audio = try reader.readAll()
        XCTAssertFalse(audio.hasAudio)
        XCTAssertTrue(audio.isSilent)
        XCTAssertEqual(audio.samples.count, 0)
        // Cutting a clip out of no audio gives zeros of the clip's length.
        XCTAssertEqual(audio.samples(from: 0.5, to: 1.0), [Float](repeating: 0, count: 8_000))
    }

    func testSilentTrack() throws {
        let path = scratch.file("quiet.m4a")
        try AudioFileWriter.write(path: path, track: AudioTrack(seconds: 1, sampleRate: 16_000, amplitude: 0))
        let audio = try assertAudioParity(path)
        XCTAssertTrue(audio.hasAudio)
        XCTAssertTrue(audio.isSilent)
        XCTAssertGreaterThan(audio.samples.count, 15_000)
    }

    /// Audio that starts late sits at its time on the file's time line; clips cut by time.
    func testTimestampsPlaceTheSamples() throws {
        let video = scratch.file("late.mkv")
        try TestPattern.writeVideo(path: video, width: 32, height: 24, fps: FrameRate(25), seconds: 2,
                                   audio: AudioTrack(seconds: 1, startTime: 0.5, sampleRate: 16_000, frequency: 500))
        let audio = try AudioReader(path: video).readAll()
        XCTAssertEqual(audio.startTime, 0.5, accuracy: 1e-3)
        XCTAssertEqual(audio.samples.count, 16_000)
        // The clip [0.25, 0.75): silence until 0.5 s, then the first 0.25 s of the tone.
        let clip = audio.samples(from: 0.25, to: 0.75)
        XCTAssertEqual(clip.count, 8_000)
        XCTAssertTrue(clip[0..<4_000].allSatisfy { $0 == 0 })
        XCTAssertEqual(Array(clip[4_000...]), Array(audio.samples[0..<4_000]))
        // Past the end: zeros.
        XCTAssertTrue(audio.samples(from: 1.4, to: 1.6)[1_600...].allSatisfy { $0 == 0 })
        XCTAssertEqual(audio.samples(from: 1.0, to: 1.0), [])
    }

    func testTruncatedMP4() throws {
        let video = scratch.file("whole.mp4")
        try TestPattern.writeVideo(path: video, width: 32, height: 24, fps: FrameRate(25), seconds: 2,
                                   audio: AudioTrack(seconds: 2, sampleRate: 16_000))
        let data = try Data(contentsOf: URL(fileURLWithPath: video))
        let cut = scratch.file("cut.mp4")
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: cut))
        let message = failure { _ = try AudioReader(path: cut).readAll() }
        XCTAssertTrue(message.hasPrefix(cut + ": "), message)
        XCTAssertTrue(message.contains("truncated") && message.contains(" s"), message)
        let partial = try AudioReader(path: cut, errorPolicy: .tolerant).readAll()
        XCTAssertGreaterThan(partial.decodeErrors, 0)
        XCTAssertLessThan(partial.samples.count, 32_000)
    }

    func testTruncatedMatroskaAudio() throws {
        let path = scratch.file("whole.mka")
        try AudioFileWriter.write(path: path, track: AudioTrack(seconds: 3, sampleRate: 16_000))
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let cut = scratch.file("cut.mka")
        try data.prefix(data.count * 6 / 10).write(to: URL(fileURLWithPath: cut))
        let message = failure { _ = try AudioReader(path: cut).readAll() }
        XCTAssertTrue(message.hasPrefix(cut + ": ") && message.contains("truncated"), message)
        XCTAssertTrue(message.contains("audio read up to"), message)
        let partial = try AudioReader(path: cut, errorPolicy: .tolerant).readAll()
        XCTAssertGreaterThan(partial.samples.count, 0)
        XCTAssertLessThan(partial.samples.count, 48_000)
        // What decodes equals what the CLI decodes from the cut file.
        let reference = try FFmpegCLI.monoSamples(cut, sampleRate: 16_000)
        XCTAssertEqual(partial.samples.count, reference.count)
    }

    func testBadInput() throws {
        XCTAssertTrue(failure { _ = try AudioReader(path: scratch.file("missing.wav")) }.contains("no such file"))
        let empty = scratch.file("empty.wav")
        XCTAssertTrue(FileManager.default.createFile(atPath: empty, contents: Data()))
        XCTAssertTrue(failure { _ = try AudioReader(path: empty) }.contains("empty file"))
        // A FIFO is named, never opened (opening would wait for a writer); a folder too.
        let fifo = scratch.file("pipe.wav")
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        XCTAssertTrue(failure { _ = try AudioReader(path: fifo) }.contains("FIFO"))
        let folder = scratch.file("folder.wav")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        XCTAssertTrue(failure { _ = try AudioReader(path: folder) }.contains("is a folder, not a media file"))
        let junk = scratch.file("junk.wav")
        var rng = SeededRNG(seed: 3)
        try Data((0..<5_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }).write(to: URL(fileURLWithPath: junk))
        XCTAssertTrue(failure { _ = try AudioReader(path: junk).readAll() }.hasPrefix(junk + ": "))
        let tone = scratch.file("tone.wav")
        try AudioFileWriter.write(path: tone, track: AudioTrack(seconds: 0.2))
        XCTAssertTrue(failure { _ = try AudioReader(path: tone, sampleRate: 0) }.contains("sample rate"))
        XCTAssertTrue(failure { _ = try AudioReader(path: tone).readAll(maxSeconds: 0.1) }.contains("more than 0.1 s"))
        let reader = try AudioReader(path: tone)
        _ = try reader.readAll()
        XCTAssertTrue(failure { _ = try reader.readAll() }.contains("once"))
    }

    private func failure(_ body: () throws -> Void) -> String {
        do { try body() } catch { return "\(error)" }
        XCTFail("expected an error")
        return ""
    }
}
