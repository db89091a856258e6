import XCTest
@testable import Recipe

struct Bounds: RecipeSection, Equatable {
    struct Train: Codable, Equatable { var lr = 1e-4; var batch = 32; var seed = 0 }
    var hiddenSize = 64
    var maskProb = 0.15
    var channels: [Int] = [8, 16]
    var train = Train()
    init() {}
    enum CodingKeys: String, CodingKey { case hiddenSize = "hidden_size", maskProb = "mask_prob", channels, train }
    static let limits: [String: RecipeLimit] = [
        "hidden_size": .int(1...65_536), "mask_prob": .probability, "channels": .int(1...4096),
        "train.lr": .positive(max: 10), "train.batch": .int(1...1_000_000), "train.seed": .int(0...(1 << 62)),
    ]
}

/// Recipe values out of range, non-finite numbers, YAML nesting and alias bombs, binary files:
/// each a one-line error naming the key (and file and line where it applies), never a trap,
/// a stack overflow or gigabytes of memory (docs/RELIABILITY.md, "recipes").
final class RecipeLimitTests: XCTestCase {
    func message(_ yaml: String, overrides: [String] = []) -> String {
        do {
            _ = try RecipeLoader.load(Bounds.self, yaml: yaml, name: "r.yaml", overrides: overrides)
            return "no error"
        } catch {
            let s = "\(error)"
            XCTAssertFalse(s.contains("\n"), s)
            return s
        }
    }

    func testRangesNameKeyFileAndLine() {
        XCTAssertEqual(message("hidden_size: 1000000000\n"), "r.yaml: line 1: 'hidden_size' is 1000000000, must be between 1 and 65536")
        XCTAssertEqual(message("mask_prob: 2.0\n"), "r.yaml: line 1: 'mask_prob' is 2.0, must be between 0 and 1")
        XCTAssertEqual(message("train:\n  seed: -1\n"), "r.yaml: line 2: 'train.seed' is -1, must be between 0 and 4611686018427387904")
        XCTAssertEqual(message("train:\n  lr: 0\n"), "r.yaml: line 2: 'train.lr' is 0, must be in (0, 10]")
        XCTAssertEqual(message("channels: [8, 0]\n"), "r.yaml: line 1: 'channels[1]' is 0, must be between 1 and 4096")
        XCTAssertEqual(message("", overrides: ["train.batch=1000000000"]), "--set: 'train.batch' is 1000000000, must be between 1 and 1000000")
        XCTAssertEqual(message("hidden_size: 128\n"), "no error")
    }

    func testNonFiniteAndFractionalValues() {
        XCTAssertEqual(message("train:\n  lr: .nan\n"), "r.yaml: line 2: 'train.lr' must be a finite number, not nan")
        XCTAssertEqual(message("train:\n  lr: .inf\n"), "r.yaml: line 2: 'train.lr' must be a finite number, not inf")
        XCTAssertEqual(message("", overrides: ["train.lr=.nan"]), "--set: 'train.lr' must be a finite number, not nan")
        XCTAssertEqual(message("hidden_size: 32.5\n"), "r.yaml: line 1: 'hidden_size' must be an integer, not a number")
    }

    func testDeepNestingIsRefusedBeforeTheParser() {
        let flow = "hidden_size: " + String(repeating: "[", count: 100_000)
        XCTAssertTrue(message(flow).hasPrefix("r.yaml: line 1: nested more than 64 levels deep"), message(flow))
        var maps = ""
        for d in 0..<300 { maps += String(repeating: " ", count: d) + "k\(d):\n" }
        XCTAssertTrue(message(maps).contains("nested more than 64 levels deep"), message(maps))
        // 3,000 nested maps need 4.5 MB of indentation: refused by size before anything else.
        maps = ""
        for d in 0..<3000 { maps += String(repeating: " ", count: d) + "k\(d):\n" }
        XCTAssertTrue(message(maps).contains("byte limit"), message(maps))
        var flowMaps = ""
        for d in 0..<3000 { flowMaps += "{k\(d): " }
        XCTAssertTrue(message(flowMaps).contains("nested more than 64 levels deep"), message(flowMaps))
        let dashes = String(repeating: "- ", count: 50_000) + "x\n"
        XCTAssertTrue(message(dashes).contains("nested more than 64 levels deep"), message(dashes))
        XCTAssertTrue(message("", overrides: ["channels=" + String(repeating: "[", count: 5000)]).contains("nested more than"))
    }

    func testBillionLaughsIsRefused() {
        var y = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for i in 1...9 {
            y += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        let t0 = Date()
        let m = message(y)
        XCTAssertTrue(m.contains("after expanding aliases"), m)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 30)
    }

    func testBinaryAndHugeRecipeFiles() throws {
        let dir = NSTemporaryDirectory() + "recipe-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bin = dir + "/bin.yaml"
        FileManager.default.createFile(atPath: bin, contents: Data([0x7F, 0x45, 0x4C, 0x46, 0, 1, 2, 0xff, 0xfe]))
        XCTAssertThrowsError(try RecipeLoader.load(Bounds.self, file: bin)) { e in
            XCTAssertEqual("\(e)", "\(bin): not a YAML recipe (binary data: a NUL byte)")
        }
        let latin = dir + "/latin.yaml"
        FileManager.default.createFile(atPath: latin, contents: Data("hidden_size: 8\n# caf\u{e9}\n".utf8.map { $0 }.prefix(19) + [0xE9, 0x0A]))
        XCTAssertThrowsError(try RecipeLoader.load(Bounds.self, file: latin)) { e in
            XCTAssertEqual("\(e)", "\(latin): line 2: not UTF-8 text (a recipe is a YAML text file)")
        }
        let huge = dir + "/huge.yaml"
        FileManager.default.createFile(atPath: huge, contents: Data(repeating: 0x20, count: 2 << 20))
        XCTAssertThrowsError(try RecipeLoader.load(Bounds.self, file: huge)) { e in
            XCTAssertTrue("\(e)".contains("byte limit"), "\(e)")
        }
    }
}

final class RecipeFileKindTests: XCTestCase {
    func testFIFORecipeIsNamedNotWaitedOn() throws {
        let dir = NSTemporaryDirectory() + "recipe-fifo-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertEqual(mkfifo(dir + "/r.yaml", 0o644), 0)
        XCTAssertThrowsError(try RecipeLoader.load(Bounds.self, file: dir + "/r.yaml")) { e in
            XCTAssertEqual("\(e)", "\(dir)/r.yaml: is a FIFO (named pipe), not a recipe file")
        }
        XCTAssertThrowsError(try RecipeLoader.load(Bounds.self, file: dir)) { e in
            XCTAssertEqual("\(e)", "\(dir): is a folder, not a recipe file")
        }
    }
}
