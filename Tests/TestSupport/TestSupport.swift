import Foundation
import XCTest

// Helpers every test target used to copy: where the repository's files are, fresh temporary
// folders, and a hand-written .npy for targets that do not link Tensor.

/// Paths in the repository (recipes, and what tools/setup installs).
public enum Repository {
    /// The repository's root folder (this file is Tests/TestSupport/TestSupport.swift).
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// `relative` under the root.
    public static func path(_ relative: String) -> String { (root as NSString).appendingPathComponent(relative) }

    /// The shipped recipes (Recipes/).
    public static var recipes: String { path("Recipes") }

    /// models/minilm-l6-h384-uncased, installed by tools/setup.
    public static var miniLM: String { path("models/minilm-l6-h384-uncased") }

    /// Vocab/bert-base-uncased.txt, installed by tools/setup: the test fails (and this throws)
    /// when it is missing.
    public static func bertVocabulary(file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let vocab = path("Vocab/bert-base-uncased.txt")
        guard FileManager.default.fileExists(atPath: vocab) else {
            XCTFail("\(vocab) is missing: run tools/setup (it installs the BERT uncased vocabulary)", file: file, line: line)
            throw CocoaError(.fileNoSuchFile)
        }
        return vocab
    }
}

extension XCTestCase {
    /// A fresh folder under the system temporary folder, `<named>-<UUID>`, removed when the test ends.
    public func temporaryFolder(named: String) throws -> String {
        let dir = (NSTemporaryDirectory() as NSString).appendingPathComponent("\(named)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }
}

/// A minimal .npy writer for test inputs (float32, or float16 when `float16`), independent of
/// the Tensor module's writer so that it checks it.
public func writeNPY(_ values: [Float], shape: [Int], to path: String, float16: Bool = false) throws {
    let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    var dict = "{'descr': '\(float16 ? "<f2" : "<f4")', 'fortran_order': False, 'shape': \(shapeText), }"
    let total = 10 + dict.utf8.count + 1
    dict += String(repeating: " ", count: (total + 63) / 64 * 64 - total) + "\n"
    var data = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(dict.utf8.count & 0xff), UInt8(dict.utf8.count >> 8)])
    data.append(Data(dict.utf8))
    if float16 {
        values.map { Float16($0).bitPattern }.withUnsafeBytes { data.append(contentsOf: $0) }
    } else {
        values.withUnsafeBytes { data.append(contentsOf: $0) }
    }
    try data.write(to: URL(fileURLWithPath: path))
}
