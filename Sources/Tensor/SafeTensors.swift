import Foundation

/// The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header
/// `{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`, then the
/// tensors' bytes (offsets relative to the end of the header). Read: F32, F16, BF16, F64, I64, I32
/// (floats converted to Float32). Written: F32, tensors in name order, header padded to 8 bytes.
public enum SafeTensors {
    public struct Entry: Sendable {
        public var dtype: String
        public var shape: [Int]
        public var range: Range<Int>
    }

    /// A file's header plus its bytes; tensors are converted on access.
    public struct File: Sendable {
        public let path: String
        public let entries: [String: Entry]
        public let metadata: [String: String]
        let data: Data
        let dataStart: Int

        public var names: [String] { entries.keys.sorted() }

        /// The tensor as Float32 values (converted from F16/BF16/F64/I64/I32).
        public func floats(_ name: String) throws -> [Float] {
            guard let e = entries[name] else { throw VideoBertError("no tensor named '\(name)'", file: path) }
            let n = e.range.count / (sizes[e.dtype] ?? 1)
            let start = dataStart + e.range.lowerBound
            return try data.withUnsafeBytes { raw -> [Float] in
                let base = raw.baseAddress!.advanced(by: start)
                switch e.dtype {
                case "F32":
                    var out = [Float](repeating: 0, count: n)
                    out.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(start: base, count: n * 4)) }
                    return out
                case "F16":
                    return (0..<n).map { Float(Float16(bitPattern: base.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
                case "BF16":
                    return (0..<n).map { Float(bitPattern: UInt32(base.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)) << 16) }
                case "F64":
                    return (0..<n).map { Float(base.loadUnaligned(fromByteOffset: 8 * $0, as: Double.self)) }
                case "I64":
                    return (0..<n).map { Float(base.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
                case "I32":
                    return (0..<n).map { Float(base.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
                default:
                    throw VideoBertError("tensor '\(name)' has unsupported dtype \(e.dtype)", file: path)
                }
            }
        }

        public func shape(_ name: String) -> [Int]? { entries[name]?.shape }
    }

    static let sizes: [String: Int] = ["F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "U8": 1, "I8": 1, "BOOL": 1, "I16": 2]

    /// The largest header accepted (the limit of the reference reader, safetensors' MAX_HEADER_SIZE:
    /// https://github.com/huggingface/safetensors/blob/main/safetensors/src/tensor.rs).
    public static let maxHeaderBytes = 100_000_000

    /// Reads and validates a file: every size is bounded before use (docs/RELIABILITY.md, "sizes").
    /// The header length must fit the file and the limit; each tensor's dtype must be known, its
    /// dims non-negative integers whose product (× the dtype size) does not overflow, its
    /// data_offsets integers with begin ≤ end inside the data, matching shape × dtype; and the
    /// tensors must tile the data exactly, without overlaps or gaps (as the reference reader checks).
    public static func read(_ path: String) throws -> File {
        let data = try InputFile.mapped(path)
        guard data.count >= 8 else { throw VideoBertError("not a safetensors file (too short)", file: path) }
        let n64 = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard n64 > 0, n64 <= UInt64(min(maxHeaderBytes, data.count - 8)) else {
            throw VideoBertError("not a safetensors file (header length \(n64) does not fit the file of \(data.count) bytes)", file: path)
        }
        let n = Int(n64)
        guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as? [String: Any] else {
            throw VideoBertError("safetensors header is not a JSON object", file: path)
        }
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        let bodySize = data.count - 8 - n
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else {
                    throw VideoBertError("safetensors __metadata__ must be an object of strings", file: path)
                }
                for (k, v) in m {
                    guard let str = v as? String else {
                        throw VideoBertError("safetensors __metadata__ '\(k)' must be a string", file: path)
                    }
                    metadata[k] = str
                }
                continue
            }
            guard let v = value as? [String: Any], let dtype = v["dtype"] as? String,
                  let shapeRaw = v["shape"] as? [Any], let offsRaw = v["data_offsets"] as? [Any] else {
                throw VideoBertError("tensor '\(name)': header entry needs dtype (string), shape and data_offsets (lists)", file: path)
            }
            guard let size = sizes[dtype] else { throw VideoBertError("tensor '\(name)' has unsupported dtype \(dtype)", file: path) }
            let shape = shapeRaw.map { Bounded.exactInt($0) ?? -1 }
            guard shape.allSatisfy({ $0 >= 0 }) else {
                throw VideoBertError("tensor '\(name)': shape \(shapeRaw) must hold non-negative integers", file: path)
            }
            let bytes = try Bounded.byteCount(shape: shape, elementSize: size, what: "tensor '\(name)'", file: path)
            let offs = offsRaw.map { Bounded.exactInt($0) ?? -1 }
            guard offs.count == 2, offs[0] >= 0, offs[1] >= offs[0] else {
                throw VideoBertError("tensor '\(name)': data_offsets \(offsRaw) must be two integers [begin, end] with 0 ≤ begin ≤ end", file: path)
            }
            guard offs[1] <= bodySize else {
                throw VideoBertError("tensor '\(name)': data_offsets \(offs) run past the \(bodySize) data bytes (file truncated?)", file: path)
            }
            guard offs[1] - offs[0] == bytes else {
                throw VideoBertError("tensor '\(name)': data_offsets \(offs) hold \(offs[1] - offs[0]) bytes, shape \(shape) of \(dtype) needs \(bytes)", file: path)
            }
            entries[name] = Entry(dtype: dtype, shape: shape, range: offs[0]..<offs[1])
        }
        // The tensors tile the data: sorted by begin, each starts where the previous ended.
        var end = 0
        var previous = ""
        for (name, e) in entries.sorted(by: { ($0.value.range.lowerBound, $0.value.range.upperBound, $0.key) < ($1.value.range.lowerBound, $1.value.range.upperBound, $1.key) }) {
            if e.range.lowerBound < end {
                throw VideoBertError("tensor '\(name)': data_offsets [\(e.range.lowerBound), \(e.range.upperBound)] overlap tensor '\(previous)'", file: path)
            }
            if e.range.lowerBound > end {
                throw VideoBertError("tensor '\(name)': data_offsets [\(e.range.lowerBound), \(e.range.upperBound)] leave a gap after byte \(end)", file: path)
            }
            end = e.range.upperBound
            previous = name
        }
        guard end == bodySize else {
            throw VideoBertError("the tensors cover \(end) of the \(bodySize) data bytes (extra bytes after the last tensor)", file: path)
        }
        return File(path: path, entries: entries, metadata: metadata, data: data, dataStart: 8 + n)
    }

    /// Writes Float32 tensors atomically. `tensors`: name → (shape, values).
    public static func write(_ tensors: [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)],
                             metadata: [String: String] = ["format": "pt"], to path: String) throws {
        let sorted = tensors.sorted { $0.name < $1.name }
        var header: [String: Any] = ["__metadata__": metadata]
        var offset = 0
        for t in sorted {
            precondition(t.shape.reduce(1, *) == t.values.count, "\(t.name): shape \(t.shape) vs \(t.values.count) values")
            header[t.name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + 4 * t.values.count]]
            offset += 4 * t.values.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        var len = UInt64(json.count).littleEndian
        out.append(Data(bytes: &len, count: 8))
        out.append(json)
        for t in sorted { out.append(UnsafeBufferPointer(start: t.values.baseAddress, count: t.values.count)) }
        try AtomicFile.write(out, to: path)
    }
}
