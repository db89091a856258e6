import Foundation
import Tensor

// Checkpoint I/O for BertForPreTraining, in Hugging Face's format (docs/ARCHITECTURE.md §3):
//
//   config.json        BertConfig fields + videobert_text_vocab_size / videobert_visual_words
//   model.safetensors  F32, BertForPreTraining names
//
// What transformers 5.23's `save_pretrained` writes for BertForPreTraining, and so what we write:
// every parameter EXCEPT the two tied ones, `cls.predictions.decoder.weight` (= the word
// embeddings) and `cls.predictions.decoder.bias` (= `cls.predictions.bias`); both are listed in
// `_tied_weights_keys`, and `from_pretrained` re-ties them without a missing-key warning
// (checked by tools/fixtures/hf_interop.py on a checkpoint written here). Metadata {"format": "pt"}.
//
// Reading accepts any HF BERT folder: BertForPreTraining / BertForMaskedLM names (`bert.…`,
// `cls.…`), or a bare BertModel's names without the `bert.` prefix (e.g. sentence-transformers'
// MiniLM). Heads a checkpoint lacks (`cls.*`, `bert.pooler.*`) are initialised fresh and
// reported; any other missing tensor, any unexpected tensor and any shape mismatch is an error
// naming the file and the keys. Ignored: `embeddings.position_ids` (a buffer), the tied
// decoder weight, and the decoder bias when `cls.predictions.bias` is present (older checkpoints
// store both). Legacy TF-converted LayerNorm names `gamma`/`beta` are read as `weight`/`bias`.
// Files that are not safetensors (pytorch_model.bin) are not read: the error says so.

/// What loading a checkpoint did.
public struct CheckpointLoadReport: Sendable, Equatable, CustomStringConvertible {
    /// The weights file read.
    public var file: String
    /// Our tensors filled from the file.
    public var loaded: [String] = []
    /// Our tensors the file lacks (heads only), initialised as `initializeWeights` does.
    public var initialized: [String] = []
    /// Keys of the file that were skipped on purpose (position_ids, tied decoder).
    public var ignored: [String] = []
    /// True when a text-only checkpoint was loaded into a joint vocabulary: its Ttext rows of the
    /// word embeddings and `cls.predictions.bias` copied, the visual-word rows initialised
    /// (normal(0, initializer_range)) and their bias set to 0.
    public var extendedVocabulary = false

    public var description: String {
        var parts = ["\(loaded.count) tensors loaded from \(file)"]
        if !initialized.isEmpty { parts.append("newly initialised: \(initialized.joined(separator: ", "))") }
        if extendedVocabulary { parts.append("visual-word rows of the word embeddings and cls.predictions.bias newly initialised") }
        if !ignored.isEmpty { parts.append("ignored: \(ignored.joined(separator: ", "))") }
        return parts.joined(separator: "; ")
    }
}

extension BertForPreTraining {
    public static let configFileName = Checkpoint.File.config.rawValue
    public static let weightsFileName = Checkpoint.File.weights.rawValue

    // MARK: Save

    /// Writes `config.json` and `model.safetensors` into `folder` (created if needed), each file
    /// atomically. Checkpoint folders as a whole (with vocab.txt, the visual vocabulary, the
    /// recipe and trainer state) are written to a temporary folder and renamed by the caller.
    public func save(to folder: String) throws {
        try AtomicFile.createDirectory(folder)
        try config.write(to: (folder as NSString).appendingPathComponent(Self.configFileName))
        let store = store
        let tensors = store.slots.map { slot in
            (name: slot.name, shape: slot.shape, values: UnsafeBufferPointer(start: store.parameters + slot.offset, count: slot.count))
        }
        try SafeTensors.write(tensors, metadata: ["format": "pt"], to: (folder as NSString).appendingPathComponent(Self.weightsFileName))
    }

    // MARK: Load

    /// Builds a model from a checkpoint folder (ours or any HF BERT), its architecture from the
    /// folder's config.json. Heads the checkpoint lacks are initialised with `seed` and listed in
    /// `loadReport`.
    /// - Parameters:
    ///   - maxBatch, maxSeq: the arena's shape (maxSeq ≤ max_position_embeddings).
    ///   - training: allocate gradients and optimizer state.
    public static func load(from folder: String, maxBatch: Int, maxSeq: Int, training: Bool = false,
                            seed: UInt64 = 0) throws -> BertForPreTraining {
        let configPath = (folder as NSString).appendingPathComponent(configFileName)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw VideoBertError("no such checkpoint folder", file: folder)
        }
        let config = try Checkpoint.loadBertConfig(configPath)
        guard maxSeq <= config.maxPositionEmbeddings else {
            throw VideoBertError("sequence length \(maxSeq) exceeds max_position_embeddings \(config.maxPositionEmbeddings)", file: configPath)
        }
        let model = try BertForPreTraining(config: config, maxBatch: maxBatch, maxSeq: maxSeq, training: training)
        try model.loadPretrained(from: folder, seed: seed)
        return model
    }

    /// Loads the weights of a checkpoint folder into this model (see the file comment for what
    /// is accepted). The folder's architecture must equal ours, except that a text-only BERT whose
    /// vocab_size equals our text vocabulary loads into our joint vocabulary (VideoBERT initialised
    /// from a pretrained BERT; `extendedVocabulary` in the report).
    @discardableResult
    public func loadPretrained(from folder: String, seed: UInt64 = 0) throws -> CheckpointLoadReport {
        let configPath = (folder as NSString).appendingPathComponent(Self.configFileName)
        let weightsPath = (folder as NSString).appendingPathComponent(Self.weightsFileName)
        let theirs = try BertConfig.load(from: configPath)
        // A text BERT (2 token types) into a model with audio (3): its two rows are copied, the
        // audio row is initialised (see `initializeVisualRows`).
        let extendingTypes = theirs.vocabSize == config.textVocabSize && config.audioWords > 0
            && theirs.typeVocabSize == 2 && config.typeVocabSize == 3
        for (key, mine, other) in [("hidden_size", config.hiddenSize, theirs.hiddenSize),
                                   ("num_hidden_layers", config.numHiddenLayers, theirs.numHiddenLayers),
                                   ("num_attention_heads", config.numAttentionHeads, theirs.numAttentionHeads),
                                   ("intermediate_size", config.intermediateSize, theirs.intermediateSize),
                                   ("max_position_embeddings", config.maxPositionEmbeddings, theirs.maxPositionEmbeddings),
                                   ("type_vocab_size", config.typeVocabSize, extendingTypes ? 3 : theirs.typeVocabSize)] where mine != other {
            throw VideoBertError("\(key) is \(other), the model has \(mine)", file: configPath)
        }
        let extending: Bool
        if theirs.vocabSize == config.vocabSize {
            extending = false
        } else if theirs.vocabSize == config.textVocabSize && config.visualWords + config.audioWords > 0 {
            extending = true
        } else {
            throw VideoBertError("vocab_size is \(theirs.vocabSize), the model has \(config.vocabSize) "
                                 + "(\(config.textVocabSize) text + \(config.visualWords) visual words"
                                 + (config.audioWords > 0 ? " + \(config.audioWords) audio words)" : ")"), file: configPath)
        }
        guard FileManager.default.fileExists(atPath: weightsPath) else {
            let bin = (folder as NSString).appendingPathComponent("pytorch_model.bin")
            let hint = FileManager.default.fileExists(atPath: bin)
                ? " (pytorch_model.bin is not read: convert it with transformers' save_pretrained(..., safe_serialization=True))" : ""
            throw VideoBertError("no \(Self.weightsFileName)\(hint)", file: folder)
        }
        let file = try SafeTensors.read(weightsPath)
        let wordName = "bert.embeddings.word_embeddings.weight", biasName = "cls.predictions.bias"
        let prefixed = file.names.contains { $0.hasPrefix("bert.") }
        var report = CheckpointLoadReport(file: weightsPath)
        report.extendedVocabulary = extending
        var loaded = Set<String>()
        var unexpected: [String] = [], mismatched: [String] = []
        var decoderBiasKey: String?

        func copy(_ key: String, into name: String) throws {
            let slot = store.slot(name)
            var expected = slot.shape
            if extending && (name == wordName || name == biasName) { expected[0] = config.textVocabSize }
            if extendingTypes && name == "bert.embeddings.token_type_embeddings.weight" { expected[0] = 2 }
            let shape = file.shape(key) ?? []
            guard shape == expected else {
                mismatched.append("\(key) \(shape) (model \(expected))")
                return
            }
            let values = try file.floats(key)
            values.withUnsafeBufferPointer { (store.parameters + slot.offset).update(from: $0.baseAddress!, count: values.count) }
            loaded.insert(name)
        }

        for key in file.names {
            var name = key
            if !prefixed && !name.hasPrefix("cls.") { name = "bert." + name }
            if name.contains("LayerNorm.") {
                if name.hasSuffix(".gamma") { name = String(name.dropLast(6)) + ".weight" }
                if name.hasSuffix(".beta") { name = String(name.dropLast(5)) + ".bias" }
            }
            switch name {
            case "bert.embeddings.position_ids":
                report.ignored.append(key)
            case "cls.predictions.decoder.weight":
                // Tied to the word embeddings: the copy in the file must at least have their shape.
                let shape = file.shape(key) ?? []
                if shape != [theirs.vocabSize, config.hiddenSize] { mismatched.append("\(key) \(shape) (model \([theirs.vocabSize, config.hiddenSize]))") }
                report.ignored.append(key)
            case "cls.predictions.decoder.bias":
                decoderBiasKey = key
            default:
                if store.slot(named: name) != nil { try copy(key, into: name) } else { unexpected.append(key) }
            }
        }
        if let key = decoderBiasKey {
            if loaded.contains(biasName) { report.ignored.append(key) } else { try copy(key, into: biasName) }
        }
        func list(_ keys: [String]) -> String {
            keys.count <= 12 ? keys.joined(separator: ", ") : keys.prefix(12).joined(separator: ", ") + ", … (\(keys.count) in all)"
        }
        guard unexpected.isEmpty else { throw VideoBertError("unexpected tensors: \(list(unexpected))", file: weightsPath) }
        guard mismatched.isEmpty else { throw VideoBertError("shape mismatch: \(list(mismatched))", file: weightsPath) }
        let missing = store.slots.map(\.name).filter { !loaded.contains($0) }
        let heads = missing.filter { $0.hasPrefix("cls.") || $0.hasPrefix("bert.pooler.") }
        let absent = missing.filter { !($0.hasPrefix("cls.") || $0.hasPrefix("bert.pooler.")) }
        guard absent.isEmpty else { throw VideoBertError("missing tensors: \(list(absent))", file: weightsPath) }
        initialize(heads, seed: seed)
        if extending { initializeVisualRows(seed: seed) }
        if extendingTypes {
            // The audio token type's row: normal(0, initializer_range), a stream of its own.
            let row = store.parameters + store.offset(of: "bert.embeddings.token_type_embeddings.weight") + 2 * config.hiddenSize
            var rng = SeededRNG(seed: seed, stream: UInt64(store.slots.count) + 1)
            for c in 0..<config.hiddenSize { row[c] = rng.nextGaussian() * Float(config.initializerRange) }
        }
        report.loaded = store.slots.map(\.name).filter { loaded.contains($0) }
        report.initialized = heads
        loadReport = report
        return report
    }

    /// Visual-word (and audio-word) rows [Ttext, V) of the word embeddings: normal(0,
    /// initializer_range) from SeededRNG(seed, stream: parameter count); their
    /// `cls.predictions.bias` entries 0.
    func initializeVisualRows(seed: UInt64) {
        let (C, Tt, Vv) = (config.hiddenSize, config.textVocabSize, config.visualWords + config.audioWords)
        let word = store.parameters + store.offset(of: "bert.embeddings.word_embeddings.weight")
        var rng = SeededRNG(seed: seed, stream: UInt64(store.slots.count))
        let std = Float(config.initializerRange)
        for i in (Tt * C)..<((Tt + Vv) * C) { word[i] = rng.nextGaussian() * std }
        (store.parameters + store.offset(of: "cls.predictions.bias") + Tt).update(repeating: 0, count: Vv)
    }

    // MARK: Visual words from k-means centroids

    /// Visual-word embeddings from the visual vocabulary's centroids (VideoBERT §3.2 uses the
    /// k-means centroids as the visual words; this carries their geometry into the embedding):
    ///
    ///     E[Ttext + i] = s · (centroid_i − mean centroid) · R,   R [dim, C] ~ N(0, 1)
    ///
    /// - Centering removes the component every centroid shares (clip features such as S3D are
    ///   non-negative, so raw centroids point nearly the same way), keeping only what tells visual
    ///   words apart.
    /// - A fixed Gaussian projection R (seeded) preserves distances up to a common factor
    ///   (Johnson–Lindenstrauss), so clips that look alike start as nearby embeddings, whatever dim.
    /// - One global scale s makes the mean row norm equal to the mean norm of the text rows
    ///   [0, Ttext) (pad row excluded): neither modality dominates the sum with position and segment
    ///   embeddings, and a pretrained text embedding keeps its scale.
    /// The visual part of `cls.predictions.bias` is left as is (zero after initialisation).
    /// - Parameters:
    ///   - centroids: [Vvis, dim] row-major, in visual-word order.
    public func initVisualEmbeddings(fromCentroids centroids: [Float], dim: Int, seed: UInt64) throws {
        let (C, Tt, Vv) = (config.hiddenSize, config.textVocabSize, config.visualWords)
        guard Vv > 0 else { throw VideoBertError("the model has no visual words") }
        guard dim > 0, centroids.count == Vv * dim else {
            throw VideoBertError("expected \(Vv) centroids of dimension \(dim) (\(Vv * dim) values), got \(centroids.count) values")
        }
        var centered = centroids
        var mean = [Double](repeating: 0, count: dim)
        for i in 0..<Vv { for d in 0..<dim { mean[d] += Double(centroids[i * dim + d]) } }
        for i in 0..<Vv { for d in 0..<dim { centered[i * dim + d] -= Float(mean[d] / Double(Vv)) } }
        var rng = SeededRNG(seed: seed)
        let projection = (0..<(dim * C)).map { _ in rng.nextGaussian() }
        var projected = [Float](repeating: 0, count: Vv * C)
        projected.withUnsafeMutableBufferPointer { out in
            BLAS.sgemm(m: Vv, n: C, k: dim, a: centered, b: projection, c: out.baseAddress!)
        }
        let word = store.parameters + store.offset(of: "bert.embeddings.word_embeddings.weight")
        var textNorm: Double = 0, textRows = 0
        for r in 0..<Tt where r != config.padTokenId {
            textNorm += Double(vectorDot(word + r * C, word + r * C, C)).squareRoot()
            textRows += 1
        }
        textNorm /= Double(max(textRows, 1))
        var visualNorm: Double = 0
        projected.withUnsafeBufferPointer { q in
            for i in 0..<Vv { visualNorm += Double(vectorDot(q.baseAddress! + i * C, q.baseAddress! + i * C, C)).squareRoot() }
        }
        visualNorm /= Double(Vv)
        guard visualNorm > 0 else { throw VideoBertError("all \(Vv) centroids are equal: nothing to project") }
        guard textNorm > 0 else { throw VideoBertError("the text embeddings are zero: initialise or load them first") }
        let scale = Float(textNorm / visualNorm)
        for i in 0..<(Vv * C) { word[Tt * C + i] = projected[i] * scale }
    }
}
