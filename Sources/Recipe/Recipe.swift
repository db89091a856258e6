import Foundation
import Yams

/// A section of a recipe: a Codable struct whose `init()` holds every field's default.
/// Those defaults are the one place where settings are defined; a recipe file only overrides.
public protocol RecipeSection: Codable, Sendable {
    init()
    /// The allowed range of numeric settings, by dotted key (`model.hidden_size`), declared beside
    /// the defaults. A value outside is an error naming the key, the file and the line; for a list
    /// setting the range applies to each element. Unlisted numbers need only be finite.
    static var limits: [String: RecipeLimit] { get }
    /// Keys earlier versions had and this section no longer has, by dotted key. A file that holds
    /// one with the value earlier versions always wrote (a checkpoint's recipe.yaml) still loads,
    /// the key dropped; any other value is an error saying where the setting went.
    static var retiredKeys: [String: RetiredRecipeKey] { get }
}

extension RecipeSection {
    public static var limits: [String: RecipeLimit] { [:] }
    public static var retiredKeys: [String: RetiredRecipeKey] { [:] }
}

/// A key a recipe section no longer has (see `RecipeSection.retiredKeys`).
public struct RetiredRecipeKey: Sendable {
    /// The only value accepted (and ignored).
    public let value: Double
    /// Where the setting is now, e.g. "does not apply to CBT; use objectives.mlm_weight".
    public let message: String
    public init(value: Double, message: String) { self.value = value; self.message = message }
}

/// A numeric range for one recipe key (see `RecipeSection.limits`).
public struct RecipeLimit: Sendable {
    public let low: Double
    public let high: Double
    /// The low end itself is excluded (a learning rate must be > 0).
    public let lowOpen: Bool

    /// An integer in `range`.
    public static func int(_ range: ClosedRange<Int>) -> RecipeLimit {
        RecipeLimit(low: Double(range.lowerBound), high: Double(range.upperBound), lowOpen: false)
    }
    /// A number in `range`.
    public static func number(_ range: ClosedRange<Double>) -> RecipeLimit {
        RecipeLimit(low: range.lowerBound, high: range.upperBound, lowOpen: false)
    }
    /// A number in (0, max].
    public static func positive(max: Double) -> RecipeLimit {
        RecipeLimit(low: 0, high: max, lowOpen: true)
    }
    /// A probability, in [0, 1].
    public static let probability = RecipeLimit(low: 0, high: 1, lowOpen: false)

    func contains(_ v: Double) -> Bool { v.isFinite && (lowOpen ? v > low : v >= low) && v <= high }

    var text: String {
        func f(_ x: Double) -> String { Int(exactly: x).map(String.init) ?? "\(x)" }
        return lowOpen ? "in (\(f(low)), \(f(high))]" : "between \(f(low)) and \(f(high))"
    }
}

/// Bounds on recipe text checked before the YAML parser sees it (docs/RELIABILITY.md, "YAML"):
/// the parser recurses per nesting level and expands aliases, so deep nesting and alias bombs
/// are refused here, with a one-line error, instead of overflowing the stack or memory.
public enum RecipeTextLimits {
    /// Bytes of a recipe file (real recipes are a few KB).
    public static let maxBytes = 1 << 20
    /// Nesting of flow collections (`[`, `{`) and of block indentation columns.
    public static let maxDepth = 64
    /// Values after alias expansion (each alias counts the size of what it names).
    public static let maxNodes = 100_000
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
            let data = try recipeData(file)
            text = try recipeText(data, file: file)
        }
        return try load(type, yaml: text, name: file, overrides: overrides)
    }

    /// The same from YAML text (`name` is used in messages).
    public static func load<T: RecipeSection>(_ type: T.Type, yaml: String, name: String? = nil, overrides: [String] = []) throws -> T {
        let defaults = try tree(of: T())
        var user = try parse(yaml, name: name) ?? .map([], [:])
        if case .null = user { user = .map([], [:]) }
        guard case .map = user else { throw RecipeError(file: name, message: "a recipe must be a mapping of key: value") }
        if !T.retiredKeys.isEmpty { user = try dropRetired(user, T.retiredKeys, path: "", file: name) }
        try validate(user, against: defaults, path: "", file: name)
        for o in overrides {
            guard let eq = o.firstIndex(of: "="), eq != o.startIndex else {
                throw RecipeError(file: "--set", message: "expected key=value, got '\(o)'")
            }
            let key = String(o[..<eq])
            let valueText = String(o[o.index(after: eq)...])
            let value: RValue
            do {
                value = try parse(valueText, name: "--set") ?? .null
            } catch let e as RecipeError where !e.message.hasPrefix("YAML:") {
                throw e
            } catch {
                value = .string(valueText)
            }
            let path = key.split(separator: ".").map(String.init)
            user = try set(user, path: path, value: value, defaults: defaults, fullKey: key)
        }
        let merged = merge(defaults, user)
        let setKeys = Set(overrides.compactMap { o in o.firstIndex(of: "=").map { String(o[..<$0]) } })
        try checkLimits(T.limits, merged: merged, user: user, file: name, setKeys: setKeys)
        let json = jsonText(merged)
        do {
            return try JSONDecoder().decode(T.self, from: Data(json.utf8))
        } catch let DecodingError.typeMismatch(_, ctx) {
            throw RecipeError(file: name, message: "wrong type for '\(keyPath(ctx.codingPath))': \(ctx.debugDescription)")
        } catch let DecodingError.dataCorrupted(ctx) {
            throw RecipeError(file: name, message: "bad value for '\(keyPath(ctx.codingPath))': \(ctx.debugDescription)")
        } catch let DecodingError.valueNotFound(_, ctx) {
            throw RecipeError(file: name, message: "'\(keyPath(ctx.codingPath))' needs a value")
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
        let data = try recipeData(file)
        let tree = try parse(try recipeText(data, file: file), name: file) ?? .null
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

    /// The bytes of a recipe file: a regular file (a FIFO, folder or device is named, never read:
    /// reading a FIFO would wait forever), at most `RecipeTextLimits.maxBytes`.
    static func recipeData(_ file: String) throws -> Data {
        var st = stat()
        guard stat(file, &st) == 0 else {
            throw RecipeError(file: file, message: errno == ENOENT ? "no such recipe file" : "cannot read recipe: \(String(cString: strerror(errno)))")
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            let kind = st.st_mode & S_IFMT == S_IFDIR ? "a folder" : st.st_mode & S_IFMT == S_IFIFO ? "a FIFO (named pipe)" : "not a regular file"
            throw RecipeError(file: file, message: "is \(kind), not a recipe file")
        }
        guard Int(st.st_size) <= RecipeTextLimits.maxBytes else {
            throw RecipeError(file: file, message: "recipe is \(st.st_size) bytes, more than the \(RecipeTextLimits.maxBytes)-byte limit")
        }
        guard let data = FileManager.default.contents(atPath: file) else { throw RecipeError(file: file, message: "cannot read recipe") }
        return data
    }

    /// The text of a recipe file: refused when too large, binary (a NUL byte) or not UTF-8.
    static func recipeText(_ data: Data, file: String) throws -> String {
        guard data.count <= RecipeTextLimits.maxBytes else {
            throw RecipeError(file: file, message: "recipe is \(data.count) bytes, more than the \(RecipeTextLimits.maxBytes)-byte limit")
        }
        if data.contains(0) { throw RecipeError(file: file, message: "not a YAML recipe (binary data: a NUL byte)") }
        let text = String(decoding: data, as: UTF8.self)
        guard text.utf8.elementsEqual(data) else {
            let line = data.split(separator: 0x0A, omittingEmptySubsequences: false)
                .firstIndex { !String(decoding: $0, as: UTF8.self).utf8.elementsEqual($0) }.map { $0 + 1 } ?? 1
            throw RecipeError(file: file, message: "line \(line): not UTF-8 text (a recipe is a YAML text file)")
        }
        return text
    }

    /// Pre-scan, then parse, then convert with a node budget (alias expansion bounded).
    static func parse(_ text: String, name: String?) throws -> RValue? {
        guard text.utf8.count <= RecipeTextLimits.maxBytes else {
            throw RecipeError(file: name, message: "recipe text is \(text.utf8.count) bytes, more than the \(RecipeTextLimits.maxBytes)-byte limit")
        }
        try prescan(text, name: name)
        let node: Node?
        do {
            node = try compose(yaml: text)
        } catch let e as YamlError {
            throw RecipeError(file: name, message: "YAML: \(oneLine(e))")
        } catch {
            throw RecipeError(file: name, message: "YAML: \(oneLine(error))")
        }
        guard let node else { return nil }
        var budget = RecipeTextLimits.maxNodes
        return try convert(node, budget: &budget, name: name, depth: 0)
    }

    /// Refuses nesting deeper than `RecipeTextLimits.maxDepth` (flow brackets outside quotes and
    /// comments; block indentation plus `- ` / `? ` indicators at a line's start) before Yams, whose
    /// composer recurses once per level.
    static func prescan(_ text: String, name: String?) throws {
        let limit = RecipeTextLimits.maxDepth
        var depth = 0
        var line = 1
        var atLineStart = true
        var lead = 0
        var quote: UInt8? = nil
        var comment = false
        var previous: UInt8 = 0x20
        for c in text.utf8 {
            if c == 0x0A {
                line += 1; atLineStart = quote == nil; lead = 0; comment = false
                previous = c
                continue
            }
            if comment { previous = c; continue }
            if atLineStart {
                if c == 0x20 || c == 0x09 || c == 0x2D || c == 0x3F {  // space, tab, '-', '?'
                    lead += 1
                    if lead > 4 * limit {
                        throw RecipeError(file: name, message: "line \(line): nested more than \(limit) levels deep")
                    }
                    previous = c
                    continue
                }
                atLineStart = false
            }
            if let q = quote {
                if c == q && !(q == 0x22 && previous == 0x5C) { quote = nil }
                previous = c
                continue
            }
            switch c {
            case 0x27, 0x22: quote = c
            case 0x23 where previous == 0x20 || previous == 0x09 || previous == 0x0A: comment = true
            case 0x5B, 0x7B:
                depth += 1
                if depth > limit { throw RecipeError(file: name, message: "line \(line): nested more than \(limit) levels deep") }
            case 0x5D, 0x7D: depth = max(0, depth - 1)
            default: break
            }
            previous = c
        }
    }

    static func oneLine(_ e: Error) -> String {
        "\(e)".split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }

    static func keyPath(_ keys: [CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }

    static func tree<T: Encodable>(of value: T) throws -> RValue {
        let yaml = try YAMLEncoder().encode(value)
        return try parse(yaml, name: nil) ?? .map([], [:])
    }

    static func convert(_ node: Node, budget: inout Int, name: String?, depth: Int) throws -> RValue {
        budget -= 1
        guard budget >= 0 else {
            throw RecipeError(file: name, message: "more than \(RecipeTextLimits.maxNodes) values after expanding aliases (an alias bomb?)")
        }
        guard depth <= RecipeTextLimits.maxDepth else {
            throw RecipeError(file: name, message: "line \((node.mark?.line).map(String.init) ?? "?"): nested more than \(RecipeTextLimits.maxDepth) levels deep")
        }
        switch node {
        case .scalar(let s):
            let tag = node.tag.description
            if tag.hasSuffix(":null") { return .null }
            if tag.hasSuffix(":bool"), let b = node.bool { return .bool(b) }
            if tag.hasSuffix(":int"), let i = node.int { return .int(i) }
            if tag.hasSuffix(":float"), let f = node.float { return .float(f) }
            return .string(s.string)
        case .sequence(let seq):
            var items: [RValue] = []
            for item in seq { items.append(try convert(item, budget: &budget, name: name, depth: depth + 1)) }
            return .list(items)
        case .mapping(let m):
            var entries: [(String, RValue)] = []
            var lines: [String: Int] = [:]
            for (k, v) in m {
                let key = k.string ?? "\(k)"
                entries.append((key, try convert(v, budget: &budget, name: name, depth: depth + 1)))
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

    /// `value` without the retired keys that hold their one accepted value; an error for another.
    static func dropRetired(_ value: RValue, _ retired: [String: RetiredRecipeKey], path: String, file: String?) throws -> RValue {
        guard case .map(let entries, let lines) = value else { return value }
        var kept: [(String, RValue)] = []
        for (k, v) in entries {
            let full = path.isEmpty ? k : path + "." + k
            if let r = retired[full] {
                let number: Double? = switch v { case .int(let i): Double(i); case .float(let f): f; default: nil }
                if number == r.value { continue }
                throw RecipeError(file: file, message: "\(lines[k].map { "line \($0): " } ?? "")'\(full)' \(r.message)")
            }
            kept.append((k, try dropRetired(v, retired, path: full, file: file)))
        }
        return .map(kept, lines)
    }

    static func validate(_ value: RValue, against def: RValue, path: String, file: String?) throws {
        if case .float(let f) = value, !f.isFinite {
            throw RecipeError(file: file, message: "'\(path)' must be a finite number, not \(f)")
        }
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
                if case .float(let f) = v, !f.isFinite {
                    throw RecipeError(file: file, message: "\(at)'\(full)' must be a finite number, not \(f)")
                }
                try validate(v, against: d, path: full, file: file)
            }
        case (.list(let items), .list(let dItems)):
            if let d0 = dItems.first {
                for (i, item) in items.enumerated() where !typeMatches(item, d0) {
                    throw RecipeError(file: file, message: "'\(path)[\(i)]' must be \(d0.kind), not \(item.kind)")
                }
                for (i, item) in items.enumerated() {
                    if case .float(let f) = item, !f.isFinite {
                        throw RecipeError(file: file, message: "'\(path)[\(i)]' must be a finite number, not \(f)")
                    }
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

    /// Checks every key of `limits` in the merged recipe; the message names the key and, when the
    /// value came from the file, its line.
    static func checkLimits(_ limits: [String: RecipeLimit], merged: RValue, user: RValue, file: String?, setKeys: Set<String> = []) throws {
        for (key, limit) in limits.sorted(by: { $0.key < $1.key }) {
            let path = key.split(separator: ".").map(String.init)
            var node: RValue? = merged
            for p in path { node = node?[p] }
            guard let node else { continue }
            // Where the user's value came from: the line in the file, or `--set`.
            var line: Int? = nil
            var u: RValue? = user
            for p in path {
                if case .map(_, let lines)? = u { line = lines[p] }
                u = u?[p]
            }
            // A value given with --set (the key or a section holding it) is named as --set's.
            let fromSet = path.indices.contains { setKeys.contains(path[...$0].joined(separator: ".")) }
            let at = (u != nil && !fromSet ? line : nil).map { "line \($0): " } ?? ""
            func check(_ v: Double, _ shown: String, _ name: String) throws {
                guard limit.contains(v) else {
                    throw RecipeError(file: fromSet ? "--set" : file, message: "\(at)'\(name)' is \(shown), must be \(limit.text)")
                }
            }
            switch node {
            case .int(let i): try check(Double(i), String(i), key)
            case .float(let f): try check(f, "\(f)", key)
            case .list(let items):
                for (i, item) in items.enumerated() {
                    if case .int(let v) = item { try check(Double(v), String(v), "\(key)[\(i)]") }
                    if case .float(let v) = item { try check(v, "\(v)", "\(key)[\(i)]") }
                }
            default: break
            }
        }
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
            guard let data = try? JSONSerialization.data(withJSONObject: [s], options: []) else { return "\"\"" }
            let t = String(decoding: data, as: UTF8.self)
            return String(t.dropFirst().dropLast())
        case .list(let items): return "[" + items.map(jsonText).joined(separator: ",") + "]"
        case .map(let entries, _):
            return "{" + entries.map { jsonText(.string($0.0)) + ":" + jsonText($0.1) }.joined(separator: ",") + "}"
        }
    }
}
