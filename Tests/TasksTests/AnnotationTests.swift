import Foundation
import XCTest
import Tensor
@testable import Tasks

final class AnnotationTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "annotations-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func file(_ name: String, _ text: String) throws -> String {
        let path = dir + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func assertError(_ path: String, contains parts: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try StepAnnotations.load(path), file: file, line: line) { e in
            let text = "\(e)"
            XCTAssertTrue(text.hasPrefix(path), "names the file: \(text)", file: file, line: line)
            XCTAssertFalse(text.contains("\n"), file: file, line: line)
            for p in parts { XCTAssertTrue(text.contains(p), "\"\(text)\" lacks \"\(p)\"", file: file, line: line) }
        }
    }

    func testYouCook2StepsInTimeOrderWithLabels() throws {
        let path = try file("yc2.json", """
        {"database": {"b": {"subset": "testing", "duration": 30, "annotations": [
            {"segment": [10, 20], "sentence": "stir the soup", "id": 1},
            {"segment": [1, 5], "sentence": "cut the garlic", "id": 0, "verb": "cut", "noun": "garlic"}]},
          "a": {"subset": "training", "annotations": [{"segment": [0, 2.5], "sentence": "x", "id": 0}]}}}
        """)
        let a = try StepAnnotations.load(path)
        XCTAssertEqual(a.format, .youCook2)
        XCTAssertEqual(a.videos, ["a", "b"])
        XCTAssertEqual(a.steps.map(\.imageID), ["a#0", "b#0", "b#1"])
        XCTAssertEqual(a.steps[1].captions, ["cut the garlic"])
        XCTAssertEqual(a.steps[1].verb, "cut")
        XCTAssertEqual(a.steps[1].start, 1)
        XCTAssertNil(a.steps[2].noun)
        XCTAssertEqual(a.steps[2].subset, "testing")
    }

    func testMSRVTTWholeVideoCaptions() throws {
        let path = try file("msrvtt.json", """
        {"info": {}, "videos": [{"video_id": "video1", "split": "test", "start time": 1.5, "end time": 9},
                                {"video_id": "video0", "split": "train"}],
         "sentences": [{"video_id": "video0", "caption": "a man cooks", "sen_id": 0},
                       {"video_id": "video1", "caption": "a cat", "sen_id": 1},
                       {"video_id": "video0", "caption": "someone is cooking", "sen_id": 2}]}
        """)
        let a = try StepAnnotations.load(path)
        XCTAssertEqual(a.format, .msrVTT)
        XCTAssertEqual(a.steps.map(\.imageID), ["video1#0", "video0#0"])
        XCTAssertEqual(a.steps[1].captions, ["a man cooks", "someone is cooking"])
        XCTAssertNil(a.steps[0].start)
        XCTAssertEqual(a.steps[0].subset, "test")
    }

    func testJSONLMergesReferencesOfTheSameSpan() throws {
        let path = try file("steps.jsonl", """
        {"video": "v", "start": 4, "end": 6, "caption": "second"}

        {"video": "v", "start": 0, "end": 2, "caption": "first", "verb": "cut"}
        {"video": "v", "start": 4, "end": 6, "caption": "second, again"}
        {"video": "w", "start": 0, "end": 1, "caption": "other"}
        """)
        let a = try StepAnnotations.load(path)
        XCTAssertEqual(a.format, .jsonl)
        XCTAssertEqual(a.steps.map(\.imageID), ["v#0", "v#1", "w#0"])
        XCTAssertEqual(a.steps[1].captions, ["second", "second, again"])
        XCTAssertEqual(a.steps[0].verb, "cut")
    }

    func testErrorsNameFileAndLineOrKey() throws {
        assertError(try file("a.jsonl", "{\"video\": \"v\", \"start\": 0, \"end\": 1, \"caption\": \"ok\"}\n{\"video\": \"v\", \"start\": 3, \"end\": 1, \"caption\": \"x\"}\n"),
                    contains: ["line 2", "bad time span"])
        assertError(try file("b.jsonl", "{\"video\": \"v\", \"start\": 0, \"end\": 1}\n"), contains: ["line 1", "'caption'"])
        assertError(try file("c.jsonl", "{\"video\": \"v\",\n"), contains: ["line 1", "invalid JSON"])
        assertError(try file("d.json", "{\"database\": {\"v\": {\"annotations\": [{\"segment\": [1], \"sentence\": \"s\"}]}}}"),
                    contains: ["database.v.annotations[0].segment"])
        assertError(try file("e.json", "{\"database\": {\"v\": {\"annotations\": [{\"segment\": [1, 2]}]}}}"),
                    contains: ["database.v.annotations[0].sentence"])
        assertError(try file("f.json", "{\"videos\": [], \"sentences\": [{\"video_id\": \"v\"}]}"), contains: ["sentences[0].caption"])
        assertError(try file("g.json", "{\"something\": 1}"), contains: ["no 'database'"])
        assertError(try file("h.json", "[1, 2"), contains: ["invalid JSON"])
        assertError(dir + "/missing.json", contains: ["no such annotations file"])
        let labels = try file("labels.json", "{\"verbs\": [\"cut\"], \"nouns\": [3]}")
        XCTAssertThrowsError(try LabelList.load(labels)) { e in XCTAssertTrue("\(e)".contains("nouns[0]") && "\(e)".hasPrefix(labels), "\(e)") }
    }

    func testLabelsFromFileOrAnnotations() throws {
        let labels = try LabelList.load(try file("labels.json", "{\"verbs\": [\"Cut\", \"stir\", \"cut\"], \"nouns\": [\"garlic\"]}"))
        XCTAssertEqual(labels.verbs, ["cut", "stir"])
        let a = StepAnnotations(file: "x", format: .jsonl, steps: [AnnotatedStep(video: "v", index: 0, start: 0, end: 1, captions: ["c"], verb: "cut", noun: "egg")])
        XCTAssertEqual(try LabelList.fromAnnotations(a), LabelList(verbs: ["cut"], nouns: ["egg"]))
        let none = StepAnnotations(file: "y", format: .jsonl, steps: [AnnotatedStep(video: "v", index: 0, start: 0, end: 1, captions: ["c"])])
        XCTAssertThrowsError(try LabelList.fromAnnotations(none)) { e in XCTAssertTrue("\(e)".contains("--labels"), "\(e)") }
    }

    /// A step's visual words are the clips overlapping its span; steps of videos the corpus lacks are skipped.
    func testStepsGetTheClipsOverlappingTheirSpan() throws {
        let f = try TaskFixture.get()
        let corpus = try f.corpus()
        let v = corpus.videoIndex["video3"]!
        let all = corpus.visualWords(video: v, start: nil, end: nil)
        XCTAssertEqual(all.count, 16)
        XCTAssertEqual(corpus.visualWords(video: v, start: 4.5, end: 6), Array(all[4..<6]))
        XCTAssertEqual(corpus.visualWords(video: v, start: 4, end: 4), [all[4]], "a zero-length span gets its clip")
        XCTAssertEqual(corpus.visualWords(video: v, start: 40, end: 50), [])
        let notes = StepAnnotations(file: "n.jsonl", format: .jsonl, steps: [
            AnnotatedStep(video: "video3", index: 0, start: 0.5, end: 2.5, captions: ["a"]),
            AnnotatedStep(video: "nowhere", index: 0, start: 0, end: 1, captions: ["b"]),
        ])
        let r = corpus.resolve(notes)
        XCTAssertEqual(r.steps.count, 1)
        XCTAssertEqual(r.steps[0].visual, Array(all[0..<3]))
        XCTAssertEqual(r.steps[0].split, "train")
        XCTAssertEqual(r.videosNotInCorpus, ["nowhere"])
        XCTAssertThrowsError(try r.withVideo(in: "test")) { e in XCTAssertTrue("\(e)".hasPrefix("n.jsonl: no annotated steps"), "\(e)") }
    }
}
