import Foundation
import Tensor
import XCTest
import TestSupport

/// Data-parallel pretraining over MPI (mpirun, installed by tools/setup): 2 ranks with batch B
/// train exactly like 1 rank with batch 2B, and a run can resume with another number of ranks.
final class DistributedCLITests: XCTestCase {
    static let mpirun: String? = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }

    func mpi(_ n: Int, _ args: [String]) throws -> CLIResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.mpirun!)
        p.arguments = ["-np", "\(n)", "--oversubscribe", "--allow-run-as-root", "--bind-to", "none", CLI.executable] + args
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

    func testTwoRanksEqualOneRankWithTwiceTheBatch() throws {
        guard Self.mpirun != nil else { XCTFail("mpirun not found: run tools/setup"); return }
        let dir = NSTemporaryDirectory() + "mpi-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let root = Repository.root
        XCTAssertEqual(try CLI.run(["demo-corpus", "--out", dir + "/c", "--videos", "4", "--size", "32x32", "--fps", "6"]).status, 0)
        // A small text vocabulary keeps the debug-build steps quick.
        XCTAssertEqual(try CLI.run(["vocab", "text", dir + "/c/videos", "--size", "300", "--unused", "2", "--out", dir + "/v.txt"]).status, 0)
        let tokArgs = ["tokenize", "--corpus", dir + "/c/manifest.jsonl", "--recipe", root + "/Recipes/tokenize-tiny.yaml",
                       "--set", "text.vocab=" + dir + "/v.txt"]
        let tok = try CLI.run(tokArgs + ["--out", dir + "/t"])
        XCTAssertEqual(tok.status, 0, tok.stderr)
        // Tokenizing with 2 ranks (videos divided, vocabulary fitted together) gives the same bytes.
        let tok2 = try mpi(2, tokArgs + ["--out", dir + "/t2"])
        XCTAssertEqual(tok2.status, 0, tok2.stderr)
        for f in ["vocab/level0.npy", "vocab/level1.npy", "clip_words.npy", "visual_ids.npy", "text_ids.npy", "segment_times.npy"] {
            XCTAssertEqual(FileManager.default.contents(atPath: dir + "/t/" + f), FileManager.default.contents(atPath: dir + "/t2/" + f), f)
        }
        let common = ["pretrain", "--recipe", root + "/Recipes/tiny.yaml", "--set", "corpus=" + dir + "/t", "--set", "train.steps=20",
                      "--set", "log_every=1", "--set", "eval.every=0", "--set", "eval.split=train", "--set", "checkpoint.every=10"]
        let one = try CLI.run(common + ["--set", "out=" + dir + "/one", "--set", "train.batch_size=8"])
        XCTAssertEqual(one.status, 0, one.stderr)
        let two = try mpi(2, common + ["--set", "out=" + dir + "/two", "--set", "train.batch_size=4"])
        XCTAssertEqual(two.status, 0, two.stderr)
        XCTAssertTrue(two.stderr.contains("2 ranks × batch 4 × 1 accumulation = 8 examples per step"), two.stderr)

        let l1 = try trainLosses(dir + "/one"), l2 = try trainLosses(dir + "/two")
        XCTAssertEqual(l1.count, 20)
        XCTAssertEqual(l2.count, 20)
        for (a, b) in zip(l1, l2) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        XCTAssertLessThan(try maxDifference(dir + "/one/checkpoints/step-0000020", dir + "/two/checkpoints/step-0000020"), 1e-5)

        // Resume with another number of ranks: 2 ranks to step 10, then 1 rank to 20.
        let first = try mpi(2, common + ["--set", "out=" + dir + "/mixed", "--set", "train.batch_size=4", "--stop-at", "10"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let rest = try CLI.run(common + ["--set", "out=" + dir + "/mixed", "--set", "train.batch_size=8", "--resume"])
        XCTAssertEqual(rest.status, 0, rest.stderr)
        XCTAssertLessThan(try maxDifference(dir + "/one/checkpoints/step-0000020", dir + "/mixed/checkpoints/step-0000020"), 1e-5)
    }

    /// CBT's negatives are the batch's other videos, so it refuses to split a batch over ranks.
    func testCBTUnderMPIIsRefusedClearly() throws {
        guard Self.mpirun != nil else { XCTFail("mpirun not found: run tools/setup"); return }
        let r = try mpi(2, ["pretrain", "--recipe", Repository.root + "/Recipes/cbt-tiny.yaml", "--set", "corpus=/nonexistent"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("variant cbt trains in one process"), r.stderr)
    }
}
