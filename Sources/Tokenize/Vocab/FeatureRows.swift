import Foundation
import Tensor

/// Rows of clip features (one vector per clip) that a visual vocabulary is fitted on or assigns
/// words to. Rows are read on demand, so a corpus larger than memory works: the fit holds only
/// a seeded sample in memory, and assignment streams over the rest in chunks.
public protocol FeatureRows: Sendable {
    var rows: Int { get }
    var dim: Int { get }
    /// What to name in messages (a file or folder), if anything.
    var name: String? { get }
    /// Copies rows `range` as Float32 into `out` ([range.count, dim]).
    func copyRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) throws
    /// Copies the rows listed in `indices` (ascending) into `out` ([indices.count, dim]).
    func copyRows(at indices: [Int], into out: UnsafeMutablePointer<Float>) throws
}

/// Features already in memory ([rows, dim] Float32, row-major).
public struct InMemoryFeatureRows: FeatureRows {
    public let values: [Float]
    public let rows: Int
    public let dim: Int
    public let name: String?

    public init(_ values: [Float], rows: Int, dim: Int, name: String? = nil) throws {
        guard dim > 0, values.count == rows * dim else {
            throw VideoBertError("features: \(values.count) values do not form \(rows) rows of \(dim)", file: name)
        }
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw VideoBertError("feature row \(bad / dim) holds a NaN or infinite value", file: name)
        }
        self.values = values; self.rows = rows; self.dim = dim; self.name = name
    }

    public func copyRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) throws {
        values.withUnsafeBufferPointer { out.update(from: $0.baseAddress! + range.lowerBound * dim, count: range.count * dim) }
    }

    public func copyRows(at indices: [Int], into out: UnsafeMutablePointer<Float>) throws {
        values.withUnsafeBufferPointer { v in
            for (r, i) in indices.enumerated() { (out + r * dim).update(from: v.baseAddress! + i * dim, count: dim) }
        }
    }
}

/// Feature rows in .npy files ([rows, dim], float32, float16 or float64), concatenated in the
/// order given: one file, or a folder's `*.npy` files sorted by name (one file per video, the
/// layout of HowTo100M S3D dumps). Files are memory-mapped, so only the rows read are paged in.
/// A NaN or infinite value is an error naming the file and row.
public struct NPYFeatureFiles: FeatureRows {
    public struct File: Sendable {
        public let path: String
        public let rows: Int
        public let dtype: NPYDType
        let mapping: MappedFile
        let dataOffset: Int
    }
    public let files: [File]
    public let rows: Int
    public let dim: Int
    public let name: String?
    /// starts[i] = the first global row of files[i]; starts.last = rows.
    let starts: [Int]

    /// `path`: an .npy file, or a folder whose `*.npy` files are read in name order.
    public init(path: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw VideoBertError("no such file or folder", file: path)
        }
        var paths: [String]
        if isDir.boolValue {
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
                throw VideoBertError("cannot list folder: \(error.localizedDescription)", file: path)
            }
            paths = names.filter { $0.hasSuffix(".npy") && !$0.hasPrefix(".") }.sorted()
                .map { (path as NSString).appendingPathComponent($0) }
            guard !paths.isEmpty else { throw VideoBertError("folder holds no .npy feature files", file: path) }
        } else {
            paths = [path]
        }
        try self.init(paths: paths, name: path)
    }

    public init(paths: [String], name: String? = nil) throws {
        guard !paths.isEmpty else { throw VideoBertError("no feature files given", file: name) }
        var files: [File] = []
        var starts = [0]
        var dim: Int? = nil
        for p in paths {
            let header = try NPY.readHeader(p)
            guard [.float32, .float16, .float64].contains(header.dtype) else {
                throw VideoBertError("features must be float32 or float16, found dtype \(header.dtype.rawValue)", file: p)
            }
            guard header.shape.count == 2, header.shape[1] > 0 else {
                throw VideoBertError("features must have shape [clips, dim], found \(header.shape)", file: p)
            }
            if let d = dim, d != header.shape[1] {
                throw VideoBertError("feature dimension \(header.shape[1]) differs from \(d) in \(paths[0])", file: p)
            }
            dim = header.shape[1]
            let need = header.dataOffset + header.shape[0] * header.shape[1] * header.dtype.size
            let mapping = try MappedFile(path: p)
            guard mapping.length >= need else {
                throw VideoBertError("truncated .npy: shape \(header.shape) needs \(need) bytes, file has \(mapping.length)", file: p)
            }
            files.append(File(path: p, rows: header.shape[0], dtype: header.dtype, mapping: mapping, dataOffset: header.dataOffset))
            starts.append(starts.last! + header.shape[0])
        }
        self.files = files
        self.starts = starts
        self.rows = starts.last!
        self.dim = dim!
        self.name = name ?? paths.first
    }

    /// The file holding global row `row`.
    private func fileIndex(of row: Int) -> Int {
        var lo = 0, hi = files.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if starts[mid] <= row { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    /// Converts `count` rows of file `f` starting at its row `local` into `out`, checking values.
    private func convert(file f: Int, local: Int, count: Int, into out: UnsafeMutablePointer<Float>) throws {
        let file = files[f]
        let n = count * dim
        let base = file.mapping.bytes + file.dataOffset
        switch file.dtype {
        case .float32:
            let src = base + local * dim * 4
            #if _endian(little)
            UnsafeMutableRawPointer(out).copyMemory(from: src, byteCount: n * 4)
            #else
            for i in 0..<n { out[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))) }
            #endif
        case .float16:
            let src = base + local * dim * 2
            for i in 0..<n { out[i] = halfToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))) }
        case .float64:
            let src = base + local * dim * 8
            for i in 0..<n { out[i] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)))) }
        default:
            preconditionFailure("dtype checked at init")
        }
        if !allFinite(out, n) {
            let i = (0..<n).first { !out[$0].isFinite } ?? 0
            throw VideoBertError("row \(local + i / dim) holds a NaN or infinite value", file: file.path)
        }
    }

    public func copyRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) throws {
        var row = range.lowerBound
        var written = 0
        while row < range.upperBound {
            let f = fileIndex(of: row)
            let count = min(range.upperBound, starts[f + 1]) - row
            try convert(file: f, local: row - starts[f], count: count, into: out + written * dim)
            row += count
            written += count
        }
    }

    public func copyRows(at indices: [Int], into out: UnsafeMutablePointer<Float>) throws {
        var f = 0
        for (r, i) in indices.enumerated() {
            if i < starts[f] || i >= starts[f + 1] { f = fileIndex(of: i) }
            try convert(file: f, local: i - starts[f], count: 1, into: out + r * dim)
        }
    }
}

/// IEEE half → single precision with integer operations. The baseline x86-64 target has no
/// F16C, so `Float(Float16)` is a library call per value; this is exact for every half:
/// shifting exponent and mantissa into place and multiplying by 2^112 re-biases the exponent
/// (15 → 127) and normalises subnormals; infinities and NaNs keep an all-ones exponent.
@inline(__always)
func halfToFloat(_ h: UInt16) -> Float {
    let magnitude = UInt32(h & 0x7FFF) << 13
    let sign = UInt32(h & 0x8000) << 16
    if magnitude >= 0x0F80_0000 {   // exponent 31: infinity or NaN
        return Float(bitPattern: sign | 0x7F80_0000 | (magnitude & 0x007F_FFFF))
    }
    return Float(bitPattern: sign | (Float(bitPattern: magnitude) * 0x1p112).bitPattern)
}

/// Whether every x[i] is finite: x − x is 0 for finite x and NaN for NaN or ±∞.
@inline(__always)
func allFinite(_ x: UnsafePointer<Float>, _ n: Int) -> Bool {
    var acc = SIMD8<Float>()
    var i = 0
    while i + 8 <= n {
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
        acc += v - v
        i += 8
    }
    var s = acc.sum()
    while i < n { s += x[i] - x[i]; i += 1 }
    return s == 0
}

/// A read-only memory mapping of a whole file (unmapped when released). Reading it from several
/// threads is safe: nothing writes to it.
final class MappedFile: @unchecked Sendable {
    let bytes: UnsafeRawPointer
    let length: Int

    init(path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw VideoBertError("cannot open: \(String(cString: strerror(errno)))", file: path) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw VideoBertError("cannot stat: \(String(cString: strerror(errno)))", file: path) }
        length = Int(st.st_size)
        if length == 0 {
            bytes = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 8))
            return
        }
        guard let p = mmap(nil, length, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw VideoBertError("cannot map: \(String(cString: strerror(errno)))", file: path)
        }
        bytes = UnsafeRawPointer(p)
    }

    deinit {
        if length == 0 {
            UnsafeMutableRawPointer(mutating: bytes).deallocate()
        } else {
            munmap(UnsafeMutableRawPointer(mutating: bytes), length)
        }
    }
}
