import Foundation
import Tensor
import TestSupport
import XCTest
@testable import Index

/// `videobert encode` gives the embeddings `index` stores and `search` ranks by (the tiny CBT of
/// IndexCLITests' fixture).
final class EncodeCLITests: XCTestCase {
    func testVideoRowsEqualTheIndexAndTextRowsEqualTheQueryEncoder() throws {
        let f = try IndexCLITests.Fixture.get()
        let dir = try temporaryFolder(named: "videobert-encode")
        let index = try VideoIndex(folder: f.index)
        let m = try XCTUnwrap(index.embeddings)
        let videos = try index.videos().prefix(2)
        XCTAssertEqual(videos.count, 2)
        let r = try CLI.run(["encode", "--checkpoint", f.checkpoint, "--video"] + videos.map(\.path) + ["--out", dir + "/v.npy"],
                            env: ["VIDEOBERT_QUIET": "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let a = try NPY.read(dir + "/v.npy")
        let rows = try a.floats()
        XCTAssertEqual(a.shape, [videos.map(\.segments).reduce(0, +), 32])
        let list = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/v.json"))) as? [[String: Any]])
        XCTAssertEqual(list.count, a.shape[0])
        var row = 0
        for v in videos {
            XCTAssertEqual(v.segmentation, "transcript")
            for k in 0..<v.segments {
                let s = try XCTUnwrap(try index.segment(id: "\(v.key)-\(k)"))
                XCTAssertEqual(list[row]["video"] as? String, v.id)
                XCTAssertEqual(list[row]["start"] as? Double, s.start)
                XCTAssertEqual(list[row]["end"] as? Double, s.end)
                XCTAssertEqual(list[row]["text"] as? String, s.text)
                XCTAssertEqual(Array(rows[(row * 32)..<((row + 1) * 32)]), Array(m.row(s.row)), "\(s.id): the index's stored embedding")
                row += 1
            }
        }
        // Texts: the query encoder of `search` (one text at a time there; a batch here, equal to rounding).
        let texts = ["stir the tomatoes", "cut the onion", "pour the oil into the pan"]
        try texts.joined(separator: "\n\n").write(toFile: dir + "/q.txt", atomically: true, encoding: .utf8)
        let t = try CLI.run(["encode", "--checkpoint", f.checkpoint, "--text-file", dir + "/q.txt", "--out", dir + "/t.npy"], env: ["VIDEOBERT_QUIET": "1"])
        XCTAssertEqual(t.status, 0, t.stderr)
        let e = try NPY.read(dir + "/t.npy")
        XCTAssertEqual(e.shape, [3, 32])
        let got = try e.floats()
        let encoder = try XCTUnwrap(try CheckpointEncoder.open(f.checkpoint).encoder)
        for (i, q) in texts.enumerated() {
            let expected = try encoder.encodeText([q])[0]
            let row = Array(got[(i * 32)..<((i + 1) * 32)])
            XCTAssertLessThan(zip(row, expected).map { abs($0 - $1) }.max()!, 1e-5, q)
            XCTAssertEqual(row.reduce(0) { $0 + $1 * $1 }, 1, accuracy: 1e-4)
        }
        // The same through --text.
        let t2 = try CLI.run(["encode", "--checkpoint", f.checkpoint, "--text", texts[0], "--out", dir + "/t2.npy"], env: ["VIDEOBERT_QUIET": "1"])
        XCTAssertEqual(t2.status, 0, t2.stderr)
        XCTAssertLessThan(zip(try NPY.read(dir + "/t2.npy").floats(), try encoder.encodeText([texts[0]])[0]).map { abs($0 - $1) }.max()!, 1e-6)
    }

    func testWindowsBadVideoAndUsage() throws {
        let f = try IndexCLITests.Fixture.get()
        let dir = try temporaryFolder(named: "videobert-encode-bad")
        let video = try XCTUnwrap(try VideoIndex(folder: f.index).videos().first)
        // A copy without its transcript: fixed windows; a missing file beside it is reported, the other encoded.
        try FileManager.default.copyItem(atPath: video.path, toPath: dir + "/alone.mp4")
        try Data("not a video".utf8).write(to: URL(fileURLWithPath: dir + "/broken.mp4"))
        let r = try CLI.run(["encode", "--checkpoint", f.checkpoint, "--video", dir + "/broken.mp4", dir + "/alone.mp4", "--window", "2s",
                             "--out", dir + "/w.npy"], env: ["VIDEOBERT_QUIET": "1"])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("broken.mp4"), r.stderr)
        let list = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/w.json"))) as? [[String: Any]])
        XCTAssertEqual(list.count, Int((video.duration / 2).rounded(.up)))
        XCTAssertEqual(list.first?["start"] as? Double, 0)
        XCTAssertEqual(list.first?["end"] as? Double, 2)
        XCTAssertEqual(try NPY.read(dir + "/w.npy").shape, [list.count, 32])
        for bad in [["--text", "a", "--video", dir + "/alone.mp4"], [], ["--text", "a", "--window", "0s"], ["--text", "a", "--transcript", "x.vtt"]] {
            let u = try CLI.run(["encode", "--checkpoint", f.checkpoint, "--out", dir + "/u.npy"] + bad)
            XCTAssertEqual(u.status, 64, "\(bad): \(u.stderr)")
        }
        let nope = try CLI.run(["encode", "--checkpoint", dir, "--text", "a", "--out", dir + "/n.npy"])
        XCTAssertEqual(nope.status, 1)
        XCTAssertTrue(nope.stderr.contains(dir), nope.stderr)
    }
}
