import Foundation
import Tensor

/// JSON caption formats of the video–language datasets.
///
/// - HowTo100M `raw_caption.json`: `{video_id: {"start": [s...], "end": [e...], "text": [t...]}}`
///   (one file for the whole corpus; ASR without punctuation).
/// - YouCook2 `youcookii_annotations_trainval.json`:
///   `{"database": {video_id: {"subset": "training", "duration": d, "annotations":
///   [{"segment": [s, e], "sentence": "...", "id": 0}, ...]}}}`.
/// - A per-video file beside its video: `{"start": [...], "end": [...], "text": [...]}`
///   or a list `[{"start": s, "end": e, "text": "..."}]`.
public enum CaptionJSON {
    public enum Kind: String, Sendable { case howTo100M = "howto100m", youCook2 = "youcook2", single }

    /// One video's captions, with the dataset's split when the file gives one (YouCook2's subset).
    public struct Entry: Sendable {
        public var transcript: Transcript
        public var subset: String?
    }

    public static func load(_ path: String) throws -> Any {
        let data = try InputFile.read(path, maxBytes: JSON.maxFileBytes, what: "captions file")
        do {
            return try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw VideoBertError("invalid JSON: \(jsonErrorText(error, data: data))", file: path)
        }
    }

    /// Parses a corpus-level caption file (HowTo100M or YouCook2), detecting which.
    public static func parseCorpusFile(_ path: String) throws -> (Kind, [String: Entry]) {
        let root = try load(path)
        guard let dict = root as? [String: Any] else {
            throw VideoBertError("expected a JSON object mapping video ids to captions", file: path)
        }
        if let db = dict["database"] as? [String: Any] {
            return (.youCook2, try parseYouCook2(db, file: path))
        }
        return (.howTo100M, try parseHowTo100M(dict, file: path))
    }

    /// Parses a per-video caption file.
    public static func parseSingleFile(_ path: String) throws -> Transcript {
        let root = try load(path)
        if let dict = root as? [String: Any], dict["text"] != nil {
            return try parseColumns(dict, key: nil, file: path)
        }
        if let list = root as? [[String: Any]] {
            var cues: [Cue] = []
            for (i, item) in list.enumerated() {
                guard let s = number(item["start"]), let e = number(item["end"]), let t = item["text"] as? String else {
                    throw VideoBertError("item [\(i)]: needs numeric 'start', 'end' and string 'text'", file: path)
                }
                try checkSpan(s, e, at: "item [\(i)]", file: path)
                cues.append(Cue(start: s, end: e, text: t))
            }
            return Transcript(cues: cues, source: path)
        }
        if let dict = root as? [String: Any], dict.count == 1, let (k, v) = dict.first, let inner = v as? [String: Any] {
            return try parseColumns(inner, key: k, file: path)
        }
        throw VideoBertError("unrecognised caption JSON (expected {\"start\", \"end\", \"text\"} columns or a list of {start, end, text})", file: path)
    }

    static func parseHowTo100M(_ dict: [String: Any], file: String) throws -> [String: Entry] {
        var out: [String: Entry] = [:]
        out.reserveCapacity(dict.count)
        for (vid, value) in dict {
            guard let cols = value as? [String: Any] else {
                throw VideoBertError("key '\(vid)': expected {\"start\", \"end\", \"text\"}", file: file)
            }
            out[vid] = Entry(transcript: try parseColumns(cols, key: vid, file: file), subset: nil)
        }
        return out
    }

    static func parseColumns(_ cols: [String: Any], key: String?, file: String) throws -> Transcript {
        let at = key.map { "key '\($0)'" } ?? "captions"
        guard let starts = cols["start"] as? [Any], let ends = cols["end"] as? [Any], let texts = cols["text"] as? [Any] else {
            throw VideoBertError("\(at): needs 'start', 'end' and 'text' lists", file: file)
        }
        guard starts.count == ends.count, ends.count == texts.count else {
            throw VideoBertError("\(at): 'start', 'end' and 'text' have different lengths (\(starts.count), \(ends.count), \(texts.count))", file: file)
        }
        var cues: [Cue] = []
        cues.reserveCapacity(texts.count)
        for i in 0..<texts.count {
            guard let s = number(starts[i]), let e = number(ends[i]) else {
                throw VideoBertError("\(at): start/end [\(i)] is not a number", file: file)
            }
            // HowTo100M has some numeric or null texts; keep text, skip nulls.
            let t: String
            if let str = texts[i] as? String { t = str } else if let n = texts[i] as? NSNumber { t = n.stringValue } else { continue }
            try checkSpan(s, e, at: "\(at) [\(i)]", file: file)
            cues.append(Cue(start: s, end: e, text: t))
        }
        return Transcript(cues: cues, source: file)
    }

    static func parseYouCook2(_ db: [String: Any], file: String) throws -> [String: Entry] {
        var out: [String: Entry] = [:]
        for (vid, value) in db {
            guard let v = value as? [String: Any], let anns = v["annotations"] as? [[String: Any]] else {
                throw VideoBertError("key 'database.\(vid)': expected an object with an 'annotations' list", file: file)
            }
            var cues: [Cue] = []
            for (i, a) in anns.enumerated() {
                guard let seg = a["segment"] as? [Any], seg.count == 2, let s = number(seg[0]), let e = number(seg[1]) else {
                    throw VideoBertError("key 'database.\(vid).annotations[\(i)]': 'segment' must be [start, end]", file: file)
                }
                guard let sentence = a["sentence"] as? String else {
                    throw VideoBertError("key 'database.\(vid).annotations[\(i)]': missing 'sentence'", file: file)
                }
                try checkSpan(s, e, at: "key 'database.\(vid).annotations[\(i)]'", file: file)
                cues.append(Cue(start: s, end: e, text: sentence))
            }
            out[vid] = Entry(transcript: Transcript(cues: cues, source: file), subset: v["subset"] as? String)
        }
        return out
    }

    static func checkSpan(_ s: Double, _ e: Double, at: String, file: String) throws {
        guard s.isFinite, e.isFinite, s >= 0, e >= s else {
            throw VideoBertError("\(at): bad time span [\(s), \(e)]", file: file)
        }
    }

    static func number(_ v: Any?) -> Double? {
        if let n = v as? NSNumber, !(v is Bool) { return n.doubleValue }
        if let d = v as? Double { return d }
        if let i = v as? Int { return Double(i) }
        if let s = v as? String { return Double(s) }
        return nil
    }

    /// Foundation's JSON errors, with the line and column when they can be recovered.
    static func jsonErrorText(_ error: Error, data: Data) -> String {
        let ns = error as NSError
        var text = (ns.userInfo["NSDebugDescription"] as? String) ?? ns.localizedDescription
        if let idx = ns.userInfo["NSJSONSerializationErrorIndex"] as? Int, idx <= data.count, !text.contains("line") {
            let prefix = data.prefix(idx)
            let line = prefix.reduce(1) { $0 + ($1 == 0x0A ? 1 : 0) }
            let col = idx - (prefix.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0) + 1
            text += " (line \(line), column \(col))"
        }
        return text.replacingOccurrences(of: "\n", with: " ")
    }
}
