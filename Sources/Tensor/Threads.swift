import Foundation

/// How many threads this process uses for its own parallel loops (and OpenBLAS): the cores
/// divided among the ranks launched on this machine (mpirun/srun), unless `VIDEOBERT_THREADS`
/// says otherwise. Several ranks per machine then share the cores instead of oversubscribing.
public enum Threads {
    public static let count: Int = {
        let env = ProcessInfo.processInfo.environment
        if let s = env["VIDEOBERT_THREADS"], let n = Int(s), n > 0 { return n }
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let local = ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"].lazy
            .compactMap { env[$0].flatMap { Int($0.split(separator: "(").first ?? "") } }.first ?? 1
        return max(1, cores / max(local, 1))
    }()

    /// Sets OpenBLAS to `count` threads (call once at startup of multi-rank runs).
    public static func configureBLAS() {
        if BLAS.threads != count { BLAS.threads = count }
    }
}
