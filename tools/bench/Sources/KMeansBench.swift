import Foundation
import Tensor
import Tokenize

/// Flat k-means on a float32 .npy ([rows, dim]): `bench kmeans --data FILE.npy --k 1024 --iters 10
/// --seed 1 [--out centroids.npy] [--skip-unmoved 1] [--init-per-centroid 16] [--round R] [--threads N]`.
/// Times the whole fit (k-means++ seeding included, reading the file excluded) and prints one
/// JSON line. tools/bench/kmeans.py runs it beside faiss-cpu and scikit-learn on the same data.
func benchKMeans(_ args: [String]) throws {
    let path = option(args, "data", "")
    guard !path.isEmpty else { throw VideoBertError("bench kmeans needs --data FILE.npy") }
    let k = Int(option(args, "k", "1024"))!
    let array = try NPY.read(path)
    guard array.shape.count == 2 else { throw VideoBertError("expected [rows, dim]", file: path) }
    let rows = array.shape[0], dim = array.shape[1]
    let points = try array.floats()
    var km = KMeans(clusters: k, iterations: Int(option(args, "iters", "10"))!, seed: UInt64(option(args, "seed", "1"))!)
    km.skipUnmovedCentroids = option(args, "skip-unmoved", "1") != "0"
    if let perCentroid = Int(option(args, "init-per-centroid", "")) { km.initPointsPerCentroid = perCentroid }
    km.workers = Int(option(args, "threads", String(VocabParallel.cores)))!
    if let round = Int(option(args, "round", "")) { km.seedingStepsPerRound = round }
    let verbose = option(args, "verbose", "0") != "0"
    let t0 = now()
    let cpu0 = processCPUSeconds()
    let model = try km.fit(points, rows: rows, dim: dim) { p in
        if verbose {
            logLine(String(format: "iter %d  inertia %.6g  changed %d  moved centroids %d  distances %.3f  %.2fs",
                           p.iteration, p.inertia, p.changed, p.movedCentroids, p.distanceFraction, p.seconds))
        }
    }
    let seconds = now() - t0
    let cpuSeconds = processCPUSeconds() - cpu0
    let out = option(args, "out", "")
    if !out.isEmpty { try NPY.write(model.centroids, shape: [k, dim], to: out) }
    printJSON(["benchmark": "kmeans", "rows": rows, "dim": dim, "k": k, "iterations": model.iterationsRun,
               "seconds": seconds, "cpu_seconds": cpuSeconds, "init_seconds": model.initSeconds, "inertia": model.inertia,
               "distance_fraction": model.distanceFraction, "reseeded": model.reseededClusters,
               "threads": km.workers, "skip_unmoved": km.skipUnmovedCentroids])
}

/// CPU time of all the process's threads (user + system): with other jobs on the machine, CPU
/// time over threads approximates the wall time the work would take alone.
func processCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Hierarchical k-means and visual-word assignment on an .npy of features:
/// `bench vocab --data FILE.npy [--branching 12] [--depth 4] [--iters 20] [--max-points 1000000]`.
/// Times the fit (sampling, every node's k-means, the assignment of every row) and then a
/// separate `assign` of every row (what tokenizing does per clip), and prints one JSON line.
func benchVocab(_ args: [String]) throws {
    let path = option(args, "data", "")
    guard !path.isEmpty else { throw VideoBertError("bench vocab needs --data FILE.npy") }
    let source = try NPYFeatureFiles(path: path)
    var hkm = HierarchicalKMeans(branching: Int(option(args, "branching", "12"))!, depth: Int(option(args, "depth", "4"))!,
                                 iterations: Int(option(args, "iters", "20"))!, seed: 0,
                                 maxPoints: Int(option(args, "max-points", "1000000"))!)
    hkm.workers = Int(option(args, "threads", String(VocabParallel.cores)))!
    let t0 = now(), c0 = processCPUSeconds()
    let vocab = try hkm.fit(source)
    let fitSeconds = now() - t0, fitCPU = processCPUSeconds() - c0
    let t1 = now(), c1 = processCPUSeconds()
    let assignment = try vocab.assign(source, workers: hkm.workers)
    let assignSeconds = now() - t1, assignCPU = processCPUSeconds() - c1
    printJSON(["benchmark": "vocab", "rows": source.rows, "dim": source.dim, "leaves": vocab.leaves,
               "fit_seconds": fitSeconds, "fit_cpu_seconds": fitCPU, "inertia": vocab.info.inertia,
               "assign_seconds": assignSeconds, "assign_cpu_seconds": assignCPU,
               "assign_rows_per_second": Double(source.rows) / assignSeconds,
               "assign_inertia": assignment.inertia, "used_leaves": vocab.info.usedLeaves])
}
