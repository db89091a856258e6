import Foundation
import Tensor
import XCTest

final class DoctorCLITests: XCTestCase {
    /// `doctor --json` reports the kernels this process's OpenBLAS runs under the same
    /// environment, and its advice is exactly `BLASKernels.advice` for this CPU.
    func testDoctorReportsKernelsAndAdvice() throws {
        let r = try CLI.run(["doctor", "--json", "--sgemm-size", "64"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let o = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
        XCTAssertEqual(o["openblas_core"] as? String, BLASKernels.core)
        XCTAssertGreaterThan(try XCTUnwrap(o["sgemm_gflops"] as? Double), 0)
        XCTAssertNotNil((o["libraries"] as? [String: String])?["libavcodec"])
        let advice = try XCTUnwrap(o["advice"] as? [String])
        let expected = BLASKernels.advice(core: BLASKernels.core, flags: CPUInfo.read().flags)
        XCTAssertEqual(advice.contains { $0.hasPrefix("OpenBLAS runs its") }, expected != nil, "\(advice)")
        if let expected { XCTAssertTrue(advice.contains(expected)) }

        let strict = try CLI.run(["doctor", "--strict", "--sgemm-size", "0"])
        XCTAssertEqual(strict.status, advice.isEmpty ? 0 : 1, strict.stdout + strict.stderr)
        XCTAssertTrue(strict.stdout.contains("openblas    "), strict.stdout)
        XCTAssertFalse(strict.stdout.contains("sgemm       "), "--sgemm-size 0 skips the measurement")

        let bad = try CLI.run(["doctor", "--sgemm-size", "100000"])
        XCTAssertEqual(bad.status, 64)
        XCTAssertTrue(bad.stderr.contains("--sgemm-size must be in 0...4096"), bad.stderr)
    }
}
