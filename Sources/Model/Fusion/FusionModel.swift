import Foundation
import Tensor

// The fusion model of the Everything-at-Once variant (Shvetsova et al., CVPR 2022; issue 17 item
// 5; docs/ARCHITECTURE.md §4): modality tokens → one shared fusion transformer that runs on any
// subset of the modalities → one embedding per modality combination → the combinatorial loss
// (CombinatorialLoss.swift).
//
// Reference code: https://github.com/ninatu/everything_at_once
//   everything_at_once/model/fusion_model.py   EverythingAtOnceModel: token projection + LayerNorm
//       per modality (`*_token_proj`, `*_norm_layer`), the fusion transformer run on t, v, a alone
//       and on the pairs tv, ta, va; per-modality output projections; a pair's embedding is the mean
//       of its two L2-normalised modality embeddings: tv = (n(P_t(tv.text)) + n(P_v(tv.video))) / 2.
//   everything_at_once/model/utils/fusion_transformer.py   FusionTransformer: the modalities'
//       tokens concatenated, attention masked to the tokens present, and each modality's embedding
//       the masked mean of its output tokens (`_get_average`; no [CLS] token by default).
//   everything_at_once/model/utils/layers.py   get_projection('minimal') = one nn.Linear: what the
//       token and output projections are here (the paper's default is a gated unit).
// Differences, by design: the fusion transformer is this repository's post-LayerNorm BERT stack
// (TransformerEncoder.swift; the reference uses timm's pre-norm blocks), and the modality inputs
// are whatever token features the caller gives (text: a BERT's hidden states; video: clip
// features; audio: AudioConvNet embeddings or audio descriptors), so the text tower, feature
// front-end and audio net stay outside and get their gradients back from `backward`.
//
//   inputs_m [B, T_m, C_m] with mask_m [B, T_m]  (m = text, video, audio)
//   X_m = LayerNorm(inputs_m · W_mᵀ + b_m)                                    [B, T_m, C]
//   for each run s of `runs` (t, v, a, tv, ta, va): sequence q = s·B + b is
//     [X_t(b) | X_v(b) | X_a(b)] with mask = mask_m(b) where m ∈ s, else 0      [Q = S·B, T, C]
//   H = TransformerEncoder(sequences)                                           [Q·T, C]
//   pooled_{s,m}(b) = masked mean of H over m's positions in sequence s·B + b   [B, C]
//   z_{s,m} = pooled_{s,m} · P_mᵀ + p_m                                         [B, E]
//   embeddings for the loss [6, B, E]: t = z_{t,t}, v = z_{v,v}, a = z_{a,a},
//     tv = (n(z_{tv,t}) + n(z_{tv,v}))/2, ta = (n(z_{ta,t}) + n(z_{ta,a}))/2, va = (n(z_{va,v}) + n(z_{va,a}))/2
//
// A sample without any token of a modality (mask all 0) is "missing" that modality: its loss
// terms skip it, its pooled rows are 0 (a mean over nothing), and a run whose sequence has no
// token at all attends uniformly (Attention.swift) — finite, never read.
//
// Parameters (one ParameterStore, names):
//   token.{text,video,audio}.weight [C, C_m], .bias [C]; token.{m}.LayerNorm.weight / .bias [C]
//   fusion.encoder.layer.{l}.*   TransformerEncoder (HF BertLayer names), C wide
//   audio.conv{l}.*, audio.proj.*   AudioConvNet (audio_source logmel: the audio tokens are each
//                                clip's log-mel spectrogram [frames·mels] through it)
//   proj.{text,video,audio}.weight [E, C], .bias [E]
//
// Shape letters: B samples, T_m tokens of modality m (T = T_t + T_v + T_a), C_m its input width,
// C fusion width, E embedding width, S runs, Q = S·B sequences.

/// The settings of `FusionModel`. Codable with the names of a checkpoint's `fusion_config.json`.
public struct FusionConfig: Codable, Sendable, Equatable {
    /// C_t, C_v, C_a: the width of each modality's input tokens.
    public var textInputSize = 384, videoInputSize = 512, audioInputSize = 256
    /// T_t, T_v, T_a: tokens per sample at most.
    public var maxTextTokens = 34, maxVideoTokens = 16, maxAudioTokens = 16
    /// C, layers, heads, feed-forward width of the fusion transformer.
    public var hiddenSize = 256, layers = 1, heads = 4, intermediateSize = 512
    /// E: the embeddings' width.
    public var embeddingSize = 256
    public var hiddenDropoutProb = 0.1, attentionProbsDropoutProb = 0.1
    public var initializerRange = 0.02, layerNormEps = 1e-12
    /// Where the audio tokens come from: `none` (no audio), `words` (one-hot audio words,
    /// audio_input_size = the audio vocabulary's size) or `logmel` (each clip's log-mel
    /// spectrogram through `audio_net`, audio_input_size = its output size).
    public var audioSource = "none"
    /// The audio conv net (audio_source `logmel`), its parameters `audio.*` in the same store.
    public var audioNet: AudioConvNetConfig?

    enum CodingKeys: String, CodingKey {
        case textInputSize = "text_input_size", videoInputSize = "video_input_size", audioInputSize = "audio_input_size"
        case maxTextTokens = "max_text_tokens", maxVideoTokens = "max_video_tokens", maxAudioTokens = "max_audio_tokens"
        case hiddenSize = "hidden_size", layers = "num_hidden_layers", heads = "num_attention_heads"
        case intermediateSize = "intermediate_size", embeddingSize = "embedding_size"
        case hiddenDropoutProb = "hidden_dropout_prob", attentionProbsDropoutProb = "attention_probs_dropout_prob"
        case initializerRange = "initializer_range", layerNormEps = "layer_norm_eps"
        case audioSource = "audio_source", audioNet = "audio_net"
    }

    public init() {}

    /// Input width and token count of modality m.
    public func input(_ m: FusionModality) -> (width: Int, tokens: Int) {
        switch m {
        case .text: (textInputSize, maxTextTokens)
        case .video: (videoInputSize, maxVideoTokens)
        case .audio: (audioInputSize, maxAudioTokens)
        }
    }

    /// Throws a one-line error (naming `file` when given) for settings the model cannot run with.
    public func validate(file: String? = nil) throws {
        func fail(_ what: String) -> VideoBertError { VideoBertError("fusion: \(what)", file: file) }
        for (name, v, limit) in [("text_input_size", textInputSize, 1 << 16), ("video_input_size", videoInputSize, 1 << 16),
                                 ("audio_input_size", audioInputSize, 1 << 16), ("max_text_tokens", maxTextTokens, 4096),
                                 ("max_video_tokens", maxVideoTokens, 4096), ("max_audio_tokens", maxAudioTokens, 4096),
                                 ("hidden_size", hiddenSize, 1 << 14), ("num_hidden_layers", layers, 64),
                                 ("num_attention_heads", heads, 256), ("intermediate_size", intermediateSize, 1 << 16),
                                 ("embedding_size", embeddingSize, 1 << 14)] where !(1...limit).contains(v) {
            throw fail("\(name) \(v) is outside 1...\(limit)")
        }
        guard hiddenSize % heads == 0 else { throw fail("hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(heads)") }
        for (name, p) in [("hidden_dropout_prob", hiddenDropoutProb), ("attention_probs_dropout_prob", attentionProbsDropoutProb)]
            where !(p >= 0 && p < 1) {
            throw fail("\(name) \(p) is outside [0, 1)")
        }
        guard initializerRange > 0, layerNormEps > 0 else { throw fail("initializer_range and layer_norm_eps must be > 0") }
        switch audioSource {
        case "none", "words": break
        case "logmel":
            guard let net = audioNet else { throw fail("audio_source logmel needs audio_net") }
            do { try net.validate() } catch let e as VideoBertError { throw fail(e.message) }
            guard net.outputSize == audioInputSize else {
                throw fail("audio_net output_size \(net.outputSize) differs from audio_input_size \(audioInputSize)")
            }
        default: throw fail("audio_source '\(audioSource)' is not none, words or logmel")
        }
    }
}

/// A run of the fusion transformer: the modalities it sees.
public enum FusionRun: Int, CaseIterable, Sendable {
    case t, v, a, tv, ta, va

    public var modalities: [FusionModality] {
        switch self {
        case .t: [.text]
        case .v: [.video]
        case .a: [.audio]
        case .tv: [.text, .video]
        case .ta: [.text, .audio]
        case .va: [.video, .audio]
        }
    }

    /// The runs the terms with a positive weight need (single modalities for the first
    /// embeddings, pairs for the fused second ones).
    public static func needed(weights: [Float]) -> [FusionRun] {
        var runs = Set<FusionRun>()
        for term in CombinatorialTerm.allCases where weights[term.rawValue] > 0 {
            for e in [term.embeddings.0, term.embeddings.1] { runs.insert(run(for: e)) }
        }
        return runs.sorted { $0.rawValue < $1.rawValue }
    }

    /// The run that produces an embedding.
    public static func run(for e: FusionEmbedding) -> FusionRun {
        switch e {
        case .text: .t
        case .video: .v
        case .audio: .a
        case .textVideo: .tv
        case .textAudio: .ta
        case .videoAudio: .va
        }
    }
}

/// One batch of modality tokens (flat row-major; an absent modality's mask is all 0 for that sample).
public struct FusionInputs {
    public var B: Int
    /// [B, T_m, C_m] per modality (T_m ≤ the config's maximum), indexed by `FusionModality.rawValue`.
    public var tokens: [[Float]]
    /// [B, T_m] 1 for a real token, 0 for padding.
    public var masks: [[Float]]
    /// T_m per modality.
    public var lengths: [Int]

    public init(B: Int, tokens: [[Float]], masks: [[Float]], lengths: [Int]) {
        (self.B, self.tokens, self.masks, self.lengths) = (B, tokens, masks, lengths)
    }

    /// [3, B] 1 where sample b has at least one token of modality m.
    public var present: [Float] {
        var out = [Float](repeating: 0, count: 3 * B)
        for m in 0..<3 {
            let T = lengths[m]
            for b in 0..<B where (0..<T).contains(where: { masks[m][b * T + $0] > 0 }) { out[m * B + b] = 1 }
        }
        return out
    }
}

/// The fusion model (see the file comment). Not Sendable: it owns buffers its methods mutate.
public final class FusionModel {
    public let config: FusionConfig
    public let store: ParameterStore
    public let maxBatch: Int
    /// The transformer runs of every forward.
    public let runs: [FusionRun]
    public let training: Bool
    let encoder: TransformerEncoder
    /// The audio conv net (audio_source `logmel`).
    public let audioNet: AudioConvNet?
    let arena: Arena
    private let s: FusionSlots
    /// T = T_t + T_v + T_a and each modality's first position in a sequence (at the config's maxima).
    let T: Int
    let offsets: [Int]
    private var kept: (inputs: FusionInputs, pHidden: Float, pAttention: Float, seed: UInt64, step: Int)?

    /// - Parameter runs: the transformer runs each forward makes (default: all six).
    public init(config: FusionConfig, maxBatch: Int, runs: [FusionRun] = FusionRun.allCases, training: Bool = true) throws {
        try config.validate()
        guard maxBatch >= 1, maxBatch <= 1 << 16, !runs.isEmpty else { throw VideoBertError("fusion: batch must be ≥ 1 and runs non-empty") }
        self.config = config
        self.maxBatch = maxBatch
        self.runs = runs
        self.training = training
        store = try ParameterStore(Self.parameterSpecs(config), training: training)
        let lengths = FusionModality.allCases.map { config.input($0).tokens }
        T = lengths.reduce(0, +)
        offsets = [0, lengths[0], lengths[0] + lengths[1]]
        var layout = ArenaLayout()
        if let net = config.audioSource == "logmel" ? config.audioNet : nil {
            audioNet = try AudioConvNet(config: net, store: store, prefix: "audio.", maxClips: maxBatch * config.maxAudioTokens, layout: &layout)
        } else {
            audioNet = nil
        }
        let Q = runs.count * maxBatch
        encoder = try TransformerEncoder(store: store, prefix: "fusion.encoder.", hiddenSize: config.hiddenSize, numHeads: config.heads,
                                         intermediateSize: config.intermediateSize, layers: config.layers, eps: Float(config.layerNormEps),
                                         maxBatch: Q, maxSeq: T, training: training, firstSite: 0, layout: &layout,
                                         arenaPrefix: "fusion.")
        s = FusionSlots(layout: &layout, config: config, B: maxBatch, S: runs.count, training: training)
        arena = Arena(layout)
    }

    /// Bytes held (parameters, gradients, moments, activations).
    public var bytes: Int { store.bytes + arena.bytes }

    public static func parameterSpecs(_ c: FusionConfig) -> [ParameterSpec] {
        var specs: [ParameterSpec] = []
        for m in FusionModality.allCases {
            specs += [ParameterSpec("token.\(m.name).weight", [c.hiddenSize, c.input(m).width], weightDecay: true),
                      ParameterSpec("token.\(m.name).bias", [c.hiddenSize], weightDecay: false),
                      ParameterSpec("token.\(m.name).LayerNorm.weight", [c.hiddenSize], weightDecay: false),
                      ParameterSpec("token.\(m.name).LayerNorm.bias", [c.hiddenSize], weightDecay: false)]
        }
        specs += TransformerEncoder.parameterSpecs(prefix: "fusion.encoder.", hiddenSize: c.hiddenSize,
                                                   intermediateSize: c.intermediateSize, layers: c.layers)
        if c.audioSource == "logmel", let net = c.audioNet { specs += AudioConvNet.parameterSpecs(net, prefix: "audio.") }
        for m in FusionModality.allCases {
            specs += [ParameterSpec("proj.\(m.name).weight", [c.embeddingSize, c.hiddenSize], weightDecay: true),
                      ParameterSpec("proj.\(m.name).bias", [c.embeddingSize], weightDecay: false)]
        }
        return specs
    }

    /// BERT-style: normal(0, initializer_range) weights, zero biases, LayerNorm 1; the audio conv
    /// net as its own `initializeParameters` (He-normal).
    public func initializeWeights(seed: UInt64) {
        initializeBertStyle(store, names: store.slots.map(\.name).filter { !$0.hasPrefix("audio.") }, std: Float(config.initializerRange),
                            seed: seed)
        if let net = audioNet {
            var rng = SeededRNG(seed: seed, stream: 0xA0D1)
            AudioConvNet.initializeParameters(net.config, store: store, prefix: "audio.", rng: &rng)
        }
    }

    /// C_m of the tokens a caller passes for modality m: the config's input width, or for log-mel
    /// audio frames·mels (one clip's spectrogram per token).
    public func tokenWidth(_ m: FusionModality) -> Int {
        if m == .audio, let net = audioNet { return net.config.frames * net.config.mels }
        return config.input(m).width
    }

    @inline(__always) private func wp(_ name: String) -> UnsafeMutablePointer<Float> { store.parameters + store.offset(of: name) }
    @inline(__always) private func gp(_ name: String) -> UnsafeMutablePointer<Float> { store.gradients + store.offset(of: name) }

    private func check(_ x: FusionInputs) {
        precondition(x.B >= 1 && x.B <= maxBatch, "fusion: \(x.B) samples outside 1...\(maxBatch)")
        for m in FusionModality.allCases {
            let (width, tokens) = (tokenWidth(m), config.input(m).tokens), L = x.lengths[m.rawValue]
            precondition(L >= 1 && L <= tokens, "fusion: \(L) \(m.name) tokens outside 1...\(tokens)")
            precondition(x.tokens[m.rawValue].count == x.B * L * width && x.masks[m.rawValue].count == x.B * L,
                         "fusion: \(m.name) tokens or mask of the wrong size")
        }
    }

    /// The embeddings [6, B, E] (`FusionEmbedding` order; rows of embeddings whose run is not in
    /// `runs` are 0) of one batch.
    /// - Parameters:
    ///   - dropout: the config's dropout (training), drawn from (seed, step); false for inference.
    public func forward(_ x: FusionInputs, dropout: Bool, seed: UInt64 = 0, step: Int = 0) -> UnsafeMutablePointer<Float> {
        check(x)
        let B = x.B, C = config.hiddenSize, E = config.embeddingSize, T = T, S = runs.count, Q = S * B
        let eps = Float(config.layerNormEps)
        let pHidden: Float = dropout ? Float(config.hiddenDropoutProb) : 0
        let pAttention: Float = dropout ? Float(config.attentionProbsDropoutProb) : 0
        // Token projections + LayerNorm, at each modality's full T_m (padding rows computed, masked later).
        for m in FusionModality.allCases {
            let width = config.input(m).width, L = x.lengths[m.rawValue], n = m.name
            let inp = tokenInput(x, m)
            linearForward(out: arena[s.projected[m.rawValue]], inp: inp, weight: wp("token.\(n).weight"),
                          bias: wp("token.\(n).bias"), N: B * L, C: width, OC: C)
            layerNormForward(out: arena[s.tokens[m.rawValue]], mean: arena[s.lnMean[m.rawValue]], rstd: arena[s.lnRstd[m.rawValue]],
                             inp: arena[s.projected[m.rawValue]], weight: wp("token.\(n).LayerNorm.weight"),
                             bias: wp("token.\(n).LayerNorm.bias"), N: B * L, C: C, eps: eps)
        }
        // Sequences: every run, every sample, the three modalities' slots (absent ones masked).
        let input = arena[encoder.input], mask = arena[encoder.mask]
        zeroFloats(input, Q * T * C)
        mask.update(repeating: 0, count: Q * T)
        for (r, run) in runs.enumerated() {
            for m in run.modalities {
                let L = x.lengths[m.rawValue], X = arena[s.tokens[m.rawValue]]
                x.masks[m.rawValue].withUnsafeBufferPointer { mk in
                    for b in 0..<B {
                        let q = r * B + b
                        for t in 0..<L {
                            let row = q * T + offsets[m.rawValue] + t
                            mask[row] = mk[b * L + t] > 0 ? 1 : 0
                            (input + row * C).update(from: X + (b * L + t) * C, count: C)
                        }
                    }
                }
            }
        }
        let H = encoder.forward(arena: arena, B: Q, T: T, pHidden: pHidden, pAttention: pAttention, seed: seed, step: step)
        // Masked means per (run, modality) and the output projections.
        let out = arena[s.embeddings], counts = arena[s.counts]
        zeroFloats(out, 6 * B * E)
        for (r, run) in runs.enumerated() {
            for m in run.modalities {
                let pooled = arena[s.pooled] + (r * 3 + m.rawValue) * B * C
                let L = x.lengths[m.rawValue]
                for b in 0..<B {
                    let q = r * B + b, dst = pooled + b * C
                    dst.update(repeating: 0, count: C)
                    var count: Float = 0
                    for t in 0..<L where mask[q * T + offsets[m.rawValue] + t] > 0 {
                        let h = H + (q * T + offsets[m.rawValue] + t) * C
                        for c in 0..<C { dst[c] += h[c] }
                        count += 1
                    }
                    counts[(r * 3 + m.rawValue) * B + b] = count
                    if count > 0 { for c in 0..<C { dst[c] /= count } }
                }
                linearForward(out: arena[s.z] + (r * 3 + m.rawValue) * B * E, inp: pooled, weight: wp("proj.\(m.name).weight"),
                              bias: wp("proj.\(m.name).bias"), N: B, C: C, OC: E)
            }
        }
        // The loss' six embeddings.
        for (r, run) in runs.enumerated() {
            let z = { (m: FusionModality) in self.arena[self.s.z] + (r * 3 + m.rawValue) * B * E }
            switch run {
            case .t, .v, .a:
                let m = run.modalities[0]
                (out + m.rawValue * B * E).update(from: z(m), count: B * E)
            case .tv, .ta, .va:
                let (m1, m2) = (run.modalities[0], run.modalities[1])
                let e = Self.embedding(of: run).rawValue
                let u1 = arena[s.unit] + (r * 3 + m1.rawValue) * B * E, u2 = arena[s.unit] + (r * 3 + m2.rawValue) * B * E
                l2NormalizeForward(out: u1, norms: arena[s.norms] + (r * 3 + m1.rawValue) * B, inp: z(m1), N: B, D: E,
                                   eps: CombinatorialContrastiveLoss.eps)
                l2NormalizeForward(out: u2, norms: arena[s.norms] + (r * 3 + m2.rawValue) * B, inp: z(m2), N: B, D: E,
                                   eps: CombinatorialContrastiveLoss.eps)
                let dst = out + e * B * E
                for i in 0..<(B * E) { dst[i] = (u1[i] + u2[i]) / 2 }
            }
        }
        kept = training ? (x, pHidden, pAttention, seed, step) : nil
        return out
    }

    /// The tokens of modality m as the token projection reads them: the caller's rows copied into
    /// the arena, or for log-mel audio the audio conv net's embeddings of them.
    private func tokenInput(_ x: FusionInputs, _ m: FusionModality) -> UnsafeMutablePointer<Float> {
        let raw = arena[s.raw[m.rawValue]], count = x.tokens[m.rawValue].count
        x.tokens[m.rawValue].withUnsafeBufferPointer { raw.update(from: $0.baseAddress!, count: count) }
        if m == .audio, let net = audioNet { return net.forward(arena: arena, logMel: raw, clips: x.B * x.lengths[m.rawValue]) }
        return raw
    }

    /// The loss' embedding a run produces.
    static func embedding(of run: FusionRun) -> FusionEmbedding { FusionEmbedding(rawValue: run.rawValue)! }

    /// Backward of the last `forward` of a training model from d(embeddings) [6, B, E]:
    /// accumulates (+=) into the store's gradients and, when given, into d(inputs) [B, T_m, C_m]
    /// per modality (nil: that modality's input needs none).
    public func backward(dEmbeddings: UnsafePointer<Float>, dInputs: [UnsafeMutablePointer<Float>?] = [nil, nil, nil]) {
        guard let k = kept else { preconditionFailure("fusion: backward needs a preceding forward of a training model") }
        let x = k.inputs, B = x.B, C = config.hiddenSize, E = config.embeddingSize, T = T, S = runs.count, Q = S * B
        let dz = arena[s.dz], dPooled = arena[s.dPooled], counts = arena[s.counts], mask = arena[encoder.mask]
        let dH = arena[encoder.dOutput]
        zeroFloats(dz, S * 3 * B * E)
        for (r, run) in runs.enumerated() {
            let e = Self.embedding(of: run).rawValue, g = dEmbeddings + e * B * E
            switch run {
            case .t, .v, .a:
                let m = run.modalities[0], d = dz + (r * 3 + m.rawValue) * B * E
                for i in 0..<(B * E) { d[i] += g[i] }
            case .tv, .ta, .va:
                let half = arena[s.half]
                for i in 0..<(B * E) { half[i] = g[i] / 2 }
                for m in run.modalities {
                    let o = r * 3 + m.rawValue
                    l2NormalizeBackward(dinp: dz + o * B * E, dout: half, out: arena[s.unit] + o * B * E, norms: arena[s.norms] + o * B,
                                        N: B, D: E, eps: CombinatorialContrastiveLoss.eps)
                }
            }
        }
        zeroFloats(dH, Q * T * C)
        for (r, run) in runs.enumerated() {
            for m in run.modalities {
                let o = r * 3 + m.rawValue, pooled = arena[s.pooled] + o * B * C, dp = dPooled
                zeroFloats(dp, B * C)
                linearBackward(dinp: dp, dweight: gp("proj.\(m.name).weight"), dbias: gp("proj.\(m.name).bias"),
                               dout: dz + o * B * E, inp: pooled, weight: wp("proj.\(m.name).weight"), N: B, C: C, OC: E)
                let L = x.lengths[m.rawValue]
                for b in 0..<B where counts[o * B + b] > 0 {
                    let q = r * B + b, scale = 1 / counts[o * B + b], src = dp + b * C
                    for t in 0..<L where mask[q * T + offsets[m.rawValue] + t] > 0 {
                        let d = dH + (q * T + offsets[m.rawValue] + t) * C
                        for c in 0..<C { d[c] += src[c] * scale }
                    }
                }
            }
        }
        let dInput = encoder.backward(arena: arena, B: Q, T: T, pHidden: k.pHidden, pAttention: k.pAttention, seed: k.seed, step: k.step).dInput
        // Gather d(tokens) of every modality from the runs that saw it, then LayerNorm and projection.
        for m in FusionModality.allCases {
            let L = x.lengths[m.rawValue], dX = arena[s.dTokens]
            zeroFloats(dX, B * L * C)
            var used = false
            for (r, run) in runs.enumerated() where run.modalities.contains(m) {
                used = true
                for b in 0..<B {
                    for t in 0..<L {
                        let row = (r * B + b) * T + offsets[m.rawValue] + t
                        if mask[row] == 0 { continue }
                        let src = dInput + row * C, d = dX + (b * L + t) * C
                        for c in 0..<C { d[c] += src[c] }
                    }
                }
            }
            if !used { continue }
            let n = m.name, dProjected = arena[s.dProjected]
            layerNormBackward(dinp: dProjected, dweight: gp("token.\(n).LayerNorm.weight"), dbias: gp("token.\(n).LayerNorm.bias"),
                              dout: dX, inp: arena[s.projected[m.rawValue]], weight: wp("token.\(n).LayerNorm.weight"),
                              mean: arena[s.lnMean[m.rawValue]], rstd: arena[s.lnRstd[m.rawValue]], N: B * L, C: C, accumulate: false)
            let width = config.input(m).width
            if m == .audio, let net = audioNet {
                // The conv net's output is still in the arena (forward ran it last for audio).
                let dAudio = arena[s.dAudio]
                zeroFloats(dAudio, B * L * width)
                linearBackward(dinp: dAudio, dweight: gp("token.\(n).weight"), dbias: gp("token.\(n).bias"),
                               dout: dProjected, inp: arena[net.output], weight: wp("token.\(n).weight"), N: B * L, C: width, OC: C)
                net.backward(arena: arena, dout: dAudio, clips: B * L)
            } else {
                linearBackward(dinp: dInputs[m.rawValue], dweight: gp("token.\(n).weight"), dbias: gp("token.\(n).bias"),
                               dout: dProjected, inp: arena[s.raw[m.rawValue]], weight: wp("token.\(n).weight"), N: B * L, C: width, OC: C)
            }
        }
    }
}

/// The fusion model's arena buffers besides the encoder's.
private struct FusionSlots {
    /// Per modality: [B·T_m, C_m] the caller's tokens (log-mel audio: frames·mels wide).
    let raw: [TensorSlot]
    /// [B·T_a, C_a] d(audio net output) (log-mel audio).
    let dAudio: TensorSlot
    /// Per modality: [B·T_m, C] projected tokens, LayerNorm output, [B·T_m] mean / rstd.
    let projected: [TensorSlot], tokens: [TensorSlot], lnMean: [TensorSlot], lnRstd: [TensorSlot]
    /// [S, 3, B, C] pooled outputs; [S, 3, B] their token counts; [S, 3, B, E] projections, unit
    /// rows, [S, 3, B] norms; [6, B, E] the loss' embeddings.
    let pooled, counts, z, unit, norms, embeddings: TensorSlot
    /// Gradients: [S, 3, B, E] dz; [B, C] d(pooled); [B, E] half; [B·T_max, C] d(tokens), d(projected).
    let dz, dPooled, half, dTokens, dProjected: TensorSlot

    init(layout l: inout ArenaLayout, config c: FusionConfig, B: Int, S: Int, training: Bool) {
        let C = c.hiddenSize, E = c.embeddingSize
        func a(_ name: String, _ shape: [Int]) -> TensorSlot { l.add("fusion." + name, shape) }
        func g(_ name: String, _ shape: [Int]) -> TensorSlot { l.add("fusion." + name, training ? shape : [0]) }
        let rows = FusionModality.allCases.map { B * c.input($0).tokens }
        let logMel = c.audioSource == "logmel" ? c.audioNet : nil
        raw = FusionModality.allCases.map { m in
            a("raw.\(m.name)", [rows[m.rawValue], m == .audio && logMel != nil ? logMel!.frames * logMel!.mels : c.input(m).width])
        }
        dAudio = g("dAudio", [logMel == nil ? 0 : rows[2], c.audioInputSize])
        projected = FusionModality.allCases.map { a("projected.\($0.name)", [rows[$0.rawValue], C]) }
        tokens = FusionModality.allCases.map { a("tokens.\($0.name)", [rows[$0.rawValue], C]) }
        lnMean = FusionModality.allCases.map { a("lnMean.\($0.name)", [rows[$0.rawValue]]) }
        lnRstd = FusionModality.allCases.map { a("lnRstd.\($0.name)", [rows[$0.rawValue]]) }
        pooled = a("pooled", [S * 3 * B, C]); counts = a("counts", [S * 3 * B])
        z = a("z", [S * 3 * B, E]); unit = a("unit", [S * 3 * B, E]); norms = a("norms", [S * 3 * B]); embeddings = a("embeddings", [6 * B, E])
        let maxRows = rows.max() ?? 1
        dz = g("dz", [S * 3 * B, E]); dPooled = g("dPooled", [B, C]); half = g("half", [B, E])
        dTokens = g("dTokens", [maxRows, C]); dProjected = g("dProjected", [maxRows, C])
    }
}
