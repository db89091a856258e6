import Foundation
import Tensor

// tools/bench: the Swift side of the side-by-side benchmarks in BENCHMARKS.md.
// Build in release (`swift build -c release --product bench`), then run through tools/bench/run.
// Each subcommand prints one JSON line with its measurements on stdout.

let args = Array(CommandLine.arguments.dropFirst())
guard let which = args.first else {
    logLine("usage: bench <\(benchmarks.keys.sorted().joined(separator: "|"))> [options]")
    exit(2)
}
guard let run = benchmarks[which] else {
    logLine("bench: unknown benchmark '\(which)'; one of: \(benchmarks.keys.sorted().joined(separator: ", "))")
    exit(2)
}
do {
    try run(Array(args.dropFirst()))
} catch {
    logLine("error: \(error)")
    exit(1)
}
