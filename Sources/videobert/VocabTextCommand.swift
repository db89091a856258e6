import ArgumentParser
import Foundation
import Tensor
import Tokenize

/// `videobert vocab text`: trains a WordPiece vocabulary (vocab.txt) from text.
struct VocabText: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "text",
        abstract: "Train a WordPiece vocabulary (vocab.txt) from transcripts or plain text.",
        discussion: """
        For languages and domains that BERT's vocabulary serves badly. Reads plain text files \
        (.txt or any other name given explicitly) and subtitles (.vtt, .srt: timing lines, cue \
        numbers and tags are dropped); folders are searched for .txt/.vtt/.srt. Words come from \
        BERT's basic tokenization; the vocabulary is trained as HF tokenizers' WordPieceTrainer \
        does (merges of the most frequent adjacent pieces, "##" continuations). The output starts \
        with [PAD] [UNK] [CLS] [SEP] [MASK], then [unused0..N-1], then the alphabet and the \
        merged pieces. Prints a JSON summary.

        Example:
          videobert vocab text transcripts/ notes.txt --size 8000 --unused 100 \\
              --out Vocab/cooking.txt
        """
    )

    @Argument(help: "Text files, .vtt/.srt subtitles, or folders of them.")
    var inputs: [String]

    @Option(name: .long, help: "Where to write vocab.txt.")
    var out: String

    @Option(name: .long, help: "Target vocabulary size, specials included.")
    var size = 30522

    @Option(name: .long, help: "Merge only pairs seen at least this many times.")
    var minFrequency = 2

    @Option(name: .long, help: "Keep at most this many distinct characters (the most frequent).")
    var limitAlphabet = 1000

    @Option(name: .long, help: "Number of [unusedN] slots after the specials.")
    var unused = 0

    @Flag(name: .long, help: "Keep case and accents (a cased vocabulary).")
    var cased = false

    func validate() throws {
        if size < 1 { throw ValidationError("--size must be positive") }
        if minFrequency < 0 { throw ValidationError("--min-frequency must not be negative") }
        if limitAlphabet < 1 { throw ValidationError("--limit-alphabet must be positive") }
        if unused < 0 { throw ValidationError("--unused must not be negative") }
    }

    func run() throws {
        let start = Date()
        var options = WordPieceTrainer.Options()
        options.vocabularySize = size
        options.minFrequency = minFrequency
        options.limitAlphabet = limitAlphabet
        options.unusedSlots = unused
        options.lowercase = !cased
        var trainer = WordPieceTrainer(options: options)
        let files = try TextCorpusReader.files(inputs)
        try AtomicFile.checkOutputFile(out, inputs: inputs + files)
        for file in files {
            trainer.add(lines: try TextCorpusReader.lines(ofFile: file))
        }
        if trainer.wordCounts.isEmpty {
            throw VideoBertError("no words in \(files.count) file(s)", file: inputs.joined(separator: ", "))
        }
        let progress = ProgressReporter(label: "merges", total: size, unit: "merges")
        let (vocabulary, summary) = trainer.train(progress: progress)
        try vocabulary.write(to: out)
        let result = VocabTextSummary(out: out, files: files.count, entries: summary.entries, words: summary.words,
                                      distinct_words: summary.distinctWords, alphabet: summary.alphabet,
                                      merges: summary.merges, seconds: (Date().timeIntervalSince(start) * 1000).rounded() / 1000)
        print(try JSON.string(result))
    }
}

/// What `vocab text` prints.
struct VocabTextSummary: Encodable {
    var out: String
    var files: Int
    var entries: Int
    var words: Int
    var distinct_words: Int
    var alphabet: Int
    var merges: Int
    var seconds: Double
}
