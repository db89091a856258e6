import Foundation
import XCTest
@testable import Tensor

/// Hostile .npy and safetensors files, built here byte by byte: every one is a one-line error
/// naming the file and the key (docs/RELIABILITY.md, "sizes"), never a trap or a giant allocation.
final class HostileFileTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "hostile-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    func write(_ name: String, _ bytes: [UInt8]) -> String {
        let p = dir + "/" + name
        FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }

    /// Asserts `body` throws one line starting with `path: ` and containing every `needle`.
    func assertError(_ path: String, _ needles: [String], file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) {
        XCTAssertThrowsError(try body(), file: file, line: line) { e in
            let s = "\(e)"
            XCTAssertTrue(s.hasPrefix(path + ": "), s, file: file, line: line)
            XCTAssertFalse(s.contains("\n"), s, file: file, line: line)
            for n in needles { XCTAssertTrue(s.contains(n), "\(s) lacks \(n)", file: file, line: line) }
        }
    }

    // MARK: Bounded

    func testBoundedProductAndSum() {
        XCTAssertEqual(Bounded.product([2, 3, 4]), 24)
        XCTAssertEqual(Bounded.product([]), 1)
        XCTAssertNil(Bounded.product([1 << 40, 1 << 40]), "overflow")
        XCTAssertNil(Bounded.product([3, -1]), "negative")
        XCTAssertNil(Bounded.product([10, 10], limit: 99))
        XCTAssertEqual(Bounded.product([0, Int.max]), 0)
        XCTAssertNil(Bounded.sum(Int.max, 1))
        XCTAssertNil(Bounded.sum(-1, 1))
        XCTAssertEqual(Bounded.exactInt(NSNumber(value: 12)), 12)
        XCTAssertNil(Bounded.exactInt(NSNumber(value: 1.5)))
        XCTAssertNil(Bounded.exactInt(NSNumber(value: 1e30)))
        XCTAssertNil(Bounded.exactInt("12"))
    }

    // MARK: .npy

    func npy(_ header: String, body: [UInt8] = [], version: UInt8 = 1) -> [UInt8] {
        var dict = Array(header.utf8)
        while (10 + dict.count + 1) % 64 != 0 { dict.append(0x20) }
        dict.append(0x0A)
        return [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, version, 0, UInt8(dict.count & 0xff), UInt8(dict.count >> 8)] + dict + body
    }

    func testNPYHugeShapeProductIsRefusedBeforeAllocating() {
        let p = write("huge.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }"))
        assertError(p, ["too large"]) { _ = try NPY.read(p) }
        let q = write("big.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,), }"))
        assertError(q, ["too large"]) { _ = try NPY.read(q) }
        assertError(q, ["too large"]) { _ = try NPY.readHeader(q) }
        // Found by tools/fuzz against the earlier reader (a trap multiplying the shape).
        let f = write("fuzz.npy", npy("{'descr': '<i4', 'fortran_order': False, 'shape': (15,4611686018427387904), }"))
        assertError(f, ["too large"]) { _ = try NPY.read(f) }
    }

    func testNPYNegativeFractionalAndManyDims() {
        for (name, shape) in [("neg", "(-3, 2)"), ("frac", "(2.5,)"), ("word", "(two,)"), ("over", "(99999999999999999999999,)")] {
            let p = write(name + ".npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }"))
            assertError(p, ["shape"]) { _ = try NPY.read(p) }
        }
        let dims = Array(repeating: "1", count: 40).joined(separator: ", ")
        let p = write("dims.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (\(dims)), }"))
        assertError(p, ["more than 32 dimensions"]) { _ = try NPY.read(p) }
    }

    func testNPYDtypeOrderAndTruncation() {
        let be = write("be.npy", npy("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", body: [0, 0, 0, 0]))
        assertError(be, ["big-endian"]) { _ = try NPY.read(be) }
        let obj = write("obj.npy", npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", body: [0, 0, 0, 0, 0, 0, 0, 0]))
        assertError(obj, ["unsupported dtype"]) { _ = try NPY.read(obj) }
        let f = write("f.npy", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", body: [UInt8](repeating: 0, count: 16)))
        assertError(f, ["Fortran"]) { _ = try NPY.read(f) }
        let t = write("t.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000,), }", body: [1, 2, 3]))
        assertError(t, ["truncated", "needs 4128 bytes"]) { _ = try NPY.read(t) }
        // A v2 header claiming 4 GB of header text.
        let v2 = write("v2.npy", [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 2, 0, 0xff, 0xff, 0xff, 0xff] + Array("{}".utf8))
        assertError(v2, ["header length"]) { _ = try NPY.read(v2) }
        let magic = write("magic.npy", Array("hello, world".utf8))
        assertError(magic, ["bad magic"]) { _ = try NPY.read(magic) }
    }

    func testNPYFolderAndFIFOAreNamed() throws {
        let sub = dir + "/folder.npy"
        try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
        assertError(sub, ["is a folder"]) { _ = try NPY.read(sub) }
        let fifo = dir + "/pipe.npy"
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        assertError(fifo, ["FIFO"]) { _ = try NPY.read(fifo) }   // no hang: never opened
    }

    // MARK: safetensors

    func safetensors(_ header: String, body: [UInt8], length: UInt64? = nil) -> [UInt8] {
        let h = Array(header.utf8)
        let n = length ?? UInt64(h.count)
        return (0..<8).map { UInt8((n >> (8 * UInt64($0))) & 0xff) } + h + body
    }

    func testSafeTensorsHeaderLengthBeyondTheFile() {
        let p = write("len.safetensors", safetensors("{}", body: [], length: UInt64(1) << 63))
        assertError(p, ["header length"]) { _ = try SafeTensors.read(p) }
        let q = write("len2.safetensors", safetensors("{}", body: [], length: UInt64.max))
        assertError(q, ["header length"]) { _ = try SafeTensors.read(q) }
        let r = write("short.safetensors", [1, 2, 3])
        assertError(r, ["too short"]) { _ = try SafeTensors.read(r) }
    }

    func testSafeTensorsShapesAndOffsetsAreChecked() {
        let zeros8 = [UInt8](repeating: 0, count: 8)
        let cases: [(String, String, [UInt8], String)] = [
            ("overflow", #"{"w":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,8]}}"#, zeros8, "too large"),
            ("negative", #"{"w":{"dtype":"F32","shape":[-2,1],"data_offsets":[0,8]}}"#, zeros8, "non-negative integers"),
            ("fraction", #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,7.5]}}"#, zeros8, "data_offsets"),
            ("reversed", #"{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}"#, zeros8, "begin ≤ end"),
            ("past", #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, zeros8, "run past"),
            ("mismatch", #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}"#, zeros8, "needs 4"),
            ("dtype", #"{"w":{"dtype":"F99","shape":[2],"data_offsets":[0,8]}}"#, zeros8, "unsupported dtype"),
            ("overlap", #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, zeros8, "overlap"),
            ("gap", #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, zeros8, "gap"),
            ("extra", #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, zeros8, "extra bytes"),
            ("metadata", #"{"__metadata__":{"x":1},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, zeros8, "__metadata__"),
            ("malformed", #"{"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}"#, zeros8, "header entry"),
            ("notjson", "{{{{", zeros8, "not a JSON object"),
        ]
        for (name, header, body, needle) in cases {
            let p = write(name + ".safetensors", safetensors(header, body: body))
            assertError(p, [needle]) { _ = try SafeTensors.read(p) }
        }
    }

    func testSafeTensorsValidFileStillReads() throws {
        let p = write("ok.safetensors", safetensors(#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F16","shape":[2],"data_offsets":[4,8]}}"#,
                                                   body: [0, 0, 0x80, 0x3f, 0x00, 0x3c, 0x00, 0x40]))
        let f = try SafeTensors.read(p)
        XCTAssertEqual(try f.floats("a"), [1])
        XCTAssertEqual(try f.floats("b"), [1, 2])
        XCTAssertEqual(f.metadata, ["format": "pt"])
    }

    // MARK: outputs

    func testAFileIsNeverRenamedOverAFolder() throws {
        let folder = dir + "/precious"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: folder + "/keep.txt", contents: Data("mine".utf8))
        XCTAssertThrowsError(try AtomicFile.write("x", to: folder)) { e in XCTAssertTrue("\(e)".contains("is a folder"), "\(e)") }
        XCTAssertThrowsError(try NPY.write([Float(1)], shape: [1], to: folder))
        XCTAssertThrowsError(try NPYStreamWriter(path: folder, dtype: .float32, rowShape: [1]))
        XCTAssertEqual(FileManager.default.contents(atPath: folder + "/keep.txt"), Data("mine".utf8))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [], "temporary files are removed")
    }

    func testOutputEqualToAnInputIsRefused() throws {
        let input = write("in.jsonl", Array("{}\n".utf8))
        XCTAssertThrowsError(try AtomicFile.checkOutputFile(input, inputs: [input])) { e in
            XCTAssertTrue("\(e)".hasPrefix(input + ": is also an input"), "\(e)")
        }
        // The same file by another name (a symbolic link) is the same file.
        let link = dir + "/link.jsonl"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: input)
        XCTAssertThrowsError(try AtomicFile.checkOutputFile(link, inputs: [input]))
        XCTAssertNoThrow(try AtomicFile.checkOutputFile(dir + "/new.npy", inputs: [input]))
        XCTAssertEqual(FileManager.default.contents(atPath: input), Data("{}\n".utf8))
    }

    func testStreamWriterDiskFullIsAnErrorAndLeavesNothing() throws {
        // RLIMIT_FSIZE makes write(2) fail with EFBIG past 64 KiB, as a full disk fails with ENOSPC.
        let previous = signal(SIGXFSZ, SIG_IGN)
        var old = rlimit()
        getrlimit(Int32(RLIMIT_FSIZE.rawValue), &old)
        var small = old
        small.rlim_cur = 1 << 16
        XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &small), 0)
        defer { setrlimit(Int32(RLIMIT_FSIZE.rawValue), &old); signal(SIGXFSZ, previous) }
        let out = dir + "/frames.npy"
        let w = try NPYStreamWriter(path: out, dtype: .uint8, rowShape: [1024])
        let row = [UInt8](repeating: 7, count: 1024)
        var thrown: Error?
        for _ in 0..<200 {
            do { try row.withUnsafeBytes { try w.append($0) } } catch { thrown = error; break }
        }
        let e = try XCTUnwrap(thrown)
        XCTAssertTrue("\(e)".hasPrefix(out + ": cannot write"), "\(e)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [], "the partial file is removed")
    }

    func testStaleTemporariesOfDeadProcessesAreRemoved() throws {
        // pid 2^22 - 1 is above the default pid_max of most systems: no such process.
        let dead = dir + "/.step-0000010.tmp-4194303-77"
        try FileManager.default.createDirectory(atPath: dead, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: dir + "/.x.npy.tmp-4194303-5", contents: Data())
        let mine = dir + "/.y.npy.tmp-\(getpid())-5"
        FileManager.default.createFile(atPath: mine, contents: Data())
        FileManager.default.createFile(atPath: dir + "/keep.npy", contents: Data())
        let removed = AtomicFile.removeStaleTemporaries(in: dir)
        XCTAssertEqual(removed, [".step-0000010.tmp-4194303-77", ".x.npy.tmp-4194303-5"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), [".y.npy.tmp-\(getpid())-5", "keep.npy"])
    }

    // MARK: JSON

    struct Sizes: Codable { var hidden_size: Int; var dropout: Double; var layers: [Int] }

    func testJSONValueOfTheWrongKindIsNamed() throws {
        for (text, key) in [(#"{"dropout": 0.1, "hidden_size": 32.5, "layers": [1]}"#, "'hidden_size': 32.5"),
                            (#"{"dropout": 0.1, "hidden_size": 32, "layers": [1, 1e30]}"#, "'layers[1]'")] {
            let p = write("c.json", Array(text.utf8))
            assertError(p, ["bad value at " + key]) { _ = try JSON.decode(Sizes.self, from: p) }
        }
        let bad = write("bad.json", Array(#"{"dropout": 0.1,"#.utf8))
        assertError(bad, ["invalid JSON"]) { _ = try JSON.decode(Sizes.self, from: bad) }
        let fifo = dir + "/state.json"
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        assertError(fifo, ["FIFO"]) { _ = try JSON.decode(Sizes.self, from: fifo) }
    }

    // MARK: text

    func testTextDecoding() {
        let bad = Data("caf\u{e9}\nok\n".utf8.map { $0 }.enumerated().flatMap { $0.offset == 3 ? [UInt8(0xE9)] : ($0.offset == 4 ? [] : [$0.element]) })
        let d = InputFile.decodeText(bad)
        XCTAssertEqual(d.text, "caf\u{FFFD}\nok\n", "only the bad byte is replaced")
        XCTAssertEqual(d.invalidLines, [1])
        var utf16 = Data([0xFF, 0xFE])
        utf16.append("WEBVTT\n".data(using: .utf16LittleEndian)!)
        let u = InputFile.decodeText(utf16)
        XCTAssertEqual(u.text, "WEBVTT\n")
        XCTAssertEqual(u.encoding, "UTF-16LE")
        XCTAssertEqual(InputFile.decodeText(Data([0xEF, 0xBB, 0xBF] + Array("hé".utf8))).text, "hé")
    }
}
