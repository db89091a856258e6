import Foundation
import XCTest
@testable import Backbones
@testable import Tensor

/// The seeded CLIP weights of tools/fixtures/clip.py (same formula, same float32 operations).
enum SeededCLIP {
    static func value(_ name: String, _ shape: [Int]) -> [Float] {
        let u = SeededWeights.uniform(name, shape.reduce(1, *))
        let parts = name.split(separator: ".")
        let leaf = parts.count >= 2 ? String(parts[parts.count - 2]) : name
        if name == "logit_scale" { return [2.6592] }
        if name.hasSuffix(".bias") || name.hasSuffix("class_embedding") || name.contains("position_embedding") || name.contains("token_embedding") {
            return u.map { ($0 - 0.5) * 0.2 }
        }
        if leaf.contains("norm") || leaf == "pre_layrnorm" { return u.map { 0.8 + 0.4 * $0 } }
        let a = Float((3.0 / Double(shape.dropFirst().reduce(1, *))).squareRoot())
        return u.map { ($0 - 0.5) * 2 * a }
    }

    static func stateDict(_ config: CLIPConfig = .vitB32, vision: Bool) -> [(name: String, shape: [Int], values: [Float])] {
        config.stateDictShapes(vision: vision).map { ($0.0, $0.1, value($0.0, $0.1)) }
    }

    /// The fixture's images [2, 3, 224, 224] (NCHW order of the formula) as NHWC.
    static func images() -> [Float] {
        let (N, C, H, W) = (2, 3, 224, 224)
        let nchw = SeededWeights.uniform("clip-images", N * C * H * W).map { ($0 - 0.5) * 4 }
        var nhwc = [Float](repeating: 0, count: nchw.count)
        for n in 0..<N { for c in 0..<C { for h in 0..<H { for w in 0..<W {
            nhwc[((n * H + h) * W + w) * C + c] = nchw[((n * C + c) * H + h) * W + w]
        } } } }
        return nhwc
    }
}

final class CLIPTests: XCTestCase {
    func assertClose(_ got: [Float], _ fixture: String, shape: [Int], file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try NPY.read(Fixtures.path("clip/\(fixture)"))
        XCTAssertEqual(expected.shape, shape, file: file, line: line)
        let ref = try expected.floats()
        XCTAssertEqual(got.count, ref.count, file: file, line: line)
        let scale = ref.map { abs($0) }.max()!
        var worst: Float = 0
        for (a, b) in zip(got, ref) { worst = max(worst, abs(a - b)) }
        XCTAssertLessThanOrEqual(worst / scale, 1e-4, "\(fixture): max |Δ| \(worst) of max |x| \(scale)", file: file, line: line)
        XCTAssertGreaterThan(scale, 0.1, file: file, line: line)
    }

    func testVisionTowerFromAFolderMatchesTransformersGetImageFeatures() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try SeededWeights.writeSafetensors(SeededCLIP.stateDict(vision: true), to: dir + "/model.safetensors")
        // A config.json as Hugging Face stores it: most keys absent (transformers' defaults), legacy *_dict overriding.
        try Data(#"{"model_type": "clip", "projection_dim": 512, "vision_config": {"patch_size": 16}, "vision_config_dict": {"patch_size": 32, "hidden_act": "quick_gelu"}, "text_config": null}"#.utf8)
            .write(to: URL(fileURLWithPath: dir + "/config.json"))
        let checkpoint = try CLIPCheckpoint(path: dir, preset: "clip-vit-b32")
        XCTAssertEqual(checkpoint.config, .vitB32)
        let tower = try CLIPVisionTower(checkpoint: checkpoint)
        let images = SeededCLIP.images()
        var out = [Float](repeating: .nan, count: 2 * 512)
        images.withUnsafeBufferPointer { i in out.withUnsafeMutableBufferPointer { tower.features(i.baseAddress!, N: 2, H: 224, W: 224, out: $0.baseAddress!) } }
        try assertClose(out, "image_features.npy", shape: [2, 512])
        // One image alone gives its row of the batch.
        var one = [Float](repeating: .nan, count: 512)
        images.withUnsafeBufferPointer { i in one.withUnsafeMutableBufferPointer { tower.features(i.baseAddress! + 224 * 224 * 3, N: 1, H: 224, W: 224, out: $0.baseAddress!) } }
        for d in 0..<512 { XCTAssertEqual(one[d], out[512 + d], accuracy: 1e-4 * max(1, abs(one[d]))) }
    }

    func testTextTowerFromATorchArchiveMatchesTransformersGetTextFeatures() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/pytorch_model.bin"
        try SeededWeights.writeTorchArchive(SeededCLIP.stateDict(vision: false), prefix: "", to: path)
        let tower = try CLIPTextTower(checkpoint: try CLIPCheckpoint(path: path, preset: "clip-vit-b32"))   // no config.json: the preset's
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("clip/text_ids.json")))
        let ids = try JSONDecoder().decode([[Int32]].self, from: data)
        XCTAssertEqual(ids.map(\.count), [5, 11, 22])
        try assertClose(try tower.features(ids), "text_features.npy", shape: [3, 512])
        // Padded as clip.tokenize pads (zeros after the end id): the same features.
        let padded = ids.map { $0 + [Int32](repeating: 0, count: 77 - $0.count) }
        try assertClose(try tower.features(padded), "text_features.npy", shape: [3, 512])
        XCTAssertThrowsError(try tower.features([[49406, 49408]])) { XCTAssertTrue("\($0)".contains("token id 49408 is outside the vocabulary of 49408"), "\($0)") }
        XCTAssertThrowsError(try tower.features([[Int32](repeating: 1, count: 78)])) { XCTAssertTrue("\($0)".contains("longer than the 77 positions"), "\($0)") }
    }

    func testMissingUnexpectedAndMisshapenTensorsAndWrongConfigsNameTheKey() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/model.safetensors"
        // Text weights only: the vision tower's first tensor is missing.
        let text = SeededCLIP.stateDict(vision: false)
        try SeededWeights.writeSafetensors(text, to: path)
        XCTAssertThrowsError(try CLIPVisionTower(checkpoint: try CLIPCheckpoint(path: path, preset: "clip-vit-b32"))) { e in
            XCTAssertEqual("\(e)", "\(path): missing tensor 'vision_model.embeddings.class_embedding' (expected shape [768])")
        }
        // A misshapen tensor.
        var bad = text
        let i = bad.firstIndex { $0.name == "text_model.encoder.layers.3.mlp.fc1.weight" }!
        bad[i].shape = [512, 2048]
        try SeededWeights.writeSafetensors(bad, to: path)
        XCTAssertThrowsError(try CLIPTextTower(checkpoint: try CLIPCheckpoint(path: path, preset: "clip-vit-b32"))) { e in
            XCTAssertEqual("\(e)", "\(path): tensor 'text_model.encoder.layers.3.mlp.fc1.weight' has shape [512, 2048], expected [2048, 512]")
        }
        // An unexpected tensor.
        try SeededWeights.writeSafetensors(text + [("text_model.pooler.weight", [2, 2], [1, 2, 3, 4])], to: path)
        XCTAssertThrowsError(try CLIPTextTower(checkpoint: try CLIPCheckpoint(path: path, preset: "clip-vit-b32"))) { e in
            XCTAssertTrue("\(e)".hasPrefix("\(path): unexpected tensor 'text_model.pooler.weight' with shape [2, 2]"), "\(e)")
        }
        // A folder without weights, a config of another ViT, a bad config value.
        let folder = dir + "/folder"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        XCTAssertThrowsError(try CLIPCheckpoint(path: folder, preset: "clip-vit-b32")) { XCTAssertTrue("\($0)".contains("holds no model.safetensors"), "\($0)") }
        try SeededWeights.writeSafetensors(text, to: folder + "/model.safetensors")
        XCTAssertThrowsError(try CLIPCheckpoint(path: folder, preset: "clip-vit-b32")) { XCTAssertTrue("\($0)".contains("has no config.json"), "\($0)") }
        try Data(#"{"vision_config": {"patch_size": 14, "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16}}"#.utf8).write(to: URL(fileURLWithPath: folder + "/config.json"))
        XCTAssertThrowsError(try CLIPCheckpoint(path: folder, preset: "clip-vit-b32")) { e in
            XCTAssertEqual("\(e)", "\(folder)/config.json: describes a ViT with 14×14 patches, width 1024, 24 layers; clip-vit-b32 is patch 32, width 768, 12 layers")
        }
        // Keys the file omits take transformers' defaults (CLIPVisionConfig: intermediate 3072), not the preset's.
        let l14 = try CLIPCheckpoint(path: folder, preset: "clip-vit-l14").config
        XCTAssertEqual([l14.patchSize, l14.vision.hidden, l14.vision.layers, l14.vision.intermediate, l14.vision.heads, l14.projectionDim], [14, 1024, 24, 3072, 16, 512])
        try Data(#"{"text_config": {"num_hidden_layers": 1e12}}"#.utf8).write(to: URL(fileURLWithPath: folder + "/config.json"))
        XCTAssertThrowsError(try CLIPCheckpoint(path: folder, preset: "clip-vit-b32")) { e in
            XCTAssertTrue("\(e)".hasPrefix("\(folder)/config.json: 'text_config.num_hidden_layers' must be a whole number in 1...256"), "\(e)")
        }
        try Data(#"{"vision_config": {"image_size": 4096}}"#.utf8).write(to: URL(fileURLWithPath: folder + "/config.json"))
        XCTAssertThrowsError(try CLIPCheckpoint(path: folder, preset: "clip-vit-b32")) { e in
            XCTAssertEqual("\(e)", "\(folder)/config.json: 'vision_config.image_size' 4096 is not clip-vit-b32's 224")
        }
        XCTAssertThrowsError(try CLIPCheckpoint(path: folder, preset: "clip-vit-h14")) { XCTAssertTrue("\($0)".contains("unknown CLIP preset"), "\($0)") }
    }
}
