import Recipe

/// Every setting of `videobert tokenize`, with its default. This struct is the one place where
/// defaults live; recipe files (Recipes/tokenize-*.yaml) override some of them and say why.
/// Defaults follow the VideoBERT paper (§4.1: 20 fps, 30-frame clips of 1.5 s, hierarchical
/// k-means with k = 12 and 4 levels = 20,736 visual words).
public struct TokenizeRecipe: RecipeSection, Equatable {
    /// The ranges of the numeric settings (checked when a recipe is loaded; docs/RELIABILITY.md).
    public static let limits: [String: RecipeLimit] = [
        "frames.fps": .positive(max: 1000), "frames.clip_seconds": .positive(max: 3600), "frames.decoder_threads": .int(0...256),
        "features.seconds_per_row": .positive(max: 3600),
        "kmeans.branching": .int(2...65_536), "kmeans.depth": .int(1...16), "kmeans.iters": .int(1...100_000),
        "kmeans.seed": .int(0...(1 << 62)), "kmeans.max_points": .int(1...1_000_000_000),
        "text.max_tokens": .int(1...65_536), "text.max_seconds": .positive(max: 86_400), "text.pause_seconds": .number(0...86_400),
        "segments.max_video_only_clips": .int(0...65_536),
        "split.val": .number(0...0.99), "split.test": .number(0...0.99), "split.seed": .int(0...(1 << 62)),
        "store.frame_size": .int(4...1024), "store.frames_per_clip": .int(1...1024),
        "workers": .int(1...1024),
    ]

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
        /// or a backbone (`resnet50`, `resnet152`, `s3d-kinetics`, `s3d-howto100m`, `clip-vit-*`:
        /// `videobert features` runs first, into `dir`, and its .npy files are then imported; an S3D
        /// backbone sees the clips of `frames.fps` × `frames.clip_seconds`, a ResNet or CLIP its
        /// preset's frame rate). `s3d-howto100m-joint` is s3d-howto100m's 512-d text-video
        /// embedding (`features --joint`) instead of mixed_5c: what `retrieve --milnce` scores.
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
        /// The dtype of clip_features.npy: `float32`, or `float16` (half the storage; read back
        /// memory-mapped and converted to float32 per batch, docs/ARCHITECTURE.md §3).
        public var featuresDType: String = "float32"
        /// Keep low-resolution frames of each clip (clip_frames.npy), for a trainable visual front-end.
        public var frames: Bool = false
        /// Side of the stored frames (square), in pixels.
        public var frameSize: Int = 32
        /// Frames kept per clip, evenly spaced.
        public var framesPerClip: Int = 4
        /// Keep each clip's log-mel spectrogram (clip_audio.npy, float32 [clips, frames, 64]), for
        /// an audio front-end trained end to end. Needs `audio.enabled`.
        public var audio: Bool = false
        enum CodingKeys: String, CodingKey { case features, featuresDType = "features_dtype", frames, frameSize = "frame_size", framesPerClip = "frames_per_clip", audio }
    }

    public struct Audio: Codable, Sendable, Equatable {
        /// Also give every clip an audio word: decode each video's audio (mono, 16 kHz), describe
        /// each clip's sound with the built-in audio descriptor (`Features.AudioDescriptor`: mean
        /// and deviation of VGGish log-mels, 128 dims) and fit a second vocabulary on them by
        /// hierarchical k-means (`audio_vocab/`, `clip_audio_words.npy`). A video without an audio
        /// stream gets the words of silence; a damaged audio stream fails the video. Off by default;
        /// the text and visual arrays are the same either way.
        public var enabled: Bool = false
        /// `builtin` (the audio descriptor of the decoded audio) or `npy`: imported per-video
        /// `<audio.dir>/<video_id>.npy` audio features, float32/float16 [rows, dim], each row
        /// covering `audio.seconds_per_row` seconds (e.g. VGGish embeddings: 0.96 s); a clip's
        /// feature is the mean of the rows it overlaps, weighted by the overlap (zeros when none).
        public var source: String = "builtin"
        public var dir: String = ""
        public var secondsPerRow: Double = 1.0
        /// Children per node and levels of the audio vocabulary (branching^depth audio words).
        public var branching: Int = 8
        public var depth: Int = 2
        /// Lloyd iterations per node, and the seed.
        public var iters: Int = 20
        public var seed: Int = 0
        enum CodingKeys: String, CodingKey { case enabled, source, dir, secondsPerRow = "seconds_per_row", branching, depth, iters, seed }
    }

    public var frames = Frames()
    public var features = Features()
    public var audio = Audio()
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
    public static let backboneSources = ["resnet50", "resnet152", "s3d-kinetics", "s3d-howto100m", "s3d-howto100m-joint",
                                         "clip-vit-b32", "clip-vit-b16", "clip-vit-l14"]

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
        // Products of settings bounded before anything is sized by them (docs/RELIABILITY.md).
        var leaves = 1
        for _ in 0..<kmeans.depth {
            let (l, o) = leaves.multipliedReportingOverflow(by: kmeans.branching)
            if o || l > 1 << 24 { return "kmeans.branching ^ kmeans.depth (the visual words) must be at most \(1 << 24)" }
            leaves = l
        }
        if let (w, h) = frameSize, w > 16_384 || h > 16_384 || w * h > 1 << 26 {
            return "frames.size must be at most 16384 on a side and 2^26 pixels"
        }
        if let (w, h) = frameSize, framesPerClip * w * h * 3 > 1 << 31 {
            return "frames.fps × frames.clip_seconds frames of frames.size make more than 2 GiB per clip"
        }
        if store.frames && store.framesPerClip * store.frameSize * store.frameSize * 3 > 1 << 26 {
            return "store.frames_per_clip × store.frame_size² × 3 must be at most 64 MiB per clip"
        }
        if !["auto", "punctuation", "length"].contains(text.sentenceMode) { return "text.sentence_mode must be auto, punctuation or length" }
        if text.maxTokens < 1 { return "text.max_tokens must be at least 1" }
        if split.val < 0 || split.test < 0 || split.val + split.test >= 1 { return "split.val and split.test must be ≥ 0 and sum below 1" }
        if !["float32", "float16"].contains(store.featuresDType) { return "store.features_dtype must be float32 or float16" }
        if store.frameSize < 4 { return "store.frame_size must be at least 4" }
        if store.framesPerClip < 1 { return "store.frames_per_clip must be at least 1" }
        if workers < 1 { return "workers must be at least 1" }
        if audio.branching < 2 { return "audio.branching must be at least 2" }
        if audio.depth < 1 { return "audio.depth must be at least 1" }
        if audio.iters < 1 { return "audio.iters must be at least 1" }
        if store.audio && !audio.enabled { return "store.audio needs audio.enabled: true" }
        if !["builtin", "npy"].contains(audio.source) { return "audio.source must be builtin or npy" }
        if audio.source == "npy" && audio.dir.isEmpty { return "audio.dir is required with audio.source: npy" }
        if !(audio.secondsPerRow > 0) { return "audio.seconds_per_row must be positive" }
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
