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
    /// A file is never renamed over a folder (that would destroy the folder and all it holds).
    public static func commit(temporary tmp: String, to path: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            var tmpIsDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: tmp, isDirectory: &tmpIsDir), tmpIsDir.boolValue else {
                try? FileManager.default.removeItem(atPath: tmp)
                throw VideoBertError("is a folder; give the path of a file to write (a folder is never replaced by a file)", file: path)
            }
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

    /// Checks, before any work, that `path` can be written as a file: not an existing folder,
    /// and not the same file as any of `inputs` (a command never overwrites what it reads).
    public static func checkOutputFile(_ path: String, inputs: [String] = []) throws {
        var st = stat()
        guard stat(path, &st) == 0 else { return }  // nothing there yet
        if st.st_mode & S_IFMT == S_IFDIR {
            throw VideoBertError("is a folder; give the path of a file to write (a folder is never replaced by a file)", file: path)
        }
        for input in inputs {
            var si = stat()
            if stat(input, &si) == 0, si.st_dev == st.st_dev, si.st_ino == st.st_ino {
                throw VideoBertError("is also an input (\(input)); write the output to another file", file: path)
            }
        }
    }

    /// Checks that the folder `dir` (created or filled by a command) is not one of `inputs`
    /// and does not hold the same file as one of them; an existing regular file there is refused.
    public static func checkOutputFolder(_ dir: String, inputs: [String] = []) throws {
        var st = stat()
        guard stat(dir, &st) == 0 else { return }
        guard st.st_mode & S_IFMT == S_IFDIR else {
            throw VideoBertError("exists and is not a folder; give a folder path for the output", file: dir)
        }
        for input in inputs {
            var si = stat()
            if stat(input, &si) == 0, si.st_dev == st.st_dev, si.st_ino == st.st_ino {
                throw VideoBertError("is also an input (\(input)); write the output to another folder", file: dir)
            }
        }
    }

    /// Removes what a killed run left in `dir`: temporary files and folders made by
    /// `temporaryPath` (`.NAME.tmp-PID-N`, `.NAME.tmp-PID-N.old`) whose process is gone.
    /// Returns the names removed. Call it while holding the folder's lock (`FolderLock`).
    @discardableResult
    public static func removeStaleTemporaries(in dir: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return [] }
        var removed: [String] = []
        for name in names where name.hasPrefix(".") {
            guard let r = name.range(of: ".tmp-") else { continue }
            let pidText = name[r.upperBound...].prefix { $0.isNumber }
            guard let pid = Int32(pidText), pid > 0 else { continue }
            // A live process (ours or another's) may still be writing it.
            if pid == getpid() || kill(pid, 0) == 0 || errno == EPERM { continue }
            if (try? FileManager.default.removeItem(atPath: (dir as NSString).appendingPathComponent(name))) != nil {
                removed.append(name)
            }
        }
        return removed.sorted()
    }
}

/// An exclusive lock on an output folder (docs/RELIABILITY.md, "concurrency"): flock(2) on
/// `DIR/.videobert.lock`, which holds the owner's pid. A second run writing into the same folder
/// is refused with a message naming the folder and that pid. The lock is released when the
/// process exits (even by SIGKILL: the kernel drops flocks with the file descriptor).
public final class FolderLock: @unchecked Sendable {
    public let dir: String
    private let fd: Int32
    nonisolated(unsafe) private static var held: [String: FolderLock] = [:]
    private static let heldLock = NSLock()

    public static let fileName = ".videobert.lock"

    private init(dir: String, fd: Int32) { self.dir = dir; self.fd = fd }

    /// Takes the lock on `dir` (created if missing) for the rest of the process, or throws naming
    /// the folder and the pid of the run holding it. Taking it again in the same process is a no-op.
    @discardableResult
    public static func acquire(_ dir: String) throws -> FolderLock {
        try AtomicFile.createDirectory(dir)
        let key = URL(fileURLWithPath: dir).standardizedFileURL.path
        heldLock.lock(); defer { heldLock.unlock() }
        if let l = held[key] { return l }
        let path = (dir as NSString).appendingPathComponent(fileName)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw VideoBertError("cannot create lock file: \(String(cString: strerror(errno)))", file: path)
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var buf = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &buf, 31, 0)
            close(fd)
            let pid = n > 0 ? String(decoding: buf[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "?"
            throw VideoBertError("folder is in use by another videobert run (pid \(pid)); wait for it to finish or use another output folder", file: dir)
        }
        let text = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
        let l = FolderLock(dir: dir, fd: fd)
        held[key] = l
        return l
    }

    /// Gives the lock up early (tests; commands keep it until they exit).
    public func release() {
        Self.heldLock.lock(); defer { Self.heldLock.unlock() }
        Self.held = Self.held.filter { $0.value !== self }
        flock(fd, LOCK_UN)
        close(fd)
    }
}
