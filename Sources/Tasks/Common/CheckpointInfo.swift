import Foundation
import Model
import Tensor
import Train

/// What a checkpoint folder holds, for `videobert inspect`: its kind, architecture, training step,
/// parameter count, the commands that read it and its files.
public struct CheckpointInfo: Codable, Sendable {
    public enum Kind: String, Codable, Sendable {
        /// `videobert pretrain` (VideoBERT): a joint BERT over WordPieces and visual words.
        case videobert
        /// `videobert finetune caption` from a VideoBERT checkpoint (visual words in).
        case videobertCaptioner = "videobert-captioner"
        /// `videobert pretrain` with `variant: cbt`.
        case cbt
        /// `videobert finetune caption` from a CBT checkpoint (clip features in).
        case cbtCaptioner = "cbt-captioner"
        /// A text-only BERT (e.g. a CBT checkpoint's text/ folder or a Hugging Face BERT).
        case bert
    }

    public var path: String
    public var kind: Kind
    /// One line: what it is and how big.
    public var summary: String
    /// The optimizer step it was saved at (trainer_state.json), when known.
    public var step: Int?
    /// Parameters in its weight files (float32 values).
    public var parameters: Int
    /// The checkpoint its training started from (a fine-tuned captioner's recipe `init`).
    public var initFrom: String?
    /// The commands that read it.
    public var readBy: [String]
    public var files: [String]

    enum CodingKeys: String, CodingKey {
        case path, kind, summary, step, parameters, files
        case initFrom = "init", readBy = "read_by"
    }

    /// Whether `folder` looks like a checkpoint (config.json or cbt_config.json).
    public static func isCheckpoint(_ folder: String) -> Bool {
        let fm = FileManager.default
        return fm.fileExists(atPath: (folder as NSString).appendingPathComponent(BertForPreTraining.configFileName))
            || CBTTrainer.isCheckpoint(folder)
    }

    public static func load(_ folder: String) throws -> CheckpointInfo {
        func file(_ name: String) -> String { (folder as NSString).appendingPathComponent(name) }
        let fm = FileManager.default
        let files = ((try? fm.subpathsOfDirectory(atPath: folder)) ?? []).filter {
            var isDir: ObjCBool = false
            return fm.fileExists(atPath: file($0), isDirectory: &isDir) && !isDir.boolValue
        }.sorted()
        func parameterCount(_ paths: [String]) throws -> Int {
            try paths.filter { fm.fileExists(atPath: $0) }.reduce(0) { total, p in
                let f = try SafeTensors.read(p)
                return total + f.names.reduce(0) { $0 + (f.shape($1) ?? []).reduce(1, *) }
            }
        }
        func bertLine(_ c: BertConfig) -> String {
            "BERT \(c.numHiddenLayers) × \(c.hiddenSize) (\(c.numAttentionHeads) heads, feed-forward \(c.intermediateSize), \(c.maxPositionEmbeddings) positions)"
        }
        let step: Int? = {
            guard let data = fm.contents(atPath: file("trainer_state.json")),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
            return (object["step"] as? NSNumber)?.intValue
        }()
        let recipeInit: String? = {
            guard let text = try? String(contentsOfFile: file("recipe.yaml"), encoding: .utf8) else { return nil }
            for line in text.split(separator: "\n") where line.hasPrefix("init:") {
                let value = line.dropFirst(5).trimmingCharacters(in: .whitespaces)
                return value.isEmpty ? nil : value.trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
            }
            return nil
        }()

        if CBTTrainer.isCheckpoint(folder) {
            let config = try JSON.decode(CBTConfig.self, from: file(CBTModel.configFileName))
            let text = try? BertConfig.load(from: (file(CBTModel.textFolderName) as NSString).appendingPathComponent(BertForPreTraining.configFileName))
            let front = config.frontEnd == "frames"
                ? "conv front-end \(config.conv.map { "\($0.channels) on \($0.framesPerClip) frames of \($0.frameSize)×\($0.frameSize)" } ?? "")"
                : "feature front-end \(config.projection.map { "\($0.inputSize) → \($0.outputSize)\($0.isMLP ? " (MLP \($0.hiddenSize))" : "")" } ?? "")"
            var summary = "CBT: \(front); visual transformer \(config.visualLayers) × \(config.visualHiddenSize), up to \(config.maxClips) clips; cross-modal \(config.crossLayers) × \(config.crossHiddenSize); pooled embeddings \(config.embeddingSize)"
            summary += text.map { "; text " + bertLine($0) + ", \($0.textVocabSize) WordPieces" } ?? "; no text/ folder"
            let parameters = try parameterCount([file(CBTModel.weightsFileName),
                                                 (file(CBTModel.textFolderName) as NSString).appendingPathComponent(BertForPreTraining.weightsFileName)])
            return CheckpointInfo(path: folder, kind: .cbt, summary: summary, step: step, parameters: parameters, initFrom: nil,
                                  readBy: ["retrieve (--cbt-scorer pooled|cross)", "finetune caption (init: this folder)", "embed (its text/ folder)"],
                                  files: files)
        }
        let config = try BertConfig.load(from: file(BertForPreTraining.configFileName))
        let weights = try parameterCount([file(BertForPreTraining.weightsFileName), file(ClipProjection.fileName)])
        if ClipFeatureInput.isPresent(in: folder) {
            let projection = try SafeTensors.read(file(ClipProjection.fileName)).shape(ClipProjection.weightName) ?? [0, 0]
            let cbtConfig = try? JSON.decode(CBTConfig.self, from: ((file(ClipFeatureInput.cbtFolderName) as NSString)
                .appendingPathComponent(CBTModel.configFileName)))
            var summary = "captioner fine-tuned from a CBT checkpoint: " + bertLine(config) + ", \(config.textVocabSize) WordPieces"
            summary += "; clip features \(projection.count == 2 ? projection[1] : 0) wide → \(projection.first ?? 0) by clip_projection"
            summary += cbtConfig.map { "; frozen CBT visual path in cbt/ (\($0.frontEnd) front-end, visual \($0.visualLayers) × \($0.visualHiddenSize))" }
                ?? "; cbt/ is missing: `videobert caption` cannot read it"
            return CheckpointInfo(path: folder, kind: .cbtCaptioner, summary: summary, step: step, parameters: weights, initFrom: recipeInit,
                                  readBy: ["caption"], files: files)
        }
        if config.visualWords > 0 {
            let captioner = recipeInit != nil
            let summary = (captioner ? "captioner fine-tuned from a VideoBERT checkpoint: " : "VideoBERT: ") + bertLine(config)
                + "; \(config.textVocabSize) WordPieces + \(config.visualWords) visual words"
            return CheckpointInfo(path: folder, kind: captioner ? .videobertCaptioner : .videobert, summary: summary, step: step,
                                  parameters: weights, initFrom: recipeInit,
                                  readBy: captioner ? ["caption", "zero-shot", "next-step", "retrieve", "embed"]
                                                    : ["zero-shot", "finetune caption (init: this folder)", "caption", "next-step", "retrieve", "embed",
                                                       "pretrain (model.init)"],
                                  files: files)
        }
        return CheckpointInfo(path: folder, kind: .bert, summary: "text-only " + bertLine(config) + ", \(config.vocabSize) WordPieces",
                              step: step, parameters: weights, initFrom: recipeInit, readBy: ["embed", "pretrain (model.init)"], files: files)
    }
}
