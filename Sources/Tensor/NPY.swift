import Foundation

/// Element types of the .npy files videobert reads and writes (little-endian only).
public enum NPYDType: String, Sendable, CaseIterable {
    case bool = "|b1"
    case uint8 = "|u1"
    case int8 = "|i1"
    case uint16 = "<u2"
    case int16 = "<i2"
    case uint32 = "<u4"
    case int32 = "<i4"
    case uint64 = "<u8"
    case int64 = "<i8"
    case float16 = "<f2"
    case float32 = "<f4"
    case float64 = "<f8"

    public var size: Int {
        switch self {
        case .bool, .uint8, .int8: return 1
        case .uint16, .int16, .float16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64: return 8
        }
    }

    /// numpy writes `<u1`/`|u1`, `<f4`/`=f4` etc. depending on version and platform; accept all.
    init?(descr: String) {
        var d = descr
        if d.hasPrefix("=") { d = "<" + d.dropFirst() }
        if d.count == 3, d.hasSuffix("1"), d.first == "<" { d = "|" + d.dropFirst() }
        if d == "|b1" || d == "<b1" { self = .bool; return }
        guard let t = NPYDType(rawValue: d) else { return nil }
        self = t
    }
}

/// Swift element types that map to an .npy dtype.
public protocol NPYScalar { static var npyDType: NPYDType { get } }
extension UInt8: NPYScalar { public static var npyDType: NPYDType { .uint8 } }
extension Int8: NPYScalar { public static var npyDType: NPYDType { .int8 } }
extension Int16: NPYScalar { public static var npyDType: NPYDType { .int16 } }
extension UInt16: NPYScalar { public static var npyDType: NPYDType { .uint16 } }
extension Int32: NPYScalar { public static var npyDType: NPYDType { .int32 } }
extension UInt32: NPYScalar { public static var npyDType: NPYDType { .uint32 } }
extension Int64: NPYScalar { public static var npyDType: NPYDType { .int64 } }
extension UInt64: NPYScalar { public static var npyDType: NPYDType { .uint64 } }
extension Float: NPYScalar { public static var npyDType: NPYDType { .float32 } }
extension Double: NPYScalar { public static var npyDType: NPYDType { .float64 } }

/// An array read from an .npy file: its dtype, shape and raw little-endian bytes (C order).
public struct NPYArray: Sendable {
    public var dtype: NPYDType
    public var shape: [Int]
    public var data: Data
    public var path: String?

    public init(dtype: NPYDType, shape: [Int], data: Data, path: String? = nil) {
        self.dtype = dtype; self.shape = shape; self.data = data; self.path = path
    }

    public var count: Int { shape.reduce(1, *) }

    private func mismatch(_ want: String) -> VideoBertError {
        VideoBertError("expected \(want) array, found dtype \(dtype.rawValue)", file: path)
    }

    /// Values as Float32, converting from any float type (float16 and float64 included) or integer type.
    public func floats() throws -> [Float] {
        let n = count
        return data.withUnsafeBytes { raw -> [Float] in
            switch dtype {
            case .float32: return Array(raw.bindMemory(to: Float.self).prefix(n))
            case .float16:
                let h = raw.bindMemory(to: UInt16.self)
                return (0..<n).map { Float(Float16(bitPattern: UInt16(littleEndian: h[$0]))) }
            case .float64: return raw.bindMemory(to: Double.self).prefix(n).map { Float($0) }
            case .uint8: return raw.bindMemory(to: UInt8.self).prefix(n).map { Float($0) }
            case .int8: return raw.bindMemory(to: Int8.self).prefix(n).map { Float($0) }
            case .int16: return raw.bindMemory(to: Int16.self).prefix(n).map { Float($0) }
            case .uint16: return raw.bindMemory(to: UInt16.self).prefix(n).map { Float($0) }
            case .int32: return raw.bindMemory(to: Int32.self).prefix(n).map { Float($0) }
            case .uint32: return raw.bindMemory(to: UInt32.self).prefix(n).map { Float($0) }
            case .int64: return raw.bindMemory(to: Int64.self).prefix(n).map { Float($0) }
            case .uint64: return raw.bindMemory(to: UInt64.self).prefix(n).map { Float($0) }
            case .bool: return raw.bindMemory(to: UInt8.self).prefix(n).map { $0 != 0 ? 1 : 0 }
            }
        }
    }

    /// Values as a Swift integer type, from any integer dtype.
    public func integers<T: FixedWidthInteger>(_: T.Type = T.self) throws -> [T] {
        let n = count
        func conv<S: FixedWidthInteger>(_ s: S.Type) throws -> [T] {
            try data.withUnsafeBytes { raw in
                try raw.bindMemory(to: S.self).prefix(n).map {
                    guard let v = T(exactly: $0) else {
                        throw VideoBertError("value \($0) does not fit \(T.self)", file: path)
                    }
                    return v
                }
            }
        }
        switch dtype {
        case .uint8, .bool: return try conv(UInt8.self)
        case .int8: return try conv(Int8.self)
        case .int16: return try conv(Int16.self)
        case .uint16: return try conv(UInt16.self)
        case .int32: return try conv(Int32.self)
        case .uint32: return try conv(UInt32.self)
        case .int64: return try conv(Int64.self)
        case .uint64: return try conv(UInt64.self)
        case .float16, .float32, .float64: throw mismatch("an integer")
        }
    }

    /// The raw bytes as `T` when the dtype is exactly `T`'s.
    public func values<T: NPYScalar>(_: T.Type = T.self) throws -> [T] {
        guard dtype == T.npyDType else { throw mismatch(T.npyDType.rawValue) }
        return data.withUnsafeBytes { Array($0.bindMemory(to: T.self).prefix(count)) }
    }
}

/// The NumPy .npy format (versions 1.0, 2.0 and 3.0 read; 1.0 written, 2.0 when the header needs it).
/// Every write goes to a temporary name and is renamed into place.
public enum NPY {
    public struct Header: Sendable {
        public var dtype: NPYDType
        public var shape: [Int]
        /// Byte offset of the first element.
        public var dataOffset: Int
        /// Bytes of the data: shape product × dtype size, checked when the header was parsed.
        public var byteCount: Int { shape.reduce(1, *) * dtype.size }
    }

    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"
    /// The largest header read (numpy itself refuses headers past 10,000 bytes unless told otherwise:
    /// https://github.com/numpy/numpy/blob/main/numpy/lib/format.py, _MAX_HEADER_SIZE).
    public static let maxHeaderBytes = 65_536 - 12

    public static func read(_ path: String) throws -> NPYArray {
        let size = try InputFile.size(path)
        let header = try readHeader(path)
        // parseHeader bounded the byte count; the sum cannot overflow.
        let need = header.dataOffset + header.byteCount
        guard size >= need else {
            throw VideoBertError("truncated .npy: shape \(header.shape) needs \(need) bytes, file has \(size)", file: path)
        }
        let data = try InputFile.mapped(path)
        guard data.count >= need else {
            throw VideoBertError("truncated .npy: shape \(header.shape) needs \(need) bytes, file has \(data.count)", file: path)
        }
        let body = data.subdata(in: header.dataOffset..<need)
        return NPYArray(dtype: header.dtype, shape: header.shape, data: body, path: path)
    }

    /// Reads only the header (dtype, shape, where the data starts).
    public static func readHeader(_ path: String) throws -> Header {
        _ = try InputFile.size(path)
        guard let fh = FileHandle(forReadingAtPath: path) else {
            throw VideoBertError(FileManager.default.fileExists(atPath: path) ? "cannot read file" : "no such file", file: path)
        }
        defer { try? fh.close() }
        let head = (try? fh.read(upToCount: 65_536)) ?? Data()
        return try parseHeader(head, path: path)
    }

    public static func parseHeader(_ data: Data, path: String?) throws -> Header {
        let bytes = [UInt8](data.prefix(12))
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
            throw VideoBertError("not a .npy file (bad magic)", file: path)
        }
        let major = bytes[6]
        let headerLen: Int
        let start: Int
        switch major {
        case 1:
            headerLen = Int(bytes[8]) | Int(bytes[9]) << 8
            start = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw VideoBertError("truncated .npy header", file: path) }
            headerLen = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            start = 12
        default:
            throw VideoBertError("unsupported .npy version \(major)", file: path)
        }
        guard headerLen <= maxHeaderBytes else {
            throw VideoBertError("npy header length \(headerLen) is larger than the \(maxHeaderBytes)-byte limit", file: path)
        }
        guard data.count >= start + headerLen else { throw VideoBertError("truncated .npy header", file: path) }
        let text = String(decoding: data[data.startIndex + start ..< data.startIndex + start + headerLen], as: UTF8.self)
        guard let descr = field(text, "descr")?.trimmingCharacters(in: CharacterSet(charactersIn: "'\" ")) else {
            throw VideoBertError("npy header has no descr", file: path)
        }
        guard let dtype = NPYDType(descr: descr) else {
            if descr.hasPrefix(">") {
                throw VideoBertError("big-endian dtype \(descr) is not supported; save with arr.astype(arr.dtype.newbyteorder('<'))", file: path)
            }
            throw VideoBertError("unsupported dtype \(descr)", file: path)
        }
        if let fo = field(text, "fortran_order"), fo.contains("True") {
            throw VideoBertError("Fortran-order arrays are not supported; save with np.ascontiguousarray", file: path)
        }
        guard let shapeText = shapeField(text) else { throw VideoBertError("npy header has no shape", file: path) }
        let dims = shapeText.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var shape: [Int] = []
        for d in dims {
            let clean = d.hasSuffix("L") ? String(d.dropLast()) : d
            guard let v = Int(clean), v >= 0 else {
                throw VideoBertError("bad shape (\(shapeText)): dimensions must be non-negative integers", file: path)
            }
            shape.append(v)
        }
        guard shape.count <= 32 else { throw VideoBertError("shape (\(shapeText)) has more than 32 dimensions", file: path) }
        _ = try Bounded.byteCount(shape: shape, elementSize: dtype.size, what: "npy shape", file: path)
        return Header(dtype: dtype, shape: shape, dataOffset: start + headerLen)
    }

    private static func field(_ header: String, _ key: String) -> String? {
        guard let r = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\"") else { return nil }
        let rest = header[r.upperBound...].drop { $0 == " " || $0 == ":" }
        let end = rest.firstIndex(of: ",") ?? rest.firstIndex(of: "}") ?? rest.endIndex
        return String(rest[..<end])
    }

    private static func shapeField(_ header: String) -> String? {
        guard let r = header.range(of: "'shape'") ?? header.range(of: "\"shape\"") else { return nil }
        guard let open = header[r.upperBound...].firstIndex(of: "("),
              let close = header[open...].firstIndex(of: ")") else { return nil }
        return String(header[header.index(after: open)..<close])
    }

    /// The header bytes for `dtype` and `shape`, padded so the data starts at a multiple of 64.
    /// `reserve` pads the text further so the shape can later be rewritten in place (streaming writers).
    public static func headerBytes(dtype: NPYDType, shape: [Int], reserve: Int = 0) -> [UInt8] {
        let shapeText: String
        if shape.count == 1 { shapeText = "(\(shape[0]),)" } else { shapeText = "(" + shape.map(String.init).joined(separator: ", ") + ")" }
        var dict = "{'descr': '\(dtype.rawValue)', 'fortran_order': False, 'shape': \(shapeText), }"
        dict += String(repeating: " ", count: reserve)
        var version: UInt8 = 1
        var prefix = 10
        if dict.utf8.count + 1 + prefix > 65_535 { version = 2; prefix = 12 }
        let total = prefix + dict.utf8.count + 1
        let padded = (total + 63) / 64 * 64
        dict += String(repeating: " ", count: padded - total) + "\n"
        var out = magic + [version, 0]
        let len = dict.utf8.count
        if version == 1 {
            out += [UInt8(len & 0xff), UInt8(len >> 8)]
        } else {
            out += [UInt8(len & 0xff), UInt8((len >> 8) & 0xff), UInt8((len >> 16) & 0xff), UInt8(len >> 24)]
        }
        out += Array(dict.utf8)
        return out
    }

    /// Writes an array of a native scalar type atomically.
    public static func write<T: NPYScalar>(_ values: [T], shape: [Int], to path: String) throws {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not match \(values.count) values")
        var data = Data(headerBytes(dtype: T.npyDType, shape: shape))
        values.withUnsafeBytes { data.append(contentsOf: $0) }
        try AtomicFile.write(data, to: path)
    }

    /// Writes raw bytes already in `dtype`'s layout.
    public static func write(raw: UnsafeRawBufferPointer, dtype: NPYDType, shape: [Int], to path: String) throws {
        precondition(shape.reduce(1, *) * dtype.size == raw.count)
        var data = Data(headerBytes(dtype: dtype, shape: shape))
        data.append(contentsOf: raw)
        try AtomicFile.write(data, to: path)
    }

    public static func write(_ array: NPYArray, to path: String) throws {
        try array.data.withUnsafeBytes { try write(raw: $0, dtype: array.dtype, shape: array.shape, to: path) }
    }
}

/// Writes an .npy file whose first dimension is not known in advance (frames as they are
/// decoded, for example): rows are appended, the shape is patched into the header at the end,
/// and the finished file is renamed into place. Memory use is one row.
public final class NPYStreamWriter {
    public let path: String
    public let dtype: NPYDType
    public let rowShape: [Int]
    public private(set) var rows = 0
    private let tmp: String
    private let handle: FileHandle
    private let headerSize: Int
    private var finished = false

    public init(path: String, dtype: NPYDType, rowShape: [Int]) throws {
        self.path = path; self.dtype = dtype; self.rowShape = rowShape
        try AtomicFile.checkOutputFile(path)
        try AtomicFile.createParent(of: path)
        tmp = AtomicFile.temporaryPath(for: path)
        guard FileManager.default.createFile(atPath: tmp, contents: nil),
              let h = FileHandle(forWritingAtPath: tmp) else {
            throw VideoBertError("cannot create file", file: path)
        }
        handle = h
        // Room for a first dimension of up to 20 digits.
        let header = NPY.headerBytes(dtype: dtype, shape: [0] + rowShape, reserve: 24)
        headerSize = header.count
        do { try handle.write(contentsOf: Data(header)) } catch {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: tmp)
            throw VideoBertError("cannot write: \(error.localizedDescription)", file: path)
        }
    }

    public var rowBytes: Int { rowShape.reduce(1, *) * dtype.size }

    public func append(_ row: UnsafeRawBufferPointer) throws {
        precondition(row.count % rowBytes == 0, "append takes whole rows")
        do { try handle.write(contentsOf: Data(row)) } catch {
            abandon()
            throw VideoBertError("cannot write (disk full?): \(error.localizedDescription); the partial file was removed", file: path)
        }
        rows += row.count / rowBytes
    }

    /// Patches the header and renames the file into place.
    public func finish() throws {
        guard !finished else { return }
        finished = true
        var header = NPY.headerBytes(dtype: dtype, shape: [rows] + rowShape, reserve: 0)
        // Same total size as the reserved header: pad the dict text with spaces before the newline.
        if header.count < headerSize {
            header.removeLast()  // "\n"
            header += [UInt8](repeating: 0x20, count: headerSize - header.count - 1) + [0x0A]
            let len = headerSize - 10
            header[8] = UInt8(len & 0xff); header[9] = UInt8(len >> 8)
        }
        precondition(header.count == headerSize)
        do {
            try handle.seek(toOffset: 0)
            try handle.write(contentsOf: Data(header))
            try handle.synchronize()
            try handle.close()
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: tmp)
            throw VideoBertError("cannot write (disk full?): \(error.localizedDescription); the partial file was removed", file: path)
        }
        try AtomicFile.commit(temporary: tmp, to: path)
    }

    /// Drops the partial file.
    public func abandon() {
        guard !finished else { return }
        finished = true
        try? handle.close()
        try? FileManager.default.removeItem(atPath: tmp)
    }

    deinit { abandon() }
}
