import Backbones
import Foundation
import Model
import Tensor

/// S3D clip features on a batch of normalised clips, with random weights written to a temporary
/// safetensors file and read back as users' weights are.
///
///     bench s3d [--variant s3d-kinetics] [--batch 8] [--frames 32] [--size 224] [--reps 1]
///
/// tools/bench/s3d.py runs this and torchvision's S3D (2 threads) side by side.
func benchS3D(_ args: [String]) throws {
    guard let variant = S3DVariant(rawValue: option(args, "variant", "s3d-kinetics")) else { throw VideoBertError("unknown --variant") }
    let batch = Int(option(args, "batch", "8"))!, frames = Int(option(args, "frames", "32"))!
    let size = Int(option(args, "size", "224"))!, reps = Int(option(args, "reps", "1"))!
    var rng = SeededRNG(seed: 14)
    let path = NSTemporaryDirectory() + "bench-\(variant.rawValue)-\(getpid()).safetensors"
    defer { try? FileManager.default.removeItem(atPath: path) }
    var buffers: [(String, [Int], UnsafeMutableBufferPointer<Float>)] = []
    for (name, shape) in S3D.stateDictShapes(variant, words: 16) {
        let n = shape.reduce(1, *)
        let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: n)
        let fanIn = shape.count == 5 ? shape[1...].reduce(1, *) : 1
        let scale = shape.count == 5 ? Float((2.0 / Double(fanIn)).squareRoot()) : 0.1
        for i in 0..<n { b[i] = name.hasSuffix("running_var") ? 1 + rng.nextFloat() : rng.nextGaussian() * scale }
        buffers.append((name, shape, b))
    }
    try SafeTensors.write(buffers.map { ($0.0, $0.1, UnsafeBufferPointer($0.2)) }, to: path)
    buffers.forEach { $0.2.deallocate() }
    Threads.configureBLAS()
    let t0 = now()
    let net = try S3D(variant, weights: try WeightFile.open(path))
    let loadSeconds = now() - t0
    var clips = [Float](repeating: 0, count: batch * frames * size * size * 3)
    for i in clips.indices { clips[i] = rng.nextGaussian() }
    var out = [Float](repeating: 0, count: batch * net.featureDim)
    var times: [Double] = []
    clips.withUnsafeBufferPointer { x in
        out.withUnsafeMutableBufferPointer { o in
            for r in 0...reps {                 // r = 0: warm-up
                let t = now()
                net.features(x.baseAddress!, N: batch, T: frames, H: size, W: size, out: o.baseAddress!)
                if r > 0 { times.append(now() - t) }
            }
        }
    }
    let best = times.min()!
    printJSON(["benchmark": "s3d", "variant": variant.rawValue, "batch": batch, "frames": frames, "size": size,
               "seconds_best": best, "seconds_median": times.sorted()[times.count / 2],
               "clips_per_s": Double(batch) / best, "load_seconds": loadSeconds,
               "checksum": Double(out.reduce(0, +)), "blas_threads": BLAS.threads, "workers": Parallel.workers])
}
