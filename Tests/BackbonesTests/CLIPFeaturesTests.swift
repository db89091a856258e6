import Foundation
import XCTest
@testable import Backbones
import Media
@testable import Tensor

/// `videobert features --backbone clip-vit-b32` end to end on the 3 s bikes clip, and `--text`,
/// against tools/fixtures/clip_e2e.py (ffmpeg CLI frames, numpy crop and CLIP normalisation,
/// transformers' CLIPModel and CLIPTokenizer with the seeded weights of tools/fixtures/clip.py).
final class CLIPFeaturesTests: XCTestCase {
    struct Expected: Decodable { var scale: [Int]; var crop: [Int]; var x: Int; var frames: Int; var rows: [[Double]] }
    struct Texts: Decodable { var texts: [String]; var ids: [[Int32]] }

    static func cosine(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Double {
        var dot = 0.0, na = 0.0, nb = 0.0
        for (x, y) in zip(a, b) {
            dot += Double(x) * Double(y)
            na += Double(x) * Double(x)
            nb += Double(y) * Double(y)
        }
        return dot / (na.squareRoot() * nb.squareRoot())
    }

    /// The built `videobert` binary on `args` (as TokenizeWithBackboneTests runs it).
    func run(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) { try TokenizeWithBackboneTests.runBinary(args) }

    /// A Hugging Face CLIP folder with the seeded weights of both towers and a config.json.
    static func folder(_ dir: String) throws -> String {
        let folder = dir + "/clip-vit-base-patch32"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try SeededWeights.writeSafetensors(SeededCLIP.stateDict(vision: true) + SeededCLIP.stateDict(vision: false)
                                           + [("logit_scale", [], [2.6592])], to: folder + "/model.safetensors")
        try Data(#"{"model_type": "clip", "projection_dim": 512, "text_config": {}, "vision_config": {}}"#.utf8)
            .write(to: URL(fileURLWithPath: folder + "/config.json"))
        return folder
    }

    func testCLIPPresetThroughTheCLIMatchesTheReferencePipelineAndEmbedsText() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let weights = try Self.folder(dir)
        let want = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("clip/bikes.json"))))
        XCTAssertEqual(FeaturePreset.all["clip-vit-b32"]!.cropRect(width: 527, height: 224).x, want.x)
        let out = dir + "/out"
        let r = try run(["features", FeatureExtractorTests.clip, "--backbone", "clip-vit-b32", "--weights", weights,
                                                     "--out", out, "--fps", "2", "--frames-per-row", "2", "--batch", "4"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let npy = try NPY.read(out + "/bikes-3s.npy")
        XCTAssertEqual(npy.shape, [3, 512])
        let rows = try npy.floats(), reference = try NPY.read(Fixtures.path("clip/bikes-fps2-rows2.npy")).floats()
        XCTAssertEqual(rows.count, reference.count)
        for row in 0..<(min(rows.count, reference.count) / 512) {
            let range = (row * 512)..<((row + 1) * 512)
            XCTAssertGreaterThanOrEqual(Self.cosine(rows[range], reference[range]), 0.999, "row \(row)")
        }
        let record = try JSONDecoder().decode(FeatureRecord.self, from: Data(contentsOf: URL(fileURLWithPath: out + "/bikes-3s.json")))
        XCTAssertEqual(record, FeatureRecord(backbone: "clip-vit-b32", dim: 512, fps: 2, scale: want.scale, crop: want.crop,
                                             mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711],
                                             frames_per_row: 2, stride_frames: 2, pool: "mean", rows: want.rows))

        // Texts: tokenized with CLIP's merges file (installed by tools/setup), embedded by the text tower.
        let texts = try JSONDecoder().decode(Texts.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("clip/texts.json"))))
        let file = dir + "/texts.txt"
        try (texts.texts.dropFirst().joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let vocab = TokenizeWithBackboneTests.root + "/Vocab/clip-bpe-16e6.txt.gz"
        let t = try run(["features", "--backbone", "clip-vit-b32", "--weights", weights, "--vocab", vocab,
                                                     "--text", texts.texts[0], "--text-file", file, "--out", dir + "/texts.npy"])
        XCTAssertEqual(t.status, 0, t.stderr)
        let got = try NPY.read(dir + "/texts.npy")
        XCTAssertEqual(got.shape, [2, 512])
        let ref = try NPY.read(Fixtures.path("clip/texts.npy")).floats(), g = try got.floats()
        XCTAssertEqual(g.count, ref.count)
        var worst: Float = 0, scale: Float = 0
        for (x, y) in zip(g, ref) {
            worst = max(worst, abs(x - y))
            scale = max(scale, abs(y))
        }
        XCTAssertLessThanOrEqual(worst / scale, 1e-4)

        // Errors: a folder without the tokenizer's files, a backbone without a text tower, text and videos at once.
        let noVocab = try run(["features", "--backbone", "clip-vit-b32", "--weights", weights, "--text", "x", "--out", dir + "/x.npy"])
        XCTAssertNotEqual(noVocab.status, 0)
        XCTAssertTrue(noVocab.stderr.contains("has no vocab.json + merges.txt"), noVocab.stderr)
        let resnet = try run(["features", "--backbone", "resnet50", "--weights", weights, "--text", "x", "--out", dir + "/x.npy"])
        XCTAssertNotEqual(resnet.status, 0)
        XCTAssertTrue(resnet.stderr.contains("needs a backbone with a text tower"), resnet.stderr)
        let both = try run(["features", FeatureExtractorTests.clip, "--backbone", "clip-vit-b32", "--weights", weights,
                                                        "--text", "x", "--out", dir + "/x.npy"])
        XCTAssertNotEqual(both.status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/x.npy"))
    }

    /// `tokenize` with `features.source: clip-vit-b32` keeping the rows, then `retrieve --clip`:
    /// the whole zero-shot path through the binary (the scores' arithmetic is ClipScorerTests').
    func testTokenizeWithCLIPThenZeroShotRetrieval() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let weights = try Self.folder(dir)
        let corpus = dir + "/corpus"
        try FileManager.default.createDirectory(atPath: corpus, withIntermediateDirectories: true)
        for (id, sentence) in [("a", "riding bikes down the street"), ("b", "a cat asleep on the sofa")] {
            try FileManager.default.copyItem(atPath: FeatureExtractorTests.clip, toPath: "\(corpus)/\(id).mp4")
            try "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\n\(sentence)\n".write(toFile: "\(corpus)/\(id).vtt", atomically: true, encoding: .utf8)
        }
        func tokenize(_ out: String, store: Bool) throws {
            let r = try run(["tokenize", "--corpus", corpus, "--out", out, "--recipe", TokenizeWithBackboneTests.root + "/Recipes/tokenize-tiny.yaml",
                             "--set", "text.vocab=" + TokenizeWithBackboneTests.root + "/Vocab/bert-base-uncased.txt",
                             "--set", "features.source=clip-vit-b32", "--set", "features.weights=" + weights, "--set", "store.features=\(store)",
                             "--set", "kmeans.branching=2", "--set", "kmeans.depth=1", "--set", "split.val=0", "--set", "split.test=0"])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        let tokens = dir + "/tokens"
        try tokenize(tokens, store: true)
        XCTAssertEqual(try NPY.read(tokens + "/clip_features.npy").shape, [6, 512])
        let vocab = TokenizeWithBackboneTests.root + "/Vocab/clip-bpe-16e6.txt.gz"
        let r = try run(["retrieve", "--clip", "clip-vit-b32", "--clip-vocab", vocab, "--checkpoint", weights, "--corpus", tokens,
                         "--split", "train", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(report["segments"] as? Int, 2)
        XCTAssertEqual(report["scorer"] as? String, "cosine of CLIP (clip-vit-b32) text and video embeddings")
        // Both videos are the same clip: each text ties with both, and ties count against the truth.
        XCTAssertEqual((report["text_to_video"] as? [String: Any])?["median_rank"] as? Double, 2)

        // Without the rows kept, and with another preset: one line naming what to change.
        let bare = dir + "/bare"
        try tokenize(bare, store: false)
        let noRows = try run(["retrieve", "--clip", "clip-vit-b32", "--clip-vocab", vocab, "--checkpoint", weights, "--corpus", bare, "--split", "train"])
        XCTAssertNotEqual(noRows.status, 0)
        XCTAssertTrue(noRows.stderr.contains("clip_features.npy"), noRows.stderr)
        let wrong = try run(["retrieve", "--clip", "clip-vit-b16", "--clip-vocab", vocab, "--checkpoint", weights, "--corpus", tokens, "--split", "train"])
        XCTAssertNotEqual(wrong.status, 0)
        XCTAssertTrue(wrong.stderr.contains("describes a ViT with 32×32 patches"), wrong.stderr)
    }

    func testCLIPPresetGeometry() {
        let p = FeaturePreset.all["clip-vit-b32"]!
        XCTAssertTrue(p.scaledSize(width: 1280, height: 720) == (398, 224))
        XCTAssertTrue(p.cropRect(width: 398, height: 224) == (87, 0, 224, 224))
        XCTAssertEqual(FeaturePreset.all["clip-vit-l14"]!.dim, 768)
    }
}
