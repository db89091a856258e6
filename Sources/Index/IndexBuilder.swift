import Foundation
import GRDB
import Media
import Tensor
import Tokenize

/// `videobert index`: a collection of videos → an index folder (format in VideoIndex.swift).
///
/// Every video's segments: the sentences of the transcript beside it (Tokenize's parsers and
/// sentence splitter, as `videobert tokenize`), or fixed windows where it has none; each with its
/// times, text, a thumbnail (the frame at its middle) and, with a dual-encoder checkpoint, its
/// embedding. Incremental: a video whose fingerprint (sizes and modification times of the video
/// and its transcript, the window, the encoder) is unchanged keeps its rows, thumbnails and
/// embeddings; new and changed videos are indexed; videos no longer listed are dropped. A video
/// that fails is reported (and keeps nothing); the others finish.
public final class IndexBuilder {
    public struct Options: Sendable {
        /// A folder of videos (transcripts beside them) or a JSONL manifest (`CorpusSource`).
        public var videos: String
        public var out: String
        public var checkpoint: String?
        /// The checkpoint's tokenized training corpus (nil: the one its recipe names).
        public var corpus: String?
        /// Seconds per segment of a video without transcript.
        public var window: Double = 6
        /// Thumbnails at most this wide (the video's width when smaller).
        public var thumbnailWidth: Int = 160
        public var showProgress = true
        public init(videos: String, out: String) { self.videos = videos; self.out = out }
    }

    public struct Failure: Codable, Sendable, Equatable {
        public var video: String
        public var error: String
    }

    public struct Summary: Codable, Sendable {
        public var videos: Int
        public var indexed: Int
        public var kept: Int
        public var dropped: Int
        public var failed: Int
        public var segments: Int
        public var encoder: String
        public var note: String
        public var seconds: Double
        public var out: String
        public var failures: [Failure]
    }

    let options: Options
    let encoder: SegmentEncoder?
    let kind: String
    let note: String

    public init(options: Options) throws {
        guard options.window > 0 && options.window <= 3600 else { throw VideoBertError("--window must be in (0, 3600] seconds", file: nil) }
        self.options = options
        if let c = options.checkpoint {
            let opened = try CheckpointEncoder.open(c, corpus: options.corpus)
            encoder = opened.encoder; kind = opened.kind; note = opened.note
        } else {
            encoder = nil; kind = ""; note = "built without a checkpoint: search is BM25 over the transcripts"
        }
    }

    /// One video's rows: the video, its segments and their embeddings (none without an encoder).
    public struct Indexed: Sendable {
        public var video: IndexedVideo
        public var segments: [IndexedSegment]
        public var embeddings: [[Float]]
        public init(video: IndexedVideo, segments: [IndexedSegment], embeddings: [[Float]]) {
            self.video = video; self.segments = segments; self.embeddings = embeddings
        }
    }

    var encoderSignature: String {
        guard let encoder, let c = options.checkpoint else { return "none" }
        let weights = ((c as NSString).appendingPathComponent("model.safetensors"))
        let attributes = try? FileManager.default.attributesOfItem(atPath: weights)
        let stamp = "\((attributes?[.size] as? NSNumber)?.intValue ?? 0):\((attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"
        return "\(encoder.name):\(encoder.dimension):\(URL(fileURLWithPath: c).standardizedFileURL.path):\(stamp)"
    }

    static func stamp(_ path: String) throws -> String {
        let a: [FileAttributeKey: Any]
        do { a = try FileManager.default.attributesOfItem(atPath: path) } catch { throw VideoBertError("cannot read: no such file", file: path) }
        let size = (a[.size] as? NSNumber)?.intValue ?? 0
        let mtime = (a[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        return "\(size):\(String(format: "%.6f", mtime))"
    }

    public func run() throws -> Summary {
        let started = Date()
        let out = options.out
        let items = try CorpusSource.discover(options.videos)
        try AtomicFile.createDirectory(out)
        try AtomicFile.createDirectory((out as NSString).appendingPathComponent("thumbnails"))
        let dbPath = (out as NSString).appendingPathComponent(VideoIndex.databaseName)

        // The previous index, when there is one: its videos, segments and embeddings.
        var old: VideoIndex?
        if FileManager.default.fileExists(atPath: dbPath) { old = try VideoIndex(folder: out) }
        let oldVideos = Dictionary(((try old?.videos()) ?? []).map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        let signature = encoderSignature

        var kept: [Indexed] = [], failures: [Failure] = [], indexed = 0
        let progress = ProgressReporter(label: "index", total: items.count, unit: "videos", enabled: options.showProgress)
        var seenKeys = Set<String>()
        for item in items {
            defer { progress.advance() }
            guard let video = item.video else { failures.append(Failure(video: item.id, error: "no video file")); continue }
            let path = URL(fileURLWithPath: video).standardizedFileURL.path
            let key = CorpusBuilder.fnv1a(Array(path.utf8))
            guard seenKeys.insert(key).inserted else { continue }
            do {
                var transcriptStamp = "none"
                if case .file(let t) = item.transcript { transcriptStamp = try Self.stamp(t) }
                let fingerprint = CorpusBuilder.fnv1a(Array("v1|\(try Self.stamp(path))|\(transcriptStamp)|\(options.window)|\(options.thumbnailWidth)|\(signature)".utf8))
                if let previous = oldVideos[key], previous.fingerprint == fingerprint, let old {
                    let segments = try old.segments(rows: try Self.rows(of: key, in: old))
                    let embeddings = old.embeddings.map { m in segments.map { Array(m.row($0.row)) } } ?? []
                    guard segments.count == previous.segments, encoder == nil || embeddings.count == segments.count else {
                        throw VideoBertError("the previous index is inconsistent for this video; re-indexing", file: path)
                    }
                    kept.append(Indexed(video: previous, segments: segments, embeddings: embeddings))
                    continue
                }
                kept.append(try index(item: item, path: path, key: key, fingerprint: fingerprint))
                indexed += 1
            } catch {
                let message = (error as? VideoBertError)?.description ?? "\(error)"
                failures.append(Failure(video: path, error: message))
                logLine("index: skipped \(item.id): \(message)")
            }
        }
        progress.finish()

        let meta: [String: String] = ["checkpoint": options.checkpoint ?? "", "kind": kind, "corpus": options.corpus ?? "",
                                      "window": "\(options.window)", "videos_source": options.videos]
        let (rows, embeddingsName) = try Self.write(folder: out, videos: &kept, encoder: encoder.map { ($0.name, $0.dimension) }, note: note, meta: meta)

        // What the new index no longer names.
        let liveThumbnails = Set(kept.map { Self.thumbnailFolder($0.video) })
        let thumbs = (out as NSString).appendingPathComponent("thumbnails")
        for name in (try? FileManager.default.contentsOfDirectory(atPath: thumbs)) ?? [] where !liveThumbnails.contains(name) {
            try? FileManager.default.removeItem(atPath: (thumbs as NSString).appendingPathComponent(name))
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []
        where name.hasPrefix("embeddings-") && name.hasSuffix(".npy") && name != embeddingsName {
            try? FileManager.default.removeItem(atPath: (out as NSString).appendingPathComponent(name))
        }
        let dropped = oldVideos.keys.filter { k in !kept.contains { $0.video.key == k } }.count
        return Summary(videos: items.count, indexed: indexed, kept: kept.count - indexed, dropped: dropped, failed: failures.count,
                       segments: rows, encoder: encoder?.name ?? "", note: note,
                       seconds: (Date().timeIntervalSince(started) * 10).rounded() / 10, out: out, failures: failures)
    }

    /// Writes an index folder's embeddings and database (rows numbered in order into `videos`'
    /// segments), renaming the database over an existing one last; returns the row count and
    /// the embeddings file's name ("" without an encoder). Used by `run` and by tools/bench's
    /// synthetic index.
    public static func write(folder out: String, videos kept: inout [Indexed], encoder: (name: String, dimension: Int)?, note: String,
                             meta extra: [String: String] = [:]) throws -> (rows: Int, embeddings: String) {
        var rows = 0
        for i in kept.indices {
            for j in kept[i].segments.indices { kept[i].segments[j].row = rows; rows += 1 }
        }
        var embeddingsName = ""
        if let encoder {
            embeddingsName = "embeddings-\(String(format: "%.0f", Date().timeIntervalSince1970 * 1000))-\(getpid()).npy"
            let writer = try NPYStreamWriter(path: (out as NSString).appendingPathComponent(embeddingsName), dtype: .float32, rowShape: [encoder.dimension])
            defer { writer.abandon() }
            for k in kept {
                guard k.embeddings.count == k.segments.count, k.embeddings.allSatisfy({ $0.count == encoder.dimension }) else {
                    throw VideoBertError("\(k.segments.count) segments and \(k.embeddings.count) embeddings of \(encoder.dimension)", file: k.video.path)
                }
                for e in k.embeddings { try e.withUnsafeBytes { try writer.append($0) } }
            }
            try writer.finish()
        }
        var meta = extra
        meta["format"] = VideoIndex.formatVersion
        meta["encoder"] = encoder?.name ?? ""
        meta["dimension"] = encoder.map { "\($0.dimension)" } ?? ""
        meta["embeddings"] = embeddingsName
        meta["note"] = note
        try writeDatabase((out as NSString).appendingPathComponent(VideoIndex.databaseName), meta: meta, kept: kept)
        return (rows, embeddingsName)
    }

    static func rows(of key: String, in index: VideoIndex) throws -> [Int] {
        guard let v = try index.video(key: key) else { return [] }
        return (0..<v.segments).compactMap { k in try? index.segment(id: "\(key)-\(k)")?.row }
    }

    static func thumbnailFolder(_ v: IndexedVideo) -> String { "\(v.key)-\(v.fingerprint)" }

    /// Segments, thumbnails and embeddings of one new or changed video.
    /// A video's segments as the index cuts them: the sentences of its transcript (split as the
    /// encoder's training corpus was, or by whitespace words without an encoder), else windows of
    /// `window` seconds over `duration`. `videobert encode --video` cuts them the same way.
    public static func segments(of item: VideoItem, path: String, duration: Double, encoder: SegmentEncoder?,
                                window: Double) throws -> (spans: [(start: Double, end: Double, text: String)], segmentation: String) {
        var spans: [(start: Double, end: Double, text: String)] = []
        var segmentation = "window"
        var transcript: Transcript?
        switch item.transcript {
        case .none: break
        case .cues(let t): transcript = t
        case .file(let t): transcript = t.lowercased().hasSuffix(".json") ? try CaptionJSON.parseSingleFile(t) : try SubtitleParser.parseFile(t)
        }
        if let transcript, !transcript.cues.isEmpty {
            let count: (String) -> Int = encoder.map { e in { e.tokenCount($0) } } ?? { $0.split(whereSeparator: \.isWhitespace).count }
            spans = (encoder?.sentenceSplitter ?? SentenceSplitter()).split(transcript, tokenCount: count)
                .filter { $0.end > $0.start && !$0.text.isEmpty }.map { ($0.start, $0.end, $0.text) }
            segmentation = "transcript"
        }
        if spans.isEmpty {
            segmentation = "window"
            var t = 0.0
            while t < duration - 1e-6 && spans.count < 1_000_000 {
                spans.append((t, min(duration, t + window), "")); t += window
            }
        }
        guard !spans.isEmpty else { throw VideoBertError(String(format: "no segments (duration %.2f s)", duration), file: path) }
        return (spans, segmentation)
    }

    func index(item: VideoItem, path: String, key: String, fingerprint: String) throws -> Indexed {
        let duration = try Thumbnails.duration(of: path)
        let (spans, segmentation) = try Self.segments(of: item, path: path, duration: duration, encoder: encoder, window: options.window)
        let video = IndexedVideo(key: key, id: item.id, path: path, fingerprint: fingerprint, duration: duration, segments: spans.count,
                                 segmentation: segmentation)
        let folderName = Self.thumbnailFolder(video)
        let thumbs = ((options.out as NSString).appendingPathComponent("thumbnails") as NSString).appendingPathComponent(folderName)
        let tmp = AtomicFile.temporaryPath(for: thumbs)
        try AtomicFile.createDirectory(tmp)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        try Thumbnails.write(video: path, midpoints: spans.map { ($0.start + $0.end) / 2 }, width: options.thumbnailWidth, to: tmp)
        let embeddings = try encoder?.encodeSegments(video: path, spans: spans.map { ($0.start, $0.end) }) ?? []
        try AtomicFile.commit(temporary: tmp, to: thumbs)
        let segments = spans.enumerated().map { k, s in
            IndexedSegment(id: "\(key)-\(k)", row: -1, video: item.id, path: path, start: (s.start * 1000).rounded() / 1000,
                           end: (s.end * 1000).rounded() / 1000, text: s.text,
                           thumbnail: "thumbnails/\(folderName)/\(k).png")
        }
        return Indexed(video: video, segments: segments, embeddings: embeddings)
    }

    /// The full-text table's definition (TranscriptBM25 checks an index's against it before
    /// scoring in memory the way FTS5 does).
    static let ftsSchema = "CREATE VIRTUAL TABLE segments_fts USING fts5(text, tokenize = 'porter unicode61')"

    static func writeDatabase(_ path: String, meta: [String: String], kept: [Indexed]) throws {
        let tmp = AtomicFile.temporaryPath(for: path)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        do {
            let db = try DatabaseQueue(path: tmp)
            try db.write { db in
                try db.execute(sql: """
                    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                    CREATE TABLE videos (key TEXT PRIMARY KEY, id TEXT NOT NULL, path TEXT NOT NULL, fingerprint TEXT NOT NULL,
                                         duration REAL NOT NULL, segments INTEGER NOT NULL, segmentation TEXT NOT NULL);
                    CREATE TABLE segments (row INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, video_key TEXT NOT NULL, video TEXT NOT NULL,
                                           path TEXT NOT NULL, start REAL NOT NULL, "end" REAL NOT NULL, text TEXT NOT NULL,
                                           thumbnail TEXT NOT NULL);
                    \(ftsSchema);
                    """)
                for (k, v) in meta.sorted(by: { $0.key < $1.key }) {
                    try db.execute(sql: "INSERT INTO meta (key, value) VALUES (?, ?)", arguments: [k, v])
                }
                let videoInsert = try db.makeStatement(sql: "INSERT INTO videos VALUES (?, ?, ?, ?, ?, ?, ?)")
                let segmentInsert = try db.makeStatement(sql: "INSERT INTO segments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
                let ftsInsert = try db.makeStatement(sql: "INSERT INTO segments_fts (rowid, text) VALUES (?, ?)")
                for k in kept {
                    let v = k.video
                    try videoInsert.execute(arguments: [v.key, v.id, v.path, v.fingerprint, v.duration, v.segments, v.segmentation])
                    for s in k.segments {
                        try segmentInsert.execute(arguments: [s.row, s.id, v.key, s.video, s.path, s.start, s.end, s.text, s.thumbnail])
                        if !s.text.isEmpty { try ftsInsert.execute(arguments: [s.row, s.text]) }
                    }
                }
            }
            try db.close()
        } catch let e as VideoBertError {
            throw e
        } catch {
            throw VideoBertError("cannot write the index database: \(error)", file: path)
        }
        try AtomicFile.commit(temporary: tmp, to: path)
    }
}
