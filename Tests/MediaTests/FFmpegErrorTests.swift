import XCTest
@testable import Media

final class FFmpegErrorTests: XCTestCase {
    func testErrorCodesBecomeText() {
        // AVERROR_INVALIDDATA is FFERRTAG('I','N','D','A') negated.
        let invalidData = -Int32(bitPattern: UInt32(0x49) | UInt32(0x4E) << 8 | UInt32(0x44) << 16 | UInt32(0x41) << 24)
        XCTAssertEqual(ffmpegErrorString(invalidData), "Invalid data found when processing input")
        XCTAssertThrowsError(try check(invalidData, "open input", file: "x.mp4")) { e in
            XCTAssertEqual("\(e)", "x.mp4: open input: Invalid data found when processing input")
        }
    }
}
