import Foundation
import Tensor

// Checkpoint I/O of the fusion model (docs/ARCHITECTURE.md §3, §5). A fusion checkpoint folder holds:
//
//   fusion_config.json  FusionConfig (input widths, token counts, fusion transformer, audio source)
//   model.safetensors   F32, the fusion store: token.*, fusion.encoder.*, audio.*, proj.* (names in
//                       FusionModel.swift), metadata {"format": "videobert-fusion"}
//   text/               the text BERT as a Hugging Face BertForPreTraining folder (the trainer
//                       writes it and its vocab.txt), as in a CBT folder
//
// Loading checks that no tensor is missing or extra and that every shape matches.

extension FusionModel {
    /// Writes fusion_config.json and model.safetensors into `folder` (each atomically).
    public func save(to folder: String) throws {
        try AtomicFile.createDirectory(folder)
        try JSON.write(config, to: (folder as NSString).appendingPathComponent(Checkpoint.File.fusionConfig.rawValue))
        let store = store
        let tensors = store.slots.map { slot in
            (name: slot.name, shape: slot.shape, values: UnsafeBufferPointer(start: store.parameters + slot.offset, count: slot.count))
        }
        try SafeTensors.write(tensors, metadata: ["format": "videobert-fusion"],
                              to: (folder as NSString).appendingPathComponent(Checkpoint.File.weights.rawValue))
    }

    /// Loads the weights of a folder written by `save` into this model (the same architecture).
    public func loadWeights(from folder: String) throws {
        let configPath = (folder as NSString).appendingPathComponent(Checkpoint.File.fusionConfig.rawValue)
        var theirs = try Checkpoint.loadFusionConfig(configPath), mine = config
        // Dropout does not change the parameters.
        (mine.hiddenDropoutProb, mine.attentionProbsDropoutProb) = (0, 0)
        (theirs.hiddenDropoutProb, theirs.attentionProbsDropoutProb) = (0, 0)
        guard mine == theirs else { throw VideoBertError("describes a different fusion architecture than the model's", file: configPath) }
        let weightsPath = (folder as NSString).appendingPathComponent(Checkpoint.File.weights.rawValue)
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
    }

    /// An inference model (all six runs) from a fusion folder.
    public static func load(from folder: String, config: FusionConfig, maxBatch: Int) throws -> FusionModel {
        let model = try FusionModel(config: config, maxBatch: maxBatch, training: false)
        try model.loadWeights(from: folder)
        return model
    }
}
