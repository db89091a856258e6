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
            // Valid JSON that did not decode: on Linux a fraction where an integer belongs (or a
            // number past Int) lands here without a key; name the first such value.
            if let root = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) {
                // The culprit is the number whose replacement by 0 gets past this error.
                for (keys, value) in numbers(root, at: []) {
                    let patched = replacing(root, at: keys[...], with: 0)
                    guard let d = try? JSONSerialization.data(withJSONObject: patched, options: [.fragmentsAllowed]) else { continue }
                    do { _ = try JSONDecoder().decode(type, from: d) } catch DecodingError.dataCorrupted(let c) where c.codingPath.isEmpty {
                        continue
                    } catch {}
                    let name = keys.map { $0.1.map { "[\($0)]" } ?? $0.0 }.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
                    throw VideoBertError("bad value at '\(name)': \(value) does not fit the expected type (a whole number, within range)", file: path)
                }
            }
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

    typealias Step = (String, Int?)

    /// Every number in a JSON tree with its path (keys sorted), fractions first.
    static func numbers(_ value: Any, at path: [Step]) -> [([Step], String)] {
        var out: [([Step], String)] = []
        func walk(_ v: Any, _ p: [Step]) {
            if let d = v as? [String: Any] {
                for k in d.keys.sorted() { walk(d[k]!, p + [(k, nil)]) }
            } else if let a = v as? [Any] {
                for (i, x) in a.enumerated() { walk(x, p + [("", i)]) }
            } else if let n = v as? NSNumber, !(v is String) {
                out.append((p, "\(n)"))
            }
        }
        walk(value, path)
        return out.filter { Double($0.1).map { $0.rounded() != $0 } ?? true } + out.filter { Double($0.1).map { $0.rounded() == $0 } ?? false }
    }

    static func replacing(_ value: Any, at path: ArraySlice<Step>, with new: Any) -> Any {
        guard let step = path.first else { return new }
        if let i = step.1, var a = value as? [Any], a.indices.contains(i) {
            a[i] = replacing(a[i], at: path.dropFirst(), with: new); return a
        }
        if step.1 == nil, var d = value as? [String: Any], let x = d[step.0] {
            d[step.0] = replacing(x, at: path.dropFirst(), with: new); return d
        }
        return value
    }

    static func pathString(_ keys: [CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
}
