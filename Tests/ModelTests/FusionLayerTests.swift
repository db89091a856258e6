import Foundation
import XCTest
import Tensor
@testable import Model

/// The fusion variant's layers (Sources/Model/Fusion): the combinatorial contrastive loss against
/// the PyTorch transcription of Everything at Once's CombinatorialLoss (tools/fixtures/
/// combinatorial.py) and finite differences; the audio conv net by finite differences.
final class FusionLayerTests: XCTestCase {
    static let cases: [String: [String: [Double]]] = {
        guard let url = Bundle.module.url(forResource: "combinatorial", withExtension: "json", subdirectory: "Resources") else {
            fatalError("Resources/combinatorial.json missing: run tools/fixtures/combinatorial.py")
        }
        return try! JSON.decode([String: [String: [Double]]].self, from: url.path)
    }()

    /// Values and gradients equal the reference within 1e-5 (|a − b| ≤ 1e-5 + 1e-5·|b|).
    func testMatchesPyTorch() throws {
        for name in ["mixed", "no_audio", "all_present"] {
            let f = try XCTUnwrap(Self.cases[name], name)
            let (N, D) = (f.int("N"), f.int("D"))
            let loss = try CombinatorialContrastiveLoss(maxBatch: N + 2, dimension: D, temperature: Float(f.scalar("temperature")),
                                                        weights: f.values("weights").map { Float($0) })
            let embeddings = f.floats("embeddings"), present = f.floats("present")
            let result = loss.forward(embeddings: embeddings.p, present: present.p, N: N)
            checkTensor([result.loss], f.values("loss"), "\(name) loss", atol: 1e-5, rtol: 1e-5)
            checkTensor(result.terms.map(\.loss), f.values("term_loss"), "\(name) terms", atol: 1e-5, rtol: 1e-5)
            XCTAssertEqual(result.terms.map { Double($0.count) }, f.values("term_count"), name)
            let grads = Floats(count: 6 * N * D)
            loss.backward(dembeddings: grads.p)
            checkTensor(grads, f.values("dembeddings"), "\(name) gradients", atol: 1e-5, rtol: 1e-5)
        }
        // Without audio only text ↔ video is used, and its weight alone normalises the loss.
        let f = try XCTUnwrap(Self.cases["no_audio"])
        let loss = try CombinatorialContrastiveLoss(maxBatch: 5, dimension: 4, temperature: 0.05, weights: [1, 0.1, 0.1, 0.1, 0.1, 0.1])
        let result = loss.forward(embeddings: f.floats("embeddings").p, present: f.floats("present").p, N: 5)
        XCTAssertEqual(result.terms.filter { $0.count > 0 }.count, 1)
        XCTAssertEqual(result.weightSum, 1)
        XCTAssertEqual(result.loss, result.terms[CombinatorialTerm.tv.rawValue].loss)
    }

    /// Finite differences through normalisation, gathering, masking and the weighted mean; a
    /// missing modality's rows get no gradient.
    func testGradientCheck() throws {
        var rng = SeededRNG(seed: 17)
        let (N, D) = (6, 5)
        // Sample 1 misses audio, sample 4 misses video, sample 5 misses text.
        var flags = [Float](repeating: 1, count: 3 * N)
        flags[FusionModality.audio.rawValue * N + 1] = 0
        flags[FusionModality.video.rawValue * N + 4] = 0
        flags[FusionModality.text.rawValue * N + 5] = 0
        let present = Floats(flags)
        for weights: [Float] in [[1, 0.1, 0.1, 0.1, 0.1, 0.1], [0.5, 1, 0.3, 0, 0.7, 0.2]] {
            let loss = try CombinatorialContrastiveLoss(maxBatch: N, dimension: D, temperature: 0.5, weights: weights)
            let embeddings = Floats(random: 6 * N * D, rng: &rng)
            gradientCheck("combinatorial \(weights)", inputs: [("embeddings", embeddings)], outputs: 1, h: 1e-2) { out in
                out[0] = loss.forward(embeddings: embeddings.p, present: present.p, N: N).loss
            } backward: { dout, g in
                loss.backward(dembeddings: g[0], dloss: dout[0])
            }
            _ = loss.forward(embeddings: embeddings.p, present: present.p, N: N)
            let grads = Floats(count: 6 * N * D)
            loss.backward(dembeddings: grads.p)
            for (embedding, sample) in [(FusionEmbedding.audio, 1), (.video, 4), (.text, 5), (.textVideo, 5), (.videoAudio, 1)] {
                let row = (embedding.rawValue * N + sample) * D
                XCTAssertEqual((row..<(row + D)).map { grads[$0] }, [Float](repeating: 0, count: D), "\(embedding) of sample \(sample)")
            }
        }
    }

    func testBadSettingsAreErrors() {
        XCTAssertThrowsError(try CombinatorialContrastiveLoss(maxBatch: 4, dimension: 3, temperature: 0, weights: [1, 0, 0, 0, 0, 0]))
        XCTAssertThrowsError(try CombinatorialContrastiveLoss(maxBatch: 4, dimension: 3, temperature: 0.1, weights: [1, 0, 0]))
        XCTAssertThrowsError(try CombinatorialContrastiveLoss(maxBatch: 4, dimension: 3, temperature: 0.1, weights: [1, -1, 0, 0, 0, 0]))
    }

    /// The audio conv net on 2 clips of 9 × 7 log-mel frames (odd sizes: the pools floor), every
    /// parameter. ReLU and max pooling make it piecewise smooth: a step of 1e-3.
    func testAudioConvNetGradients() throws {
        var rng = SeededRNG(seed: 23)
        let config = AudioConvNetConfig(frames: 9, mels: 7, channels: [3, 4, 5], outputSize: 4)
        let store = try ParameterStore(AudioConvNet.parameterSpecs(config))
        AudioConvNet.initializeParameters(config, store: store, rng: &rng)
        for slot in store.slots where slot.shape.count == 1 { store.fillNormal(slot.name, std: 0.1, rng: &rng) }
        var layout = ArenaLayout()
        let net = try AudioConvNet(config: config, store: store, maxClips: 3, layout: &layout)
        let arena = Arena(layout)
        let clips = 2
        let logMel = Floats(random: clips * 9 * 7, scale: 3, rng: &rng)
        let inputs = store.slots.map { slot in (name: slot.name, values: Floats(Array(store.parameter(slot.name)))) }
        gradientCheck("audio conv net", inputs: inputs, outputs: clips * 4, h: 1e-3) { out in
            for (slot, input) in zip(store.slots, inputs) { store.parameter(slot.name).baseAddress!.update(from: input.values.p, count: slot.count) }
            out.update(from: net.forward(arena: arena, logMel: logMel.p, clips: clips), count: clips * 4)
        } backward: { dout, grads in
            store.zeroGradients()
            net.backward(arena: arena, dout: dout, clips: clips)
            for (k, slot) in store.slots.enumerated() {
                let g = store.gradient(slot.name)
                for i in 0..<slot.count { grads[k][i] += g[i] }
            }
        }
        XCTAssertEqual(store.count, config.parameterCount)
        // 3 frames cannot go through two 2×2 pools; no channels is an error, not a crash.
        XCTAssertThrowsError(try AudioConvNetConfig(frames: 3, mels: 7, channels: [3, 4, 5], outputSize: 4).validate())
        XCTAssertThrowsError(try AudioConvNetConfig(channels: []).validate())
    }

    /// The fusion model by finite differences on its six embeddings (L = Σ embeddings ⊙ R): every
    /// parameter but the attention's key bias (softmax is invariant to it: its gradient is 0 and
    /// its numerical one rounding noise) and the text and video inputs. Sample 1 misses audio,
    /// sample 2 has one text token of three (padding), so the masking of the runs and of the
    /// pooling is exercised. The loss on top is checked by `testMatchesPyTorch` and `testGradientCheck`.
    func testFusionModelGradients() throws {
        var rng = SeededRNG(seed: 31)
        var config = FusionConfig()
        (config.textInputSize, config.videoInputSize, config.audioInputSize) = (3, 4, 2)
        (config.maxTextTokens, config.maxVideoTokens, config.maxAudioTokens) = (3, 2, 2)
        (config.hiddenSize, config.layers, config.heads, config.intermediateSize, config.embeddingSize) = (4, 1, 2, 6, 3)
        (config.hiddenDropoutProb, config.attentionProbsDropoutProb) = (0, 0)
        let B = 3, E = 3
        let model = try FusionModel(config: config, maxBatch: B)
        model.initializeWeights(seed: 5)
        for slot in model.store.slots { model.store.fillNormal(slot.name, std: 0.5, rng: &rng) }
        let text = Floats(random: B * 3 * 3, rng: &rng), video = Floats(random: B * 2 * 4, rng: &rng), audio = Floats(random: B * 2 * 2, rng: &rng)
        let masks: [[Float]] = [[1, 1, 1, 1, 1, 0, 1, 0, 0], [1, 1, 1, 1, 1, 0], [1, 1, 0, 0, 1, 1]]
        func inputs() -> FusionInputs { FusionInputs(B: B, tokens: [text.array, video.array, audio.array], masks: masks, lengths: [3, 2, 2]) }
        XCTAssertEqual(inputs().present, [1, 1, 1, 1, 1, 1, 1, 0, 1])
        let checked = model.store.slots.filter { !$0.name.hasSuffix("attention.self.key.bias") }
        let params = checked.map { slot in (name: slot.name, values: Floats(Array(model.store.parameter(slot.name)))) }
        gradientCheck("fusion model", inputs: params + [("text", text), ("video", video)], outputs: 6 * B * E, h: 1e-2) { out in
            for (slot, input) in zip(checked, params) { model.store.parameter(slot.name).baseAddress!.update(from: input.values.p, count: slot.count) }
            out.update(from: model.forward(inputs(), dropout: false), count: 6 * B * E)
        } backward: { dout, grads in
            model.store.zeroGradients()
            let n = params.count
            model.backward(dEmbeddings: dout, dInputs: [grads[n], grads[n + 1], nil])
            for (k, slot) in checked.enumerated() {
                let g = model.store.gradient(slot.name)
                for i in 0..<slot.count { grads[k][i] += g[i] }
            }
        }
        // The sample without audio: its audio embedding is the projection's bias (a mean over
        // nothing is 0), and none of its audio tokens' values matter.
        let embeddings = model.forward(inputs(), dropout: false)
        let bias = Array(model.store.parameter("proj.audio.bias"))
        for e in 0..<E { XCTAssertEqual(embeddings[(FusionEmbedding.audio.rawValue * B + 1) * E + e], bias[e], accuracy: 1e-6) }
    }

    /// The audio path with log-mel input: the conv net inside the model, by finite differences
    /// on the embeddings (its parameters and the audio token projection).
    func testFusionModelWithAudioNetGradients() throws {
        var rng = SeededRNG(seed: 43)
        var config = FusionConfig()
        (config.textInputSize, config.videoInputSize) = (3, 4)
        (config.maxTextTokens, config.maxVideoTokens, config.maxAudioTokens) = (2, 2, 2)
        (config.hiddenSize, config.layers, config.heads, config.intermediateSize, config.embeddingSize) = (4, 1, 2, 6, 3)
        (config.hiddenDropoutProb, config.attentionProbsDropoutProb) = (0, 0)
        config.audioSource = "logmel"
        config.audioNet = AudioConvNetConfig(frames: 4, mels: 5, channels: [2, 3], outputSize: 3)
        config.audioInputSize = 3
        let B = 2, E = 3
        let model = try FusionModel(config: config, maxBatch: B, runs: [.a, .va])
        model.initializeWeights(seed: 5)
        XCTAssertEqual(model.tokenWidth(.audio), 20)
        let text = Floats(random: B * 2 * 3, rng: &rng), video = Floats(random: B * 2 * 4, rng: &rng), logMel = Floats(random: B * 2 * 20, scale: 2, rng: &rng)
        let masks: [[Float]] = [[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0]]
        func inputs() -> FusionInputs { FusionInputs(B: B, tokens: [text.array, video.array, logMel.array], masks: masks, lengths: [2, 2, 2]) }
        let checked = model.store.slots.filter { $0.name.hasPrefix("audio.") || $0.name.hasPrefix("token.audio") }
        let params = checked.map { slot in (name: slot.name, values: Floats(Array(model.store.parameter(slot.name)))) }
        gradientCheck("fusion model, log-mel audio", inputs: params, outputs: 6 * B * E, h: 1e-3) { out in
            for (slot, input) in zip(checked, params) { model.store.parameter(slot.name).baseAddress!.update(from: input.values.p, count: slot.count) }
            out.update(from: model.forward(inputs(), dropout: false), count: 6 * B * E)
        } backward: { dout, grads in
            model.store.zeroGradients()
            model.backward(dEmbeddings: dout)
            for (k, slot) in checked.enumerated() {
                let g = model.store.gradient(slot.name)
                for i in 0..<slot.count { grads[k][i] += g[i] }
            }
        }
    }

    /// The variable-margin objective's path (gathering, hinge ranking, normalisation, weights) by
    /// finite differences. The margins α·σ(−x_iᵀx_j) are a stop-gradient (constants in backward),
    /// which finite differences cannot hold fixed, so the check runs at α = 0; at α = 0.4 the
    /// loss is larger (the margins are on) and finite.
    func testVariableMarginGradientCheck() throws {
        var rng = SeededRNG(seed: 41)
        let (N, D) = (5, 4)
        let present = Floats([Float](repeating: 1, count: 3 * N))
        let weights: [Float] = [1, 0.5, 0, 0.3, 0, 0]
        let loss = try CombinatorialContrastiveLoss(maxBatch: N, dimension: D, temperature: 1, weights: weights,
                                                    objective: .variableMargin(alpha: 0))
        let withMargins = try CombinatorialContrastiveLoss(maxBatch: N, dimension: D, temperature: 1, weights: weights,
                                                           objective: .variableMargin(alpha: 0.4))
        let embeddings = Floats(random: 6 * N * D, rng: &rng)
        let plain = loss.forward(embeddings: embeddings.p, present: present.p, N: N).loss
        let margined = withMargins.forward(embeddings: embeddings.p, present: present.p, N: N).loss
        XCTAssertGreaterThan(plain, 0)
        XCTAssertGreaterThan(margined, plain)
        XCTAssertTrue(margined.isFinite)
        gradientCheck("combinatorial, variable margin", inputs: [("embeddings", embeddings)], outputs: 1, h: 1e-3, tolerance: 2e-3) { out in
            out[0] = loss.forward(embeddings: embeddings.p, present: present.p, N: N).loss
        } backward: { dout, g in
            loss.backward(dembeddings: g[0], dloss: dout[0])
        }
    }

    /// Only the runs the weights need are made: text ↔ video alone runs t and v.
    func testRunsFollowTheWeights() {
        XCTAssertEqual(FusionRun.needed(weights: [1, 0, 0, 0, 0, 0]), [.t, .v])
        XCTAssertEqual(FusionRun.needed(weights: [1, 0.1, 0.1, 0.1, 0.1, 0.1]), FusionRun.allCases)
        XCTAssertEqual(FusionRun.needed(weights: [0, 0, 0, 1, 0, 0]), [.t, .va])
    }
}
