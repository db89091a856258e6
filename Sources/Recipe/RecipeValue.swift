import Foundation
import Yams

extension RecipeLoader {
    /// The string at a dotted key path (`frontend.center`) of a recipe file, nil when the file
    /// does not set it. For readers of a checkpoint's recipe.yaml that need one setting of a
    /// recipe type they do not link (a CBT checkpoint read by the downstream tasks).
    public static func string(at keyPath: String, file: String) throws -> String? {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw RecipeError(file: file, message: FileManager.default.fileExists(atPath: file) ? "cannot read recipe" : "no such recipe file")
        }
        var value: RValue
        do {
            value = try compose(yaml: String(decoding: data, as: UTF8.self)).map(convert) ?? .null
        } catch let e as YamlError {
            throw RecipeError(file: file, message: "YAML: \(oneLine(e))")
        }
        for key in keyPath.split(separator: ".") {
            guard let next = value[String(key)] else { return nil }
            value = next
        }
        switch value {
        case .string(let s): return s
        case .null: return nil
        default: throw RecipeError(file: file, message: "'\(keyPath)' must be a string, not \(value.kind)")
        }
    }
}
