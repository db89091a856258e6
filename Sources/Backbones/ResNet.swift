import Foundation
import Tensor

// torchvision's ResNet-50 / ResNet-152 (He et al. 2016, "Deep Residual Learning for Image
// Recognition"; torchvision's "v1.5" with the stride on the 3×3 convolution), forward only, fp32,
// as torchvision defines it in
// https://github.com/pytorch/vision/blob/main/torchvision/models/resnet.py
// (`Bottleneck`, `ResNet._make_layer`, `ResNet._forward_impl`; resnet50 = [3, 4, 6, 3] blocks,
// resnet152 = [3, 8, 36, 3]). The feature is the input of `fc`: `flatten(avgpool(layer4(...)))`,
// 2048 values per image. Eval-mode BatchNorm is folded into each convolution at load
// (Conv.swift), so a block is three (or four) sgemm-backed convolutions.

/// A bottleneck block: 1×1 → 3×3 (stride) → 1×1 (×4 channels), plus the identity or a
/// 1×1 strided projection (`downsample`), then ReLU.
struct Bottleneck: Sendable {
    var conv1, conv2, conv3: FoldedConv
    var downsample: FoldedConv?
}

/// A torchvision bottleneck ResNet with weights from a state dict (`.pth` / safetensors).
public struct ResNet: Sendable {
    public let name: String
    public let blocks: [Int]
    /// Dimension of the feature: the input of torchvision's `fc` layer.
    public let featureDim = 2048
    var stem: FoldedConv
    var layers: [[Bottleneck]]

    /// Blocks per stage of the torchvision bottleneck ResNets.
    public static let architectures: [String: [Int]] = ["resnet50": [3, 4, 6, 3], "resnet101": [3, 4, 23, 3], "resnet152": [3, 8, 36, 3]]

    /// Every tensor of torchvision's state dict for `name`, with its shape (`fc` included: it is
    /// read only to check the file; the features stop before it).
    public static func stateDictShapes(_ name: String, classes: Int = 1000) -> [(String, [Int])]? {
        guard let blocks = architectures[name] else { return nil }
        var out: [(String, [Int])] = []
        func bn(_ p: String, _ c: Int) {
            for s in ["weight", "bias", "running_mean", "running_var"] { out.append(("\(p).\(s)", [c])) }
        }
        out.append(("conv1.weight", [64, 3, 7, 7])); bn("bn1", 64)
        var inplanes = 64
        for (stage, count) in blocks.enumerated() {
            let planes = 64 << stage
            for b in 0..<count {
                let p = "layer\(stage + 1).\(b)"
                out.append(("\(p).conv1.weight", [planes, inplanes, 1, 1])); bn("\(p).bn1", planes)
                out.append(("\(p).conv2.weight", [planes, planes, 3, 3])); bn("\(p).bn2", planes)
                out.append(("\(p).conv3.weight", [planes * 4, planes, 1, 1])); bn("\(p).bn3", planes * 4)
                if b == 0 {
                    out.append(("\(p).downsample.0.weight", [planes * 4, inplanes, 1, 1])); bn("\(p).downsample.1", planes * 4)
                }
                inplanes = planes * 4
            }
        }
        out.append(("fc.weight", [classes, 2048]))
        out.append(("fc.bias", [classes]))
        return out
    }

    /// Loads torchvision's `resnet50()` / `resnet152()` state dict. Every tensor must be there
    /// with torchvision's shape (`fc` may have any number of classes); a tensor the architecture
    /// does not have is an error too (BatchNorm's `num_batches_tracked` counters are allowed).
    public init(name: String, weights: WeightFile) throws {
        guard let blocks = Self.architectures[name], let shapes0 = Self.stateDictShapes(name) else {
            throw VideoBertError("unknown ResNet '\(name)' (known: \(Self.architectures.keys.sorted().joined(separator: ", ")))")
        }
        let classes = weights.shape("fc.weight")?.first ?? 1000
        let shapes = Self.stateDictShapes(name, classes: classes) ?? shapes0
        let known = Set(shapes.map(\.0))
        for n in weights.names where !known.contains(n) {
            if n.hasSuffix(".num_batches_tracked"), known.contains(String(n.dropLast("num_batches_tracked".count)) + "running_mean") { continue }
            throw VideoBertError("unexpected tensor '\(n)' with shape \(weights.shape(n) ?? []) (not part of torchvision's \(name); is this a \(name) state dict?)", file: weights.path)
        }
        let expected = Dictionary(uniqueKeysWithValues: shapes)
        for (n, s) in shapes { _ = try weights.checkShape(n, s) }
        func conv(_ w: String, _ bnPrefix: String, stride: Int, padding: Int) throws -> FoldedConv {
            let s = expected[w]!
            return FoldedConv(weight: try weights.floats(w), C: s[1], OC: s[0], KH: s[2], KW: s[3], stride: stride, padding: padding,
                              gamma: try weights.floats(bnPrefix + ".weight"), beta: try weights.floats(bnPrefix + ".bias"),
                              mean: try weights.floats(bnPrefix + ".running_mean"), variance: try weights.floats(bnPrefix + ".running_var"))
        }
        self.name = name
        self.blocks = blocks
        stem = try conv("conv1.weight", "bn1", stride: 2, padding: 3)
        var layers: [[Bottleneck]] = []
        for (stage, count) in blocks.enumerated() {
            var blockList: [Bottleneck] = []
            for b in 0..<count {
                let p = "layer\(stage + 1).\(b)"
                let stride = (b == 0 && stage > 0) ? 2 : 1
                blockList.append(Bottleneck(
                    conv1: try conv("\(p).conv1.weight", "\(p).bn1", stride: 1, padding: 0),
                    conv2: try conv("\(p).conv2.weight", "\(p).bn2", stride: stride, padding: 1),
                    conv3: try conv("\(p).conv3.weight", "\(p).bn3", stride: 1, padding: 0),
                    downsample: b == 0 ? try conv("\(p).downsample.0.weight", "\(p).downsample.1", stride: stride, padding: 0) : nil))
            }
            layers.append(blockList)
        }
        self.layers = layers
    }

    /// Smallest input side: the stem and four stride-2 stages leave at least one position.
    public static let minimumSide = 32

    /// Features of N normalised images, NHWC [N, H, W, 3] → [N, 2048] (the input of torchvision's
    /// `fc`, i.e. `torch.flatten(model.avgpool(...), 1)`). Any H, W ≥ 32 (the global average pool
    /// makes the feature size-independent, as HowTo100M's full-frame 2D features use it).
    public func features(_ images: UnsafePointer<Float>, N: Int, H: Int, W: Int, out: UnsafeMutablePointer<Float>) {
        precondition(H >= Self.minimumSide && W >= Self.minimumSide, "ResNet input \(H)×\(W) is smaller than 32×32")
        guard N > 0 else { return }
        var (h, w) = stem.outputSize(H, W)
        var x = [Float](repeating: 0, count: N * h * w * 64)
        x.withUnsafeMutableBufferPointer { stem.forward(images, N: N, H: H, W: W, relu: true, out: $0.baseAddress!) }
        let (ph, pw) = ((h + 2 - 3) / 2 + 1, (w + 2 - 3) / 2 + 1)
        var pooled = [Float](repeating: 0, count: N * ph * pw * 64)
        x.withUnsafeBufferPointer { xi in
            pooled.withUnsafeMutableBufferPointer {
                _ = maxPool(xi.baseAddress!, N: N, H: h, W: w, C: 64, kernel: 3, stride: 2, padding: 1, out: $0.baseAddress!)
            }
        }
        x = pooled
        (h, w) = (ph, pw)
        for stage in layers {
            for block in stage {
                (x, h, w) = Self.run(block, x, N: N, H: h, W: w)
            }
        }
        x.withUnsafeBufferPointer { globalAveragePool($0.baseAddress!, N: N, HW: h * w, C: 2048, out: out) }
    }

    static func run(_ b: Bottleneck, _ x: [Float], N: Int, H: Int, W: Int) -> ([Float], Int, Int) {
        let (oh, ow) = b.conv2.outputSize(H, W)
        var t1 = [Float](repeating: 0, count: N * H * W * b.conv1.OC)
        var t2 = [Float](repeating: 0, count: N * oh * ow * b.conv2.OC)
        var out = [Float](repeating: 0, count: N * oh * ow * b.conv3.OC)
        x.withUnsafeBufferPointer { xb in
            let xp = xb.baseAddress!
            t1.withUnsafeMutableBufferPointer { b.conv1.forward(xp, N: N, H: H, W: W, relu: true, out: $0.baseAddress!) }
            t1.withUnsafeBufferPointer { t1b in
                t2.withUnsafeMutableBufferPointer { b.conv2.forward(t1b.baseAddress!, N: N, H: H, W: W, relu: true, out: $0.baseAddress!) }
            }
            var identity: [Float]? = nil
            if let d = b.downsample {
                var r = [Float](repeating: 0, count: N * oh * ow * d.OC)
                r.withUnsafeMutableBufferPointer { d.forward(xp, N: N, H: H, W: W, relu: false, out: $0.baseAddress!) }
                identity = r
            }
            func finish(_ res: UnsafePointer<Float>) {
                t2.withUnsafeBufferPointer { t2b in
                    out.withUnsafeMutableBufferPointer {
                        b.conv3.forward(t2b.baseAddress!, N: N, H: oh, W: ow, residual: res, relu: true, out: $0.baseAddress!)
                    }
                }
            }
            if let identity { identity.withUnsafeBufferPointer { finish($0.baseAddress!) } } else { finish(xp) }
        }
        return (out, oh, ow)
    }
}
