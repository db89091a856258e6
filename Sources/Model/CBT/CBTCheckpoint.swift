import Foundation
import Tensor

// Checkpoint I/O of the CBT model. A CBT checkpoint folder holds:
//
//   cbt_config.json     CBTConfig (front-end, visual, cross-modal and pooled sizes)
//   model.safetensors   F32, the CBT store: frontend.*, visual.*, cross.*, pooled.* (names in
//                       CBTModel.swift), metadata {"format": "videobert-cbt"}
//   text/               the text BERT as a Hugging Face BertForPreTraining folder (config.json,
//                       model.safetensors; the trainer adds vocab.txt), which
//                       `transformers.BertForPreTraining.from_pretrained(DIR/text)` loads.
//
// Loading checks that no tensor is missing or extra and that every shape matches.

extension CBTModel {
    public static let configFileName = Checkpoint.File.cbtConfig.rawValue
    public static let weightsFileName = Checkpoint.File.weights.rawValue
    public static let textFolderName = Checkpoint.File.cbtText.rawValue

    /// Writes the three parts into `folder` (each file atomically; the caller renames the folder).
    public func save(to folder: String) throws {
        try AtomicFile.createDirectory(folder)
        try JSON.write(config, to: (folder as NSString).appendingPathComponent(Self.configFileName))
        let store = store
        let tensors = store.slots.map { slot in
            (name: slot.name, shape: slot.shape, values: UnsafeBufferPointer(start: store.parameters + slot.offset, count: slot.count))
        }
        try SafeTensors.write(tensors, metadata: ["format": "videobert-cbt"],
                              to: (folder as NSString).appendingPathComponent(Self.weightsFileName))
        try textModel?.save(to: (folder as NSString).appendingPathComponent(Self.textFolderName))
    }

    /// Loads the weights of a CBT checkpoint folder written by `save` into this model (same architecture).
    public func loadWeights(from folder: String) throws {
        let configPath = (folder as NSString).appendingPathComponent(Self.configFileName)
        let theirs = try JSON.decode(CBTConfig.self, from: configPath)
        var mine = config, other = theirs
        // Dropout does not change the parameters.
        (mine.hiddenDropoutProb, mine.attentionProbsDropoutProb) = (0, 0)
        (other.hiddenDropoutProb, other.attentionProbsDropoutProb) = (0, 0)
        guard mine == other else { throw VideoBertError("describes a different CBT architecture than the model's", file: configPath) }
        let weightsPath = (folder as NSString).appendingPathComponent(Self.weightsFileName)
        let file = try SafeTensors.read(weightsPath)
        let names = Set(store.slots.map(\.name))
        let unexpected = file.names.filter { !names.contains($0) }.sorted()
        guard unexpected.isEmpty else { throw VideoBertError("unexpected tensors: \(unexpected.prefix(12).joined(separator: ", "))", file: weightsPath) }
        let missing = store.slots.map(\.name).filter { !file.names.contains($0) }
        guard missing.isEmpty else { throw VideoBertError("missing tensors: \(missing.prefix(12).joined(separator: ", "))", file: weightsPath) }
        for slot in store.slots {
            guard file.shape(slot.name) == slot.shape else {
                throw VideoBertError("shape mismatch: \(slot.name) \(file.shape(slot.name) ?? []) (model \(slot.shape))", file: weightsPath)
            }
            let values = try file.floats(slot.name)
            values.withUnsafeBufferPointer { (store.parameters + slot.offset).update(from: $0.baseAddress!, count: slot.count) }
        }
        guard let textModel else { return }   // visual-only: text/ is not read (and may be absent)
        let report = try textModel.loadPretrained(from: (folder as NSString).appendingPathComponent(Self.textFolderName))
        guard report.initialized.isEmpty, !report.extendedVocabulary else {
            throw VideoBertError("the text BERT lacks tensors: \(report.initialized.joined(separator: ", "))", file: folder)
        }
    }

    /// A visual-only model (front-end and visual transformer; see `visualStates`) from a CBT
    /// checkpoint folder's cbt_config.json and model.safetensors (text/ is not needed), for
    /// batches of up to `maxBatch` clip sequences.
    /// With `training`, gradients exist and `visualStates(…dropout:…)` / `visualStatesBackward`
    /// train the front-end and visual transformer.
    public static func loadVisual(from folder: String, maxBatch: Int, training: Bool = false) throws -> CBTModel {
        let config = try Checkpoint.loadCBTConfig((folder as NSString).appendingPathComponent(configFileName))
        let model = try CBTModel(config: config, textConfig: nil, maxBatch: maxBatch, maxTextLength: 1, maxNCECandidates: 1,
                                 maxCrossCandidates: 1, training: training)
        try model.loadWeights(from: folder)
        return model
    }

    /// Builds a model from a CBT checkpoint folder.
    public static func load(from folder: String, maxBatch: Int, maxTextLength: Int, maxNCECandidates: Int, maxCrossCandidates: Int,
                            training: Bool = false) throws -> CBTModel {
        let config = try Checkpoint.loadCBTConfig((folder as NSString).appendingPathComponent(configFileName))
        let textConfig = try Checkpoint.loadBertConfig(((folder as NSString).appendingPathComponent(textFolderName) as NSString)
            .appendingPathComponent(BertForPreTraining.configFileName))
        let model = try CBTModel(config: config, textConfig: textConfig, maxBatch: maxBatch, maxTextLength: maxTextLength,
                                 maxNCECandidates: maxNCECandidates, maxCrossCandidates: maxCrossCandidates, training: training)
        try model.loadWeights(from: folder)
        return model
    }
}
