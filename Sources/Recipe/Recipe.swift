import Foundation
import Yams

/// A section of a recipe: a Codable struct whose `init()` holds every field's default.
/// Those defaults are the one place where settings are defined; a recipe file only overrides.
public protocol RecipeSection: Codable, Sendable {
    init()
}

/// The error for recipes: names the file (or `--set`) and the key, one line.
public struct RecipeError: Error, CustomStringConvertible, Sendable {
    public var file: String?
    public var message: String
    public var description: String { file.map { "\($0): \(message)" } ?? message }
}

/// A YAML value with where it came from (for error messages).
indirect enum RValue {
    case null
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case list([RValue])
    case map([(String, RValue)], [String: Int])  // entries in order, and each key's line

    var kind: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int: return "an integer"
        case .float: return "a number"
        case .string: return "a string"
        case .list: return "a list"
        case .map: return "a mapping"
        }
    }

    subscript(key: String) -> RValue? {
        if case .map(let entries, _) = self { return entries.first { $0.0 == key }?.1 }
        return nil
    }
}

/// Loads recipes: YAML file (optional) + `key.sub=value` overrides, merged over the defaults.
/// An unknown key or a value of the wrong type is an error naming the key, the file and the line.
public enum RecipeLoader {
    /// - Parameters:
    ///   - file: a YAML recipe, or nil for the defaults.
    ///   - overrides: `key=value` strings; nested keys with dots (`kmeans.branching=8`); values in YAML syntax.
    public static func load<T: RecipeSection>(_ type: T.Type, file: String?, overrides: [String] = []) throws -> T {
        var text = ""
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw RecipeError(file: file, message: FileManager.default.fileExists(atPath: file) ? "cannot read recipe" : "no such recipe file")
            }
            text = String(decoding: data, as: UTF8.self)
        }
        return try load(type, yaml: text, name: file, overrides: overrides)
    }

    /// The same from YAML text (`name` is used in messages).
    public static func load<T: RecipeSection>(_ type: T.Type, yaml: String, name: String? = nil, overrides: [String] = []) throws -> T {
        let defaults = try tree(of: T())
        var user: RValue
        do {
            user = try compose(yaml: yaml).map(convert) ?? .map([], [:])
        } catch let e as YamlError {
            throw RecipeError(file: name, message: "YAML: \(oneLine(e))")
        }
        if case .null = user { user = .map([], [:]) }
        guard case .map = user else { throw RecipeError(file: name, message: "a recipe must be a mapping of key: value") }
        try validate(user, against: defaults, path: "", file: name)
        for o in overrides {
            guard let eq = o.firstIndex(of: "="), eq != o.startIndex else {
                throw RecipeError(file: "--set", message: "expected key=value, got '\(o)'")
            }
            let key = String(o[..<eq])
            let valueText = String(o[o.index(after: eq)...])
            let value: RValue
            do {
                value = try compose(yaml: valueText).map(convert) ?? .null
            } catch {
                value = .string(valueText)
            }
            let path = key.split(separator: ".").map(String.init)
            user = try set(user, path: path, value: value, defaults: defaults, fullKey: key)
        }
        let merged = merge(defaults, user)
        let json = jsonText(merged)
        do {
            return try JSONDecoder().decode(T.self, from: Data(json.utf8))
        } catch let DecodingError.typeMismatch(_, ctx) {
            throw RecipeError(file: name, message: "wrong type for '\(keyPath(ctx.codingPath))': \(ctx.debugDescription)")
        } catch let DecodingError.dataCorrupted(ctx) {
            throw RecipeError(file: name, message: "bad value for '\(keyPath(ctx.codingPath))': \(ctx.debugDescription)")
        } catch {
            throw RecipeError(file: name, message: "\(error)")
        }
    }

    /// The string value of a top-level key of a recipe file, a `--set key=value` override
    /// winning (nil when neither sets it). For commands that pick the recipe type by a key
    /// (`videobert pretrain`'s `variant`) before loading it strictly.
    public static func topLevelString(_ key: String, file: String?, overrides: [String] = []) throws -> String? {
        for o in overrides.reversed() where o.hasPrefix(key + "=") { return String(o.dropFirst(key.count + 1)) }
        guard let file else { return nil }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw RecipeError(file: file, message: FileManager.default.fileExists(atPath: file) ? "cannot read recipe" : "no such recipe file")
        }
        let tree: RValue
        do {
            tree = try compose(yaml: String(decoding: data, as: UTF8.self)).map(convert) ?? .null
        } catch let e as YamlError {
            throw RecipeError(file: file, message: "YAML: \(oneLine(e))")
        }
        switch tree[key] {
        case .string(let s)?: return s
        case nil, .null?: return nil
        case let v?: throw RecipeError(file: file, message: "'\(key)' must be a string, not \(v.kind)")
        }
    }

    /// The recipe as YAML (every field, resolved), for saving beside outputs.
    public static func yaml<T: RecipeSection>(_ value: T) throws -> String {
        try YAMLEncoder().encode(value)
    }

    // MARK: - internals

    static func oneLine(_ e: Error) -> String {
        "\(e)".split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }

    static func keyPath(_ keys: [CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    static func tree<T: Encodable>(of value: T) throws -> RValue {
        let yaml = try YAMLEncoder().encode(value)
        return try compose(yaml: yaml).map(convert) ?? .map([], [:])
    }

    static func convert(_ node: Node) -> RValue {
        switch node {
        case .scalar(let s):
            let tag = node.tag.description
            if tag.hasSuffix(":null") { return .null }
            if tag.hasSuffix(":bool"), let b = node.bool { return .bool(b) }
            if tag.hasSuffix(":int"), let i = node.int { return .int(i) }
            if tag.hasSuffix(":float"), let f = node.float { return .float(f) }
            return .string(s.string)
        case .sequence(let seq):
            return .list(seq.map(convert))
        case .mapping(let m):
            var entries: [(String, RValue)] = []
            var lines: [String: Int] = [:]
            for (k, v) in m {
                let key = k.string ?? "\(k)"
                entries.append((key, convert(v)))
                lines[key] = k.mark?.line
            }
            return .map(entries, lines)
        }
    }

    static func typeMatches(_ value: RValue, _ def: RValue) -> Bool {
        switch (value, def) {
        case (_, .null): return true
        case (.bool, .bool), (.int, .int), (.int, .float), (.float, .float), (.string, .string),
             (.list, .list), (.map, .map): return true
        default: return false
        }
    }

    static func validate(_ value: RValue, against def: RValue, path: String, file: String?) throws {
        switch (value, def) {
        case (.map(let entries, let lines), .map(let dEntries, _)):
            let known = dEntries.map(\.0)
            for (k, v) in entries {
                let full = path.isEmpty ? k : path + "." + k
                let at = lines[k].map { "line \($0): " } ?? ""
                guard let d = dEntries.first(where: { $0.0 == k })?.1 else {
                    throw RecipeError(file: file, message: "\(at)unknown key '\(full)' (known keys\(path.isEmpty ? "" : " under '\(path)'"): \(known.joined(separator: ", ")))")
                }
                guard typeMatches(v, d) else {
                    throw RecipeError(file: file, message: "\(at)'\(full)' must be \(d.kind), not \(v.kind)")
                }
                try validate(v, against: d, path: full, file: file)
            }
        case (.list(let items), .list(let dItems)):
            if let d0 = dItems.first {
                for (i, item) in items.enumerated() where !typeMatches(item, d0) {
                    throw RecipeError(file: file, message: "'\(path)[\(i)]' must be \(d0.kind), not \(item.kind)")
                }
            }
        default:
            break
        }
    }

    static func set(_ tree: RValue, path: [String], value: RValue, defaults: RValue, fullKey: String) throws -> RValue {
        guard let head = path.first else { return value }
        guard case .map(var entries, let lines) = tree, case .map(let dEntries, _) = defaults else {
            throw RecipeError(file: "--set", message: "'\(fullKey)': not a section")
        }
        guard let d = dEntries.first(where: { $0.0 == head })?.1 else {
            throw RecipeError(file: "--set", message: "unknown key '\(fullKey)' (known: \(dEntries.map(\.0).joined(separator: ", ")))")
        }
        let current = entries.first { $0.0 == head }?.1 ?? (path.count > 1 ? .map([], [:]) : d)
        var newValue = try set(current, path: Array(path.dropFirst()), value: value, defaults: d, fullKey: fullKey)
        if path.count == 1 {
            // A string field given something YAML reads as a number or boolean: keep the text.
            if case .string = d, !typeMatches(newValue, d) {
                let raw = fullKey.isEmpty ? "" : String(describing: value)
                switch value {
                case .int(let i): newValue = .string(String(i))
                case .float(let f): newValue = .string(String(f))
                case .bool(let b): newValue = .string(String(b))
                default: _ = raw
                }
            }
            guard typeMatches(newValue, d) else {
                throw RecipeError(file: "--set", message: "'\(fullKey)' must be \(d.kind), not \(newValue.kind)")
            }
            try validate(newValue, against: d, path: fullKey, file: "--set")
        }
        if let i = entries.firstIndex(where: { $0.0 == head }) {
            entries[i].1 = newValue
        } else {
            entries.append((head, newValue))
        }
        return .map(entries, lines)
    }

    static func merge(_ base: RValue, _ over: RValue) -> RValue {
        guard case .map(var entries, let lines) = base, case .map(let oEntries, _) = over else { return over }
        for (k, v) in oEntries {
            if let i = entries.firstIndex(where: { $0.0 == k }) {
                entries[i].1 = merge(entries[i].1, v)
            } else {
                entries.append((k, v))
            }
        }
        return .map(entries, lines)
    }

    static func jsonText(_ v: RValue) -> String {
        switch v {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .float(let f): return f.isFinite ? "\(f)" : "null"
        case .string(let s):
            let data = try! JSONSerialization.data(withJSONObject: [s], options: [])
            let t = String(decoding: data, as: UTF8.self)
            return String(t.dropFirst().dropLast())
        case .list(let items): return "[" + items.map(jsonText).joined(separator: ",") + "]"
        case .map(let entries, _):
            return "{" + entries.map { jsonText(.string($0.0)) + ":" + jsonText($0.1) }.joined(separator: ",") + "}"
        }
    }
}
