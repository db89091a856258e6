import ArgumentParser
import Foundation
import Tensor
import Tokenize

/// `videobert vocab fit`: the visual vocabulary (hierarchical k-means over clip features).
struct VocabFit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fit",
        abstract: "Fit a visual vocabulary: hierarchical k-means over clip feature vectors.",
        discussion: """
        Every node is split into K children by k-means (greedy k-means++ seeding, Lloyd \
        iterations), D levels deep: K^D visual words (VideoBERT: K = 12, D = 4, 20,736 words). \
        A clip's visual word is found by descending from the root to the nearest child at each \
        level. The output folder holds level{l}.npy (float32 [K^(l+1), dim] centroids) and \
        vocab.json. Prints a JSON summary on stdout (leaves, inertia, seconds, points, dim, ...); \
        progress goes to stderr.

        Larger-than-memory corpora: the tree is fitted on a seeded sample of at most \
        --max-points clips (held in memory), each node on at most --sample of its clips; then \
        every clip is read again in chunks to measure the inertia.

        Example:
          videobert vocab fit --features features/ --branching 12 --depth 4 \\
              --iters 20 --seed 0 --out vocab/
        """
    )

    @Option(help: ArgumentHelp("Clip features: an .npy file [clips, dim] (float32 or float16), or a folder whose *.npy files (one per video) are read in name order.", valueName: "FILE.npy|DIR"))
    var features: String

    @Option(help: "Children per node (K).")
    var branching: Int = 12

    @Option(help: "Levels (D); the vocabulary has K^D words.")
    var depth: Int = 4

    @Option(help: "Lloyd iterations per node (at most; stops early when nothing changes).")
    var iters: Int = 20

    @Option(help: "Random seed (k-means++ seeding and samples); the same seed gives the same vocabulary.")
    var seed: UInt64 = 0

    @Option(help: ArgumentHelp("Output folder (replaced atomically if it is a visual vocabulary).", valueName: "DIR"))
    var out: String

    @Option(help: ArgumentHelp("Fit each node on at most M of its clips (a seeded sample). Default: 256 × K.", valueName: "M"))
    var sample: Int?

    @Option(help: ArgumentHelp("Fit the tree on at most P clips (a seeded sample held in memory; 0 = all). Every clip is still measured.", valueName: "P"))
    var maxPoints: Int = 1_000_000

    @Option(help: "Normalise vectors before clustering and assignment: none or l2.")
    var normalize: String = "none"

    @Option(help: "Threads (default: all cores).")
    var threads: Int?

    @Flag(help: "No progress on stderr.")
    var quiet = false

    func validate() throws {
        guard branching >= 2 else { throw ValidationError("--branching must be at least 2 (got \(branching))") }
        guard depth >= 1 else { throw ValidationError("--depth must be at least 1 (got \(depth))") }
        guard iters >= 1 else { throw ValidationError("--iters must be at least 1 (got \(iters))") }
        if let sample, sample < branching {
            throw ValidationError("--sample must be at least --branching (\(branching)) to split a node (got \(sample))")
        }
        guard maxPoints >= 0 else { throw ValidationError("--max-points must be ≥ 0 (got \(maxPoints))") }
        guard VisualVocabulary.Normalization(rawValue: normalize) != nil else {
            throw ValidationError("--normalize must be one of: \(VisualVocabulary.Normalization.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(normalize)')")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1 (got \(threads))") }
    }

    struct Summary: Encodable {
        var leaves: Int
        var inertia: Double
        var seconds: Double
        var points: Int
        var dim: Int
        var branching: Int
        var depth: Int
        var iterations: Int
        var seed: UInt64
        var fitPoints: Int
        var maxPointsPerNode: Int
        var usedLeaves: Int
        var normalization: String
        var files: Int
        var out: String
        enum CodingKeys: String, CodingKey {
            case leaves, inertia, seconds, points, dim, branching, depth, seed, normalization, files, out
            case iterations = "iters"
            case fitPoints = "fit_points", maxPointsPerNode = "max_points_per_node", usedLeaves = "used_leaves"
        }
    }

    func run() throws {
        let started = Date()
        let source = try NPYFeatureFiles(path: features)
        var hkm = HierarchicalKMeans(branching: branching, depth: depth, iterations: iters, seed: seed,
                                     maxPoints: maxPoints == 0 ? nil : maxPoints, maxPointsPerNode: sample)
        hkm.normalization = VisualVocabulary.Normalization(rawValue: normalize)!
        if let threads { hkm.workers = threads }
        hkm.showProgress = !quiet
        if !quiet {
            logLine("vocab: \(source.rows) clips × \(source.dim) from \(source.files.count) file(s); "
                    + "fitting \(branching)^\(depth) words on \(min(source.rows, hkm.maxPoints ?? source.rows)) clips")
        }
        let vocab = try hkm.fit(source)
        try vocab.save(to: out)
        let summary = Summary(leaves: vocab.leaves, inertia: vocab.info.inertia, seconds: Date().timeIntervalSince(started),
                              points: vocab.info.points, dim: vocab.dim, branching: branching, depth: depth, iterations: iters,
                              seed: seed, fitPoints: vocab.info.fitPoints, maxPointsPerNode: vocab.info.maxPointsPerNode,
                              usedLeaves: vocab.info.usedLeaves, normalization: normalize, files: source.files.count, out: out)
        print(try JSON.string(summary))
    }
}
