import Foundation
import XCTest
@testable import Tokenize

/// Transcripts in the encodings people actually have, and inputs that are not files
/// (docs/RELIABILITY.md, "silent wrong results"): one bad byte costs one character, never the
/// whole file's decoding; UTF-16 is read; a FIFO or folder is named, never waited on.
final class HostileTranscriptTests: XCTestCase {
    var dir: String!
    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "hostile-transcripts-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    func testOneInvalidByteIsReplacedAloneNotTheFileAsLatin1() throws {
        var bytes = Array("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\ncafé au lait\n\n00:00:03.000 --> 00:00:04.000\nbad ".utf8)
        bytes.append(0xFF)   // never valid in UTF-8
        bytes += Array(" byte\n".utf8)
        let p = dir + "/a.vtt"
        FileManager.default.createFile(atPath: p, contents: Data(bytes))
        let t = try SubtitleParser.parseFile(p)
        XCTAssertEqual(t.cues.map(\.text), ["café au lait", "bad \u{FFFD} byte"])
    }

    func testUTF16TranscriptsAreDecoded() throws {
        let text = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nsauté the onions\n"
        for (name, bom, enc) in [("le.vtt", [UInt8(0xFF), 0xFE], String.Encoding.utf16LittleEndian), ("be.vtt", [0xFE, 0xFF], .utf16BigEndian)] {
            let p = dir + "/" + name
            FileManager.default.createFile(atPath: p, contents: Data(bom) + text.data(using: enc)!)
            XCTAssertEqual(try SubtitleParser.parseFile(p).cues.map(\.text), ["sauté the onions"], name)
        }
        let srt = dir + "/a.srt"
        FileManager.default.createFile(atPath: srt, contents: Data([0xFF, 0xFE]) + "1\r\n00:00:01,000 --> 00:00:02,000\r\nstir\r\n".data(using: .utf16LittleEndian)!)
        XCTAssertEqual(try SubtitleParser.parseFile(srt).cues.map(\.text), ["stir"])
    }

    func testFIFOAndFolderAreNamedNotWaitedOn() throws {
        let fifo = dir + "/pipe.vtt"
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        XCTAssertThrowsError(try SubtitleParser.parseFile(fifo)) { e in
            XCTAssertEqual("\(e)", "\(fifo): is a FIFO (named pipe), not a regular file")
        }
        let folder = dir + "/folder.srt"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        XCTAssertThrowsError(try SubtitleParser.parseFile(folder)) { e in
            XCTAssertEqual("\(e)", "\(folder): is a folder, not a regular file")
        }
        let bin = dir + "/bin.vtt"
        FileManager.default.createFile(atPath: bin, contents: Data([0x57, 0x45, 0, 0, 1, 2, 3]))
        XCTAssertThrowsError(try SubtitleParser.parseFile(bin)) { e in XCTAssertTrue("\(e)".contains("binary"), "\(e)") }
    }
}
