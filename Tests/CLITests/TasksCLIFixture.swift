import Foundation
import XCTest
import TestSupport
import Tensor
@testable import Tokenize

/// For the task commands' CLI tests: a small synthetic corpus (written in-process: steps "now
/// let's <verb> the <noun> ." whose clips show words of their noun and verb), YouCook2
/// annotations and labels, and a checkpoint made by `videobert pretrain` (a few steps: these
/// tests check the commands' inputs and outputs, not what the model learned — TasksTests does).
final class TasksCLIFixture: @unchecked Sendable {
    // Built once under the lock by the first test that needs it; read-only afterwards.
    nonisolated(unsafe) private static var shared: TasksCLIFixture?
    private static let lock = NSLock()

    let dir: String
    let corpus: String
    let annotations: String
    let labels: String
    let checkpoint: String

    static let verbs = ["cut", "stir", "pour"]
    static let nouns = ["garlic", "rice", "eggs", "fish"]

    private init() throws {
        // Under one folder per test process, removed when the process exits.
        atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "videobert-test-corpora-\(getpid())") }
        dir = NSTemporaryDirectory() + "videobert-test-corpora-\(getpid())/tasks-cli-\(UUID().uuidString)"
        corpus = dir + "/corpus"
        annotations = dir + "/annotations.json"
        labels = dir + "/labels.json"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let tokens = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "now", "let", "'", "s", "the", "."] + Self.verbs + Self.nouns
        let vocabulary = TextVocabulary(tokens: tokens)
        let tokenizer = BertTokenizer(vocabulary: vocabulary)
        let builder = try CorpusBuilder(dir: corpus, featureDim: nil, frameShape: nil)
        var database: [String: Any] = [:]
        for v in 0..<12 {
            let split = v < 8 ? "train" : v < 10 ? "val" : "test"
            var words: [Int32] = [], times: [(start: Double, end: Double)] = [], segments: [AlignedSegment] = []
            var steps: [[String: Any]] = []
            for i in 0..<3 {
                let verb = (v + i) % 3, noun = (2 * v + i) % 4
                let begin = words.count
                for c in 0..<3 {
                    words.append(Int32(c == 1 ? 8 + verb : 2 * noun + c / 2))
                    times.append((Double(words.count - 1), Double(words.count)))
                }
                let sentence = "\(Self.verbs[verb]) the \(Self.nouns[noun])"
                segments.append(AlignedSegment(start: Double(begin), end: Double(words.count), textIDs: tokenizer.encode("now let's " + sentence + " ."),
                                               clipBegin: begin, clipEnd: words.count))
                steps.append(["id": i, "segment": [Double(begin), Double(words.count)], "sentence": sentence])
            }
            try builder.append(TokenizedVideo(id: "v\(v)", split: split, source: nil, duration: Double(words.count),
                                              clipWords: words, clipTimes: times, segments: segments))
            database["v\(v)"] = ["subset": split, "annotations": steps]
        }
        let level: [Float] = (0..<12).flatMap { w -> [Float] in [Float(w), 1] }
        try VisualVocabulary(branching: 12, depth: 1, dim: 2, levels: [level]).save(to: corpus + "/vocab")
        try vocabulary.write(to: corpus + "/text_vocab.txt")
        _ = try builder.finish(textVocab: .init(file: "text_vocab.txt", size: tokens.count, cased: false,
                                                fingerprint: try CorpusBuilder.fingerprint(of: corpus + "/text_vocab.txt")),
                               visualVocab: .init(folder: "vocab", words: 12, branching: 12, depth: 1, dim: 2),
                               clipSeconds: 1, fps: 1, featureSource: "builtin", featureDim: 2, failures: 0)
        func write(_ object: Any, _ path: String) throws {
            try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).write(to: URL(fileURLWithPath: path))
        }
        try write(["database": database], annotations)
        try write(["verbs": Self.verbs, "nouns": Self.nouns], labels)
        let r = try CLI.run(["pretrain", "--recipe", Repository.root + "/Recipes/tiny.yaml", "--set", "corpus=" + corpus,
                             "--set", "out=" + dir + "/pretrain", "--set", "train.steps=4", "--set", "eval.batches=1",
                             "--set", "checkpoint.every=4", "--json"], env: ["VIDEOBERT_QUIET": "1"])
        guard r.status == 0, let summary = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any],
              let checkpoint = summary["checkpoint"] as? String else {
            throw VideoBertError("pretraining the CLI fixture failed: \(r.stderr)")
        }
        self.checkpoint = checkpoint
    }

    static func get() throws -> TasksCLIFixture {
        lock.lock(); defer { lock.unlock() }
        if let shared { return shared }
        let f = try TasksCLIFixture()
        shared = f
        return f
    }

    /// Runs the CLI quietly (no progress lines).
    func run(_ args: [String]) throws -> CLIResult { try CLI.run(args, env: ["VIDEOBERT_QUIET": "1"]) }

    func json(_ r: CLIResult, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], file: file, line: line)
    }

    func temporary(_ name: String) -> String { dir + "/" + UUID().uuidString + "-" + name }
}
