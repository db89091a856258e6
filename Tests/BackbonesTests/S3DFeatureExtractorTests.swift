import Foundation
import XCTest
@testable import Backbones
import Media
@testable import Tensor

/// `videobert features` with the S3D presets end to end on the real clip of FeatureExtractorTests,
/// against the reference pipeline of tools/fixtures/s3d_e2e.py (ffmpeg CLI frames, numpy crop and
/// normalisation, torchvision's s3d.py / the s3dg.py transcription with the same seeded weights).
final class S3DFeatureExtractorTests: XCTestCase {
    struct Case: Decodable { var scale: [Int]; var crop: [Int]; var frames: Int; var rows: [[Double]] }

    static func expected(_ name: String) throws -> (Case, [Float]) {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("features/s3d-expected.json")))
        let all = try JSONDecoder().decode([String: Case].self, from: data)
        return (try XCTUnwrap(all[name]), try NPY.read(Fixtures.path("features/\(name).npy")).floats())
    }

    /// Cosine similarity ≥ 0.999 on every row (as FeatureExtractorTests).
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

    func assertSpans(_ got: [[Double]], _ want: [[Double]], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, file: file, line: line)
        for (a, b) in zip(got, want) {
            XCTAssertEqual(a.count, 2, file: file, line: line)
            for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-9, file: file, line: line) }
        }
    }

    func testHowTo100MPresetWithStrideMatchesTheReferencePipeline() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let weights = dir + "/s3d_howto100m.pth"
        try SeededWeights.writeTorchArchive(SeededS3D.stateDict(.howto100m), prefix: "", to: weights)
        let (want, rows) = try Self.expected("s3d-howto100m")
        var preset = try XCTUnwrap(FeaturePreset.all["s3d-howto100m"])
        XCTAssertEqual(preset.cropRect(width: 527, height: 224).x, 151)     // int(151.5): truncated, as MMPT
        preset.fps = FrameRate(10)
        preset.framesPerRow = 8
        preset.strideFrames = 12                                               // frames 8…11 are read by no row
        let extractor = try FeatureExtractor(preset: preset, weights: weights)
        let out = dir + "/out"
        let summary = try extractor.run([("bikes", FeatureExtractorTests.clip)], out: out, progress: false)
        XCTAssertEqual(summary.written, ["bikes"])
        let npy = try NPY.read(out + "/bikes.npy")
        XCTAssertEqual(npy.shape, [2, 1024])
        assertRowsMatch(try npy.floats(), rows, dim: 1024)
        let record = try JSONDecoder().decode(FeatureRecord.self, from: Data(contentsOf: URL(fileURLWithPath: out + "/bikes.json")))
        assertSpans(record.rows, want.rows)
        var r = record
        r.rows = want.rows
        XCTAssertEqual(r, FeatureRecord(backbone: "s3d-howto100m", dim: 1024, fps: 10, scale: want.scale, crop: want.crop,
                                        mean: [0, 0, 0], std: [1, 1, 1], frames_per_row: 8, stride_frames: 12, pool: "clip", rows: want.rows))
    }

    func testKineticsPresetMatchesTheReferencePipeline() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let weights = dir + "/s3d.safetensors"
        try SeededWeights.writeSafetensors(SeededS3D.stateDict(.kinetics), to: weights)
        let (want, rows) = try Self.expected("s3d-kinetics")
        var preset = try XCTUnwrap(FeaturePreset.all["s3d-kinetics"])
        XCTAssertTrue(preset.scaledSize(width: 640, height: 272) == (256, 256))
        preset.fps = FrameRate(5)
        preset.framesPerRow = 14
        preset.strideFrames = 14
        let extractor = try FeatureExtractor(preset: preset, weights: weights)
        let (got, record) = try extractor.extract(video: FeatureExtractorTests.clip)
        XCTAssertEqual(record.scale, want.scale)
        XCTAssertEqual(record.crop, want.crop)
        assertSpans(record.rows, want.rows)
        XCTAssertEqual(record.mean, [0.43216, 0.394666, 0.37645])
        assertRowsMatch(got, rows, dim: 1024)

        // Clips S3D cannot take, and videos too short for one clip: one line naming the video.
        preset.framesPerRow = 12
        XCTAssertThrowsError(try FeatureExtractor(preset: preset, weights: weights).extract(video: FeatureExtractorTests.clip)) { e in
            XCTAssertEqual("\(e)", "\(FeatureExtractorTests.clip): s3d-kinetics needs clips of at least 14 frames of 224×224 (got 12 of 224×224)")
        }
        preset.framesPerRow = 16
        XCTAssertThrowsError(try FeatureExtractor(preset: preset, weights: weights).extract(video: FeatureExtractorTests.clip)) { e in
            XCTAssertEqual("\(e)", "\(FeatureExtractorTests.clip): 15 frames at 5 fps; a clip needs 16")
        }
    }
}
