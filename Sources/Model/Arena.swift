/// The size table of an `Arena`: named activation buffers, each starting on a 64-byte boundary.
/// Build it once per (batch, sequence length) shape, as llm.c's `fill_in_activation_sizes`:
///
///     var layout = ArenaLayout()
///     let ln1 = layout.add("l0.ln1", [B, T, C])          // [B, T, C]
///     let att = layout.add("l0.att", [B, NH, T, T])      // [B, NH, T, T]
///     let arena = Arena(layout)
///     layerNormForward(out: arena[ln1], ...)
public struct ArenaLayout: Sendable {
    public private(set) var slots: [TensorSlot] = []
    /// Floats needed, padding included.
    public private(set) var count: Int = 0
    private var indexByName: [String: Int] = [:]

    /// Floats per alignment unit: 16 floats = 64 bytes.
    static let alignment = 16

    public init() {}

    /// Appends a buffer; names must be unique.
    @discardableResult
    public mutating func add(_ name: String, _ shape: [Int]) -> TensorSlot {
        precondition(indexByName[name] == nil, "duplicate arena buffer '\(name)'")
        let slot = TensorSlot(name: name, shape: shape, offset: count)
        indexByName[name] = slots.count
        slots.append(slot)
        count += (slot.count + Self.alignment - 1) / Self.alignment * Self.alignment
        return slot
    }

    /// The slot named `name`, or nil.
    public func slot(named name: String) -> TensorSlot? {
        indexByName[name].map { slots[$0] }
    }
}

/// Activations (and their gradients) in ONE allocation carved by an `ArenaLayout`. Allocated once
/// and reused from step to step: a training step writes forward outputs over the previous step's,
/// so the steady state allocates nothing. Buffers that backward accumulates into (`+=`) must be
/// zeroed first (`zero(_:)`); forward outputs need not be.
///
/// Not Sendable: it owns raw memory that kernels mutate in place.
public final class Arena {
    public let layout: ArenaLayout
    /// [layout.count] the storage, zeroed at allocation.
    public let base: UnsafeMutablePointer<Float>

    public init(_ layout: ArenaLayout) {
        self.layout = layout
        self.base = allocateFloats(layout.count)
    }

    deinit { freeFloats(base) }

    /// Bytes held.
    public var bytes: Int { layout.count * MemoryLayout<Float>.stride }

    /// Pointer to the first element of `slot` (a slot of this arena's layout).
    @inline(__always)
    public subscript(slot: TensorSlot) -> UnsafeMutablePointer<Float> {
        base + slot.offset
    }

    /// Pointer to the buffer named `name`; a missing name is a programming error.
    public func pointer(_ name: String) -> UnsafeMutablePointer<Float> {
        guard let s = layout.slot(named: name) else { preconditionFailure("no arena buffer named '\(name)'") }
        return base + s.offset
    }

    /// The buffer named `name` as a buffer pointer.
    public func buffer(_ name: String) -> UnsafeMutableBufferPointer<Float> {
        guard let s = layout.slot(named: name) else { preconditionFailure("no arena buffer named '\(name)'") }
        return UnsafeMutableBufferPointer(start: base + s.offset, count: s.count)
    }

    /// Sets one buffer to zero.
    public func zero(_ slot: TensorSlot) {
        let p = base + slot.offset
        Parallel.forEachRange(slot.count, grain: 1 << 18) { r in (p + r.lowerBound).update(repeating: 0, count: r.count) }
    }

    /// Sets the whole arena to zero.
    public func zeroAll() {
        let p = base
        Parallel.forEachRange(layout.count, grain: 1 << 18) { r in (p + r.lowerBound).update(repeating: 0, count: r.count) }
    }
}
