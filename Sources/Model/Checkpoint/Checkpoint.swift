import Foundation
import Tensor

/// A checkpoint folder, opened: what kind of model it holds, its configs (bounded before anything
/// is allocated from them), and where each of its files is. The one place that knows what a
/// checkpoint folder holds: every command and task opens checkpoints through `Checkpoint(folder:)`,
/// and `videobert inspect` prints `info()`.
///
/// The kinds and how they are told apart (first match):
///
///   cbt                 cbt_config.json (the CBT store) + text/ (its text BERT, a Hugging Face folder)
///   fusion              fusion_config.json (the fusion model) + text/ (its text BERT)
///   cbt-forecaster      a cbt-captioner whose recipe.yaml says `target: next-step`
///   cbt-captioner       config.json + clip_projection.safetensors + cbt/ (the frozen CBT visual path)
///   videobert-forecaster a videobert-captioner whose recipe.yaml says `target: next-step`
///   videobert-captioner config.json with visual words + recipe.yaml with `init:` (fine-tuned from one)
///   videobert           config.json with visual words (videobert_visual_words > 0)
///   bert                config.json without visual words (a Hugging Face BERT, e.g. a CBT's text/)
///
/// Adding a model kind: a case in `Kind` (with its test in `init`, its summary and the commands
/// that read it), and the model's own file for its weights.
public struct Checkpoint: Sendable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// `videobert pretrain` (VideoBERT): a joint BERT over WordPieces and visual words.
        case videobert
        /// `videobert finetune caption` from a VideoBERT checkpoint (visual words in).
        case videobertCaptioner = "videobert-captioner"
        /// `videobert finetune next-step` from a VideoBERT checkpoint: generates the next step's sentence.
        case videobertForecaster = "videobert-forecaster"
        /// `videobert pretrain` with `variant: cbt`.
        case cbt
        /// `videobert finetune caption` from a CBT checkpoint (clip features in).
        case cbtCaptioner = "cbt-captioner"
        /// `videobert finetune next-step` from a CBT checkpoint (clip features in).
        case cbtForecaster = "cbt-forecaster"
        /// A text-only BERT (e.g. a CBT checkpoint's text/ folder or a Hugging Face BERT).
        case bert
        /// `videobert pretrain` with `variant: fusion` (Everything at Once: text, video, audio).
        case fusion

        /// A model fine-tuned to generate the next step's sentence (`videobert finetune next-step`).
        public var isForecaster: Bool { self == .videobertForecaster || self == .cbtForecaster }
        /// A fine-tuned BERT that reads CBT clip features through clip_projection (and cbt/).
        public var readsClipFeatures: Bool { self == .cbtCaptioner || self == .cbtForecaster }

        /// The commands that read this kind.
        public var readBy: [String] {
            switch self {
            case .videobert:
                ["zero-shot", "finetune caption (init: this folder)", "caption", "next-step", "retrieve", "embed", "pretrain (model.init)"]
            case .videobertCaptioner: ["caption", "zero-shot", "next-step", "retrieve", "embed"]
            case .cbt: ["retrieve (--cbt-scorer pooled|cross)", "finetune caption (init: this folder)", "embed (its text/ folder)"]
            case .cbtCaptioner: ["caption"]
            case .videobertForecaster, .cbtForecaster: ["next-step (--annotations, or VIDEO)", "caption --corpus (generates next steps)"]
            case .bert: ["embed", "pretrain (model.init)"]
            case .fusion: ["retrieve (text → video, video+audio, audio)"]
            }
        }
    }

    /// The one table of the names of checkpoint files and folders.
    public enum File: String, Sendable, CaseIterable {
        /// BertConfig (Hugging Face names + videobert_text_vocab_size / videobert_visual_words).
        case config = "config.json"
        /// The weights of the folder's model (BERT, or the CBT store in a CBT folder).
        case weights = "model.safetensors"
        /// The BERT WordPiece vocabulary the text ids index.
        case textVocab = "vocab.txt"
        /// A copy of the corpus' visual vocabulary (hierarchical k-means centroids).
        case visualVocab = "visual_vocab"
        /// The resolved recipe of the run that wrote it.
        case recipe = "recipe.yaml"
        /// Step, optimizer step, sampler state (`TrainingLoop`).
        case trainerState = "trainer_state.json"
        /// AdamW moments.
        case optimizer = "optimizer.safetensors"
        /// CBTConfig of a CBT folder.
        case cbtConfig = "cbt_config.json"
        /// A CBT folder's text BERT (a Hugging Face BERT folder with its vocab.txt).
        case cbtText = "text"
        /// A CBT captioner's copy of the CBT visual path (cbt_config.json, model.safetensors, recipe.yaml).
        case captionerCBT = "cbt"
        /// A CBT captioner's projection of clip features into the BERT's embeddings (ClipProjection).
        case clipProjection = "clip_projection.safetensors"
        /// FusionConfig of a fusion folder (its text BERT is in text/, as a CBT folder's).
        case fusionConfig = "fusion_config.json"
        /// A forecaster's verb/noun anticipation head (AnticipationHead; absent in forecasters
        /// trained before it existed).
        case anticipation = "anticipation.safetensors"
    }

    public let folder: String
    public let kind: Kind
    /// The BERT's config: the folder's config.json, or a CBT folder's text/config.json (nil when
    /// a CBT folder has no text/).
    public let bert: BertConfig?
    /// The CBT's config: a CBT folder's cbt_config.json, or a CBT captioner's cbt/cbt_config.json
    /// (nil when its cbt/ is missing).
    public let cbt: CBTConfig?
    /// A fusion folder's fusion_config.json (nil for the other kinds).
    public let fusion: FusionConfig?

    /// `name` inside the folder.
    public func path(_ file: File) -> String { (folder as NSString).appendingPathComponent(file.rawValue) }
    public func exists(_ file: File) -> Bool { FileManager.default.fileExists(atPath: path(file)) }

    /// The folder holding the BERT (config.json, model.safetensors, vocab.txt): a CBT's text/, or the folder itself.
    public var bertFolder: String { kind == .cbt || kind == .fusion ? path(.cbtText) : folder }
    /// The folder holding the CBT visual path (cbt_config.json, model.safetensors, recipe.yaml):
    /// a CBT folder itself or a CBT captioner's cbt/; nil for the other kinds.
    public var cbtFolder: String? {
        switch kind {
        case .cbt: folder
        case .cbtCaptioner, .cbtForecaster: path(.captionerCBT)
        default: nil
        }
    }

    /// Whether `folder` holds a checkpoint of any kind (config.json or cbt_config.json).
    public static func isCheckpoint(_ folder: String) -> Bool {
        let fm = FileManager.default
        return fm.fileExists(atPath: (folder as NSString).appendingPathComponent(File.config.rawValue))
            || fm.fileExists(atPath: (folder as NSString).appendingPathComponent(File.cbtConfig.rawValue))
            || fm.fileExists(atPath: (folder as NSString).appendingPathComponent(File.fusionConfig.rawValue))
    }

    /// Opens `folder`: its kind and configs, each checked (`BertConfig.validate`, `CBTConfig.validate`)
    /// and bounded (`Checkpoint.bound`) so that nothing built from them allocates without limit.
    public init(folder: String) throws {
        self.folder = folder
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw VideoBertError("no such checkpoint folder", file: folder)
        }
        func join(_ a: String, _ b: File) -> String { (a as NSString).appendingPathComponent(b.rawValue) }
        let fm = FileManager.default
        if fm.fileExists(atPath: join(folder, .fusionConfig)) {
            kind = .fusion
            fusion = try Self.loadFusionConfig(join(folder, .fusionConfig))
            cbt = nil
            let text = join(join(folder, .cbtText), .config)
            bert = fm.fileExists(atPath: text) ? try Self.loadBertConfig(text) : nil
            return
        }
        fusion = nil
        if fm.fileExists(atPath: join(folder, .cbtConfig)) {
            kind = .cbt
            cbt = try Self.loadCBTConfig(join(folder, .cbtConfig))
            let text = join(join(folder, .cbtText), .config)
            bert = fm.fileExists(atPath: text) ? try Self.loadBertConfig(text) : nil
            return
        }
        guard fm.fileExists(atPath: join(folder, .config)) else {
            throw VideoBertError("is not a checkpoint (no \(File.config.rawValue) or \(File.cbtConfig.rawValue))", file: folder)
        }
        let config = try Self.loadBertConfig(join(folder, .config))
        bert = config
        let forecaster = Self.recipeValue("target", join(folder, .recipe)) == "next-step"
        if fm.fileExists(atPath: join(folder, .clipProjection)) {
            kind = forecaster ? .cbtForecaster : .cbtCaptioner
            let inner = join(join(folder, .captionerCBT), .cbtConfig)
            cbt = fm.fileExists(atPath: inner) ? try Self.loadCBTConfig(inner) : nil
            return
        }
        cbt = nil
        if config.visualWords > 0 {
            kind = Self.recipeInit(join(folder, .recipe)) == nil ? .videobert : forecaster ? .videobertForecaster : .videobertCaptioner
        } else {
            kind = .bert
        }
    }

    // MARK: Configs, bounded

    /// The largest value a size in a CBT config may take (a BERT config.json is bounded by
    /// BertConfig.validate): enough for any BERT or CBT we train
    /// or read (BERT-large is 1,024 wide, 24 layers, 30,522 WordPieces), small enough that the
    /// products of any two fit in an Int and no allocation made from them is absurd.
    public static let sizeLimits: [String: Int] = [
        "visual_hidden_size": 16_384, "visual_layers": 256, "visual_heads": 1_024, "visual_intermediate_size": 65_536,
        "max_clips": 65_536, "text_hidden_size": 16_384, "cross_hidden_size": 16_384, "cross_layers": 256, "cross_heads": 1_024,
        "cross_intermediate_size": 65_536, "embedding_size": 16_384,
        "conv.frame_size": 4_096, "conv.frames_per_clip": 1_024, "conv.channels": 16_384, "conv.output_size": 16_384,
        "projection.input_size": 1_000_000, "projection.output_size": 16_384, "projection.hidden_size": 65_536,
    ]
    /// Parameters (float32 values) a config may describe at most: 2^32 (16 GiB).
    public static let parameterLimit = 1 << 32

    /// Throws "<file>: <key> <value> exceeds <limit>" for the first size above its limit.
    static func bound(_ sizes: [(String, Int)], file: String) throws {
        for (key, value) in sizes {
            guard let limit = sizeLimits[key] else { continue }
            guard value <= limit else { throw VideoBertError("\(key) \(value) exceeds \(limit)", file: file) }
        }
    }

    /// Reads, validates and bounds a BertConfig (config.json).
    public static func loadBertConfig(_ file: String) throws -> BertConfig {
        // BertConfig.load bounds every size (BertConfig.validate); the parameter count is held to
        // this reader's limit too.
        let c = try BertConfig.load(from: file)
        let H = c.hiddenSize
        let parameters = (c.vocabSize + c.maxPositionEmbeddings + c.typeVocabSize) * H
            + c.numHiddenLayers * (4 * H * H + 2 * H * c.intermediateSize)
        guard parameters <= parameterLimit else {
            throw VideoBertError("describes \(parameters) parameters (hidden_size \(H), num_hidden_layers \(c.numHiddenLayers), vocab_size \(c.vocabSize)); at most \(parameterLimit) are read", file: file)
        }
        return c
    }

    /// Reads, validates and bounds a CBTConfig (cbt_config.json).
    public static func loadCBTConfig(_ file: String) throws -> CBTConfig {
        let c = try JSON.decode(CBTConfig.self, from: file)
        var sizes: [(String, Int)] = [("visual_hidden_size", c.visualHiddenSize), ("visual_layers", c.visualLayers),
                                      ("visual_heads", c.visualHeads), ("visual_intermediate_size", c.visualIntermediateSize),
                                      ("max_clips", c.maxClips), ("text_hidden_size", c.textHiddenSize),
                                      ("cross_hidden_size", c.crossHiddenSize), ("cross_layers", c.crossLayers),
                                      ("cross_heads", c.crossHeads), ("cross_intermediate_size", c.crossIntermediateSize),
                                      ("embedding_size", c.embeddingSize)]
        if let conv = c.conv {
            sizes += [("conv.frame_size", conv.frameSize), ("conv.frames_per_clip", conv.framesPerClip), ("conv.output_size", conv.outputSize)]
            sizes += conv.channels.map { ("conv.channels", $0) }
        }
        if let p = c.projection {
            sizes += [("projection.input_size", p.inputSize), ("projection.output_size", p.outputSize), ("projection.hidden_size", p.hiddenSize)]
        }
        try bound(sizes, file: file)
        try c.validate(file: file)
        let D = c.visualHiddenSize, X = c.crossHiddenSize
        let parameters = c.visualLayers * (4 * D * D + 2 * D * c.visualIntermediateSize) + c.crossLayers * (4 * X * X + 2 * X * c.crossIntermediateSize)
        guard parameters <= parameterLimit else {
            throw VideoBertError("describes \(parameters) transformer parameters; at most \(parameterLimit) are read", file: file)
        }
        return c
    }

    /// Reads and validates a FusionConfig (fusion_config.json): every size bounded by
    /// `FusionConfig.validate`, so nothing built from it allocates without limit.
    public static func loadFusionConfig(_ file: String) throws -> FusionConfig {
        let c = try JSON.decode(FusionConfig.self, from: file)
        try c.validate(file: file)
        return c
    }

    // MARK: Training records

    /// The optimizer step it was saved at (trainer_state.json), when known.
    public var step: Int? {
        guard let data = FileManager.default.contents(atPath: path(.trainerState)),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return (object["step"] as? NSNumber)?.intValue
    }

    /// The checkpoint its training started from (a fine-tuned captioner's recipe `init`).
    public var initFrom: String? { Self.recipeInit(path(.recipe)) }

    /// The top-level `init:` of a recipe.yaml, when it has a non-empty one.
    static func recipeInit(_ recipe: String) -> String? { recipeValue("init", recipe) }

    /// The value of a top-level `key:` of a recipe.yaml, when it has a non-empty one.
    static func recipeValue(_ key: String, _ recipe: String) -> String? {
        guard let text = try? String(contentsOfFile: recipe, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
            let value = line.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces)
            return value.isEmpty ? nil : value.trimmingCharacters(in: CharacterSet(charactersIn: "\"'"))
        }
        return nil
    }

    // MARK: Vocabularies

    /// The one vocabulary check: the checkpoint's BERT vocab.txt (when it has one) must be the
    /// corpus' text vocabulary (`textFingerprint`, index.json's), and its visual vocabulary files
    /// (when it has visual_vocab/) the corpus' (`visualVocabFolder`), byte for byte: the same ids
    /// must mean the same WordPieces and visual words. `corpus` names the corpus in the message.
    public func checkVocabularies(textFingerprint: String, visualVocabFolder: String?, corpus: String) throws {
        let vocab = (bertFolder as NSString).appendingPathComponent(File.textVocab.rawValue)
        if FileManager.default.fileExists(atPath: vocab), try Fingerprint.of(file: vocab) != textFingerprint {
            throw VideoBertError("its vocab.txt differs from the text vocabulary of the corpus \(corpus); tokenize with text.vocab pointing to it", file: folder)
        }
        guard let theirs = visualVocabFolder else { return }
        let mine = path(.visualVocab)
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: mine)) ?? []).filter { $0.hasSuffix(".npy") }.sorted()
        for f in files {
            let a = (mine as NSString).appendingPathComponent(f), b = (theirs as NSString).appendingPathComponent(f)
            guard FileManager.default.fileExists(atPath: b) else { continue }
            if try Fingerprint.of(file: a) != Fingerprint.of(file: b) {
                throw VideoBertError("its visual vocabulary (\(f)) differs from the corpus' \(theirs): the visual word ids would mean other clips", file: folder)
            }
        }
    }

    // MARK: What it says (`videobert inspect`)

    /// Kind, architecture, step, parameter count, what it was fine-tuned from, the commands that
    /// read it and its files.
    public struct Info: Codable, Sendable {
        public var path: String
        public var kind: Kind
        /// One line: what it is and how big.
        public var summary: String
        public var step: Int?
        /// Parameters in its weight files (float32 values).
        public var parameters: Int
        public var initFrom: String?
        public var readBy: [String]
        public var files: [String]

        enum CodingKeys: String, CodingKey {
            case path, kind, summary, step, parameters, files
            case initFrom = "init", readBy = "read_by"
        }
    }

    public func info() throws -> Info {
        let fm = FileManager.default
        let files = ((try? fm.subpathsOfDirectory(atPath: folder)) ?? []).filter {
            var isDir: ObjCBool = false
            return fm.fileExists(atPath: (folder as NSString).appendingPathComponent($0), isDirectory: &isDir) && !isDir.boolValue
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
        let summary: String, parameters: Int
        var initFrom = self.initFrom
        switch kind {
        case .cbt:
            let config = cbt!
            let front = config.frontEnd == "frames"
                ? "conv front-end \(config.conv.map { "\($0.channels) on \($0.framesPerClip) frames of \($0.frameSize)×\($0.frameSize)" } ?? "")"
                : "feature front-end \(config.projection.map { "\($0.inputSize) → \($0.outputSize)\($0.isMLP ? " (MLP \($0.hiddenSize))" : "")" } ?? "")"
            var s = "CBT: \(front); visual transformer \(config.visualLayers) × \(config.visualHiddenSize), up to \(config.maxClips) clips; cross-modal \(config.crossLayers) × \(config.crossHiddenSize); pooled embeddings \(config.embeddingSize)"
            s += bert.map { "; text " + bertLine($0) + ", \($0.textVocabSize) WordPieces" } ?? "; no text/ folder"
            summary = s
            parameters = try parameterCount([path(.weights), (path(.cbtText) as NSString).appendingPathComponent(File.weights.rawValue)])
            initFrom = nil
        case .cbtCaptioner, .cbtForecaster:
            let config = bert!
            let projection = try SafeTensors.read(path(.clipProjection)).shape(ClipProjection.weightName) ?? [0, 0]
            var s = (kind == .cbtForecaster ? "next-step forecaster" : "captioner") + " fine-tuned from a CBT checkpoint: " + bertLine(config)
                + ", \(config.textVocabSize) WordPieces"
            s += "; clip features \(projection.count == 2 ? projection[1] : 0) wide → \(projection.first ?? 0) by clip_projection"
            s += cbt.map { "; frozen CBT visual path in cbt/ (\($0.frontEnd) front-end, visual \($0.visualLayers) × \($0.visualHiddenSize))" }
                ?? "; cbt/ is missing: `videobert caption` cannot read it"
            if kind == .cbtForecaster && exists(.anticipation) { s += "; verb/noun anticipation head" }
            summary = s
            parameters = try parameterCount([path(.weights), path(.clipProjection), path(.anticipation)])
        case .videobert, .videobertCaptioner, .videobertForecaster:
            let config = bert!
            let what = kind == .videobertCaptioner ? "captioner fine-tuned from a VideoBERT checkpoint: "
                : kind == .videobertForecaster ? "next-step forecaster fine-tuned from a VideoBERT checkpoint: " : "VideoBERT: "
            summary = what + bertLine(config)
                + "; \(config.textVocabSize) WordPieces + \(config.visualWords) visual words"
                + (kind == .videobertForecaster && exists(.anticipation) ? "; verb/noun anticipation head" : "")
            parameters = try parameterCount([path(.weights), path(.clipProjection), path(.anticipation)])
        case .fusion:
            let c = fusion!
            let audio = c.audioSource == "logmel" ? "log-mel conv net \(c.audioNet.map { "\($0.channels)" } ?? "")"
                : c.audioSource == "words" ? "\(c.audioInputSize) audio words" : "no audio"
            summary = "fusion (Everything at Once): fusion transformer \(c.layers) × \(c.hiddenSize); video features \(c.videoInputSize) wide; \(audio); embeddings \(c.embeddingSize)"
                + (bert.map { "; text " + bertLine($0) + ", \($0.textVocabSize) WordPieces" } ?? "; no text/ folder")
            parameters = try parameterCount([path(.weights), (path(.cbtText) as NSString).appendingPathComponent(File.weights.rawValue)])
            initFrom = nil
        case .bert:
            let config = bert!
            summary = "text-only " + bertLine(config) + ", \(config.vocabSize) WordPieces"
            parameters = try parameterCount([path(.weights), path(.clipProjection)])
        }
        return Info(path: folder, kind: kind, summary: summary, step: step, parameters: parameters, initFrom: initFrom,
                    readBy: kind.readBy, files: files)
    }
}
