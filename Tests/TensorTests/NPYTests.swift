import Foundation
import XCTest
import TestSupport
@testable import Tensor

final class NPYTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "npytests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    func testRoundTripFloatAndInt() throws {
        let f: [Float] = [1, -2.5, 3e-7, .greatestFiniteMagnitude, 0, 42]
        try NPY.write(f, shape: [2, 3], to: dir + "/f.npy")
        let a = try NPY.read(dir + "/f.npy")
        XCTAssertEqual(a.dtype, .float32)
        XCTAssertEqual(a.shape, [2, 3])
        XCTAssertEqual(try a.floats(), f)

        let i: [Int64] = [0, -1, Int64.max, 7]
        try NPY.write(i, shape: [4], to: dir + "/i.npy")
        let b = try NPY.read(dir + "/i.npy")
        XCTAssertEqual(b.dtype, .int64)
        XCTAssertEqual(try b.integers(Int64.self), i)
        XCTAssertThrowsError(try b.integers(Int32.self))  // Int64.max does not fit
    }

    func testHeaderIsAlignedAndNumpyShaped() throws {
        try NPY.write([Int32](repeating: 3, count: 5), shape: [5], to: dir + "/a.npy")
        let data = FileManager.default.contents(atPath: dir + "/a.npy")!
        let h = try NPY.parseHeader(data, path: nil)
        XCTAssertEqual(h.dataOffset % 64, 0)
        let text = String(decoding: data[10..<h.dataOffset], as: UTF8.self)
        XCTAssertTrue(text.contains("'shape': (5,)"), text)
        XCTAssertTrue(text.hasSuffix("\n"))
    }

    func testFloat16IsConverted() throws {
        let halves: [Float16] = [1.5, -0.25, 65504]
        let bits = halves.map { $0.bitPattern }
        try NPY.write(bits, shape: [3], to: dir + "/h.npy")
        // Rewrite the dtype as <f2 (same bytes).
        var arr = try NPY.read(dir + "/h.npy")
        arr.dtype = .float16
        try NPY.write(arr, to: dir + "/h2.npy")
        XCTAssertEqual(try NPY.read(dir + "/h2.npy").floats(), [1.5, -0.25, 65504])
    }

    func testStreamWriterPatchesShape() throws {
        let w = try NPYStreamWriter(path: dir + "/s.npy", dtype: .uint8, rowShape: [2, 3])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/s.npy"), "nothing at the final name until finish")
        for r in 0..<1000 {
            let row = [UInt8](repeating: UInt8(r % 256), count: 6)
            try row.withUnsafeBytes { try w.append($0) }
        }
        try w.finish()
        let a = try NPY.read(dir + "/s.npy")
        XCTAssertEqual(a.shape, [1000, 2, 3])
        let v = try a.values(UInt8.self)
        XCTAssertEqual(v[6 * 999], UInt8(999 % 256))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp") }
        XCTAssertEqual(leftovers, [])
    }

    func testAbandonedStreamLeavesNothing() throws {
        do {
            let w = try NPYStreamWriter(path: dir + "/x.npy", dtype: .float32, rowShape: [4])
            try [Float](repeating: 1, count: 4).withUnsafeBytes { try w.append($0) }
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }

    func testBadFilesGiveClearErrors() throws {
        try AtomicFile.write("hello", to: dir + "/bad.npy")
        XCTAssertThrowsError(try NPY.read(dir + "/bad.npy")) { e in
            XCTAssertTrue("\(e)".contains("bad.npy"), "\(e)")
            XCTAssertTrue("\(e)".contains("not a .npy"), "\(e)")
        }
        XCTAssertThrowsError(try NPY.read(dir + "/missing.npy")) { e in
            XCTAssertTrue("\(e)".contains("no such file"), "\(e)")
        }
        // Truncated data.
        try NPY.write([Float](repeating: 1, count: 100), shape: [100], to: dir + "/t.npy")
        let d = FileManager.default.contents(atPath: dir + "/t.npy")!
        try AtomicFile.write(d.prefix(d.count - 10), to: dir + "/t.npy")
        XCTAssertThrowsError(try NPY.read(dir + "/t.npy")) { e in
            XCTAssertTrue("\(e)".contains("truncated"), "\(e)")
        }
    }
}

final class RNGTests: XCTestCase {
    func testDeterministicAndUniform() {
        var a = SeededRNG(seed: 42), b = SeededRNG(seed: 42), c = SeededRNG(seed: 43)
        let xa = (0..<8).map { _ in a.next() }
        XCTAssertEqual(xa, (0..<8).map { _ in b.next() })
        XCTAssertNotEqual(xa, (0..<8).map { _ in c.next() })
        var counts = [Int](repeating: 0, count: 10)
        for _ in 0..<100_000 { counts[a.nextInt(10)] += 1 }
        for n in counts { XCTAssertEqual(Double(n), 10_000, accuracy: 500) }
        var sum = 0.0, sq = 0.0
        for _ in 0..<100_000 { let g = Double(a.nextGaussian()); sum += g; sq += g * g }
        XCTAssertEqual(sum / 100_000, 0, accuracy: 0.02)
        XCTAssertEqual(sq / 100_000, 1, accuracy: 0.02)
    }

    func testCodableKeepsState() throws {
        var r = SeededRNG(seed: 7)
        _ = r.next()
        let data = try JSONEncoder().encode(r)
        var r2 = try JSONDecoder().decode(SeededRNG.self, from: data)
        XCTAssertEqual(r.next(), r2.next())
    }
}

final class BLASTests: XCTestCase {
    func testSgemmTransposeFlags() {
        // A [2,3], B [3,2]
        let a: [Float] = [1, 2, 3, 4, 5, 6]
        let b: [Float] = [7, 8, 9, 10, 11, 12]
        var c = [Float](repeating: 0, count: 4)
        BLAS.sgemm(m: 2, n: 2, k: 3, a: a, b: b, c: &c)
        XCTAssertEqual(c, [58, 64, 139, 154])
        // A^T stored as [3,2]: same product via transA.
        let at: [Float] = [1, 4, 2, 5, 3, 6]
        var c2 = [Float](repeating: 0, count: 4)
        BLAS.sgemm(transA: true, m: 2, n: 2, k: 3, a: at, b: b, c: &c2)
        XCTAssertEqual(c2, c)
        // B^T stored as [2,3] via transB, accumulating with beta = 1.
        let bt: [Float] = [7, 9, 11, 8, 10, 12]
        BLAS.sgemm(transB: true, m: 2, n: 2, k: 3, a: a, b: bt, beta: 1, c: &c2)
        XCTAssertEqual(c2, c.map { 2 * $0 })
    }
}

final class ImageTests: XCTestCase {
    func testPNGStructureAndGrid() throws {
        var img = RGBImage(width: 3, height: 2, fill: (10, 20, 30))
        img.pixels[0] = 255
        let png = img.pngData()
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        XCTAssertEqual(String(decoding: png[12..<16], as: UTF8.self), "IHDR")
        XCTAssertEqual(Array(png[16..<24]), [0, 0, 0, 3, 0, 0, 0, 2])
        XCTAssertEqual(String(decoding: png.suffix(8).prefix(4), as: UTF8.self), "IEND")
        let g = RGBImage.grid([img, img, img], columns: 2, gap: 1)
        XCTAssertEqual(g.width, 2 * 3 + 3)
        XCTAssertEqual(g.height, 2 * 2 + 3)
        XCTAssertEqual(Array(g.pixels[((1 * g.width) + 1) * 3..<((1 * g.width) + 1) * 3 + 3]), [255, 20, 30])
    }
}

final class SafeTensorsTests: XCTestCase {
    func testRoundTripAndReadsHuggingFaceFile() throws {
        let dir = NSTemporaryDirectory() + "st-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a: [Float] = [1, 2, 3, 4, 5, 6], b: [Float] = [-1]
        try a.withUnsafeBufferPointer { pa in
            try b.withUnsafeBufferPointer { pb in
                try SafeTensors.write([(name: "z.weight", shape: [2, 3], values: pa), (name: "a.bias", shape: [1], values: pb)], to: dir + "/m.safetensors")
            }
        }
        let f = try SafeTensors.read(dir + "/m.safetensors")
        XCTAssertEqual(f.names, ["a.bias", "z.weight"])
        XCTAssertEqual(f.shape("z.weight"), [2, 3])
        XCTAssertEqual(try f.floats("z.weight"), a)
        XCTAssertEqual(f.metadata["format"], "pt")
        XCTAssertThrowsError(try f.floats("nope"))
        // Truncated file: offsets beyond the data.
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/m.safetensors"))
        try data.prefix(data.count - 4).write(to: URL(fileURLWithPath: dir + "/t.safetensors"))
        XCTAssertThrowsError(try SafeTensors.read(dir + "/t.safetensors")) { e in
            XCTAssertTrue("\(e)".contains("truncated"), "\(e)")
        }
    }

    func testReadsThePretrainedBERTWhenInstalled() throws {
        // tools/setup installs it; CI always runs setup first.
        let path = Repository.miniLM + "/model.safetensors"
        guard FileManager.default.fileExists(atPath: path) else {
            XCTFail("\(path) missing: run tools/setup"); return
        }
        let f = try SafeTensors.read(path)
        XCTAssertEqual(f.shape("embeddings.word_embeddings.weight"), [30522, 384])
        let ln = try f.floats("encoder.layer.0.attention.output.LayerNorm.weight")
        XCTAssertEqual(ln.count, 384)
        XCTAssertTrue(ln.allSatisfy { $0.isFinite })
        XCTAssertEqual(try f.floats("embeddings.position_ids").prefix(3), [0, 1, 2])
    }
}
