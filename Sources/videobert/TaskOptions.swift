import ArgumentParser
import Foundation
import Tasks
import Tensor

/// Options shared by the downstream task commands (zero-shot, caption, next-step, retrieve).
struct TaskOptions: ParsableArguments {
    @Option(help: "Checkpoint folder (from `videobert pretrain` or `videobert finetune caption`).") var checkpoint: String
    @Option(name: .customLong("corpus"), help: "Tokenized corpus folder (from `videobert tokenize`), with the checkpoint's vocabularies (required, but for `next-step VIDEO`).") var corpusOption: String?
    /// --corpus (checked by `checkOutputs`, which every command calls first).
    var corpus: String { corpusOption ?? "" }
    @Option(help: "The corpus split evaluated (held-out videos).") var split: String = "test"
    @Option(help: "The corpus split baselines count frequencies in.") var trainSplit: String = "train"
    @Option(help: "Sequences per forward pass (memory: batch × 128 positions).") var batch: Int = 64
    @Flag(help: "Print only the JSON result (no table).") var json = false
    @Option(help: "Also write the JSON result to this file.") var outJson: String?

    func validate() throws {
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
    }

    /// Checked before any work: --out-json never replaces a folder or one of the inputs.
    func checkOutputs() throws {
        guard corpusOption != nil else { throw ValidationError("Missing expected argument '--corpus <corpus>'") }
        if let outJson { try AtomicFile.checkOutputFile(outJson, inputs: [checkpoint, corpus]) }
    }

    /// - Parameter allowClipFeatures: accept captioners fine-tuned from CBT checkpoints (captioning only).
    func load(allowClipFeatures: Bool = false) throws -> (TaskModel, TaskCorpus) {
        try checkOutputs()
        let corpus = try TaskCorpus(path: self.corpus)
        let model = try TaskModel(checkpoint: checkpoint, corpus: corpus, maxBatch: batch, allowClipFeatures: allowClipFeatures)
        return (model, corpus)
    }

    /// Prints the table, or with --json the JSON result; writes --out-json.
    func emit<T: Encodable>(_ value: T, table: String) throws {
        if let outJson { try JSON.write(value, to: outJson) }
        if json { print(try JSON.string(value)) } else { print(table) }
    }
}

extension ZeroShotOptions.PieceScoring: ExpressibleByArgument {}
extension NextStepTextOptions.Aggregate: ExpressibleByArgument {}
