import Foundation
import XCTest

/// Fixtures written by tools/fixtures/caption_metrics.py (pycocoevalcap and the Java tools it runs).
enum Fixture {
    static func url(_ name: String, _ ext: String = "json") throws -> URL {
        try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Resources"),
                      "missing fixture \(name).\(ext): run tools/fixtures/caption_metrics.py")
    }

    static func path(_ name: String) throws -> String { try url(name).path }

    static func json(_ name: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: url(name)), options: [.fragmentsAllowed])
    }

    /// Raw captions in file order: (references from caption_references.json, predictions from caption_results.json).
    static func rawCaptions() throws -> (references: [String], results: [String]) {
        let refs = try XCTUnwrap(json("caption_references") as? [String: Any])["annotations"] as? [[String: Any]]
        let res = try json("caption_results") as? [[String: Any]]
        return (try XCTUnwrap(refs).map { $0["caption"] as? String ?? "" }, try XCTUnwrap(res).map { $0["caption"] as? String ?? "" })
    }

    /// [[a, b], ...] JSON as string pairs.
    static func pairs(_ name: String) throws -> [(String, String)] {
        let list = try XCTUnwrap(json(name) as? [[String]])
        return list.map { ($0[0], $0[1]) }
    }
}
