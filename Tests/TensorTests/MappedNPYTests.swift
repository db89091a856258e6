import Foundation
import XCTest
@testable import Tensor

/// Tensor/MappedNPY.swift: .npy arrays memory-mapped after their header was checked against the
/// file's size; a truncated or hostile file is a one-line error naming it, never a SIGBUS.
final class MappedNPYTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "mappednpy-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func assertError(_ path: String, _ needles: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), file: file, line: line) { e in
            let s = "\(e)"
            XCTAssertTrue(s.hasPrefix(path + ": "), s, file: file, line: line)
            XCTAssertFalse(s.contains("\n"), s, file: file, line: line)
            for n in needles { XCTAssertTrue(s.contains(n), "\(s) lacks \(n)", file: file, line: line) }
        }
    }

    func testColumnsReadWhatWasWritten() throws {
        let ints: [Int32] = [3, -1, 7, 1 << 30, 0]
        let longs: [Int64] = [0, 5, 1 << 40]
        let floats: [Float] = [0.5, -2, 3.25, 1e-7, 7, 8]
        try NPY.write(ints, shape: [5], to: dir + "/i.npy")
        try NPY.write(longs, shape: [3], to: dir + "/l.npy")
        try NPY.write(floats, shape: [3, 2], to: dir + "/f.npy")
        XCTAssertEqual(Array(try MappedNPY(path: dir + "/i.npy").column(Int32.self)), ints)
        XCTAssertEqual(Array(try MappedNPY(path: dir + "/l.npy").column(Int64.self)), longs)
        let f = try MappedNPY(path: dir + "/f.npy")
        XCTAssertEqual(f.shape, [3, 2])
        XCTAssertEqual(f.rowElements, 2)
        XCTAssertEqual(Array(try f.column(Float.self)), floats)
        XCTAssertEqual(try MappedNPY(path: dir + "/i.npy").column(Int32.self).slice(1..<4), [-1, 7, 1 << 30])
        var rows: [Float] = [9]
        f.appendFloatRows([2, 0], to: &rows)
        XCTAssertEqual(rows, [9, 7, 8, 0.5, -2])
        assertError(dir + "/i.npy", ["expected <i8", "<i4"]) { _ = try MappedNPY(path: dir + "/i.npy").column(Int64.self) }
    }

    /// float16 rows come back as the float32 values they round to (|error| ≤ 2^-11 relative).
    func testFloat16RowsConvertPerRow() throws {
        let values: [Float] = (0..<12).map { Float($0) * 0.37 - 2 }
        let half = values.map { Float16($0).bitPattern }
        try half.withUnsafeBytes { try NPY.write(raw: $0, dtype: .float16, shape: [4, 3], to: dir + "/h.npy") }
        let m = try MappedNPY(path: dir + "/h.npy")
        var out: [Float] = []
        m.appendFloatRows([3, 1], to: &out)
        let want = [9, 10, 11, 3, 4, 5].map { values[$0] }
        for (a, b) in zip(out, want) { XCTAssertEqual(a, b, accuracy: abs(b) * 0x1p-11 + 1e-7) }
        XCTAssertEqual(out, [9, 10, 11, 3, 4, 5].map { Float(Float16(values[$0])) })
    }

    func testEmptyArrayMapsNothing() throws {
        try NPY.write([Int32](), shape: [0], to: dir + "/e.npy")
        let c = try MappedNPY(path: dir + "/e.npy").column(Int32.self)
        XCTAssertTrue(c.isEmpty)
        XCTAssertEqual(c.slice(0..<0), [])
    }

    /// A header whose shape claims more bytes than the file holds is refused before mmap: reading
    /// past the end of a mapped file would be a SIGBUS, not an error.
    func testTruncatedFileIsAnErrorNotASIGBUS() throws {
        let p = dir + "/t.npy"
        try NPY.write([Float](repeating: 1, count: 10_000), shape: [100, 100], to: p)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: p))
        try bytes.prefix(bytes.count - 4096 - 3).write(to: URL(fileURLWithPath: p))
        assertError(p, ["truncated .npy", "[100, 100]", "needs"]) { _ = try MappedNPY(path: p) }
        // A shape past the byte limit, and one whose product overflows.
        for (name, shape) in [("big", "(1099511627776, 4)"), ("overflow", "(4611686018427387904, 4611686018427387904)")] {
            var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }"
            header += String(repeating: " ", count: 117 - header.utf8.count) + "\n"
            let q = dir + "/\(name).npy"
            FileManager.default.createFile(atPath: q, contents: Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, 118, 0] + Array(header.utf8) + [0, 0, 0, 0]))
            assertError(q, ["too large"]) { _ = try MappedNPY(path: q) }
        }
        assertError(dir + "/none.npy", ["no such file"]) { _ = try MappedNPY(path: dir + "/none.npy") }
        assertError(dir, ["not a regular file"]) { _ = try MappedNPY(path: dir) }
    }

    /// A header of odd length puts the data at an odd offset: elements are read unaligned, correctly.
    func testUnalignedDataIsReadCorrectly() throws {
        var header = "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }"
        header += String(repeating: " ", count: 60 - header.utf8.count) + "\n"   // 10 + 61 = 71: odd
        var bytes: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(header.utf8.count), 0] + Array(header.utf8)
        for v: Int64 in [1, -2, 1 << 50] { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        let p = dir + "/odd.npy"
        FileManager.default.createFile(atPath: p, contents: Data(bytes))
        XCTAssertEqual(try NPY.readHeader(p).dataOffset, 71)
        XCTAssertEqual(Array(try MappedNPY(path: p).column(Int64.self)), [1, -2, 1 << 50])
    }
}
