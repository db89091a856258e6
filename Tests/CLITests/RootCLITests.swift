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
        let commands: [[String]] = [[], ["tokenize"], ["frames"], ["audio"], ["features"], ["wordpiece"], ["bpe"], ["vocab", "fit"], ["vocab", "show"], ["vocab", "text"],
                                    ["inspect"], ["pretrain"], ["embed"], ["evaluate", "captions"], ["zero-shot"], ["finetune", "caption"], ["finetune", "next-step"], ["encode"],
                                    ["caption"], ["next-step"], ["retrieve"], ["demo"], ["demo-corpus"],
                                    ["index"], ["search"], ["serve"], ["encode"], ["doctor"]]
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

    /// `--top -1` is read by ArgumentParser as a missing value; the command's range check must
    /// say what is wrong instead ("--top must be in 1...10000"), with the usage exit status.
    func testNegativeNumbersReachTheRangeChecks() throws {
        let cases: [([String], String)] = [
            (["search", "/nonexistent-index", "onion", "--top", "-1"], "--top must be"),
            (["caption", "--checkpoint", "/nonexistent", "--corpus", "/nonexistent", "--out", "/tmp/x.json", "--beam", "-2"], "--beam must be"),
            (["index", "--videos", "/nonexistent", "--out", "/tmp/x-index", "--window", "-6s"], "--window must be"),
        ]
        for (args, message) in cases {
            let r = try CLI.run(args)
            XCTAssertEqual(r.status, 64, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(message), "\(args): \(r.stderr)")
            XCTAssertFalse(r.stderr.contains("Missing value"), r.stderr)
        }
        // A flag followed by a negative number still fails, and a missing value still says so.
        let flag = try CLI.run(["search", "/nonexistent-index", "onion", "--json", "-1"])
        XCTAssertEqual(flag.status, 64, flag.stderr)
        let missing = try CLI.run(["search", "/nonexistent-index", "onion", "--top"])
        XCTAssertTrue(missing.stderr.contains("Missing value"), missing.stderr)
    }

    func testUnknownSubcommandFails() throws {
        let r = try CLI.run(["no-such-command"])
        XCTAssertNotEqual(r.status, 0)
    }
}
