import ArgumentParser
import Demo
import Foundation
import Tensor

struct DemoCorpusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo-corpus",
        abstract: "Render the built-in demo corpus: cooking videos with narration.",
        discussion: """
        Each video is a dish made in 3–6 steps; each step is a verb (stir, cut, pour, ...) applied \
        to an ingredient, shown by a motion and a look, and narrated like real ASR ("now let's \
        stir the tomatoes", with chatter, typos and timing drift). The steps follow a grammar per \
        dish, so the next step is predictable but not certain. Every video has sound (an AAC \
        stream): each verb its own sound over room noise; 10% of steps play another verb's \
        sound and 10% only the room (annotations.json says which: "sound", "sound_kind").

        Writes videos/<id>.mp4 + .vtt, manifest.jsonl (with train/val/test), annotations.json \
        (ground truth in YouCook2's format) and labels.json. A re-run keeps finished videos.

        Example:
          videobert demo-corpus --out demo/corpus --videos 60
          videobert tokenize --corpus demo/corpus/manifest.jsonl \\
              --recipe Recipes/tokenize-demo.yaml --out demo/tokens
        """)

    @Option(help: "Output folder.") var out: String
    @Option(help: "Number of videos.") var videos: Int = 120
    @Option(help: "Random seed (the same seed renders the same frames and transcripts).") var seed: UInt64 = 0
    @Option(help: "Frame size, WxH.") var size: String = "96x96"
    @Option(help: "Frames per second of the rendered videos.") var fps: Int = 10
    @Option(help: "Videos rendered at once.") var workers: Int = 2
    @Flag(help: "Write videos without an audio stream (the frames and narration are the same).") var noSound = false

    func validate() throws {
        guard videos >= 1 else { throw ValidationError("--videos must be at least 1") }
        guard fps >= 1 && fps <= 60 else { throw ValidationError("--fps must be in 1...60") }
        guard parseSize(size) != nil else { throw ValidationError("--size must look like 96x96 (even numbers, at least 16)") }
    }

    func parseSize(_ s: String) -> (Int, Int)? {
        let p = s.lowercased().split(separator: "x")
        guard p.count == 2, let w = Int(p[0]), let h = Int(p[1]), w >= 16, h >= 16, w % 2 == 0, h % 2 == 0 else { return nil }
        return (w, h)
    }

    func run() throws {
        try FolderLock.acquire(out)
        let (w, h) = parseSize(size)!
        var options = DemoCorpus.Options()
        options.videos = videos
        options.seed = seed
        options.width = w
        options.height = h
        options.fps = fps
        if noSound { options.sound = nil }
        let started = Date()
        let progress = ProgressReporter(label: "demo-corpus", total: videos, unit: "videos")
        try DemoCorpus(options: options).generate(into: out, workers: workers, encode: DemoCorpus.encodeH264) { _, _ in progress.advance() }
        progress.finish()
        let summary: [String: Any] = ["videos": videos, "out": out, "seconds": (Date().timeIntervalSince(started) * 10).rounded() / 10,
                                      "manifest": (out as NSString).appendingPathComponent("manifest.jsonl")]
        print(String(decoding: try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self))
    }
}
