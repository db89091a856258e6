import Backbones
import Foundation
import Model
import Tensor

/// torchvision ResNet features (forward to the input of fc) on a batch of normalised images,
/// with random weights written to a temporary safetensors file and read back as users' weights are.
///
///     bench resnet [--arch resnet152] [--batch 32] [--size 224] [--reps 3]
///
/// tools/bench/resnet.py runs this and torchvision's resnet152 (2 threads) side by side.
func benchResNet(_ args: [String]) throws {
    let arch = option(args, "arch", "resnet152")
    let batch = Int(option(args, "batch", "32"))!, size = Int(option(args, "size", "224"))!
    let reps = Int(option(args, "reps", "3"))!
    guard let shapes = ResNet.stateDictShapes(arch) else { throw VideoBertError("unknown --arch \(arch)") }
    var rng = SeededRNG(seed: 14)
    let path = NSTemporaryDirectory() + "bench-\(arch)-\(getpid()).safetensors"
    defer { try? FileManager.default.removeItem(atPath: path) }
    var buffers: [(String, [Int], UnsafeMutableBufferPointer<Float>)] = []
    for (name, shape) in shapes {
        let n = shape.reduce(1, *)
        let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: n)
        let fanIn = shape.count == 4 ? shape[1] * shape[2] * shape[3] : 1
        let scale = shape.count == 4 ? Float((2.0 / Double(fanIn)).squareRoot()) : 0.1
        for i in 0..<n { b[i] = name.hasSuffix("running_var") ? 1 + rng.nextFloat() : rng.nextGaussian() * scale }
        buffers.append((name, shape, b))
    }
    try SafeTensors.write(buffers.map { ($0.0, $0.1, UnsafeBufferPointer($0.2)) }, to: path)
    buffers.forEach { $0.2.deallocate() }
    Threads.configureBLAS()
    let t0 = now()
    let net = try ResNet(name: arch, weights: try WeightFile.open(path))
    let loadSeconds = now() - t0
    var images = [Float](repeating: 0, count: batch * size * size * 3)
    for i in images.indices { images[i] = rng.nextGaussian() }
    var out = [Float](repeating: 0, count: batch * net.featureDim)
    var times: [Double] = []
    images.withUnsafeBufferPointer { x in
        out.withUnsafeMutableBufferPointer { o in
            for r in 0...reps {                 // r = 0: warm-up
                let t = now()
                net.features(x.baseAddress!, N: batch, H: size, W: size, out: o.baseAddress!)
                if r > 0 { times.append(now() - t) }
            }
        }
    }
    let best = times.min()!
    // Multiply-adds of resnet152 at 224²: 11.5 G per image (torchvision's "_ops": 11.514 GFLOPs, counted as MACs).
    printJSON(["benchmark": "resnet", "arch": arch, "batch": batch, "size": size,
               "seconds_best": best, "seconds_median": times.sorted()[times.count / 2],
               "frames_per_s": Double(batch) / best, "load_seconds": loadSeconds,
               "checksum": Double(out.reduce(0, +)), "blas_threads": BLAS.threads, "workers": Parallel.workers])
}
