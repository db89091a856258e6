import Foundation
import XCTest
@testable import Backbones
@testable import Tensor

/// The built binary with the S3D backbones: `features --text` into MIL-NCE's joint space, `--joint`,
/// the one-line refusals, and `tokenize` with `features.source: s3d-howto100m`.
final class S3DCLITests: XCTestCase {
    func run(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) { try TokenizeWithBackboneTests.runBinary(args) }

    func testTextEmbeddingsJointFeaturesAndRefusals() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let weights = dir + "/s3d_howto100m.safetensors"
        try SeededWeights.writeSafetensors(SeededS3D.stateDict(.howto100m), to: weights)
        struct Case: Decodable { var sentences: [String] }
        let sentences = try JSONDecoder().decode(Case.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("s3d/sentences.json")))).sentences
        let expected = try NPY.read(Fixtures.path("s3d/howto100m-text.npy")).floats()
        let textFile = dir + "/texts.txt"
        try (sentences[2] + "\n\n" + sentences[3] + "\n").write(toFile: textFile, atomically: true, encoding: .utf8)
        let r = try run(["features", "--backbone", "s3d-howto100m", "--weights", weights, "--dictionary", Fixtures.path("s3d/dict.npy"),
                         "--text", sentences[0], "--text-file", textFile, "--out", dir + "/q.npy"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let q = try NPY.read(dir + "/q.npy")
        XCTAssertEqual(q.shape, [3, 512])
        let got = try q.floats()
        for (row, s) in [0, 2, 3].enumerated() {
            for k in 0..<512 { XCTAssertEqual(got[row * 512 + k], expected[s * 512 + k], accuracy: 1e-5) }
        }

        // --joint: the 512-d rows of MIL-NCE's video embedding, recorded as such.
        let j = try run(["features", FeatureExtractorTests.clip, "--backbone", "s3d-howto100m", "--joint", "--weights", weights,
                         "--fps", "2", "--frames-per-row", "2", "--out", dir + "/joint"])
        XCTAssertEqual(j.status, 0, j.stderr)
        XCTAssertEqual(try NPY.read(dir + "/joint/bikes-3s.npy").shape, [3, 512])
        let record = try JSONDecoder().decode(FeatureRecord.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/joint/bikes-3s.json")))
        XCTAssertEqual(record.pool, "clip-joint")
        XCTAssertEqual(record.dim, 512)

        // Refusals: one line, exit status non-zero.
        for (args, message) in [
            (["--backbone", "s3d-kinetics", "--weights", weights, "--dictionary", "d.npy", "--text", "x", "--out", "q.npy"],
             "--text needs a backbone with a text tower (clip-vit-b16, clip-vit-b32, clip-vit-l14, s3d-howto100m)"),
            (["--backbone", "s3d-howto100m", "--weights", weights, "--text", "x", "--out", "q.npy"], "--text/--text-file with s3d-howto100m need --dictionary (s3d_dict.npy)"),
            ([FeatureExtractorTests.clip, "--backbone", "resnet50", "--joint", "--weights", weights, "--out", "o"], "--joint is for --backbone s3d-howto100m"),
        ] {
            let bad = try run(["features"] + args)
            XCTAssertNotEqual(bad.status, 0)
            XCTAssertTrue(bad.stderr.contains(message), bad.stderr)
            XCTAssertEqual(bad.stderr.split(separator: "\n").filter { $0.hasPrefix("Error") || $0.hasPrefix("error") }.count, 1, bad.stderr)
        }
        let missing = try run(["features", "--backbone", "s3d-howto100m", "--weights", weights, "--dictionary", dir + "/none.npy",
                               "--text", "x", "--out", dir + "/q2.npy"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(missing.stderr, "error: \(dir)/none.npy: no such file\n")
    }

    func testTokenizeExtractsS3DClipsOfTheRecipe() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let corpus = dir + "/corpus"
        try FileManager.default.createDirectory(atPath: corpus, withIntermediateDirectories: true)
        for id in ["a", "b"] {
            try FileManager.default.copyItem(atPath: FeatureExtractorTests.clip, toPath: "\(corpus)/\(id).mp4")
            try "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nriding bikes down the street\n"
                .write(toFile: "\(corpus)/\(id).vtt", atomically: true, encoding: .utf8)
        }
        let weights = dir + "/s3d_howto100m.safetensors"
        try SeededWeights.writeSafetensors(SeededS3D.stateDict(.howto100m), to: weights)
        let out = dir + "/tokens"
        let root = TokenizeWithBackboneTests.root
        // Clips of the recipe: 2 fps × 1 s = 2 frames each, 3 per video.
        let r = try run(["tokenize", "--corpus", corpus, "--out", out, "--recipe", root + "/Recipes/tokenize-tiny.yaml",
                         "--set", "text.vocab=" + root + "/Vocab/bert-base-uncased.txt",
                         "--set", "features.source=s3d-howto100m", "--set", "features.weights=" + weights,
                         "--set", "frames.fps=2", "--set", "frames.clip_seconds=1",
                         "--set", "kmeans.branching=2", "--set", "kmeans.depth=1", "--set", "split.val=0", "--set", "split.test=0",
                         "--set", "store.features=true"])
        XCTAssertEqual(r.status, 0, r.stderr)
        for id in ["a", "b"] {
            XCTAssertEqual(try NPY.read("\(out)/features-s3d-howto100m/\(id).npy").shape, [3, 1024])
            let record = try JSONDecoder().decode(FeatureRecord.self, from: Data(contentsOf: URL(fileURLWithPath: "\(out)/features-s3d-howto100m/\(id).json")))
            XCTAssertEqual(record.fps, 2)
            XCTAssertEqual(record.frames_per_row, 2)
            XCTAssertEqual(record.pool, "clip")
        }
        let index = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/index.json"))) as? [String: Any])
        XCTAssertEqual((index["counts"] as? [String: Any])?["clips"] as? Int, 6)

        // mixed_5c rows are not MIL-NCE's joint space: `retrieve --milnce` says which source to use.
        let dictionary = Fixtures.path("s3d/dict.npy")
        let refused = try run(["retrieve", "--milnce", "--checkpoint", weights, "--dictionary", dictionary, "--corpus", out, "--split", "train"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("not MIL-NCE's joint embedding: tokenize with features.source: s3d-howto100m-joint"), refused.stderr)
        XCTAssertEqual(refused.stderr.split(separator: "\n").count, 1, refused.stderr)

        // s3d-howto100m-joint: the 512-d joint embedding per clip, then zero-shot retrieval with the text tower.
        let joint = dir + "/joint"
        let j = try run(["tokenize", "--corpus", corpus, "--out", joint, "--recipe", root + "/Recipes/tokenize-tiny.yaml",
                         "--set", "text.vocab=" + root + "/Vocab/bert-base-uncased.txt",
                         "--set", "features.source=s3d-howto100m-joint", "--set", "features.weights=" + weights,
                         "--set", "frames.fps=2", "--set", "frames.clip_seconds=1",
                         "--set", "kmeans.branching=2", "--set", "kmeans.depth=1", "--set", "split.val=0", "--set", "split.test=0",
                         "--set", "store.features=true"])
        XCTAssertEqual(j.status, 0, j.stderr)
        for id in ["a", "b"] {
            XCTAssertEqual(try NPY.read("\(joint)/features-s3d-howto100m-joint/\(id).npy").shape, [3, 512])
            let record = try JSONDecoder().decode(FeatureRecord.self, from: Data(contentsOf: URL(fileURLWithPath: "\(joint)/features-s3d-howto100m-joint/\(id).json")))
            XCTAssertEqual(record.pool, "clip-joint")
        }
        let retrieved = try run(["retrieve", "--milnce", "--checkpoint", weights, "--dictionary", dictionary, "--corpus", joint, "--split", "train", "--json"])
        XCTAssertEqual(retrieved.status, 0, retrieved.stderr)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(retrieved.stdout.utf8)) as? [String: Any], retrieved.stdout)
        XCTAssertEqual(report["scorer"] as? String, "dot product of MIL-NCE (s3d-howto100m) text and video embeddings")
        XCTAssertEqual(report["segments"] as? Int, 2, retrieved.stdout)

        for (args, message) in [(["--milnce", "--checkpoint", weights, "--corpus", joint], "--milnce needs --dictionary (MIL-NCE's s3d_dict.npy)"),
                                (["--checkpoint", weights, "--dictionary", dictionary, "--corpus", joint], "--dictionary is for --milnce")] {
            let bad = try run(["retrieve"] + args)
            XCTAssertNotEqual(bad.status, 0)
            XCTAssertTrue(bad.stderr.contains(message), bad.stderr)
        }
    }
}
