import XCTest
import Tensor
@testable import Model

/// Hugging Face interop, both ways (docs/ARCHITECTURE.md §6, 1e-4):
///
/// (a) a pretrained HF BERT read by us: models/minilm-l6-h384-uncased (a sentence-transformers
///     BertModel, installed by tools/setup) gives transformers.BertModel's last hidden states on
///     real sentences tokenised by transformers (fixture Resources/hf-interop/minilm-*.npy).
/// (b) a checkpoint WE write is read by transformers: Resources/videobert-tiny/ is written by
///     `testOurWriterStillWritesTheCommittedCheckpoint`; tools/fixtures/hf_interop.py loads it with
///     `BertForPreTraining.from_pretrained` (failing on any missing/unexpected key or load warning)
///     and records transformers' outputs in Resources/hf-interop/videobert-tiny-hf.json, which we
///     must reproduce.
///
/// Regenerating (from the repository root):
///     VIDEOBERT_UPDATE_FIXTURES=1 swift test --filter HFInteropTests/testOurWriterStillWritesTheCommittedCheckpoint
///     /work/main/.venv/bin/python tools/fixtures/hf_interop.py
final class HFInteropTests: XCTestCase {
    /// The tiny joint-vocabulary model of (b): 2 layers × 24 hidden, 3 heads, 40 text + 12 visual.
    static func ourTinyModel() throws -> BertForPreTraining {
        let config = BertConfig(textVocabSize: 40, visualWords: 12, hiddenSize: 24, numHiddenLayers: 2, numAttentionHeads: 3,
                                intermediateSize: 40, maxPositionEmbeddings: 20)
        let model = try BertForPreTraining(config: config, maxBatch: 2, maxSeq: 20)
        model.initializeWeights(seed: 21)
        randomizeParameters(model, seed: 22, std: 0.2)   // no tensor 0 or 1: a swapped name would show
        return model
    }

    func testOurWriterStillWritesTheCommittedCheckpoint() throws {
        let model = try Self.ourTinyModel()
        if ProcessInfo.processInfo.environment["VIDEOBERT_UPDATE_FIXTURES"] == "1" {
            let target = (Paths.sourceResources as NSString).appendingPathComponent("videobert-tiny")
            try model.save(to: target)
            print("  wrote \(target); now run tools/fixtures/hf_interop.py")
            return
        }
        let dir = NSTemporaryDirectory() + "videobert-tiny-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try model.save(to: dir)
        let committed = Paths.resource("videobert-tiny")
        // Same tensors (names, shapes, bits) and the same config keys and values.
        let ours = try SafeTensors.read(dir + "/model.safetensors")
        let theirs = try SafeTensors.read(committed + "/model.safetensors")
        XCTAssertEqual(ours.names, theirs.names)
        XCTAssertEqual(ours.metadata, theirs.metadata)
        for name in theirs.names {
            XCTAssertEqual(ours.shape(name), theirs.shape(name), name)
            XCTAssertEqual(try ours.floats(name), try theirs.floats(name), name)
        }
        let a = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))) as! NSDictionary
        let b = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: committed + "/config.json"))) as! NSDictionary
        XCTAssertEqual(a, b, "config.json keys and values")
        // Byte-for-byte, too: the writer is deterministic.
        XCTAssertEqual(FileManager.default.contents(atPath: dir + "/model.safetensors"),
                       FileManager.default.contents(atPath: committed + "/model.safetensors"))
    }

    func testTransformersOutputsOnOurCheckpoint() throws {
        let f = Fixture(Paths.resource("hf-interop/videobert-tiny-hf.json"))
        XCTAssertEqual(f.strings("missing_keys"), [], "transformers reported missing keys")
        XCTAssertEqual(f.strings("unexpected_keys"), [], "transformers reported unexpected keys")
        XCTAssertEqual(f.strings("load_warnings"), [], "transformers warned while loading")
        let model = try BertForPreTraining.load(from: Paths.resource("videobert-tiny"), maxBatch: 2, maxSeq: 20)
        let (B, T) = (f.int("B"), f.int("T"))
        let encoded = model.encode(inputIDs: f.int32s("input_ids"), tokenTypeIDs: f.int32s("token_type_ids"),
                                   attentionMask: f.floats("attention_mask"), B: B, T: T)
        checkValues(encoded.hidden, f.doubles("last_hidden_state"), "last hidden states vs transformers", atol: 1e-4, rtol: 1e-4)
        checkValues(model.predictionLogits(encoded, rows: f.int32s("rows")), f.doubles("prediction_logits_at_rows"),
                    "prediction logits vs transformers", atol: 1e-4, rtol: 1e-4)
        checkValues(model.alignmentScores(encoded), f.doubles("aligned_probability"), "P(aligned) vs transformers", atol: 1e-4, rtol: 1e-4)
    }

    func testMiniLMHiddenStatesEqualTransformers() throws {
        let folder = (Paths.repository as NSString).appendingPathComponent("models/minilm-l6-h384-uncased")
        guard FileManager.default.fileExists(atPath: folder + "/model.safetensors") else {
            XCTFail("\(folder) is missing: run tools/setup (it installs the small pretrained BERT)")
            return
        }
        let ids = try NPY.read(Paths.resource("hf-interop/minilm-input_ids.npy"))
        let types = try NPY.read(Paths.resource("hf-interop/minilm-token_type_ids.npy")).integers(Int32.self)
        let mask = try NPY.read(Paths.resource("hf-interop/minilm-attention_mask.npy")).floats()
        let expected = try NPY.read(Paths.resource("hf-interop/minilm-last_hidden_state.npy"))
        let (B, T) = (ids.shape[0], ids.shape[1])
        let model = try BertForPreTraining.load(from: folder, maxBatch: B, maxSeq: T)
        let report = try XCTUnwrap(model.loadReport)
        XCTAssertEqual(Set(report.initialized), Set(model.store.slots.map(\.name).filter { $0.hasPrefix("cls.") }),
                       "a BertModel checkpoint has the encoder and pooler, not the pretraining heads")
        XCTAssertEqual(report.ignored, ["embeddings.position_ids"])
        let hidden = model.encode(inputIDs: try ids.integers(Int32.self), tokenTypeIDs: types, attentionMask: mask, B: B, T: T).hidden
        XCTAssertEqual(expected.shape, [B, T, 384])
        checkValues(hidden, try expected.floats().map(Double.init), "MiniLM last hidden states vs transformers.BertModel",
                    atol: 1e-4, rtol: 1e-4)
    }
}
