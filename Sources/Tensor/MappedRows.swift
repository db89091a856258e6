import Foundation

/// The rows of one array stored as several memory-mapped .npy files of the same dtype and row
/// shape, one after the other (a sharded corpus' `clip_features.npy` / `clip_frames.npy`,
/// docs/ARCHITECTURE.md §3); a single file is the one-shard case. Row r of the whole is row
/// r − start(k) of file k. Like `MappedNPY`, nothing is copied until a batch's rows are asked for.
public final class MappedRows: @unchecked Sendable {
    public let files: [MappedNPY]
    /// The first row of each file, and the total as a last element.
    private let starts: [Int]
    public let dtype: NPYDType
    /// The shape of one row (the files' shapes without their first dimension).
    public let rowShape: [Int]

    /// Rows in all the files.
    public var rows: Int { starts[starts.count - 1] }
    /// The shape of the whole: [rows] + rowShape.
    public var shape: [Int] { [rows] + rowShape }
    /// Elements per row.
    public var rowElements: Int { rowShape.reduce(1, *) }

    /// The files, in order; they must share dtype and row shape (the error names the first that does not).
    public init(_ files: [MappedNPY]) throws {
        guard let first = files.first else { throw VideoBertError("no files to read rows from", file: nil) }
        for f in files {
            guard f.shape.count >= 1 else { throw VideoBertError("expected an array of rows, got a scalar", file: f.path) }
            guard f.dtype == first.dtype, Array(f.shape.dropFirst()) == Array(first.shape.dropFirst()) else {
                throw VideoBertError("is \(f.dtype.rawValue) \(f.shape), the first shard's is \(first.dtype.rawValue) \(first.shape) (\(first.path))", file: f.path)
            }
        }
        self.files = files
        var starts = [0]
        for f in files { starts.append(starts[starts.count - 1] + f.shape[0]) }
        self.starts = starts
        dtype = first.dtype
        rowShape = Array(first.shape.dropFirst())
    }

    public convenience init(_ file: MappedNPY) throws { try self.init([file]) }

    /// The file holding row `r` and the row's index in it.
    public func locate(_ r: Int) -> (file: Int, row: Int) {
        precondition(r >= 0 && r < rows, "row \(r) outside 0..<\(rows)")
        var lo = 0, hi = files.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if starts[mid] <= r { lo = mid } else { hi = mid - 1 }
        }
        return (lo, r - starts[lo])
    }

    /// The first byte of row `r` (in its file's mapping).
    public func rowPointer(_ r: Int) -> UnsafeRawPointer? {
        let (k, row) = locate(r)
        return files[k].data.map { $0 + row * rowElements * dtype.size }
    }

    /// Calls `body` with runs of consecutive requested rows that lie in one file: (file, local rows).
    private func runs<C: Collection>(_ rows: C, _ body: (MappedNPY, [Int]) -> Void) where C.Element == Int {
        if files.count == 1 { body(files[0], Array(rows)); return }
        var current = -1
        var local: [Int] = []
        for r in rows {
            let (k, row) = locate(r)
            if k != current, !local.isEmpty { body(files[current], local); local.removeAll(keepingCapacity: true) }
            current = k
            local.append(row)
        }
        if !local.isEmpty { body(files[current], local) }
    }

    /// Rows `rows` appended to `out` as Float32 (float16 and uint8 converted), as `MappedNPY.appendFloatRows`.
    public func appendFloatRows<C: Collection>(_ rows: C, to out: inout [Float]) where C.Element == Int {
        runs(rows) { f, local in f.appendFloatRows(local, to: &out) }
    }

    /// Rows `rows` appended to `out` as raw bytes, as `MappedNPY.appendByteRows`.
    public func appendByteRows<C: Collection>(_ rows: C, to out: inout [UInt8]) where C.Element == Int {
        runs(rows) { f, local in f.appendByteRows(local, to: &out) }
    }
}
