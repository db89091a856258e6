import XCTest
@testable import Tasks
@testable import Train
import Tokenize

/// A damaged trainer_state.json sampler is named before a resume uses it as indices
/// (docs/RELIABILITY.md, "damaged state"). The VideoBERT sampler's case runs end to end in
/// ReliabilityCLITests.testDamagedTrainerStateIsNamedOnResume.
final class SamplerStateTests: XCTestCase {
    func testCaptionSamplerStateIsChecked() {
        let special = SpecialTokens(pad: 0, unk: 3, cls: 4, sep: 5, mask: 6, videoSeparator: 1)
        let items = [CaptionItem(imageID: "a#0", text: [10, 11], video: [0, 1]), CaptionItem(imageID: "b#0", text: [12], video: [2])]
        let ex = CaptionExamples(items: items, special: special, textVocabSize: 20, seed: 3)
        XCTAssertNil(ex.problem(with: ex.state))
        var s = ex.state
        s.cursor = 1_000_000
        XCTAssertEqual(ex.problem(with: s), "sampler.cursor = 1000000 is outside 0...5")
        s = ex.state
        s.order[0] = -2
        XCTAssertEqual(ex.problem(with: s), "sampler.order holds pair -2, outside 0..<5")
        s = ex.state
        s.order.removeLast()
        XCTAssertEqual(ex.problem(with: s), "sampler.order has 4 pairs, these annotations 5")
    }
}
