import Foundation
import XCTest
@testable import Backbones
@testable import Tensor

/// The seeded S3D weights of tools/fixtures/s3d.py (same formula, same float32 operations).
enum SeededS3D {
    static let vocabularySize = 41   // the fixture's 40 words + the padding token 0

    static func value(_ name: String, _ shape: [Int]) -> [Float] {
        let u = SeededWeights.uniform(name, shape.reduce(1, *))
        if name.hasSuffix("running_var") { return u.map { 0.5 + $0 } }
        if name.hasSuffix("running_mean") || name.hasSuffix(".bias") { return u.map { ($0 - 0.5) * 0.2 } }
        if shape.count == 5 {
            let a = Float((6.0 / Double(shape[1...].reduce(1, *))).squareRoot())
            return u.map { ($0 - 0.5) * 2 * a }
        }
        if shape.count == 2 {
            let a = Float((3.0 / Double(shape[1])).squareRoot())
            return u.map { ($0 - 0.5) * 2 * a }
        }
        return u.map { 0.8 + 0.4 * $0 }
    }

    static func stateDict(_ variant: S3DVariant) -> [(name: String, shape: [Int], values: [Float])] {
        S3D.stateDictShapes(variant, words: vocabularySize).map { ($0.0, $0.1, value($0.0, $0.1)) }
    }

    /// Input [N, C, T, H, W] by the fixture's formula, as NTHWC.
    static func clip(_ name: String, _ N: Int, _ T: Int, _ H: Int, _ W: Int, scale: Float, shift: Float) -> [Float] {
        let C = 3
        let ncthw = SeededWeights.uniform(name, N * C * T * H * W).map { ($0 - shift) * scale }
        var out = [Float](repeating: 0, count: ncthw.count)
        for n in 0..<N { for c in 0..<C { for t in 0..<T { for h in 0..<H { for w in 0..<W {
            out[(((n * T + t) * H + h) * W + w) * C + c] = ncthw[(((n * C + c) * T + t) * H + h) * W + w]
        } } } } }
        return out
    }
}

final class S3DTests: XCTestCase {
    func assertClose(_ got: [Float], _ fixture: String, shape: [Int], file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try NPY.read(Fixtures.path("s3d/\(fixture).npy"))
        XCTAssertEqual(expected.shape, shape, file: file, line: line)
        let ref = try expected.floats()
        XCTAssertEqual(got.count, ref.count, file: file, line: line)
        let scale = ref.map { abs($0) }.max()!
        var worst: Float = 0
        for (a, b) in zip(got, ref) { worst = max(worst, abs(a - b)) }
        XCTAssertLessThanOrEqual(worst / scale, 1e-4, "\(fixture): max |Δ| \(worst) of max |x| \(scale)", file: file, line: line)
        XCTAssertGreaterThan(scale, 0.01, file: file, line: line)
    }

    func testKineticsFromSafetensorsMatchesTorchvision() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/s3d.safetensors"
        try SeededWeights.writeSafetensors(SeededS3D.stateDict(.kinetics), to: path)
        let net = try S3D(.kinetics, weights: try WeightFile.open(path))
        let (T, H, W) = (24, 224, 256)
        XCTAssertNil(net.rejection(T: T, H: H, W: W))
        XCTAssertNotNil(net.rejection(T: 12, H: H, W: W))
        let input = SeededS3D.clip("input", 1, T, H, W, scale: 4, shift: 0.5)
        var out = [Float](repeating: .nan, count: 1024)
        input.withUnsafeBufferPointer { i in out.withUnsafeMutableBufferPointer { net.features(i.baseAddress!, N: 1, T: T, H: H, W: W, out: $0.baseAddress!) } }
        try assertClose(out, "kinetics", shape: [1, 1024])
    }

    func testHowTo100MVideoFromATorchArchiveMatchesS3DG() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/s3d_howto100m.pth"
        try SeededWeights.writeTorchArchive(SeededS3D.stateDict(.howto100m), prefix: "", to: path)
        let net = try S3D(.howto100m, weights: try WeightFile.open(path))
        let (N, T, H, W) = (2, 12, 48, 80)
        XCTAssertNil(net.rejection(T: T, H: H, W: W))
        XCTAssertNotNil(net.rejection(T: 13, H: H, W: W))
        let input = SeededS3D.clip("clip", N, T, H, W, scale: 1, shift: 0)
        var mixed = [Float](repeating: .nan, count: N * 1024), joint = [Float](repeating: .nan, count: N * 512)
        input.withUnsafeBufferPointer { i in
            mixed.withUnsafeMutableBufferPointer { net.features(i.baseAddress!, N: N, T: T, H: H, W: W, out: $0.baseAddress!) }
            joint.withUnsafeMutableBufferPointer { net.features(i.baseAddress!, N: N, T: T, H: H, W: W, joint: true, out: $0.baseAddress!) }
        }
        try assertClose(mixed, "howto100m-mixed5c", shape: [2, 1024])
        try assertClose(joint, "howto100m-joint", shape: [2, 512])
        XCTAssertEqual(net.jointDim, 512)
    }

    func testHowTo100MTextTowerTokenizesAndEmbedsAsS3DG() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/s3d_howto100m.safetensors"
        try SeededWeights.writeSafetensors(SeededS3D.stateDict(.howto100m).filter { $0.name.hasPrefix("text_module.") }, to: path)
        let text = try S3DText(weights: try WeightFile.open(path), dictionary: Fixtures.path("s3d/dict.npy"))
        struct Case: Decodable { var sentences: [String]; var ids: [[Int]] }
        let c = try JSONDecoder().decode(Case.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("s3d/sentences.json"))))
        for (s, ids) in zip(c.sentences, c.ids) { XCTAssertEqual(text.tokenIDs(s), ids, s) }
        try assertClose(text.embed(c.sentences), "howto100m-text", shape: [c.sentences.count, 512])
    }

    func testWrongTensorsAndVocabularyFilesAreOneLineErrors() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/w.safetensors"
        // Kinetics weights offered as HowTo100M.
        let kinetics = SeededS3D.stateDict(.kinetics).filter { !$0.name.hasPrefix("features.1") }
        try SeededWeights.writeSafetensors(kinetics, to: path)
        XCTAssertThrowsError(try S3D(.howto100m, weights: try WeightFile.open(path))) { e in
            XCTAssertEqual("\(e)", "\(path): missing tensor 'conv1.conv1.weight' (expected shape [64, 24, 2, 4, 4])")
        }
        XCTAssertThrowsError(try S3D(.kinetics, weights: try WeightFile.open(path))) { e in
            XCTAssertEqual("\(e)", "\(path): missing tensor 'features.10.branch0.0.weight' (expected shape [128, 512, 1, 1, 1])")
        }
        var sd = SeededS3D.stateDict(.kinetics)
        let i = sd.firstIndex { $0.name == "features.3.1.0.weight" }!
        sd[i].shape = [192, 192, 1, 3, 1]
        try SeededWeights.writeSafetensors(sd, to: path)
        XCTAssertThrowsError(try S3D(.kinetics, weights: try WeightFile.open(path))) { e in
            XCTAssertEqual("\(e)", "\(path): tensor 'features.3.1.0.weight' has shape [192, 192, 1, 3, 1], expected [192, 192, 3, 1, 1]")
        }
        sd[i].shape = [192, 192, 3, 1, 1]
        sd.append(("fc.weight", [2, 2], [1, 2, 3, 4]))
        try SeededWeights.writeSafetensors(sd, to: path)
        XCTAssertThrowsError(try S3D(.kinetics, weights: try WeightFile.open(path))) { e in
            XCTAssertTrue("\(e)".hasPrefix("\(path): unexpected tensor 'fc.weight' with shape [2, 2]"), "\(e)")
        }
        // Vocabulary files: an object array (a pickle), a truncated one, not a .npy.
        let npy = dir + "/dict.npy"
        let header = "{'descr': '|O', 'fortran_order': False, 'shape': (3,), }".padding(toLength: 118, withPad: " ", startingAt: 0) + "\n"
        try Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, 118, 0] + Array(header.utf8)).write(to: URL(fileURLWithPath: npy))
        XCTAssertThrowsError(try S3DText.readWords(npy)) { XCTAssertTrue("\($0)".contains("object arrays are pickles"), "\($0)") }
        let big = "{'descr': '<U9', 'fortran_order': False, 'shape': (100000000,), }".padding(toLength: 118, withPad: " ", startingAt: 0) + "\n"
        try Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, 118, 0] + Array(big.utf8) + [1, 2, 3]).write(to: URL(fileURLWithPath: npy))
        XCTAssertThrowsError(try S3DText.readWords(npy)) { XCTAssertTrue("\($0)".hasPrefix("\(npy): truncated .npy"), "\($0)") }
        try Data("hello".utf8).write(to: URL(fileURLWithPath: npy))
        XCTAssertThrowsError(try S3DText.readWords(npy)) { XCTAssertEqual("\($0)", "\(npy): not a .npy file (bad magic)") }
    }

    func testTFSamePoolingGeometry() {
        // s3dg.py MaxPool3dTFPadding: kernel 3, stride 2 → zeros (0, 1), then ceil mode.
        let p = MaxPool3dSpec.tfSame(kernel: [3, 3, 3], stride: [2, 2, 2])
        XCTAssertEqual(p.zeroLow, [0, 0, 0])
        XCTAssertEqual(p.zeroHigh, [1, 1, 1])
        XCTAssertEqual(p.outputLength(0, 6), 3)
        XCTAssertEqual(p.outputLength(0, 3), 2)
        XCTAssertEqual(p.outputLength(0, 7), 4)
        // A 1-D check on values: [5, −1, −2] → windows {5, −1, −2}, {−2, 0 (pad)}.
        let q = MaxPool3dSpec.tfSame(kernel: [1, 1, 3], stride: [1, 1, 2])
        var out = [Float](repeating: .nan, count: 2)
        let x: [Float] = [5, -1, -2]
        x.withUnsafeBufferPointer { xb in out.withUnsafeMutableBufferPointer { q.forward(xb.baseAddress!, N: 1, T: 1, H: 1, W: 3, C: 1, out: $0.baseAddress!) } }
        XCTAssertEqual(out, [5, 0])
        // torch MaxPool3d padding 1 is −∞: [−3, −1] with kernel 3 stride 1 → [−1, −1].
        let r = MaxPool3dSpec(kernel: [1, 1, 3], stride: [1, 1, 1], padding: [0, 0, 1])
        let y: [Float] = [-3, -1]
        y.withUnsafeBufferPointer { yb in out.withUnsafeMutableBufferPointer { r.forward(yb.baseAddress!, N: 1, T: 1, H: 1, W: 2, C: 1, out: $0.baseAddress!) } }
        XCTAssertEqual(out, [-1, -1])
    }
}
