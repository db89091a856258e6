import Foundation
import XCTest
import Model
import Recipe
import Tasks
import Tensor
@testable import Tokenize
@testable import Train

/// A synthetic corpus with 6-d clip features, as `makeSyntheticCBTCorpus` (video k's words
/// 1000 + 10k + j, its clips' features near a point of its own), and audio: `words` gives every
/// clip of video k the audio word k % 4 (the video's sound), `logmel` also a 4 × 6 spectrogram
/// whose mel profile is the video's (plus noise), `none` no audio.
func makeSyntheticFusionCorpus(audio: String, videos: Int = 6, segments: Int = 6) throws -> TokenizedCorpus {
    let dir = syntheticCorporaRoot + "/fusioncorpus-\(UUID().uuidString)"
    let dim = 6, melFrames = 4, mels = 6
    let builder = try CorpusBuilder(dir: dir, featureDim: dim, frameShape: nil, audioWords: audio != "none",
                                    audioShape: audio == "logmel" ? [melFrames, mels] : nil)
    var rng = SeededRNG(seed: 7)
    for k in 0..<videos {
        var segs: [AlignedSegment] = [], words: [Int32] = [], times: [(start: Double, end: Double)] = []
        var features: [Float] = [], audioWords: [Int32] = [], spectra: [Float] = []
        let colour = (0..<dim).map { _ in rng.nextFloat() * 2 - 1 }
        let profile = (0..<mels).map { _ in rng.nextFloat() * 4 - 2 }
        for s in 0..<segments {
            let clips = 2 + s % 3
            let begin = words.count
            for j in 0..<clips {
                words.append(Int32(10 * k + (s + j) % 10))
                times.append((Double(words.count), Double(words.count + 1)))
                for d in 0..<dim { features.append(colour[d] + 0.3 * rng.nextGaussian()) }
                audioWords.append(Int32(k % 4))
                for _ in 0..<melFrames { for m in 0..<mels { spectra.append(profile[m] + 0.3 * rng.nextGaussian()) } }
            }
            let text: [Int32] = (0..<(3 + s % 4)).map { Int32(1000 + 10 * k + ($0 + s) % 10) }
            segs.append(AlignedSegment(start: Double(begin), end: Double(words.count), textIDs: text, clipBegin: begin, clipEnd: words.count))
        }
        try builder.append(TokenizedVideo(id: "v\(k)", split: k < 4 ? "train" : "val", source: nil, duration: Double(words.count),
                                          clipWords: words, clipTimes: times, segments: segs, features: features,
                                          audioWords: audio != "none" ? audioWords : nil, audio: audio == "logmel" ? spectra : nil))
    }
    let level0: [Float] = (0..<10).flatMap { i -> [Float] in [Float(i), 0, 0, 0] }
    let level1: [Float] = (0..<100).flatMap { w -> [Float] in [Float(w / 10), Float(w % 10) * 0.1, 0, 0] }
    try VisualVocabulary(branching: 10, depth: 2, dim: 4, levels: [level0, level1]).save(to: dir + "/vocab")
    var audioVocab: CorpusIndex.VisualVocab?
    if audio != "none" {
        let a0: [Float] = (0..<2).flatMap { i -> [Float] in [Float(i), 0] }
        let a1: [Float] = (0..<4).flatMap { w -> [Float] in [Float(w / 2), Float(w % 2)] }
        try VisualVocabulary(branching: 2, depth: 2, dim: 2, levels: [a0, a1]).save(to: dir + "/audio_vocab")
        audioVocab = .init(folder: "audio_vocab", words: 4, branching: 2, depth: 2, dim: 2)
    }
    var tokens = (0..<2000).map { "w\($0)" }
    tokens[0] = "[PAD]"; tokens[1] = "[unused0]"; tokens[100] = "[UNK]"; tokens[101] = "[CLS]"; tokens[102] = "[SEP]"; tokens[103] = "[MASK]"
    try (tokens.joined(separator: "\n") + "\n").write(toFile: dir + "/text_vocab.txt", atomically: true, encoding: .utf8)
    _ = try builder.finish(textVocab: .init(file: "text_vocab.txt", size: 2000, cased: false,
                                            fingerprint: try CorpusBuilder.fingerprint(of: dir + "/text_vocab.txt")),
                           visualVocab: .init(folder: "vocab", words: 100, branching: 10, depth: 2, dim: 4),
                           clipSeconds: 1, fps: 1, featureSource: "builtin", featureDim: dim, failures: 0, audioVocab: audioVocab)
    return try TokenizedCorpus(path: dir)
}

final class FusionTrainerTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "fusiontrainer-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// Recipes/fusion-demo.yaml with sizes for the synthetic corpus.
    func recipe(_ corpus: TokenizedCorpus, out: String, steps: Int = 12) throws -> FusionRecipe {
        var r = try RecipeLoader.load(FusionRecipe.self, file: ShippedRecipesTests.recipes + "/fusion-demo.yaml")
        r.corpus = corpus.path
        r.out = out
        r.text.hiddenSize = 16; r.text.intermediateSize = 32
        r.audio.channels = [4, 8]; r.audio.outputSize = 8
        r.fusion.hiddenSize = 16; r.fusion.intermediateSize = 32; r.fusion.embeddingSize = 16
        r.data.maxTextTokens = 12
        r.loss.temperature = 0.1
        r.train.batchSize = 4; r.train.steps = steps; r.train.lr = 5e-3; r.train.warmupSteps = 2
        r.eval.every = 0; r.eval.batches = 4
        r.checkpoint.every = 4; r.checkpoint.keep = 2
        r.logEvery = 4
        return r
    }

    /// A short run with log-mel audio: the combinatorial loss and every term fall, the audio conv
    /// net moves, the checkpoint is a `fusion` one with the documented parts, and retrieval reads it.
    func testTinyRunLearnsWithLogMelAudio() throws {
        let corpus = try makeSyntheticFusionCorpus(audio: "logmel")
        var r = try recipe(corpus, out: dir + "/run", steps: 40)
        r.eval.split = "train"
        r.fusion.dropout = 0; r.fusion.attentionDropout = 0
        let trainer = try FusionTrainer(recipe: r, resume: false)
        trainer.showProgress = false
        XCTAssertEqual(trainer.audioSource, "logmel")
        let conv1 = Array(trainer.task.model.store.parameter("audio.conv1.weight"))
        let first = try trainer.evaluate()
        let summary = try trainer.run()
        let last = summary.eval
        print("  fusion tiny: \(first.filter { $0.key.hasSuffix("loss") }.sorted { $0.key < $1.key }) → \(last.filter { $0.key.hasSuffix("loss") }.sorted { $0.key < $1.key })")
        for key in ["loss"] + CombinatorialTerm.allCases.map({ "\($0.name)_loss" }) {
            XCTAssertLessThan(try XCTUnwrap(last[key], key), try XCTUnwrap(first[key], key), "\(key) did not fall")
        }
        for key in ["t2v_r1", "t2va_r5", "t2a_r10", "t2v_median_rank", "chance_r1", "retrieval_pairs"] { XCTAssertNotNil(last[key], key) }
        let moved = zip(conv1, trainer.task.model.store.parameter("audio.conv1.weight")).map { abs($0 - $1) }.max()!
        XCTAssertGreaterThan(moved, 1e-4, "the audio conv net did not move")
        let ckpt = summary.checkpoint
        for f in ["fusion_config.json", "model.safetensors", "text/config.json", "text/model.safetensors", "text/vocab.txt",
                  "recipe.yaml", "trainer_state.json", "optimizer.safetensors"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: ckpt + "/" + f), f)
        }
        let checkpoint = try Checkpoint(folder: ckpt)
        XCTAssertEqual(checkpoint.kind, .fusion)
        XCTAssertEqual(checkpoint.fusion?.audioSource, "logmel")
        XCTAssertTrue(try checkpoint.info().summary.hasPrefix("fusion"))
        let names = try SafeTensors.read(ckpt + "/model.safetensors").names
        for prefix in ["token.", "fusion.encoder.", "audio.conv1.", "proj."] { XCTAssertTrue(names.contains { $0.hasPrefix(prefix) }, prefix) }
        // `videobert retrieve`'s path: the checkpoint on the corpus, three targets beside chance.
        let report = try FusionRetrieval.run(checkpoint: checkpoint, corpus: try TaskCorpus(path: corpus.path), split: "train", max: 0,
                                             seed: 0, maxTextTokens: 12, batchSize: 4, showProgress: false)
        XCTAssertEqual(report.segments, 24)
        XCTAssertNotNil(report.textToVideoAudio)
        XCTAssertNotNil(report.textToAudio)
        XCTAssertEqual(report.chance.recallAt1, 1.0 / 24, accuracy: 1e-12)
        // The retrieve path and the trainer's evaluation agree (same model, same segments).
        XCTAssertEqual(report.textToVideo.recallAt5, last["t2v_r5"]!, accuracy: 1e-9)
        XCTAssertTrue(FusionRetrieval.table(report).contains("text → video+audio"))
    }

    /// Same recipe and seed → same bytes; stopped at step 5 and resumed → the same bytes as
    /// straight through (audio words, dropout on, gradient accumulation).
    func testResumeIsExact() throws {
        let corpus = try makeSyntheticFusionCorpus(audio: "words")
        func make(_ out: String) throws -> FusionRecipe {
            var r = try recipe(corpus, out: dir + "/" + out, steps: 8)
            r.train.gradAccum = 2
            return r
        }
        func files(_ checkpoint: String) throws -> [String: Data] {
            var out: [String: Data] = [:]
            for name in ["model.safetensors", "text/model.safetensors", "optimizer.safetensors", "trainer_state.json", "fusion_config.json"] {
                out[name] = try Data(contentsOf: URL(fileURLWithPath: checkpoint + "/" + name))
            }
            return out
        }
        let a = try FusionTrainer(recipe: try make("a"), resume: false)
        a.showProgress = false
        XCTAssertEqual(a.audioSource, "words")
        let straight = try a.run()
        let b = try FusionTrainer(recipe: try make("b"), resume: false)
        b.showProgress = false
        b.stopAtStep = 5
        XCTAssertTrue(try b.run().stoppedEarly)
        let resumed = try FusionTrainer(recipe: try make("b"), resume: true)
        resumed.showProgress = false
        let end = try resumed.run()
        XCTAssertEqual(end.steps, 8)
        XCTAssertEqual(try files(straight.checkpoint), try files(end.checkpoint), "resumed run differs from the straight one")
        let again = try FusionTrainer(recipe: try make("c"), resume: false)
        again.showProgress = false
        XCTAssertEqual(try files(straight.checkpoint), try files(try again.run().checkpoint), "same recipe and seed, different bytes")
    }

    /// A corpus without audio trains text ↔ video only: the audio terms are dropped, only the t
    /// and v runs are made, and only tv is measured.
    func testCorpusWithoutAudioTrainsTextVideoOnly() throws {
        let corpus = try makeSyntheticFusionCorpus(audio: "none")
        let trainer = try FusionTrainer(recipe: try recipe(corpus, out: dir + "/run", steps: 4), resume: false)
        trainer.showProgress = false
        XCTAssertEqual(trainer.audioSource, "none")
        XCTAssertEqual(trainer.task.weights, [1, 0, 0, 0, 0, 0])
        XCTAssertEqual(trainer.task.model.runs, [.t, .v])
        XCTAssertTrue(trainer.task.runDescription.contains("terms tv;"), trainer.task.runDescription)
        let summary = try trainer.run()
        XCTAssertNotNil(summary.eval["tv_loss"])
        XCTAssertNil(summary.eval["ta_loss"])
        XCTAssertNotNil(summary.eval["t2v_r1"])
        XCTAssertNil(summary.eval["t2va_r1"])
        XCTAssertEqual(try Checkpoint(folder: summary.checkpoint).fusion?.audioSource, "none")
        // Asking for log-mel audio on it is a one-line error naming the corpus and the option.
        var r = try recipe(corpus, out: dir + "/run2")
        r.audio.source = "logmel"
        XCTAssertThrowsError(try FusionTrainer(recipe: r, resume: false)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(corpus.path) && message.contains("store.audio"), message)
            XCTAssertFalse(message.contains("\n"))
        }
    }

    /// Unknown keys, wrong types, out-of-range values and bad choices are one-line errors naming
    /// the key (and the file).
    func testBadRecipeKeysAreOneLineErrors() throws {
        let file = dir + "/r.yaml"
        func load(_ text: String) -> String {
            try? text.write(toFile: file, atomically: true, encoding: .utf8)
            do {
                let r = try RecipeLoader.load(FusionRecipe.self, file: file)
                return r.problem() ?? "no error"
            } catch {
                return "\(error)"
            }
        }
        for (text, expected) in [("variant: fusion\ncorpus: c\nloss:\n  tvv: 1\n", "tvv"),
                                 ("variant: fusion\ncorpus: c\nloss:\n  temperature: -1\n", "loss.temperature"),
                                 ("variant: fusion\ncorpus: c\nfusion:\n  hidden_size: big\n", "fusion.hidden_size"),
                                 ("variant: fusion\ncorpus: c\naudio:\n  source: microphone\n", "audio.source"),
                                 ("variant: fusion\ncorpus: c\nloss:\n  pooled: hinge\n", "loss.pooled"),
                                 ("variant: fusion\ncorpus: c\nloss: {tv: 0, ta: 0, va: 0, t_va: 0, v_ta: 0, a_tv: 0}\n", "at least one"),
                                 ("variant: fusion\ncorpus: c\nfusion:\n  hidden_size: 30\n  num_heads: 4\n", "multiple")] {
            let message = load(text)
            XCTAssertTrue(message.contains(expected), "\(text) → \(message)")
            XCTAssertFalse(message.contains("\n"), message)
        }
    }
}
