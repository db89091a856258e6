import Foundation
import Model
import Tensor
import XCTest
import TestSupport

/// `videobert embed` end to end: a tiny checkpoint this test writes, inputs of both kinds, the
/// output against the model run in-process, and the errors.
final class EmbedCLITests: XCTestCase {
    var folder: String!
    /// vocab.txt of the tiny checkpoint: specials, then a few words.
    let vocabulary = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "crack", "the", "eggs", "whisk", "##ed", "pan", "hot", "a"]
    let visualWords = 6, hidden = 16

    override func setUpWithError() throws {
        folder = NSTemporaryDirectory() + "/videobert-embed-cli-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() {
        if let folder { try? FileManager.default.removeItem(atPath: folder) }
    }

    func path(_ name: String) -> String { folder + "/" + name }

    /// Writes a checkpoint folder (config.json, model.safetensors, vocab.txt) and returns its model.
    @discardableResult
    func writeCheckpoint(_ name: String = "ckpt") throws -> BertForPreTraining {
        var config = BertConfig(textVocabSize: vocabulary.count, visualWords: visualWords, hiddenSize: hidden, numHiddenLayers: 2,
                                numAttentionHeads: 2, intermediateSize: 24, maxPositionEmbeddings: 12)
        config.initializerRange = 0.5     // outputs that differ clearly from position to position
        let model = try BertForPreTraining(config: config, maxBatch: 1, maxSeq: 12, training: false)
        model.initializeWeights(seed: 7)
        try model.save(to: path(name))
        try (vocabulary.joined(separator: "\n") + "\n").write(toFile: path(name + "/vocab.txt"), atomically: true, encoding: .utf8)
        return model
    }

    func id(_ token: String) -> Int32 { Int32(vocabulary.firstIndex(of: token)!) }

    func testHelpHasExample() throws {
        let r = try CLI.run(["embed", "--help"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("Example:"), r.stdout)
        XCTAssertTrue(r.stdout.contains("--checkpoint") && r.stdout.contains("--input") && r.stdout.contains("--out"), r.stdout)
    }

    func testEmbedsBothInputKindsAsTheModelDoes() throws {
        let model = try writeCheckpoint()
        let T0 = Int32(vocabulary.count)
        try """
        {"text": "Crack the eggs", "visual": [1, 2, 5]}
        {"input_ids": [3, 9, 10, 11, 4], "token_type_ids": [0, 0, 0, 1, 1]}
        {"visual": [0, 3]}
        {"text": "whisked a pan"}
        {"input_ids": [3, 12, 4]}
        """.write(toFile: path("in.jsonl"), atomically: true, encoding: .utf8)
        let r = try CLI.run(["embed", "--checkpoint", path("ckpt"), "--input", path("in.jsonl"), "--out", path("out/h.npy"), "--batch", "2"])
        XCTAssertEqual(r.status, 0, r.stderr)
        // The sequences the trainer would build (Sources/Train/Examples.swift).
        let expected: [(ids: [Int32], types: [Int32])] = [
            ([id("[CLS]"), id("crack"), id("the"), id("eggs"), id("[unused0]"), T0 + 1, T0 + 2, T0 + 5, id("[SEP]")],
             [0, 0, 0, 0, 0, 1, 1, 1, 1]),
            ([3, 9, 10, 11, 4], [0, 0, 0, 1, 1]),
            ([id("[CLS]"), T0 + 0, T0 + 3, id("[SEP]")], [0, 1, 1, 1]),
            ([id("[CLS]"), id("whisk"), id("##ed"), id("a"), id("pan"), id("[SEP]")], [0, 0, 0, 0, 0, 0]),
            ([3, 12, 4], [0, 0, 0]),
        ]
        let out = try NPY.read(path("out/h.npy"))
        XCTAssertEqual(out.dtype, .float32)
        XCTAssertEqual(out.shape, [5, 9, hidden])
        let values = try out.floats()
        for (n, s) in expected.enumerated() {
            let h = model.encode(inputIDs: s.ids, tokenTypeIDs: s.types, attentionMask: nil, B: 1, T: s.ids.count).hidden
            let row = Array(values[(n * 9 * hidden)..<((n + 1) * 9 * hidden)])
            var maxDiff: Float = 0
            for i in 0..<h.count { maxDiff = max(maxDiff, abs(row[i] - h[i])) }
            XCTAssertLessThan(maxDiff, 1e-5, "line \(n + 1) differs from the in-process model (padded batch vs alone)")
            XCTAssertEqual(Array(row[h.count...]), [Float](repeating: 0, count: row.count - h.count), "line \(n + 1) zero-padded")
            XCTAssertGreaterThan(h.map(abs).max()!, 0)
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: path("out")).filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [])
    }

    /// A bare Hugging Face BertModel folder (names without `bert.`, no heads, no vocab.txt) embeds ids.
    func testPlainHuggingFaceBertModelFolder() throws {
        let model = try writeCheckpoint()
        let bare = path("bare")
        try FileManager.default.createDirectory(atPath: bare, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: path("ckpt/config.json"), toPath: bare + "/config.json")
        let file = try SafeTensors.read(path("ckpt/model.safetensors"))
        let names = file.names.filter { !$0.hasPrefix("cls.") && !$0.hasPrefix("bert.pooler.") }
        let arrays = try names.map { try file.floats($0) }
        let pointers = arrays.map { a -> UnsafeMutableBufferPointer<Float> in
            let p = UnsafeMutableBufferPointer<Float>.allocate(capacity: a.count)
            _ = p.initialize(from: a)
            return p
        }
        defer { pointers.forEach { $0.deallocate() } }
        try SafeTensors.write(names.enumerated().map { (String($1.dropFirst(5)), file.shape($1)!, UnsafeBufferPointer(pointers[$0])) },
                              to: bare + "/model.safetensors")
        try #"{"input_ids": [3, 7, 8, 4]}"#.write(toFile: path("in.jsonl"), atomically: true, encoding: .utf8)
        let r = try CLI.run(["embed", "--checkpoint", bare, "--input", path("in.jsonl"), "--out", path("h.npy")])
        XCTAssertEqual(r.status, 0, r.stderr)
        let h = model.encode(inputIDs: [3, 7, 8, 4], tokenTypeIDs: nil, attentionMask: nil, B: 1, T: 4).hidden
        let out = try NPY.read(path("h.npy"))
        XCTAssertEqual(out.shape, [1, 4, hidden])
        XCTAssertEqual(try out.floats(), h)
        // Text needs vocab.txt, which this folder lacks: the error names it and the line.
        try #"{"text": "the eggs"}"#.write(toFile: path("text.jsonl"), atomically: true, encoding: .utf8)
        let e = try CLI.run(["embed", "--checkpoint", bare, "--input", path("text.jsonl"), "--out", path("t.npy")])
        XCTAssertEqual(e.status, 1)
        XCTAssertTrue(e.stderr.contains("text.jsonl: line 1: text needs the checkpoint's vocabulary") && e.stderr.contains("vocab.txt"), e.stderr)
    }

    /// models/minilm-l6-h384-uncased (tools/setup), when installed: text lines through its vocab.txt.
    func testMiniLMFolderWhenInstalled() throws {
        let minilm = Repository.miniLM
        try XCTSkipUnless(FileManager.default.fileExists(atPath: minilm + "/model.safetensors"), "run tools/setup to install \(minilm)")
        try """
        {"text": "Slice the onions thinly."}
        {"input_ids": [101, 7592, 102]}
        """.write(toFile: path("in.jsonl"), atomically: true, encoding: .utf8)
        let r = try CLI.run(["embed", "--checkpoint", minilm, "--input", path("in.jsonl"), "--out", path("h.npy")])
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = try NPY.read(path("h.npy"))
        XCTAssertEqual(out.shape, [2, 8, 384])   // [CLS] slice the onions thin ##ly . [SEP]
        let v = try out.floats()
        XCTAssertEqual(Array(v[(8 * 384 + 3 * 384)..<(16 * 384)]), [Float](repeating: 0, count: 5 * 384), "zero padding")
    }

    func testErrorsNameTheFileAndLine() throws {
        try writeCheckpoint()
        let cases: [(String, String)] = [
            ("{\"input_ids\": [3, 4]}\n{\"input_ids\": [3, 4\n", "line 2: bad JSON"),
            ("{\"input_ids\": [3, 99, 4]}\n", "line 1: input id 99 is outside the vocabulary 0..<20"),
            ("{\"visual\": [6]}\n", "line 1: visual word 6 is outside 0..<6"),
            ("{\"input_ids\": [3, 4], \"token_type_ids\": [0]}\n", "line 1: token_type_ids has 1 values, input_ids 2"),
            ("{\"input_ids\": [3, 4]}\n{\"text\": \"the\", \"extra\": 1}\n", "line 2: unknown key 'extra'"),
            ("{\"input_ids\": [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 3, 4]}\n", "line 1: 13 tokens, longer than max_position_embeddings 12"),
            ("[1, 2]\n", "line 1: not a JSON object"),
            ("{\"input_ids\": [3, 1.5]}\n", "line 1: 'input_ids' must be an array of integers"),
        ]
        for (input, message) in cases {
            try input.write(toFile: path("in.jsonl"), atomically: true, encoding: .utf8)
            let r = try CLI.run(["embed", "--checkpoint", path("ckpt"), "--input", path("in.jsonl"), "--out", path("h.npy")])
            XCTAssertEqual(r.status, 1, input)
            XCTAssertTrue(r.stderr.hasPrefix("error: \(path("in.jsonl")): \(message)"), "\(input) → \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: path("h.npy")), "no output after an error")
        }
        let r = try CLI.run(["embed", "--checkpoint", path("nothing"), "--input", path("in.jsonl"), "--out", path("h.npy")])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains(path("nothing") + ": no such checkpoint folder"), r.stderr)
        // A folder that holds no checkpoint is named as such.
        try FileManager.default.createDirectory(atPath: path("empty"), withIntermediateDirectories: true)
        let empty = try CLI.run(["embed", "--checkpoint", path("empty"), "--input", path("in.jsonl"), "--out", path("h.npy")])
        XCTAssertEqual(empty.status, 1)
        XCTAssertTrue(empty.stderr.contains(path("empty") + ": is not a checkpoint (no config.json or cbt_config.json)"), empty.stderr)
    }
}
