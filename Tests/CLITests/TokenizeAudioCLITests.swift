import Foundation
import Media
import Tensor
import TestSupport
import XCTest

/// `videobert tokenize` with `audio.enabled`: a second vocabulary of audio words, and the text and
/// visual arrays exactly as without audio.
final class TokenizeAudioCLITests: XCTestCase {
    /// Five 4 s videos with transcripts: three with a tone (two pitches), two without audio.
    /// Returns the tokenize arguments without --out.
    func makeCorpus(_ dir: String) throws -> [String] {
        let videos = dir + "/videos"
        try FileManager.default.createDirectory(atPath: videos, withIntermediateDirectories: true)
        // Three videos with a tone each (two pitches), two without an audio stream.
        let tracks: [AudioTrack?] = [AudioTrack(seconds: 4, frequency: 440), nil, AudioTrack(seconds: 4, frequency: 2_000),
                                     nil, AudioTrack(seconds: 4, sampleRate: 44_100, frequency: 440, channels: 2)]
        for (i, track) in tracks.enumerated() {
            try TestPattern.writeVideo(path: videos + "/v\(i).mp4", width: 32, height: 32, fps: FrameRate(10), seconds: 4,
                                       audio: track, seed: i)
            try """
            WEBVTT

            00:00:00.200 --> 00:00:01.800
            we chop the onion number \(i).

            00:00:02.000 --> 00:00:03.800
            then stir it in the pan.

            """.write(toFile: videos + "/v\(i).vtt", atomically: true, encoding: .utf8)
        }
        return ["tokenize", "--corpus", videos, "--recipe", Repository.root + "/Recipes/tokenize-tiny.yaml",
                "--set", "text.vocab=" + Repository.root + "/Vocab/bert-base-uncased.txt"]
    }

    static let sharedArrays = ["text_ids", "text_offsets", "visual_ids", "visual_offsets", "segment_video", "segment_times",
                               "segment_clips", "clip_words", "clip_video", "clip_times"]

    func testAudioWordsLeaveTextAndVideoUnchanged() throws {
        let dir = NSTemporaryDirectory() + "tokaudio-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = try makeCorpus(dir)
        let plain = try CLI.run(base + ["--out", dir + "/plain"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        let withAudio = try CLI.run(base + ["--out", dir + "/audio", "--set", "audio.enabled=true",
                                            "--set", "audio.branching=2", "--set", "audio.depth=1", "--set", "store.audio=true"])
        XCTAssertEqual(withAudio.status, 0, withAudio.stderr)

        for name in Self.sharedArrays {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/plain/\(name).npy")),
                           try Data(contentsOf: URL(fileURLWithPath: dir + "/audio/\(name).npy")), name)
        }
        func index(_ which: String) throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/\(which)/index.json"))) as! [String: Any]
        }
        let plainIndex = try index("plain"), audioIndex = try index("audio")
        XCTAssertNil(plainIndex["audio_vocab"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/plain/clip_audio_words.npy"))
        let vocab = try XCTUnwrap(audioIndex["audio_vocab"] as? [String: Any])
        XCTAssertEqual(vocab["words"] as? Int, 2)
        XCTAssertEqual(vocab["dim"] as? Int, 128)
        XCTAssertEqual(vocab["folder"] as? String, "audio_vocab")
        XCTAssertTrue((audioIndex["extras"] as? [String] ?? []).contains("clip_audio_words"))
        XCTAssertEqual((audioIndex["videos"] as? [[String: Any]])?.count, 5)

        // One audio word per clip; silence (no audio stream) and the tones get different words.
        let header = String(decoding: try Data(contentsOf: URL(fileURLWithPath: dir + "/audio/clip_audio_words.npy")).prefix(128), as: UTF8.self)
        let clips = (audioIndex["counts"] as! [String: Any])["clips"] as! Int
        XCTAssertTrue(header.contains("'shape': (\(clips),)"), header)
        let words = try readInt32NPY(dir + "/audio/clip_audio_words.npy")
        let clipVideo = try readInt32NPY(dir + "/audio/clip_video.npy")
        let byVideo = (audioIndex["videos"] as! [[String: Any]]).map { $0["id"] as! String }
        func wordsOf(_ id: String) -> Set<Int32> {
            let v = Int32(byVideo.firstIndex(of: id)!)
            return Set(zip(words, clipVideo).filter { $0.1 == v }.map(\.0))
        }
        XCTAssertEqual(wordsOf("v1").count, 1, "a video without audio has the one word of silence")
        XCTAssertEqual(wordsOf("v1"), wordsOf("v3"))
        XCTAssertTrue(wordsOf("v0").isDisjoint(with: wordsOf("v1")), "\(wordsOf("v0")) vs \(wordsOf("v1"))")
        XCTAssertTrue(wordsOf("v4").isDisjoint(with: wordsOf("v1")))

        // store.audio: each clip's log-mel spectrogram, 0.5 s clips → 1 + (8000 − 512) / 160 = 47 frames × 64 bands.
        let audioHeader = String(decoding: try Data(contentsOf: URL(fileURLWithPath: dir + "/audio/clip_audio.npy")).prefix(128), as: UTF8.self)
        XCTAssertTrue(audioHeader.contains("'shape': (\(clips), 47, 64)"), audioHeader)
        XCTAssertTrue((audioIndex["extras"] as? [String] ?? []).contains("clip_audio"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/plain/clip_audio.npy"))
        let bad = try CLI.run(base + ["--out", dir + "/bad", "--set", "store.audio=true"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains("store.audio needs audio.enabled"), bad.stderr)

        // The corpus reads back (inspect) with its audio words.
        let inspect = try CLI.run(["inspect", dir + "/audio", "--limit", "1"])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(inspect.stdout.contains("audio words 2 (2^1), descriptor dim 128, clip_audio \(clips)×47×64"), inspect.stdout)
    }

    /// Imported audio features (`audio.source: npy`): a clip's feature is the overlap-weighted
    /// mean of the rows it overlaps; two kinds of videos get two words.
    func testImportedAudioFeatures() throws {
        let dir = NSTemporaryDirectory() + "tokaudionpy-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = try makeCorpus(dir)
        try FileManager.default.createDirectory(atPath: dir + "/vggish", withIntermediateDirectories: true)
        for v in 0..<5 {
            // 0.96 s per row (VGGish), 4 rows; even videos near (1, 0, 0), odd near (0, 1, 0).
            var rows: [Float] = []
            for r in 0..<4 { rows += v % 2 == 0 ? [1, 0, 0.01 * Float(r)] : [0, 1, 0.01 * Float(r)] }
            try NPY.write(rows, shape: [4, 3], to: dir + "/vggish/v\(v).npy")
        }
        let plain = try CLI.run(base + ["--out", dir + "/plain"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        let r = try CLI.run(base + ["--out", dir + "/npy", "--set", "audio.enabled=true", "--set", "audio.source=npy",
                                    "--set", "audio.dir=" + dir + "/vggish", "--set", "audio.seconds_per_row=0.96",
                                    "--set", "audio.branching=2", "--set", "audio.depth=1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        for name in Self.sharedArrays {
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/plain/\(name).npy")),
                           try Data(contentsOf: URL(fileURLWithPath: dir + "/npy/\(name).npy")), name)
        }
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/npy/index.json"))) as! [String: Any]
        XCTAssertEqual((index["audio_vocab"] as? [String: Any])?["dim"] as? Int, 3)
        let words = try readInt32NPY(dir + "/npy/clip_audio_words.npy")
        let clipVideo = try readInt32NPY(dir + "/npy/clip_video.npy")
        let ids = (index["videos"] as! [[String: Any]]).map { $0["id"] as! String }
        var byParity: [Int: Set<Int32>] = [0: [], 1: []]
        var clipsPast = 0
        let times = try readFloat32NPY(dir + "/npy/clip_times.npy")
        for (c, (w, v)) in zip(words, clipVideo).enumerated() {
            // Clips past 3.84 s (4 × 0.96) have no row: zeros, whatever their word.
            if Double(times[2 * c]) >= 3.84 { clipsPast += 1; continue }
            let n = Int(ids[Int(v)].dropFirst())!
            byParity[n % 2]!.insert(w)
        }
        XCTAssertEqual(byParity[0]!.count, 1, "\(byParity)")
        XCTAssertEqual(byParity[1]!.count, 1, "\(byParity)")
        XCTAssertNotEqual(byParity[0], byParity[1])

        // A missing feature file fails that video, naming the file.
        try FileManager.default.removeItem(atPath: dir + "/vggish/v2.npy")
        let missing = try CLI.run(base + ["--out", dir + "/missing", "--set", "audio.enabled=true", "--set", "audio.source=npy",
                                          "--set", "audio.dir=" + dir + "/vggish", "--set", "audio.branching=2", "--set", "audio.depth=1"])
        XCTAssertEqual(missing.status, 2, missing.stderr)
        let failures = try String(contentsOfFile: dir + "/missing/failures.jsonl", encoding: .utf8)
        XCTAssertTrue(failures.contains("v2.npy") && failures.contains("no such file"), failures)
    }

    func readFloat32NPY(_ path: String) throws -> [Float] { try NPY.read(path).floats() }

    func readInt32NPY(_ path: String) throws -> [Int32] { try NPY.read(path).values(Int32.self) }
}
