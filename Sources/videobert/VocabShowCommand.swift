import ArgumentParser
import Foundation
import Tensor
import Tokenize

/// `videobert vocab show`: one contact sheet per visual word.
struct VocabShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Draw visual words: for each, the clips nearest its centroid (one PNG per word).",
        discussion: """
        Writes word_<id>.png (one row per clip, frames across) for every visual word that some \
        clip uses, and words.png, an overview with one frame per word. Frames come from the \
        corpus' stored frames (store.frames: true) or are decoded from the source videos.

        Example:
          videobert vocab show --corpus demo/tokens --out demo/words --per-word 6
        """)

    @Option(help: "A tokenized corpus folder.") var corpus: String
    @Option(help: "Output folder for the PNGs.") var out: String
    @Option(help: "Clips per word (nearest to its centroid first).") var perWord: Int = 6
    @Option(help: "Frames per clip.") var frames: Int = 4
    @Option(help: "Frame side in pixels when decoding from videos.") var side: Int = 48
    @Option(help: "Only these words (comma-separated ids).") var words: String?

    func run() throws {
        let c = try TokenizedCorpus(path: corpus)
        let sheets = try VisualWordSheets(corpus: c)
        let list = try words.map { s in
            try s.split(separator: ",").map { t -> Int in
                guard let w = Int(t.trimmingCharacters(in: .whitespaces)), w >= 0, w < sheets.vocabulary.leaves else {
                    throw VideoBertError("--words: '\(t)' is not a word id in 0..<\(sheets.vocabulary.leaves)")
                }
                return w
            }
        }
        let drawn = try sheets.write(to: out, words: list, perWord: perWord, framesPerClip: frames, side: side)
        print(try JSON.string(["words": .int(drawn.count), "out": .string(out)] as [String: AnyCodableValue]))
    }
}

/// Small JSON values for summaries.
enum AnyCodableValue: Encodable, ExpressibleByIntegerLiteral, ExpressibleByStringLiteral, ExpressibleByFloatLiteral {
    case int(Int), string(String), double(Double)
    init(integerLiteral v: Int) { self = .int(v) }
    init(stringLiteral v: String) { self = .string(v) }
    init(floatLiteral v: Double) { self = .double(v) }
    func encode(to e: Encoder) throws {
        var c = e.singleValueContainer()
        switch self {
        case .int(let v): try c.encode(v)
        case .string(let v): try c.encode(v)
        case .double(let v): try c.encode(v)
        }
    }
}
