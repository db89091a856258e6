import Foundation

// A restricted reader for the files `torch.save` writes (`.pth`, `.pt`, `.bin`; torch ≥ 1.6):
// a zip archive holding `<prefix>/data.pkl` (a pickle of the saved object), one entry
// `<prefix>/data/<key>` per tensor storage (raw little-endian elements) and
// `<prefix>/byteorder`. Reference: PyTorch's `torch/serialization.py` (`_save`, `_load`:
// https://github.com/pytorch/pytorch/blob/main/torch/serialization.py) and
// `caffe2/serialize/inline_container.cc` (the zip writer: entries stored, not compressed).
//
// Unlike `torch.load`, nothing in the pickle is executed. The unpickler below knows the opcodes
// of pickle protocol 2 (and the few protocol-4 framing opcodes) that a state dict needs, and
// only these globals: `torch._utils._rebuild_tensor_v2` / `_rebuild_parameter` (which become a
// tensor description here), `torch.<Type>Storage` (an element type), `collections.OrderedDict`
// (a dict). Any other global — `os.system`, `builtins.eval`, a user class — is refused with an
// error before anything else happens, and so are opcodes that build arbitrary objects.
// Pickle opcodes: https://github.com/python/cpython/blob/main/Lib/pickletools.py

/// A `torch.save` zip archive, read without executing its pickle: the flat map of tensors it holds.
public struct TorchFile: Sendable {
    /// Element types of torch storages (`torch.FloatStorage`, …).
    public enum DType: String, Sendable {
        case float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8, bool
        public var size: Int {
            switch self {
            case .float64, .int64: return 8
            case .float32, .int32: return 4
            case .float16, .bfloat16, .int16: return 2
            case .int8, .uint8, .bool: return 1
            }
        }
        static let byStorageName: [String: DType] = [
            "FloatStorage": .float32, "DoubleStorage": .float64, "HalfStorage": .float16,
            "BFloat16Storage": .bfloat16, "LongStorage": .int64, "IntStorage": .int32,
            "ShortStorage": .int16, "CharStorage": .int8, "ByteStorage": .uint8, "BoolStorage": .bool,
        ]
    }

    /// One tensor: a strided view into a storage (an archive entry).
    public struct Entry: Sendable {
        public var dtype: DType
        public var shape: [Int]
        public var strides: [Int]
        /// In elements, from the start of the storage.
        public var offset: Int
        /// The storage's entry name in the archive and its byte range in the file.
        public var storage: String
        var bytes: Range<Int>
    }

    public let path: String
    /// Tensor name → description; names as in the state dict (see `read` for the unwrapping).
    public let entries: [String: Entry]
    let data: Data

    public var names: [String] { entries.keys.sorted() }
    public func shape(_ name: String) -> [Int]? { entries[name]?.shape }

    /// Largest pickle accepted (a state dict's pickle is kilobytes to a few megabytes).
    static let maxPickleBytes = 256 << 20
    /// Largest number of elements in one tensor (2³⁴: 64 GB of float32).
    static let maxElements = 1 << 34

    /// The tensor as contiguous Float32 values (row-major over `shape`), converted from its
    /// storage type and gathered through its strides and offset.
    public func floats(_ name: String) throws -> [Float] {
        guard let e = entries[name] else { throw VideoBertError("no tensor named '\(name)'", file: path) }
        let n = e.shape.reduce(1, *)
        var out = [Float](repeating: 0, count: n)
        if n == 0 { return out }
        data.withUnsafeBytes { raw in
            let base = raw.baseAddress!.advanced(by: e.bytes.lowerBound)
            let load: (Int) -> Float
            switch e.dtype {
            case .float32: load = { Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            case .float64: load = { Float(Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))) }
            case .float16: load = { Float(Float16(bitPattern: UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)))) }
            case .bfloat16: load = { Float(bitPattern: UInt32(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) << 16) }
            case .int64: load = { Float(Int64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self))) }
            case .int32: load = { Float(Int32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
            case .int16: load = { Float(Int16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self))) }
            case .int8: load = { Float(base.load(fromByteOffset: $0, as: Int8.self)) }
            case .uint8, .bool: load = { Float(base.load(fromByteOffset: $0, as: UInt8.self)) }
            }
            let rank = e.shape.count
            // Fast path: a contiguous float32 tensor is one copy.
            if e.dtype == .float32 && e.strides == Self.contiguousStrides(e.shape) {
                out.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(start: base + 4 * e.offset, count: 4 * n)) }
                #if _endian(big)
                for i in 0..<n { out[i] = load(e.offset + i) }
                #endif
                return
            }
            // General strided gather: an odometer over the index, innermost dimension fastest.
            var index = [Int](repeating: 0, count: rank)
            var at = e.offset
            let inner = rank == 0 ? 1 : e.shape[rank - 1], innerStride = rank == 0 ? 0 : e.strides[rank - 1]
            var i = 0
            out.withUnsafeMutableBufferPointer { o in
                while i < n {
                    var p = at
                    for j in 0..<inner { o[i + j] = load(p); p += innerStride }
                    i += inner
                    var d = rank - 2
                    while d >= 0 {
                        index[d] += 1
                        at += e.strides[d]
                        if index[d] < e.shape[d] { break }
                        at -= e.strides[d] * e.shape[d]
                        index[d] = 0
                        d -= 1
                    }
                }
            }
        }
        return out
    }

    static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var s = 1
        for d in stride(from: shape.count - 1, through: 0, by: -1) { strides[d] = s; s *= shape[d] }
        return strides
    }

    /// Reads the archive at `path` and describes every tensor in it (no tensor data is copied).
    ///
    /// The saved object must be a dict of tensors (a `state_dict()`), possibly nested in plain
    /// containers: nested dicts join their keys with ".", lists and tuples use indices. Legacy
    /// training checkpoints `{"state_dict": {...}, ...}` or `{"model": {...}, ...}` are unwrapped to
    /// that dict (other entries, such as an epoch number, are ignored), and a "module." prefix on
    /// every key (a model wrapped in `nn.DataParallel`) is removed.
    public static func read(_ path: String) throws -> TorchFile {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else {
            throw VideoBertError(FileManager.default.fileExists(atPath: path) ? "cannot read file" : "no such file", file: path)
        }
        if data.count >= 2, data[data.startIndex] == 0x80, data[data.startIndex + 1] == 0x02 {
            throw VideoBertError("a legacy torch.save file (PyTorch < 1.6, not a zip archive): re-save it with torch.save in PyTorch ≥ 1.6", file: path)
        }
        let zip = try ZipIndex(data: data, path: path)
        guard let pkl = zip.entries.keys.filter({ $0 == "data.pkl" || $0.hasSuffix("/data.pkl") }).min(by: { $0.count < $1.count }) else {
            throw VideoBertError("not a torch.save archive (no data.pkl entry)", file: path)
        }
        let prefix = String(pkl.dropLast("data.pkl".count))
        if let bo = zip.entries[prefix + "byteorder"] {
            let text = String(decoding: data[data.startIndex + bo.lowerBound ..< data.startIndex + bo.upperBound], as: UTF8.self)
            guard text == "little" else { throw VideoBertError("archive byteorder '\(text)' is not supported (only little-endian)", file: path) }
        }
        let pklRange = zip.entries[pkl]!
        guard pklRange.count <= maxPickleBytes else { throw VideoBertError("data.pkl is \(pklRange.count) bytes (more than \(maxPickleBytes))", file: path) }
        let pickle = [UInt8](data[data.startIndex + pklRange.lowerBound ..< data.startIndex + pklRange.upperBound])
        var unpickler = Unpickler(bytes: pickle, path: path)
        let root = try unpickler.run()

        // Flatten to name → tensor.
        var tensors: [(String, TensorRef)] = []
        // Memo references can make a small pickle describe a huge tree (a tuple holding the same
        // tuple twice, 32 deep): the walk is bounded in nodes as well as in depth.
        var budget = 1_000_000
        func flatten(_ v: PValue, _ name: String, depth: Int) throws {
            guard depth < 32 else { throw VideoBertError("containers nested more than 32 deep at '\(name)'", file: path) }
            budget -= 1
            guard budget >= 0 else { throw VideoBertError("the pickle describes more than 1,000,000 objects", file: path) }
            switch v {
            case .tensor(let t): tensors.append((name, t))
            case .dict(let items):
                for (k, v) in items {
                    let key: String
                    switch k {
                    case .string(let s): key = s
                    case .int(let i): key = String(i)
                    default: continue
                    }
                    try flatten(v, name.isEmpty ? key : name + "." + key, depth: depth + 1)
                }
            case .list(let items), .tuple(let items):
                for (i, v) in items.enumerated() { try flatten(v, name.isEmpty ? String(i) : name + "." + String(i), depth: depth + 1) }
            default: break
            }
        }
        var top = root
        if case .dict(let items) = root {
            for wrapper in ["state_dict", "model"] {
                if let inner = items.first(where: { $0.0 == .string(wrapper) })?.1, case .dict = inner { top = inner; break }
            }
        }
        try flatten(top, "", depth: 0)
        guard !tensors.isEmpty else { throw VideoBertError("the archive holds no tensors (expected a state dict)", file: path) }
        if tensors.allSatisfy({ $0.0.hasPrefix("module.") }) {
            tensors = tensors.map { (String($0.0.dropFirst("module.".count)), $0.1) }
        }

        var entries: [String: Entry] = [:]
        for (name, t) in tensors {
            guard entries[name] == nil else { throw VideoBertError("tensor '\(name)' appears twice", file: path) }
            let entryName = prefix + "data/" + t.key
            guard let range = zip.entries[entryName] else {
                throw VideoBertError("tensor '\(name)': storage '\(t.key)' has no data/\(t.key) entry in the archive", file: path)
            }
            guard t.shape.count == t.strides.count, t.shape.count <= 16 else {
                throw VideoBertError("tensor '\(name)': shape \(t.shape) and strides \(t.strides) do not match", file: path)
            }
            guard t.shape.allSatisfy({ $0 >= 0 }), t.strides.allSatisfy({ $0 >= 0 }), t.offset >= 0 else {
                throw VideoBertError("tensor '\(name)': negative size, stride or offset (shape \(t.shape), strides \(t.strides), offset \(t.offset))", file: path)
            }
            var count = 1
            for s in t.shape {
                let (m, o) = count.multipliedReportingOverflow(by: s)
                guard !o, m <= maxElements else { throw VideoBertError("tensor '\(name)': shape \(t.shape) is too large", file: path) }
                count = m
            }
            let storageElements = range.count / t.dtype.size
            if count > 0 {
                // The last element addressed must lie inside the storage.
                var last = t.offset
                for (s, st) in Swift.zip(t.shape, t.strides) {
                    let (m, o1) = (s - 1).multipliedReportingOverflow(by: st)
                    let (a, o2) = last.addingReportingOverflow(m)
                    guard !o1, !o2 else { throw VideoBertError("tensor '\(name)': strides \(t.strides) overflow", file: path) }
                    last = a
                }
                guard last < storageElements, last < t.storageSize || t.storageSize < 0 else {
                    throw VideoBertError("tensor '\(name)': shape \(t.shape), strides \(t.strides), offset \(t.offset) reach element \(last) of a storage of \(storageElements) \(t.dtype.rawValue) elements (data/\(t.key))", file: path)
                }
            }
            entries[name] = Entry(dtype: t.dtype, shape: t.shape, strides: t.strides, offset: t.offset,
                                  storage: entryName, bytes: range)
        }
        return TorchFile(path: path, entries: entries, data: data)
    }
}

// MARK: - Zip (central directory; stored entries)

/// The entries of a zip archive: name → byte range of its (stored, uncompressed) data.
/// Layout: PKWARE APPNOTE.TXT (https://pkware.cachefly.net/webdocs/casestudies/APPNOTE.TXT),
/// §4.3.6 (local header), §4.3.12 (central directory), §4.3.14–16 (zip64 end records), §4.5.3.
struct ZipIndex {
    var entries: [String: Range<Int>] = [:]

    init(data: Data, path: String) throws {
        let n = data.count
        func fail(_ m: String) -> VideoBertError { VideoBertError(m, file: path) }
        try data.withUnsafeBytes { raw in
            func u16(_ at: Int) -> Int { Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt16.self))) }
            func u32(_ at: Int) -> Int { Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
            func u64(_ at: Int) throws -> Int {
                let v = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self))
                guard v <= UInt64(Int.max / 2) else { throw fail("not a torch.save archive (zip field out of range)") }
                return Int(v)
            }
            guard n >= 22, u32(0) == 0x0403_4b50 else {
                throw fail("not a torch.save archive (no zip signature; expected a .pth/.pt/.bin written by torch.save)")
            }
            // End of central directory: the last 22 + (comment ≤ 65535) bytes.
            var eocd = -1
            var at = n - 22
            while at >= max(0, n - 22 - 65535) {
                if u32(at) == 0x0605_4b50 { eocd = at; break }
                at -= 1
            }
            guard eocd >= 0 else { throw fail("truncated zip archive (no end of central directory record)") }
            var count = u16(eocd + 10)
            var cdSize = u32(eocd + 12)
            var cdOffset = u32(eocd + 16)
            if count == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
                // Zip64: the locator sits just before the end record.
                guard eocd >= 20, u32(eocd - 20) == 0x0706_4b50 else { throw fail("truncated zip archive (zip64 locator missing)") }
                let rec = try u64(eocd - 20 + 8)
                guard rec + 56 <= n, u32(rec) == 0x0606_4b50 else { throw fail("truncated zip archive (zip64 end record missing)") }
                count = try u64(rec + 32)
                cdSize = try u64(rec + 40)
                cdOffset = try u64(rec + 48)
            }
            guard cdOffset + cdSize <= n, count <= cdSize / 46 + 1 else {
                throw fail("truncated zip archive (central directory at \(cdOffset)+\(cdSize) past the end of a \(n)-byte file)")
            }
            var p = cdOffset
            for _ in 0..<count {
                guard p + 46 <= cdOffset + cdSize, u32(p) == 0x0201_4b50 else { throw fail("corrupt zip central directory at byte \(p)") }
                let method = u16(p + 10)
                var compSize = u32(p + 20), size = u32(p + 24)
                let nameLen = u16(p + 28), extraLen = u16(p + 30), commentLen = u16(p + 32)
                var local = u32(p + 42)
                guard p + 46 + nameLen + extraLen + commentLen <= cdOffset + cdSize else { throw fail("corrupt zip central directory at byte \(p)") }
                let name = String(decoding: UnsafeRawBufferPointer(rebasing: raw[(p + 46)..<(p + 46 + nameLen)]), as: UTF8.self)
                // Zip64 extra field (id 1): the 64-bit values of the fields that are 0xFFFFFFFF, in order.
                var e = p + 46 + nameLen
                let eEnd = e + extraLen
                while e + 4 <= eEnd {
                    let id = u16(e), len = u16(e + 2)
                    guard e + 4 + len <= eEnd else { break }
                    if id == 1 {
                        var f = e + 4
                        if size == 0xFFFF_FFFF, f + 8 <= e + 4 + len { size = try u64(f); f += 8 }
                        if compSize == 0xFFFF_FFFF, f + 8 <= e + 4 + len { compSize = try u64(f); f += 8 }
                        if local == 0xFFFF_FFFF, f + 8 <= e + 4 + len { local = try u64(f); f += 8 }
                    }
                    e += 4 + len
                }
                guard method == 0, compSize == size else {
                    throw fail("zip entry '\(name)' is compressed (method \(method)); torch.save stores entries uncompressed")
                }
                guard local + 30 <= n, u32(local) == 0x0403_4b50 else {
                    throw fail("zip entry '\(name)': local header at byte \(local) is past the end or corrupt (truncated file?)")
                }
                let start = local + 30 + u16(local + 26) + u16(local + 28)
                guard start <= n, size <= n - start else {
                    throw fail("zip entry '\(name)': \(size) bytes at byte \(start) run past the end of the \(n)-byte file (truncated?)")
                }
                entries[name] = start..<(start + size)
                p += 46 + nameLen + extraLen + commentLen
            }
        }
    }
}

// MARK: - Restricted unpickler

/// A tensor as `_rebuild_tensor_v2(storage, offset, size, stride, …)` describes it.
struct TensorRef: Equatable {
    var key: String
    var dtype: TorchFile.DType
    var storageSize: Int
    var offset: Int
    var shape: [Int]
    var strides: [Int]
}

/// The values the restricted unpickler can build.
indirect enum PValue: Equatable {
    case none, bool(Bool), int(Int), float(Double), string(String), bytes([UInt8])
    case list([PValue]), tuple([PValue]), dict([(PValue, PValue)])
    case tensor(TensorRef)
    /// A storage persistent id: ('storage', <storage type>, key, location, size).
    case storage(key: String, dtype: TorchFile.DType, size: Int)
    /// An allowed global, not yet called.
    case global(String)
    case storageType(TorchFile.DType)
    case mark

    static func == (a: PValue, b: PValue) -> Bool {
        switch (a, b) {
        case (.none, .none), (.mark, .mark): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.int(x), .int(y)): return x == y
        case let (.float(x), .float(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.bytes(x), .bytes(y)): return x == y
        case let (.list(x), .list(y)), let (.tuple(x), .tuple(y)): return x == y
        case let (.global(x), .global(y)): return x == y
        case let (.storageType(x), .storageType(y)): return x == y
        case let (.tensor(x), .tensor(y)): return x == y
        default: return false
        }
    }
}

struct Unpickler {
    let bytes: [UInt8]
    let path: String
    var pos = 0
    var stack: [PValue] = []
    var memo: [Int: PValue] = [:]

    /// Globals that may appear; everything else is refused.
    static let allowedGlobals: Set<String> = [
        "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter", "collections.OrderedDict",
    ]
    static let maxStack = 1 << 20

    init(bytes: [UInt8], path: String) {
        self.bytes = bytes
        self.path = path
    }

    func fail(_ m: String) -> VideoBertError { VideoBertError("data.pkl: \(m)", file: path) }

    mutating func byte() throws -> UInt8 {
        guard pos < bytes.count else { throw fail("truncated pickle (ends at byte \(pos))") }
        defer { pos += 1 }
        return bytes[pos]
    }

    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, n <= bytes.count - pos else { throw fail("truncated pickle (\(n) bytes wanted at byte \(pos))") }
        defer { pos += n }
        return bytes[pos..<(pos + n)]
    }

    mutating func uint(_ n: Int) throws -> Int {
        let s = try take(n)
        var v: UInt64 = 0
        for (i, b) in s.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        guard v <= UInt64(Int.max) else { throw fail("length field out of range at byte \(pos - n)") }
        return Int(v)
    }

    mutating func line() throws -> String {
        guard let end = bytes[pos...].firstIndex(of: 0x0A) else { throw fail("truncated pickle (unterminated line at byte \(pos))") }
        defer { pos = end + 1 }
        return String(decoding: bytes[pos..<end], as: UTF8.self)
    }

    mutating func push(_ v: PValue) throws {
        guard stack.count < Self.maxStack else { throw fail("pickle stack deeper than \(Self.maxStack)") }
        stack.append(v)
    }

    mutating func pop() throws -> PValue {
        guard let v = stack.popLast() else { throw fail("stack underflow at byte \(pos)") }
        return v
    }

    /// Pops everything above the topmost mark, and the mark.
    mutating func popMark() throws -> [PValue] {
        guard let m = stack.lastIndex(of: .mark) else { throw fail("no mark on the stack at byte \(pos)") }
        let items = Array(stack[(m + 1)...])
        stack.removeSubrange(m...)
        return items
    }

    mutating func global(_ module: String, _ name: String) throws -> PValue {
        let full = module + "." + name
        if module == "torch", name.hasSuffix("Storage"), let dt = TorchFile.DType.byStorageName[name] { return .storageType(dt) }
        guard Self.allowedGlobals.contains(full) else {
            throw fail("refused global '\(full)': only tensors and plain containers are read (nothing in the file is executed)")
        }
        return .global(full)
    }

    func int(_ v: PValue, _ what: String) throws -> Int {
        guard case .int(let i) = v else { throw fail("\(what) is not an integer") }
        return i
    }

    func ints(_ v: PValue, _ what: String) throws -> [Int] {
        guard case .tuple(let items) = v else { throw fail("\(what) is not a tuple") }
        return try items.map { try int($0, what) }
    }

    /// REDUCE: only the allowed globals, with their expected arguments.
    func call(_ f: PValue, _ args: PValue) throws -> PValue {
        guard case .global(let name) = f, case .tuple(let a) = args else {
            throw fail("refused call of a non-allowed object at byte \(pos)")
        }
        switch name {
        case "collections.OrderedDict":
            guard a.isEmpty else { throw fail("OrderedDict called with arguments") }
            return .dict([])
        case "torch._utils._rebuild_tensor_v2":
            guard a.count >= 4, case .storage(let key, let dtype, let size) = a[0] else {
                throw fail("_rebuild_tensor_v2 without a storage")
            }
            return .tensor(TensorRef(key: key, dtype: dtype, storageSize: size, offset: try int(a[1], "storage offset"),
                                     shape: try ints(a[2], "tensor size"), strides: try ints(a[3], "tensor stride")))
        case "torch._utils._rebuild_parameter":
            guard a.count >= 1, case .tensor = a[0] else { throw fail("_rebuild_parameter without a tensor") }
            return a[0]
        default:
            throw fail("refused call of '\(name)'")
        }
    }

    mutating func run() throws -> PValue {
        while true {
            let op = try byte()
            switch op {
            case 0x80: _ = try byte()                                      // PROTO
            case 0x95: _ = try take(8)                                     // FRAME (protocol 4)
            case 0x2E: return try pop()                                    // STOP
            case 0x28: try push(.mark)                                     // MARK
            case 0x30: _ = try pop()                                       // POP
            case 0x4E: try push(.none)                                     // NONE
            case 0x88: try push(.bool(true))                               // NEWTRUE
            case 0x89: try push(.bool(false))                              // NEWFALSE
            case 0x4B: try push(.int(Int(try byte())))                     // BININT1
            case 0x4D: try push(.int(try uint(2)))                         // BININT2
            case 0x4A: try push(.int(Int(Int32(truncatingIfNeeded: try uint(4)))))   // BININT
            case 0x8A:                                                      // LONG1
                let n = Int(try byte())
                let s = try take(n)
                guard n <= 8 else { throw fail("integer of \(n) bytes is too large") }
                var v: UInt64 = 0
                for (i, b) in s.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
                if n > 0 && n < 8, s.last! & 0x80 != 0 { v |= ~0 << (8 * UInt64(n)) }   // sign-extend
                try push(.int(Int(Int64(bitPattern: v))))
            case 0x47:                                                      // BINFLOAT (big-endian)
                let s = try take(8)
                var v: UInt64 = 0
                for b in s { v = v << 8 | UInt64(b) }
                try push(.float(Double(bitPattern: v)))
            case 0x58: let n = try uint(4); try push(.string(String(decoding: try take(n), as: UTF8.self)))   // BINUNICODE
            case 0x8C: let n = Int(try byte()); try push(.string(String(decoding: try take(n), as: UTF8.self)))   // SHORT_BINUNICODE
            case 0x55: let n = Int(try byte()); try push(.string(String(decoding: try take(n), as: UTF8.self)))   // SHORT_BINSTRING
            case 0x54: let n = try uint(4); try push(.string(String(decoding: try take(n), as: UTF8.self)))   // BINSTRING
            case 0x43: let n = Int(try byte()); try push(.bytes(Array(try take(n))))    // SHORT_BINBYTES
            case 0x42: let n = try uint(4); try push(.bytes(Array(try take(n))))        // BINBYTES
            case 0x29: try push(.tuple([]))                                 // EMPTY_TUPLE
            case 0x85: let a = try pop(); try push(.tuple([a]))             // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); try push(.tuple([a, b]))   // TUPLE2
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); try push(.tuple([a, b, c]))   // TUPLE3
            case 0x74: try push(.tuple(try popMark()))                      // TUPLE
            case 0x5D: try push(.list([]))                                  // EMPTY_LIST
            case 0x7D: try push(.dict([]))                                  // EMPTY_DICT
            case 0x6C: try push(.list(try popMark()))                       // LIST
            case 0x61:                                                      // APPEND
                let v = try pop()
                guard case .list(var l) = try pop() else { throw fail("APPEND to a non-list at byte \(pos)") }
                l.append(v); try push(.list(l))
            case 0x65:                                                      // APPENDS
                let items = try popMark()
                guard case .list(var l) = try pop() else { throw fail("APPENDS to a non-list at byte \(pos)") }
                l.append(contentsOf: items); try push(.list(l))
            case 0x73:                                                      // SETITEM
                let v = try pop(), k = try pop()
                guard case .dict(var d) = try pop() else { throw fail("SETITEM on a non-dict at byte \(pos)") }
                d.append((k, v)); try push(.dict(d))
            case 0x75:                                                      // SETITEMS
                let items = try popMark()
                guard items.count % 2 == 0, case .dict(var d) = try pop() else { throw fail("SETITEMS on a non-dict at byte \(pos)") }
                for i in stride(from: 0, to: items.count, by: 2) { d.append((items[i], items[i + 1])) }
                try push(.dict(d))
            case 0x71: let i = Int(try byte()); guard let top = stack.last else { throw fail("BINPUT on an empty stack") }; memo[i] = top
            case 0x72: let i = try uint(4); guard let top = stack.last else { throw fail("LONG_BINPUT on an empty stack") }; memo[i] = top
            case 0x94: guard let top = stack.last else { throw fail("MEMOIZE on an empty stack") }; memo[memo.count] = top
            case 0x68, 0x6A:                                                // BINGET, LONG_BINGET
                let i = op == 0x68 ? Int(try byte()) : try uint(4)
                guard let v = memo[i] else { throw fail("memo entry \(i) missing at byte \(pos)") }
                try push(v)
            case 0x63:                                                      // GLOBAL "module\nname\n"
                let module = try line(), name = try line()
                try push(try global(module, name))
            case 0x93:                                                      // STACK_GLOBAL
                let n = try pop(), m = try pop()
                guard case .string(let module) = m, case .string(let name) = n else { throw fail("STACK_GLOBAL without strings") }
                try push(try global(module, name))
            case 0x52:                                                      // REDUCE
                let args = try pop(), f = try pop()
                try push(try call(f, args))
            case 0x62:                                                      // BUILD: state of a dict (an OrderedDict's _metadata) or a tensor: ignored
                _ = try pop()
                guard let target = stack.last else { throw fail("BUILD on an empty stack") }
                switch target {
                case .dict, .tensor: break
                default: throw fail("refused BUILD on a non-container at byte \(pos)")
                }
            case 0x51:                                                      // BINPERSID
                let pid = try pop()
                guard case .tuple(let t) = pid, t.count == 5, t[0] == .string("storage"),
                      case .storageType(let dtype) = t[1], case .string(let key) = t[2], case .int(let size) = t[4] else {
                    throw fail("unsupported persistent id at byte \(pos) (expected a torch storage)")
                }
                guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { throw fail("storage key '\(key)' is not a plain name") }
                try push(.storage(key: key, dtype: dtype, size: size))
            default:
                throw fail(String(format: "refused pickle opcode 0x%02x at byte %d (only tensors and plain containers are read)", op, pos - 1))
            }
        }
    }
}
