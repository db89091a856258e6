import Foundation
import Model
import Tensor

/// The CBT visual front-end (`ConvFrontEnd`) forward + backward on a batch of clips of uint8
/// frames: normalise → 3 × (conv 3×3 → ReLU → [max pool 2×2]) → global average → mean over frames
/// → linear. Reports time per step, forward and backward separately, and achieved GFLOP/s.
///
///     bench conv [--clips 32] [--F 4] [--S 32] [--channels 32,64,128] [--D 768] [--reps 10] [--chunk 524288]
///
/// tools/bench/conv.py runs this and the equivalent torch module (2 threads) side by side.
func benchConv(_ args: [String]) throws {
    let clips = Int(option(args, "clips", "32"))!, F = Int(option(args, "F", "4"))!
    let S = Int(option(args, "S", "32"))!, D = Int(option(args, "D", "768"))!
    let channels = option(args, "channels", "32,64,128").split(separator: ",").map { Int($0)! }
    let reps = Int(option(args, "reps", "10"))!
    let chunkFloats = Int(option(args, "chunk", "\(1 << 19)"))!

    let config = ConvFrontEndConfig(frameSize: S, framesPerClip: F, channels: channels, outputSize: D)
    let store = try ParameterStore(ConvFrontEnd.parameterSpecs(config))
    var rng = SeededRNG(seed: 3)
    ConvFrontEnd.initializeParameters(config, store: store, rng: &rng)
    var layout = ArenaLayout()
    let frontEnd = try ConvFrontEnd(config: config, store: store, maxClips: clips, layout: &layout, chunkFloats: chunkFloats)
    let dout = layout.add("dout", [clips, D])
    let arena = Arena(layout)
    for i in 0..<(clips * D) { arena[dout][i] = rng.nextGaussian() * 0.01 }
    var frames = [UInt8](repeating: 0, count: clips * F * S * S * 3)
    for i in frames.indices { frames[i] = UInt8(truncatingIfNeeded: rng.next()) }

    var forwardTimes: [Double] = [], backwardTimes: [Double] = [], stepTimes: [Double] = []
    frames.withUnsafeBufferPointer { pixels in
        for r in 0...reps {                      // r = 0: warm-up (page in the arena, start BLAS threads)
            let t0 = now()
            _ = frontEnd.forward(arena: arena, frames: pixels.baseAddress!, clips: clips)
            let t1 = now()
            store.zeroGradients()
            frontEnd.backward(arena: arena, dout: arena[dout], clips: clips)
            let t2 = now()
            if r > 0 {
                forwardTimes.append(t1 - t0)
                backwardTimes.append(t2 - t1)
                stepTimes.append(t2 - t0)
            }
        }
    }
    func median(_ x: [Double]) -> Double { x.sorted()[x.count / 2] }

    // sgemm work: forward 2·rows·OC·K per convolution; backward the same for dweight and, except
    // for the first layer (images take no gradient), for dinp; plus the projection (×3).
    let images = Double(clips * F)
    var forwardFlops = 0.0, backwardFlops = 0.0
    for (l, g) in frontEnd.convolutions.enumerated() {
        let product = 2 * images * Double(g.OH * g.OW) * Double(g.OC * g.patch)
        forwardFlops += product
        backwardFlops += l == 0 ? product : 2 * product
    }
    let projection = 2 * Double(clips) * Double(D * channels.last!)
    forwardFlops += projection
    backwardFlops += 2 * projection
    let best = stepTimes.min()!
    printJSON([
        "benchmark": "conv", "clips": clips, "F": F, "S": S, "channels": channels, "D": D,
        "seconds_best": best, "seconds_median": median(stepTimes),
        "forward_seconds_best": forwardTimes.min()!, "backward_seconds_best": backwardTimes.min()!,
        "clips_per_s": Double(clips) / best,
        "gflop_per_step": (forwardFlops + backwardFlops) / 1e9, "gflops_best": (forwardFlops + backwardFlops) / best / 1e9,
        "images_per_chunk": frontEnd.imagesPerChunk,
        "blas_threads": BLAS.threads, "workers": Parallel.workers,
        "arena_mb": Double(arena.bytes) / 1e6, "parameters": store.count,
    ])
}
