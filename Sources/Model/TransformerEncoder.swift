import Foundation
import Tensor

/// L post-LayerNorm BERT layers (Devlin et al. 2019; HF `BertEncoder`) over input embeddings
/// [B, T, C] with a padding mask: the stack that BertForPreTraining and the CBT model's visual
/// and cross-modal transformers share. Embeddings and heads stay with the caller.
///
/// Per layer (Overview.swift lists the same chain):
///
///     qkv = x·Wqkvᵀ + bqkv                      fused query/key/value (adjacent in the store)
///     context = attention(qkv, mask)             attention-probability dropout
///     res1 = x + dropout(context·Woᵀ + bo);  ln1 = LN(res1)
///     res2 = ln1 + dropout(GELU(ln1·W1ᵀ + b1)·W2ᵀ + b2);  out = LN(res2)
///
/// Parameters (in the caller's ParameterStore, HF BertEncoder names under `prefix`, e.g.
/// "bert.encoder." or "visual.encoder."), per layer l:
///
///     <prefix>layer.<l>.attention.self.{query,key,value}.weight [C, C], .bias [C]
///     <prefix>layer.<l>.attention.output.dense.weight [C, C], .bias [C]
///     <prefix>layer.<l>.attention.output.LayerNorm.weight [C], .bias [C]
///     <prefix>layer.<l>.intermediate.dense.weight [FF, C], .bias [FF]
///     <prefix>layer.<l>.output.dense.weight [C, FF], .bias [C]
///     <prefix>layer.<l>.output.LayerNorm.weight [C], .bias [C]
///
/// Activations and their gradients are buffers the encoder adds to the caller's ArenaLayout
/// (names under `arenaPrefix`), sized for maxBatch·maxSeq rows; a batch uses a prefix of each.
/// The caller writes the input embeddings into `arena[input]` and the mask into `arena[mask]`,
/// runs `forward`, puts d(output) into `arena[dOutput]`, and runs `backward`, which returns
/// d(input). In inference (`training: false`) one layer's activations are reused by all layers
/// and no gradient buffers exist.
///
/// Pruning the last layer (exact, optional): when only some rows of the output are read (BERT's
/// masked positions and [CLS]), `forward(selected:)` runs everything after the last layer's
/// attention only on those rows — QKV and attention still need every key and value.
///
/// Dropout call sites: `firstSite` + 3l + k, k = 0 attention probabilities, 1 attention output,
/// 2 feed-forward output (BertForPreTraining passes firstSite 1: site 0 is its embeddings).
public final class TransformerEncoder {
    public let prefix: String
    /// C, NH, FF, L.
    public let hiddenSize, numHeads, intermediateSize, numLayers: Int
    public let eps: Float
    public let maxBatch, maxSeq: Int
    /// maxBatch·maxSeq.
    public let maxRows: Int
    public let training: Bool
    public let firstSite: Int
    /// When set, each stage adds its wall-clock time here (benchmarks).
    public var profile: StepProfile?

    let store: ParameterStore
    private let p: [EncoderLayerParameters]
    private let a: EncoderSlots

    /// [N, C] the input embeddings (written by the caller before `forward`).
    public var input: TensorSlot { a.x0 }
    /// [N] attention mask, 1 real / 0 padding (written by the caller before `forward`).
    public var mask: TensorSlot { a.mask }
    /// [N, C] (or [Ms, C] after a pruned forward) d(output), written by the caller before `backward`.
    /// Training only.
    public var dOutput: TensorSlot { a.dA }

    /// The tensors of the stack, in allocation order (query, key, value weights adjacent, then their biases).
    public static func parameterSpecs(prefix: String, hiddenSize C: Int, intermediateSize FF: Int, layers L: Int) -> [ParameterSpec] {
        func weight(_ name: String, _ shape: [Int]) -> ParameterSpec { ParameterSpec(name, shape, weightDecay: true) }
        func plain(_ name: String, _ shape: [Int]) -> ParameterSpec { ParameterSpec(name, shape, weightDecay: false) }
        var specs: [ParameterSpec] = []
        for l in 0..<L {
            let x = "\(prefix)layer.\(l)."
            specs += [
                weight(x + "attention.self.query.weight", [C, C]),
                weight(x + "attention.self.key.weight", [C, C]),
                weight(x + "attention.self.value.weight", [C, C]),
                plain(x + "attention.self.query.bias", [C]),
                plain(x + "attention.self.key.bias", [C]),
                plain(x + "attention.self.value.bias", [C]),
                weight(x + "attention.output.dense.weight", [C, C]),
                plain(x + "attention.output.dense.bias", [C]),
                plain(x + "attention.output.LayerNorm.weight", [C]),
                plain(x + "attention.output.LayerNorm.bias", [C]),
                weight(x + "intermediate.dense.weight", [FF, C]),
                plain(x + "intermediate.dense.bias", [FF]),
                weight(x + "output.dense.weight", [C, FF]),
                plain(x + "output.dense.bias", [C]),
                plain(x + "output.LayerNorm.weight", [C]),
                plain(x + "output.LayerNorm.bias", [C]),
            ]
        }
        return specs
    }

    /// Resolves the stack's parameters in `store` (added with `parameterSpecs`) and adds its
    /// activation buffers to `layout`.
    public init(store: ParameterStore, prefix: String, hiddenSize C: Int, numHeads NH: Int, intermediateSize FF: Int,
                layers L: Int, eps: Float, maxBatch: Int, maxSeq: Int, training: Bool, firstSite: Int = 0,
                layout: inout ArenaLayout, arenaPrefix: String = "") throws {
        guard C > 0, NH > 0, C % NH == 0, FF > 0, L > 0 else {
            throw VideoBertError("encoder '\(prefix)': hidden size \(C) must be a positive multiple of the head count \(NH), with FF and layers positive")
        }
        guard maxBatch > 0, maxSeq > 0 else { throw VideoBertError("encoder '\(prefix)': maxBatch and maxSeq must be positive") }
        for spec in Self.parameterSpecs(prefix: prefix, hiddenSize: C, intermediateSize: FF, layers: L) {
            guard let slot = store.slot(named: spec.name) else { throw VideoBertError("parameter '\(spec.name)' missing from the parameter store") }
            guard slot.shape == spec.shape else { throw VideoBertError("parameter '\(spec.name)' has shape \(slot.shape), expected \(spec.shape)") }
        }
        guard !training || store.training else { throw VideoBertError("encoder '\(prefix)': a training encoder needs a training parameter store") }
        self.store = store
        self.prefix = prefix
        (hiddenSize, numHeads, intermediateSize, numLayers) = (C, NH, FF, L)
        self.eps = eps
        self.maxBatch = maxBatch
        self.maxSeq = maxSeq
        self.maxRows = maxBatch * maxSeq
        self.training = training
        self.firstSite = firstSite
        p = (0..<L).map { EncoderLayerParameters(store: store, prefix: "\(prefix)layer.\($0).") }
        a = EncoderSlots(layout: &layout, prefix: arenaPrefix, N: maxBatch * maxSeq, B: maxBatch, T: maxSeq, C: C, NH: NH, FF: FF,
                         L: L, training: training)
    }

    @inline(__always) private func w(_ offset: Int) -> UnsafeMutablePointer<Float> { store.parameters + offset }
    @inline(__always) private func g(_ offset: Int) -> UnsafeMutablePointer<Float> { store.gradients + offset }

    @inline(__always) private func stage(_ name: String, _ body: () -> Void) {
        if let profile { profile.measure(name, body) } else { body() }
    }

    private func site(_ layer: Int, _ k: Int) -> Int { firstSite + 3 * layer + k }

    /// [B·T, C] the last layer's output of the last full (unpruned) forward.
    public func output(_ arena: Arena) -> UnsafeMutablePointer<Float> { arena[a.layers[(numLayers - 1) % a.layers.count].out] }

    /// The L layers over `arena[input]` [B·T, C] with `arena[mask]` [B·T]. Returns the final hidden
    /// states [B·T, C], or with `selected` (Ms sorted distinct rows in 0..<B·T) only those rows, [Ms, C].
    /// (Dropout masks of a pruned last layer are drawn over the compact rows: still deterministic.)
    public func forward(arena: Arena, B: Int, T: Int, pHidden: Float, pAttention: Float, seed: UInt64, step: Int,
                        selected: UnsafePointer<Int32>? = nil, selectedCount: Int = 0) -> UnsafeMutablePointer<Float> {
        let N = B * T, C = hiddenSize, FF = intermediateSize, NH = numHeads, L = numLayers, eps = eps
        precondition(T <= maxSeq && N <= maxRows, "batch [\(B), \(T)] does not fit encoder '\(prefix)' (T ≤ \(maxSeq), B·T ≤ \(maxRows))")
        let mask = arena[a.mask], proj = arena[a.proj]
        var x = arena[a.x0]
        for l in 0..<L {
            let lp = p[l], la = a.layers[l % a.layers.count]
            // Self-attention (fused QKV), output projection, dropout, residual, LayerNorm.
            stage("linear (qkv, attention output)") {
                linearForward(out: arena[la.qkv], inp: x, weight: w(lp.wqkv), bias: w(lp.bqkv), N: N, C: C, OC: 3 * C)
            }
            stage("attention") {
                attentionForward(out: arena[la.context], att: arena[la.att], qkv: arena[la.qkv], mask: mask, B: B, T: T, C: C, NH: NH,
                                 dropout: pAttention, seed: dropoutSeed(base: seed, step: step, site: site(l, 0)),
                                 scratch: arena[a.attScratch])
            }
            var rows = N, context = arena[la.context], residual = x
            if l == L - 1, let selected {
                let Ms = selectedCount
                stage("gather selected rows") {
                    gatherRowsForward(out: arena[a.contextS], inp: arena[la.context], rows: selected, M: Ms, C: C)
                    gatherRowsForward(out: arena[a.residualS], inp: x, rows: selected, M: Ms, C: C)
                }
                (rows, context, residual) = (Ms, arena[a.contextS], arena[a.residualS])
            }
            stage("linear (qkv, attention output)") {
                linearForward(out: proj, inp: context, weight: w(lp.wo), bias: w(lp.bo), N: rows, C: C, OC: C)
            }
            stage("dropout, residual, layernorm") {
                dropoutResidualForward(out: arena[la.res1], residual: residual, inp: proj, p: pHidden,
                                       seed: dropoutSeed(base: seed, step: step, site: site(l, 1)), N: rows * C)
                layerNormForward(out: arena[la.ln1], mean: arena[la.ln1Mean], rstd: arena[la.ln1Rstd], inp: arena[la.res1],
                                 weight: w(lp.ln1w), bias: w(lp.ln1b), N: rows, C: C, eps: eps)
            }
            // Feed-forward: dense → GELU → dense, dropout, residual, LayerNorm.
            stage("linear (feed-forward)") {
                linearForward(out: arena[la.h1], inp: arena[la.ln1], weight: w(lp.w1), bias: w(lp.b1), N: rows, C: C, OC: FF)
            }
            stage("gelu") { geluForward(out: arena[la.g1], inp: arena[la.h1], N: rows * FF) }
            stage("linear (feed-forward)") {
                linearForward(out: proj, inp: arena[la.g1], weight: w(lp.w2), bias: w(lp.b2), N: rows, C: FF, OC: C)
            }
            stage("dropout, residual, layernorm") {
                dropoutResidualForward(out: arena[la.res2], residual: arena[la.ln1], inp: proj, p: pHidden,
                                       seed: dropoutSeed(base: seed, step: step, site: site(l, 2)), N: rows * C)
                layerNormForward(out: arena[la.out], mean: arena[la.ln2Mean], rstd: arena[la.ln2Rstd], inp: arena[la.res2],
                                 weight: w(lp.ln2w), bias: w(lp.ln2b), N: rows, C: C, eps: eps)
            }
            x = arena[la.out]
        }
        return x
    }

    /// The gradient buffers that `backward` leaves: d(input) and two [N, C] buffers the caller may
    /// overwrite (e.g. for its embeddings' dropout and LayerNorm backward).
    public struct InputGradient {
        /// [B·T, C] d(input).
        public let dInput: UnsafeMutablePointer<Float>
        /// [N, C] scratch, free after backward.
        public let spare: UnsafeMutablePointer<Float>
        /// [N, C] scratch, free after backward.
        public let spare2: UnsafeMutablePointer<Float>
    }

    /// The forward read in reverse (same B, T, dropout, seed, step and selection as the forward it
    /// follows), from d(output) in `arena[dOutput]` ([Ms, C] with `selected`), accumulating (+=)
    /// into the store's gradients. Clobbers `arena[dOutput]`.
    @discardableResult
    public func backward(arena: Arena, B: Int, T: Int, pHidden: Float, pAttention: Float, seed: UInt64, step: Int,
                         selected: UnsafePointer<Int32>? = nil, selectedCount: Int = 0) -> InputGradient {
        precondition(training, "encoder '\(prefix)' was built with training: false")
        let N = B * T, C = hiddenSize, FF = intermediateSize, NH = numHeads, L = numLayers, NC = N * C
        let mask = arena[a.mask]
        var dOut = arena[a.dA], dIn = arena[a.dB]
        let dLn1 = arena[a.dLn1], dProj = arena[a.dProj]
        let dFF2 = arena[a.dFF2], dFF1 = arena[a.dFF1], dContext = arena[a.dContext], dQKV = arena[a.dQKV]
        for l in (0..<L).reversed() {
            let lp = p[l], la = a.layers[l]
            let x = l == 0 ? arena[a.x0] : arena[a.layers[l - 1].out]
            // Rows after attention: all N, or the selected Ms in a pruned last layer.
            let pruned: Int? = (l == L - 1 && selected != nil) ? selectedCount : nil
            let rows = pruned ?? N, RC = rows * C
            // out = LN2(res2), res2 = ln1 + dropout(h2). LN2's input gradient d(res2) goes straight
            // into dLn1: it is the first term of d(ln1) (the FFN's term is added below) and, through
            // the dropout mask, d(h2). No copy: d(h2) is consumed before dLn1 is added to.
            var dH2 = dLn1
            stage("dropout, residual, layernorm bwd") {
                layerNormBackward(dinp: dLn1, dweight: g(lp.ln2w), dbias: g(lp.ln2b), dout: dOut, inp: arena[la.res2],
                                  weight: w(lp.ln2w), mean: arena[la.ln2Mean], rstd: arena[la.ln2Rstd], N: rows, C: C, accumulate: false)
                if pHidden > 0 {
                    dropoutBackward(dinp: dProj, dout: dLn1, p: pHidden, seed: dropoutSeed(base: seed, step: step, site: site(l, 2)), N: RC,
                                    accumulate: false)
                    dH2 = dProj
                }
            }
            // h2 = dense(g1), g1 = GELU(h1), h1 = dense(ln1)
            stage("linear (feed-forward) bwd") {
                // d(g1) = d(h2) · W2 written directly (beta 0: no zeroing pass), then W2's and b2's gradients.
                BLAS.sgemm(m: rows, n: FF, k: C, a: dH2, lda: C, b: w(lp.w2), ldb: FF, beta: 0, c: dFF2, ldc: FF)
                linearBackward(dinp: nil, dweight: g(lp.w2), dbias: g(lp.b2), dout: dH2, inp: arena[la.g1], weight: w(lp.w2), N: rows, C: FF, OC: C)
            }
            stage("gelu bwd") {
                geluBackward(dinp: dFF1, inp: arena[la.h1], dout: dFF2, N: rows * FF, accumulate: false)
            }
            stage("linear (feed-forward) bwd") {
                linearBackward(dinp: dLn1, dweight: g(lp.w1), dbias: g(lp.b1), dout: dFF1, inp: arena[la.ln1], weight: w(lp.w1), N: rows, C: C, OC: FF)
            }
            // ln1 = LN1(res1), res1 = x + dropout(proj): the same pattern, with d(res1) in dIn (or,
            // pruned, in the compact dResidualS, scattered into dIn below).
            let dRes1 = pruned == nil ? dIn : arena[a.dResidualS]
            var dAttentionOut = dRes1
            stage("dropout, residual, layernorm bwd") {
                layerNormBackward(dinp: dRes1, dweight: g(lp.ln1w), dbias: g(lp.ln1b), dout: dLn1, inp: arena[la.res1],
                                  weight: w(lp.ln1w), mean: arena[la.ln1Mean], rstd: arena[la.ln1Rstd], N: rows, C: C, accumulate: false)
                if pHidden > 0 {
                    dropoutBackward(dinp: dProj, dout: dRes1, p: pHidden, seed: dropoutSeed(base: seed, step: step, site: site(l, 1)), N: RC,
                                    accumulate: false)
                    dAttentionOut = dProj
                }
            }
            // proj = dense(context), context = attention(qkv), qkv = dense(x)
            stage("linear (qkv, attention output) bwd") {
                let dContextRows = pruned == nil ? dContext : arena[a.dContextS]
                let contextRows = pruned == nil ? arena[la.context] : arena[a.contextS]
                BLAS.sgemm(m: rows, n: C, k: C, a: dAttentionOut, lda: C, b: w(lp.wo), ldb: C, beta: 0, c: dContextRows, ldc: C)
                linearBackward(dinp: nil, dweight: g(lp.wo), dbias: g(lp.bo), dout: dAttentionOut, inp: contextRows,
                               weight: w(lp.wo), N: rows, C: C, OC: C)
            }
            if let Ms = pruned, let selected {
                stage("gather selected rows bwd") {
                    zeroFloats(dContext, NC)
                    gatherRowsBackward(dinp: dContext, dout: arena[a.dContextS], rows: selected, M: Ms, C: C)
                    zeroFloats(dIn, NC)
                    gatherRowsBackward(dinp: dIn, dout: dRes1, rows: selected, M: Ms, C: C)
                }
            }
            stage("attention bwd") {
                zeroFloats(dQKV, 3 * NC)
                attentionBackward(dqkv: dQKV, scratch: arena[a.attScratch], dout: dContext, qkv: arena[la.qkv], att: arena[la.att],
                                  mask: mask, B: B, T: T, C: C, NH: NH,
                                  dropout: pAttention, seed: dropoutSeed(base: seed, step: step, site: site(l, 0)))
            }
            stage("linear (qkv, attention output) bwd") {
                // d(x) = d(res1) (already in dIn) + d(qkv) · Wqkv
                linearBackward(dinp: dIn, dweight: g(lp.wqkv), dbias: g(lp.bqkv), dout: dQKV, inp: x, weight: w(lp.wqkv), N: N, C: C, OC: 3 * C)
            }
            swap(&dOut, &dIn)
        }
        return InputGradient(dInput: dOut, spare: dIn, spare2: dLn1)
    }
}

// MARK: - Private pieces

/// Offsets (in floats, into every ParameterStore buffer) of one encoder layer's tensors.
private struct EncoderLayerParameters {
    /// [3C, C] query/key/value weights stacked, and [3C] their biases.
    let wqkv, bqkv: Int
    /// attention.output.dense [C, C], [C]; attention.output.LayerNorm [C], [C].
    let wo, bo, ln1w, ln1b: Int
    /// intermediate.dense [FF, C], [FF]; output.dense [C, FF], [C]; output.LayerNorm [C], [C].
    let w1, b1, w2, b2, ln2w, ln2b: Int

    init(store: ParameterStore, prefix x: String) {
        func o(_ name: String) -> Int { store.offset(of: name) }
        let s = x + "attention.self."
        guard let wqkv = store.contiguous([s + "query.weight", s + "key.weight", s + "value.weight"]),
              let bqkv = store.contiguous([s + "query.bias", s + "key.bias", s + "value.bias"]) else {
            preconditionFailure("query/key/value are not adjacent in the parameter store")
        }
        self.wqkv = wqkv.offset; self.bqkv = bqkv.offset
        wo = o(x + "attention.output.dense.weight"); bo = o(x + "attention.output.dense.bias")
        ln1w = o(x + "attention.output.LayerNorm.weight"); ln1b = o(x + "attention.output.LayerNorm.bias")
        w1 = o(x + "intermediate.dense.weight"); b1 = o(x + "intermediate.dense.bias")
        w2 = o(x + "output.dense.weight"); b2 = o(x + "output.dense.bias")
        ln2w = o(x + "output.LayerNorm.weight"); ln2b = o(x + "output.LayerNorm.bias")
    }
}

/// What one encoder layer keeps for backward (all sized for N = maxBatch·maxSeq rows).
private struct EncoderLayerActivations {
    /// [N, 3C] fused projection; [B, NH, T, T] attention probabilities; [N, C] context.
    let qkv, att, context: TensorSlot
    /// [N, C] x + dropout(attention output); [N, C] LN1 of it; [N] its mean and rstd.
    let res1, ln1, ln1Mean, ln1Rstd: TensorSlot
    /// [N, FF] dense pre-activation and GELU output.
    let h1, g1: TensorSlot
    /// [N, C] ln1 + dropout(FFN output); [N, C] LN2 of it = the layer output; [N] mean and rstd.
    let res2, out, ln2Mean, ln2Rstd: TensorSlot
}

/// The encoder's arena buffers. Sizes use N = maxBatch·maxSeq; a batch uses a prefix of each.
private struct EncoderSlots {
    /// [N] attention mask; [N, C] layer-0 input.
    let mask, x0: TensorSlot
    /// One entry per layer in training, a single shared one for inference.
    let layers: [EncoderLayerActivations]
    /// [B, NH, T, T] attention dropout / backward workspace; [N, C] projection output before
    /// dropout and residual (shared by all layers).
    let attScratch, proj: TensorSlot
    /// Pruned last layer: [Ms, C] its context rows and residual-input rows at the selected positions.
    let contextS, residualS: TensorSlot
    /// Gradients (training only; empty slots otherwise): [N, C] ping-pong layer-output gradients
    /// dA, dB; [N, C] dLn1 (d res2, then d ln1), dProj (through a dropout mask), dContext;
    /// [N, FF] dFF2 (d GELU out), dFF1 (d pre-activation); [N, 3C] dQKV.
    let dA, dB, dLn1, dProj, dContext, dFF2, dFF1, dQKV: TensorSlot
    /// Pruned last layer: [Ms, C] gradients of its context rows and residual rows.
    let dContextS, dResidualS: TensorSlot

    init(layout l: inout ArenaLayout, prefix x: String, N: Int, B: Int, T: Int, C: Int, NH: Int, FF: Int, L: Int, training: Bool) {
        mask = l.add(x + "mask", [N]); x0 = l.add(x + "x0", [N, C])
        layers = (0..<(training ? L : 1)).map { i in
            let n = "\(x)l\(i)."
            return EncoderLayerActivations(qkv: l.add(n + "qkv", [N, 3 * C]), att: l.add(n + "att", [B, NH, T, T]),
                                           context: l.add(n + "context", [N, C]),
                                           res1: l.add(n + "res1", [N, C]), ln1: l.add(n + "ln1", [N, C]),
                                           ln1Mean: l.add(n + "ln1Mean", [N]), ln1Rstd: l.add(n + "ln1Rstd", [N]),
                                           h1: l.add(n + "h1", [N, FF]), g1: l.add(n + "g1", [N, FF]),
                                           res2: l.add(n + "res2", [N, C]), out: l.add(n + "out", [N, C]),
                                           ln2Mean: l.add(n + "ln2Mean", [N]), ln2Rstd: l.add(n + "ln2Rstd", [N]))
        }
        attScratch = l.add(x + "attScratch", training ? [B, NH, T, T] : [0]); proj = l.add(x + "proj", [N, C])
        contextS = l.add(x + "contextS", [N, C]); residualS = l.add(x + "residualS", [N, C])
        func g(_ name: String, _ shape: [Int]) -> TensorSlot { l.add(x + name, training ? shape : [0]) }
        dA = g("dA", [N, C]); dB = g("dB", [N, C]); dLn1 = g("dLn1", [N, C])
        dProj = g("dProj", [N, C]); dContext = g("dContext", [N, C])
        dFF2 = g("dFF2", [N, FF]); dFF1 = g("dFF1", [N, FF]); dQKV = g("dQKV", [N, 3 * C])
        dContextS = g("dContextS", [N, C]); dResidualS = g("dResidualS", [N, C])
    }
}

/// buffer[0..<count] = 0, in parallel pieces.
func zeroFloats(_ buffer: UnsafeMutablePointer<Float>, _ count: Int) {
    Parallel.forEachRange(count, grain: 1 << 16) { r in (buffer + r.lowerBound).update(repeating: 0, count: r.count) }
}

/// HF BertPreTrainedModel._init_weights for the named tensors of `store`: normal(0, std) for
/// weights and embeddings, zero biases, LayerNorm weight 1. Tensor i (its index in the store)
/// draws from SeededRNG(seed, stream: i), so a tensor's values do not depend on which others are
/// initialised.
public func initializeBertStyle(_ store: ParameterStore, names: [String], std: Float, seed: UInt64) {
    for name in names {
        guard let index = store.slots.firstIndex(where: { $0.name == name }) else { preconditionFailure("no parameter \(name)") }
        if name.hasSuffix("LayerNorm.weight") {
            store.fill(name, value: 1)
        } else if name.hasSuffix("bias") {
            store.fill(name, value: 0)
        } else {
            var rng = SeededRNG(seed: seed, stream: UInt64(index))
            store.fillNormal(name, std: std, rng: &rng)
        }
    }
}
