import Foundation
import XCTest
@testable import Tokenize

final class TranscriptTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "transcripts-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func write(_ name: String, _ text: String) throws -> String {
        let p = dir + "/" + name
        try text.write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }

    func testCuesAreKeptInTimeOrder() {
        let t = Transcript(cues: [Cue(start: 5, end: 6, text: "b"), Cue(start: 1, end: 2, text: "a")])
        XCTAssertEqual(t.cues.map(\.text), ["a", "b"])
    }

    func testWebVTTWithIdsNotesMarkupAndRollingCaptions() throws {
        let p = try write("a.vtt", """
        \u{FEFF}WEBVTT
        Kind: captions
        Language: en

        NOTE this is a comment
        spanning lines

        STYLE
        ::cue { color: red }

        intro
        00:00:01.000 --> 00:00:03.500 align:start position:0%
        <v Chef>now let's <c.yellow>stir</c> the&nbsp;sauce

        00:03.500 --> 00:05.000
        now let's stir the sauce
        and add<00:00:04.200><c> some</c> salt

        00:00:05.000 --> 00:00:07.000
        and add some salt

        """)
        let t = try SubtitleParser.parseFile(p)
        XCTAssertEqual(t.cues, [
            Cue(start: 1, end: 3.5, text: "now let's stir the sauce"),
            Cue(start: 3.5, end: 5, text: "and add some salt"),
        ])
    }

    func testSRTWithAndWithoutIndices() throws {
        let p = try write("b.srt", """
        1
        00:00:00,500 --> 00:00:02,000
        <i>Hello</i> there.

        2
        00:00:02,000 --> 00:00:04,250
        Second line
        continues here.

        00:01:00.000 --> 00:01:01.000
        no index
        """)
        let t = try SubtitleParser.parseFile(p)
        XCTAssertEqual(t.cues.map(\.text), ["Hello there.", "Second line continues here.", "no index"])
        XCTAssertEqual(t.cues[1].end, 4.25)
        XCTAssertEqual(t.cues[2].start, 60)
    }

    func testSubtitleErrorsNameFileAndLine() throws {
        let p1 = try write("bad.vtt", "WEBVTT\n\n00:00:01.000 --> 00:00:xx.000\nhello\n")
        XCTAssertThrowsError(try SubtitleParser.parseFile(p1)) { e in
            XCTAssertEqual("\(e)", "\(p1): line 3: bad timestamp in '00:00:01.000 --> 00:00:xx.000' (expected hh:mm:ss.mmm)")
        }
        let p2 = try write("nohead.vtt", "00:00:01.000 --> 00:00:02.000\nhello\n")
        XCTAssertThrowsError(try SubtitleParser.parseFile(p2)) { e in
            XCTAssertEqual("\(e)", "\(p2): line 1: missing WEBVTT header")
        }
        let p3 = try write("bad.srt", "1\n00:00:01,000 --> 00:00:02,000\nok\n\nfoo bar\nbaz\n")
        XCTAssertThrowsError(try SubtitleParser.parseFile(p3)) { e in
            XCTAssertTrue("\(e)".hasPrefix("\(p3): line 5: expected a cue number"), "\(e)")
        }
        XCTAssertThrowsError(try SubtitleParser.parseFile(dir + "/missing.vtt")) { e in
            XCTAssertTrue("\(e)".contains("no such transcript file"), "\(e)")
        }
    }

    func testHowTo100MAndYouCook2JSON() throws {
        let h = try write("raw_caption.json", """
        {"vid1": {"start": [0.5, 3.0], "end": [3.0, 6.2], "text": ["cut the onion", "into small pieces"]},
         "vid2": {"start": [], "end": [], "text": []}}
        """)
        let (kind, entries) = try CaptionJSON.parseCorpusFile(h)
        XCTAssertEqual(kind, .howTo100M)
        XCTAssertEqual(entries["vid1"]?.transcript.cues.last, Cue(start: 3.0, end: 6.2, text: "into small pieces"))
        XCTAssertEqual(entries["vid2"]?.transcript.cues, [])

        let y = try write("yc2.json", """
        {"database": {"GLd3aX16zBg": {"duration": 241.62, "subset": "training", "recipe_type": "113",
          "annotations": [{"segment": [90, 102], "id": 0, "sentence": "spread margarine on two slices of white bread"},
                          {"segment": [114, 127], "id": 1, "sentence": "place a slice of cheese on the bread"}]}}}
        """)
        let (kind2, e2) = try CaptionJSON.parseCorpusFile(y)
        XCTAssertEqual(kind2, .youCook2)
        XCTAssertEqual(e2["GLd3aX16zBg"]?.subset, "training")
        XCTAssertEqual(e2["GLd3aX16zBg"]?.transcript.cues.first?.start, 90)
    }

    func testJSONErrorsNameTheKey() throws {
        let h = try write("bad.json", """
        {"vidX": {"start": [0.5], "end": [3.0, 4.0], "text": ["a", "b"]}}
        """)
        XCTAssertThrowsError(try CaptionJSON.parseCorpusFile(h)) { e in
            XCTAssertEqual("\(e)", "\(h): key 'vidX': 'start', 'end' and 'text' have different lengths (1, 2, 2)")
        }
        let y = try write("badyc.json", """
        {"database": {"v": {"annotations": [{"segment": [5], "sentence": "x"}]}}}
        """)
        XCTAssertThrowsError(try CaptionJSON.parseCorpusFile(y)) { e in
            XCTAssertTrue("\(e)".contains("key 'database.v.annotations[0]': 'segment' must be [start, end]"), "\(e)")
        }
        let broken = try write("broken.json", "{\"a\": [1, 2,\n  }")
        XCTAssertThrowsError(try CaptionJSON.parseCorpusFile(broken)) { e in
            XCTAssertTrue("\(e)".hasPrefix("\(broken): invalid JSON"), "\(e)")
            XCTAssertFalse("\(e)".contains("\n"))
        }
        let backwards = try write("back.json", "[{\"start\": 5, \"end\": 2, \"text\": \"x\"}]")
        XCTAssertThrowsError(try CaptionJSON.parseSingleFile(backwards)) { e in
            XCTAssertTrue("\(e)".contains("item [0]: bad time span [5.0, 2.0]"), "\(e)")
        }
    }
}

final class SentenceSplitterTests: XCTestCase {
    func testPunctuatedTextSplitsAtSentenceEnds() {
        let t = Transcript(cues: [
            Cue(start: 0, end: 4, text: "First we chop the onions. Then"),
            Cue(start: 4, end: 8, text: "we fry them, e.g. in butter! Done?"),
        ])
        let s = SentenceSplitter().split(t) { _ in 1 }
        XCTAssertEqual(s.map(\.text), ["First we chop the onions.", "Then we fry them, e.g. in butter!", "Done?"])
        XCTAssertEqual(s[0].start, 0)
        XCTAssertLessThan(s[0].end, 4)
        XCTAssertGreaterThan(s[1].start, s[0].end - 1e-9)
        XCTAssertEqual(s[2].end, 8, accuracy: 1e-9)
    }

    func testASRWithoutPunctuationSplitsByLengthAndPause() {
        // 30 words over 15 s, then a long pause, then 3 words.
        var cues: [Cue] = []
        for k in 0..<10 { cues.append(Cue(start: Double(k) * 1.5, end: Double(k + 1) * 1.5, text: "one two three")) }
        cues.append(Cue(start: 40, end: 41, text: "after the pause"))
        let splitter = SentenceSplitter(mode: .auto, maxTokens: 12, maxSeconds: 100, pauseSeconds: 2)
        let s = splitter.split(Transcript(cues: cues)) { _ in 1 }
        XCTAssertEqual(s.map { $0.text.split(separator: " ").count }, [12, 12, 6, 3])
        XCTAssertEqual(s.last?.start, 40)
        let bySeconds = SentenceSplitter(mode: .length, maxTokens: 1000, maxSeconds: 4.5, pauseSeconds: 2).split(Transcript(cues: cues)) { _ in 1 }
        XCTAssertTrue(bySeconds.allSatisfy { $0.end - $0.start <= 4.5 + 1e-9 })
        // Token counting uses the callback (WordPieces, not words).
        let byPieces = SentenceSplitter(mode: .length, maxTokens: 12, maxSeconds: 100).split(Transcript(cues: cues)) { _ in 3 }
        XCTAssertEqual(byPieces.first?.text.split(separator: " ").count, 4)
    }
}

final class AlignerTests: XCTestCase {
    func testSentencesTakeOverlappingClipsAndGapsBecomeVideoOnly() {
        // 10 clips of 1.5 s: [0,1.5), [1.5,3), ...
        let clips = (0..<10).map { (start: Double($0) * 1.5, end: Double($0 + 1) * 1.5) }
        let sentences = [
            Aligner.TimedText(start: 1.6, end: 4.0, ids: [1, 2]),    // clips 1, 2
            Aligner.TimedText(start: 4.4, end: 4.6, ids: [3]),       // across clips 2 and 3
            Aligner.TimedText(start: 20.0, end: 21.0, ids: [4]),     // after the video: text only
        ]
        let segs = Aligner.align(sentences: sentences, clips: clips, maxVideoOnlyClips: 3)
        let summary = segs.map { "\($0.textIDs)/\($0.clipBegin)..<\($0.clipEnd)" }
        XCTAssertEqual(summary, ["[]/0..<1", "[1, 2]/1..<3", "[3]/2..<4", "[]/4..<7", "[]/7..<10", "[4]/10..<10"])
        XCTAssertTrue(segs[0].isVideoOnly)
    }
}
