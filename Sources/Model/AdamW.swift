import Foundation

/// AdamW (Loshchilov & Hutter 2019) exactly as torch.optim.AdamW (torch 2.x, single-tensor path,
/// amsgrad off), over a ParameterStore's flat buffers. Per element, at step t (1-based):
///
///     p ← p · (1 − lr·wd)                       decoupled weight decay, only where the spec decays
///     m ← m + (1 − β1)·(g − m)                  torch: exp_avg.lerp_(grad, 1 − β1)
///     v ← v·β2 + (1 − β2)·g·g                   torch: exp_avg_sq.mul_(β2).addcmul_(g, g, 1 − β2)
///     denom = sqrt(v) / sqrt(1 − β2ᵗ) + eps     eps added AFTER the bias-corrected sqrt
///     p ← p − (lr / (1 − β1ᵗ)) · m / denom
///
/// Scalars (bias corrections, step size) are computed in Double as torch does in Python, the
/// elementwise work in Float. Which tensors decay is the ParameterSpec's `weightDecay` flag
/// (BERT: no decay on biases and LayerNorm weights).
public struct AdamW: Sendable {
    public var beta1: Double
    public var beta2: Double
    public var eps: Double
    public var weightDecay: Double
    /// Steps taken (torch's `state["step"]`); saved with the trainer state to resume.
    public var step: Int = 0

    /// Work items over the flat buffers: (range, decays), each slot split into bounded chunks,
    /// computed once so that a step allocates nothing.
    private let chunks: [Chunk]
    private struct Chunk: Sendable { let start: Int; let end: Int; let decay: Bool }

    /// torch defaults: betas (0.9, 0.999), eps 1e-8, weight_decay 0.01.
    public init(store: ParameterStore, beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0.01) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        var chunks: [Chunk] = []
        let size = 1 << 16
        for (i, (slot, decay)) in zip(store.slots, store.weightDecay).enumerated() where !store.frozen[i] {
            var start = slot.offset
            while start < slot.offset + slot.count {
                let end = min(start + size, slot.offset + slot.count)
                chunks.append(Chunk(start: start, end: end, decay: decay))
                start = end
            }
        }
        self.chunks = chunks
    }

    /// One optimizer step with learning rate `lr` (the schedule's value for this step), reading
    /// the store's gradients and updating parameters and both moments in place.
    public mutating func update(_ store: ParameterStore, lr: Double) {
        step += 1
        let t = Double(step)
        let biasCorrection1 = 1 - Foundation.pow(beta1, t)
        let biasCorrection2 = 1 - Foundation.pow(beta2, t)
        let stepSize = Float(lr / biasCorrection1)
        let biasCorrection2Sqrt = Float(biasCorrection2.squareRoot())
        let decayFactor = Float(1 - lr * weightDecay)
        let oneMinusBeta1 = Float(1 - beta1)
        let beta2f = Float(beta2), oneMinusBeta2 = Float(1 - beta2)
        let epsf = Float(eps)
        let p = store.parameters, g = store.gradients, m = store.firstMoment, v = store.secondMoment
        let chunks = self.chunks
        let applyDecay = weightDecay != 0
        Parallel.concurrentPerform(chunks.count) { c in
            let chunk = chunks[c]
            let decay = applyDecay && chunk.decay
            for i in chunk.start..<chunk.end {
                var param = p[i]
                if decay { param *= decayFactor }
                let grad = g[i]
                let mi = m[i] + oneMinusBeta1 * (grad - m[i])
                let vi = v[i] * beta2f + oneMinusBeta2 * grad * grad
                m[i] = mi
                v[i] = vi
                let denom = vi.squareRoot() / biasCorrection2Sqrt + epsf
                p[i] = param - stepSize * (mi / denom)
            }
        }
    }
}

/// The global L2 norm of all gradients, summed in Double over fixed chunks in a fixed order
/// (deterministic on any number of threads).
public func gradientNorm(_ store: ParameterStore) -> Double {
    let g = store.gradients
    let chunk = 1 << 16
    let chunks = (store.count + chunk - 1) / chunk
    let count = store.count
    return withUnsafeTemporaryAllocation(of: Double.self, capacity: max(chunks, 1)) { partialBuffer in
        let partial = partialBuffer.baseAddress!
        Parallel.concurrentPerform(chunks) { c in
            let start = c * chunk, end = min(start + chunk, count)
            // Float lanes per 64-element block, widened to Double per block: fast and accurate.
            var sum: Double = 0
            var i = start
            while i < end {
                let n = min(64, end - i)
                sum += Double(vectorDot(g + i, g + i, n))
                i += n
            }
            partial[c] = sum
        }
        var total: Double = 0
        for c in 0..<chunks { total += partial[c] }
        return total.squareRoot()
    }
}

/// torch.nn.utils.clip_grad_norm_(parameters, maxNorm) with the L2 norm: if the global norm
/// exceeds maxNorm, every gradient is scaled by maxNorm / (norm + 1e-6). Returns the norm
/// before clipping (NaN/inf propagate: check the result before stepping).
@discardableResult
public func clipGradientNorm(_ store: ParameterStore, maxNorm: Double) -> Double {
    let norm = gradientNorm(store)
    let coefficient = maxNorm / (norm + 1e-6)
    if coefficient < 1 {
        let g = store.gradients
        let scale = Float(coefficient)
        Parallel.forEachRange(store.count, grain: 1 << 16) { r in
            for i in r { g[i] *= scale }
        }
    }
    return norm
}

/// The global L2 norm over several stores' gradients (a model whose parts keep their own
/// stores, e.g. the CBT model's text BERT): √(Σ norm²); one store gives `gradientNorm(store)`.
public func gradientNorm(_ stores: [ParameterStore]) -> Double {
    if stores.count == 1 { return gradientNorm(stores[0]) }
    return stores.reduce(0.0) { total, store in
        let n = gradientNorm(store)
        return total + n * n
    }.squareRoot()
}

/// `clipGradientNorm` over several stores with ONE global norm (torch's clip_grad_norm_ over the
/// union of the parameters). Returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ stores: [ParameterStore], maxNorm: Double) -> Double {
    if stores.count == 1 { return clipGradientNorm(stores[0], maxNorm: maxNorm) }
    let norm = gradientNorm(stores)
    let coefficient = maxNorm / (norm + 1e-6)
    if coefficient < 1 {
        let scale = Float(coefficient)
        for store in stores {
            let g = store.gradients
            Parallel.forEachRange(store.count, grain: 1 << 16) { r in
                for i in r { g[i] *= scale }
            }
        }
    }
    return norm
}
