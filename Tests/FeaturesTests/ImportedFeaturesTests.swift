import Foundation
import XCTest
@testable import Features
import Tensor

final class ImportedFeaturesTests: XCTestCase {
    func testFloat16AndFloat32LoadAndBadFilesAreNamed() throws {
        let dir = NSTemporaryDirectory() + "feat-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try NPY.write([Float](repeating: 0.5, count: 12), shape: [3, 4], to: dir + "/v1.npy")
        let f = try ImportedFeatures(path: dir + "/v1.npy", videoID: "v1", secondsPerRow: 1)
        XCTAssertEqual(f.rows, 3); XCTAssertEqual(f.dim, 4)
        XCTAssertEqual(f.span(ofRow: 2).start, 2)

        let halves: [UInt16] = [Float16(1.5), Float16(-2)].map(\.bitPattern)
        var arr = NPYArray(dtype: .float16, shape: [1, 2], data: halves.withUnsafeBytes { Data($0) })
        try NPY.write(arr, to: dir + "/v2.npy")
        XCTAssertEqual(try ImportedFeatures(path: dir + "/v2.npy", videoID: "v2", secondsPerRow: 1).values, [1.5, -2])

        arr = NPYArray(dtype: .int32, shape: [2], data: Data(count: 8))
        try NPY.write(arr, to: dir + "/bad.npy")
        XCTAssertThrowsError(try ImportedFeatures(path: dir + "/bad.npy", videoID: "bad", secondsPerRow: 1)) { e in
            XCTAssertTrue("\(e)".hasPrefix(dir + "/bad.npy: features must be float32"), "\(e)")
        }
        try NPY.write([Float.nan, 1], shape: [1, 2], to: dir + "/nan.npy")
        XCTAssertThrowsError(try ImportedFeatures(path: dir + "/nan.npy", videoID: "nan", secondsPerRow: 1)) { e in
            XCTAssertTrue("\(e)".contains("row 0 holds a NaN"), "\(e)")
        }
    }
}
