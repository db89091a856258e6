import Foundation
import Tensor

/// Every benchmark by name. Add one line per benchmark file.
let benchmarks: [String: @Sendable ([String]) throws -> Void] = [
    "sgemm": benchSgemm,
    "kmeans": benchKMeans,
    "wordpiece": benchWordPiece,
    "layers": benchLayers,
    "decode": benchDecode,
    "bert": benchBert,
    "conv": benchConv,
    "vocab": benchVocab,
    "logmel": benchLogMel,
    "resnet": benchResNet,
    "clip": benchCLIP,
    "s3d": benchS3D,
    "search-serve": benchSearchServe,
]

/// `--name value` options of a benchmark's arguments.
func option(_ args: [String], _ name: String, _ fallback: String) -> String {
    if let i = args.firstIndex(of: "--" + name), i + 1 < args.count { return args[i + 1] }
    return fallback
}

func now() -> Double { Date().timeIntervalSince1970 }

func printJSON(_ dict: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: dict, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}
