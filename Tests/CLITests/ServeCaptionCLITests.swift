import Foundation
import XCTest

/// `POST /api/caption` of `videobert serve --checkpoint CAPTIONER`: an uploaded video gets the
/// captions `caption VIDEO --window` gives the same file; beyond --max-upload-mb a 413, a corrupt
/// upload a 422 with a JSON error, no captioner a 400 — the server answering afterwards, and
/// no spooled upload left behind.
final class ServeCaptionCLITests: XCTestCase {
    typealias S = ServeCLITests

    func testUploadIsCaptionedLikeTheCaptionCommand() throws {
        let f = try IndexCLITests.Fixture.get()
        let captioner = try ApplyFixture.get().captioner()
        let dir = try temporaryFolder(named: "videobert-serve-caption")
        let video = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: f.corpus + "/videos").sorted().first { $0.hasSuffix(".mp4") })
        // The upload has no transcript: `caption` of a copy alone in a folder, in 4 s windows.
        try FileManager.default.copyItem(atPath: f.corpus + "/videos/" + video, toPath: dir + "/alone.mp4")
        let c = try ApplyFixture.run(["caption", dir + "/alone.mp4", "--checkpoint", captioner, "--window", "4s", "--beam", "1", "--format", "json"])
        XCTAssertEqual(c.status, 0, c.stderr)
        let expected = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(c.stdout.utf8)) as? [[String: Any]])
        XCTAssertGreaterThan(expected.count, 1)

        let server = try S.Server([f.index, "--checkpoint", captioner, "--max-upload-mb", "1"])
        let upload = try Data(contentsOf: URL(fileURLWithPath: f.corpus + "/videos/" + video))
        XCTAssertLessThan(upload.count, 1 << 20)
        let r = try S.request(server.port, "/api/caption?window=4&beam=1", method: "POST", headers: ["Content-Type": "video/mp4"], body: upload)
        XCTAssertEqual(r.status, 200, String(decoding: r.body, as: UTF8.self))
        let got = try XCTUnwrap((r.json as? [String: Any])?["segments"] as? [[String: Any]])
        XCTAssertEqual(got.count, expected.count)
        for (g, e) in zip(got, expected) {
            XCTAssertEqual(g["caption"] as? String, e["caption"] as? String)
            XCTAssertEqual(try XCTUnwrap(g["start"] as? Double), try XCTUnwrap(e["start"] as? Double), accuracy: 1e-9)
            XCTAssertEqual(try XCTUnwrap(g["end"] as? Double), try XCTUnwrap(e["end"] as? Double), accuracy: 1e-9)
        }
        let vtt = try S.request(server.port, "/api/caption?window=4&beam=1&format=vtt", method: "POST", body: upload)
        XCTAssertEqual(vtt.status, 200)
        XCTAssertTrue(String(decoding: vtt.body, as: UTF8.self).hasPrefix("WEBVTT\n\n00:00:00.000 --> 00:00:04.000\n"))

        // Beyond the limit (declared), corrupt, empty, bad parameters, wrong method: 4xx with a JSON error.
        let big = try S.request(server.port, "/api/caption", method: "POST", headers: ["Content-Length": "\(2 << 20)"])
        XCTAssertEqual(big.status, 413)
        XCTAssertTrue(big.error?.contains("--max-upload-mb") ?? false, "\(big.error ?? "")")
        let corrupt = try S.request(server.port, "/api/caption", method: "POST", body: Data(repeating: 0x47, count: 4096))
        XCTAssertEqual(corrupt.status, 422, String(decoding: corrupt.body, as: UTF8.self))
        XCTAssertTrue(corrupt.error?.hasPrefix("cannot caption the upload: ") ?? false, "\(corrupt.error ?? "")")
        XCTAssertFalse(corrupt.error?.contains(NSTemporaryDirectory()) ?? true, "\(corrupt.error ?? "")")
        var truncated = upload.prefix(upload.count / 3)
        truncated.append(Data(repeating: 0, count: 64))
        let cut = try S.request(server.port, "/api/caption", method: "POST", body: truncated)
        XCTAssertTrue((400..<500).contains(cut.status) || cut.status == 200, "\(cut.status)")
        XCTAssertNotNil(cut.json)
        for (target, method, status) in [("/api/caption", "POST", 400), ("/api/caption?window=-1", "POST", 400), ("/api/caption?beam=99", "POST", 400),
                                         ("/api/caption?format=srt", "POST", 400), ("/api/caption", "GET", 405)] {
            let e = try S.request(server.port, target, method: method)
            XCTAssertEqual(e.status, status, target)
            XCTAssertNotNil(e.error, target)
        }
        XCTAssertEqual(try S.request(server.port, "/healthz").status, 200)
        let left = try FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())
            .filter { $0.hasPrefix("videobert-upload-\(server.process.processIdentifier)-") }
        XCTAssertEqual(left, [])

        // A server without a captioner says so.
        let plain = try S.Server([f.index])
        let none = try S.request(plain.port, "/api/caption", method: "POST", body: upload)
        XCTAssertEqual(none.status, 400)
        XCTAssertTrue(none.error?.contains("no captioner") ?? false, "\(none.error ?? "")")
        XCTAssertEqual(try S.request(plain.port, "/healthz").status, 200)
    }
}
