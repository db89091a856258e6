import Foundation
import Tensor
import Tokenize
import XCTest
import TestSupport

/// Data-parallel pretraining over MPI (mpirun, installed by tools/setup): 2 ranks with batch B
/// train exactly like 1 rank with batch 2B, and a run can resume with another number of ranks.
final class DistributedCLITests: XCTestCase {
    static let mpirun: String? = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }

    func mpi(_ n: Int, _ args: [String]) throws -> CLIResult {
        try launch(Self.mpirun!, ["-np", "\(n)", "--oversubscribe", "--allow-run-as-root", "--bind-to", "none", CLI.executable] + args)
    }

    /// Runs a launcher (mpirun, tools/cluster/cluster) and collects its output.
    func launch(_ program: String, _ arguments: [String]) throws -> CLIResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program)
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"  // containers without ptrace rights
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        nonisolated(unsafe) var errData = Data()
        let g = DispatchGroup(); g.enter()
        DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); g.leave() }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        g.wait(); p.waitUntilExit()
        return CLIResult(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
    }

    func trainLosses(_ run: String) throws -> [Double] {
        let text = try String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8)
        return text.split(separator: "\n").compactMap { line -> Double? in
            let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            return o?["kind"] as? String == "train" ? (o?["loss"] as? NSNumber)?.doubleValue : nil
        }
    }

    func maxDifference(_ a: String, _ b: String) throws -> Float {
        let fa = try SafeTensors.read(a + "/model.safetensors"), fb = try SafeTensors.read(b + "/model.safetensors")
        XCTAssertEqual(fa.names, fb.names)
        var worst: Float = 0
        for name in fa.names {
            let x = try fa.floats(name), y = try fb.floats(name)
            for i in x.indices { worst = max(worst, abs(x[i] - y[i])) }
        }
        return worst
    }

    /// A 4-video demo corpus and a small text vocabulary in `dir`; returns the tokenize arguments
    /// (without `--out`) for it.
    func tinyCorpus(_ dir: String) throws -> [String] {
        XCTAssertEqual(try CLI.run(["demo-corpus", "--out", dir + "/c", "--videos", "4", "--size", "32x32", "--fps", "6"]).status, 0)
        // A small text vocabulary keeps the debug-build steps quick.
        XCTAssertEqual(try CLI.run(["vocab", "text", dir + "/c/videos", "--size", "300", "--unused", "2", "--out", dir + "/v.txt"]).status, 0)
        return ["tokenize", "--corpus", dir + "/c/manifest.jsonl", "--recipe", Repository.root + "/Recipes/tokenize-tiny.yaml",
                "--set", "text.vocab=" + dir + "/v.txt"]
    }

    /// Pretraining arguments for Recipes/tiny.yaml on `corpus` (without `out` and the batch size).
    func pretrainArgs(corpus: String, steps: Int) -> [String] {
        ["pretrain", "--recipe", Repository.root + "/Recipes/tiny.yaml", "--set", "corpus=" + corpus, "--set", "train.steps=\(steps)",
         "--set", "log_every=1", "--set", "eval.every=0", "--set", "eval.split=train", "--set", "checkpoint.every=10"]
    }

    /// Two runs computed the same training: losses of every step and the final weights within 1e-5.
    func assertSameTraining(_ a: String, _ b: String, steps: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let l1 = try trainLosses(a), l2 = try trainLosses(b)
        XCTAssertEqual(l1.count, steps, file: file, line: line)
        XCTAssertEqual(l2.count, steps, file: file, line: line)
        for (x, y) in zip(l1, l2) { XCTAssertEqual(x, y, accuracy: 1e-5, file: file, line: line) }
        let checkpoint = String(format: "/checkpoints/step-%07d", steps)
        XCTAssertLessThan(try maxDifference(a + checkpoint, b + checkpoint), 1e-5, file: file, line: line)
    }

    func testTwoRanksEqualOneRankWithTwiceTheBatch() throws {
        guard Self.mpirun != nil else { XCTFail("mpirun not found: run tools/setup"); return }
        let dir = NSTemporaryDirectory() + "mpi-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tokArgs = try tinyCorpus(dir)
        let tok = try CLI.run(tokArgs + ["--out", dir + "/t"])
        XCTAssertEqual(tok.status, 0, tok.stderr)
        // Tokenizing with 2 ranks (videos divided, vocabulary fitted together) gives the same
        // vocabulary bytes; each rank writes its own shard (CorpusShards.swift), and the sharded
        // corpus reads exactly as the one-process corpus.
        let tok2 = try mpi(2, tokArgs + ["--out", dir + "/t2"])
        XCTAssertEqual(tok2.status, 0, tok2.stderr)
        for f in ["vocab/level0.npy", "vocab/level1.npy"] {
            XCTAssertEqual(FileManager.default.contents(atPath: dir + "/t/" + f), FileManager.default.contents(atPath: dir + "/t2/" + f), f)
        }
        let sharded = try TokenizedCorpus(path: dir + "/t2")
        XCTAssertEqual(sharded.index.shards?.map(\.folder), ["shards/00000", "shards/00001"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/t2/clip_words.npy"), "rank 0 gathers no arrays")
        try ShardedCorpusCLITests.assertSameCorpus(try TokenizedCorpus(path: dir + "/t"), sharded)
        let common = pretrainArgs(corpus: dir + "/t", steps: 20)
        let one = try CLI.run(common + ["--set", "out=" + dir + "/one", "--set", "train.batch_size=8"])
        XCTAssertEqual(one.status, 0, one.stderr)
        // (the two ranks read the sharded corpus)
        let two = try mpi(2, pretrainArgs(corpus: dir + "/t2", steps: 20) + ["--set", "out=" + dir + "/two", "--set", "train.batch_size=4"])
        XCTAssertEqual(two.status, 0, two.stderr)
        XCTAssertTrue(two.stderr.contains("2 ranks × batch 4 × 1 accumulation = 8 examples per step"), two.stderr)

        try assertSameTraining(dir + "/one", dir + "/two", steps: 20)

        // Resume with another number of ranks: 2 ranks to step 10, then 1 rank to 20.
        let first = try mpi(2, common + ["--set", "out=" + dir + "/mixed", "--set", "train.batch_size=4", "--stop-at", "10"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let rest = try CLI.run(common + ["--set", "out=" + dir + "/mixed", "--set", "train.batch_size=8", "--resume"])
        XCTAssertEqual(rest.status, 0, rest.stderr)
        XCTAssertLessThan(try maxDifference(dir + "/one/checkpoints/step-0000020", dir + "/mixed/checkpoints/step-0000020"), 1e-5)
    }

    /// Two hosts of the namespace cluster (tools/cluster/cluster: network namespaces joined by veth
    /// pairs and a bridge, links shaped by tc, mpirun over TCP between them) train exactly like one
    /// process with twice the batch. Needs root and iproute2 (CI runs as root); skipped otherwise.
    func testTwoHostsOfTheNamespaceClusterEqualOneProcess() throws {
        guard Self.mpirun != nil else { XCTFail("mpirun not found: run tools/setup"); return }
        let cluster = Repository.root + "/tools/cluster/cluster"
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") || FileManager.default.isExecutableFile(atPath: "/sbin/ip")
                || FileManager.default.isExecutableFile(atPath: "/usr/bin/ip") else {
            throw XCTSkip("the namespace cluster needs root and iproute2 (ip netns)")
        }
        let name = "t\(getpid() % 100_000)"
        let up = try launch(cluster, ["up", "2", "--rate", "1gbit", "--name", name])
        XCTAssertEqual(up.status, 0, up.stderr)
        defer { _ = try? launch(cluster, ["down", "--name", name]) }
        let dir = NSTemporaryDirectory() + "cluster-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tok = try CLI.run(try tinyCorpus(dir) + ["--out", dir + "/t"])
        XCTAssertEqual(tok.status, 0, tok.stderr)
        let common = pretrainArgs(corpus: dir + "/t", steps: 10)
        let one = try CLI.run(common + ["--set", "out=" + dir + "/one", "--set", "train.batch_size=8"])
        XCTAssertEqual(one.status, 0, one.stderr)
        let two = try launch(cluster, ["run", "--name", name, "--", CLI.executable] + common + ["--set", "out=" + dir + "/two", "--set", "train.batch_size=4"])
        XCTAssertEqual(two.status, 0, two.stderr)
        XCTAssertTrue(two.stderr.contains("2 ranks × batch 4 × 1 accumulation = 8 examples per step"), two.stderr)
        try assertSameTraining(dir + "/one", dir + "/two", steps: 10)
        // The ranks really were on two hosts: each namespace has its own address and hostname.
        let hosts = try launch(cluster, ["run", "--name", name, "--", "/bin/hostname"])
        XCTAssertEqual(Set(hosts.stdout.split(separator: "\n").map(String.init)), [name + "0", name + "1"], hosts.stderr)
    }

    /// A rank killed mid-run (SIGKILL, on the second host of the namespace cluster) ends the whole
    /// job with a non-zero status instead of leaving the other rank waiting in a collective, and
    /// the run resumes from its last checkpoint in one process, exactly as if never interrupted.
    func testAKilledRankEndsTheJobAndTheRunResumesOnOneProcess() throws {
        guard Self.mpirun != nil else { XCTFail("mpirun not found: run tools/setup"); return }
        let cluster = Repository.root + "/tools/cluster/cluster"
        guard getuid() == 0 else { throw XCTSkip("the namespace cluster needs root (ip netns)") }
        let name = "k\(getpid() % 100_000)"
        XCTAssertEqual(try launch(cluster, ["up", "2", "--name", name]).status, 0)
        defer { _ = try? launch(cluster, ["down", "--name", name]) }
        let dir = NSTemporaryDirectory() + "cluster-kill-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tok = try CLI.run(try tinyCorpus(dir) + ["--out", dir + "/t"])
        XCTAssertEqual(tok.status, 0, tok.stderr)
        // Far more steps than it will get to run (the learning-rate schedule follows train.steps,
        // so every run here has the same), checkpoints every 10; the reference stops at 20.
        let common = pretrainArgs(corpus: dir + "/t", steps: 100_000)
        let reference = try CLI.run(common + ["--set", "out=" + dir + "/one", "--set", "train.batch_size=8", "--stop-at", "20"])
        XCTAssertEqual(reference.status, 0, reference.stderr)

        let job = Process()
        job.executableURL = URL(fileURLWithPath: cluster)
        job.arguments = ["run", "--name", name, "--", CLI.executable] + common + ["--set", "out=" + dir + "/killed", "--set", "train.batch_size=4"]
        job.standardOutput = FileHandle.nullDevice
        job.standardError = FileHandle.nullDevice
        try job.run()
        let checkpoint = dir + "/killed/checkpoints/step-0000010"
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: checkpoint) && Date() < deadline && job.isRunning { usleep(100_000) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: checkpoint), "no checkpoint at step 10")
        // Rank 1: the newer of the two processes of this run.
        let pgrep = Process(), out = Pipe()
        pgrep.executableURL = URL(fileURLWithPath: "/usr/bin/pgrep")
        pgrep.arguments = ["-n", "-f", "out=" + dir + "/killed"]
        pgrep.standardOutput = out
        try pgrep.run(); pgrep.waitUntilExit()
        let pid = Int32(String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        XCTAssertGreaterThan(pid, 0)
        kill(pid, SIGKILL)
        let ended = Date().addingTimeInterval(60)
        while job.isRunning && Date() < ended { usleep(100_000) }
        XCTAssertFalse(job.isRunning, "the job still runs 60 s after a rank was killed")
        if job.isRunning { job.terminate() } else { XCTAssertNotEqual(job.terminationStatus, 0) }

        // Resume in one process with the same global batch, to step 20.
        let killed = dir + "/killed/checkpoints"
        for step in try FileManager.default.contentsOfDirectory(atPath: killed) where step > "step-0000010" {
            try FileManager.default.removeItem(atPath: killed + "/" + step)   // any later checkpoint: resume from 10
        }
        let rest = try CLI.run(common + ["--set", "out=" + dir + "/killed", "--set", "train.batch_size=8", "--resume", "--stop-at", "20"])
        XCTAssertEqual(rest.status, 0, rest.stderr)
        XCTAssertLessThan(try maxDifference(dir + "/one/checkpoints/step-0000020", dir + "/killed/checkpoints/step-0000020"), 1e-5)
    }

    /// CBT's negatives are the batch's other videos, so it refuses to split a batch over ranks.
    func testCBTUnderMPIIsRefusedClearly() throws {
        guard Self.mpirun != nil else { XCTFail("mpirun not found: run tools/setup"); return }
        let r = try mpi(2, ["pretrain", "--recipe", Repository.root + "/Recipes/cbt-tiny.yaml", "--set", "corpus=/nonexistent"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("variant cbt trains in one process"), r.stderr)
    }
}
