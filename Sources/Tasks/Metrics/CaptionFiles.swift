import Foundation
import Tensor

/// An image (or video segment) id in the COCO caption formats: an integer or a string.
/// Ids are matched by their text, so `5` and `"5"` name the same image.
public enum ImageID: Hashable, Sendable, CustomStringConvertible {
    case int(Int)
    case string(String)

    public var description: String {
        switch self {
        case .int(let v): return String(v)
        case .string(let v): return v
        }
    }

    /// The text ids are matched by.
    var key: String { description }

    /// As JSON: a number for integer ids, a string otherwise.
    public var jsonValue: Any {
        switch self {
        case .int(let v): return v
        case .string(let v): return v
        }
    }
}

/// One `{"image_id", "caption"}` entry.
public struct CaptionEntry: Sendable, Equatable {
    public var imageID: ImageID
    public var caption: String
    public init(imageID: ImageID, caption: String) {
        self.imageID = imageID
        self.caption = caption
    }
}

/// Reference captions grouped by image, images in order of first appearance.
public struct CaptionReferences: Sendable {
    public private(set) var imageIDs: [ImageID] = []
    public private(set) var captions: [String: [String]] = [:]
    private var idsByKey: [String: ImageID] = [:]

    public init(_ entries: [CaptionEntry] = []) {
        for e in entries { add(e) }
    }

    public mutating func add(_ e: CaptionEntry) {
        let key = e.imageID.key
        if captions[key] == nil {
            imageIDs.append(e.imageID)
            idsByKey[key] = e.imageID
            captions[key] = []
        }
        captions[key]!.append(e.caption)
    }

    public func captions(for id: ImageID) -> [String]? { captions[id.key] }
    public func contains(_ id: ImageID) -> Bool { captions[id.key] != nil }
    public var count: Int { imageIDs.count }
}

/// Predicted captions, one per image, in file order.
public struct CaptionPredictions: Sendable {
    public private(set) var entries: [CaptionEntry] = []
    private var byKey: [String: Int] = [:]

    public init() {}

    /// Adds a prediction; returns the index of an earlier prediction for the same image instead.
    @discardableResult
    public mutating func add(_ e: CaptionEntry) -> Int? {
        if let earlier = byKey[e.imageID.key] { return earlier }
        byKey[e.imageID.key] = entries.count
        entries.append(e)
        return nil
    }

    public init(_ entries: [CaptionEntry]) throws {
        for (k, e) in entries.enumerated() {
            if let j = add(e) {
                throw VideoBertError("[\(k)]: a second prediction for image_id \(e.imageID) (the first is [\(j)])")
            }
        }
    }

    public func caption(for id: ImageID) -> String? { byKey[id.key].map { entries[$0].caption } }
    public var count: Int { entries.count }
}

/// Reading the COCO caption formats with errors that name the file and the entry.
public enum CaptionFiles {
    /// References: `{"annotations": [{"image_id", "caption"}, ...]}` (other top-level keys such as
    /// "images" are ignored), or a plain list of `{"image_id", "caption"}`.
    public static func loadReferences(_ path: String) throws -> CaptionReferences {
        let root = try readJSON(path)
        let list: [Any]
        let prefix: String
        if let obj = root as? [String: Any] {
            guard let annotations = obj["annotations"] else {
                throw VideoBertError("no \"annotations\" list (expected COCO references {\"annotations\": [{\"image_id\", \"caption\"}]} or a list of them)", file: path)
            }
            guard let a = annotations as? [Any] else { throw VideoBertError("\"annotations\" is not a list", file: path) }
            list = a
            prefix = "annotations"
        } else if let a = root as? [Any] {
            list = a
            prefix = ""
        } else {
            throw VideoBertError("expected COCO references {\"annotations\": [{\"image_id\", \"caption\"}]} or a list of {\"image_id\", \"caption\"}", file: path)
        }
        guard !list.isEmpty else { throw VideoBertError("no reference captions", file: path) }
        var refs = CaptionReferences()
        for (k, item) in list.enumerated() {
            refs.add(try entry(item, at: "\(prefix)[\(k)]", file: path))
        }
        return refs
    }

    /// Predictions (COCO results): `[{"image_id", "caption"}, ...]`, one per image.
    public static func loadPredictions(_ path: String) throws -> CaptionPredictions {
        let root = try readJSON(path)
        guard let list = root as? [Any] else {
            throw VideoBertError("expected COCO results: a list of {\"image_id\", \"caption\"}", file: path)
        }
        var preds = CaptionPredictions()
        for (k, item) in list.enumerated() {
            let e = try entry(item, at: "[\(k)]", file: path)
            if let j = preds.add(e) {
                throw VideoBertError("[\(k)]: a second prediction for image_id \(e.imageID) (the first is [\(j)])", file: path)
            }
        }
        return preds
    }

    static func readJSON(_ path: String) throws -> Any {
        guard let data = try InputFile.readIfExists(path) else {
            throw VideoBertError(FileManager.default.fileExists(atPath: path) ? "cannot read file" : "no such file", file: path)
        }
        do {
            return try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            let detail = (error as NSError).userInfo["NSDebugDescription"] as? String ?? "\(error)"
            throw VideoBertError("invalid JSON: \(detail)", file: path)
        }
    }

    static func entry(_ item: Any, at location: String, file: String) throws -> CaptionEntry {
        guard let obj = item as? [String: Any] else {
            throw VideoBertError("\(location): expected an object {\"image_id\", \"caption\"}", file: file)
        }
        guard let rawID = obj["image_id"] else { throw VideoBertError("\(location): missing key \"image_id\"", file: file) }
        guard let id = imageID(rawID) else {
            throw VideoBertError("\(location).image_id: expected an integer or a string, got \(describe(rawID))", file: file)
        }
        guard let rawCaption = obj["caption"] else { throw VideoBertError("\(location): missing key \"caption\"", file: file) }
        guard let caption = rawCaption as? String else {
            throw VideoBertError("\(location).caption: expected a string, got \(describe(rawCaption))", file: file)
        }
        return CaptionEntry(imageID: id, caption: caption)
    }

    /// JSON true/false (an NSNumber holding a C char; `is Bool` also holds for the numbers 0 and 1).
    static func isJSONBoolean(_ v: Any) -> Bool {
        guard let n = v as? NSNumber else { return false }
        return String(cString: n.objCType) == "c"
    }

    static func imageID(_ v: Any) -> ImageID? {
        if let s = v as? String { return .string(s) }
        if isJSONBoolean(v) { return nil }
        if let n = v as? NSNumber {
            let d = n.doubleValue
            guard d.rounded() == d, abs(d) < 9.0e15 else { return nil }
            return .int(n.intValue)
        }
        return nil
    }

    static func describe(_ v: Any) -> String {
        if v is NSNull { return "null" }
        if v is String { return "a string" }
        if v is [Any] { return "a list" }
        if v is [String: Any] { return "an object" }
        if isJSONBoolean(v) { return "a boolean" }
        if let n = v as? NSNumber { return "the number \(n)" }
        return "\(type(of: v))"
    }
}
