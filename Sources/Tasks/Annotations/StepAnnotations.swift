import Foundation
import Tensor

/// One annotated stretch of a video for the downstream tasks: a YouCook2 procedure step, an
/// MSR-VTT video (the whole video, many captions), or a line of plain JSONL.
public struct AnnotatedStep: Sendable, Equatable, Codable {
    /// The corpus video id.
    public var video: String
    /// Index of the step within its video (time order; 0 for a whole-video annotation).
    public var index: Int
    /// Time span in seconds; nil for a whole-video annotation (MSR-VTT).
    public var start: Double?
    public var end: Double?
    /// Reference captions (YouCook2 and JSONL: one; MSR-VTT: about twenty).
    public var captions: [String]
    /// Verb and noun labels when the annotation gives them (YouCook2-style extra fields).
    public var verb: String?
    public var noun: String?
    /// The dataset's own split name when the file gives one (YouCook2 "subset", MSR-VTT "split").
    public var subset: String?

    public init(video: String, index: Int, start: Double?, end: Double?, captions: [String],
                verb: String? = nil, noun: String? = nil, subset: String? = nil) {
        self.video = video; self.index = index; self.start = start; self.end = end; self.captions = captions
        self.verb = verb; self.noun = noun; self.subset = subset
    }

    /// The COCO image id of the step: "<video>#<step index>".
    public var imageID: String { "\(video)#\(index)" }
}

/// Annotations read from a file, grouped by video, steps of each video in time order.
public struct StepAnnotations: Sendable {
    public enum Format: String, Sendable, Codable { case youCook2 = "youcook2", msrVTT = "msrvtt", jsonl, corpusSegments = "corpus-segments" }

    public let file: String
    public let format: Format
    /// Every step, videos in order of first appearance, steps in time order.
    public let steps: [AnnotatedStep]

    public init(file: String, format: Format, steps: [AnnotatedStep]) {
        self.file = file
        self.format = format
        self.steps = steps
    }

    /// Steps without references: every segment of the corpus' `split` (its ASR sentences and
    /// video-only stretches), step index = segment index within its video — for captioning
    /// videos that have no annotations. `file` names the corpus.
    public static func segments(of corpus: TaskCorpus, split: String) -> StepAnnotations {
        let c = corpus.corpus
        var steps: [AnnotatedStep] = []
        for v in c.index.videos where v.split == split {
            for s in v.segmentBegin..<v.segmentEnd {
                let (t0, t1) = c.times(of: s)
                steps.append(AnnotatedStep(video: v.id, index: s - v.segmentBegin, start: Double(t0), end: Double(t1), captions: []))
            }
        }
        return StepAnnotations(file: corpus.path, format: .corpusSegments, steps: steps)
    }

    /// The videos annotated, in order of first appearance.
    public var videos: [String] {
        var seen = Set<String>(), out: [String] = []
        for s in steps where seen.insert(s.video).inserted { out.append(s.video) }
        return out
    }

    /// Reads YouCook2 JSON, MSR-VTT JSON or JSONL (by the `.jsonl` extension, else by content).
    /// Errors name the file and the line (JSONL) or the key (JSON).
    public static func load(_ path: String) throws -> StepAnnotations {
        guard let data = try InputFile.readIfExists(path) else {
            throw VideoBertError(FileManager.default.fileExists(atPath: path) ? "cannot read annotations" : "no such annotations file", file: path)
        }
        let ext = (path as NSString).pathExtension.lowercased()
        if ext == "jsonl" || ext == "ndjson" { return try parseJSONL(data, file: path) }
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            // Several JSON objects, one per line, in a file not named .jsonl.
            if let text = String(data: data, encoding: .utf8), text.split(separator: "\n").count > 1,
               text.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("{"),
               let parsed = try? parseJSONL(data, file: path) {
                return parsed
            }
            throw VideoBertError("invalid JSON: \(jsonErrorText(error, data: data))", file: path)
        }
        guard let object = root as? [String: Any] else {
            throw VideoBertError("expected YouCook2 {\"database\": …}, MSR-VTT {\"videos\", \"sentences\"} or JSONL lines {\"video\", \"start\", \"end\", \"caption\"}", file: path)
        }
        if let database = object["database"] {
            guard let db = database as? [String: Any] else { throw VideoBertError("key 'database': expected an object of videos", file: path) }
            return try parseYouCook2(db, file: path)
        }
        if object["sentences"] != nil {
            return try parseMSRVTT(object, file: path)
        }
        throw VideoBertError("no 'database' (YouCook2) or 'sentences' (MSR-VTT) key; for one step per line use JSONL {\"video\", \"start\", \"end\", \"caption\"}", file: path)
    }

    // MARK: YouCook2

    /// `{"database": {video: {"subset", "duration", "annotations": [{"segment": [s, e], "sentence", "id",
    /// optional "verb", "noun"}]}}}`. Videos in sorted id order (JSON objects have none).
    static func parseYouCook2(_ db: [String: Any], file: String) throws -> StepAnnotations {
        var steps: [AnnotatedStep] = []
        for video in db.keys.sorted() {
            let at = "database.\(video)"
            guard let entry = db[video] as? [String: Any] else { throw VideoBertError("key '\(at)': expected an object", file: file) }
            guard let list = entry["annotations"] as? [Any] else {
                throw VideoBertError("key '\(at).annotations': expected a list of steps", file: file)
            }
            let subset = entry["subset"] as? String
            var mine: [AnnotatedStep] = []
            for (i, item) in list.enumerated() {
                let key = "\(at).annotations[\(i)]"
                guard let a = item as? [String: Any] else { throw VideoBertError("key '\(key)': expected an object", file: file) }
                guard let seg = a["segment"] as? [Any], seg.count == 2, let s = number(seg[0]), let e = number(seg[1]) else {
                    throw VideoBertError("key '\(key).segment': expected [start, end] in seconds", file: file)
                }
                try checkSpan(s, e, key: "\(key).segment", file: file)
                guard let sentence = a["sentence"] as? String else {
                    throw VideoBertError("key '\(key).sentence': expected a string", file: file)
                }
                mine.append(AnnotatedStep(video: video, index: 0, start: s, end: e, captions: [sentence],
                                          verb: try optionalString(a["verb"], key: "\(key).verb", file: file),
                                          noun: try optionalString(a["noun"], key: "\(key).noun", file: file), subset: subset))
            }
            steps += ordered(mine)
        }
        return StepAnnotations(file: file, format: .youCook2, steps: steps)
    }

    // MARK: MSR-VTT

    /// `{"videos": [{"video_id", "split", ...}], "sentences": [{"video_id", "caption"}]}`: whole-video
    /// captions; every sentence of a video is a reference of its one step (index 0). Videos in
    /// the order of the "videos" list, then any only named by sentences.
    static func parseMSRVTT(_ object: [String: Any], file: String) throws -> StepAnnotations {
        guard let sentences = object["sentences"] as? [Any] else { throw VideoBertError("key 'sentences': expected a list", file: file) }
        var order: [String] = []
        var split: [String: String] = [:]
        if let videos = object["videos"] {
            guard let list = videos as? [Any] else { throw VideoBertError("key 'videos': expected a list", file: file) }
            for (i, item) in list.enumerated() {
                guard let v = item as? [String: Any], let id = idString(v["video_id"]) else {
                    throw VideoBertError("key 'videos[\(i)].video_id': expected a string", file: file)
                }
                if split[id] == nil { order.append(id) }
                split[id] = (v["split"] as? String) ?? ""
            }
        }
        var captions: [String: [String]] = [:]
        for (i, item) in sentences.enumerated() {
            guard let s = item as? [String: Any] else { throw VideoBertError("key 'sentences[\(i)]': expected an object", file: file) }
            guard let id = idString(s["video_id"]) else { throw VideoBertError("key 'sentences[\(i)].video_id': expected a string", file: file) }
            guard let caption = s["caption"] as? String else {
                throw VideoBertError("key 'sentences[\(i)].caption': expected a string", file: file)
            }
            if captions[id] == nil && split[id] == nil { order.append(id); split[id] = "" }
            captions[id, default: []].append(caption)
        }
        let steps = order.compactMap { id -> AnnotatedStep? in
            guard let c = captions[id] else { return nil }
            let s = split[id] ?? ""
            return AnnotatedStep(video: id, index: 0, start: nil, end: nil, captions: c, subset: s.isEmpty ? nil : s)
        }
        return StepAnnotations(file: file, format: .msrVTT, steps: steps)
    }

    // MARK: JSONL

    /// One `{"video", "start", "end", "caption"}` per line (optional "verb", "noun", "subset");
    /// blank lines skipped. Lines with the same video and span are one step with several references.
    static func parseJSONL(_ data: Data, file: String) throws -> StepAnnotations {
        guard let text = String(data: data, encoding: .utf8) else { throw VideoBertError("not UTF-8 text", file: file) }
        var byVideo: [String: [AnnotatedStep]] = [:]
        var order: [String] = []
        for (n, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            let lineNumber = n + 1
            let object: Any
            do {
                object = try JSONSerialization.jsonObject(with: Data(line.utf8))
            } catch {
                throw VideoBertError(file: file, line: lineNumber, "invalid JSON: \(jsonErrorText(error, data: Data(line.utf8)))")
            }
            guard let o = object as? [String: Any] else {
                throw VideoBertError(file: file, line: lineNumber, "expected an object {\"video\", \"start\", \"end\", \"caption\"}")
            }
            guard let video = idString(o["video"]) else { throw VideoBertError(file: file, line: lineNumber, "'video' must be a string") }
            guard let s = number(o["start"]), let e = number(o["end"]) else {
                throw VideoBertError(file: file, line: lineNumber, "'start' and 'end' must be numbers (seconds)")
            }
            guard s.isFinite, e.isFinite, s >= 0, e >= s else {
                throw VideoBertError(file: file, line: lineNumber, "bad time span [\(s), \(e)]")
            }
            guard let caption = o["caption"] as? String else { throw VideoBertError(file: file, line: lineNumber, "'caption' must be a string") }
            func field(_ k: String) throws -> String? {
                guard let v = o[k], !(v is NSNull) else { return nil }
                guard let s = v as? String else { throw VideoBertError(file: file, line: lineNumber, "'\(k)' must be a string") }
                return s
            }
            let step = AnnotatedStep(video: video, index: 0, start: s, end: e, captions: [caption],
                                     verb: try field("verb"), noun: try field("noun"), subset: try field("subset"))
            if byVideo[video] == nil { order.append(video) }
            if let k = byVideo[video]?.firstIndex(where: { $0.start == s && $0.end == e }) {
                byVideo[video]![k].captions.append(caption)
            } else {
                byVideo[video, default: []].append(step)
            }
        }
        guard !order.isEmpty else { throw VideoBertError("no annotations (expected one JSON object per line)", file: file) }
        return StepAnnotations(file: file, format: .jsonl, steps: order.flatMap { ordered(byVideo[$0]!) })
    }

    // MARK: helpers

    /// Steps of one video in time order (stable), numbered 0, 1, ….
    static func ordered(_ steps: [AnnotatedStep]) -> [AnnotatedStep] {
        let sorted = steps.enumerated().sorted {
            let a = ($0.element.start ?? 0, $0.element.end ?? 0, $0.offset), b = ($1.element.start ?? 0, $1.element.end ?? 0, $1.offset)
            return a < b
        }
        return sorted.enumerated().map { i, pair in
            var s = pair.element
            s.index = i
            return s
        }
    }

    static func checkSpan(_ s: Double, _ e: Double, key: String, file: String) throws {
        guard s.isFinite, e.isFinite, s >= 0, e >= s else { throw VideoBertError("key '\(key)': bad time span [\(s), \(e)]", file: file) }
    }

    static func optionalString(_ v: Any?, key: String, file: String) throws -> String? {
        guard let v, !(v is NSNull) else { return nil }
        guard let s = v as? String else { throw VideoBertError("key '\(key)': expected a string", file: file) }
        return s
    }

    static func idString(_ v: Any?) -> String? {
        if let s = v as? String { return s }
        if let n = v as? NSNumber, String(cString: n.objCType) != "c" { return n.stringValue }
        return nil
    }

    static func number(_ v: Any?) -> Double? {
        if let n = v as? NSNumber, String(cString: n.objCType) != "c" { return n.doubleValue }
        return nil
    }

    static func jsonErrorText(_ error: Error, data: Data) -> String {
        let ns = error as NSError
        var text = (ns.userInfo["NSDebugDescription"] as? String) ?? ns.localizedDescription
        if let idx = ns.userInfo["NSJSONSerializationErrorIndex"] as? Int, idx <= data.count, !text.contains("line") {
            let prefix = data.prefix(idx)
            let line = prefix.reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
            text += " (line \(line))"
        }
        return text.replacingOccurrences(of: "\n", with: " ")
    }
}

/// The verbs and nouns of zero-shot classification (YouCook2-style): `{"verbs": [...], "nouns": [...]}`.
public struct LabelList: Sendable, Equatable, Codable {
    public var verbs: [String]
    public var nouns: [String]

    public init(verbs: [String], nouns: [String]) {
        self.verbs = verbs
        self.nouns = nouns
    }

    /// Reads labels.json; labels are lower-cased and de-duplicated (first occurrence kept).
    public static func load(_ path: String) throws -> LabelList {
        guard let data = try InputFile.readIfExists(path) else {
            throw VideoBertError(FileManager.default.fileExists(atPath: path) ? "cannot read labels" : "no such labels file", file: path)
        }
        let root: Any
        do { root = try JSONSerialization.jsonObject(with: data) } catch {
            throw VideoBertError("invalid JSON: \(StepAnnotations.jsonErrorText(error, data: data))", file: path)
        }
        guard let o = root as? [String: Any] else { throw VideoBertError("expected {\"verbs\": [...], \"nouns\": [...]}", file: path) }
        func list(_ key: String) throws -> [String] {
            guard let raw = o[key] else { throw VideoBertError("missing key '\(key)' (expected {\"verbs\": [...], \"nouns\": [...]})", file: path) }
            guard let items = raw as? [Any] else { throw VideoBertError("key '\(key)': expected a list of strings", file: path) }
            var out: [String] = []
            for (i, item) in items.enumerated() {
                guard let s = item as? String, !s.trimmingCharacters(in: .whitespaces).isEmpty else {
                    throw VideoBertError("key '\(key)[\(i)]': expected a non-empty string", file: path)
                }
                out.append(s)
            }
            guard !out.isEmpty else { throw VideoBertError("key '\(key)': the list is empty", file: path) }
            return out
        }
        return LabelList(verbs: normalized(try list("verbs")), nouns: normalized(try list("nouns")))
    }

    /// The labels that the annotations' "verb"/"noun" fields use (in order of first use), for
    /// files without a separate label list.
    public static func fromAnnotations(_ a: StepAnnotations) throws -> LabelList {
        let verbs = normalized(a.steps.compactMap(\.verb)), nouns = normalized(a.steps.compactMap(\.noun))
        guard !verbs.isEmpty, !nouns.isEmpty else {
            throw VideoBertError("no 'verb'/'noun' fields to take labels from; pass a label list (--labels labels.json)", file: a.file)
        }
        return LabelList(verbs: verbs, nouns: nouns)
    }

    static func normalized(_ labels: [String]) -> [String] {
        var seen = Set<String>(), out: [String] = []
        for l in labels {
            let k = l.lowercased().trimmingCharacters(in: .whitespaces)
            if seen.insert(k).inserted { out.append(k) }
        }
        return out
    }

    /// The first label (of `labels`) that occurs in `sentence` as whole words (lower-cased,
    /// split at anything that is not a letter, digit or apostrophe), earliest in the sentence;
    /// at the same position the longer label wins ("ice cream" over "ice").
    public static func firstMention(of labels: [String], in sentence: String) -> String? {
        let words = wordsOf(sentence)
        let labelWords = labels.map(wordsOf)
        for start in words.indices {
            var best: (label: String, length: Int)?
            for (k, lw) in labelWords.enumerated() where !lw.isEmpty && start + lw.count <= words.count {
                if Array(words[start..<(start + lw.count)]) == lw, lw.count > (best?.length ?? 0) { best = (labels[k], lw.count) }
            }
            if let best { return best.label }
        }
        return nil
    }

    static func wordsOf(_ s: String) -> [String] {
        s.lowercased().split { !($0.isLetter || $0.isNumber || $0 == "'") }.map(String.init)
    }
}
