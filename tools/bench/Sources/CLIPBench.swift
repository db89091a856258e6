import Backbones
import Foundation
import Model
import Tensor

/// CLIP's vision tower (`get_image_features`) on a batch of normalised 224² images, with random
/// weights written to a temporary safetensors file and read back as users' weights are.
///
///     bench clip [--preset clip-vit-b32] [--batch 32] [--reps 3]
///
/// tools/bench/clip.py runs this and transformers' CLIPVisionModelWithProjection (2 threads) side by side.
func benchCLIP(_ args: [String]) throws {
    let preset = option(args, "preset", "clip-vit-b32")
    let batch = Int(option(args, "batch", "32"))!, reps = Int(option(args, "reps", "3"))!
    guard let config = CLIPConfig.presets[preset] else { throw VideoBertError("unknown --preset \(preset)") }
    var rng = SeededRNG(seed: 14)
    let path = NSTemporaryDirectory() + "bench-\(preset)-\(getpid()).safetensors"
    defer { try? FileManager.default.removeItem(atPath: path) }
    var buffers: [(String, [Int], UnsafeMutableBufferPointer<Float>)] = []
    for (name, shape) in config.stateDictShapes(vision: true) {
        let n = shape.reduce(1, *)
        let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: n)
        let scale = shape.count >= 2 ? Float((1.0 / Double(shape.dropFirst().reduce(1, *))).squareRoot()) : 0.1
        let norm = name.contains("norm") && name.hasSuffix(".weight")
        for i in 0..<n { b[i] = norm ? 1 : rng.nextGaussian() * scale }
        buffers.append((name, shape, b))
    }
    try SafeTensors.write(buffers.map { ($0.0, $0.1, UnsafeBufferPointer($0.2)) }, to: path)
    buffers.forEach { $0.2.deallocate() }
    Threads.configureBLAS()
    let t0 = now()
    let tower = try CLIPVisionTower(config: config, weights: try WeightFile.open(path))
    let loadSeconds = now() - t0
    let S = config.imageSize
    var images = [Float](repeating: 0, count: batch * S * S * 3)
    for i in images.indices { images[i] = rng.nextGaussian() }
    var out = [Float](repeating: 0, count: batch * tower.featureDim)
    var times: [Double] = []
    images.withUnsafeBufferPointer { x in
        out.withUnsafeMutableBufferPointer { o in
            for r in 0...reps {                 // r = 0: warm-up
                let t = now()
                tower.features(x.baseAddress!, N: batch, H: S, W: S, out: o.baseAddress!)
                if r > 0 { times.append(now() - t) }
            }
        }
    }
    let best = times.min()!
    printJSON(["benchmark": "clip", "preset": preset, "batch": batch, "size": S,
               "seconds_best": best, "seconds_median": times.sorted()[times.count / 2],
               "frames_per_s": Double(batch) / best, "load_seconds": loadSeconds,
               "checksum": Double(out.reduce(0, +)), "blas_threads": BLAS.threads, "workers": Parallel.workers])
}
