import Tensor
import XCTest

final class BLASKernelsTests: XCTestCase {
    static let skylakeXFlags: Set<String> = ["sse3", "avx", "avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]

    func testAdviceWhenKernelsAreNarrowerThanTheCPU() throws {
        let a = try XCTUnwrap(BLASKernels.advice(core: "Prescott", flags: Self.skylakeXFlags))
        XCTAssertTrue(a.contains("OPENBLAS_CORETYPE=SkylakeX"), a)
        XCTAssertTrue(a.contains("Prescott") && a.contains("AVX-512"), a)
        XCTAssertTrue(try XCTUnwrap(BLASKernels.advice(core: "Haswell", flags: Self.skylakeXFlags)).contains("SkylakeX"))
        let bf16 = Self.skylakeXFlags.union(["avx512_bf16"])
        XCTAssertTrue(try XCTUnwrap(BLASKernels.advice(core: "Sandybridge", flags: bf16)).contains("OPENBLAS_CORETYPE=Cooperlake"))
        XCTAssertTrue(try XCTUnwrap(BLASKernels.advice(core: "Core2", flags: ["sse3", "avx", "avx2", "fma"])).contains("OPENBLAS_CORETYPE=Haswell"))
    }

    func testNoAdviceWhenKernelsMatchOrAreUnknown() {
        XCTAssertNil(BLASKernels.advice(core: "SkylakeX", flags: Self.skylakeXFlags))
        XCTAssertNil(BLASKernels.advice(core: "Cooperlake", flags: Self.skylakeXFlags))
        XCTAssertNil(BLASKernels.advice(core: "Haswell", flags: ["avx", "avx2", "fma"]))
        XCTAssertNil(BLASKernels.advice(core: "Zen", flags: ["avx", "avx2", "fma"]))
        // AVX-512 F alone is not enough for the SkylakeX kernels.
        XCTAssertNil(BLASKernels.advice(core: "Haswell", flags: ["avx", "avx2", "fma", "avx512f"]))
        XCTAssertNil(BLASKernels.advice(core: "ARMV8", flags: Self.skylakeXFlags))
        XCTAssertNil(BLASKernels.advice(core: "Prescott", flags: []))
    }

    func testCPUInfoReadsTheFirstProcessor() {
        let text = """
        processor\t: 0
        vendor_id\t: GenuineIntel
        model name\t: Intel(R) Xeon(R) Processor
        flags\t\t: fpu sse3 avx avx2 fma avx512f avx512cd avx512bw avx512dq avx512vl

        processor\t: 1
        model name\t: Other
        flags\t\t: fpu
        """
        let info = CPUInfo.parse(text)
        XCTAssertEqual(info.model, "Intel(R) Xeon(R) Processor")
        XCTAssertEqual(info.flags, ["fpu", "sse3", "avx", "avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"])
        XCTAssertEqual(BLASKernels.best(flags: info.flags).core, "SkylakeX")
        XCTAssertEqual(CPUInfo.parse("").flags, [])
    }
}
