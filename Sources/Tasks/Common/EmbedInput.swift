import Foundation
import Model
import Tensor
import Tokenize

/// Turns one line of `videobert embed`'s JSONL input into (ids, token types), validating
/// everything against the checkpoint's config: `{"input_ids": [...], "token_type_ids": [...]}` as
/// they are, or `{"text": "...", "visual": [word, ...]}` built into `[CLS] text [unused0] visual [SEP]`.
/// Errors name the input file and line.
public struct EmbedSequenceBuilder {
    let config: BertConfig
    let vocabularyFile: String
    let lowercase: Bool
    let input: String
    private var tokenizer: BertTokenizer?
    private var specials: (cls: Int32, sep: Int32, separator: Int32)?

    public init(config: BertConfig, vocabularyFile: String, lowercase: Bool, input: String) {
        self.config = config
        self.vocabularyFile = vocabularyFile
        self.lowercase = lowercase
        self.input = input
    }

    public mutating func sequence(line: Data, number: Int) throws -> (ids: [Int32], types: [Int32]) {
        func fail(_ message: String) -> VideoBertError { VideoBertError(file: input, line: number, message) }
        let object: [String: Any]
        do {
            guard let o = try JSONSerialization.jsonObject(with: line) as? [String: Any] else { throw fail("not a JSON object") }
            object = o
        } catch let e as VideoBertError {
            throw e
        } catch {
            let reason = (error as NSError).userInfo["NSDebugDescription"] as? String ?? "invalid JSON"
            throw fail("bad JSON: \(reason)")
        }
        let known: Set<String> = ["input_ids", "token_type_ids", "text", "visual"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw fail("unknown key '\(unknown)' (expected input_ids [+ token_type_ids], or text and/or visual)")
        }
        func integers(_ key: String) throws -> [Int]? {
            guard let value = object[key] else { return nil }
            guard let array = value as? [Any] else { throw fail("'\(key)' must be an array of integers") }
            return try array.map { element in
                guard let n = element as? NSNumber, n.doubleValue == Double(n.intValue) else {
                    throw fail("'\(key)' must be an array of integers, found \(element)")
                }
                return n.intValue
            }
        }
        var ids: [Int32], types: [Int32]
        if let inputIDs = try integers("input_ids") {
            guard object["text"] == nil && object["visual"] == nil else { throw fail("give either input_ids or text/visual, not both") }
            if let bad = inputIDs.first(where: { $0 < 0 || $0 >= config.vocabSize }) {
                throw fail("input id \(bad) is outside the vocabulary 0..<\(config.vocabSize)")
            }
            let typeIDs = try integers("token_type_ids") ?? [Int](repeating: 0, count: inputIDs.count)
            guard typeIDs.count == inputIDs.count else {
                throw fail("token_type_ids has \(typeIDs.count) values, input_ids \(inputIDs.count)")
            }
            if let bad = typeIDs.first(where: { $0 < 0 || $0 >= config.typeVocabSize }) {
                throw fail("token type \(bad) is outside 0..<\(config.typeVocabSize)")
            }
            ids = inputIDs.map(Int32.init); types = typeIDs.map(Int32.init)
        } else {
            guard object["token_type_ids"] == nil else { throw fail("token_type_ids without input_ids") }
            guard object["text"] != nil || object["visual"] != nil else { throw fail("expected input_ids, or text and/or visual") }
            var textIDs: [Int32] = []
            if let value = object["text"] {
                guard let text = value as? String else { throw fail("'text' must be a string") }
                textIDs = try tokenize(text, line: number)
            }
            let visual = try integers("visual") ?? []
            if let bad = visual.first(where: { $0 < 0 || $0 >= config.visualWords }) {
                throw fail(config.visualWords == 0 ? "visual word \(bad): this checkpoint is text-only (no visual words)"
                                                   : "visual word \(bad) is outside 0..<\(config.visualWords) (the checkpoint's visual vocabulary)")
            }
            let s = try specialIDs(line: number)
            ids = [s.cls] + textIDs
            types = [Int32](repeating: 0, count: ids.count)
            if !textIDs.isEmpty && !visual.isEmpty { ids.append(s.separator); types.append(0) }
            ids += visual.map { Int32(config.textVocabSize + $0) }
            types += [Int32](repeating: 1, count: visual.count)
            ids.append(s.sep); types.append(visual.isEmpty ? 0 : 1)
        }
        guard !ids.isEmpty else { throw fail("empty sequence") }
        guard ids.count <= config.maxPositionEmbeddings else {
            throw fail("\(ids.count) tokens, longer than max_position_embeddings \(config.maxPositionEmbeddings)")
        }
        return (ids, types)
    }

    private mutating func tokenize(_ text: String, line: Int) throws -> [Int32] {
        if tokenizer == nil {
            guard FileManager.default.fileExists(atPath: vocabularyFile) else {
                throw VideoBertError(file: input, line: line, "text needs the checkpoint's vocabulary, but \(vocabularyFile) does not exist")
            }
            let t = try BertTokenizer(vocabularyFile: vocabularyFile, lowercase: lowercase)
            guard t.vocabulary.count == config.textVocabSize else {
                throw VideoBertError("has \(t.vocabulary.count) tokens, the checkpoint's text vocabulary \(config.textVocabSize)", file: vocabularyFile)
            }
            tokenizer = t
        }
        return tokenizer!.encode(text)
    }

    private mutating func specialIDs(line: Int) throws -> (cls: Int32, sep: Int32, separator: Int32) {
        if let specials { return specials }
        if tokenizer == nil { _ = try tokenize("", line: line) }
        let v = tokenizer!.vocabulary
        func id(_ token: String) throws -> Int32 {
            guard let i = v.id(of: token) else { throw VideoBertError("no \(token) token", file: vocabularyFile) }
            return i
        }
        let s = (cls: try id("[CLS]"), sep: try id("[SEP]"), separator: try id("[unused0]"))
        specials = s
        return s
    }
}
