import ArgumentParser
import Foundation
import Media
import Tensor

/// `videobert doctor`: what this machine gives videobert — CPU, OpenBLAS's kernels and a measured
/// sgemm rate, FFmpeg's libraries and encoders, MPI — with advice where a setting costs speed.
struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check this machine's setup: CPU, OpenBLAS kernels and speed, FFmpeg, MPI.",
        discussion: """
        Prints one line per component and, under "advice", what to change. The most common \
        finding: on virtual machines that report a generic CPU model, OpenBLAS picks its SSE3 \
        kernels on a CPU with AVX-512 and every matrix product runs several times slower; \
        `OPENBLAS_CORETYPE` (read by OpenBLAS when it loads) fixes it. Exit status 0 whatever \
        it finds; `--strict` exits 1 when there is advice.

        Example:
          videobert doctor
          OPENBLAS_CORETYPE=SkylakeX videobert doctor --json
        """)

    @Flag(help: "One JSON object instead of text.") var json = false
    @Flag(help: "Exit 1 when there is advice (for setup scripts).") var strict = false
    @Option(help: "Side of the square sgemm timed (0: skip the measurement).") var sgemmSize: Int = 512

    struct Report: Codable {
        var cpu: String
        var cores: Int
        var vectorTier: String
        var openblasCore: String
        var openblasConfig: String
        var openblasCoretype: String?
        var threads: Int
        var sgemmGflops: Double?
        var ffmpeg: String
        var libraries: [String: String]
        var encoders: [String: Bool]
        var mpirun: String?
        var advice: [String]
    }

    func validate() throws {
        guard (0...4096).contains(sgemmSize) else { throw ValidationError("--sgemm-size must be in 0...4096") }
    }

    func run() throws {
        let cpu = CPUInfo.read()
        let core = BLASKernels.core
        var advice: [String] = []
        if let a = BLASKernels.advice(core: core, flags: cpu.flags) { advice.append(a) }
        let encoders = Dictionary(uniqueKeysWithValues: ["libx264", "aac", "mpeg4"].map { ($0, FFmpegLibraries.hasEncoder($0)) })
        if encoders["libx264"] == false {
            advice.append("libavcodec has no libx264 encoder: the demo writes MPEG-4 Part 2 videos instead of H.264 (install FFmpeg built with libx264)")
        }
        let mpirun = Self.which("mpirun")
        if mpirun == nil { advice.append("no mpirun on PATH: multi-process tokenize and pretrain need OpenMPI (tools/setup installs it)") }
        let report = Report(
            cpu: cpu.model.isEmpty ? "unknown" : cpu.model, cores: ProcessInfo.processInfo.activeProcessorCount,
            vectorTier: cpu.flags.isEmpty ? "unknown" : BLASKernels.best(flags: cpu.flags).tier.description,
            openblasCore: core, openblasConfig: BLASKernels.config,
            openblasCoretype: ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"],
            threads: Threads.count, sgemmGflops: sgemmSize > 0 ? Self.sgemmRate(sgemmSize) : nil,
            ffmpeg: FFmpegLibraries.release,
            libraries: Dictionary(uniqueKeysWithValues: FFmpegLibraries.versions.map { ($0.name, $0.version) }),
            encoders: encoders, mpirun: mpirun, advice: advice)
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys]
            e.keyEncodingStrategy = .convertToSnakeCase
            print(String(decoding: try e.encode(report), as: UTF8.self))
        } else {
            print("cpu         \(report.cpu), \(report.cores) cores, widest vectors \(report.vectorTier)")
            print("openblas    \(report.openblasConfig); kernels \(core)"
                  + (report.openblasCoretype.map { " (OPENBLAS_CORETYPE=\($0))" } ?? "") + ", \(report.threads) threads")
            if let r = report.sgemmGflops { print("sgemm       \(String(format: "%.1f", r)) GFLOP/s (\(sgemmSize)×\(sgemmSize)×\(sgemmSize))") }
            print("ffmpeg      \(report.ffmpeg): " + FFmpegLibraries.versions.map { "\($0.name) \($0.version)" }.joined(separator: ", "))
            print("encoders    " + encoders.keys.sorted().map { "\($0) \(encoders[$0]! ? "yes" : "no")" }.joined(separator: ", "))
            print("mpirun      \(mpirun ?? "not found")")
            print(advice.isEmpty ? "advice      none" : "advice")
            for a in advice { print("  - \(a)") }
        }
        if strict && !advice.isEmpty { throw ExitCode(1) }
    }

    /// The best of a few timed n×n×n products, in GFLOP/s (about 0.1–0.5 s in all).
    static func sgemmRate(_ n: Int) -> Double {
        var a = [Float](repeating: 0, count: n * n), b = a, c = a
        for i in 0..<(n * n) { a[i] = Float(i % 7) * 0.1; b[i] = Float(i % 5) * 0.1 }
        var best = Double.infinity
        var spent = 0.0, reps = 0
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    while reps < 3 || (spent < 0.3 && reps < 50) {
                        let t0 = DispatchTime.now().uptimeNanoseconds
                        BLAS.sgemm(m: n, n: n, k: n, a: pa.baseAddress!, b: pb.baseAddress!, c: pc.baseAddress!)
                        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                        best = min(best, dt); spent += dt; reps += 1
                    }
                }
            }
        }
        return 2 * Double(n) * Double(n) * Double(n) / max(best, 1e-9) / 1e9
    }

    /// The first executable `name` on PATH.
    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") where !dir.isEmpty {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }
}
