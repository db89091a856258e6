import Foundation
import XCTest
import Tensor
@testable import Model

/// `Checkpoint`: the kinds told apart by the files a folder holds, the file table, the bounds on
/// sizes read from config files, and the vocabulary check.
final class CheckpointTests: XCTestCase {
    var dir = ""
    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "ckpt-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func folder(_ name: String) throws -> String {
        let f = (dir as NSString).appendingPathComponent(name)
        try FileManager.default.createDirectory(atPath: f, withIntermediateDirectories: true)
        return f
    }
    func bert(visualWords: Int) -> BertConfig {
        BertConfig(textVocabSize: 20, visualWords: visualWords, hiddenSize: 8, numHiddenLayers: 1, numAttentionHeads: 2,
                   intermediateSize: 16, maxPositionEmbeddings: 16)
    }
    let cbtConfig = CBTConfig(frontEnd: "features", projection: FeatureProjectionConfig(inputSize: 6, outputSize: 8, hiddenSize: 0),
                              visualHiddenSize: 8, visualLayers: 1, visualHeads: 2, visualIntermediateSize: 16, maxClips: 4,
                              textHiddenSize: 8, crossHiddenSize: 8, crossLayers: 1, crossHeads: 2, crossIntermediateSize: 16, embeddingSize: 4)

    func testKindsFromTheFilesAFolderHolds() throws {
        let plain = try folder("bert")
        try bert(visualWords: 0).write(to: plain + "/config.json")
        XCTAssertEqual(try Checkpoint(folder: plain).kind, .bert)

        let vb = try folder("videobert")
        try bert(visualWords: 9).write(to: vb + "/config.json")
        XCTAssertEqual(try Checkpoint(folder: vb).kind, .videobert)
        XCTAssertEqual(try Checkpoint(folder: vb).bertFolder, vb)
        XCTAssertNil(try Checkpoint(folder: vb).cbtFolder)

        let cap = try folder("captioner")
        try bert(visualWords: 9).write(to: cap + "/config.json")
        try "init: \(vb)\ncorpus: c\n".write(toFile: cap + "/recipe.yaml", atomically: true, encoding: .utf8)
        try JSON.write(["step": 7], to: cap + "/trainer_state.json")
        let opened = try Checkpoint(folder: cap)
        XCTAssertEqual(opened.kind, .videobertCaptioner)
        XCTAssertEqual(opened.initFrom, vb)
        XCTAssertEqual(opened.step, 7)

        let cbt = try folder("cbt")
        try JSON.write(cbtConfig, to: cbt + "/cbt_config.json")
        try FileManager.default.createDirectory(atPath: cbt + "/text", withIntermediateDirectories: true)
        try bert(visualWords: 0).write(to: cbt + "/text/config.json")
        let c = try Checkpoint(folder: cbt)
        XCTAssertEqual(c.kind, .cbt)
        XCTAssertEqual(c.bertFolder, cbt + "/text")
        XCTAssertEqual(c.cbtFolder, cbt)
        XCTAssertEqual(c.cbt, cbtConfig)
        XCTAssertEqual(c.bert?.hiddenSize, 8)

        let cbtCap = try folder("cbt-captioner")
        try bert(visualWords: 0).write(to: cbtCap + "/config.json")
        try ClipProjection(inputSize: 8, outputSize: 8).save(to: cbtCap)
        XCTAssertEqual(try Checkpoint(folder: cbtCap).kind, .cbtCaptioner)
        XCTAssertNil(try Checkpoint(folder: cbtCap).cbt, "no cbt/ folder")
        XCTAssertEqual(try Checkpoint(folder: cbtCap).cbtFolder, cbtCap + "/cbt")

        XCTAssertTrue(Checkpoint.isCheckpoint(cbt) && Checkpoint.isCheckpoint(vb))
        let empty = try folder("empty")
        XCTAssertFalse(Checkpoint.isCheckpoint(empty))
        XCTAssertThrowsError(try Checkpoint(folder: empty)) { XCTAssertTrue("\($0)".contains(empty) && "\($0)".contains("not a checkpoint"), "\($0)") }
        XCTAssertThrowsError(try Checkpoint(folder: dir + "/nowhere")) { XCTAssertTrue("\($0)".contains("no such checkpoint folder"), "\($0)") }
    }

    /// The model files' names come from the one table.
    func testModelsNameTheirFilesFromTheTable() {
        XCTAssertEqual(BertForPreTraining.configFileName, Checkpoint.File.config.rawValue)
        XCTAssertEqual(CBTModel.configFileName, Checkpoint.File.cbtConfig.rawValue)
        XCTAssertEqual(CBTModel.textFolderName, Checkpoint.File.cbtText.rawValue)
        XCTAssertEqual(ClipProjection.fileName, Checkpoint.File.clipProjection.rawValue)
        XCTAssertEqual(Set(Checkpoint.File.allCases.map(\.rawValue)).count, Checkpoint.File.allCases.count)
    }

    /// A hostile config.json (a size of 2^40, or sizes whose product is huge) is a one-line error
    /// naming the file and the key, before anything is allocated.
    func testHostileSizesAreRefusedBeforeAllocating() throws {
        let f = try folder("hostile")
        try bert(visualWords: 0).write(to: f + "/config.json")
        var json = try String(contentsOfFile: f + "/config.json", encoding: .utf8)
        json = json.replacingOccurrences(of: "\"hidden_size\" : 8", with: "\"hidden_size\" : 1099511627776")
        XCTAssertTrue(json.contains("1099511627776"), json)
        try json.write(toFile: f + "/config.json", atomically: true, encoding: .utf8)
        for open in [{ _ = try Checkpoint(folder: f) },
                     { _ = try BertForPreTraining.load(from: f, maxBatch: 1, maxSeq: 4) }] as [() throws -> Void] {
            XCTAssertThrowsError(try open()) { e in
                let m = "\(e)"
                XCTAssertTrue(m.contains(f + "/config.json") && m.contains("hidden_size 1099511627776 is larger than the limit"), m)
                XCTAssertFalse(m.contains("\n"))
            }
        }
        // Each size within bounds, the whole too big: 4,000,000 × 16,384 word embeddings.
        var big = bert(visualWords: 0)
        big.textVocabSize = 4_000_000; big.vocabSize = 4_000_000; big.hiddenSize = 16_384; big.numAttentionHeads = 16
        try big.write(to: f + "/config.json")
        XCTAssertThrowsError(try Checkpoint(folder: f)) { XCTAssertTrue("\($0)".contains("parameters") && "\($0)".contains(f), "\($0)") }

        let g = try folder("hostile-cbt")
        var c = cbtConfig
        c.maxClips = 1 << 40
        try JSON.write(c, to: g + "/cbt_config.json")
        XCTAssertThrowsError(try Checkpoint(folder: g)) { XCTAssertTrue("\($0)".contains("max_clips 1099511627776 exceeds") && "\($0)".contains(g), "\($0)") }
        XCTAssertThrowsError(try CBTModel.loadVisual(from: g, maxBatch: 1)) { XCTAssertTrue("\($0)".contains("max_clips"), "\($0)") }
    }

    func testVocabularyCheck() throws {
        let f = try folder("vocab")
        try bert(visualWords: 9).write(to: f + "/config.json")
        try "[PAD]\n[UNK]\n".write(toFile: f + "/vocab.txt", atomically: true, encoding: .utf8)
        let corpusVisual = try folder("corpus-visual"), mine = try folder("vocab/visual_vocab")
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: corpusVisual + "/level0.npy"))
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: mine + "/level0.npy"))
        let c = try Checkpoint(folder: f)
        let right = Fingerprint.fnv1a(Array("[PAD]\n[UNK]\n".utf8))
        XCTAssertNoThrow(try c.checkVocabularies(textFingerprint: right, visualVocabFolder: corpusVisual, corpus: "C"))
        XCTAssertThrowsError(try c.checkVocabularies(textFingerprint: "0000", visualVocabFolder: corpusVisual, corpus: "C")) {
            XCTAssertTrue("\($0)".contains("its vocab.txt differs from the text vocabulary of the corpus C"), "\($0)")
        }
        try Data([1, 2, 4]).write(to: URL(fileURLWithPath: mine + "/level0.npy"))
        XCTAssertThrowsError(try c.checkVocabularies(textFingerprint: right, visualVocabFolder: corpusVisual, corpus: "C")) {
            XCTAssertTrue("\($0)".contains("visual vocabulary (level0.npy) differs"), "\($0)")
        }
        XCTAssertNoThrow(try c.checkVocabularies(textFingerprint: right, visualVocabFolder: nil, corpus: "C"))
    }
}
