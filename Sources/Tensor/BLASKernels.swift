import CBLAS
import Foundation

/// Which kernels OpenBLAS runs, against what this CPU offers. Debian's OpenBLAS is built with
/// DYNAMIC_ARCH: at load it picks a kernel set ("core") from the CPU it sees. On virtual machines
/// that report a generic CPU model it can fall back to its SSE3 "Prescott" kernels on a CPU with
/// AVX-512, and matrix products run several times slower (BENCHMARKS.md: 37.7 against 206 GFLOP/s
/// on the benchmark machine). OpenBLAS reads `OPENBLAS_CORETYPE` once, when the library loads, so
/// a process cannot fix it for itself: `videobert doctor` says what to set.
public enum BLASKernels {
    /// The kernel set OpenBLAS chose ("SkylakeX", "Haswell", "Prescott", ...).
    public static var core: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p).trimmingCharacters(in: .whitespaces)
    }

    /// OpenBLAS's build line ("OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64").
    public static var config: String {
        guard let p = openblas_get_config() else { return "unknown" }
        return String(cString: p).trimmingCharacters(in: .whitespaces)
    }

    /// Vector instruction tiers, narrowest first; OpenBLAS's x86-64 cores map onto them.
    public enum Tier: Int, Comparable, Sendable, CustomStringConvertible {
        case sse = 0, avx, avx2, avx512
        public static func < (a: Tier, b: Tier) -> Bool { a.rawValue < b.rawValue }
        public var description: String { ["SSE", "AVX", "AVX2", "AVX-512"][rawValue] }
    }

    /// The tier of an OpenBLAS x86-64 core name (OpenBLAS's driver/others/dynamic.c lists them);
    /// nil for names this table does not know (other architectures, newer cores).
    public static func tier(ofCore name: String) -> Tier? {
        switch name.lowercased() {
        case "katmai", "coppermine", "northwood", "prescott", "banias", "core2", "penryn", "dunnington", "nehalem",
             "atom", "athlon", "opteron", "opteron_sse3", "barcelona", "nano", "bobcat":
            return .sse
        case "sandybridge", "bulldozer", "piledriver", "steamroller", "excavator":
            return .avx
        case "haswell", "zen", "skylake":
            return .avx2
        case "skylakex", "cooperlake", "sapphirerapids":
            return .avx512
        default:
            return nil
        }
    }

    /// The widest tier a CPU with these /proc/cpuinfo flags runs, and the OpenBLAS core to ask
    /// for it (`OPENBLAS_CORETYPE`). SkylakeX's kernels need AVX-512 F, CD, BW, DQ and VL.
    public static func best(flags: Set<String>) -> (tier: Tier, core: String) {
        if ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains) {
            return (.avx512, flags.contains("avx512_bf16") ? "Cooperlake" : "SkylakeX")
        }
        if flags.contains("avx2") && flags.contains("fma") { return (.avx2, "Haswell") }
        if flags.contains("avx") { return (.avx, "Sandybridge") }
        return (.sse, "Prescott")
    }

    /// One line of advice when OpenBLAS runs kernels narrower than the CPU offers, nil when it
    /// does not (or when either side is unknown).
    public static func advice(core: String, flags: Set<String>) -> String? {
        guard let running = tier(ofCore: core), !flags.isEmpty else { return nil }
        let best = best(flags: flags)
        guard running < best.tier else { return nil }
        return "OpenBLAS runs its \(core) kernels (\(running)) on a CPU with \(best.tier): matrix products are several times slower than they could be; "
            + "set OPENBLAS_CORETYPE=\(best.core) in the environment (OpenBLAS reads it when it loads)"
    }
}

/// What /proc/cpuinfo says of the first processor (Linux; empty elsewhere).
public struct CPUInfo: Sendable {
    public var model: String
    public var flags: Set<String>

    public static func read(_ path: String = "/proc/cpuinfo") -> CPUInfo {
        // /proc files report size 0; read a bounded prefix (the first processor's block).
        guard let handle = FileHandle(forReadingAtPath: path) else { return CPUInfo(model: "", flags: []) }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: 1 << 16)) ?? Data()
        return parse(String(decoding: data, as: UTF8.self))
    }

    /// The model name and the flags of the first processor block of a cpuinfo text.
    public static func parse(_ text: String) -> CPUInfo {
        var model = "", flags: Set<String> = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.trimmingCharacters(in: .whitespaces).isEmpty, !flags.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if key == "model name", model.isEmpty { model = value }
            if key == "flags" || key == "Features" { flags = Set(value.split(separator: " ").map(String.init)) }
        }
        return CPUInfo(model: model, flags: flags)
    }
}
