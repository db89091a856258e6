import Foundation
import Tensor

/// One video of a corpus to tokenize: where its video, transcript and features are.
public struct VideoItem: Sendable, Equatable {
    public enum TranscriptSource: Sendable, Equatable {
        case none
        /// A .vtt, .srt or per-video .json file.
        case file(String)
        /// Cues already read from a corpus-level caption file (HowTo100M / YouCook2).
        case cues(Transcript)
    }

    /// Unique id (the file's base name, the manifest's "id", or the caption file's key).
    public var id: String
    /// The video file; nil when only imported features exist for it.
    public var video: String?
    public var transcript: TranscriptSource
    /// Videos of one group (e.g. one recipe) always land in the same split.
    public var group: String?
    /// The dataset's own split when it has one ("train", "val", "test").
    public var subset: String?

    public init(id: String, video: String?, transcript: TranscriptSource, group: String? = nil, subset: String? = nil) {
        self.id = id; self.video = video; self.transcript = transcript; self.group = group; self.subset = subset
    }
}

/// Finds the videos of a corpus given as
/// - a folder of videos with transcripts beside them (same base name: `.vtt`, `.srt`, `.json`,
///   or YouTube's `<name>.<lang>.vtt`);
/// - a JSONL manifest of `{"id", "video", "transcript"}` (paths relative to the manifest;
///   optional `"group"` and `"split"`);
/// - a HowTo100M or YouCook2 caption JSON, with the videos in `videosDir` (default: beside it).
public enum CorpusSource {
    public static let videoExtensions: Set<String> = [
        "mp4", "m4v", "mkv", "webm", "avi", "mov", "mpg", "mpeg", "flv", "ts", "wmv", "3gp", "ogv", "y4m",
    ]
    static let transcriptExtensions = ["vtt", "srt", "json"]

    public static func discover(_ corpus: String, videosDir: String? = nil) throws -> [VideoItem] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: corpus, isDirectory: &isDir) else {
            throw VideoBertError("no such corpus folder or file", file: corpus)
        }
        let items: [VideoItem]
        if isDir.boolValue {
            items = try folder(corpus)
        } else if corpus.hasSuffix(".jsonl") {
            items = try manifest(corpus)
        } else if corpus.hasSuffix(".json") {
            items = try captionFile(corpus, videosDir: videosDir ?? (corpus as NSString).deletingLastPathComponent)
        } else {
            throw VideoBertError("a corpus is a folder of videos, a .jsonl manifest, or a HowTo100M/YouCook2 caption .json", file: corpus)
        }
        var seen: [String: Int] = [:]
        var fileNames: [String: Int] = [:]
        var videos: [String: Int] = [:]
        for (i, it) in items.enumerated() {
            if let j = seen[it.id] {
                throw VideoBertError("video id '\(it.id)' appears twice (\(items[j].video ?? "?") and \(it.video ?? "?")); ids must be unique", file: corpus)
            }
            seen[it.id] = i
            // Ids name work files: two ids that sanitise to one file name would share them.
            let safe = CorpusTokenizer.safeName(it.id)
            if let j = fileNames[safe] {
                throw VideoBertError("video ids '\(items[j].id)' and '\(it.id)' map to the same file name '\(safe)' (only letters, digits, - _ . are kept); rename one", file: corpus)
            }
            fileNames[safe] = i
            // One video under two ids would be trained on twice and could land in two splits.
            if let v = it.video {
                let key = URL(fileURLWithPath: v).standardizedFileURL.resolvingSymlinksInPath().path
                if let j = videos[key] {
                    throw VideoBertError("video '\(v)' is listed under two ids ('\(items[j].id)' and '\(it.id)'); list each video once", file: corpus)
                }
                videos[key] = i
            }
        }
        return items.sorted { $0.id < $1.id }
    }

    static func folder(_ dir: String) throws -> [VideoItem] {
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        let nameSet = Set(names)
        var items: [VideoItem] = []
        for name in names where !name.hasPrefix(".") {
            let ext = (name as NSString).pathExtension.lowercased()
            guard videoExtensions.contains(ext) else { continue }
            let base = (name as NSString).deletingPathExtension
            var transcript: VideoItem.TranscriptSource = .none
            for t in transcriptExtensions where nameSet.contains(base + "." + t) {
                transcript = .file(dir + "/" + base + "." + t); break
            }
            if transcript == .none {
                // youtube-dl / yt-dlp name subtitles <base>.<lang>.vtt
                if let sub = names.first(where: { $0.hasPrefix(base + ".") && ($0.hasSuffix(".vtt") || $0.hasSuffix(".srt")) && $0.split(separator: ".").count == base.split(separator: ".").count + 2 }) {
                    transcript = .file(dir + "/" + sub)
                }
            }
            items.append(VideoItem(id: base, video: dir + "/" + name, transcript: transcript))
        }
        if items.isEmpty {
            throw VideoBertError("no videos found (looked for \(videoExtensions.sorted().joined(separator: ", ")))", file: dir)
        }
        return items
    }

    static func manifest(_ path: String) throws -> [VideoItem] {
        let data = try InputFile.read(path, maxBytes: 1 << 30, what: "manifest")
        let decoded = InputFile.decodeText(data)
        if let bad = decoded.invalidLines.first {
            throw VideoBertError(file: path, line: bad, "not UTF-8 text")
        }
        let base = (path as NSString).deletingLastPathComponent
        func resolve(_ p: String) -> String { p.hasPrefix("/") ? p : (base as NSString).appendingPathComponent(p) }
        var items: [VideoItem] = []
        // Lines end with \n or \r\n (the \r is trimmed with the other whitespace).
        for (n, line) in decoded.text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }).enumerated() {
            let text = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if text.isEmpty || text.hasPrefix("#") { continue }
            guard let obj = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw VideoBertError(file: path, line: n + 1, "not a JSON object")
            }
            // A key of the wrong type is an error, never silently ignored.
            for key in ["id", "video", "transcript", "split", "group"] {
                if let v = obj[key], !(v is String), !(v is NSNull) {
                    throw VideoBertError(file: path, line: n + 1, "\"\(key)\" must be a string, not \(v)")
                }
            }
            let video = obj["video"] as? String
            guard let id = (obj["id"] as? String) ?? video.map({ (($0 as NSString).lastPathComponent as NSString).deletingPathExtension }) else {
                throw VideoBertError(file: path, line: n + 1, "needs \"id\" or \"video\"")
            }
            if id.isEmpty { throw VideoBertError(file: path, line: n + 1, "\"id\" is empty") }
            let transcript: VideoItem.TranscriptSource = (obj["transcript"] as? String).map { .file(resolve($0)) } ?? .none
            var subset = obj["split"] as? String
            if let s = subset, !["train", "val", "test"].contains(s) {
                throw VideoBertError(file: path, line: n + 1, "\"split\" must be train, val or test (got '\(s)')")
            }
            if subset == nil { subset = nil }
            items.append(VideoItem(id: id, video: video.map(resolve), transcript: transcript,
                                   group: obj["group"] as? String, subset: subset))
        }
        if items.isEmpty { throw VideoBertError("manifest lists no videos", file: path) }
        return items
    }

    static func captionFile(_ path: String, videosDir: String) throws -> [VideoItem] {
        let (_, entries) = try CaptionJSON.parseCorpusFile(path)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: videosDir)) ?? []
        var videoByID: [String: String] = [:]
        for name in names {
            let ext = (name as NSString).pathExtension.lowercased()
            guard videoExtensions.contains(ext) else { continue }
            videoByID[(name as NSString).deletingPathExtension] = (videosDir as NSString).appendingPathComponent(name)
        }
        return entries.map { id, entry in
            let subset: String?
            switch entry.subset {
            case "training": subset = "train"
            case "validation": subset = "val"
            case "testing": subset = "test"
            default: subset = nil
            }
            return VideoItem(id: id, video: videoByID[id], transcript: .cues(entry.transcript), subset: subset)
        }
    }

    /// Train/val/test by video (or group): groups are ordered by a seeded hash of their name and
    /// the first ⌈n·test⌉ go to test, the next ⌈n·val⌉ to val (at least one each when there are
    /// three or more groups and the fraction is above zero). Hash order keeps a group's split
    /// stable when videos are added. A split the dataset itself gives (YouCook2's subset,
    /// a manifest's "split") is kept.
    public static func assignSplits(_ items: [VideoItem], val: Double, test: Double, seed: Int) -> [String: String] {
        var out: [String: String] = [:]
        var groups: [String: [String]] = [:]
        for it in items {
            if let s = it.subset { out[it.id] = s; continue }
            groups[it.group ?? it.id, default: []].append(it.id)
        }
        let names = groups.keys.sorted { hash($0, seed) < hash($1, seed) || (hash($0, seed) == hash($1, seed) && $0 < $1) }
        let n = names.count
        func count(_ f: Double) -> Int {
            guard f > 0 else { return 0 }
            return n >= 3 ? max(1, Int((Double(n) * f).rounded())) : 0
        }
        let nTest = count(test), nVal = min(count(val), max(0, n - nTest - 1))
        for (i, g) in names.enumerated() {
            let split = i < nTest ? "test" : (i < nTest + nVal ? "val" : "train")
            for id in groups[g]! { out[id] = split }
        }
        return out
    }

    /// FNV-1a of the name mixed with the seed: stable across runs and platforms.
    static func hash(_ s: String, _ seed: Int) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ UInt64(bitPattern: Int64(seed)) &* 0x9E37_79B9_7F4A_7C15
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}
