import ArgumentParser
import Foundation
import Model
import Tasks
import Tensor
import Tokenize

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print a tokenized corpus (counts, then segments as words and visual-word ids) or describe a checkpoint.",
        discussion: """
        A corpus: each segment prints as `start–end  sentence | v<word> v<word> ...`: the sentence \
        decoded from its WordPiece ids, and the visual words of the clips shown while it is spoken. \
        Video-only segments show `—` for the sentence.

        A checkpoint folder (VideoBERT, CBT, or a captioner fine-tuned from either, or a text \
        BERT): its kind and architecture, the step it was saved at, its parameter count, what it \
        was fine-tuned from, which commands read it, and its files.

        Example:
          videobert inspect demo/tokens --video demo0003-pancakes
          videobert inspect demo/tokens --split test --limit 5 --json
          videobert inspect demo/caption-cbt/checkpoints/step-0001200
        """)

    @Argument(help: "A tokenized corpus folder (from `videobert tokenize`) or a checkpoint folder.") var corpus: String
    @Option(help: "Only this video.") var video: String?
    @Option(help: "Only videos of this split (train, val, test).") var split: String?
    @Option(help: "Videos to print (0: counts only).") var limit: Int = 3
    @Flag(help: "JSON lines (one per segment) instead of text.") var json = false

    func run() throws {
        let isCorpus = FileManager.default.fileExists(atPath: (corpus as NSString).appendingPathComponent("index.json"))
        if !isCorpus && Checkpoint.isCheckpoint(corpus) {
            let info = try Checkpoint(folder: corpus).info()
            if json { print(try JSON.string(info)); return }
            print("\(info.kind.rawValue) checkpoint \(info.path)" + (info.step.map { ", step \($0)" } ?? ""))
            print(info.summary)
            print("parameters: \(info.parameters)")
            if let i = info.initFrom { print("fine-tuned from: \(i)") }
            print("read by: " + info.readBy.map { "videobert " + $0 }.joined(separator: ", "))
            print("files: " + info.files.joined(separator: ", "))
            return
        }
        if !isCorpus && FileManager.default.fileExists(atPath: corpus) {
            throw VideoBertError("neither a tokenized corpus (no index.json) nor a checkpoint (no config.json or cbt_config.json)", file: corpus)
        }
        let c = try TokenizedCorpus(path: corpus)
        let vocab = try TextVocabulary.load(c.textVocabPath)
        let idx = c.index
        var videos = idx.videos.enumerated().filter { (video == nil || $0.element.id == video) && (split == nil || $0.element.split == split) }
        if let video, videos.isEmpty { throw VideoBertError("no video '\(video)' in this corpus", file: corpus) }
        if video == nil { videos = Array(videos.prefix(limit)) }
        if !json {
            let s = idx.counts.splits
            print("corpus \(corpus): \(idx.counts.videos) videos, \(idx.counts.clips) clips, \(idx.counts.segments) segments, \(idx.counts.textTokens) text tokens")
            print("splits: train \(s["train"] ?? 0), val \(s["val"] ?? 0), test \(s["test"] ?? 0); failures \(idx.counts.failures)")
            print("text vocabulary \(idx.textVocab.size) (\(idx.textVocab.cased ? "cased" : "uncased")); visual words \(idx.visualVocab.words) (\(idx.visualVocab.branching)^\(idx.visualVocab.depth)), clip \(idx.clipSeconds) s, features \(idx.featureSource) dim \(idx.featureDim)")
            print("segments: \(idx.counts.videoOnlySegments) video-only, \(idx.counts.textOnlySegments) text-only")
            if let shards = idx.shards {
                print("shards: \(shards.count) (" + shards.prefix(3).map { "\($0.folder): \($0.videos) videos" }.joined(separator: ", ") + (shards.count > 3 ? ", …" : "") + ")")
            }
            // What a CBT front-end (and a captioner fine-tuned from CBT) can read.
            var stored: [String] = []
            for name in ["clip_features", "clip_frames"] where idx.extras.contains(name) {
                let shape = (try? c.storedRows(name)?.shape).flatMap { $0 }.map { " " + $0.map(String.init).joined(separator: "×") } ?? ""
                stored.append(name + shape)
            }
            print("stored for CBT: " + (stored.isEmpty ? "nothing (tokenize with store.frames or store.features)" : stored.joined(separator: ", ")))
            if let a = idx.audioVocab {
                let stored = idx.extras.contains("clip_audio")
                    ? ", clip_audio " + ((try? c.storedRows("clip_audio")?.shape).flatMap { $0 }?
                        .map(String.init).joined(separator: "×") ?? "?")
                    : ""
                print("audio words \(a.words) (\(a.branching)^\(a.depth)), descriptor dim \(a.dim)\(stored)")
            }
        }
        for (_, v) in videos {
            if !json { print("\n\(v.id) [\(v.split)] \(String(format: "%.1f", v.duration)) s, \(v.clipEnd - v.clipBegin) clips") }
            for s in v.segmentBegin..<v.segmentEnd {
                let words = vocab.readableText(c.text(of: s))
                let visual = Array(c.visual(of: s))
                let (t0, t1) = c.times(of: s)
                if json {
                    let obj: [String: Any] = ["video": v.id, "segment": s, "start": Double(t0), "end": Double(t1), "text": words,
                                              "text_ids": c.text(of: s).map(Int.init), "visual_ids": visual.map(Int.init)]
                    print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
                } else {
                    let vis = visual.map { "v\($0)" }.joined(separator: " ")
                    print(String(format: "  %7.2f–%-7.2f ", t0, t1) + (words.isEmpty ? "—" : words) + " | " + (vis.isEmpty ? "—" : vis))
                }
            }
        }
    }
}
