import Foundation
import Tensor
import TestSupport
import XCTest

/// The promises of docs/RELIABILITY.md against the built binary: hostile inputs, absurd settings,
/// misuse and concurrent runs give one line `error: <file>: ...` and exit status 1, and nothing
/// the user had is harmed.
final class ReliabilityCLITests: XCTestCase {
    static let root = Repository.root
    nonisolated(unsafe) private static var shared: String?
    private static let lock = NSLock()

    /// A small tokenized demo corpus (4 videos), made once: `<dir>/c` (videos) and `<dir>/t`.
    static func corpus() throws -> String {
        lock.lock(); defer { lock.unlock() }
        if let shared { return shared }
        let dir = NSTemporaryDirectory() + "relcli-\(UUID().uuidString)"
        let c = try CLI.run(["demo-corpus", "--out", dir + "/c", "--videos", "4", "--size", "32x32", "--fps", "6"])
        guard c.status == 0 else { throw VideoBertError("demo-corpus failed: \(c.stderr)") }
        let t = try CLI.run(["tokenize", "--corpus", dir + "/c/manifest.jsonl", "--out", dir + "/t",
                             "--recipe", root + "/Recipes/tokenize-tiny.yaml", "--set", "text.vocab=" + root + "/Vocab/bert-base-uncased.txt"])
        guard t.status == 0 else { throw VideoBertError("tokenize failed: \(t.stderr)") }
        shared = dir
        return dir
    }

    func scratch() throws -> String {
        let d = NSTemporaryDirectory() + "relcli-scratch-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: d) }
        return d
    }

    /// Asserts exit status 1 and one stderr line `error: <prefix>...` containing every needle.
    func assertOneLineError(_ r: CLIResult, prefix: String, _ needles: [String] = [], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 1, r.stderr, file: file, line: line)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, r.stderr, file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("error: " + prefix), r.stderr, file: file, line: line)
        for n in needles { XCTAssertTrue(r.stderr.contains(n), "\(r.stderr) lacks \(n)", file: file, line: line) }
        XCTAssertFalse(r.stderr.contains("Fatal error"), r.stderr, file: file, line: line)
    }

    /// A folder holding a file the user cares about.
    func precious(_ dir: String) throws -> String {
        let f = dir + "/precious"
        try FileManager.default.createDirectory(atPath: f, withIntermediateDirectories: true)
        try "keep me".write(toFile: f + "/notes.txt", atomically: false, encoding: .utf8)
        return f
    }

    func assertIntact(_ folder: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(try? String(contentsOfFile: folder + "/notes.txt", encoding: .utf8), "keep me", file: file, line: line)
    }

    // MARK: data never destroyed

    func testAnExistingFolderIsNeverReplacedByAnOutputFile() throws {
        let base = try Self.corpus()
        let d = try scratch()
        let keep = try precious(d)
        let video = base + "/c/videos/" + (try XCTUnwrap(FileManager.default.contentsOfDirectory(atPath: base + "/c/videos").first { $0.hasSuffix(".mp4") }))
        assertOneLineError(try CLI.run(["frames", video, "--fps", "2", "--size", "16x16", "--out", keep]), prefix: keep + ": is a folder")
        try "{\"text\": \"stir\"}\n".write(toFile: d + "/in.jsonl", atomically: false, encoding: .utf8)
        assertOneLineError(try CLI.run(["embed", "--checkpoint", d + "/none", "--input", d + "/in.jsonl", "--out", keep]), prefix: keep + ": is a folder")
        try "stir the rice\n".write(toFile: d + "/text.txt", atomically: false, encoding: .utf8)
        assertOneLineError(try CLI.run(["vocab", "text", d + "/text.txt", "--out", keep, "--size", "200"]), prefix: keep + ": is a folder")
        assertOneLineError(try CLI.run(["retrieve", "--checkpoint", d + "/none", "--corpus", base + "/t", "--out-json", keep]),
                           prefix: keep + ": is a folder")
        assertOneLineError(try CLI.run(["caption", "--checkpoint", d + "/none", "--corpus", base + "/t", "--out", keep]),
                           prefix: keep + ": is a folder")
        assertIntact(keep)
    }

    func testOutputEqualToInputIsRefused() throws {
        let d = try scratch()
        let input = d + "/in.jsonl"
        try "{\"text\": \"stir\"}\n".write(toFile: input, atomically: false, encoding: .utf8)
        assertOneLineError(try CLI.run(["embed", "--checkpoint", d + "/none", "--input", input, "--out", input]),
                           prefix: input + ": is also an input")
        XCTAssertEqual(try String(contentsOfFile: input, encoding: .utf8), "{\"text\": \"stir\"}\n")
        try "stir the rice\n".write(toFile: d + "/text.txt", atomically: false, encoding: .utf8)
        assertOneLineError(try CLI.run(["vocab", "text", d + "/text.txt", "--out", d + "/text.txt", "--size", "200"]),
                           prefix: d + "/text.txt: is also an input")
        XCTAssertEqual(try String(contentsOfFile: d + "/text.txt", encoding: .utf8), "stir the rice\n")
    }

    func testNegativeFpsIsNamed() throws {
        let d = try scratch()
        let r = try CLI.run(["frames", d + "/v.mp4", "--fps", "-1", "--size", "16x16", "--out", d + "/f.npy"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertFalse(r.stderr.contains("Missing value"), r.stderr)
        XCTAssertTrue(r.stderr.contains("-1"), r.stderr)
    }

    // MARK: concurrency

    func testASecondWriterIntoOneFolderIsRefused() throws {
        let base = try Self.corpus()
        let d = try scratch()
        let out = d + "/t"
        let held = try FolderLock.acquire(out)   // this process plays the first run
        let r = try CLI.run(["tokenize", "--corpus", base + "/c/manifest.jsonl", "--out", out,
                             "--recipe", Self.root + "/Recipes/tokenize-tiny.yaml", "--set", "text.vocab=" + Self.root + "/Vocab/bert-base-uncased.txt"])
        assertOneLineError(r, prefix: out + ": folder is in use by another videobert run (pid \(getpid()))")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/index.json"))
        let p = try CLI.run(["pretrain", "--recipe", Self.root + "/Recipes/tiny.yaml", "--set", "corpus=" + base + "/t", "--set", "out=" + out])
        assertOneLineError(p, prefix: out + ": folder is in use by another videobert run (pid \(getpid()))")
        held.release()
        // Once the first run is gone, the lock is free (and a lock left by a killed run never blocks:
        // the kernel drops it with the process).
        let again = try CLI.run(["pretrain", "--recipe", Self.root + "/Recipes/tiny.yaml", "--set", "corpus=" + base + "/t", "--set", "out=" + out,
                                 "--set", "train.steps=1", "--set", "eval.split=train", "--set", "eval.batches=1"])
        XCTAssertEqual(again.status, 0, again.stderr)
    }

    // MARK: absurd settings, damaged state

    /// Caption fine-tuning estimates its memory from the init checkpoint and the batch, as pretraining does.
    func testCaptionFineTuningMemoryIsEstimated() throws {
        let base = try Self.corpus()
        let d = try scratch()
        let p = try CLI.run(["pretrain", "--recipe", Self.root + "/Recipes/tiny.yaml", "--set", "corpus=" + base + "/t", "--set", "out=" + d + "/vb",
                             "--set", "train.steps=1", "--set", "eval.split=train", "--set", "eval.batches=1"])
        XCTAssertEqual(p.status, 0, p.stderr)
        let common = ["finetune", "caption", "--recipe", Self.root + "/Recipes/finetune-caption-demo.yaml", "--set", "init=" + d + "/vb/checkpoints/step-0000001",
                      "--set", "corpus=" + base + "/t", "--set", "annotations=" + base + "/c/annotations.json", "--set", "out=" + d + "/cap"]
        let capped = try CLI.run(common + ["--set", "train.max_memory_gb=0.0001"])
        assertOneLineError(capped, prefix: Self.root + "/Recipes/finetune-caption-demo.yaml: training needs about", ["train.max_memory_gb (0.00 GiB)", "train.batch_size"])
        let batch = try CLI.run(common + ["--set", "train.batch_size=1000000"])
        assertOneLineError(batch, prefix: Self.root + "/Recipes/finetune-caption-demo.yaml: training needs about", ["this machine's"])
    }

    func testAbsurdSizesAreRefusedBeforeAllocating() throws {
        let base = try Self.corpus()
        let d = try scratch()
        let recipe = Self.root + "/Recipes/tiny.yaml"
        let common = ["pretrain", "--recipe", recipe, "--set", "corpus=" + base + "/t", "--set", "out=" + d + "/run"]
        let t0 = Date()
        let big = try CLI.run(common + ["--set", "model.hidden_size=8192", "--set", "model.num_heads=64",
                                        "--set", "model.intermediate_size=32768", "--set", "model.num_layers=48"])
        assertOneLineError(big, prefix: recipe + ": training needs about", ["model.hidden_size", "train.max_memory_gb"])
        let huge = try CLI.run(common + ["--set", "model.hidden_size=65536", "--set", "model.num_heads=64",
                                         "--set", "model.intermediate_size=262144", "--set", "model.num_layers=1024"])
        assertOneLineError(huge, prefix: recipe + ": the sizes (hidden_size 65536, num_hidden_layers 1024", ["2^36 parameters"])
        let batch = try CLI.run(common + ["--set", "train.batch_size=1000000"])
        assertOneLineError(batch, prefix: recipe + ": training needs about", ["train.batch_size"])
        let capped = try CLI.run(common + ["--set", "train.max_memory_gb=0.001"])
        assertOneLineError(capped, prefix: recipe + ": training needs about", ["train.max_memory_gb (0.00 GiB)"])
        let cbtRecipe = Self.root + "/Recipes/cbt-tiny.yaml"
        let cbt = try CLI.run(["pretrain", "--recipe", cbtRecipe, "--set", "corpus=" + base + "/t", "--set", "out=" + d + "/cbt",
                               "--set", "train.batch_size=100000"])
        assertOneLineError(cbt, prefix: cbtRecipe + ": training needs about", ["train.batch_size"])
        XCTAssertLessThan(Date().timeIntervalSince(t0), 60, "refused before allocating")
        assertOneLineError(try CLI.run(common + ["--set", "model.hidden_size=1000000000"]), prefix: "--set: 'model.hidden_size' is 1000000000")
        assertOneLineError(try CLI.run(common + ["--set", "train.seed=-1"]), prefix: "--set: 'train.seed' is -1")
        assertOneLineError(try CLI.run(common + ["--set", "eval.batches=-3"]), prefix: "--set: 'eval.batches' is -3")
        assertOneLineError(try CLI.run(common + ["--set", "data.mask_prob=2.0"]), prefix: "--set: 'data.mask_prob' is 2.0")
        assertOneLineError(try CLI.run(common + ["--set", "train.lr=.nan"]), prefix: "--set: 'train.lr' must be a finite number")
        try "model:\n  hidden_size: 32.5\n".write(toFile: d + "/r.yaml", atomically: false, encoding: .utf8)
        assertOneLineError(try CLI.run(["pretrain", "--recipe", d + "/r.yaml"]), prefix: d + "/r.yaml: line 2: 'model.hidden_size' must be an integer")
        FileManager.default.createFile(atPath: d + "/bin.yaml", contents: Data([0x7F, 0x45, 0x4C, 0x46, 0, 0xFF, 0x01]))
        assertOneLineError(try CLI.run(["pretrain", "--recipe", d + "/bin.yaml"]), prefix: d + "/bin.yaml: not a YAML recipe")
        XCTAssertFalse(FileManager.default.fileExists(atPath: d + "/run/checkpoints"))
    }

    func testDamagedTrainerStateIsNamedOnResume() throws {
        let base = try Self.corpus()
        let d = try scratch()
        let args = ["pretrain", "--recipe", Self.root + "/Recipes/tiny.yaml", "--set", "corpus=" + base + "/t", "--set", "out=" + d + "/run",
                    "--set", "train.steps=2", "--set", "eval.split=train", "--set", "eval.batches=1", "--set", "checkpoint.every=2"]
        XCTAssertEqual(try CLI.run(args).status, 0)
        let statePath = d + "/run/checkpoints/step-0000002/trainer_state.json"
        let original = try Data(contentsOf: URL(fileURLWithPath: statePath))
        var state = try JSONSerialization.jsonObject(with: original) as! [String: Any]
        var sampler = state["sampler"] as! [String: Any]
        sampler["cursors"] = [999_999, 0, 0]
        state["sampler"] = sampler
        try JSONSerialization.data(withJSONObject: state).write(to: URL(fileURLWithPath: statePath))
        let resumeArgs = args.map { $0 == "train.steps=2" ? "train.steps=4" : $0 } + ["--resume"]
        assertOneLineError(try CLI.run(resumeArgs), prefix: statePath + ": sampler.cursors[0] = 999999 is outside")
        state = try JSONSerialization.jsonObject(with: original) as! [String: Any]
        state["step"] = 1 << 62
        try JSONSerialization.data(withJSONObject: state).write(to: URL(fileURLWithPath: statePath))
        let huge = try CLI.run(resumeArgs)
        assertOneLineError(huge, prefix: statePath + ": step 4611686018427387904")
        XCTAssertFalse(huge.stderr.contains("resumed"), huge.stderr)
        try original.write(to: URL(fileURLWithPath: statePath))
        let ok = try CLI.run(resumeArgs)
        XCTAssertEqual(ok.status, 0, ok.stderr)
    }

    func testSIGTERMDuringAHugeGradientAccumulationStopsPromptly() throws {
        let base = try Self.corpus()
        let d = try scratch()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLI.executable)
        p.arguments = ["pretrain", "--recipe", Self.root + "/Recipes/tiny.yaml", "--set", "corpus=" + base + "/t", "--set", "out=" + d + "/run",
                       "--set", "train.grad_accum=1000000", "--set", "train.batch_size=2", "--set", "eval.split=train", "--set", "eval.batches=1"]
        FileManager.default.createFile(atPath: d + "/err.txt", contents: nil)
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: d + "/err.txt"))
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, !((try? String(contentsOfFile: d + "/err.txt", encoding: .utf8)) ?? "").contains("examples per step") {
            Thread.sleep(forTimeInterval: 0.1)
        }
        Thread.sleep(forTimeInterval: 1)   // inside the first step's micro-batches
        let sent = Date()
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        let stderr = (try? String(contentsOfFile: d + "/err.txt", encoding: .utf8)) ?? ""
        XCTAssertLessThan(Date().timeIntervalSince(sent), 30, "a step of a million micro-batches is not waited for")
        XCTAssertEqual(p.terminationStatus, 130, stderr)
        XCTAssertTrue(stderr.contains("stopped at step 0"), stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: d + "/run/checkpoints/step-0000000/trainer_state.json"), stderr)
    }

    // MARK: damaged corpora, manifests

    /// A copy of the tokenized corpus with `edit` applied to it.
    func damagedCorpus(_ edit: (String) throws -> Void) throws -> String {
        let base = try Self.corpus()
        let copy = try scratch() + "/t"
        try FileManager.default.copyItem(atPath: base + "/t", toPath: copy)
        try edit(copy)
        return copy
    }

    func testDamagedCorpusArraysAreNamedAtOpen() throws {
        let ids = try damagedCorpus { c in
            var a = try NPY.read(c + "/text_ids.npy").values(Int32.self)
            a[0] = 40_000
            try NPY.write(a, shape: [a.count], to: c + "/text_ids.npy")
        }
        assertOneLineError(try CLI.run(["inspect", ids]), prefix: ids + "/text_ids.npy: value 40000 at position 0 is outside the text vocabulary")
        let neg = try damagedCorpus { c in
            var a = try NPY.read(c + "/visual_ids.npy").values(Int32.self)
            a[1] = -5
            try NPY.write(a, shape: [a.count], to: c + "/visual_ids.npy")
        }
        assertOneLineError(try CLI.run(["inspect", neg]), prefix: neg + "/visual_ids.npy: value -5 at position 1")
        let offsets = try damagedCorpus { c in
            var a = try NPY.read(c + "/text_offsets.npy").values(Int64.self)
            a[1] = a[2] + 1
            try NPY.write(a, shape: [a.count], to: c + "/text_offsets.npy")
        }
        assertOneLineError(try CLI.run(["inspect", offsets]), prefix: offsets + "/text_offsets.npy: offsets decrease at position 2")
        // A re-tokenization killed midway: an old index beside a newer recipe.
        let stale = try damagedCorpus { c in
            try ((try String(contentsOfFile: c + "/recipe.yaml", encoding: .utf8)) + "# edited\n").write(toFile: c + "/recipe.yaml", atomically: false, encoding: .utf8)
        }
        assertOneLineError(try CLI.run(["inspect", stale]), prefix: stale + ": recipe.yaml is not the recipe this index.json was built with")
    }

    func testManifestMistakesAreNamedAndWorkingOnesRun() throws {
        let base = try Self.corpus()
        let d = try scratch()
        let manifest = try String(contentsOfFile: base + "/c/manifest.jsonl", encoding: .utf8)
        let lines = manifest.split(separator: "\n").map(String.init)
        func tokenize(_ text: String, _ name: String) throws -> (CLIResult, String) {
            let m = base + "/c/" + name
            try text.write(toFile: m, atomically: false, encoding: .utf8)
            addTeardownBlock { try? FileManager.default.removeItem(atPath: m) }
            return (try CLI.run(["tokenize", "--corpus", m, "--out", d + "/" + name + ".out",
                                 "--recipe", Self.root + "/Recipes/tokenize-tiny.yaml", "--set", "text.vocab=" + Self.root + "/Vocab/bert-base-uncased.txt"]), m)
        }
        // "transcript": 42 is an error, never ignored.
        var obj = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        obj["transcript"] = 42
        let (r42, m42) = try tokenize(String(decoding: try JSONSerialization.data(withJSONObject: obj), as: UTF8.self) + "\n", "t42.jsonl")
        assertOneLineError(r42, prefix: m42 + ": line 1: \"transcript\" must be a string, not 42")
        // Ids that become one file name; one video under two ids.
        var a = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        var b = try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as! [String: Any]
        a["id"] = "x y"; b["id"] = "x_y"
        let ab = [a, b].map { String(decoding: try! JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }.joined(separator: "\n")
        let (rc, mc) = try tokenize(ab + "\n", "collide.jsonl")
        assertOneLineError(rc, prefix: mc + ": video ids 'x y' and 'x_y' map to the same file name")
        b["id"] = "other"; b["video"] = a["video"]
        let dup = [a, b].map { String(decoding: try! JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }.joined(separator: "\n")
        let (rd, md) = try tokenize(dup + "\n", "dup.jsonl")
        assertOneLineError(rd, prefix: md + ": video ")
        XCTAssertTrue(rd.stderr.contains("listed under two ids"), rd.stderr)
        // A CRLF manifest is read as the same manifest.
        let (crlf, _) = try tokenize(lines.joined(separator: "\r\n") + "\r\n", "crlf.jsonl")
        XCTAssertEqual(crlf.status, 0, crlf.stderr)
    }

    func testEveryVideoFailingPrintsAndWritesTheReasons() throws {
        let d = try scratch()
        try "not a video".write(toFile: d + "/a.mp4", atomically: false, encoding: .utf8)
        try "WEBVTT\n".write(toFile: d + "/a.vtt", atomically: false, encoding: .utf8)
        try "{\"id\": \"a\", \"video\": \"a.mp4\", \"transcript\": \"a.vtt\"}\n{\"id\": \"b\", \"video\": \"missing.mp4\"}\n"
            .write(toFile: d + "/m.jsonl", atomically: false, encoding: .utf8)
        let r = try CLI.run(["tokenize", "--corpus", d + "/m.jsonl", "--out", d + "/t",
                             "--recipe", Self.root + "/Recipes/tokenize-tiny.yaml", "--set", "text.vocab=" + Self.root + "/Vocab/bert-base-uncased.txt"],
                            env: ["VIDEOBERT_QUIET": "1"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("error: \(d)/t: every video failed (2 of 2)"), r.stderr)
        XCTAssertTrue(r.stderr.contains("  a: "), r.stderr)
        XCTAssertTrue(r.stderr.contains("  b: "), r.stderr)
        let failures = try String(contentsOfFile: d + "/t/failures.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(failures.count, 2)
    }
}
