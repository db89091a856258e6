import ArgumentParser
import Foundation
import Tensor
import Tokenize

/// `videobert bpe`: CLIP byte-level BPE ids for each line on stdin, one JSON array per line.
struct BPECommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bpe",
        abstract: "CLIP byte-level BPE ids for each line on stdin, one JSON array per line on stdout.",
        discussion: """
        The tokenizer of CLIP's text tower. --normalization clip is CLIP's reference tokenizer \
        (ftfy's text fixes, HTML entities, white space, lower case), huggingface is \
        transformers' CLIPTokenizer (NFC, white space, lower case; no HTML unescaping): the \
        default follows the vocabulary, CLIP's merges file or a Hugging Face CLIP folder. \
        Without --context the ids have no start/end tokens; with it, each line is \
        <|startoftext|> ids <|endoftext|>, cut and padded with 0 to that length (clip.tokenize).

        Example:
          echo "Slice the onion &amp; fry it" | videobert bpe --vocab Vocab/clip-bpe-16e6.txt.gz
          [13431,518,10985,261,13686,585]
        """
    )

    @Option(name: .long, help: "CLIP's bpe_simple_vocab_16e6.txt(.gz) (tools/setup installs it in Vocab/), or a Hugging Face CLIP folder (vocab.json + merges.txt).")
    var vocab: String

    @Option(name: .long, help: "clip or huggingface (default: from the vocabulary's source).")
    var normalization: CLIPTokenizer.Normalization?

    @Option(name: .long, help: "Add start/end tokens and cut/pad to this length (CLIP: 77).")
    var context: Int?

    func validate() throws {
        if let context, context < 2 { throw ValidationError("--context must be at least 2 (start and end tokens)") }
    }

    func run() throws {
        let tokenizer = try CLIPTokenizer(path: vocab, normalization: normalization)
        let output = BufferedOutput(fd: 1)
        defer { output.deallocate() }
        forEachLine(fd: 0) { line in
            // Invalid UTF-8 bytes become U+FFFD, as Python's errors="replace".
            let text = String(decoding: line, as: UTF8.self)
            output.writeJSONArray(context.map { tokenizer.tokenize(text, contextLength: $0) } ?? tokenizer.encode(text))
        }
        output.flush()
    }
}

extension CLIPTokenizer.Normalization: ExpressibleByArgument {}
