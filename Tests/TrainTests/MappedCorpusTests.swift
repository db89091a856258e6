import Foundation
import XCTest
import Model
import Recipe
import Tensor
@testable import Tokenize
@testable import Train

/// Memory-mapped corpora (docs/ARCHITECTURE.md §3): every array of a corpus is mapped, not read;
/// `store.features_dtype: float16` halves clip_features.npy and trains like float32; damaged
/// mapped arrays are one-line errors naming the file.
final class MappedCorpusTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "mappedcorpus-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// The mapped columns hold exactly what the .npy files hold, and are backed by the files.
    func testMappedColumnsEqualTheFiles() throws {
        let corpus = try makeSyntheticCBTCorpus()
        func npy(_ name: String) throws -> NPYArray { try NPY.read(corpus.path + "/" + name + ".npy") }
        XCTAssertEqual(Array(corpus.textIDs), try npy("text_ids").values(Int32.self))
        XCTAssertEqual(Array(corpus.textOffsets), try npy("text_offsets").values(Int64.self))
        XCTAssertEqual(Array(corpus.visualIDs), try npy("visual_ids").values(Int32.self))
        XCTAssertEqual(Array(corpus.segmentClips), try npy("segment_clips").values(Int64.self))
        XCTAssertEqual(Array(corpus.clipTimes), try npy("clip_times").values(Float.self))
        XCTAssertEqual(Array(corpus.clipVideo), try npy("clip_video").values(Int32.self))
        XCTAssertNotNil(corpus.clipWords.file, "clip_words is mapped from its file")
        let ids = try npy("text_ids").values(Int32.self), offsets = try npy("text_offsets").values(Int64.self)
        for s in 0..<corpus.segmentCount {
            XCTAssertEqual(Array(corpus.text(of: s)), Array(ids[Int(offsets[s])..<Int(offsets[s + 1])]))
        }
        // The stored inputs of any clips, in any order, are the files' rows.
        let clips = [5, 0, 17, 3, 3]
        guard case .features = try ClipInputs.load(corpus: corpus, source: "features") else { return XCTFail("features") }
        let features = try npy("clip_features").floats(), frames = try npy("clip_frames").values(UInt8.self)
        XCTAssertEqual(try ClipInputs.load(corpus: corpus, source: "features").rows(clips).features, clips.flatMap { features[($0 * 6)..<($0 * 6 + 6)] })
        let per = 2 * 8 * 8 * 3
        XCTAssertEqual(try ClipInputs.load(corpus: corpus, source: "frames").rows(clips).frames, clips.flatMap { frames[($0 * per)..<($0 * per + per)] })
    }

    /// Frames centred per video batch by batch are the frames centred whole (`centerPerVideo`).
    func testCentredFramesPerBatchEqualCentringTheWholeArray() throws {
        let corpus = try makeSyntheticCBTCorpus()
        var whole = try NPY.read(corpus.path + "/clip_frames.npy").values(UInt8.self)
        centerPerVideo(&whole, corpus: corpus, framesPerClip: 2, size: 8)
        let inputs = try ClipInputs.load(corpus: corpus, source: "frames", centerFrames: true)
        let clips = Array((0..<corpus.clipCount).reversed())
        let per = 2 * 8 * 8 * 3
        XCTAssertEqual(inputs.rows(clips).frames, clips.flatMap { whole[($0 * per)..<($0 * per + per)] })
        XCTAssertNotEqual(inputs.rows([0]).frames, try ClipInputs.load(corpus: corpus, source: "frames").rows([0]).frames)
    }

    /// A corpus written with float16 features: clip_features.npy holds half the bytes, its rows
    /// are the float32 rows rounded to half precision, and a CBT run on it (features front-end,
    /// same seed) ends with every loss within 0.1% (relative) of the float32 run's.
    func testFloat16FeaturesTrainLikeFloat32() throws {
        let c32 = try makeSyntheticCBTCorpus()
        let c16 = try makeSyntheticCBTCorpus(featureDType: .float16)
        let h32 = try NPY.readHeader(c32.path + "/clip_features.npy"), h16 = try NPY.readHeader(c16.path + "/clip_features.npy")
        XCTAssertEqual(h16.dtype, .float16)
        XCTAssertEqual(h16.shape, h32.shape)
        XCTAssertEqual(h16.byteCount * 2, h32.byteCount)
        let index16 = try String(contentsOfFile: c16.path + "/index.json", encoding: .utf8)
        XCTAssertTrue(index16.contains("float16 [clips, feature_dim]"), "index.json's arrays say float16")
        let all = Array(0..<c32.clipCount)
        let f32 = try ClipInputs.load(corpus: c32, source: "features").rows(all).features
        let f16 = try ClipInputs.load(corpus: c16, source: "features").rows(all).features
        XCTAssertEqual(f16, f32.map { Float(Float16($0)) })
        for (a, b) in zip(f16, f32) { XCTAssertEqual(a, b, accuracy: abs(b) * 0x1p-11 + 1e-7) }

        func run(_ corpus: TokenizedCorpus, _ out: String) throws -> [String: Double] {
            // CBTTrainerTests.recipe's sizes, features front-end.
            var r = try RecipeLoader.load(CBTRecipe.self, file: ShippedRecipesTests.recipes + "/cbt-tiny.yaml")
            r.corpus = corpus.path
            r.out = dir + "/" + out
            r.frontend.source = "features"
            r.text.hiddenSize = 16; r.text.intermediateSize = 32
            r.visual.hiddenSize = 16; r.visual.intermediateSize = 32
            r.cross.hiddenSize = 16; r.cross.intermediateSize = 32
            r.model.embeddingSize = 16
            r.data.maxTextTokens = 12
            r.data.nceNegatives = 6
            r.train.batchSize = 4; r.train.steps = 16; r.train.lr = 5e-3; r.train.warmupSteps = 2
            r.eval.every = 0; r.eval.batches = 6
            r.checkpoint.every = 8; r.checkpoint.keep = 1
            r.logEvery = 8
            r.frontend.mlpHidden = 8
            r.model.dropout = 0; r.model.attentionDropout = 0
            r.eval.split = "train"
            let trainer = try CBTTrainer(recipe: r, resume: false)
            trainer.showProgress = false
            _ = try trainer.run()
            return try trainer.evaluate()
        }
        let e32 = try run(c32, "r32"), e16 = try run(c16, "r16")
        for key in ["loss", "mlm_loss", "nce_loss", "cross_loss", "pooled_loss"] {
            let (a, b) = (e16[key]!, e32[key]!)
            print("  fp16 vs fp32 \(key): \(a) vs \(b)")
            XCTAssertEqual(a, b, accuracy: 0.001 * abs(b), key)
        }
    }

    /// `store.features_dtype` is float32 (the default) or float16, and nothing else.
    func testFeaturesDTypeSetting() throws {
        func problem(_ sets: [String]) throws -> String? {
            try RecipeLoader.load(TokenizeRecipe.self, yaml: "", name: "r.yaml", overrides: sets).problem()
        }
        XCTAssertEqual(try RecipeLoader.load(TokenizeRecipe.self, yaml: "", name: "r.yaml").store.featuresDType, "float32")
        XCTAssertNil(try problem(["store.features_dtype=float16"]))
        XCTAssertEqual(try problem(["store.features_dtype=bfloat16"]), "store.features_dtype must be float32 or float16")
    }

    /// Truncated or wrongly typed mapped arrays are one-line errors naming the file, at open
    /// (sizes are checked before mmap: never a SIGBUS during training).
    func testDamagedMappedArraysAreNamed() throws {
        let corpus = try makeSyntheticCBTCorpus()
        func copy(_ name: String) throws -> String {
            let d = dir + "/" + name
            try FileManager.default.copyItem(atPath: corpus.path, toPath: d)
            return d
        }
        func truncate(_ path: String, by n: Int) throws {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            try bytes.prefix(bytes.count - n).write(to: URL(fileURLWithPath: path))
        }
        func assertOneLine(_ file: String, _ needle: String, _ body: () throws -> Void, line: UInt = #line) {
            XCTAssertThrowsError(try body(), line: line) { e in
                let s = "\(e)"
                XCTAssertTrue(s.hasPrefix(file + ": "), s, line: line)
                XCTAssertTrue(s.contains(needle), s, line: line)
                XCTAssertFalse(s.contains("\n"), s, line: line)
            }
        }
        let a = try copy("a")
        try truncate(a + "/clip_words.npy", by: 4)
        assertOneLine(a + "/clip_words.npy", "truncated .npy") { _ = try TokenizedCorpus(path: a) }
        let b = try copy("b")
        try truncate(b + "/clip_features.npy", by: 1)
        let opened = try TokenizedCorpus(path: b)
        assertOneLine(b + "/clip_features.npy", "truncated .npy") { _ = try ClipInputs.load(corpus: opened, source: "features") }
        try truncate(b + "/clip_frames.npy", by: 4096)
        assertOneLine(b + "/clip_frames.npy", "truncated .npy") { _ = try ClipInputs.load(corpus: opened, source: "frames") }
        let c = try copy("c")
        let rows = corpus.clipCount
        try NPY.write([Double](repeating: 0, count: rows * 6), shape: [rows, 6], to: c + "/clip_features.npy")
        try NPY.write([Int64](repeating: 0, count: rows), shape: [rows], to: c + "/clip_video.npy")
        assertOneLine(c + "/clip_video.npy", "expected <i4") { _ = try TokenizedCorpus(path: c) }
        try NPY.write([Int32](repeating: 0, count: rows), shape: [rows], to: c + "/clip_video.npy")
        let reopened = try TokenizedCorpus(path: c)
        assertOneLine(c + "/clip_features.npy", "float32 or float16") { _ = try ClipInputs.load(corpus: reopened, source: "features") }
    }
}
