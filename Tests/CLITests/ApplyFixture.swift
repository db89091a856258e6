import Foundation
import TestSupport
import XCTest

/// Tiny checkpoints on IndexCLITests' demo corpus for the raw-video commands (next-step VIDEO,
/// POST /api/caption, search --rerank): a VideoBERT pretrained 3 steps and a captioner
/// fine-tuned from it 2 steps, made once per test process.
final class ApplyFixture: @unchecked Sendable {
    nonisolated(unsafe) static var shared: ApplyFixture?
    static let lock = NSLock()
    let dir: String, pretrained: String
    private var captionerPath: String?

    static func run(_ args: [String]) throws -> CLIResult { try CLI.run(args, env: ["VIDEOBERT_QUIET": "1"]) }

    static func json(_ r: CLIResult, _ what: String) throws -> [String: Any] {
        guard r.status == 0, let j = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] else {
            throw IndexCLITests.VideoBertTestError("\(what) failed: \(r.stderr)")
        }
        return j
    }

    init(_ f: IndexCLITests.Fixture) throws {
        dir = f.dir + "/apply"
        let root = Repository.root
        let pre = try Self.json(try Self.run(["pretrain", "--recipe", root + "/Recipes/tiny.yaml", "--set", "corpus=" + f.dir + "/t", "--set", "out=" + dir + "/pre",
                                              "--set", "train.steps=3", "--set", "eval.batches=1", "--set", "eval.every=3", "--set", "checkpoint.every=3", "--json"]), "pretrain")
        guard let p = pre["checkpoint"] as? String else { throw IndexCLITests.VideoBertTestError("pretrain wrote no checkpoint") }
        pretrained = p
    }

    static func get() throws -> ApplyFixture {
        let f = try IndexCLITests.Fixture.get()
        lock.lock(); defer { lock.unlock() }
        if let shared { return shared }
        let a = try ApplyFixture(f)
        shared = a
        return a
    }

    /// A captioner fine-tuned from `pretrained` (2 steps).
    func captioner() throws -> String {
        Self.lock.lock(); defer { Self.lock.unlock() }
        if let captionerPath { return captionerPath }
        let f = try IndexCLITests.Fixture.get()
        try """
        init: \(pretrained)
        corpus: \(f.dir)/t
        annotations: \(f.corpus)/annotations.json
        out: \(dir)/cap
        data:
          max_video_tokens: 8
          max_caption_tokens: 8
        train:
          batch_size: 4
          steps: 2
          lr: 0.001
          warmup_steps: 1
        eval:
          every: 2
          batches: 1
        checkpoint:
          every: 2
          keep: 1
        log_every: 1
        """.write(toFile: dir + "/caption.yaml", atomically: true, encoding: .utf8)
        let tuned = try Self.json(try Self.run(["finetune", "caption", "--recipe", dir + "/caption.yaml", "--json"]), "finetune caption")
        guard let c = tuned["checkpoint"] as? String else { throw IndexCLITests.VideoBertTestError("finetune caption wrote no checkpoint") }
        captionerPath = c
        return c
    }
}
