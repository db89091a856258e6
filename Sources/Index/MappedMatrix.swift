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
    /// The mapping (Tensor/MappedNPY.swift: size checked before mmap, unmapped when released).
    private let file: MappedNPY

    /// Opens `path`; errors name it (not float32, not 2-D, truncated, sizes beyond the limits).
    public init(path: String, maxColumns: Int = 1 << 16) throws {
        let header = try NPY.readHeader(path)
        guard header.dtype == .float32 else { throw VideoBertError("expected float32, found \(header.dtype.rawValue)", file: path) }
        guard header.shape.count == 2 else { throw VideoBertError("expected a [rows, columns] matrix, found shape \(header.shape)", file: path) }
        let (r, c) = (header.shape[0], header.shape[1])
        guard c >= 1, c <= maxColumns, r >= 0, r <= Int(Int32.max) else {
            throw VideoBertError("shape \(header.shape) outside [0...\(Int32.max), 1...\(maxColumns)]", file: path)
        }
        guard header.dataOffset % 4 == 0 else {
            throw VideoBertError("the data starts at byte \(header.dataOffset), not a multiple of 4 (rewrite the file with numpy)", file: path)
        }
        file = try MappedNPY(path: path)
        guard file.dtype == .float32, file.shape == header.shape else {
            throw VideoBertError("changed while it was being opened", file: path)
        }
        self.path = path
        rows = r
        columns = c
        // An empty matrix maps nothing: point at a static empty buffer.
        values = file.data.map { $0.assumingMemoryBound(to: Float.self) } ?? Self.empty
    }

    nonisolated(unsafe) private static let empty = UnsafePointer<Float>(UnsafeMutablePointer<Float>.allocate(capacity: 1))

    public func row(_ i: Int) -> UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: values + i * columns, count: columns) }
}
