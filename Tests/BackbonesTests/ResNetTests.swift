import Foundation
import XCTest
@testable import Backbones
@testable import Tensor

/// The seeded weights of tools/fixtures/resnet.py (same formula, same float32 operations, same bits).
enum SeededWeights {
    static func fnv1a(_ s: String) -> UInt32 {
        var h: UInt32 = 0x811C_9DC5
        for b in s.utf8 { h = (h ^ UInt32(b)) &* 0x0100_0193 }
        return h
    }

    static func uniform(_ name: String, _ n: Int) -> [Float] {
        let seed = fnv1a(name)
        return (0..<n).map { i in
            var x = UInt32(truncatingIfNeeded: i) &* 0x9E37_79B1 &+ seed
            x ^= x >> 16; x = x &* 0x85EB_CA6B; x ^= x >> 13; x = x &* 0xC2B2_AE35; x ^= x >> 16
            return Float(x >> 8) / 16_777_216
        }
    }

    static func value(_ name: String, _ shape: [Int]) -> [Float] {
        let u = uniform(name, shape.reduce(1, *))
        if name.hasSuffix("running_var") { return u.map { 0.5 + $0 } }
        if name.hasSuffix("running_mean") || (name.hasSuffix(".bias") && !name.hasPrefix("fc.")) { return u.map { ($0 - 0.5) * 0.2 } }
        if name.hasPrefix("fc.") { return u.map { ($0 - 0.5) * 0.02 } }
        if shape.count == 4 {
            let a = Float((6.0 / Double(shape[1] * shape[2] * shape[3])).squareRoot())
            return u.map { ($0 - 0.5) * 2 * a }
        }
        let g: Float = name.contains(".bn3.") || name.contains(".downsample.1.") ? 0.2 : 1
        return u.map { g * (0.8 + 0.4 * $0) }
    }

    /// The fixture's input [2, 3, 64, 80] (NCHW order of the formula) as NHWC [2, 64, 80, 3].
    static func input() -> [Float] {
        let (N, C, H, W) = (2, 3, 64, 80)
        let nchw = uniform("input", N * C * H * W).map { ($0 - 0.5) * 4 }
        var nhwc = [Float](repeating: 0, count: nchw.count)
        for n in 0..<N { for c in 0..<C { for h in 0..<H { for w in 0..<W {
            nhwc[((n * H + h) * W + w) * C + c] = nchw[((n * C + c) * H + h) * W + w]
        } } } }
        return nhwc
    }

    static func stateDict(_ arch: String) -> [(name: String, shape: [Int], values: [Float])] {
        ResNet.stateDictShapes(arch)!.map { ($0.0, $0.1, value($0.0, $0.1)) }
    }

    static func writeSafetensors(_ tensors: [(name: String, shape: [Int], values: [Float])], to path: String) throws {
        var bufs: [(String, [Int], UnsafeMutableBufferPointer<Float>)] = []
        defer { bufs.forEach { $0.2.deallocate() } }
        for t in tensors {
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: t.values.count)
            _ = b.initialize(from: t.values)
            bufs.append((t.name, t.shape, b))
        }
        try SafeTensors.write(bufs.map { ($0.0, $0.1, UnsafeBufferPointer($0.2)) }, to: path)
    }

    /// A torch.save archive as torch ≥ 1.6 writes it (zip of stored entries; data.pkl = an
    /// OrderedDict of `_rebuild_tensor_v2` calls over one FloatStorage per tensor), built by hand.
    static func writeTorchArchive(_ tensors: [(name: String, shape: [Int], values: [Float])], prefix: String = "module.", to path: String) throws {
        var p: [UInt8] = [0x80, 0x02] + Hostile.global("collections", "OrderedDict") + [0x29, 0x52, 0x28]
        var entries: [(String, [UInt8])] = []
        for (i, t) in tensors.enumerated() {
            p += Hostile.str(prefix + t.name) + Hostile.global("torch._utils", "_rebuild_tensor_v2")
            p += [0x28] + Hostile.tuple([Hostile.str("storage"), Hostile.global("torch", "FloatStorage"), Hostile.str("\(i)"),
                                         Hostile.str("cpu"), Hostile.int(t.values.count)]) + [0x51]
            p += Hostile.int(0) + Hostile.tuple(t.shape.map(Hostile.int)) + Hostile.tuple(TorchFile.contiguousStrides(t.shape).map(Hostile.int))
            p += [0x89] + Hostile.global("collections", "OrderedDict") + [0x29, 0x52, 0x74, 0x52]
            entries.append(("archive/data/\(i)", t.values.withUnsafeBytes { Array($0) }))
        }
        p += [0x75, 0x2E]
        try Data(Hostile.zip([("archive/data.pkl", p), ("archive/byteorder", Array("little".utf8))] + entries))
            .write(to: URL(fileURLWithPath: path))
    }
}

final class ResNetTests: XCTestCase {
    func check(_ arch: String, weightsPath: String) throws {
        let net = try ResNet(name: arch, weights: try WeightFile.open(weightsPath))
        let input = SeededWeights.input()
        var out = [Float](repeating: .nan, count: 2 * 2048)
        input.withUnsafeBufferPointer { i in out.withUnsafeMutableBufferPointer { net.features(i.baseAddress!, N: 2, H: 64, W: 80, out: $0.baseAddress!) } }
        let expected = try NPY.read(Fixtures.path("resnet/\(arch).npy"))
        XCTAssertEqual(expected.shape, [2, 2048])
        let ref = try expected.floats()
        let scale = ref.map { abs($0) }.max()!
        var worst: Float = 0
        for (a, b) in zip(out, ref) { worst = max(worst, abs(a - b)) }
        XCTAssertLessThanOrEqual(worst / scale, 1e-4, "\(arch): max |Δ| \(worst) of max |x| \(scale)")
        XCTAssertGreaterThan(scale, 0.1)
    }

    func testResNet152FromSafetensorsMatchesTorchvision() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/resnet152.safetensors"
        try SeededWeights.writeSafetensors(SeededWeights.stateDict("resnet152"), to: path)
        try check("resnet152", weightsPath: path)
    }

    func testResNet50FromATorchArchiveMatchesTorchvision() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/resnet50.pth"
        try SeededWeights.writeTorchArchive(SeededWeights.stateDict("resnet50"), to: path)   // "module." keys (DataParallel)
        try check("resnet50", weightsPath: path)
    }

    func testMissingUnexpectedAndMisshapenTensorsNameTheKey() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var sd = SeededWeights.stateDict("resnet50")
        let path = dir + "/bad.safetensors"
        // resnet50 weights offered as resnet152: layer2.4 … are missing.
        try SeededWeights.writeSafetensors(sd, to: path)
        XCTAssertThrowsError(try ResNet(name: "resnet152", weights: try WeightFile.open(path))) { e in
            XCTAssertEqual("\(e)", "\(path): missing tensor 'layer2.4.conv1.weight' (expected shape [128, 512, 1, 1])")
        }
        XCTAssertThrowsError(try ResNet(name: "resnet18", weights: try WeightFile.open(path))) { XCTAssertTrue("\($0)".contains("unknown ResNet")) }
        // A misshapen tensor.
        let i = sd.firstIndex { $0.name == "layer3.0.conv2.weight" }!
        sd[i].shape = [256, 256, 1, 9]
        try SeededWeights.writeSafetensors(sd, to: path)
        XCTAssertThrowsError(try ResNet(name: "resnet50", weights: try WeightFile.open(path))) { e in
            XCTAssertEqual("\(e)", "\(path): tensor 'layer3.0.conv2.weight' has shape [256, 256, 1, 9], expected [256, 256, 3, 3]")
        }
        // An unexpected tensor.
        sd[i].shape = [256, 256, 3, 3]
        sd.append(("head.weight", [2, 2], [1, 2, 3, 4]))
        try SeededWeights.writeSafetensors(sd, to: path)
        XCTAssertThrowsError(try ResNet(name: "resnet50", weights: try WeightFile.open(path))) { e in
            XCTAssertTrue("\(e)".hasPrefix("\(path): unexpected tensor 'head.weight' with shape [2, 2]"), "\(e)")
        }
    }
}
