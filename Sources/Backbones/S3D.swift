import Foundation
import Tensor

// S3D video backbones (Xie et al. 2018, "Rethinking Spatiotemporal Feature Learning",
// https://arxiv.org/abs/1712.04851), forward only, fp32, NTHWC, on Conv3d.swift's folded
// convolutions. Two published networks with their own state-dict names:
//
// - `.kinetics`: torchvision's S3D (Kinetics-400, s3d-d76dad2f.pth), as defined in
//   https://github.com/pytorch/vision/blob/v0.28.0/torchvision/models/video/s3d.py
//   (`TemporalSeparableConv`, `SepInceptionBlock3D`, `S3D.features`, BatchNorm3d eps 0.001).
//   The feature is the 1024-d vector the classifier sees, averaged: mean over time and space of
//   `avgpool(features(x))` (AvgPool3d (2, 7, 7), stride 1), so a clip needs ≥ 14 frames of ≥ 224².
// - `.howto100m`: MIL-NCE's S3D-G trained on HowTo100M (Miech et al. 2020, s3d_howto100m.pth), as
//   defined in https://github.com/antoine77340/S3D_HowTo100M/blob/master/s3dg.py (`S3D`,
//   `InceptionBlock`, `STConv3D`, `SelfGating`, `MaxPool3dTFPadding`; space-to-depth stem, BatchNorm3d
//   eps 1e-5). Features: `mixed_5c` = mean over time and space of the last block (1024-d) and the
//   joint text-video space `video_embedding` = fc(mixed_5c) (512-d). T, H and W must be even.

/// Which S3D.
public enum S3DVariant: String, Sendable, CaseIterable {
    case kinetics = "s3d-kinetics"
    case howto100m = "s3d-howto100m"
}

/// One step of the network.
enum S3DStage: Sendable {
    case conv(FoldedConv3d)
    case pool(MaxPool3dSpec)
    case gate(weight: [Float], bias: [Float])
    case inception(S3DInception)
    /// s3dg.py `S3D._space_to_depth`: [N, T, H, W, C] → [N, T/2, H/2, W/2, 8·C], channel ((dt·2 + dh)·2 + dw)·C + c.
    case spaceToDepth
}

/// An Inception block: four branches concatenated on channels (1×1×1; 1×1×1 → separable 3×3×3;
/// 1×1×1 → separable 3×3×3; 3×3×3 max pool → 1×1×1), each optionally self-gated (S3D-G).
struct S3DInception: Sendable {
    var b0: FoldedConv3d
    var b1: [FoldedConv3d]
    var b2: [FoldedConv3d]
    var b3: FoldedConv3d
    var gates: [(weight: [Float], bias: [Float])]?
    var outputs: Int { b0.OC + b1.last!.OC + b2.last!.OC + b3.OC }
    static let pool = MaxPool3dSpec(kernel: [3, 3, 3], stride: [1, 1, 1], padding: [1, 1, 1])
}

/// A torchvision or MIL-NCE S3D with weights from a state dict (`.pth` / safetensors).
public struct S3D: Sendable {
    public let variant: S3DVariant
    let stages: [S3DStage]
    /// MIL-NCE's joint-space projection `fc` [512, 1024] and bias (howto100m only).
    let fc: (weight: [Float], bias: [Float])?
    public let featureDim = 1024
    public var jointDim: Int { fc.map { $0.bias.count } ?? 0 }

    /// Builds the network, reading (or, without a file, only listing) the state dict.
    final class Builder {
        let file: WeightFile?
        var shapes: [(String, [Int])] = []
        let eps: Double
        init(file: WeightFile?, eps: Double) { (self.file, self.eps) = (file, eps) }

        func tensor(_ name: String, _ shape: [Int]) throws -> [Float] {
            shapes.append((name, shape))
            guard let file else { return [] }
            return try file.floats(name, shape: shape)
        }

        /// A bias-free Conv3d `w` [OC, C, k…] followed by BatchNorm3d `bn` (+ ReLU at run time).
        func conv(_ w: String, _ bn: String, C: Int, OC: Int, kernel: [Int], stride: [Int] = [1, 1, 1], padding: [Int] = [0, 0, 0],
                  padHigh: [Int]? = nil) throws -> FoldedConv3d {
            let weight = try tensor(w, [OC, C] + kernel)
            let g = try tensor(bn + ".weight", [OC]), b = try tensor(bn + ".bias", [OC])
            let m = try tensor(bn + ".running_mean", [OC]), v = try tensor(bn + ".running_var", [OC])
            if file == nil {
                return FoldedConv3d(weight: [Float](repeating: 0, count: 0), C: 0, OC: OC, kernel: kernel, stride: stride, padding: padding,
                                    padHigh: padHigh, gamma: [], beta: [], mean: [], variance: [], eps: eps)
            }
            return FoldedConv3d(weight: weight, C: C, OC: OC, kernel: kernel, stride: stride, padding: padding, padHigh: padHigh,
                                gamma: g, beta: b, mean: m, variance: v, eps: eps)
        }

        func linear(_ p: String, _ inp: Int, _ out: Int) throws -> (weight: [Float], bias: [Float]) {
            (try tensor(p + ".weight", [out, inp]), try tensor(p + ".bias", [out]))
        }
    }

    /// torchvision s3d.py L116-139 (`S3D.features`); Inception widths (b0, b1 mid, b1, b2 mid, b2, b3).
    static let kineticsBlocks: [(Int, [Int])] = [
        (5, [64, 96, 128, 16, 32, 32]), (6, [128, 128, 192, 32, 96, 64]),
        (8, [192, 96, 208, 16, 48, 64]), (9, [160, 112, 224, 24, 64, 64]), (10, [128, 128, 256, 24, 64, 64]),
        (11, [112, 144, 288, 32, 64, 64]), (12, [256, 160, 320, 32, 128, 128]),
        (14, [256, 160, 320, 32, 128, 128]), (15, [384, 192, 384, 48, 128, 128]),
    ]

    /// s3dg.py `S3D.__init__`: block names and widths (the same as torchvision's).
    static let howtoBlocks: [(String, [Int])] = [
        ("mixed_3b", [64, 96, 128, 16, 32, 32]), ("mixed_3c", [128, 128, 192, 32, 96, 64]),
        ("mixed_4b", [192, 96, 208, 16, 48, 64]), ("mixed_4c", [160, 112, 224, 24, 64, 64]), ("mixed_4d", [128, 128, 256, 24, 64, 64]),
        ("mixed_4e", [112, 144, 288, 32, 64, 64]), ("mixed_4f", [256, 160, 320, 32, 128, 128]),
        ("mixed_5b", [256, 160, 320, 32, 128, 128]), ("mixed_5c", [384, 192, 384, 48, 128, 128]),
    ]

    static func buildKinetics(_ b: Builder) throws -> [S3DStage] {
        // TemporalSeparableConv(in, out, k, s, p): Conv (1, k, k) stride (1, s, s) pad (0, p, p), then (k, 1, 1) stride (s, 1, 1) pad (p, 0, 0).
        func sep(_ p: String, _ C: Int, _ OC: Int, _ k: Int, _ s: Int, _ pad: Int) throws -> [FoldedConv3d] {
            [try b.conv("\(p).0.0.weight", "\(p).0.1", C: C, OC: OC, kernel: [1, k, k], stride: [1, s, s], padding: [0, pad, pad]),
             try b.conv("\(p).1.0.weight", "\(p).1.1", C: OC, OC: OC, kernel: [k, 1, 1], stride: [s, 1, 1], padding: [pad, 0, 0])]
        }
        func inception(_ i: Int, _ C: Int, _ w: [Int]) throws -> S3DInception {
            let p = "features.\(i)"
            return S3DInception(
                b0: try b.conv("\(p).branch0.0.weight", "\(p).branch0.1", C: C, OC: w[0], kernel: [1, 1, 1]),
                b1: [try b.conv("\(p).branch1.0.0.weight", "\(p).branch1.0.1", C: C, OC: w[1], kernel: [1, 1, 1])]
                    + (try sep("\(p).branch1.1", w[1], w[2], 3, 1, 1)),
                b2: [try b.conv("\(p).branch2.0.0.weight", "\(p).branch2.0.1", C: C, OC: w[3], kernel: [1, 1, 1])]
                    + (try sep("\(p).branch2.1", w[3], w[4], 3, 1, 1)),
                b3: try b.conv("\(p).branch3.1.0.weight", "\(p).branch3.1.1", C: C, OC: w[5], kernel: [1, 1, 1]),
                gates: nil)
        }
        var stages: [S3DStage] = try sep("features.0", 3, 64, 7, 2, 3).map { .conv($0) }
        stages.append(.pool(MaxPool3dSpec(kernel: [1, 3, 3], stride: [1, 2, 2], padding: [0, 1, 1])))
        stages.append(.conv(try b.conv("features.2.0.weight", "features.2.1", C: 64, OC: 64, kernel: [1, 1, 1])))
        stages += try sep("features.3", 64, 192, 3, 1, 1).map { .conv($0) }
        stages.append(.pool(MaxPool3dSpec(kernel: [1, 3, 3], stride: [1, 2, 2], padding: [0, 1, 1])))
        var C = 192
        for (i, w) in kineticsBlocks {
            if i == 8 { stages.append(.pool(MaxPool3dSpec(kernel: [3, 3, 3], stride: [2, 2, 2], padding: [1, 1, 1]))) }
            if i == 14 { stages.append(.pool(MaxPool3dSpec(kernel: [2, 2, 2], stride: [2, 2, 2]))) }
            let block = try inception(i, C, w)
            stages.append(.inception(block))
            C = w[0] + w[2] + w[4] + w[5]
        }
        // The classifier (Dropout, Conv3d 1024 → classes with bias): read only to check the file.
        let classes = b.file?.shape("classifier.1.weight")?.first ?? 400
        _ = try b.tensor("classifier.1.weight", [classes, 1024, 1, 1, 1])
        _ = try b.tensor("classifier.1.bias", [classes])
        return stages
    }

    static func buildHowTo100M(_ b: Builder) throws -> [S3DStage] {
        // STConv3D(in, out, [3,3,3], padding=1, separable=True): conv1 (1,3,3) pad (0,1,1) + bn1, conv2 (3,1,1) pad (1,0,0) + bn2.
        func sep(_ p: String, _ C: Int, _ OC: Int) throws -> [FoldedConv3d] {
            [try b.conv("\(p).conv1.weight", "\(p).bn1", C: C, OC: OC, kernel: [1, 3, 3], padding: [0, 1, 1]),
             try b.conv("\(p).conv2.weight", "\(p).bn2", C: OC, OC: OC, kernel: [3, 1, 1], padding: [1, 0, 0])]
        }
        func unit(_ p: String, _ C: Int, _ OC: Int) throws -> FoldedConv3d {
            try b.conv("\(p).conv1.weight", "\(p).bn1", C: C, OC: OC, kernel: [1, 1, 1])
        }
        // conv1: STConv3D(24, 64, [2, 4, 4], stride 1, padding (1, 2, 2)) on the space-to-depth input,
        // then `net[:, :, 1:, 1:, 1:]` (s3dg.py `S3D.forward`): the same as padding (0, 1, 1) low, (1, 2, 2) high.
        var stages: [S3DStage] = [.spaceToDepth,
                                  .conv(try b.conv("conv1.conv1.weight", "conv1.bn1", C: 24, OC: 64, kernel: [2, 4, 4],
                                                   padding: [0, 1, 1], padHigh: [1, 2, 2])),
                                  .pool(.tfSame(kernel: [1, 3, 3], stride: [1, 2, 2])),
                                  .conv(try unit("conv_2b", 64, 64))]
        stages += try sep("conv_2c", 64, 192).map { .conv($0) }
        let g = try b.linear("gating.fc", 192, 192)
        stages.append(.gate(weight: g.weight, bias: g.bias))
        stages.append(.pool(.tfSame(kernel: [1, 3, 3], stride: [1, 2, 2])))
        var C = 192
        for (name, w) in howtoBlocks {
            if name == "mixed_4b" { stages.append(.pool(.tfSame(kernel: [3, 3, 3], stride: [2, 2, 2]))) }
            if name == "mixed_5b" { stages.append(.pool(.tfSame(kernel: [2, 2, 2], stride: [2, 2, 2]))) }
            let block = S3DInception(
                b0: try unit("\(name).conv_b0", C, w[0]),
                b1: [try unit("\(name).conv_b1_a", C, w[1])] + (try sep("\(name).conv_b1_b", w[1], w[2])),
                b2: [try unit("\(name).conv_b2_a", C, w[3])] + (try sep("\(name).conv_b2_b", w[3], w[4])),
                b3: try unit("\(name).conv_b3_b", C, w[5]),
                gates: try [w[0], w[2], w[4], w[5]].enumerated().map { try b.linear("\(name).gating_b\($0.offset).fc", $0.element, $0.element) })
            stages.append(.inception(block))
            C = w[0] + w[2] + w[4] + w[5]
        }
        return stages
    }

    /// Every tensor of the reference state dict with its shape (the classifier / text tower
    /// included: they are read only to check the file). For `.howto100m`, `words` is the text
    /// tower's vocabulary size (66250 in s3d_howto100m.pth).
    public static func stateDictShapes(_ variant: S3DVariant, words: Int = 66250) -> [(String, [Int])] {
        let b = Builder(file: nil, eps: 0)
        switch variant {
        case .kinetics:
            _ = try? buildKinetics(b)
        case .howto100m:
            _ = try? buildHowTo100M(b)
            b.shapes += [("fc.weight", [512, 1024]), ("fc.bias", [512])] + S3DText.stateDictShapes(words: words)
        }
        return b.shapes
    }

    /// Loads a state dict of `variant`: every tensor must be there with the reference shape (the
    /// Kinetics classifier may have any number of classes, the text tower any vocabulary size);
    /// any other tensor is an error (BatchNorm's `num_batches_tracked` counters are allowed).
    public init(_ variant: S3DVariant, weights: WeightFile) throws {
        self.variant = variant
        let b = Builder(file: weights, eps: variant == .kinetics ? 0.001 : 1e-5)
        switch variant {
        case .kinetics:
            stages = try Self.buildKinetics(b)
            fc = nil
        case .howto100m:
            stages = try Self.buildHowTo100M(b)
            fc = try b.linear("fc", 1024, 512)
            let words = weights.shape("text_module.word_embd.weight")?.first ?? 66250
            for (n, s) in S3DText.stateDictShapes(words: words) { _ = try b.tensor(n, s) }
        }
        let known = Set(b.shapes.map(\.0))
        for n in weights.names where !known.contains(n) {
            if n.hasSuffix(".num_batches_tracked"), known.contains(String(n.dropLast("num_batches_tracked".count)) + "running_mean") { continue }
            throw VideoBertError("unexpected tensor '\(n)' with shape \(weights.shape(n) ?? []) (not part of \(variant.rawValue); is this its state dict?)",
                                 file: weights.path)
        }
    }

    /// The smallest clip (frames, side) the network accepts.
    public var minimumClip: (frames: Int, side: Int) {
        switch variant {
        case .kinetics: return (14, 224)   // torchvision S3D_Weights meta: min_temporal_size 14, min_size 224
        case .howto100m: return (2, 32)
        }
    }

    /// Why a clip of T×H×W cannot be run, or nil.
    public func rejection(T: Int, H: Int, W: Int) -> String? {
        let (f, side) = minimumClip
        if T < f || H < side || W < side { return "\(variant.rawValue) needs clips of at least \(f) frames of \(side)×\(side) (got \(T) of \(W)×\(H))" }
        if variant == .howto100m && (T % 2 != 0 || H % 2 != 0 || W % 2 != 0) {
            return "\(variant.rawValue) needs an even number of frames, height and width (space to depth; got \(T) of \(W)×\(H))"
        }
        return nil
    }

    /// The last block's activations [N, T', H', W', 1024] of N clips NTHWC [N, T, H, W, 3].
    func trunk(_ clips: UnsafePointer<Float>, N: Int, T: Int, H: Int, W: Int) -> (x: [Float], T: Int, H: Int, W: Int) {
        var x = Array(UnsafeBufferPointer(start: clips, count: N * T * H * W * 3))
        var (t, h, w, c) = (T, H, W, 3)
        for stage in stages {
            switch stage {
            case .spaceToDepth:
                var y = [Float](repeating: 0, count: x.count)
                let (t2, h2, w2) = (t / 2, h / 2, w / 2)
                for n in 0..<N {
                    for ot in 0..<t2 { for oh in 0..<h2 { for ow in 0..<w2 {
                        let dst = (((n * t2 + ot) * h2 + oh) * w2 + ow) * 8 * c
                        for dt in 0..<2 { for dh in 0..<2 { for dw in 0..<2 {
                            let src = (((n * t + 2 * ot + dt) * h + 2 * oh + dh) * w + 2 * ow + dw) * c
                            let o = dst + ((dt * 2 + dh) * 2 + dw) * c
                            for k in 0..<c { y[o + k] = x[src + k] }
                        } } }
                    } } }
                }
                x = y
                (t, h, w, c) = (t2, h2, w2, 8 * c)
            case .conv(let conv):
                let (ot, oh, ow) = conv.outputSize(t, h, w)
                var y = [Float](repeating: 0, count: N * ot * oh * ow * conv.OC)
                x.withUnsafeBufferPointer { xb in
                    y.withUnsafeMutableBufferPointer { conv.forward(xb.baseAddress!, N: N, T: t, H: h, W: w, relu: true, out: $0.baseAddress!) }
                }
                x = y
                (t, h, w, c) = (ot, oh, ow, conv.OC)
            case .pool(let pool):
                let (ot, oh, ow) = pool.outputSize(t, h, w)
                var y = [Float](repeating: 0, count: N * ot * oh * ow * c)
                x.withUnsafeBufferPointer { xb in
                    y.withUnsafeMutableBufferPointer { pool.forward(xb.baseAddress!, N: N, T: t, H: h, W: w, C: c, out: $0.baseAddress!) }
                }
                x = y
                (t, h, w) = (ot, oh, ow)
            case .gate(let weight, let bias):
                x.withUnsafeMutableBufferPointer {
                    selfGate($0.baseAddress!, N: N, positions: t * h * w, C: c, stride: c, weight: weight, bias: bias)
                }
            case .inception(let block):
                x = Self.run(block, x, N: N, T: t, H: h, W: w, C: c)
                c = block.outputs
            }
        }
        return (x, t, h, w)
    }

    static func run(_ block: S3DInception, _ x: [Float], N: Int, T: Int, H: Int, W: Int, C: Int) -> [Float] {
        let P = N * T * H * W, OC = block.outputs
        var out = [Float](repeating: 0, count: P * OC)
        let widths = [block.b0.OC, block.b1.last!.OC, block.b2.last!.OC, block.b3.OC]
        let offsets = [0, widths[0], widths[0] + widths[1], widths[0] + widths[1] + widths[2]]
        x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { ob in
                let xp = xb.baseAddress!, o = ob.baseAddress!
                block.b0.forward(xp, N: N, T: T, H: H, W: W, relu: true, out: o + offsets[0], outStride: OC)
                for (chain, offset) in [(block.b1, offsets[1]), (block.b2, offsets[2])] {
                    // All stride 1 with "same" padding: every stage keeps T×H×W.
                    var a = [Float](repeating: 0, count: P * chain[0].OC)
                    a.withUnsafeMutableBufferPointer { chain[0].forward(xp, N: N, T: T, H: H, W: W, relu: true, out: $0.baseAddress!) }
                    var s = [Float](repeating: 0, count: P * chain[1].OC)
                    a.withUnsafeBufferPointer { ab in
                        s.withUnsafeMutableBufferPointer { chain[1].forward(ab.baseAddress!, N: N, T: T, H: H, W: W, relu: true, out: $0.baseAddress!) }
                    }
                    s.withUnsafeBufferPointer { chain[2].forward($0.baseAddress!, N: N, T: T, H: H, W: W, relu: true, out: o + offset, outStride: OC) }
                }
                var pooled = [Float](repeating: 0, count: P * C)
                pooled.withUnsafeMutableBufferPointer { S3DInception.pool.forward(xp, N: N, T: T, H: H, W: W, C: C, out: $0.baseAddress!) }
                pooled.withUnsafeBufferPointer { block.b3.forward($0.baseAddress!, N: N, T: T, H: H, W: W, relu: true, out: o + offsets[3], outStride: OC) }
                if let gates = block.gates {
                    for i in 0..<4 {
                        selfGate(o + offsets[i], N: N, positions: T * H * W, C: widths[i], stride: OC, weight: gates[i].weight, bias: gates[i].bias)
                    }
                }
            }
        }
        return out
    }

    /// The 1024-d features of N clips NTHWC [N, T, H, W, 3] (normalised as the preset says) into
    /// out [N, 1024]: `.kinetics` the mean of `AvgPool3d((2, 7, 7), stride 1)` over its outputs;
    /// `.howto100m` the mean over time and space (`mixed_5c`). With `joint` (howto100m only), out
    /// [N, 512] = fc(mixed_5c), the text-video space. The clip must pass `rejection`.
    public func features(_ clips: UnsafePointer<Float>, N: Int, T: Int, H: Int, W: Int, joint: Bool = false, out: UnsafeMutablePointer<Float>) {
        precondition(rejection(T: T, H: H, W: W) == nil, rejection(T: T, H: H, W: W) ?? "")
        guard N > 0 else { return }
        let (x, t, h, w) = trunk(clips, N: N, T: T, H: H, W: W)
        let C = 1024
        // Per-position weights: the mean over all windows of window means (kinetics) or plain mean.
        func coverage(_ L: Int, _ k: Int) -> [Double] {
            guard variant == .kinetics else { return [Double](repeating: 1 / Double(L), count: L) }
            let windows = L - k + 1
            return (0..<L).map { i in Double(min(i, windows - 1) - max(0, i - k + 1) + 1) / Double(windows * k) }
        }
        let wt = coverage(t, 2), wh = coverage(h, 7), ww = coverage(w, 7)
        var pooled = [Float](repeating: 0, count: N * C)
        for n in 0..<N {
            var acc = [Double](repeating: 0, count: C)
            for a in 0..<t { for b in 0..<h { for d in 0..<w {
                let f = wt[a] * wh[b] * ww[d]
                let row = (((n * t + a) * h + b) * w + d) * C
                for c in 0..<C { acc[c] += f * Double(x[row + c]) }
            } } }
            for c in 0..<C { pooled[n * C + c] = Float(acc[c]) }
        }
        if joint, let fc {
            let D = fc.bias.count
            for n in 0..<N {
                for o in 0..<D {
                    var s = Double(fc.bias[o])
                    for i in 0..<C { s += Double(fc.weight[o * C + i]) * Double(pooled[n * C + i]) }
                    out[n * D + o] = Float(s)
                }
            }
        } else {
            out.update(from: pooled, count: N * C)
        }
    }
}
