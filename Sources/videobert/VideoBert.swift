import ArgumentParser
import Foundation
import Tensor

struct VideoBert: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "videobert",
        abstract: "VideoBERT-style masked pretraining on video: from video files to a trained model.",
        discussion: """
        Stages (each reads only the previous stage's files):
          tokenize   videos + transcripts -> corpus of visual words + WordPieces
          frames     decode one video into RGB frames (.npy)
          audio      log-mel spectrogram of a file's audio (.npy + .json)
          features   per-frame ResNet-50/152 features of videos (.npy + .json)
          wordpiece  BERT WordPiece ids for lines on stdin
          bpe        CLIP byte-level BPE ids for lines on stdin
          vocab      fit / show the visual vocabulary, train a text vocabulary
          inspect    print a tokenized corpus, or describe a checkpoint
          pretrain   train VideoBERT (or CBT) from a recipe
          evaluate   caption metrics (BLEU, METEOR, ROUGE-L, CIDEr-D) as pycocoevalcap
          demo       the whole toolkit on a built-in corpus
          embed      last hidden states of a checkpoint for JSONL inputs (.npy)
          zero-shot  verb/noun classification and template captions (VideoBERT §4.2)
          finetune   caption: train a captioner from a checkpoint (VideoBERT or CBT)
          caption    generate captions with a fine-tuned captioner
          next-step  forecast the next segment's visual words; rank the next sentence
          retrieve   text-to-video and video-to-text retrieval (alignment head, CBT)
          index      index your videos: segments, thumbnails, transcripts, embeddings
          search     search an index: BM25, embeddings or both
          serve      an index over HTTP: search page, JSON API, videos
          doctor     check this machine: CPU, OpenBLAS kernels and speed, FFmpeg, MPI

        Example:
          videobert frames talk.mp4 --fps 20 --size 64x64 --out talk.npy
        """,
        version: "0.1.0",
        subcommands: [
            TokenizeCommand.self, FramesCommand.self, AudioCommand.self, FeaturesCommand.self, WordPieceCommand.self, BPECommand.self, VocabCommand.self, InspectCommand.self,
            PretrainCommand.self, EmbedCommand.self, EvaluateCommand.self, DemoCommand.self, DemoCorpusCommand.self,
            FinetuneCommand.self, CaptionCommand.self, NextStepCommand.self, RetrieveCommand.self, ZeroShotCommand.self,
            IndexCommand.self, SearchCommand.self, ServeCommand.self, EncodeCommand.self, DoctorCommand.self,
        ]
    )
}

/// Entry point: parses, runs, and turns our errors into one line `error: <file>: <what>`
/// with exit status 1. Argument errors keep ArgumentParser's usage message (exit 64).
@main
enum Main {
    static func main() {
        do {
            var command = try parse(Array(CommandLine.arguments.dropFirst()))
            try command.run()
        } catch let e as VideoBertError {
            FileHandle.standardError.write(Data("error: \(e)\n".utf8))
            exit(1)
        } catch {
            VideoBert.exit(withError: error)
        }
    }

    /// ArgumentParser reads `--top -1` as the option `--top` without a value followed by an
    /// unknown option `-1`, and says "Missing value for '--top'". When parsing fails that way and
    /// the token after the option is a negative number (`-1`, `-0.5`, `-6s`), parse again with
    /// `--top=-1`, so the command's own range check names the option and its bounds (that
    /// parse's error is reported). Arguments that
    /// parse are never rewritten.
    static func parse(_ arguments: [String]) throws -> ParsableCommand {
        do {
            return try VideoBert.parseAsRoot(arguments)
        } catch {
            let joined = joiningNegativeValues(arguments)
            guard joined != arguments else { throw error }
            return try VideoBert.parseAsRoot(joined)  // its error (a range check) is the better one
        }
    }

    /// `["--top", "-1"]` → `["--top=-1"]` for every long option followed by a negative number;
    /// nothing after a `--` terminator changes.
    static func joiningNegativeValues(_ arguments: [String]) -> [String] {
        var out: [String] = []
        var index = 0
        while index < arguments.count {
            let token = arguments[index]
            if token == "--" { out.append(contentsOf: arguments[index...]); break }
            if token.hasPrefix("--"), !token.contains("="), index + 1 < arguments.count,
               isNegativeNumber(arguments[index + 1]) {
                out.append(token + "=" + arguments[index + 1])
                index += 2
                continue
            }
            out.append(token)
            index += 1
        }
        return out
    }

    /// `-1`, `-0.5`, `-.5`, `-6s`, `-1e3`: a minus sign, then a digit or a point and a digit.
    static func isNegativeNumber(_ token: String) -> Bool {
        let scalars = Array(token.unicodeScalars)
        guard scalars.count >= 2, scalars[0] == "-" else { return false }
        let digit: (Unicode.Scalar) -> Bool = { $0.properties.numericType != nil && $0.isASCII }
        if digit(scalars[1]) { return true }
        return scalars[1] == "." && scalars.count >= 3 && digit(scalars[2])
    }
}
