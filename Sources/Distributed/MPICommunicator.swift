import CMPI
import Foundation
import Tensor

/// MPI (OpenMPI) as a `Communicator`. `MPICommunicator.launched()` initialises MPI when the
/// process was started by a launcher (mpirun, mpiexec, srun) and returns nil otherwise, so the
/// same binary runs alone without MPI.
public final class MPICommunicator: Communicator, @unchecked Sendable {  // MPI calls are made from one thread (MPI_THREAD_FUNNELED)
    public let rank: Int
    public let size: Int
    private var bytes = 0
    private let lock = NSLock()

    /// Environment variables that launchers set: OpenMPI's mpirun, PMIx, Slurm's srun, Hydra.
    static let launcherVariables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"]

    nonisolated(unsafe) private static var shared: MPICommunicator?

    /// The world communicator when launched by mpirun/srun (MPI initialised once, finalised at
    /// exit); nil for a plain process.
    public static func launched() -> MPICommunicator? {
        if let shared { return shared }
        let env = ProcessInfo.processInfo.environment
        guard launcherVariables.contains(where: { env[$0] != nil }) else { return nil }
        var provided: Int32 = 0
        guard MPI_Init_thread(nil, nil, vb_mpi_thread_funneled(), &provided) == MPI_SUCCESS else { return nil }
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(vb_mpi_comm_world(), &r)
        MPI_Comm_size(vb_mpi_comm_world(), &s)
        let c = MPICommunicator(rank: Int(r), size: Int(s))
        shared = c
        atexit { MPI_Finalize() }
        return c
    }

    private init(rank: Int, size: Int) {
        self.rank = rank
        self.size = size
    }

    private func count(_ n: Int) {
        lock.lock(); bytes += n * 2 * (size - 1) / max(size, 1); lock.unlock()
    }

    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {
        guard size > 1, let p = buffer.baseAddress, buffer.count > 0 else { return }
        // Large buffers in chunks: MPI counts are Int32.
        var offset = 0
        while offset < buffer.count {
            let n = min(buffer.count - offset, 1 << 28)
            MPI_Allreduce(vb_mpi_in_place(), p + offset, Int32(n), vb_mpi_float(), vb_mpi_sum(), vb_mpi_comm_world())
            offset += n
        }
        count(buffer.count * 4)
    }

    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {
        guard size > 1, let p = buffer.baseAddress, buffer.count > 0 else { return }
        MPI_Allreduce(vb_mpi_in_place(), p, Int32(buffer.count), vb_mpi_double(), vb_mpi_sum(), vb_mpi_comm_world())
        count(buffer.count * 8)
    }

    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Int64>) {
        guard size > 1, let p = buffer.baseAddress, buffer.count > 0 else { return }
        MPI_Allreduce(vb_mpi_in_place(), p, Int32(buffer.count), vb_mpi_int64(), vb_mpi_sum(), vb_mpi_comm_world())
        count(buffer.count * 8)
    }

    public func allreduceMax(_ buffer: UnsafeMutableBufferPointer<Double>) {
        guard size > 1, let p = buffer.baseAddress, buffer.count > 0 else { return }
        MPI_Allreduce(vb_mpi_in_place(), p, Int32(buffer.count), vb_mpi_double(), vb_mpi_max(), vb_mpi_comm_world())
        count(buffer.count * 8)
    }

    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {
        guard size > 1, let p = buffer.baseAddress, buffer.count > 0 else { return }
        MPI_Bcast(p, Int32(buffer.count), vb_mpi_byte(), Int32(root), vb_mpi_comm_world())
        lock.lock(); bytes += buffer.count; lock.unlock()
    }

    public func barrier() {
        guard size > 1 else { return }
        MPI_Barrier(vb_mpi_comm_world())
    }

    public var bytesCommunicated: Int { lock.lock(); defer { lock.unlock() }; return bytes }
}

/// The communicator of this process: MPI's when launched by mpirun/srun, else a single process.
public func worldCommunicator() -> Communicator {
    MPICommunicator.launched() ?? SingleProcess()
}
