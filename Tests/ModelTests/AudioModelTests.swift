import XCTest
import Tensor
@testable import Model

/// VideoBERT with audio (issue 17, item 4; docs/ARCHITECTURE.md §3–§4): audio words after the
/// visual words in the joint vocabulary, a third token type, masked audio-word modelling with its
/// own restricted softmax; checked against finite differences, and the checkpoint against
/// transformers (Resources/hf-interop/videobert-tiny-audio-hf.json, by tools/fixtures/hf_interop_audio.py).
final class AudioModelTests: XCTestCase {
    /// 13 text ids, 7 visual words, 5 audio words, 3 token types.
    static let config = BertConfig(textVocabSize: 13, visualWords: 7, audioWords: 5, hiddenSize: 8, numHiddenLayers: 2,
                                   numAttentionHeads: 2, intermediateSize: 12, maxPositionEmbeddings: 12, typeVocabSize: 3,
                                   hiddenDropoutProb: 0.1, attentionProbsDropoutProb: 0.1)

    /// Two examples of `[CLS] text [>] video [>>] audio [SEP]` (ids: [CLS] 2, [SEP] 3, [>] 1,
    /// [>>] 5, [MASK] 4), the second shorter and padded, with text, video and audio rows masked.
    static func batch() -> PretrainingBatch {
        let T = 12, text = 13, video = 7
        func v(_ w: Int32) -> Int32 { Int32(text) + w }
        func a(_ w: Int32) -> Int32 { Int32(text + video) + w }
        let ex0: [Int32] = [2, 7, 4, 9, 1, v(3), 4, v(6), 5, a(2), 4, 3]          // 12 tokens
        let types0: [Int32] = [0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
        let ex1: [Int32] = [2, 11, 1, v(0), 5, 4, a(1), 3]                        // 8 tokens
        let types1: [Int32] = [0, 0, 0, 1, 1, 2, 2, 2]
        var ids = [Int32](repeating: 0, count: 2 * T), types = [Int32](repeating: 0, count: 2 * T)
        var mask = [Float](repeating: 0, count: 2 * T)
        for (i, x) in ex0.enumerated() { ids[i] = x; types[i] = types0[i]; mask[i] = 1 }
        for (i, x) in ex1.enumerated() { ids[T + i] = x; types[T + i] = types1[i]; mask[T + i] = 1 }
        var b = PretrainingBatch(B: 2, T: T, inputIDs: ids, tokenTypeIDs: types, attentionMask: mask,
                                 textRows: [2, Int32(T + 1)], textTargets: [8, 11], videoRows: [6], videoTargets: [5],
                                 alignLabels: [1, 0], alignWeights: [1, 1])
        b.audioRows = [10, Int32(T + 5), Int32(T + 6)]
        b.audioTargets = [4, 0, 1]
        return b
    }

    /// Central differences (4th order) on every tensor against the analytic gradient of
    /// w_mlm·MLM + w_mfm·MFM + w_mam·MAM + w_align·align, dropout on (as `testFiniteDifferencesWholeModel`).
    func testFiniteDifferencesWholeModelWithAudio() throws {
        let model = try BertForPreTraining(config: Self.config, maxBatch: 2, maxSeq: 12)
        randomizeParameters(model, seed: 15, std: 0.4)
        let batch = Self.batch()
        let w: (mlm: Float, mfm: Float, align: Float) = (1, 0.8, 0.5)
        func loss() -> Double {
            Double(model.run(batch, dropout: true, backward: false, step: 3, seed: 17, weights: w, mamWeight: 0.7, lossScale: 1).loss)
        }
        model.store.zeroGradients()
        let base = model.run(batch, dropout: true, backward: true, step: 3, seed: 17, weights: w, mamWeight: 0.7, lossScale: 1)
        XCTAssertEqual(base.mamCount, 3)
        XCTAssertGreaterThan(base.mamLoss, 0)
        XCTAssertEqual(Double(base.loss), Double(w.mlm * base.mlmLoss + w.mfm * base.mfmLoss + w.align * base.alignLoss + 0.7 * base.mamLoss),
                       accuracy: 1e-5)
        let h: Float = 1e-2
        var rng = SeededRNG(seed: 19)
        for slot in model.store.slots {
            let p = model.store.parameter(slot.name), g = model.store.gradient(slot.name)
            var coordinates: [Int]
            if slot.count <= 4 {
                coordinates = Array(0..<slot.count)
            } else {
                coordinates = Array((0..<slot.count).sorted { abs(g[$0]) > abs(g[$1]) }.prefix(2))
                while coordinates.count < 4 {
                    let i = rng.nextInt(slot.count)
                    if !coordinates.contains(i) { coordinates.append(i) }
                }
            }
            if slot.name == "bert.embeddings.token_type_embeddings.weight" {
                coordinates += [16, 18, 21]   // the audio type's row (row 2 of [3, 8])
            }
            if slot.name == "cls.predictions.bias" { coordinates += [20, 24] }   // audio words' biases
            var diff = 0.0, numNorm = 0.0, anaNorm = 0.0
            for i in coordinates {
                let saved = p[i]
                p[i] = saved + h; let lp1 = loss()
                p[i] = saved - h; let lm1 = loss()
                p[i] = saved + 2 * h; let lp2 = loss()
                p[i] = saved - 2 * h; let lm2 = loss()
                p[i] = saved
                let numerical = (8 * (lp1 - lm1) - (lp2 - lm2)) / (12 * Double(h))
                let analytic = Double(g[i])
                diff += (numerical - analytic) * (numerical - analytic)
                numNorm += numerical * numerical
                anaNorm += analytic * analytic
            }
            if slot.name.hasSuffix("attention.self.key.bias") {
                XCTAssertLessThan(numNorm.squareRoot(), 1e-4, slot.name)
                XCTAssertLessThan(anaNorm.squareRoot(), 1e-6, slot.name)
                continue
            }
            let relative = diff.squareRoot() / max(numNorm.squareRoot() + anaNorm.squareRoot(), 1e-30)
            XCTAssertGreaterThan(numNorm, 0, "\(slot.name): numerical gradient is zero at the checked coordinates")
            XCTAssertLessThanOrEqual(relative, 1e-3, "\(slot.name): relative error \(relative)")
        }
    }

    /// The embeddings' backward with three token types (text, video, audio): finite differences.
    func testEmbeddingsWithThreeTokenTypes() {
        var rng = SeededRNG(seed: 33)
        let (B, T, C, V, P, S) = (2, 5, 4, 11, 6, 3)
        let word = Floats(random: V * C, rng: &rng), position = Floats(random: P * C, rng: &rng)
        let segment = Floats(random: S * C, rng: &rng)
        let ids = Ints([2, 7, 1, 9, 10, 2, 3, 10, 10, 4])
        let types = Ints([0, 0, 1, 2, 2, 0, 1, 2, 2, 2])
        gradientCheck("embeddings, 3 token types", inputs: [("word", word), ("position", position), ("token_type", segment)],
                      outputs: B * T * C, allowZero: ["word"]) { out in
            embeddingsForward(out: out, inputIds: ids.p, tokenTypeIds: types.p, wordEmbeddings: word.p,
                              positionEmbeddings: position.p, tokenTypeEmbeddings: segment.p, B: B, T: T, C: C)
        } backward: { dout, g in
            embeddingsBackward(dwordEmbeddings: g[0], dpositionEmbeddings: g[1], dtokenTypeEmbeddings: g[2],
                               dout: dout, inputIds: ids.p, tokenTypeIds: types.p, paddingId: nil, B: B, T: T, C: C)
        }
    }

    /// MAM is a softmax over the audio words only: its logits are the audio slice of the full
    /// prediction logits, and a batch without audio rows computes exactly what it computed before.
    func testAudioSoftmaxIsTheAudioSliceAndNoAudioRowsChangeNothing() throws {
        let model = try BertForPreTraining(config: Self.config, maxBatch: 2, maxSeq: 12, training: false)
        randomizeParameters(model, seed: 21, std: 0.3)
        let batch = Self.batch()
        let out = model.forwardBackward(batch, step: 0, dropoutSeed: 0, training: false)
        let encoded = model.encode(inputIDs: batch.inputIDs, tokenTypeIDs: batch.tokenTypeIDs, attentionMask: batch.attentionMask, B: 2, T: 12)
        let logits = model.predictionLogits(encoded, rows: batch.audioRows)
        let V = Self.config.vocabSize, first = 13 + 7
        var loss = 0.0
        for (m, target) in batch.audioTargets.enumerated() {
            let row = (first..<V).map { Double(logits[m * V + $0]) }
            let mx = row.max()!
            let lse = mx + log(row.map { exp($0 - mx) }.reduce(0, +))
            loss += lse - row[Int(target)]
        }
        XCTAssertEqual(Double(out.mamLoss), loss / 3, accuracy: 1e-5)
        var silent = batch
        silent.audioRows = []; silent.audioTargets = []
        let without = model.forwardBackward(silent, step: 0, dropoutSeed: 0, training: false)
        XCTAssertEqual(without.mamCount, 0)
        XCTAssertEqual(without.mlmLoss, out.mlmLoss, accuracy: 1e-6)
        XCTAssertEqual(without.mfmLoss, out.mfmLoss, accuracy: 1e-6)
        XCTAssertEqual(without.loss, out.loss - out.mamLoss, accuracy: 1e-5)
    }

    /// config.json: `videobert_audio_words` only when there are audio words (a model without
    /// audio writes the keys it always wrote); audio needs 3 token types; errors name the file.
    func testConfigKeysAndValidation() throws {
        let dir = NSTemporaryDirectory() + "audio-config-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var plain = Self.config
        plain = plain.withAudioWords(0)
        plain.typeVocabSize = 2
        try plain.write(to: dir + "/plain.json")
        XCTAssertFalse(try String(contentsOfFile: dir + "/plain.json", encoding: .utf8).contains("audio"))
        try Self.config.write(to: dir + "/audio.json")
        let back = try BertConfig.load(from: dir + "/audio.json")
        XCTAssertEqual(back, Self.config)
        XCTAssertEqual(back.vocabSize, 25)
        var bad = Self.config
        bad.typeVocabSize = 2
        XCTAssertThrowsError(try bad.validate(file: "x/config.json")) { e in
            XCTAssertTrue("\(e)".contains("x/config.json") && "\(e)".contains("type_vocab_size 3"), "\(e)")
        }
        bad = Self.config
        bad.vocabSize = 24
        XCTAssertThrowsError(try bad.validate(file: "x/config.json")) { e in
            XCTAssertTrue("\(e)".contains("videobert_audio_words 5"), "\(e)")
        }
    }

    /// A text BERT (2 token types) loads into a model with audio: text rows and both token types
    /// copied, the visual and audio rows and the audio type initialised.
    func testTextBertLoadsIntoAModelWithAudio() throws {
        let textConfig = BertConfig(textVocabSize: 13, visualWords: 0, hiddenSize: 8, numHiddenLayers: 2, numAttentionHeads: 2,
                                    intermediateSize: 12, maxPositionEmbeddings: 12)
        let text = try BertForPreTraining(config: textConfig, maxBatch: 1, maxSeq: 4)
        randomizeParameters(text, seed: 4)
        let dir = NSTemporaryDirectory() + "audio-text-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try text.save(to: dir)
        let joint = try BertForPreTraining(config: textConfig.withVisualWords(7).withAudioWords(5), maxBatch: 1, maxSeq: 4)
        XCTAssertEqual(joint.config.typeVocabSize, 3)
        let report = try joint.loadPretrained(from: dir, seed: 6)
        XCTAssertTrue(report.extendedVocabulary)
        let types = joint.store.parameter("bert.embeddings.token_type_embeddings.weight")
        XCTAssertEqual(Array(types[0..<16]), Array(text.store.parameter("bert.embeddings.token_type_embeddings.weight")))
        XCTAssertGreaterThan(types[16..<24].map(abs).max()!, 0, "audio type initialised")
        let word = joint.store.parameter("bert.embeddings.word_embeddings.weight")
        XCTAssertEqual(Array(word[0..<(13 * 8)]), Array(text.store.parameter("bert.embeddings.word_embeddings.weight")))
        XCTAssertGreaterThan(word[(20 * 8)...].map(abs).max()!, 0, "audio rows initialised")
    }

    // MARK: Hugging Face

    /// The tiny audio checkpoint (2 layers × 24, 3 heads, 40 text + 12 visual + 6 audio words, 3 types).
    static func ourTinyAudioModel() throws -> BertForPreTraining {
        let config = BertConfig(textVocabSize: 40, visualWords: 12, audioWords: 6, hiddenSize: 24, numHiddenLayers: 2,
                                numAttentionHeads: 3, intermediateSize: 40, maxPositionEmbeddings: 20, typeVocabSize: 3)
        let model = try BertForPreTraining(config: config, maxBatch: 2, maxSeq: 20)
        model.initializeWeights(seed: 31)
        randomizeParameters(model, seed: 32, std: 0.2)
        return model
    }

    /// transformers' BertForPreTraining loads the checkpoint we write for a model with audio
    /// (no missing, unexpected or mismatched keys, no warnings) and computes what we compute on
    /// `[CLS] text [>] video [>>] audio [SEP]` with token types 0/1/2. Regenerating:
    ///     VIDEOBERT_UPDATE_FIXTURES=1 swift test --filter AudioModelTests/testTransformersOnOurAudioCheckpoint
    ///     /work/main/.venv/bin/python tools/fixtures/hf_interop_audio.py
    func testTransformersOnOurAudioCheckpoint() throws {
        let model = try Self.ourTinyAudioModel()
        if ProcessInfo.processInfo.environment["VIDEOBERT_UPDATE_FIXTURES"] == "1" {
            let target = (Paths.sourceResources as NSString).appendingPathComponent("videobert-tiny-audio")
            try model.save(to: target)
            print("  wrote \(target); now run tools/fixtures/hf_interop_audio.py")
            return
        }
        // Our writer still writes the committed checkpoint.
        let dir = NSTemporaryDirectory() + "videobert-tiny-audio-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try model.save(to: dir)
        let committed = Paths.resource("videobert-tiny-audio")
        XCTAssertEqual(FileManager.default.contents(atPath: dir + "/model.safetensors"),
                       FileManager.default.contents(atPath: committed + "/model.safetensors"))
        let a = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))) as! NSDictionary
        let b = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: committed + "/config.json"))) as! NSDictionary
        XCTAssertEqual(a, b)

        let f = Fixture(Paths.resource("hf-interop/videobert-tiny-audio-hf.json"))
        XCTAssertEqual(f.strings("missing_keys"), [], "transformers reported missing keys")
        XCTAssertEqual(f.strings("unexpected_keys"), [], "transformers reported unexpected keys")
        XCTAssertEqual(f.strings("load_warnings"), [], "transformers warned while loading")
        let loaded = try BertForPreTraining.load(from: committed, maxBatch: 2, maxSeq: 20)
        XCTAssertEqual(loaded.config.audioWords, 6)
        let (B, T) = (f.int("B"), f.int("T"))
        let types = f.int32s("token_type_ids")
        XCTAssertTrue(types.contains(2), "the fixture uses the audio token type")
        let encoded = loaded.encode(inputIDs: f.int32s("input_ids"), tokenTypeIDs: types, attentionMask: f.floats("attention_mask"), B: B, T: T)
        checkValues(encoded.hidden, f.doubles("last_hidden_state"), "last hidden states vs transformers", atol: 1e-4, rtol: 1e-4)
        checkValues(loaded.predictionLogits(encoded, rows: f.int32s("rows")), f.doubles("prediction_logits_at_rows"),
                    "prediction logits vs transformers", atol: 1e-4, rtol: 1e-4)
        checkValues(loaded.alignmentScores(encoded), f.doubles("aligned_probability"), "P(aligned) vs transformers", atol: 1e-4, rtol: 1e-4)
    }
}
