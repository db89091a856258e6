import XCTest
@testable import Tokenize

final class TranscriptTests: XCTestCase {
    func testCuesAreKeptInTimeOrder() {
        let t = Transcript(cues: [Cue(start: 5, end: 6, text: "b"), Cue(start: 1, end: 2, text: "a")])
        XCTAssertEqual(t.cues.map(\.text), ["a", "b"])
    }
}
