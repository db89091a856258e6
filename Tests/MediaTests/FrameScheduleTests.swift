import XCTest
@testable import Media

/// The fps-filter and constant-rate-sync logic on hand-made timestamp sequences
/// (timestamps already in units of 1/F), against what vf_fps.c and ffmpeg.c do by hand.
final class FrameScheduleTests: XCTestCase {
    /// For each output frame, the index of the input frame shown.
    func outputs(_ qs: [Int64], end: Int64, singleStream: Bool = false) -> [Int] {
        outputsAndSlots(qs, end: end, singleStream: singleStream).map(\.source)
    }

    func outputsAndSlots(_ qs: [Int64], end: Int64, singleStream: Bool = false) -> [(source: Int, slot: Int64)] {
        var schedule = FPSFilterSchedule()
        var sync = ConstantRateSync(startsAtFirstFrame: singleStream)
        var shown: [(source: Int, slot: Int64)] = []
        func write(_ run: FPSFilterSchedule.Run, _ source: Int) {
            guard run.count > 0 else { return }
            for p in run.first ..< run.first + run.count {
                let (first, n) = sync.copies(forTimestamp: p)
                for s in first ..< first + n { shown.append((source, s)) }
            }
        }
        for (i, q) in qs.enumerated() {
            write(schedule.push(q), i - 1)
        }
        write(schedule.finish(end: end), qs.count - 1)
        return shown
    }

    func testSameRateShowsEveryFrameOnce() {
        XCTAssertEqual(outputs([0, 1, 2, 3, 4], end: 5), [0, 1, 2, 3, 4])
    }

    func testLatestFrameAtOrBeforeEachSlotWins() {
        // Two inputs per output slot: the second of each pair is shown.
        XCTAssertEqual(outputs([0, 0, 1, 1, 2, 2], end: 3), [1, 3, 5])
    }

    func testGapsRepeatTheEarlierFrame() {
        XCTAssertEqual(outputs([0, 3, 4], end: 5), [0, 0, 0, 1, 2])
    }

    func testEndOfStreamDecidesHowLongTheLastFrameLasts() {
        XCTAssertEqual(outputs([0, 1], end: 4), [0, 1, 1, 1])
        // An end at the last frame's own slot drops it (status_pts <= next_pts).
        XCTAssertEqual(outputs([0, 1], end: 1), [0])
        XCTAssertEqual(outputs([5], end: 5), [])
    }

    func testInitialFramesWithoutTimestampAreDiscarded() {
        let none = FPSFilterSchedule.noTimestamp
        XCTAssertEqual(outputs([none, 0, 1], end: 2), [1, 2])
    }

    func testTimestampGoingBackwardsDropsTheFrameBeforeIt() {
        XCTAssertEqual(outputs([0, 2, 1, 3], end: 4), [0, 0, 2, 3])
    }

    func testLateStartIsFilledWithTheFirstOutputFrame() {
        // vsync CFR starts at 0: a first frame at slot 3 is written 4 times.
        XCTAssertEqual(outputs([3, 4, 5], end: 6), [0, 0, 0, 0, 1, 2])
        XCTAssertEqual(outputs([1, 2], end: 3), [0, 0, 1])
        // More than 3600 × 30 copies: the CLI skips the frame instead ("duplication too large").
        var sync = ConstantRateSync()
        XCTAssertEqual(sync.copies(forTimestamp: 200_000).count, 0)
        XCTAssertEqual(sync.slot, 0)
    }

    func testSingleStreamFileStartsAtTheFirstFrame() {
        // VSYNC_VSCFR: no copies before the first frame; its slot is kept.
        let shown = outputsAndSlots([3, 4, 5], end: 6, singleStream: true)
        XCTAssertEqual(shown.map(\.source), [0, 1, 2])
        XCTAssertEqual(shown.map(\.slot), [3, 4, 5])
        // A first frame within half a slot of 0 starts at 0 either way.
        XCTAssertEqual(outputsAndSlots([0, 1], end: 2, singleStream: true).map(\.slot), [0, 1])
        XCTAssertEqual(outputsAndSlots([3, 4], end: 5, singleStream: false).map(\.slot), [0, 1, 2, 3, 4])
    }

    func testEarlyStartKeepsEveryFrame() {
        // Slightly negative timestamps are written in order from slot 0 on.
        XCTAssertEqual(outputs([-1, 0, 1], end: 2), [0, 1, 2])
        var sync = ConstantRateSync()
        XCTAssertEqual(sync.copies(forTimestamp: -5).count, 0)  // more than 1.1 frames early: dropped
        XCTAssertEqual(sync.copies(forTimestamp: -2).count, 1)
        XCTAssertEqual(sync.written, 1)
    }

    func testFrameRateParsingMatchesTheFpsFilter() throws {
        XCTAssertEqual(try FrameRate(parsing: "20"), FrameRate(20))
        XCTAssertEqual(try FrameRate(parsing: "29.97"), FrameRate(num: 2997, den: 100))
        XCTAssertEqual(try FrameRate(parsing: "30000/1001"), FrameRate(num: 30000, den: 1001))
        XCTAssertEqual(try FrameRate(parsing: "7.5").description, "15/2")
        for bad in ["", "0", "-3", "abc", "1/0", "nan", "20000"] {
            XCTAssertThrowsError(try FrameRate(parsing: bad), bad)
        }
        XCTAssertEqual(FrameRate(20).frames(inSeconds: 1.5), 30)
        XCTAssertEqual(try FrameRate(parsing: "29.97").frames(inSeconds: 1.5), 45)
        XCTAssertEqual(FrameRate(num: 15, den: 2).time(ofFrame: 3), 0.4, accuracy: 1e-12)
    }
}
