import Foundation
import Yams

extension RecipeLoader {
    /// The string at a dotted key path (`frontend.center`) of a recipe file, nil when the file
    /// does not set it. For readers of a checkpoint's recipe.yaml that need one setting of a
    /// recipe type they do not link (a CBT checkpoint read by the downstream tasks).
    public static func string(at keyPath: String, file: String) throws -> String? {
        // The same bounded reading and parsing as every recipe (size, depth, aliases).
        var value = try parse(try recipeText(try recipeData(file), file: file), name: file) ?? .null
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
