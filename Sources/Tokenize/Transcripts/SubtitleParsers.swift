import Foundation
import Tensor

/// Parsers for the subtitle formats that videos come with: WebVTT (YouTube and most ASR
/// exports) and SubRip (.srt). Errors name the file and the line.
public enum SubtitleParser {
    /// Reads a transcript file, choosing the format by extension (.vtt, .srt) or content.
    public static func parseFile(_ path: String) throws -> Transcript {
        guard FileManager.default.fileExists(atPath: path) else { throw VideoBertError("no such transcript file", file: path) }
        let data = try InputFile.read(path, maxBytes: 1 << 28, what: "transcript")
        if data.prefix(4096).contains(0), !(data.count >= 2 && (data[data.startIndex] == 0xFF || data[data.startIndex] == 0xFE || data[data.startIndex] == 0)) {
            throw VideoBertError("transcript is not text (binary data: a NUL byte)", file: path)
        }
        // UTF-8 (a BOM dropped), or UTF-16/32 by their BOM. Invalid UTF-8 bytes become U+FFFD
        // (the rest of the line and file decode as UTF-8, never as Latin-1), with a warning.
        let (text, invalidLines, _) = InputFile.decodeText(data)
        if !invalidLines.isEmpty {
            let shown = invalidLines.prefix(5).map(String.init).joined(separator: ", ") + (invalidLines.count > 5 ? ", ..." : "")
            logLine("warning: \(path): line\(invalidLines.count == 1 ? "" : "s") \(shown): bytes that are not UTF-8 were replaced by U+FFFD")
        }
        let ext = (path as NSString).pathExtension.lowercased()
        if ext == "srt" { return try parseSRT(text, file: path) }
        if ext == "vtt" || text.hasPrefix("WEBVTT") || text.hasPrefix("\u{FEFF}WEBVTT") {
            return try parseWebVTT(text, file: path)
        }
        throw VideoBertError("unknown transcript format (expected .vtt or .srt)", file: path)
    }

    // MARK: WebVTT

    /// WebVTT (W3C): a `WEBVTT` header, then blocks separated by blank lines. A cue block is an
    /// optional identifier line, a timing line `start --> end [settings]`, and text lines.
    /// NOTE, STYLE and REGION blocks are skipped; markup (`<c>`, `<v Name>`, inline timestamps
    /// `<00:00:01.000>`) and entities are removed. YouTube's automatic captions repeat the
    /// previous line at the top of each cue ("rolling" captions); the repeat is dropped so each
    /// word is kept once.
    public static func parseWebVTT(_ text: String, file: String) throws -> Transcript {
        let lines = splitLines(text)
        guard var first = lines.first else { throw VideoBertError("empty transcript (no WEBVTT header)", file: file) }
        if first.hasPrefix("\u{FEFF}") { first.removeFirst() }
        guard first.hasPrefix("WEBVTT") else {
            throw VideoBertError(file: file, line: 1, "missing WEBVTT header")
        }
        var cues: [Cue] = []
        var i = 1
        // Skip header lines up to the first blank line.
        while i < lines.count, !lines[i].trimmingCharacters(in: .whitespaces).isEmpty { i += 1 }
        var previousLastLine: String? = nil
        while i < lines.count {
            // Skip blank lines between blocks.
            while i < lines.count, lines[i].trimmingCharacters(in: .whitespaces).isEmpty { i += 1 }
            guard i < lines.count else { break }
            let blockStart = i
            var block: [String] = []
            while i < lines.count, !lines[i].trimmingCharacters(in: .whitespaces).isEmpty {
                block.append(lines[i]); i += 1
            }
            let head = block[0]
            if head.hasPrefix("NOTE") || head == "STYLE" || head == "REGION" || head.hasPrefix("STYLE ") || head.hasPrefix("REGION ") {
                if !head.contains("-->") { continue }
            }
            var timingIndex = 0
            if !head.contains("-->") {
                // An identifier line; the timing must follow.
                guard block.count > 1, block[1].contains("-->") else {
                    throw VideoBertError(file: file, line: blockStart + 1, "expected a cue timing line 'start --> end', found '\(clip(head))'")
                }
                timingIndex = 1
            }
            let lineNo = blockStart + timingIndex + 1
            let (start, end) = try parseTiming(block[timingIndex], decimal: ".", file: file, line: lineNo)
            var textLines = block[(timingIndex + 1)...].map { cleanMarkup($0) }.filter { !$0.isEmpty }
            // Rolling captions: drop a first line equal to the previous cue's last line.
            if let prev = previousLastLine, let f = textLines.first, f == prev {
                textLines.removeFirst()
            }
            if let last = block[(timingIndex + 1)...].map({ cleanMarkup($0) }).last(where: { !$0.isEmpty }) {
                previousLastLine = last
            }
            let joined = textLines.joined(separator: " ")
            if !joined.isEmpty {
                cues.append(Cue(start: start, end: max(end, start), text: joined))
            }
        }
        return Transcript(cues: cues, source: file)
    }

    // MARK: SRT

    /// SubRip: blocks of an index line, `00:00:01,000 --> 00:00:04,000`, then text lines.
    /// The index is optional here (some exporters omit it); `.` is accepted for `,`.
    public static func parseSRT(_ text: String, file: String) throws -> Transcript {
        let lines = splitLines(text)
        var cues: [Cue] = []
        var i = 0
        while i < lines.count {
            while i < lines.count, lines[i].trimmingCharacters(in: .whitespaces).isEmpty { i += 1 }
            guard i < lines.count else { break }
            let blockStart = i
            var block: [String] = []
            while i < lines.count, !lines[i].trimmingCharacters(in: .whitespaces).isEmpty {
                block.append(lines[i]); i += 1
            }
            var t = 0
            var head = block[0]
            if head.hasPrefix("\u{FEFF}") { head.removeFirst() }
            if !head.contains("-->") {
                guard Int(head.trimmingCharacters(in: .whitespaces)) != nil else {
                    throw VideoBertError(file: file, line: blockStart + 1, "expected a cue number or 'start --> end', found '\(clip(head))'")
                }
                guard block.count > 1 else {
                    throw VideoBertError(file: file, line: blockStart + 1, "cue \(head.trimmingCharacters(in: .whitespaces)) has no timing line")
                }
                t = 1
            }
            let (start, end) = try parseTiming(block[t], decimal: ",", file: file, line: blockStart + t + 1)
            let joined = block[(t + 1)...].map { cleanMarkup($0) }.filter { !$0.isEmpty }.joined(separator: " ")
            if !joined.isEmpty { cues.append(Cue(start: start, end: max(end, start), text: joined)) }
        }
        return Transcript(cues: cues, source: file)
    }

    // MARK: helpers

    static func splitLines(_ text: String) -> [String] {
        text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }).map(String.init)
    }

    static func clip(_ s: String) -> String { s.count > 60 ? String(s.prefix(57)) + "..." : s }

    static func parseTiming(_ line: String, decimal: Character, file: String, line lineNo: Int) throws -> (Double, Double) {
        let parts = line.components(separatedBy: "-->")
        guard parts.count == 2 else {
            throw VideoBertError(file: file, line: lineNo, "bad timing line '\(clip(line))'")
        }
        let startText = parts[0].trimmingCharacters(in: .whitespaces)
        let endText = parts[1].trimmingCharacters(in: .whitespaces).split(separator: " ").first.map(String.init) ?? ""
        guard let s = parseTimestamp(startText), let e = parseTimestamp(endText) else {
            throw VideoBertError(file: file, line: lineNo, "bad timestamp in '\(clip(line))' (expected hh:mm:ss\(decimal)mmm)")
        }
        return (s, e)
    }

    /// `hh:mm:ss.mmm`, `mm:ss.mmm`, with `.` or `,` before the fraction.
    public static func parseTimestamp(_ s: String) -> Double? {
        let fields = s.replacingOccurrences(of: ",", with: ".").split(separator: ":", omittingEmptySubsequences: false)
        guard (2...3).contains(fields.count) else { return nil }
        var total = 0.0
        for (k, f) in fields.enumerated() {
            let isLast = k == fields.count - 1
            guard !f.isEmpty, f.allSatisfy({ $0.isASCII && ($0.isNumber || (isLast && $0 == ".")) }),
                  let v = Double(f), v >= 0 else { return nil }
            if !isLast && v != v.rounded() { return nil }
            total = total * 60 + v
        }
        return total
    }

    /// Removes VTT/SRT markup: tags `<...>` (voice, class, italics, inline timestamps),
    /// `{\an8}`-style SSA overrides, and the common HTML entities.
    static func cleanMarkup(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        var inTag = false, inBrace = false
        for ch in s {
            if inTag { if ch == ">" { inTag = false }; continue }
            if inBrace { if ch == "}" { inBrace = false }; continue }
            if ch == "<" { inTag = true; continue }
            if ch == "{" { inBrace = true; continue }
            out.append(ch)
        }
        if out.contains("&") {
            for (e, r) in [("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"), ("&nbsp;", " "), ("&quot;", "\""), ("&#39;", "'"), ("&apos;", "'")] {
                out = out.replacingOccurrences(of: e, with: r)
            }
        }
        return out.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
    }
}
