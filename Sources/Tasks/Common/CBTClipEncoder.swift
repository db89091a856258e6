import Foundation
import Model
import Recipe
import Tensor
import Tokenize

/// Contextual clip features from a CBT checkpoint for downstream tasks: the clips of a time
/// span go through the checkpoint's front-end and visual transformer (inference, nothing
/// masked, no text), and each clip's final hidden state (D wide) is its feature — the
/// representation CBT pretrains (Sun et al. 2019, CBT §4: downstream models read the visual
/// transformer's outputs).
///
/// Reads from a CBT checkpoint folder (or the `cbt/` copy inside a captioner fine-tuned from
/// one): cbt_config.json and model.safetensors (the text BERT in text/ is not needed), and
/// recipe.yaml for how the front-end's input was prepared (frontend.source and
/// frontend.center). The corpus must store what the front-end reads (clip_frames.npy of the
/// same size and frames per clip, or clip_features.npy of the same width).
public final class CBTClipEncoder {
    /// The files `copyFiles(to:)` writes and `init` reads.
    public static let files = [Checkpoint.File.cbtConfig, .weights, .recipe].map(\.rawValue)

    public let folder: String
    let model: CBTModel
    let inputs: ClipInputs
    /// D: the width of a feature.
    public var featureSize: Int { model.config.visualHiddenSize }
    /// Clips per sequence at most (the visual transformer's positions); longer spans are cut.
    public var maxClips: Int { model.config.maxClips }

    /// - Parameters:
    ///   - checkpoint: a CBT checkpoint folder.
    ///   - corpus: the tokenized corpus whose clips are encoded.
    ///   - maxBatch: clip sequences per forward pass.
    ///   - training: gradients exist, so `trainingForward` / `backward` can tune the visual path.
    public init(checkpoint: String, corpus: TokenizedCorpus, maxBatch: Int = 16, training: Bool = false) throws {
        folder = checkpoint
        model = try CBTModel.loadVisual(from: checkpoint, maxBatch: maxBatch, training: training)
        inputs = try Self.inputs(checkpoint: checkpoint, config: model.config, corpus: corpus)
    }

    /// The stored clip input a CBT checkpoint's front-end reads from `corpus`, prepared as in
    /// its training (the recipe's frontend.center), checked against the checkpoint's config.
    public static func inputs(checkpoint: String, config: CBTConfig, corpus: TokenizedCorpus) throws -> ClipInputs {
        let recipePath = (checkpoint as NSString).appendingPathComponent(Checkpoint.File.recipe.rawValue)
        guard FileManager.default.fileExists(atPath: recipePath) else {
            throw VideoBertError("has no recipe.yaml: not a CBT checkpoint written by `videobert pretrain`", file: checkpoint)
        }
        let center = try RecipeLoader.string(at: "frontend.center", file: recipePath) == "video"
        let inputs = try ClipInputs.load(corpus: corpus, source: config.frontEnd, centerFrames: center)
        switch inputs {
        case .frames(_, let F, let S):
            guard let c = config.conv, F == c.framesPerClip, S == c.frameSize else {
                throw VideoBertError("stores \(F) frames of \(S)×\(S) per clip; the CBT checkpoint \(checkpoint) was trained on \(config.conv.map { "\($0.framesPerClip) of \($0.frameSize)×\($0.frameSize)" } ?? "clip features") (tokenize with the same store.frame_size and frames per clip)", file: corpus.path)
            }
        case .features(_, let dim):
            guard let expected = config.projection?.inputSize, dim == expected else {
                throw VideoBertError("stores clip features of \(dim) values; the CBT checkpoint \(checkpoint) reads \(config.projection.map { "\($0.inputSize)" } ?? "frames")", file: corpus.path)
            }
        }
        return inputs
    }

    /// B ≤ maxBatch sequences as one batch: clip rows [B·Tv] (−1 padding) and the clips in order.
    private func layout(_ sequences: [[Int]]) -> (Tv: Int, clipRows: [Int32], clips: [Int]) {
        let Tv = max(1, sequences.map(\.count).max() ?? 1)
        var clipRows = [Int32](repeating: -1, count: sequences.count * Tv), clips: [Int] = []
        for (b, s) in sequences.enumerated() {
            for (t, c) in s.enumerated() { clipRows[b * Tv + t] = Int32(clips.count); clips.append(c) }
        }
        return (Tv, clipRows, clips)
    }

    // MARK: Tuning the visual path

    /// The trained parameters (front-end and visual transformer; the rest of the CBT store —
    /// NCE head, mask embedding, cross-modal and pooled parts — is frozen: nothing reads it).
    public var store: ParameterStore { model.store }

    /// Marks every tensor but the front-end's and the visual transformer's frozen.
    public func freezeUnused() {
        for (i, slot) in model.store.slots.enumerated() {
            let used = slot.name.hasPrefix("frontend.") || (slot.name.hasPrefix("visual.") && !slot.name.contains("nce_head")
                                                             && !slot.name.contains("mask_embedding"))
            model.store.frozen[i] = !used
        }
    }

    /// What `backward` needs: each sequence's length and the batch's Tv.
    private var kept: (counts: [Int], Tv: Int)?

    /// Training twin of `encode` for B ≤ maxBatch sequences (each non-empty, cut to maxClips) in
    /// one pass, with the CBT's dropout when `dropout`; `backward` then takes their gradients.
    public func trainingForward(_ sequences: [[Int]], dropout: Bool, dropoutSeed: UInt64, step: Int) -> [[Float]] {
        precondition(!sequences.isEmpty && sequences.count <= model.maxBatch && sequences.allSatisfy { !$0.isEmpty },
                     "1...\(model.maxBatch) non-empty clip sequences")
        let cut = sequences.map { Array($0.prefix(maxClips)) }
        let (Tv, clipRows, clips) = layout(cut)
        let (frames, features) = inputs.rows(clips)
        let D = featureSize
        let states = model.visualStates(B: cut.count, Tv: Tv, clipRows: clipRows, clips: clips.count, frames: frames, features: features,
                                        dropout: dropout, dropoutSeed: dropoutSeed, step: step)
        kept = model.training ? (cut.map(\.count), Tv) : nil
        return cut.indices.map { b in Array(states[(b * Tv * D)..<((b * Tv + cut[b].count) * D)]) }
    }

    /// Accumulates the front-end's and visual transformer's gradients from d(features) of the
    /// last `trainingForward` (same shapes).
    public func backward(_ dFeatures: [[Float]]) {
        guard let k = kept else { preconditionFailure("backward needs a preceding trainingForward of a training encoder") }
        kept = nil
        let D = featureSize
        precondition(dFeatures.count == k.counts.count, "one gradient per sequence")
        var d = [Float](repeating: 0, count: k.counts.count * k.Tv * D)
        for (b, g) in dFeatures.enumerated() {
            precondition(g.count == k.counts[b] * D, "sequence \(b): expected \(k.counts[b]) × \(D) values")
            d.replaceSubrange((b * k.Tv * D)..<((b * k.Tv * D) + g.count), with: g)
        }
        model.visualStatesBackward(d)
    }

    /// Writes the (tuned) CBT weights and config, and the checkpoint's recipe.yaml, into `folder`.
    public func save(to folder: String) throws {
        try model.save(to: folder)
        let name = Checkpoint.File.recipe.rawValue
        let recipe = try Data(contentsOf: URL(fileURLWithPath: (self.folder as NSString).appendingPathComponent(name)))
        try AtomicFile.write(recipe, to: (folder as NSString).appendingPathComponent(name))
    }

    /// Loads the CBT weights saved in `folder` (by `save`) into the encoder.
    public func loadWeights(from folder: String) throws { try model.loadWeights(from: folder) }

    /// The features of each sequence of clips (global clip indices of the corpus, in time order;
    /// each cut to its first `maxClips`): [count, D] row-major per sequence (empty for an empty
    /// sequence). Sequences are encoded `maxBatch` at a time, each on its own (padding masked).
    public func encode(_ sequences: [[Int]], progress: ProgressReporter? = nil) -> [[Float]] {
        let D = featureSize
        var out = [[Float]](repeating: [], count: sequences.count)
        let live = sequences.indices.filter { !sequences[$0].isEmpty }
        var start = 0
        while start < live.count {
            let chunk = Array(live[start..<min(live.count, start + model.maxBatch)])
            let cut = chunk.map { Array(sequences[$0].prefix(maxClips)) }
            let B = chunk.count
            let (Tv, clipRows, clips) = layout(cut)
            let (frames, features) = inputs.rows(clips)
            let states = model.visualStates(B: B, Tv: Tv, clipRows: clipRows, clips: clips.count, frames: frames, features: features)
            for (b, s) in chunk.enumerated() {
                out[s] = Array(states[(b * Tv * D)..<((b * Tv + cut[b].count) * D)])
            }
            progress?.advance(B)
            start += B
        }
        return out
    }

    /// Copies the files the encoder reads into `folder` (created), so a model that depends on
    /// these features carries them.
    public func copyFiles(to folder: String) throws {
        try AtomicFile.createDirectory(folder)
        for name in Self.files {
            let data = try Data(contentsOf: URL(fileURLWithPath: (self.folder as NSString).appendingPathComponent(name)))
            try AtomicFile.write(data, to: (folder as NSString).appendingPathComponent(name))
        }
    }
}
