import Foundation
import Index
import Serve
import Tensor

/// `bench search-serve`: a synthetic index served over HTTP for tools/bench/search.sh's load test.
///
/// --segments N (100,000) segments of --dim E (256) seeded random unit embeddings, in videos of
/// 100 segments, with transcripts drawn from a small cooking vocabulary ("now let's stir the
/// tomatoes and ..."), written with the same writer as `videobert index` into --out. The query
/// encoder is a stand-in with the same cost profile for the server (no model forward): a seeded
/// random unit vector per query, from a hash of its text. Serves on 127.0.0.1 (--port, 0: any)
/// like `videobert serve` (one OpenBLAS thread per call; --ranking-threads threads rank the
/// batched embedding queries, 1 as in `videobert serve`), prints "serving http://127.0.0.1:PORT/"
/// once listening, and runs until SIGTERM.
func benchSearchServe(_ args: [String]) throws {
    let N = Int(option(args, "segments", "100000"))!, E = Int(option(args, "dim", "256"))!
    let out = option(args, "out", NSTemporaryDirectory() + "videobert-bench-index")
    let port = Int(option(args, "port", "0"))!
    let verbs = ["stir", "cut", "pour", "flip", "shake", "roll", "mash", "peel", "sprinkle", "whisk", "slice", "boil"]
    let nouns = ["tomatoes", "onions", "garlic", "rice", "eggs", "fish", "butter", "salt", "pepper", "oil", "cheese", "bread",
                 "carrots", "potatoes", "lettuce", "cucumber", "chicken", "pasta", "flour", "sugar", "milk", "mushrooms", "beans", "corn"]
    let fillers = ["now let's", "go ahead and", "i'm going to", "next we", "then you", "and"]
    let t0 = now()
    if !FileManager.default.fileExists(atPath: out + "/" + VideoIndex.databaseName) {
        try AtomicFile.createDirectory(out)
        var rng = SeededRNG(seed: 7)
        var videos: [IndexBuilder.Indexed] = []
        let perVideo = 100
        for v in 0..<((N + perVideo - 1) / perVideo) {
            let key = String(format: "%016x", 0x5EED_0000_0000 + v)
            let count = min(perVideo, N - v * perVideo)
            var segments: [IndexedSegment] = [], embeddings: [[Float]] = []
            for k in 0..<count {
                var words: [String] = []
                for _ in 0..<(1 + rng.nextInt(3)) {
                    words += [fillers[rng.nextInt(fillers.count)], verbs[rng.nextInt(verbs.count)], "the", nouns[rng.nextInt(nouns.count)]]
                }
                segments.append(IndexedSegment(id: "\(key)-\(k)", row: 0, video: "synthetic\(v)", path: "/nonexistent/synthetic\(v).mp4",
                                                start: Double(k) * 4, end: Double(k) * 4 + 4, text: words.joined(separator: " "),
                                                thumbnail: "thumbnails/none.png"))
                var e = (0..<E).map { _ in rng.nextFloat() - 0.5 }
                let inv = 1 / max(1e-12, e.reduce(0) { $0 + $1 * $1 }.squareRoot())
                for i in 0..<E { e[i] *= inv }
                embeddings.append(e)
            }
            videos.append(.init(video: IndexedVideo(key: key, id: "synthetic\(v)", path: "/nonexistent/synthetic\(v).mp4", fingerprint: "synthetic",
                                                    duration: Double(count) * 4, segments: count, segmentation: "transcript"),
                                segments: segments, embeddings: embeddings))
        }
        _ = try IndexBuilder.write(folder: out, videos: &videos, encoder: ("synthetic", E), note: "synthetic embeddings (tools/bench)")
        logLine("bench: wrote a synthetic index of \(N) × \(E) to \(out) in \(String(format: "%.1f", now() - t0)) s")
    }
    let index = try VideoIndex(folder: out, connections: max(2, ProcessInfo.processInfo.activeProcessorCount))
    let dim = index.embeddings?.columns ?? E
    BLAS.threads = 1
    var options = SearchServer.Options()
    options.port = port
    options.rankingThreads = Int(option(args, "ranking-threads", "1")) ?? 1
    let server = try SearchServer(index: index, embed: { text in
        var rng = SeededRNG(seed: UInt64(truncatingIfNeeded: text.utf8.reduce(UInt64(1469598103934665603)) { ($0 ^ UInt64($1)) &* 1099511628211 }))
        var e = (0..<dim).map { _ in rng.nextFloat() - 0.5 }
        let inv = 1 / max(1e-12, e.reduce(0) { $0 + $1 * $1 }.squareRoot())
        for i in 0..<dim { e[i] *= inv }
        return e
    }, options: options)
    let done = DispatchSemaphore(value: 0)
    Task {
        do {
            try await server.run { port in
                FileHandle.standardOutput.write(Data("serving http://127.0.0.1:\(port)/\n".utf8))
            }
        } catch {
            logLine("error: \(error)")
        }
        done.signal()
    }
    done.wait()
}
