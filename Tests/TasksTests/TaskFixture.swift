import Foundation
import XCTest
import Model
import Tensor
@testable import Tasks
@testable import Tokenize
import Train

/// A tiny cooking world for the task tests: every step is "now let's <verb> the <noun> ." and
/// its four clips show two visual words of its noun and two of its verb, so visual words
/// determine both labels. The tests train a tiny VideoBERT on it once (a few seconds).
///
/// - Text vocabulary: BERT's specials, the template words, 4 verbs and 6 nouns, one of them of
///   two WordPieces ("tomato ##es").
/// - Visual words (32): noun k shows words 4k…4k+3, verb j words 24+2j, 25+2j.
/// - Videos 0–23: 16 train, 4 val, 4 test; 4 steps each, of 4 s (clips of 1 s), the noun and
///   verb of step i of video v fixed by (v, i) so that every noun and verb occurs in every split.
enum TaskWorld {
    static let verbs = ["cut", "stir", "pour", "peel"]
    static let nouns = ["garlic", "rice", "eggs", "fish", "corn", "tomatoes"]
    static let tokens = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                         "now", "let", "'", "s", "the", ".", "cut", "stir", "pour", "peel",
                         "garlic", "rice", "eggs", "fish", "corn", "tomato", "##es", "like", "this"]
    static let visualWords = 32
    static let videos = 24
    static let stepsPerVideo = 4

    static func split(_ v: Int) -> String { v < 16 ? "train" : v < 20 ? "val" : "test" }
    static func labels(video v: Int, step i: Int) -> (verb: Int, noun: Int) { ((v + 3 * i) % 4, (v * 5 + i) % 6) }

    /// Writes the corpus folder, annotations.json (YouCook2 with verb/noun) and labels.json into `dir`.
    /// With `clipFeatures`, the corpus also stores clip features (for CBT): clip c's is the
    /// one-hot vector of its visual word (32 values) plus normal(0, 0.1) noise.
    static func write(to dir: String, clipFeatures: Bool = false) throws -> (corpus: String, annotations: String, labels: String) {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let corpusDir = dir + "/corpus"
        let vocabulary = TextVocabulary(tokens: tokens)
        let tokenizer = BertTokenizer(vocabulary: vocabulary)
        let builder = try CorpusBuilder(dir: corpusDir, featureDim: clipFeatures ? visualWords : nil, frameShape: nil)
        var database: [String: Any] = [:]
        var rng = SeededRNG(seed: 7), noise = SeededRNG(seed: 8)
        for v in 0..<videos {
            var words: [Int32] = [], times: [(start: Double, end: Double)] = [], segments: [AlignedSegment] = []
            var annotations: [[String: Any]] = []
            for i in 0..<stepsPerVideo {
                let (verb, noun) = labels(video: v, step: i)
                let begin = words.count
                for c in 0..<4 {
                    let w = c % 2 == 0 ? 4 * noun + rng.nextInt(4) : 24 + 2 * verb + rng.nextInt(2)
                    words.append(Int32(w))
                    times.append((Double(words.count - 1), Double(words.count)))
                }
                let text = "now let's \(verbs[verb]) the \(nouns[noun]) ."
                segments.append(AlignedSegment(start: Double(begin), end: Double(words.count), textIDs: tokenizer.encode(text),
                                               clipBegin: begin, clipEnd: words.count))
                annotations.append(["id": i, "segment": [Double(begin) + 0.1, Double(words.count) - 0.1],
                                    "sentence": "\(verbs[verb]) the \(nouns[noun])", "verb": verbs[verb], "noun": nouns[noun]])
            }
            let features: [Float]? = clipFeatures ? words.flatMap { w in
                (0..<visualWords).map { i in (i == Int(w) ? 1 : 0) + 0.1 * noise.nextGaussian() }
            } : nil
            try builder.append(TokenizedVideo(id: "video\(v)", split: split(v), source: nil, duration: Double(words.count),
                                              clipWords: words, clipTimes: times, segments: segments, features: features))
            database["video\(v)"] = ["subset": split(v), "duration": Double(words.count), "annotations": annotations]
        }
        let level: [Float] = (0..<visualWords).flatMap { w -> [Float] in [Float(w), Float(w % 4), 0, 1] }
        try VisualVocabulary(branching: visualWords, depth: 1, dim: 4, levels: [level]).save(to: corpusDir + "/vocab")
        try vocabulary.write(to: corpusDir + "/text_vocab.txt")
        _ = try builder.finish(textVocab: .init(file: "text_vocab.txt", size: tokens.count, cased: false,
                                                fingerprint: try CorpusBuilder.fingerprint(of: corpusDir + "/text_vocab.txt")),
                               visualVocab: .init(folder: "vocab", words: visualWords, branching: visualWords, depth: 1, dim: 4),
                               clipSeconds: 1, fps: 1, featureSource: "builtin", featureDim: clipFeatures ? visualWords : 4, failures: 0)
        let annotationsPath = dir + "/annotations.json"
        try writeJSONObject(["database": database], to: annotationsPath)
        let labelsPath = dir + "/labels.json"
        try writeJSONObject(["verbs": verbs, "nouns": nouns], to: labelsPath)
        return (corpusDir, annotationsPath, labelsPath)
    }

    /// Fingerprints of what the committed model was trained on: the text vocabulary and the clip
    /// words (FNV-1a of the files' bytes).
    static func fingerprint(corpus: String) throws -> [String: String] {
        ["text_vocab": try CorpusBuilder.fingerprint(of: corpus + "/text_vocab.txt"),
         "clip_words": try CorpusBuilder.fingerprint(of: corpus + "/clip_words.npy"),
         "segment_clips": try CorpusBuilder.fingerprint(of: corpus + "/segment_clips.npy")]
    }
}

/// The world written once per test process, with the tiny VideoBERT pretrained on it that
/// tools/fixtures/tasks_world.sh committed in Resources/tiny-world (release build, 3000 steps in
/// seconds; the debug build would take minutes). Its checkpoint folder is assembled from the
/// committed config.json and model.safetensors and the world's vocabularies.
final class TaskFixture: @unchecked Sendable {
    // Built lazily under the lock by the first test that needs it; read-only afterwards.
    nonisolated(unsafe) private static var shared: TaskFixture?
    private static let lock = NSLock()

    let dir: String
    let corpusPath: String
    let annotationsPath: String
    let labelsPath: String
    let checkpoint: String

    private init() throws {
        // Under one folder per test process, removed when the process exits.
        atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "videobert-test-corpora-\(getpid())") }
        dir = NSTemporaryDirectory() + "videobert-test-corpora-\(getpid())/task-fixture-\(UUID().uuidString)"
        (corpusPath, annotationsPath, labelsPath) = try TaskWorld.write(to: dir)
        let resources = try XCTUnwrap(Bundle.module.url(forResource: "tiny-world", withExtension: nil, subdirectory: "Resources"),
                                      "missing Resources/tiny-world: run tools/fixtures/tasks_world.sh").path
        let world = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: resources + "/world.json"))) as? [String: Any])
        let expected = try XCTUnwrap(world["fingerprint"] as? [String: String])
        guard expected == (try TaskWorld.fingerprint(corpus: corpusPath)) else {
            throw VideoBertError("the test world changed since Resources/tiny-world was trained: run tools/fixtures/tasks_world.sh")
        }
        checkpoint = dir + "/pretrained"
        let fm = FileManager.default
        try fm.createDirectory(atPath: checkpoint + "/visual_vocab", withIntermediateDirectories: true)
        for name in ["config.json", "model.safetensors"] { try fm.copyItem(atPath: resources + "/" + name, toPath: checkpoint + "/" + name) }
        try fm.copyItem(atPath: corpusPath + "/text_vocab.txt", toPath: checkpoint + "/vocab.txt")
        for name in try fm.contentsOfDirectory(atPath: corpusPath + "/vocab") {
            try fm.copyItem(atPath: corpusPath + "/vocab/" + name, toPath: checkpoint + "/visual_vocab/" + name)
        }
    }

    static func get() throws -> TaskFixture {
        lock.lock(); defer { lock.unlock() }
        if let shared { return shared }
        let f = try TaskFixture()
        shared = f
        return f
    }

    func corpus() throws -> TaskCorpus { try TaskCorpus(path: corpusPath) }
    func model(maxBatch: Int = 32) throws -> TaskModel { try TaskModel(checkpoint: checkpoint, corpus: corpus(), maxBatch: maxBatch) }
    func annotations() throws -> StepAnnotations { try StepAnnotations.load(annotationsPath) }
    func labels() throws -> LabelList { try LabelList.load(labelsPath) }
}

/// Writes the world for tools/fixtures/tasks_world.sh when VIDEOBERT_TASK_WORLD_OUT names a folder.
final class TaskWorldWriter: XCTestCase {
    func testWriteWorldForTheFixtureScript() throws {
        guard let out = ProcessInfo.processInfo.environment["VIDEOBERT_TASK_WORLD_OUT"] else {
            throw XCTSkip("set VIDEOBERT_TASK_WORLD_OUT to write the test world (tools/fixtures/tasks_world.sh)")
        }
        let paths = try TaskWorld.write(to: out)
        try writeJSONObject(try TaskWorld.fingerprint(corpus: paths.corpus), to: out + "/fingerprint.json")
    }
}
