import Foundation

/// Writes that never leave a half-written file behind: everything goes to a temporary
/// name in the destination's folder and is renamed over the destination at the end.
/// rename(2) within one file system is atomic, so a reader sees the old file or the new one.
public enum AtomicFile {
    /// A temporary path beside `path` (same folder, so the final rename stays on one file system).
    public static func temporaryPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        let name = url.lastPathComponent
        let unique = "\(getpid())-\(UInt64.random(in: 0...UInt64.max) & 0xffffff)"
        return (dir as NSString).appendingPathComponent(".\(name).tmp-\(unique)")
    }

    /// Writes `data` to `path` atomically, creating the parent folder if needed.
    public static func write(_ data: Data, to path: String) throws {
        try createParent(of: path)
        let tmp = temporaryPath(for: path)
        do {
            try data.write(to: URL(fileURLWithPath: tmp))
            try commit(temporary: tmp, to: path)
        } catch let e as VideoBertError {
            try? FileManager.default.removeItem(atPath: tmp)
            throw e
        } catch {
            try? FileManager.default.removeItem(atPath: tmp)
            throw VideoBertError("cannot write: \(error.localizedDescription)", file: path)
        }
    }

    public static func write(_ string: String, to path: String) throws {
        try write(Data(string.utf8), to: path)
    }

    /// Renames a finished temporary file (or folder) over `path`.
    /// A folder at `path` is replaced: renamed aside first, then removed.
    public static func commit(temporary tmp: String, to path: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            let aside = temporaryPath(for: path) + ".old"
            guard rename(path, aside) == 0 else {
                throw VideoBertError("cannot replace folder: \(String(cString: strerror(errno)))", file: path)
            }
            guard rename(tmp, path) == 0 else {
                let err = String(cString: strerror(errno))
                _ = rename(aside, path)
                throw VideoBertError("cannot rename \(tmp) into place: \(err)", file: path)
            }
            try? FileManager.default.removeItem(atPath: aside)
            return
        }
        guard rename(tmp, path) == 0 else {
            throw VideoBertError("cannot rename \(tmp) into place: \(String(cString: strerror(errno)))", file: path)
        }
    }

    public static func createParent(of path: String) throws {
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try createDirectory(dir)
    }

    public static func createDirectory(_ dir: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw VideoBertError("cannot create folder: \(error.localizedDescription)", file: dir)
        }
    }
}
