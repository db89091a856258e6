import Foundation
import XCTest
@testable import Tensor

/// `videobert tokenize` with `features.source: resnet50` + `features.weights`: the built binary,
/// end to end (features extracted first, then imported and clustered).
final class TokenizeWithBackboneTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    static var executable: String {
        let testBundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for dir in [testBundle, Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()] {
            let candidate = dir.appendingPathComponent("videobert").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return testBundle.appendingPathComponent("videobert").path
    }

    func run(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) { try Self.runBinary(args) }

    /// Runs the built binary quietly (VIDEOBERT_QUIET) and returns its status and both outputs;
    /// the backbone CLI tests (S3DCLITests, CLIPFeaturesTests) share it.
    static func runBinary(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(["VIDEOBERT_QUIET": "1"]) { $1 }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        nonisolated(unsafe) var errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }

    func testTokenizeExtractsResNetFeaturesThenClustersThem() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let corpus = dir + "/corpus"
        try FileManager.default.createDirectory(atPath: corpus, withIntermediateDirectories: true)
        for id in ["a", "b"] {
            try FileManager.default.copyItem(atPath: FeatureExtractorTests.clip, toPath: "\(corpus)/\(id).mp4")
            try "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nriding bikes down the street\n"
                .write(toFile: "\(corpus)/\(id).vtt", atomically: true, encoding: .utf8)
        }
        let weights = dir + "/resnet50.safetensors"
        try SeededWeights.writeSafetensors(SeededWeights.stateDict("resnet50"), to: weights)
        let out = dir + "/tokens"
        let args = ["tokenize", "--corpus", corpus, "--out", out, "--recipe", Self.root + "/Recipes/tokenize-tiny.yaml",
                    "--set", "text.vocab=" + Self.root + "/Vocab/bert-base-uncased.txt",
                    "--set", "features.source=resnet50", "--set", "features.weights=" + weights,
                    "--set", "kmeans.branching=2", "--set", "kmeans.depth=1", "--set", "split.val=0", "--set", "split.test=0"]
        let r = try run(args)
        XCTAssertEqual(r.status, 0, r.stderr)
        // The features, as `videobert features` writes them, then imported one row per second.
        for id in ["a", "b"] {
            XCTAssertEqual(try NPY.read("\(out)/features-resnet50/\(id).npy").shape, [3, 2048])
        }
        let index = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/index.json"))) as? [String: Any])
        let counts = try XCTUnwrap(index["counts"] as? [String: Any])
        XCTAssertEqual(counts["videos"] as? Int, 2)
        XCTAssertEqual(counts["clips"] as? Int, 6)
        let recipe = try String(contentsOfFile: out + "/recipe.yaml", encoding: .utf8)
        XCTAssertTrue(recipe.contains("source: npy") && recipe.contains("features-resnet50"), recipe)

        // No weights: one line naming the key.
        let bad = try run(["tokenize", "--corpus", corpus, "--out", dir + "/t2", "--set", "features.source=resnet152"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertEqual(bad.stderr, "error: --set: features.weights is required with features.source: resnet152\n")
    }
}
