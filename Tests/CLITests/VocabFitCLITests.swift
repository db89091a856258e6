import Foundation
import XCTest
import TestSupport

/// `videobert vocab fit` end to end: the JSON summary, the vocabulary folder, and errors.
final class VocabFitCLITests: XCTestCase {
    /// Points around 20 well-separated centres, deterministic.
    func points(rows: Int, dim: Int) -> [Float] {
        var state: UInt64 = 12345
        func uniform() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24)
        }
        let centres = (0..<(20 * dim)).map { _ in uniform() * 40 }
        var x: [Float] = []
        for i in 0..<rows {
            let c = i % 20
            for d in 0..<dim { x.append(centres[c * dim + d] + uniform()) }
        }
        return x
    }

    func testFitPrintsSummaryAndWritesVocabulary() throws {
        let dir = try temporaryFolder(named: "vocab-cli")
        let features = (dir as NSString).appendingPathComponent("features")
        try FileManager.default.createDirectory(atPath: features, withIntermediateDirectories: true)
        let x = points(rows: 800, dim: 6)
        try writeNPY(Array(x[0..<(500 * 6)]), shape: [500, 6], to: (features as NSString).appendingPathComponent("video1.npy"))
        try writeNPY(Array(x[(500 * 6)...]), shape: [300, 6], to: (features as NSString).appendingPathComponent("video2.npy"))
        let out = (dir as NSString).appendingPathComponent("vocab")
        let args = ["vocab", "fit", "--features", features, "--branching", "3", "--depth", "2", "--iters", "10",
                    "--seed", "7", "--out", out]
        let r = try CLI.run(args)
        XCTAssertEqual(r.status, 0, r.stderr)
        let summary = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        XCTAssertEqual(summary["leaves"] as? Int, 9)
        XCTAssertEqual(summary["points"] as? Int, 800)
        XCTAssertEqual(summary["dim"] as? Int, 6)
        XCTAssertEqual(summary["files"] as? Int, 2)
        let inertia = try XCTUnwrap(summary["inertia"] as? Double)
        XCTAssertGreaterThan(inertia, 0)
        XCTAssertNotNil(summary["seconds"] as? Double)
        XCTAssertTrue(r.stderr.contains("vocab: 800 clips × 6 from 2 file(s)"), r.stderr)

        let files = Set(try FileManager.default.contentsOfDirectory(atPath: out))
        XCTAssertEqual(files, ["level0.npy", "level1.npy", "vocab.json"])
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: (out as NSString).appendingPathComponent("vocab.json")))) as? [String: Any])
        XCTAssertEqual(json["inertia"] as? Double, inertia)
        XCTAssertEqual(json["branching"] as? Int, 3)
        XCTAssertEqual(json["format_version"] as? Int, 1)

        // Same seed, same vocabulary bytes.
        let out2 = (dir as NSString).appendingPathComponent("vocab2")
        let r2 = try CLI.run(Array(args.dropLast()) + [out2, "--quiet"])
        XCTAssertEqual(r2.status, 0, r2.stderr)
        XCTAssertEqual(r2.stderr, "")
        for name in ["level0.npy", "level1.npy"] {
            XCTAssertEqual(FileManager.default.contents(atPath: (out as NSString).appendingPathComponent(name)),
                           FileManager.default.contents(atPath: (out2 as NSString).appendingPathComponent(name)))
        }
    }

    func testTooFewClipsIsOneLineErrorWithAdvice() throws {
        let dir = try temporaryFolder(named: "vocab-cli")
        let path = (dir as NSString).appendingPathComponent("f.npy")
        try writeNPY(points(rows: 100, dim: 4), shape: [100, 4], to: path)
        let r = try CLI.run(["vocab", "fit", "--features", path, "--out", (dir as NSString).appendingPathComponent("v"), "--quiet"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "error: \(path): 12^4 = 20736 visual words need at least 20736 clips to fit, got 100; lower the branching or depth, or give more clips\n")
        XCTAssertEqual(r.stdout, "")
        XCTAssertFalse(FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent("v")))
    }

    func testMissingFeaturesAndBadOptions() throws {
        let r = try CLI.run(["vocab", "fit", "--features", "/nonexistent/f.npy", "--out", "/tmp/never"])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "error: /nonexistent/f.npy: no such file or folder\n")

        let bad = try CLI.run(["vocab", "fit", "--features", "x.npy", "--out", "o", "--branching", "1"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--branching must be at least 2"), bad.stderr)

        let help = try CLI.run(["vocab", "fit", "--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdout.contains("Example:"), help.stdout)
    }
}
