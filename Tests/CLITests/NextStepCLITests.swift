import Foundation
import XCTest

final class NextStepCLITests: XCTestCase {
    func testNextStepReportsBothPartsAndWritesSamples() throws {
        let f = try TasksCLIFixture.get()
        let samples = f.temporary("samples.json")
        let j = try f.json(try f.run(["next-step", "--checkpoint", f.checkpoint, "--corpus", f.corpus, "--candidates", "3",
                                      "--horizon", "2", "--samples", "2", "--sampled-pairs", "1", "--samples-out", samples, "--json"]))
        let visual = try XCTUnwrap(j["visual"] as? [String: Any])
        XCTAssertEqual(visual["pairs"] as? Int, 4, "2 test videos × 2 consecutive pairs")
        XCTAssertEqual((visual["positions"] as? [Any])?.count, 2)
        let text = try XCTUnwrap(j["text"] as? [String: Any])
        XCTAssertEqual(text["queries"] as? Int, 4)
        XCTAssertEqual((text["chance"] as? [String: Any])?["mean_rank"] as? Double, 2)
        let s = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: samples))) as? [[String: Any]])
        XCTAssertEqual(s.count, 1)
        XCTAssertEqual((s[0]["samples"] as? [[Int]])?.map(\.count), [2, 2])
        let table = try f.run(["next-step", "--checkpoint", f.checkpoint, "--corpus", f.corpus, "--part", "visual"])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertTrue(table.stdout.contains("persistence") && !table.stdout.contains("next step as text"), table.stdout)
        let many = try f.run(["next-step", "--checkpoint", f.checkpoint, "--corpus", f.corpus, "--part", "text", "--candidates", "40"])
        XCTAssertEqual(many.status, 1)
        XCTAssertTrue(many.stderr.contains("lower --candidates"), many.stderr)
        XCTAssertTrue(try f.run(["next-step", "--help"]).stdout.contains("Example:"))
    }
}
