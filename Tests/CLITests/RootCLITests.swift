import XCTest

final class RootCLITests: XCTestCase {
    func testHelpListsStagesWithExample() throws {
        let r = try CLI.run(["--help"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("Example:"), r.stdout)
        XCTAssertTrue(r.stdout.contains("tokenize"), r.stdout)
    }

    func testUnknownSubcommandFails() throws {
        let r = try CLI.run(["no-such-command"])
        XCTAssertNotEqual(r.status, 0)
    }
}
