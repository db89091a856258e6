import ArgumentParser
import Features
import Foundation
import Media
import Tensor

/// `videobert audio`: one file's audio → a log-mel spectrogram, float32 [frames, n_mels] in .npy,
/// and a .json beside it with every setting.
struct AudioCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audio",
        abstract: "Log-mel spectrogram of a file's audio (.npy float32 [frames, n_mels] + .json with every setting).",
        discussion: """
        The audio stream (any FFmpeg decodes; the one with most channels) is mixed to mono and resampled to sample_rate with libswresample, giving the samples of `ffmpeg -i VIDEO -ac 1 -ar SR -f f32le -`. Then librosa's melspectrogram (periodic Hann window, |STFT|^power, mel filter bank) and the log, through sgemm; on the same samples it equals librosa 0.11 within 1e-3 on the log scale.

        Settings (--set KEY=VALUE, repeatable; defaults are VGGish's front end):
          sample_rate=16000 n_fft=512 win_length=400 hop_length=160 n_mels=64
          f_min=125 f_max=7500 mel_scale=htk (htk|slaney) norm=null (null|slaney)
          power=1 center=false pad_mode=constant (constant|reflect|edge|symmetric)
          log_offset=0.01 log=log (log|log10|db)
          log: ln(S + log_offset); log10: log10(S + log_offset);
          db: 20/power * log10(max(S, log_offset))

        OUT.json holds the settings, the stream read (codec, channels, rate, layout; null when the file has no audio stream), start_time (seconds from the start of the file of the first sample), hop_seconds, frames, samples, silent. Frame i starts at sample i*hop_length (minus n_fft/2 when center). A file without audio writes 0 frames; silent audio writes its frames and silent: true. A damaged audio stream is an error naming the file and time unless --tolerant.

        Example:
          videobert audio talk.mp4 --out mel.npy --set n_mels=80 --set mel_scale=slaney
          python3 -c "import numpy; print(numpy.load('mel.npy').shape)"
        """
    )

    /// Most values the .npy holds (1 GiB of float32).
    static let maxOutputValues = 1 << 28

    @Argument(help: "The video or audio file (any container and codec the installed FFmpeg decodes).")
    var video: String

    @Option(help: "The .npy file to write; the settings go to the same name with .json. Both are written under a temporary name, then renamed.")
    var out: String

    @Option(name: .customLong("set"), help: "A log-mel setting, e.g. --set n_mels=80 (repeatable; the keys of the .json).")
    var settings: [String] = []

    @Option(help: "Refuse files with more audio than this many seconds (memory: 4 bytes per sample).")
    var maxSeconds: Double = 6 * 3600

    @Flag(help: "Keep the audio that decodes from a damaged file instead of failing.")
    var tolerant = false

    func validate() throws {
        guard out.hasSuffix(".npy") else { throw ValidationError("--out must end in .npy, got '\(out)'") }
        guard maxSeconds > 0, maxSeconds.isFinite else { throw ValidationError("--max-seconds must be positive") }
        do { _ = try parsedSettings() } catch let e as VideoBertError { throw ValidationError(e.message) }
    }

    func parsedSettings() throws -> LogMelSettings {
        var s = LogMelSettings()
        for item in settings {
            guard let eq = item.firstIndex(of: "=") else {
                throw VideoBertError("--set: expected KEY=VALUE, got '\(item)'")
            }
            try s.set(String(item[..<eq]), String(item[item.index(after: eq)...]))
        }
        try s.validate()
        return s
    }

    func run() throws {
        let started = Date()
        let s = try parsedSettings()
        let spectrogram = try LogMelSpectrogram(settings: s)
        let reader = try AudioReader(path: video, sampleRate: s.sampleRate, errorPolicy: tolerant ? .tolerant : .strict)
        let audio = try reader.readAll(maxSeconds: maxSeconds)
        let frames = s.frameCount(samples: audio.samples.count)
        // The output is frames × n_mels floats: bounded (a hop of 1 with 1024 mels would be 1024× the audio).
        guard frames * s.nMels <= Self.maxOutputValues else {
            throw VideoBertError("the spectrogram would have \(frames) × \(s.nMels) values (more than \(Self.maxOutputValues)); raise hop_length or lower n_mels", file: video)
        }
        let mel = spectrogram.compute(audio.samples)

        struct Stream: Encodable {
            var codec: String
            var channels: Int
            var sample_rate: Int
            var channel_layout: String
        }
        struct Info: Encodable {
            var file: String
            var settings: LogMelSettings
            var stream: Stream?
            var frames: Int
            var n_mels: Int
            var samples: Int
            var start_time: Double
            var hop_seconds: Double
            var silent: Bool
            var decode_errors: Int

            enum CodingKeys: String, CodingKey {
                case file, settings, stream, frames, n_mels, samples, start_time, hop_seconds, silent, decode_errors
            }

            /// Every key, `stream` as null for a file without audio.
            func encode(to encoder: Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(file, forKey: .file)
                try c.encode(settings, forKey: .settings)
                try c.encode(stream, forKey: .stream)
                try c.encode(frames, forKey: .frames)
                try c.encode(n_mels, forKey: .n_mels)
                try c.encode(samples, forKey: .samples)
                try c.encode(start_time, forKey: .start_time)
                try c.encode(hop_seconds, forKey: .hop_seconds)
                try c.encode(silent, forKey: .silent)
                try c.encode(decode_errors, forKey: .decode_errors)
            }
        }
        let info = Info(file: video, settings: s,
                        stream: audio.stream.map { Stream(codec: $0.codecName, channels: $0.channels,
                                                          sample_rate: $0.sampleRate, channel_layout: $0.channelLayout) },
                        frames: frames, n_mels: s.nMels, samples: audio.samples.count,
                        start_time: audio.startTime, hop_seconds: Double(s.hopLength) / Double(s.sampleRate),
                        silent: audio.isSilent, decode_errors: audio.decodeErrors)
        let jsonPath = String(out.dropLast(4)) + ".json"
        try mel.withUnsafeBytes { try NPY.write(raw: $0, dtype: .float32, shape: [frames, s.nMels], to: out) }
        try AtomicFile.write(String(decoding: try JSON.encode(info), as: UTF8.self) + "\n", to: jsonPath)
        if audio.stream == nil {
            FileHandle.standardError.write(Data("note: \(video): no audio stream; wrote 0 frames\n".utf8))
        }

        struct Line: Encodable {
            var file: String
            var out: String
            var frames: Int
            var n_mels: Int
            var audio_seconds: Double
            var has_audio: Bool
            var silent: Bool
            var seconds: Double
            var decode_errors: Int
        }
        print(try JSON.string(Line(file: video, out: out, frames: frames, n_mels: s.nMels,
                                   audio_seconds: (audio.seconds * 1000).rounded() / 1000, has_audio: audio.hasAudio,
                                   silent: audio.isSilent,
                                   seconds: (Date().timeIntervalSince(started) * 1000).rounded() / 1000,
                                   decode_errors: audio.decodeErrors)))
    }
}
