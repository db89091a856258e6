import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An .npy file memory-mapped read-only (docs/ARCHITECTURE.md §3, "Tokenized corpus"): the
/// header is parsed by the bounded reader (`NPY.readHeader`), the byte count it implies is
/// checked against the file's size *before* the mapping, so a truncated or hostile file is a
/// one-line error naming it, never a SIGBUS on a page past the end. The pages are the file's:
/// nothing is copied into the heap, several processes share them, and the kernel drops them
/// under memory pressure. Immutable once opened, so any thread may read it.
///
/// (A file truncated by another process *after* it was opened can still fault; the corpus
/// folders are written once under a temporary name and renamed, so that does not happen to them.)
public final class MappedNPY: @unchecked Sendable {
    public let path: String
    public let dtype: NPYDType
    public let shape: [Int]
    /// Elements: the product of `shape`.
    public let count: Int
    /// The first element (nil for an empty array).
    public let data: UnsafeRawPointer?
    private let base: UnsafeMutableRawPointer?
    private let length: Int

    /// Opens `path`; errors name it (not an .npy, unsupported dtype, truncated, sizes beyond the limits).
    public init(path: String) throws {
        let header = try NPY.readHeader(path)
        // readHeader bounded the byte count (Bounded.byteCount); the sum cannot overflow.
        let need = header.dataOffset + header.byteCount
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw VideoBertError("cannot open: \(String(cString: strerror(errno)))", file: path) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw VideoBertError("cannot stat: \(String(cString: strerror(errno)))", file: path) }
        guard st.st_mode & S_IFMT == S_IFREG else { throw VideoBertError("is not a regular file", file: path) }
        guard Int(st.st_size) >= need else {
            throw VideoBertError("truncated .npy: shape \(header.shape) needs \(need) bytes, the file has \(st.st_size)", file: path)
        }
        self.path = path
        dtype = header.dtype
        shape = header.shape
        count = header.shape.reduce(1, *)
        if header.byteCount == 0 {
            base = nil; length = 0; data = nil
            return
        }
        length = need
        guard let p = mmap(nil, need, PROT_READ, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            throw VideoBertError("cannot map: \(String(cString: strerror(errno)))", file: path)
        }
        base = p
        data = UnsafeRawPointer(p + header.dataOffset)
    }

    deinit { if let base { munmap(base, length) } }

    /// The array as a column of `T`, when its dtype is exactly `T`'s.
    public func column<T: NPYScalar & BitwiseCopyable>(_: T.Type = T.self) throws -> MappedColumn<T> {
        guard dtype == T.npyDType else {
            throw VideoBertError("expected \(T.npyDType.rawValue) array, found dtype \(dtype.rawValue)", file: path)
        }
        return MappedColumn(file: self)
    }

    /// Elements per row of the first dimension (1 for a 1-D array, 0 when a dimension is 0).
    public var rowElements: Int { shape.count <= 1 ? 1 : shape.dropFirst().reduce(1, *) }

    /// Rows `rows` (indices along the first dimension) appended to `out` as Float32, converting
    /// float16 (and uint8) on the way: the per-batch conversion of stored features
    /// (`store.features_dtype: float16`). Rows must be in range (callers index from validated corpora).
    public func appendFloatRows<C: Collection>(_ rows: C, to out: inout [Float]) where C.Element == Int {
        let per = rowElements
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: rows.count * per))
        guard per > 0, let data else { return }
        out.withUnsafeMutableBufferPointer { dst in
            var o = start
            for r in rows {
                precondition(r >= 0 && (r + 1) * per <= count, "row \(r) outside \(path)")
                let src = data + r * per * dtype.size
                switch dtype {
                case .float32:
                    // The data offset of numpy's files is a multiple of 64; memcpy is alignment-free anyway.
                    memcpy(dst.baseAddress! + o, src, per * 4)
                case .float16:
                    for i in 0..<per {
                        dst[o + i] = Float(Float16(bitPattern: UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))))
                    }
                case .uint8:
                    let b = src.assumingMemoryBound(to: UInt8.self)
                    for i in 0..<per { dst[o + i] = Float(b[i]) }
                default:
                    preconditionFailure("appendFloatRows: dtype \(dtype.rawValue) (checked by the caller)")
                }
                o += per
            }
        }
    }

    /// Rows `rows` appended to `out` as raw bytes (uint8 frames and the like).
    public func appendByteRows<C: Collection>(_ rows: C, to out: inout [UInt8]) where C.Element == Int {
        let rowBytes = rowElements * dtype.size
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: rows.count * rowBytes))
        guard rowBytes > 0, let data else { return }
        out.withUnsafeMutableBytes { dst in
            var o = start
            for r in rows {
                precondition(r >= 0 && (r + 1) * rowElements <= count, "row \(r) outside \(path)")
                memcpy(dst.baseAddress! + o, data + r * rowBytes, rowBytes)
                o += rowBytes
            }
        }
    }
}

/// A read-only column of a memory-mapped .npy array, indexed 0..<count like an array; reading
/// an element loads it from the mapped page (unaligned loads: a hostile header may place the
/// data anywhere). Holds its file open while any copy of it lives.
///
/// A column may also be the concatenation of parts of several files (`concatenating`): the
/// arrays of a sharded corpus (docs/ARCHITECTURE.md §3), each part's integers shifted by its
/// shard's base (an offset array's values, a video index), so readers see one column.
public struct MappedColumn<T: NPYScalar & BitwiseCopyable>: RandomAccessCollection, @unchecked Sendable {
    /// The file (the first part's, for a concatenated column).
    public let file: MappedNPY?
    /// The single file's data (nil for a concatenated column: see `parts`).
    private let data: UnsafeRawPointer?
    public let count: Int
    /// A concatenated column's parts, in order; empty for a single file.
    private let parts: [Part]
    /// How a part's bias is added to a value (integer columns only).
    private let add: (@Sendable (T, Int64) -> T)?

    struct Part {
        let file: MappedNPY
        let data: UnsafeRawPointer?
        /// Its first element in the file, its first index in the column, its length.
        let first: Int, begin: Int, count: Int
        let bias: Int64
    }

    init(file: MappedNPY) {
        self.file = file
        data = file.data
        count = file.count
        parts = []
        add = nil
    }

    /// An empty column.
    public init() { file = nil; data = nil; count = 0; parts = []; add = nil }

    private init(parts input: [(column: MappedColumn<T>, range: Range<Int>, bias: Int64)], add: (@Sendable (T, Int64) -> T)?) {
        var parts: [Part] = []
        var n = 0
        for (c, r, bias) in input where !r.isEmpty {
            precondition(r.lowerBound >= 0 && r.upperBound <= c.count && c.parts.isEmpty, "part \(r) of a column of \(c.count)")
            guard let f = c.file else { continue }
            parts.append(Part(file: f, data: f.data, first: r.lowerBound, begin: n, count: r.count, bias: bias))
            n += r.count
        }
        file = parts.first?.file
        data = nil
        count = n
        self.parts = parts
        self.add = add
    }

    /// The elements `range` of each single-file column, one after the other, each shifted by its `bias`.
    public static func concatenating(_ parts: [(column: MappedColumn<T>, range: Range<Int>, bias: Int64)]) -> MappedColumn<T> where T: FixedWidthInteger {
        MappedColumn(parts: parts, add: { $0 &+ T(truncatingIfNeeded: $1) })
    }

    /// The single-file columns one after the other, unchanged.
    public static func concatenating(_ columns: [MappedColumn<T>]) -> MappedColumn<T> {
        MappedColumn(parts: columns.map { ($0, 0..<$0.count, 0) }, add: nil)
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }
    public func index(after i: Int) -> Int { i + 1 }
    public func index(before i: Int) -> Int { i - 1 }

    /// The part holding element `i` (binary search over the parts' starts).
    private func part(of i: Int) -> Part {
        var lo = 0, hi = parts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if parts[mid].begin <= i { lo = mid } else { hi = mid - 1 }
        }
        return parts[lo]
    }

    public subscript(i: Int) -> T {
        precondition(i >= 0 && i < count, "index \(i) out of range 0..<\(count)")
        if parts.isEmpty { return data!.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.stride, as: T.self) }
        let p = part(of: i)
        let v = p.data!.loadUnaligned(fromByteOffset: (p.first + i - p.begin) * MemoryLayout<T>.stride, as: T.self)
        guard p.bias != 0, let add else { return v }
        return add(v, p.bias)
    }

    /// The file element `i` is read from and its position there (for error messages).
    public func location(of i: Int) -> (path: String, position: Int)? {
        guard i >= 0 && i < count else { return nil }
        if parts.isEmpty { return file.map { ($0.path, i) } }
        let p = part(of: i)
        return (p.file.path, p.first + i - p.begin)
    }

    /// Elements `range` copied into an array (a segment's ids, a video's clips).
    public func slice(_ range: Range<Int>) -> ArraySlice<T> {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "range \(range) out of 0..<\(count)")
        guard !range.isEmpty else { return [] }
        if parts.isEmpty {
            guard let data else { return [] }
            return ArraySlice([T](unsafeUninitializedCapacity: range.count) { buf, n in
                memcpy(buf.baseAddress!, data + range.lowerBound * MemoryLayout<T>.stride, range.count * MemoryLayout<T>.stride)
                n = range.count
            })
        }
        return ArraySlice(range.map { self[$0] })
    }
}
