import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Opening files we read, checked (docs/RELIABILITY.md, "bad input"): a folder, a FIFO, a device
/// or a socket given where a file is expected is a one-line error (never a hang on a FIFO, never
/// "empty file"), and a file larger than what its reader accepts is refused before it is read.
public enum InputFile {
    /// What kind of thing is at `path` when it is not a regular file, for messages.
    static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "a folder"
        case S_IFIFO: return "a FIFO (named pipe)"
        case S_IFCHR, S_IFBLK: return "a device"
        case S_IFSOCK: return "a socket"
        case S_IFLNK: return "a symbolic link"
        default: return "not a regular file"
        }
    }

    /// The size of the regular file at `path` (symbolic links followed); an error naming the
    /// file when it is missing, unreadable or not a regular file.
    public static func size(_ path: String) throws -> Int {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let e = errno
            throw VideoBertError(e == ENOENT ? "no such file" : "cannot read file: \(String(cString: strerror(e)))", file: path)
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw VideoBertError("is \(kind(st.st_mode)), not a regular file", file: path)
        }
        return Int(st.st_size)
    }

    /// The bytes of the regular file at `path`, refused when larger than `maxBytes`
    /// (`what` names the kind of file in that message).
    public static func read(_ path: String, maxBytes: Int, what: String = "file") throws -> Data {
        let n = try size(path)
        guard n <= maxBytes else {
            throw VideoBertError("\(what) is \(n) bytes, more than the \(maxBytes)-byte limit for such files", file: path)
        }
        guard let fh = FileHandle(forReadingAtPath: path) else {
            throw VideoBertError("cannot read file", file: path)
        }
        defer { try? fh.close() }
        do {
            return try fh.readToEnd() ?? Data()
        } catch {
            throw VideoBertError("cannot read file: \(error.localizedDescription)", file: path)
        }
    }

    /// `read`, or nil when nothing is at `path` (callers keep their own "no such ..." message).
    public static func readIfExists(_ path: String, maxBytes: Int = 1 << 30) throws -> Data? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try read(path, maxBytes: maxBytes)
    }

    /// The regular file at `path`, memory-mapped (large binaries: weights, arrays).
    public static func mapped(_ path: String) throws -> Data {
        _ = try size(path)
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw VideoBertError("cannot read file: \(error.localizedDescription)", file: path)
        }
    }

    /// The text of a file as UTF-8, with the byte-order marks that mean another encoding named:
    /// UTF-16 and UTF-32 files are decoded (from their BOM); a UTF-8 BOM is dropped. Bytes that are
    /// not UTF-8 become U+FFFD, and `invalidLines` lists the (1-based) lines that held them.
    public static func decodeText(_ data: Data) -> (text: String, invalidLines: [Int], encoding: String) {
        let b = [UInt8](data.prefix(4))
        if b.count >= 4, b[0] == 0xFF, b[1] == 0xFE, b[2] == 0, b[3] == 0,
           let s = String(data: data, encoding: .utf32LittleEndian) {
            return (s.hasPrefix("\u{FEFF}") ? String(s.dropFirst()) : s, [], "UTF-32LE")
        }
        if b.count >= 4, b[0] == 0, b[1] == 0, b[2] == 0xFE, b[3] == 0xFF,
           let s = String(data: data, encoding: .utf32BigEndian) {
            return (s.hasPrefix("\u{FEFF}") ? String(s.dropFirst()) : s, [], "UTF-32BE")
        }
        if b.count >= 2, (b[0] == 0xFF && b[1] == 0xFE) || (b[0] == 0xFE && b[1] == 0xFF) {
            let enc: String.Encoding = b[0] == 0xFF ? .utf16LittleEndian : .utf16BigEndian
            if let s = String(data: data.dropFirst(2), encoding: enc) {
                return (s, [], b[0] == 0xFF ? "UTF-16LE" : "UTF-16BE")
            }
        }
        var body = data
        if b.count >= 3, b[0] == 0xEF, b[1] == 0xBB, b[2] == 0xBF { body = data.dropFirst(3) }
        if let s = String(validatingUTF8Data: body) { return (s, [], "UTF-8") }
        // Find the lines holding invalid sequences; decode with replacement of those bytes only.
        var bad: [Int] = []
        var line = 1
        var start = body.startIndex
        for i in body.indices where body[i] == 0x0A {
            if String(validatingUTF8Data: body[start..<i]) == nil { bad.append(line) }
            line += 1
            start = i + 1
        }
        if start < body.endIndex, String(validatingUTF8Data: body[start...]) == nil { bad.append(line) }
        return (String(decoding: body, as: UTF8.self), bad, "UTF-8")
    }
}

extension String {
    /// The text when `data` is valid UTF-8, else nil.
    init?<D: DataProtocol>(validatingUTF8Data data: D) {
        let s = String(decoding: data, as: UTF8.self)
        guard s.utf8.elementsEqual(data) else { return nil }
        self = s
    }
}
