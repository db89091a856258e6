import Foundation
import Tensor
#if canImport(Glibc)
import Glibc
#endif

/// A float32 [rows, columns] .npy file memory-mapped read-only (the pages are the file's: nothing
/// is copied, and several processes share them). Immutable once opened, so any thread may read it.
public final class MappedMatrix: @unchecked Sendable {
    public let path: String
    public let rows: Int
    public let columns: Int
    /// rows × columns values, row-major.
    public let values: UnsafePointer<Float>
    private let base: UnsafeMutableRawPointer
    private let length: Int

    /// Opens `path`; errors name it (not float32, not 2-D, truncated, sizes beyond the limits).
    public init(path: String, maxColumns: Int = 1 << 16) throws {
        let header = try NPY.readHeader(path)
        guard header.dtype == .float32 else { throw VideoBertError("expected float32, found \(header.dtype.rawValue)", file: path) }
        guard header.shape.count == 2 else { throw VideoBertError("expected a [rows, columns] matrix, found shape \(header.shape)", file: path) }
        let (r, c) = (header.shape[0], header.shape[1])
        guard c >= 1, c <= maxColumns, r >= 0, r <= Int(Int32.max) else {
            throw VideoBertError("shape \(header.shape) outside [0...\(Int32.max), 1...\(maxColumns)]", file: path)
        }
        let (bytes, overflow) = r.multipliedReportingOverflow(by: c * 4)
        guard !overflow else { throw VideoBertError("shape \(header.shape) is too large", file: path) }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw VideoBertError("cannot open: \(String(cString: strerror(errno)))", file: path) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw VideoBertError("cannot stat: \(String(cString: strerror(errno)))", file: path) }
        let need = header.dataOffset + bytes
        guard Int(st.st_size) >= need else {
            throw VideoBertError("truncated .npy: shape \(header.shape) needs \(need) bytes, the file has \(st.st_size)", file: path)
        }
        length = max(need, 1)
        guard let p = mmap(nil, length, PROT_READ, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            throw VideoBertError("cannot map: \(String(cString: strerror(errno)))", file: path)
        }
        base = p
        self.path = path
        rows = r
        columns = c
        values = UnsafeRawPointer(p + header.dataOffset).assumingMemoryBound(to: Float.self)
    }

    deinit { munmap(base, length) }

    public func row(_ i: Int) -> UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: values + i * columns, count: columns) }
}
