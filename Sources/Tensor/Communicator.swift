/// The processes of a run and the collective operations between them. One process without
/// MPI is `SingleProcess`; under `mpirun`/`srun` the `Distributed` module provides an MPI one.
/// Every collective must be called by every rank, in the same order.
public protocol Communicator: AnyObject, Sendable {
    var rank: Int { get }
    var size: Int { get }
    /// Element-wise sum over ranks, in place, on every rank.
    func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>)
    func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>)
    func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Int64>)
    /// Element-wise maximum over ranks, in place.
    func allreduceMax(_ buffer: UnsafeMutableBufferPointer<Double>)
    /// Rank `root`'s bytes to every rank (the others pass a buffer of the same size).
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int)
    func barrier()
    /// Bytes communicated so far by this rank's collectives (sent + received, as the algorithm
    /// would move them: for allreduce 2·(N−1)/N of the buffer).
    var bytesCommunicated: Int { get }
}

public extension Communicator {
    var isRoot: Bool { rank == 0 }

    func allreduceSum(_ values: inout [Double]) {
        values.withUnsafeMutableBufferPointer { allreduceSum($0) }
    }

    func allreduceSum(_ values: inout [Int64]) {
        values.withUnsafeMutableBufferPointer { allreduceSum($0) }
    }

    func allreduceSum(_ value: Double) -> Double {
        var v = [value]
        allreduceSum(&v)
        return v[0]
    }

    func allreduceSum(_ value: Int) -> Int {
        var v = [Int64(value)]
        allreduceSum(&v)
        return Int(v[0])
    }

    /// Rank `root`'s string to every rank.
    func broadcast(_ string: String, root: Int = 0) -> String {
        var count = [Int64(rank == root ? string.utf8.count : 0)]
        count.withUnsafeMutableBytes { broadcast($0, root: root) }
        var bytes = rank == root ? Array(string.utf8) : [UInt8](repeating: 0, count: Int(count[0]))
        bytes.withUnsafeMutableBytes { broadcast($0, root: root) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// One process: every collective is the identity.
public final class SingleProcess: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {}
    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) {}
    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Int64>) {}
    public func allreduceMax(_ buffer: UnsafeMutableBufferPointer<Double>) {}
    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) {}
    public func barrier() {}
    public var bytesCommunicated: Int { 0 }
}
