import Recipe

/// Every setting of `videobert tokenize`, with its default. This struct is the one place where
/// defaults live; recipe files (Recipes/tokenize-*.yaml) override some of them and say why.
/// Defaults follow the VideoBERT paper (§4.1: 20 fps, 30-frame clips of 1.5 s, hierarchical
/// k-means with k = 12 and 4 levels = 20,736 visual words).
public struct TokenizeRecipe: RecipeSection, Equatable {
    public struct Frames: Codable, Sendable, Equatable {
        /// Frames sampled per second (by presentation timestamp).
        public var fps: Double = 20
        /// Seconds per clip; a clip holds round(fps × clip_seconds) frames.
        public var clipSeconds: Double = 1.5
        /// Frame size fed to the built-in descriptor, "WxH".
        public var size: String = "64x64"
        /// FFmpeg decoder threads per video (videos are also decoded in parallel; see `workers`).
        public var decoderThreads: Int = 1
        enum CodingKeys: String, CodingKey { case fps, clipSeconds = "clip_seconds", size, decoderThreads = "decoder_threads" }
    }

    public struct Features: Codable, Sendable, Equatable {
        /// `builtin` (the descriptor computed from decoded frames), `npy` (imported per-video files),
        /// or a backbone (`resnet50`, `resnet152`: `videobert features` runs first, into `dir`, and
        /// its .npy files are then imported).
        public var source: String = "builtin"
        /// With `npy`: the folder of `<video_id>.npy` files, float32/float16 [rows, dim].
        public var dir: String = ""
        /// With `npy`: seconds covered by one row (HowTo100M S3D dumps: 1.0). Each row is a clip.
        public var secondsPerRow: Double = 1.0
        /// `none`, or `video`: subtract each video's mean feature before clustering, so that what
        /// stays the same through a video (the kitchen, the lighting, the camera) does not decide
        /// its visual words; what changes (objects, actions) does. Not in the paper; off by default.
        public var center: String = "none"
        /// With a backbone source: its weights (a torchvision state dict, .pth or .safetensors).
        public var weights: String = ""
        enum CodingKeys: String, CodingKey { case source, dir, secondsPerRow = "seconds_per_row", center, weights }
    }

    public struct KMeansSettings: Codable, Sendable, Equatable {
        /// Children per node (paper: 12).
        public var branching: Int = 12
        /// Levels; branching^depth visual words (paper: 4 → 20,736).
        public var depth: Int = 4
        /// Lloyd iterations per node.
        public var iters: Int = 20
        public var seed: Int = 0
        /// At most this many clips are used to fit the vocabulary (a seeded sample; every clip is
        /// still assigned a word). 0 = all clips.
        public var maxPoints: Int = 1_000_000
        /// Use this existing visual vocabulary folder instead of fitting one.
        public var vocab: String = ""
        enum CodingKeys: String, CodingKey { case branching, depth, iters, seed, maxPoints = "max_points", vocab }
    }

    public struct Text: Codable, Sendable, Equatable {
        /// WordPiece vocabulary (vocab.txt), relative to the working directory.
        public var vocab: String = "Vocab/bert-base-uncased.txt"
        /// Keep case and accents (for cased vocabularies).
        public var cased: Bool = false
        /// `auto` (punctuation when the text has it), `punctuation`, or `length` (ASR without punctuation).
        public var sentenceMode: String = "auto"
        /// A sentence ends before it would exceed this many WordPieces...
        public var maxTokens: Int = 32
        /// ...or this many seconds...
        public var maxSeconds: Double = 12
        /// ...and at a pause in speech this long.
        public var pauseSeconds: Double = 2
        enum CodingKeys: String, CodingKey {
            case vocab, cased, sentenceMode = "sentence_mode", maxTokens = "max_tokens", maxSeconds = "max_seconds", pauseSeconds = "pause_seconds"
        }
    }

    public struct Segments: Codable, Sendable, Equatable {
        /// Stretches without speech become video-only segments of at most this many clips.
        public var maxVideoOnlyClips: Int = 8
        enum CodingKeys: String, CodingKey { case maxVideoOnlyClips = "max_video_only_clips" }
    }

    public struct Split: Codable, Sendable, Equatable {
        /// Fractions of videos (or of manifest groups) held out; the rest is train.
        public var val: Double = 0.1
        public var test: Double = 0.1
        public var seed: Int = 0
    }

    public struct Store: Codable, Sendable, Equatable {
        /// Keep each clip's feature vector (clip_features.npy), for the contrastive (CBT) variant.
        public var features: Bool = false
        /// Keep low-resolution frames of each clip (clip_frames.npy), for a trainable visual front-end.
        public var frames: Bool = false
        /// Side of the stored frames (square), in pixels.
        public var frameSize: Int = 32
        /// Frames kept per clip, evenly spaced.
        public var framesPerClip: Int = 4
        enum CodingKeys: String, CodingKey { case features, frames, frameSize = "frame_size", framesPerClip = "frames_per_clip" }
    }

    public var frames = Frames()
    public var features = Features()
    public var kmeans = KMeansSettings()
    public var text = Text()
    public var segments = Segments()
    public var split = Split()
    public var store = Store()
    /// Videos processed at once (each on its own core).
    public var workers: Int = 2

    public init() {}

    /// The `features.source` values that name a backbone preset (Sources/Backbones/FeaturePreset.swift;
    /// `videobert tokenize` checks that each is one).
    public static let backboneSources = ["resnet50", "resnet152"]

    /// Checks values that the types cannot: returns the first problem as text.
    public func problem() -> String? {
        if frames.fps <= 0 { return "frames.fps must be positive" }
        if frames.clipSeconds <= 0 { return "frames.clip_seconds must be positive" }
        if frameSize == nil { return "frames.size must look like 64x64" }
        if framesPerClip < 1 { return "frames.fps × frames.clip_seconds must be at least one frame" }
        if !(["builtin", "npy"] + Self.backboneSources).contains(features.source) {
            return "features.source must be builtin, npy or a backbone (\(Self.backboneSources.joined(separator: ", ")))"
        }
        if Self.backboneSources.contains(features.source) && features.weights.isEmpty {
            return "features.weights is required with features.source: \(features.source)"
        }
        if features.source == "npy" && features.dir.isEmpty { return "features.dir is required with features.source: npy" }
        if features.secondsPerRow <= 0 { return "features.seconds_per_row must be positive" }
        if !["none", "video"].contains(features.center) { return "features.center must be none or video" }
        if kmeans.branching < 2 { return "kmeans.branching must be at least 2" }
        if kmeans.depth < 1 { return "kmeans.depth must be at least 1" }
        if kmeans.iters < 1 { return "kmeans.iters must be at least 1" }
        if !["auto", "punctuation", "length"].contains(text.sentenceMode) { return "text.sentence_mode must be auto, punctuation or length" }
        if text.maxTokens < 1 { return "text.max_tokens must be at least 1" }
        if split.val < 0 || split.test < 0 || split.val + split.test >= 1 { return "split.val and split.test must be ≥ 0 and sum below 1" }
        if store.frameSize < 4 { return "store.frame_size must be at least 4" }
        if store.framesPerClip < 1 { return "store.frames_per_clip must be at least 1" }
        if workers < 1 { return "workers must be at least 1" }
        return nil
    }

    /// (width, height) parsed from `frames.size`.
    public var frameSize: (width: Int, height: Int)? {
        let p = frames.size.lowercased().split(separator: "x")
        guard p.count == 2, let w = Int(p[0]), let h = Int(p[1]), w >= 4, h >= 4 else { return nil }
        return (w, h)
    }

    /// Frames per clip: round(fps × clip_seconds).
    public var framesPerClip: Int { Int((frames.fps * frames.clipSeconds).rounded()) }
}
