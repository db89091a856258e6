import ArgumentParser
import Foundation
import Index
import Tasks
import Tensor
import Tokenize

/// `videobert encode`: text or video-segment embeddings of a checkpoint's dual encoder, the ones
/// `index` stores and `search` ranks by (`SegmentEncoder`).
struct EncodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encode",
        abstract: "Text or video-segment embeddings (pooled, L2-normalised) of a checkpoint, as a float32 .npy.",
        discussion: """
        The embeddings `videobert index` stores and `videobert search` ranks by, from the same \
        encoder (a CBT checkpoint trained with a pooled objective: the text BERT's [CLS] and the \
        mean of the visual transformer's clip states, each through its pooled projection, \
        L2-normalised; the cosine of two rows is their dot product). A VideoBERT checkpoint has \
        no such encoder.

        --text (repeatable) or --text-file (one text per line): one row per text, in order. \
        --video FILE...: one row per segment, the segments `index` cuts — the sentences of the \
        transcript beside the video (same base name, .vtt/.srt/.json) or of --transcript, else \
        --window windows — decoded as the checkpoint's training corpus was (its recipe.yaml; \
        --corpus when it has moved). Beside --out, a JSON list says what each row is: \
        [{"row", "text"}] or [{"row", "video", "path", "start", "end", "text"}]. A video that \
        fails is reported and the others are encoded; the exit status is then 1.

        Example:
          videobert encode --checkpoint demo/cbt/checkpoints/step-0000600 \\
              --text "stir the tomatoes" --text "cut the onion" --out queries.npy
          videobert encode --checkpoint demo/cbt/checkpoints/step-0000600 \\
              --video demo/corpus/videos/video-0001.mp4 --out segments.npy
        """)

    @Option(help: "A CBT checkpoint folder (with a pooled objective).") var checkpoint: String
    @Option(help: "A text to encode (repeatable).") var text: [String] = []
    @Option(help: "A file of texts, one per line (blank lines skipped).") var textFile: String?
    @Option(parsing: .upToNextOption, help: "Video files: one row per segment.") var video: [String] = []
    @Option(help: "The transcript of the (single) --video, instead of the one beside it.") var transcript: String?
    @Option(help: "Segment length for a video without transcript, e.g. 6s.") var window: String = "6s"
    @Option(help: "The tokenized corpus the checkpoint was trained on (default: the one its recipe.yaml names).") var corpus: String?
    @Option(help: "The .npy to write ([rows, E] float32); the row list goes beside it as .json.") var out: String

    func validate() throws {
        let sources = (text.isEmpty ? 0 : 1) + (textFile == nil ? 0 : 1) + (video.isEmpty ? 0 : 1)
        guard sources == 1 else { throw ValidationError("give one of --text, --text-file or --video") }
        guard let w = IndexCommand.seconds(window), w > 0, w <= 3600 else { throw ValidationError("--window must be seconds in (0, 3600], e.g. 6s") }
        if transcript != nil { guard video.count == 1 else { throw ValidationError("--transcript goes with exactly one --video") } }
        guard out.hasSuffix(".npy") else { throw ValidationError("--out must end in .npy") }
    }

    /// The row list written beside `out`.
    static func listPath(_ out: String) -> String { String(out.dropLast(4)) + ".json" }

    func run() throws {
        let inputs = video + [textFile, transcript].compactMap { $0 }
        try AtomicFile.checkOutputFile(out, inputs: inputs)
        try AtomicFile.checkOutputFile(Self.listPath(out), inputs: inputs + [out])
        let opened = try CheckpointEncoder.open(checkpoint, corpus: corpus)
        guard let encoder = opened.encoder else { throw VideoBertError(opened.note, file: checkpoint) }
        var rows: [[Float]] = [], list: [[String: Any]] = [], failed = 0
        if !video.isEmpty {
            let progress = ProgressReporter(label: "encode", total: video.count, unit: "videos",
                                            enabled: ProcessInfo.processInfo.environment["VIDEOBERT_QUIET"] == nil)
            for file in video {
                defer { progress.advance() }
                do {
                    let item = try Self.item(file, transcript: transcript)
                    let duration = try Thumbnails.duration(of: file)
                    let (spans, _) = try IndexBuilder.segments(of: item, path: file, duration: duration, encoder: encoder, window: IndexCommand.seconds(window)!)
                    let e = try encoder.encodeSegments(video: file, spans: spans.map { ($0.start, $0.end) })
                    for (s, row) in zip(spans, e) {
                        list.append(["row": rows.count, "video": item.id, "path": file, "start": (s.start * 1000).rounded() / 1000,
                                     "end": (s.end * 1000).rounded() / 1000, "text": s.text])
                        rows.append(row)
                    }
                } catch {
                    failed += 1
                    logLine("encode: skipped \(file): \(error)")
                }
            }
        } else {
            var texts = text
            if let textFile {
                let data = try InputFile.read(textFile, maxBytes: 64 << 20, what: "text file")
                let decoded = InputFile.decodeText(data)
                if let bad = decoded.invalidLines.first { throw VideoBertError(file: textFile, line: bad, "not UTF-8 text") }
                texts = decoded.text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" })
                    .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                guard !texts.isEmpty else { throw VideoBertError("no text in it", file: textFile) }
            }
            rows = try encoder.encodeText(texts)
            list = texts.enumerated().map { ["row": $0.offset, "text": $0.element] }
        }
        guard !rows.isEmpty else { throw VideoBertError("no video could be encoded", file: video.first) }
        try NPY.write(rows.flatMap { $0 }, shape: [rows.count, encoder.dimension], to: out)
        try writeJSONObject(list, to: Self.listPath(out))
        logLine("encode: \(rows.count) × \(encoder.dimension) \(encoder.name) embeddings → \(out) (rows: \(Self.listPath(out)))")
        if failed > 0 { throw VideoBertError("\(failed) of \(video.count) videos failed (see above); the others were encoded", file: out) }
    }

    /// The video as `index` sees it: its id (the base name) and its transcript (the one given,
    /// or the one beside it found as in a folder of videos).
    static func item(_ file: String, transcript: String?) throws -> VideoItem {
        guard FileManager.default.fileExists(atPath: file) else { throw VideoBertError("no such video file", file: file) }
        let id = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        if let transcript {
            guard FileManager.default.fileExists(atPath: transcript) else { throw VideoBertError("no such transcript file", file: transcript) }
            return VideoItem(id: id, video: file, transcript: .file(transcript))
        }
        let dir = (file as NSString).deletingLastPathComponent
        let me = URL(fileURLWithPath: file).standardizedFileURL.path
        let found = (try? CorpusSource.discover(dir.isEmpty ? "." : dir))?.first { item in
            item.video.map { URL(fileURLWithPath: $0).standardizedFileURL.path == me } ?? false
        }
        return VideoItem(id: id, video: file, transcript: found?.transcript ?? .none)
    }
}
