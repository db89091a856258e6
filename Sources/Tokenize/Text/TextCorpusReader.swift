import Foundation
import Tensor

/// The text lines of a corpus for vocabulary training: plain text files; WebVTT and SRT
/// subtitles and caption JSON (HowTo100M, YouCook2, per-video) read by the transcript parsers,
/// one line per cue (rolling YouTube captions deduplicated). Folders are searched recursively for
/// .txt, .vtt, .srt and .json files (in sorted order).
public enum TextCorpusReader {
    public static let folderExtensions: Set<String> = ["txt", "vtt", "srt", "json"]

    /// Every file named, folders expanded. Fails on a path that does not exist, and when no
    /// text file is found.
    public static func files(_ paths: [String]) throws -> [String] {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw VideoBertError("no such file or folder", file: path)
            }
            if !isDirectory.boolValue {
                files.append(path)
                continue
            }
            guard let walker = FileManager.default.enumerator(atPath: path) else {
                throw VideoBertError("cannot list folder", file: path)
            }
            var found: [String] = []
            while let relative = walker.nextObject() as? String {
                let ext = (relative as NSString).pathExtension.lowercased()
                if folderExtensions.contains(ext) { found.append((path as NSString).appendingPathComponent(relative)) }
            }
            if found.isEmpty { throw VideoBertError("no .txt, .vtt, .srt or .json files in folder", file: path) }
            files.append(contentsOf: found.sorted())
        }
        return files
    }

    /// The text lines of one file.
    public static func lines(ofFile path: String) throws -> [String] {
        switch (path as NSString).pathExtension.lowercased() {
        case "vtt", "srt":
            return try SubtitleParser.parseFile(path).cues.map(\.text)
        case "json":
            if let (_, entries) = try? CaptionJSON.parseCorpusFile(path) {
                return entries.keys.sorted().flatMap { entries[$0]!.transcript.cues.map(\.text) }
            }
            return try CaptionJSON.parseSingleFile(path).cues.map(\.text)
        default:
            break
        }
        guard let data = try InputFile.readIfExists(path) else {
            throw VideoBertError("cannot read file", file: path)
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            throw VideoBertError("not valid UTF-8 text", file: path)
        }
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }).map(String.init)
        switch (path as NSString).pathExtension.lowercased() {
        case "vtt": return subtitleText(lines, webVTT: true)
        case "srt": return subtitleText(lines, webVTT: false)
        default: return lines.filter { !$0.isEmpty }
        }
    }

    /// Subtitle lines without the WebVTT header and NOTE/STYLE/REGION blocks, cue numbers or
    /// identifiers before a timing line, timing lines ("… --> …") and <tags>.
    static func subtitleText(_ lines: [String], webVTT: Bool) -> [String] {
        var out: [String] = []
        var skippingBlock = false  // inside the header or a NOTE/STYLE/REGION block (ends at a blank line)
        for (i, raw) in lines.enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty {
                skippingBlock = false
                continue
            }
            if skippingBlock { continue }
            if webVTT && (line.hasPrefix("WEBVTT") || line.hasPrefix("NOTE") || line == "STYLE" || line == "REGION") {
                skippingBlock = true
                continue
            }
            if line.contains("-->") { continue }
            // A cue number or identifier: the line right before a timing line.
            if i + 1 < lines.count && lines[i + 1].contains("-->") { continue }
            let text = stripTags(line)
            if !text.isEmpty { out.append(text) }
        }
        return out
    }

    static func stripTags(_ line: String) -> String {
        guard line.contains("<") else { return line }
        var out = ""
        var inTag = false
        for c in line {
            if c == "<" { inTag = true } else if c == ">" && inTag { inTag = false } else if !inTag { out.append(c) }
        }
        return out.trimmingCharacters(in: .whitespaces)
    }
}
