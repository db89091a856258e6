import XCTest

final class RootCLITests: XCTestCase {
    func testHelpListsStagesWithExample() throws {
        let r = try CLI.run(["--help"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("Example:"), r.stdout)
        XCTAssertTrue(r.stdout.contains("tokenize"), r.stdout)
    }

    /// Every command's help has an example and reads at 80 columns: prose paragraphs flow (no
    /// lines broken mid-sentence by the wrapper) and examples fit, so nothing above USAGE wraps.
    func testEveryHelpHasAnExampleAndFitsEightyColumns() throws {
        let commands: [[String]] = [[], ["tokenize"], ["frames"], ["features"], ["wordpiece"], ["bpe"], ["vocab", "fit"], ["vocab", "show"], ["vocab", "text"],
                                    ["inspect"], ["pretrain"], ["embed"], ["evaluate", "captions"], ["zero-shot"], ["finetune", "caption"],
                                    ["caption"], ["next-step"], ["retrieve"], ["demo"], ["demo-corpus"],
                                    ["index"], ["search"], ["serve"], ["encode"]]
        for c in commands {
            let r = try CLI.run(c + ["--help"])
            XCTAssertEqual(r.status, 0, "\(c): \(r.stderr)")
            XCTAssertTrue(r.stdout.contains("Example"), "\(c) --help has no example")
            let body = r.stdout.components(separatedBy: "USAGE:")[0]
            for line in body.split(separator: "\n", omittingEmptySubsequences: false) {
                XCTAssertLessThan(line.count, 80, "\(c) --help: a line the wrapper breaks: \(line)")
            }
            // A wrapped example or list line shows up as an unindented line after an indented one.
            let lines = body.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            for (a, b) in zip(lines, lines.dropFirst()) where a.hasPrefix("  ") && !b.isEmpty && !b.hasPrefix(" ") {
                XCTAssertTrue(b.hasSuffix(":") || b.first!.isUppercase || b.hasPrefix("then") || b.hasPrefix("or") || b.hasPrefix("built")
                              || b.hasPrefix("(") || b.hasPrefix("a "), "\(c) --help: '\(b)' looks like a wrapped line after '\(a)'")
            }
        }
    }

    func testUnknownSubcommandFails() throws {
        let r = try CLI.run(["no-such-command"])
        XCTAssertNotEqual(r.status, 0)
    }
}
