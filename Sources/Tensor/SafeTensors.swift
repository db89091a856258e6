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
            let n = e.shape.reduce(1, *)
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

    public static func read(_ path: String) throws -> File {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else {
            throw VideoBertError(FileManager.default.fileExists(atPath: path) ? "cannot read file" : "no such file", file: path)
        }
        guard data.count >= 8 else { throw VideoBertError("not a safetensors file (too short)", file: path) }
        let n = data.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))) }
        guard n > 0, 8 + n <= data.count else { throw VideoBertError("not a safetensors file (bad header length \(n))", file: path) }
        guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as? [String: Any] else {
            throw VideoBertError("safetensors header is not a JSON object", file: path)
        }
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        let bodySize = data.count - 8 - n
        for (name, value) in header {
            if name == "__metadata__" {
                metadata = (value as? [String: String]) ?? [:]
                continue
            }
            guard let v = value as? [String: Any], let dtype = v["dtype"] as? String,
                  let shape = (v["shape"] as? [NSNumber])?.map(\.intValue),
                  let offs = (v["data_offsets"] as? [NSNumber])?.map(\.intValue), offs.count == 2 else {
                throw VideoBertError("safetensors header entry '\(name)' is malformed", file: path)
            }
            guard let size = sizes[dtype] else { throw VideoBertError("tensor '\(name)' has unsupported dtype \(dtype)", file: path) }
            guard offs[0] >= 0, offs[1] <= bodySize, offs[1] - offs[0] == shape.reduce(1, *) * size else {
                throw VideoBertError("tensor '\(name)': data_offsets \(offs) do not match shape \(shape) of \(dtype) (file truncated?)", file: path)
            }
            entries[name] = Entry(dtype: dtype, shape: shape, range: offs[0]..<offs[1])
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
