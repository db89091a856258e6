import Foundation

/// JSON helpers with stable output (sorted keys), so that files are byte-for-byte reproducible.
public enum JSON {
    public static func encode<T: Encodable>(_ value: T, pretty: Bool = true) throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return try enc.encode(value)
    }

    public static func string<T: Encodable>(_ value: T, pretty: Bool = false) throws -> String {
        String(decoding: try encode(value, pretty: pretty), as: UTF8.self)
    }

    /// The largest JSON file read whole (1 GiB): past any config, state or annotation file.
    public static let maxFileBytes = 1 << 30

    public static func decode<T: Decodable>(_ type: T.Type, from path: String) throws -> T {
        let data = try InputFile.read(path, maxBytes: maxFileBytes, what: "JSON file")
        return try decode(type, from: data, name: path)
    }

    /// Decodes `data`; errors are one line naming `name` and the key.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data, name path: String?) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let DecodingError.keyNotFound(key, ctx) {
            throw VideoBertError("missing key '\(pathString(ctx.codingPath + [key]))'", file: path)
        } catch let DecodingError.typeMismatch(_, ctx) {
            throw VideoBertError("wrong type at '\(pathString(ctx.codingPath))': \(ctx.debugDescription)", file: path)
        } catch let DecodingError.valueNotFound(_, ctx) {
            throw VideoBertError("null at '\(pathString(ctx.codingPath))'", file: path)
        } catch let DecodingError.dataCorrupted(ctx) where !ctx.codingPath.isEmpty {
            throw VideoBertError("bad value at '\(pathString(ctx.codingPath))': \(ctx.debugDescription)", file: path)
        } catch let DecodingError.dataCorrupted(ctx) {
            let underlying = (ctx.underlyingError as NSError?)?.userInfo["NSDebugDescription"] as? String
            throw VideoBertError("invalid JSON: \(underlying ?? ctx.debugDescription)", file: path)
        } catch let e as VideoBertError {
            throw VideoBertError(e.message, file: e.file ?? path)
        } catch {
            throw VideoBertError("\(error)", file: path)
        }
    }

    public static func write<T: Encodable>(_ value: T, to path: String, pretty: Bool = true) throws {
        var data = try encode(value, pretty: pretty)
        data.append(0x0A)
        try AtomicFile.write(data, to: path)
    }

    static func pathString(_ keys: [CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
}
