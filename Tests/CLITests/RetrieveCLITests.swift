import Foundation
import Tokenize
import XCTest

final class RetrieveCLITests: XCTestCase {
    func testRetrieveReportsBothDirectionsBesideChance() throws {
        let f = try TasksCLIFixture.get()
        let j = try f.json(try f.run(["retrieve", "--checkpoint", f.checkpoint, "--corpus", f.corpus, "--split", "train", "--max", "8", "--json"]))
        XCTAssertEqual(j["segments"] as? Int, 8)
        for key in ["text_to_video", "video_to_text", "chance"] {
            let m = try XCTUnwrap(j[key] as? [String: Any], key)
            for metric in ["r1", "r5", "r10", "median_rank"] { XCTAssertNotNil(m[metric], "\(key).\(metric)") }
        }
        XCTAssertEqual((j["chance"] as? [String: Any])?["r5"] as? Double, 0.625)
        let t = try f.run(["retrieve", "--checkpoint", f.checkpoint, "--corpus", f.corpus])
        XCTAssertEqual(t.status, 0, t.stderr)
        XCTAssertTrue(t.stdout.contains("text → video") && t.stdout.contains("6 segments"), t.stdout)
        XCTAssertTrue(try f.run(["retrieve", "--help"]).stdout.contains("Example:"))
    }

    /// A checkpoint applied to a corpus tokenized with other vocabularies is refused.
    func testMismatchedCorpusIsRefused() throws {
        let f = try TasksCLIFixture.get()
        let other = f.temporary("other-corpus")
        try FileManager.default.copyItem(atPath: f.corpus, toPath: other)
        var vocab = try String(contentsOfFile: other + "/text_vocab.txt", encoding: .utf8)
        vocab = vocab.replacingOccurrences(of: "garlic", with: "onion")
        try vocab.write(toFile: other + "/text_vocab.txt", atomically: true, encoding: .utf8)
        let index = other + "/index.json"
        var obj = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: index))) as! [String: Any]
        var tv = obj["text_vocab"] as! [String: Any]
        // A consistent corpus (its index names its own vocabulary), whose vocabulary is not the checkpoint's.
        tv["fingerprint"] = try CorpusBuilder.fingerprint(of: other + "/text_vocab.txt")
        obj["text_vocab"] = tv
        try JSONSerialization.data(withJSONObject: obj).write(to: URL(fileURLWithPath: index))
        let r = try f.run(["retrieve", "--checkpoint", f.checkpoint, "--corpus", other])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.hasPrefix("error: \(f.checkpoint): its vocab.txt differs"), r.stderr)
    }
}
