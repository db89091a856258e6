import Foundation
import Model
import Tensor

// CLIP's two towers (Radford et al. 2021, https://arxiv.org/abs/2103.00020), forward only, fp32,
// as transformers defines them in transformers/models/clip/modeling_clip.py:
//
//   vision (`CLIPVisionTransformer` + `visual_projection`, i.e. `CLIPModel.get_image_features`):
//     patches = conv P×P stride P (no bias) over the normalised image   → [N, G², D]
//     x = [class_embedding; patches] + position_embedding                → [N, G²+1, D]
//     x = pre_layrnorm(x); x = encoder(x); pooled = post_layernorm(x[:, 0]); out = pooled·Wᵀ
//   text (`CLIPTextTransformer` + `text_projection`, i.e. `get_text_features`):
//     x = token_embedding[ids] + position_embedding; x = encoder(x, causal mask)
//     x = final_layer_norm(x); pooled = x[first position holding the end-of-text id]; out = pooled·Wᵀ
//   encoder layer (`CLIPEncoderLayer`, pre-LN):
//     x += out_proj(attention(layer_norm1(x)));  x += fc2(act(fc1(layer_norm2(x))))
//     act = quick_gelu: x·σ(1.702·x)
//
// The patch convolution is one sgemm (its torch weight [D, 3, P, P] already is the [D, 3·P·P]
// matrix of patches flattened in (c, kh, kw) order); every Linear is one sgemm through
// Model's `linearForward`, LayerNorm is Model's `layerNormForward`; attention runs per
// (sequence, head) on Parallel's workers with OpenBLAS single-threaded (docs/ARCHITECTURE.md §8).
// The text tower pools at the end-of-text id (transformers: the first position of
// `eos_token_id` = 49407, or the argmax of the ids for legacy configs: the same position for
// CLIP's tokenizer, whose end id is the largest); positions after it cannot change it (causal mask).

/// The weights of one pre-LN transformer layer, Q/K/V fused into one [3D, D] projection.
struct CLIPLayer: Sendable {
    var ln1w, ln1b, qkvW, qkvB, outW, outB, ln2w, ln2b, fc1W, fc1B, fc2W, fc2B: [Float]
}

/// A stack of CLIP encoder layers with its forward over [B, T, D] hidden states.
struct CLIPEncoder: Sendable {
    let shape: CLIPTowerShape
    let layers: [CLIPLayer]

    init(weights: WeightFile, prefix: String, shape: CLIPTowerShape) throws {
        self.shape = shape
        var layers: [CLIPLayer] = []
        for l in 0..<shape.layers {
            let p = "\(prefix).encoder.layers.\(l)"
            func f(_ n: String) throws -> [Float] { try weights.floats("\(p).\(n)") }
            layers.append(CLIPLayer(
                ln1w: try f("layer_norm1.weight"), ln1b: try f("layer_norm1.bias"),
                qkvW: try f("self_attn.q_proj.weight") + f("self_attn.k_proj.weight") + f("self_attn.v_proj.weight"),
                qkvB: try f("self_attn.q_proj.bias") + f("self_attn.k_proj.bias") + f("self_attn.v_proj.bias"),
                outW: try f("self_attn.out_proj.weight"), outB: try f("self_attn.out_proj.bias"),
                ln2w: try f("layer_norm2.weight"), ln2b: try f("layer_norm2.bias"),
                fc1W: try f("mlp.fc1.weight"), fc1B: try f("mlp.fc1.bias"),
                fc2W: try f("mlp.fc2.weight"), fc2B: try f("mlp.fc2.bias")))
        }
        self.layers = layers
    }

    /// Floats of scratch `forward` needs for B sequences of T tokens.
    func scratchCount(B: Int, T: Int) -> Int {
        let N = B * T, D = shape.hidden
        return N * D + N * 3 * D + N * D + N * shape.intermediate + 2 * N + B * shape.heads * T * T
    }

    /// x [B·T, D] ← encoder(x), in place. `causal`: token t attends to tokens ≤ t only.
    func forward(_ x: UnsafeMutablePointer<Float>, B: Int, T: Int, causal: Bool, scratch: UnsafeMutablePointer<Float>) {
        let N = B * T, D = shape.hidden, FF = shape.intermediate, NH = shape.heads
        let h = scratch, qkv = h + N * D, ctx = qkv + N * 3 * D, ff = ctx + N * D
        let mean = ff + N * FF, rstd = mean + N, att = rstd + N
        for layer in layers {
            layer.ln1w.withUnsafeBufferPointer { w in layer.ln1b.withUnsafeBufferPointer { b in
                layerNormForward(out: h, mean: mean, rstd: rstd, inp: x, weight: w.baseAddress!, bias: b.baseAddress!, N: N, C: D, eps: shape.eps)
            } }
            layer.qkvW.withUnsafeBufferPointer { w in layer.qkvB.withUnsafeBufferPointer { b in
                linearForward(out: qkv, inp: h, weight: w.baseAddress!, bias: b.baseAddress!, N: N, C: D, OC: 3 * D)
            } }
            clipAttention(out: ctx, qkv: qkv, att: att, B: B, T: T, C: D, NH: NH, causal: causal)
            layer.outW.withUnsafeBufferPointer { w in layer.outB.withUnsafeBufferPointer { b in
                linearAccumulate(into: x, inp: ctx, weight: w.baseAddress!, bias: b.baseAddress!, N: N, C: D, OC: D)
            } }
            layer.ln2w.withUnsafeBufferPointer { w in layer.ln2b.withUnsafeBufferPointer { b in
                layerNormForward(out: h, mean: mean, rstd: rstd, inp: x, weight: w.baseAddress!, bias: b.baseAddress!, N: N, C: D, eps: shape.eps)
            } }
            layer.fc1W.withUnsafeBufferPointer { w in layer.fc1B.withUnsafeBufferPointer { b in
                linearForward(out: ff, inp: h, weight: w.baseAddress!, bias: b.baseAddress!, N: N, C: D, OC: FF)
            } }
            activate(ff, N * FF, shape.activation)
            layer.fc2W.withUnsafeBufferPointer { w in layer.fc2B.withUnsafeBufferPointer { b in
                linearAccumulate(into: x, inp: ff, weight: w.baseAddress!, bias: b.baseAddress!, N: N, C: FF, OC: D)
            } }
        }
    }
}

/// out += inp · weightᵀ + bias (a Linear added to the residual stream in one sgemm).
func linearAccumulate(into out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                      bias: UnsafePointer<Float>, N: Int, C: Int, OC: Int) {
    Parallel.forEachRange(N, grain: max(1, 32_768 / max(OC, 1))) { rows in
        for n in rows {
            let o = out + n * OC
            for c in 0..<OC { o[c] += bias[c] }
        }
    }
    BLAS.sgemm(transA: false, transB: true, m: N, n: OC, k: C, a: inp, lda: C, b: weight, ldb: C, beta: 1, c: out, ldc: OC)
}

/// quick_gelu x·σ(1.702x) (CLIP's, transformers' `QuickGELUActivation`) or gelu x·Φ(x) (erf), in place.
func activate(_ x: UnsafeMutablePointer<Float>, _ count: Int, _ kind: String) {
    let quick = kind == "quick_gelu"
    Parallel.forEachRange(count, grain: 16_384) { range in
        if quick {
            for i in range { let v = x[i]; x[i] = v / (1 + exp(-1.702 * v)) }
        } else {
            for i in range { let v = x[i]; x[i] = 0.5 * v * (1 + erf(v * 0.70710678118654752)) }
        }
    }
}

/// Multi-head self-attention over a fused QKV [B, T, 3C] (Q, K, V in column blocks, head h in
/// columns h·HS..<(h+1)·HS of each): out [B, T, C] = softmax(Q·Kᵀ/√HS (+ causal mask))·V.
/// `att`: [B, NH, T, T] scratch.
func clipAttention(out: UnsafeMutablePointer<Float>, qkv: UnsafePointer<Float>, att: UnsafeMutablePointer<Float>,
                   B: Int, T: Int, C: Int, NH: Int, causal: Bool) {
    let HS = C / NH, C3 = 3 * C, scale = 1 / Float(HS).squareRoot()
    Parallel.withSingleThreadedBLAS {
        Parallel.concurrentPerform(B * NH) { bh in
            let b = bh / NH, hd = bh % NH
            let q = qkv + b * T * C3 + hd * HS, k = q + C, v = q + 2 * C
            let p = att + bh * T * T
            BLAS.sgemm(transA: false, transB: true, m: T, n: T, k: HS, alpha: scale, a: q, lda: C3, b: k, ldb: C3, beta: 0, c: p, ldc: T)
            for i in 0..<T {
                let row = p + i * T, keys = causal ? i + 1 : T
                var m = -Float.infinity
                for j in 0..<keys where row[j] > m { m = row[j] }
                var sum: Float = 0
                for j in 0..<keys { let e = exp(row[j] - m); row[j] = e; sum += e }
                let inv = 1 / sum
                for j in 0..<keys { row[j] *= inv }
                if keys < T { (row + keys).update(repeating: 0, count: T - keys) }
            }
            BLAS.sgemm(transA: false, transB: false, m: T, n: HS, k: T, a: p, lda: T, b: v, ldb: C3, beta: 0, c: out + b * T * C + hd * HS, ldc: C)
        }
    }
}

/// out [N, D] = LayerNorm(inp [N, D]) with weight and bias.
func layerNormRows(_ inp: UnsafePointer<Float>, _ w: [Float], _ b: [Float], N: Int, D: Int, eps: Float, out: UnsafeMutablePointer<Float>) {
    var stats = [Float](repeating: 0, count: 2 * N)
    stats.withUnsafeMutableBufferPointer { s in
        w.withUnsafeBufferPointer { wb in b.withUnsafeBufferPointer { bb in
            layerNormForward(out: out, mean: s.baseAddress!, rstd: s.baseAddress! + N, inp: inp, weight: wb.baseAddress!, bias: bb.baseAddress!,
                             N: N, C: D, eps: eps)
        } }
    }
}

/// CLIP's vision tower with its projection: `CLIPModel.get_image_features`.
public final class CLIPVisionTower: @unchecked Sendable {
    public let config: CLIPConfig
    let patchW: [Float]            // [D, 3·P·P]
    let classEmbedding: [Float]    // [D]
    let positions: [Float]         // [G²+1, D]
    let preW, preB, postW, postB: [Float]
    let projection: [Float]        // [E, D]
    let encoder: CLIPEncoder

    /// The projected image embedding's size (CLIP's `projection_dim`).
    public var featureDim: Int { config.projectionDim }

    public convenience init(checkpoint: CLIPCheckpoint) throws {
        try self.init(config: checkpoint.config, weights: checkpoint.weights)
    }

    /// Loads `vision_model.*` and `visual_projection.weight` of a CLIPModel (or
    /// CLIPVisionModelWithProjection) state dict; a missing, unexpected or misshaped tensor is
    /// one error naming the key and the shapes.
    public init(config: CLIPConfig, weights: WeightFile) throws {
        try config.check(weights, vision: true)
        self.config = config
        let p = "vision_model"
        patchW = try weights.floats("\(p).embeddings.patch_embedding.weight")
        classEmbedding = try weights.floats("\(p).embeddings.class_embedding")
        positions = try weights.floats("\(p).embeddings.position_embedding.weight")
        preW = try weights.floats("\(p).pre_layrnorm.weight"); preB = try weights.floats("\(p).pre_layrnorm.bias")
        postW = try weights.floats("\(p).post_layernorm.weight"); postB = try weights.floats("\(p).post_layernorm.bias")
        projection = try weights.floats("visual_projection.weight")
        encoder = try CLIPEncoder(weights: weights, prefix: p, shape: config.vision)
    }

    /// Projected image embeddings of N normalised images, NHWC [N, S, S, 3] with S = image_size
    /// → out [N, projection_dim] (not normalised).
    public func features(_ images: UnsafePointer<Float>, N: Int, H: Int, W: Int, out: UnsafeMutablePointer<Float>) {
        let S = config.imageSize, P = config.patchSize, G = config.patchesPerSide, T = config.visionTokens
        let D = config.vision.hidden, K = 3 * P * P, E = config.projectionDim
        precondition(H == S && W == S, "CLIP input \(H)×\(W) is not \(S)×\(S)")
        guard N > 0 else { return }
        let rows = N * T
        var buffer = [Float](repeating: 0, count: 2 * rows * D + N * G * G * K + encoder.scratchCount(B: N, T: T) + 2 * N * D)
        buffer.withUnsafeMutableBufferPointer { buf in
            let x = buf.baseAddress!, normed = x + rows * D, col = normed + rows * D
            let scratch = col + N * G * G * K, pooled = scratch + encoder.scratchCount(B: N, T: T), pooledNorm = pooled + N * D
            // Patches as rows [N·G², 3·P·P] in (c, kh, kw) order, the order of the torch conv weight.
            Parallel.forEachRange(N * G * G, grain: 4) { range in
                for r in range {
                    let n = r / (G * G), gy = (r % (G * G)) / G, gx = r % G
                    let dst = col + r * K
                    for kh in 0..<P {
                        let src = images + ((n * S + gy * P + kh) * S + gx * P) * 3
                        for kw in 0..<P {
                            for c in 0..<3 { dst[(c * P + kh) * P + kw] = src[kw * 3 + c] }
                        }
                    }
                }
            }
            // Token 0 of each image: class embedding; tokens 1…: the patch products. Then + positions.
            patchW.withUnsafeBufferPointer { w in
                for n in 0..<N {
                    BLAS.sgemm(transA: false, transB: true, m: G * G, n: D, k: K, a: col + n * G * G * K, lda: K, b: w.baseAddress!, ldb: K,
                               beta: 0, c: x + (n * T + 1) * D, ldc: D)
                }
            }
            classEmbedding.withUnsafeBufferPointer { cls in positions.withUnsafeBufferPointer { pos in
                for n in 0..<N {
                    let image = x + n * T * D
                    image.update(from: cls.baseAddress!, count: D)
                    for i in 0..<(T * D) { image[i] += pos[i] }
                }
            } }
            layerNormRows(x, preW, preB, N: rows, D: D, eps: config.vision.eps, out: normed)
            encoder.forward(normed, B: N, T: T, causal: false, scratch: scratch)
            for n in 0..<N { (pooled + n * D).update(from: normed + n * T * D, count: D) }
            layerNormRows(pooled, postW, postB, N: N, D: D, eps: config.vision.eps, out: pooledNorm)
            projection.withUnsafeBufferPointer { w in
                BLAS.sgemm(transA: false, transB: true, m: N, n: E, k: D, a: pooledNorm, lda: D, b: w.baseAddress!, ldb: D, beta: 0, c: out, ldc: E)
            }
        }
    }
}

/// CLIP's text tower with its projection: `CLIPModel.get_text_features`.
public final class CLIPTextTower: @unchecked Sendable {
    public let config: CLIPConfig
    let tokenEmbedding: [Float]    // [V, D]
    let positions: [Float]         // [maxPositions, D]
    let finalW, finalB: [Float]
    let projection: [Float]        // [E, D]
    let encoder: CLIPEncoder
    /// The end-of-text id the pooling looks for (`<|endoftext|>`).
    public let endId: Int32

    public var featureDim: Int { config.projectionDim }

    public convenience init(checkpoint: CLIPCheckpoint, endId: Int32 = 49407) throws {
        try self.init(config: checkpoint.config, weights: checkpoint.weights, endId: endId)
    }

    /// Loads `text_model.*` and `text_projection.weight` (errors as `CLIPVisionTower.init`).
    public init(config: CLIPConfig, weights: WeightFile, endId: Int32 = 49407) throws {
        try config.check(weights, vision: false)
        self.config = config
        self.endId = endId
        let p = "text_model"
        tokenEmbedding = try weights.floats("\(p).embeddings.token_embedding.weight")
        positions = try weights.floats("\(p).embeddings.position_embedding.weight")
        finalW = try weights.floats("\(p).final_layer_norm.weight"); finalB = try weights.floats("\(p).final_layer_norm.bias")
        projection = try weights.floats("text_projection.weight")
        encoder = try CLIPEncoder(weights: weights, prefix: p, shape: config.text)
    }

    /// The pooled position of `ids`: the first end-of-text id, else the last position.
    func poolPosition(_ ids: [Int32]) -> Int { ids.firstIndex(of: endId) ?? (ids.count - 1) }

    /// Projected text embeddings [texts.count, projection_dim] of token id sequences (as
    /// `CLIPTokenizer.tokenize` makes them: start, ids, end; padding after the end is ignored).
    public func features(_ texts: [[Int32]]) throws -> [Float] {
        let D = config.text.hidden, E = config.projectionDim, V = config.vocabSize
        var out = [Float](repeating: 0, count: texts.count * E)
        for (i, ids) in texts.enumerated() {
            guard !ids.isEmpty else { throw VideoBertError("text \(i) has no tokens") }
            if let bad = ids.first(where: { $0 < 0 || Int($0) >= V }) { throw VideoBertError("text \(i): token id \(bad) is outside the vocabulary of \(V)") }
        }
        // Texts in batches of up to 64 (fewer when long: the attention scores stay within 2²⁶
        // floats), each cut after its pooled position (the causal mask makes later tokens
        // irrelevant) and padded to the batch's longest.
        let T0 = min(config.maxPositions, texts.map { poolPosition($0) + 1 }.max() ?? 1)
        let perBatch = max(1, min(64, (1 << 26) / max(1, config.text.heads * T0 * T0)))
        var start = 0
        while start < texts.count {
            let batch = Array(texts[start..<min(texts.count, start + perBatch)])
            let lengths = batch.map { poolPosition($0) + 1 }
            let T = lengths.max()!
            guard T <= config.maxPositions else {
                throw VideoBertError("a text of \(T) tokens is longer than the \(config.maxPositions) positions of CLIP's text tower")
            }
            let B = batch.count, rows = B * T
            var buffer = [Float](repeating: 0, count: rows * D + encoder.scratchCount(B: B, T: T) + 2 * B * D)
            buffer.withUnsafeMutableBufferPointer { buf in
                let x = buf.baseAddress!, scratch = x + rows * D
                let pooled = scratch + encoder.scratchCount(B: B, T: T), pooledNorm = pooled + B * D
                tokenEmbedding.withUnsafeBufferPointer { tok in positions.withUnsafeBufferPointer { pos in
                    for (b, ids) in batch.enumerated() {
                        for t in 0..<T {
                            let dst = x + (b * T + t) * D
                            let id = t < lengths[b] ? Int(ids[t]) : 0
                            let e = tok.baseAddress! + id * D, p = pos.baseAddress! + t * D
                            for d in 0..<D { dst[d] = e[d] + p[d] }
                        }
                    }
                } }
                encoder.forward(x, B: B, T: T, causal: true, scratch: scratch)
                for b in 0..<B { (pooled + b * D).update(from: x + (b * T + lengths[b] - 1) * D, count: D) }
                layerNormRows(pooled, finalW, finalB, N: B, D: D, eps: config.text.eps, out: pooledNorm)
                projection.withUnsafeBufferPointer { w in
                    out.withUnsafeMutableBufferPointer { o in
                        BLAS.sgemm(transA: false, transB: true, m: B, n: E, k: D, a: pooledNorm, lda: D, b: w.baseAddress!, ldb: D,
                                   beta: 0, c: o.baseAddress! + start * E, ldc: E)
                    }
                }
            }
            start += B
        }
        return out
    }
}

extension CLIPVisionTower: FrameBackbone {
    /// CLIP sees exactly image_size × image_size (its position embeddings are fixed).
    func accepts(width: Int, height: Int) -> Bool { width == config.imageSize && height == config.imageSize }
}
