import Foundation
import XCTest
@testable import Tensor

enum Fixtures {
    static let resources: String = {
        guard let url = Bundle.module.url(forResource: "Resources", withExtension: nil) else {
            fatalError("BackbonesTests resources missing from the test bundle")
        }
        return url.path
    }()
    static func path(_ name: String) -> String { (resources as NSString).appendingPathComponent(name) }

    static func temporaryDirectory() throws -> String {
        let dir = (NSTemporaryDirectory() as NSString).appendingPathComponent("backbones-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }
}

/// Builds hostile archives: a minimal zip writer (stored entries) and pickle bytes by hand.
enum Hostile {
    static func le(_ v: Int, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }

    /// A zip of stored entries, as torch.save writes it (CRCs left 0: the reader does not check them).
    static func zip(_ entries: [(String, [UInt8])]) -> [UInt8] {
        var out: [UInt8] = [], central: [UInt8] = []
        for (name, body) in entries {
            let offset = out.count, nameBytes = Array(name.utf8)
            out += le(0x0403_4b50, 4) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(0, 4)
            out += le(body.count, 4) + le(body.count, 4) + le(nameBytes.count, 2) + le(0, 2) + nameBytes + body
            central += le(0x0201_4b50, 4) + le(20, 2) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(0, 4)
            central += le(body.count, 4) + le(body.count, 4) + le(nameBytes.count, 2) + le(0, 2) + le(0, 2)
            central += le(0, 2) + le(0, 2) + le(0, 4) + le(offset, 4) + nameBytes
        }
        let cdOffset = out.count
        out += central
        out += le(0x0605_4b50, 4) + le(0, 2) + le(0, 2) + le(entries.count, 2) + le(entries.count, 2)
        out += le(central.count, 4) + le(cdOffset, 4) + le(0, 2)
        return out
    }

    static func str(_ s: String) -> [UInt8] { [0x58] + le(s.utf8.count, 4) + Array(s.utf8) }
    static func int(_ i: Int) -> [UInt8] { [0x8A, 8] + le(i, 8) }
    static func global(_ m: String, _ n: String) -> [UInt8] { [0x63] + Array("\(m)\n\(n)\n".utf8) }
    static func tuple(_ items: [[UInt8]]) -> [UInt8] { [0x28] + items.flatMap { $0 } + [0x74] }

    /// `{name: _rebuild_tensor_v2(storage('0', FloatStorage, numel), offset, shape, strides, False, OrderedDict())}`
    static func tensorPickle(name: String = "w", numel: Int, offset: Int, shape: [Int], strides: [Int]) -> [UInt8] {
        var p: [UInt8] = [0x80, 0x02, 0x7D, 0x28] + str(name)
        p += global("torch._utils", "_rebuild_tensor_v2")
        p += [0x28] + tuple([str("storage"), global("torch", "FloatStorage"), str("0"), str("cpu"), int(numel)]) + [0x51]
        p += int(offset) + tuple(shape.map(int)) + tuple(strides.map(int)) + [0x89]
        p += global("collections", "OrderedDict") + [0x29, 0x52] + [0x74, 0x52]
        p += [0x75, 0x2E]
        return p
    }

    static func archive(pickle: [UInt8], storage: [Float]) -> [UInt8] {
        let bytes = storage.flatMap { le(Int($0.bitPattern), 4) }
        return zip([("archive/data.pkl", pickle), ("archive/byteorder", Array("little".utf8)), ("archive/data/0", bytes)])
    }

    static func write(_ bytes: [UInt8], _ dir: String, _ name: String) throws -> String {
        let path = (dir as NSString).appendingPathComponent(name)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }
}

final class TorchFileTests: XCTestCase {
    struct Expected: Decodable { var shape: [Int]; var values: [Double] }

    func testReadsEveryFixtureLikeTorch() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("pth/expected.json")))
        let expected = try JSONDecoder().decode([String: [String: Expected]].self, from: data)
        XCTAssertEqual(expected.count, 6)
        for (file, tensors) in expected {
            let f = try WeightFile.open(Fixtures.path("pth/" + file))
            XCTAssertEqual(Set(f.names), Set(tensors.keys), file)
            for (name, e) in tensors {
                XCTAssertEqual(f.shape(name), e.shape, "\(file) \(name)")
                let got = try f.floats(name, shape: e.shape)
                XCTAssertEqual(got.count, e.values.count, "\(file) \(name)")
                for (g, v) in zip(got, e.values) { XCTAssertEqual(g, Float(v), "\(file) \(name)") }
            }
        }
    }

    func testStridesAndOffsetsAreHonoured() throws {
        let f = try TorchFile.read(Fixtures.path("pth/plain.pth"))
        let t = try XCTUnwrap(f.entries["transposed"])
        XCTAssertEqual(t.shape, [6, 4])
        XCTAssertEqual(t.strides, [1, 6])
        let s = try XCTUnwrap(f.entries["slice"])
        XCTAssertEqual(s.offset, 3)
        XCTAssertEqual(s.storage, f.entries["whole"]?.storage)
        XCTAssertEqual(try f.floats("slice"), Array(try f.floats("whole")[3..<8]))
        XCTAssertEqual(f.entries["strided"]?.strides, [6, 2])
        XCTAssertEqual(f.entries["strided"]?.offset, 6)
    }

    func testShapeCheckNamesKeyAndBothShapes() throws {
        let f = try WeightFile.open(Fixtures.path("pth/module.pth"))
        XCTAssertThrowsError(try f.floats("0.weight", shape: [3, 2])) { e in
            let m = "\(e)"
            XCTAssertTrue(m.contains("module.pth") && m.contains("'0.weight'") && m.contains("[2, 3]") && m.contains("[3, 2]"), m)
        }
        XCTAssertThrowsError(try f.floats("fc.weight", shape: [2048])) { e in
            XCTAssertTrue("\(e)".contains("missing tensor 'fc.weight'") && "\(e)".contains("[2048]"), "\(e)")
        }
    }

    func testAPickleThatCallsAFunctionIsRefusedAndNothingRuns() throws {
        let dir = try Fixtures.temporaryDirectory()
        let marker = (dir as NSString).appendingPathComponent("executed")
        let calls: [(String, String)] = [("os", "system"), ("posix", "system"), ("builtins", "eval"), ("subprocess", "call"), ("torch", "load")]
        for (module, name) in calls {
            let pickle: [UInt8] = [0x80, 0x02] + Hostile.global(module, name) + [0x28] + Hostile.str("touch \(marker)") + [0x74, 0x52, 0x2E]
            let path = try Hostile.write(Hostile.archive(pickle: pickle, storage: []), dir, "evil-\(name).pth")
            XCTAssertThrowsError(try WeightFile.open(path)) { e in
                let m = "\(e)"
                XCTAssertTrue(m.hasPrefix(path) && m.contains("refused global '\(module).\(name)'") && !m.contains("\n"), m)
            }
        }
        // The same with protocol 4's STACK_GLOBAL, and opcodes that build objects (INST, OBJ, NEWOBJ).
        let stackGlobal: [UInt8] = [0x80, 0x04] + Hostile.str("os") + Hostile.str("system") + [0x93] + Hostile.str("touch \(marker)") + [0x85, 0x52, 0x2E]
        let inst: [UInt8] = [0x80, 0x02, 0x28] + Hostile.str("touch \(marker)") + Array("ios\nsystem\n".utf8) + [0x2E]
        let obj: [UInt8] = [0x80, 0x02, 0x28] + Hostile.global("collections", "OrderedDict") + [0x6F, 0x2E]
        let reduceOnString: [UInt8] = [0x80, 0x02] + Hostile.str("x") + [0x29, 0x52, 0x2E]
        for (i, pickle) in [stackGlobal, inst, obj, reduceOnString].enumerated() {
            let path = try Hostile.write(Hostile.archive(pickle: pickle, storage: []), dir, "evil\(i).pth")
            XCTAssertThrowsError(try WeightFile.open(path)) { e in
                XCTAssertTrue("\(e)".hasPrefix(path) && "\(e)".contains("refused"), "\(e)")
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker))
    }

    func testWrongMagicTruncationAndOffsetsPastTheEnd() throws {
        let dir = try Fixtures.temporaryDirectory()
        let text = try Hostile.write(Array("hello, this is not a checkpoint".utf8), dir, "text.pth")
        XCTAssertThrowsError(try WeightFile.open(text)) { XCTAssertTrue("\($0)".contains("not a torch.save archive"), "\($0)") }
        let legacy = try Hostile.write([0x80, 0x02, 0x8A, 0x0A], dir, "legacy.pt")
        XCTAssertThrowsError(try WeightFile.open(legacy)) { XCTAssertTrue("\($0)".contains("legacy torch.save"), "\($0)") }
        let missing = (dir as NSString).appendingPathComponent("nope.pth")
        XCTAssertThrowsError(try WeightFile.open(missing)) { XCTAssertEqual("\($0)", "\(missing): no such file") }

        // Every prefix of a real archive: an error or (never) a crash.
        let full = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("pth/plain.pth"))))
        for cut in stride(from: 0, to: full.count, by: 11) {
            let path = try Hostile.write(Array(full[..<cut]), dir, "cut.pth")
            XCTAssertThrowsError(try TorchFile.read(path), "cut at \(cut)") { XCTAssertTrue("\($0)".hasPrefix(path), "\($0)") }
        }

        // A tensor reaching past its storage (offset, then strides).
        let past = Hostile.archive(pickle: Hostile.tensorPickle(numel: 6, offset: 1000, shape: [2, 3], strides: [3, 1]), storage: [Float](repeating: 1, count: 6))
        let pastPath = try Hostile.write(past, dir, "past.pth")
        XCTAssertThrowsError(try TorchFile.read(pastPath)) { e in
            XCTAssertTrue("\(e)".contains("tensor 'w'") && "\(e)".contains("offset 1000"), "\(e)")
        }
        let wide = Hostile.archive(pickle: Hostile.tensorPickle(numel: 6, offset: 0, shape: [2, 3], strides: [3, 2]), storage: [Float](repeating: 1, count: 6))
        XCTAssertThrowsError(try TorchFile.read(try Hostile.write(wide, dir, "wide.pth"))) { XCTAssertTrue("\($0)".contains("tensor 'w'"), "\($0)") }
        // A storage that claims more elements than its entry holds.
        let short = Hostile.archive(pickle: Hostile.tensorPickle(numel: 600, offset: 0, shape: [20, 30], strides: [30, 1]), storage: [1, 2, 3])
        XCTAssertThrowsError(try TorchFile.read(try Hostile.write(short, dir, "short.pth"))) { XCTAssertTrue("\($0)".contains("tensor 'w'"), "\($0)") }
        // A valid one of the same construction reads.
        let ok = Hostile.archive(pickle: Hostile.tensorPickle(numel: 6, offset: 1, shape: [2, 2], strides: [1, 2]), storage: [0, 1, 2, 3, 4, 5])
        let okFile = try TorchFile.read(try Hostile.write(ok, dir, "ok.pth"))
        XCTAssertEqual(try okFile.floats("w"), [1, 3, 2, 4])
    }

    func testAbsurdShapesAreRefusedBeforeAllocating() throws {
        let dir = try Fixtures.temporaryDirectory()
        for (shape, strides) in [([1 << 40, 1 << 40], [0, 0]), ([Int(Int32.max), 1 << 33], [1, 1]), ([-4, 2], [2, 1]), ([4, 4], [-1, 1])] {
            let bytes = Hostile.archive(pickle: Hostile.tensorPickle(numel: 6, offset: 0, shape: shape, strides: strides), storage: [Float](repeating: 0, count: 6))
            let path = try Hostile.write(bytes, dir, "absurd.pth")
            XCTAssertThrowsError(try TorchFile.read(path), "\(shape)") { e in
                XCTAssertTrue("\(e)".hasPrefix(path) && "\(e)".contains("tensor 'w'"), "\(e)")
            }
        }
        // A pickle that references one tuple twice per level, 30 levels deep (2³⁰ leaves): refused (the walk is bounded).
        var bomb: [UInt8] = [0x80, 0x02, 0x7D, 0x28] + Hostile.str("x") + Hostile.str("leaf") + [0x71, 0x00, 0x30]
        for _ in 0..<30 { bomb += [0x68, 0x00, 0x68, 0x00, 0x86, 0x71, 0x00, 0x30] }   // BINGET 0, BINGET 0, TUPLE2, BINPUT 0, POP
        bomb += [0x68, 0x00, 0x75, 0x2E]                                                  // {"x": T30}
        XCTAssertThrowsError(try TorchFile.read(try Hostile.write(Hostile.archive(pickle: bomb, storage: []), dir, "bomb.pth"))) { e in
            XCTAssertTrue("\(e)".contains("more than 1,000,000 objects"), "\(e)")
        }
        // A central directory pointing past the end of the file.
        var z = Hostile.archive(pickle: Hostile.tensorPickle(numel: 1, offset: 0, shape: [1], strides: [1]), storage: [7])
        let eocd = z.count - 22
        z.replaceSubrange((eocd + 16)..<(eocd + 20), with: Hostile.le(1 << 30, 4))
        XCTAssertThrowsError(try TorchFile.read(try Hostile.write(z, dir, "cd.pth"))) { XCTAssertTrue("\($0)".contains("truncated zip"), "\($0)") }
    }

    func testEveryFlippedByteIsAnErrorOrAValidReadNeverACrash() throws {
        let dir = try Fixtures.temporaryDirectory()
        let full = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("pth/module.pth"))))
        var refused = 0
        for i in stride(from: 0, to: full.count, by: 5) {
            var bytes = full
            bytes[i] ^= 0xA5
            let path = try Hostile.write(bytes, dir, "flip.pth")
            do {
                let f = try TorchFile.read(path)
                for n in f.names { _ = try f.floats(n) }
            } catch let e as VideoBertError {
                XCTAssertEqual(e.file, path)
                refused += 1
            }
        }
        XCTAssertGreaterThan(refused, 10)
    }
}
