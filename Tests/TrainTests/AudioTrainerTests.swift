import Foundation
import XCTest
import Model
import Recipe
import Tensor
@testable import Tokenize
@testable import Train
import TestSupport

/// A synthetic corpus with audio words (as `makeSyntheticCorpus`): every clip of video k has
/// audio word k, so the audio tells the video; `[unused1]` at id 2.
func makeSyntheticAudioCorpus(videos: Int = 6, segments: Int = 8, textVocab: Int = 2000, visualWords: Int = 100) throws -> TokenizedCorpus {
    let dir = syntheticCorporaRoot + "/synthaudio-\(UUID().uuidString)"
    let builder = try CorpusBuilder(dir: dir, featureDim: nil, frameShape: nil, audioWords: true)
    for k in 0..<videos {
        var segs: [AlignedSegment] = []
        var words: [Int32] = []
        var times: [(start: Double, end: Double)] = []
        for s in 0..<segments {
            let clips = 2 + s % 3
            let begin = words.count
            for j in 0..<clips { words.append(Int32(10 * k + (s + j) % 10)); times.append((Double(words.count), Double(words.count + 1))) }
            let text: [Int32] = s == 0 ? [] : (0..<(3 + s)).map { Int32(1000 + 10 * k + $0 % 10) }
            segs.append(AlignedSegment(start: Double(begin), end: Double(words.count), textIDs: text,
                                       clipBegin: s == 1 ? words.count : begin, clipEnd: words.count))
        }
        try builder.append(TokenizedVideo(id: "v\(k)", split: k < 4 ? "train" : "val", source: nil, duration: Double(words.count),
                                          clipWords: words, clipTimes: times, segments: segs,
                                          audioWords: [Int32](repeating: Int32(k), count: words.count)))
    }
    let level0: [Float] = (0..<10).flatMap { i -> [Float] in [Float(i), 0, 0, 0] }
    let level1: [Float] = (0..<100).flatMap { w -> [Float] in [Float(w / 10), Float(w % 10) * 0.1, 0, 0] }
    try VisualVocabulary(branching: 10, depth: 2, dim: 4, levels: [level0, level1]).save(to: dir + "/vocab")
    let audio0: [Float] = (0..<8).flatMap { i -> [Float] in [Float(i), 1] }
    try VisualVocabulary(branching: 8, depth: 1, dim: 2, levels: [audio0]).save(to: dir + "/audio_vocab")
    var tokens = (0..<textVocab).map { "w\($0)" }
    tokens[0] = "[PAD]"; tokens[1] = "[unused0]"; tokens[2] = "[unused1]"
    tokens[100] = "[UNK]"; tokens[101] = "[CLS]"; tokens[102] = "[SEP]"; tokens[103] = "[MASK]"
    try (tokens.joined(separator: "\n") + "\n").write(toFile: dir + "/text_vocab.txt", atomically: true, encoding: .utf8)
    _ = try builder.finish(textVocab: .init(file: "text_vocab.txt", size: textVocab, cased: false,
                                            fingerprint: try CorpusBuilder.fingerprint(of: dir + "/text_vocab.txt")),
                           visualVocab: .init(folder: "vocab", words: visualWords, branching: 10, depth: 2, dim: 4),
                           clipSeconds: 1, fps: 1, featureSource: "builtin", featureDim: 4, failures: 0,
                           audioVocab: .init(folder: "audio_vocab", words: 8, branching: 8, depth: 1, dim: 2))
    return try TokenizedCorpus(path: dir)
}

final class AudioTrainerTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "audio-trainer-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func recipe(_ corpus: TokenizedCorpus, out: String, steps: Int = 20) -> PretrainRecipe {
        var r = PretrainRecipe()
        r.corpus = corpus.path
        r.out = out
        r.model.hiddenSize = 16; r.model.numLayers = 2; r.model.numHeads = 2; r.model.intermediateSize = 32
        r.model.maxPositions = 64; r.model.modalities = ["text", "video", "audio"]
        r.data.maxTextTokens = 12; r.data.maxVideoTokens = 12; r.data.maxAudioTokens = 12
        r.train.batchSize = 8; r.train.steps = steps; r.train.lr = 3e-3; r.train.warmupSteps = 3
        r.eval.every = 10; r.eval.batches = 2
        r.checkpoint.every = 5; r.checkpoint.keep = 2
        r.logEvery = 5
        return r
    }

    /// `[CLS] text [>] video [>>] audio [SEP]` with token types 0/1/2; the audio words are those of
    /// the same clips; negatives replace either the video or (with audio) the audio; audio rows
    /// are masked and their targets are the true audio words.
    func testSequenceLayoutAndAudioNegatives() throws {
        let corpus = try makeSyntheticAudioCorpus()
        var s = ExampleSettings()
        s.maskProb = 0
        s.textVideo = 1; s.textOnly = 0; s.videoOnly = 0
        let sampler = try ExampleSampler(corpus: corpus, split: "train", settings: s, special: testSpecial, seed: 3, audioSeparator: 2)
        let text = 2000, visual = 100
        var audioNegatives = 0, videoNegatives = 0, positives = 0
        for _ in 0..<4 {
            let b = sampler.nextBatch(32)
            for i in 0..<b.B {
                let row = Array(b.inputIDs[(i * b.T)..<((i + 1) * b.T)]), types = Array(b.tokenTypeIDs[(i * b.T)..<((i + 1) * b.T)])
                let n = Int(b.attentionMask[(i * b.T)..<((i + 1) * b.T)].reduce(0, +))
                guard let v = row.firstIndex(of: testSpecial.videoSeparator), let a = row.firstIndex(of: 2) else {
                    XCTFail("no [>] or [>>] in \(row)"); continue
                }
                XCTAssertEqual(row[0], testSpecial.cls); XCTAssertEqual(row[n - 1], testSpecial.sep)
                XCTAssertTrue(row[1..<v].allSatisfy { $0 >= 1000 && $0 < text }); XCTAssertTrue(types[0...v].allSatisfy { $0 == 0 })
                XCTAssertTrue(row[(v + 1)..<a].allSatisfy { $0 >= text && $0 < text + visual })
                XCTAssertTrue(types[(v + 1)...a].allSatisfy { $0 == 1 })
                XCTAssertTrue(row[(a + 1)..<(n - 1)].allSatisfy { $0 >= text + visual && $0 < text + visual + 8 })
                XCTAssertTrue(types[(a + 1)..<n].allSatisfy { $0 == 2 })
                let textVideo = (Int(row[1]) - 1000) / 10, videoVideo = (Int(row[v + 1]) - text) / 10
                let audioVideo = Int(row[a + 1]) - text - visual
                if b.alignLabels[i] == 1 {
                    positives += 1
                    XCTAssertEqual(textVideo, videoVideo); XCTAssertEqual(textVideo, audioVideo)
                    XCTAssertEqual(a - v - 1, n - 1 - a - 1, "one audio word per clip, as the visual words")
                } else if audioVideo != textVideo {
                    audioNegatives += 1
                    XCTAssertEqual(videoVideo, textVideo, "an audio negative keeps the video")
                } else {
                    videoNegatives += 1
                    XCTAssertNotEqual(videoVideo, textVideo)
                }
            }
        }
        XCTAssertGreaterThan(positives, 30); XCTAssertGreaterThan(audioNegatives, 15); XCTAssertGreaterThan(videoNegatives, 15)

        s.maskProb = 0.5
        let masked = try ExampleSampler(corpus: corpus, split: "train", settings: s, special: testSpecial, seed: 3, audioSeparator: 2)
        let b = masked.nextBatch(16)
        XCTAssertFalse(b.audioRows.isEmpty)
        for (r, t) in zip(b.audioRows, b.audioTargets) {
            XCTAssertEqual(b.tokenTypeIDs[Int(r)], 2)
            XCTAssertTrue((0..<8).contains(t))
        }
        // Without audio the same corpus gives the batches it always gave (no audio words drawn).
        let plain = try ExampleSampler(corpus: corpus, split: "train", settings: s, special: testSpecial, seed: 3)
        let p = plain.nextBatch(16)
        XCTAssertTrue(p.audioRows.isEmpty)
        XCTAssertFalse(p.inputIDs.contains { $0 >= Int32(text + visual) })
        XCTAssertFalse(p.tokenTypeIDs.contains(2))
    }

    /// A toy run with audio lowers the MAM loss (each video's clips share one audio word, so the
    /// text and video tell it), checkpoints hold the audio vocabulary, and resume is exact.
    func testToyRunLowersMAMLossAndResumeIsExact() throws {
        let corpus = try makeSyntheticAudioCorpus()
        var r = recipe(corpus, out: dir + "/run", steps: 60)
        r.eval.every = 20
        r.eval.split = "train"
        let trainer = try Trainer(recipe: r, resume: false)
        trainer.showProgress = false
        let first = try trainer.evaluate()
        let summary = try trainer.run()
        XCTAssertLessThan(summary.eval["mam_loss"]!, first["mam_loss"]! - 0.5, "MAM loss \(first["mam_loss"]!) → \(summary.eval["mam_loss"]!)")
        print("  MAM on train: loss \(first["mam_loss"]!) → \(summary.eval["mam_loss"]!), top-1 \(summary.eval["mam_top1"] ?? -1), top-5 \(summary.eval["mam_top5"] ?? -1) (chance 0.125, 0.625; log 8 = 2.08)")
        XCTAssertGreaterThan(summary.eval["mam_top5"] ?? 0, 0.8, "chance is 0.625")
        let ckpt = summary.checkpoint
        XCTAssertTrue(FileManager.default.fileExists(atPath: ckpt + "/audio_vocab/vocab.json"))
        let config = try BertConfig.load(from: ckpt + "/config.json")
        XCTAssertEqual(config.audioWords, 8); XCTAssertEqual(config.typeVocabSize, 3); XCTAssertEqual(config.vocabSize, 2108)
        let metrics = try MetricsLog.read(dir + "/run/metrics.jsonl")
        XCTAssertNotNil(metrics[0]["mam_loss"])

        func files(_ c: String) throws -> [String: Data] {
            var out: [String: Data] = [:]
            for name in ["model.safetensors", "optimizer.safetensors", "trainer_state.json", "config.json"] {
                out[name] = try Data(contentsOf: URL(fileURLWithPath: c + "/" + name))
            }
            return out
        }
        let a = try Trainer(recipe: recipe(corpus, out: dir + "/a"), resume: false)
        a.showProgress = false
        let fa = try files(try a.run().checkpoint)
        let c1 = try Trainer(recipe: recipe(corpus, out: dir + "/c"), resume: false)
        c1.showProgress = false
        c1.stopAtStep = 7
        XCTAssertTrue(try c1.run().stoppedEarly)
        let c2 = try Trainer(recipe: recipe(corpus, out: dir + "/c"), resume: true)
        c2.showProgress = false
        let fc = try files(try c2.run().checkpoint)
        for k in fa.keys.sorted() { XCTAssertEqual(fc[k], fa[k], "resumed run ends with the same bytes: \(k)") }
    }

    func testRefusalsNameTheCorpusAndTheKey() throws {
        let plain = try makeSyntheticCorpus()
        XCTAssertThrowsError(try Trainer(recipe: recipe(plain, out: dir + "/x"), resume: false)) { e in
            XCTAssertTrue("\(e)".contains(plain.path) && "\(e)".contains("audio.enabled"), "\(e)")
        }
        var r = recipe(plain, out: dir + "/y")
        r.model.modalities = ["text", "audio"]
        XCTAssertEqual(r.problem(), "model.modalities must be [text, video] or [text, video, audio], not [text, audio]")
        r.model.modalities = ["text", "video", "audio"]
        r.model.maxPositions = 30
        XCTAssertEqual(r.problem(), "data.max_text_tokens + data.max_video_tokens + data.max_audio_tokens + 4 exceeds model.max_positions")
        XCTAssertThrowsError(try RecipeLoader.load(PretrainRecipe.self, yaml: "train:\n  mam_weight: -1\n", name: "r.yaml")) { e in
            XCTAssertTrue("\(e)".contains("mam_weight"), "\(e)")
        }
    }

    /// A recipe without audio has the resume fingerprint it had before the audio keys existed
    /// (cc47bc861590c587: trainer_state.json of a run of Recipes/demo.yaml with these settings,
    /// written by the binary of commit e49051e), so runs started then still resume.
    func testFingerprintWithoutAudioIsThePreAudioOne() throws {
        let r = try RecipeLoader.load(PretrainRecipe.self, file: Repository.path("Recipes/demo.yaml"),
                                      overrides: ["corpus=tokens", "out=run", "model.hidden_size=32", "model.intermediate_size=64",
                                                  "model.num_layers=1", "train.batch_size=4", "train.steps=6"])
        XCTAssertEqual(Trainer.fingerprint(r), "cc47bc861590c587")
        var audio = r
        audio.model.modalities = ["text", "video", "audio"]
        XCTAssertNotEqual(Trainer.fingerprint(audio), "cc47bc861590c587")
        // The audio recipe loads and names its modalities.
        let demo = try RecipeLoader.load(PretrainRecipe.self, file: Repository.path("Recipes/videobert-audio-demo.yaml"))
        XCTAssertEqual(demo.model.modalities, ["text", "video", "audio"])
        XCTAssertNil(demo.problem())
    }
}
