import Foundation
import Tensor

/// `index.json` of a tokenized corpus folder. The arrays beside it are plain `.npy` files that
/// numpy reads alone (see `TokenizedCorpus.arrayDocs`); this index says how they fit together.
public struct CorpusIndex: Codable, Sendable, Equatable {
    public struct TextVocab: Codable, Sendable, Equatable {
        /// The WordPiece vocabulary file inside the corpus folder.
        public var file: String
        public var size: Int
        public var cased: Bool
        /// FNV-1a 64 of the file's bytes, hex: tells vocabularies apart.
        public var fingerprint: String
    }
    public struct VisualVocab: Codable, Sendable, Equatable {
        /// The visual vocabulary folder inside the corpus folder.
        public var folder: String
        public var words: Int
        public var branching: Int
        public var depth: Int
        public var dim: Int
        /// FNV-1a 64 of the folder's vocab.json, hex (corpora written before it was recorded: nil).
        public var fingerprint: String?
    }
    public struct Video: Codable, Sendable, Equatable {
        public var id: String
        public var split: String
        /// The video file it came from (nil for feature-only videos).
        public var source: String?
        public var duration: Double
        /// Its clips: [clipBegin, clipEnd) in the clip arrays.
        public var clipBegin: Int
        public var clipEnd: Int
        /// Its segments: [segmentBegin, segmentEnd) in the segment arrays.
        public var segmentBegin: Int
        public var segmentEnd: Int
        enum CodingKeys: String, CodingKey {
            case id, split, source, duration
            case clipBegin = "clip_begin", clipEnd = "clip_end", segmentBegin = "segment_begin", segmentEnd = "segment_end"
        }
    }
    public struct Counts: Codable, Sendable, Equatable {
        public var videos = 0, clips = 0, segments = 0, textTokens = 0, videoOnlySegments = 0, textOnlySegments = 0, failures = 0
        public var splits: [String: Int] = [:]
        enum CodingKeys: String, CodingKey {
            case videos, clips, segments, splits, failures
            case textTokens = "text_tokens", videoOnlySegments = "video_only_segments", textOnlySegments = "text_only_segments"
        }
        public init() {}
    }

    public var format = "videobert-corpus"
    public var version = 1
    public var createdBy = "videobert 0.1.0"
    public var textVocab: TextVocab
    public var visualVocab: VisualVocab
    /// Seconds per clip (fps × frames per clip for decoded video; seconds per row for imported features).
    public var clipSeconds: Double
    public var fps: Double
    public var featureSource: String
    public var featureDim: Int
    /// Optional arrays present: "clip_features", "clip_frames".
    public var extras: [String]
    public var counts: Counts
    public var videos: [Video]
    /// What each array holds (dtype, shape, meaning), for people reading the folder.
    public var arrays: [String: String]
    /// FNV-1a 64 of the recipe.yaml written beside it, hex (nil in corpora written before it was
    /// recorded). With the vocabularies' fingerprints, checked when the corpus is opened, so an
    /// index left from an earlier run beside a newer vocabulary or recipe is detected.
    public var recipeFingerprint: String?
    /// The audio vocabulary (`audio.enabled`): its folder, words, tree and descriptor dimension;
    /// absent from corpora tokenized without audio.
    public var audioVocab: VisualVocab? = nil
    /// A sharded corpus' shards, in order (`CorpusShards.swift`): the arrays live in these
    /// folders instead of beside index.json; absent from single-folder corpora.
    public var shards: [Shard]? = nil

    /// One shard of a sharded corpus: its folder (`shards/NNNNN`, or `.` for arrays beside
    /// index.json, when videos were appended to a single-folder corpus) and what it holds. Its
    /// videos are the next `videos` of index.json's list; its arrays use shard-local positions.
    public struct Shard: Codable, Sendable, Equatable {
        public var folder: String
        public var videos: Int, clips: Int, segments: Int, textTokens: Int, visualTokens: Int
        enum CodingKeys: String, CodingKey {
            case folder, videos, clips, segments, textTokens = "text_tokens", visualTokens = "visual_tokens"
        }
        public init(folder: String, videos: Int, clips: Int, segments: Int, textTokens: Int, visualTokens: Int) {
            self.folder = folder; self.videos = videos; self.clips = clips; self.segments = segments
            self.textTokens = textTokens; self.visualTokens = visualTokens
        }
    }

    enum CodingKeys: String, CodingKey {
        case format, version, createdBy = "created_by", textVocab = "text_vocab", visualVocab = "visual_vocab"
        case clipSeconds = "clip_seconds", fps, featureSource = "feature_source", featureDim = "feature_dim"
        case extras, counts, videos, arrays, recipeFingerprint = "recipe_fingerprint", audioVocab = "audio_vocab", shards
    }
}

/// One video's tokenized content, ready to be written into a corpus.
public struct TokenizedVideo: Sendable {
    public var id: String
    public var split: String
    public var source: String?
    public var duration: Double
    /// Visual word of each clip.
    public var clipWords: [Int32]
    /// Clip spans in seconds.
    public var clipTimes: [(start: Double, end: Double)]
    public var segments: [AlignedSegment]
    /// [clips, featureDim] when stored.
    public var features: [Float]?
    /// [clips, framesPerClip, size, size, 3] when stored.
    public var frames: [UInt8]?
    /// Audio word of each clip (`audio.enabled`).
    public var audioWords: [Int32]?
    /// [clips, frames, n_mels] log-mel spectrograms when stored (`store.audio`).
    public var audio: [Float]?

    public init(id: String, split: String, source: String?, duration: Double, clipWords: [Int32],
                clipTimes: [(start: Double, end: Double)], segments: [AlignedSegment], features: [Float]? = nil, frames: [UInt8]? = nil,
                audioWords: [Int32]? = nil, audio: [Float]? = nil) {
        self.id = id; self.split = split; self.source = source; self.duration = duration
        self.clipWords = clipWords; self.clipTimes = clipTimes; self.segments = segments
        self.features = features; self.frames = frames; self.audioWords = audioWords; self.audio = audio
    }
}

/// A tokenized corpus folder, read back (by `inspect`, pretraining and the downstream tasks).
public struct TokenizedCorpus: Sendable {
    public static let arrayDocs: [String: String] = [
        "text_ids": "int32 [text tokens]: WordPiece ids of every segment's sentence, concatenated",
        "text_offsets": "int64 [segments+1]: segment s's text is text_ids[text_offsets[s]:text_offsets[s+1]]",
        "visual_ids": "int32 [visual tokens]: visual word (0..words-1) of every clip of every segment, concatenated; the joint-vocabulary id is text_vocab.size + word",
        "visual_offsets": "int64 [segments+1]: segment s's visual words are visual_ids[visual_offsets[s]:visual_offsets[s+1]]",
        "segment_video": "int32 [segments]: index into index.json videos",
        "segment_times": "float32 [segments, 2]: start and end in seconds",
        "segment_clips": "int64 [segments, 2]: the segment's clips [begin, end) in the clip arrays",
        "clip_words": "int32 [clips]: visual word of every clip of every video, in time order",
        "clip_video": "int32 [clips]: index into index.json videos",
        "clip_times": "float32 [clips, 2]: start and end in seconds",
        "clip_features": "float32 [clips, feature_dim]: clip features (optional, store.features; float16 with store.features_dtype: float16)",
        "clip_frames": "uint8 [clips, frames_per_clip, size, size, 3]: low-resolution RGB frames (optional, store.frames)",
        "clip_audio_words": "int32 [clips]: audio word (0..audio_vocab.words-1) of every clip (optional, audio.enabled)",
        "clip_audio": "float32 [clips, frames, n_mels]: log-mel spectrogram of each clip's audio, VGGish settings (optional, store.audio)",
    ]

    public let path: String
    public let index: CorpusIndex
    /// Where the arrays are: the corpus folder itself, or its shards' folders in order.
    public let shardFolders: [String]
    // Every array is memory-mapped (Tensor/MappedNPY.swift: sizes checked against the file
    // before the mapping); nothing proportional to the corpus is copied into the heap.
    public let textIDs: MappedColumn<Int32>
    public let textOffsets: MappedColumn<Int64>
    public let visualIDs: MappedColumn<Int32>
    public let visualOffsets: MappedColumn<Int64>
    public let segmentVideo: MappedColumn<Int32>
    public let segmentTimes: MappedColumn<Float>
    public let segmentClips: MappedColumn<Int64>
    public let clipWords: MappedColumn<Int32>
    public let clipVideo: MappedColumn<Int32>
    public let clipTimes: MappedColumn<Float>
    /// Audio word of every clip, when the corpus was tokenized with `audio.enabled`.
    public let clipAudioWords: MappedColumn<Int32>?

    public var segmentCount: Int { segmentVideo.count }
    public var clipCount: Int { clipWords.count }

    public init(path: String) throws {
        self.path = path
        let indexPath = (path as NSString).appendingPathComponent("index.json")
        guard FileManager.default.fileExists(atPath: indexPath) else {
            throw VideoBertError("not a tokenized corpus (no index.json); make one with `videobert tokenize`", file: path)
        }
        index = try JSON.decode(CorpusIndex.self, from: indexPath)
        guard index.format == "videobert-corpus" else { throw VideoBertError("index.json is not a videobert corpus index", file: indexPath) }
        guard index.version == 1 else { throw VideoBertError("corpus format version \(index.version) is not supported (expected 1)", file: indexPath) }
        let shards = try CorpusShards.folders(of: index, corpus: path, indexPath: indexPath)
        shardFolders = shards
        func arr<T: NPYScalar & BitwiseCopyable>(_ name: String, _: T.Type) throws -> MappedColumn<T> {
            try MappedNPY(path: (shards[0] as NSString).appendingPathComponent(name + ".npy")).column(T.self)
        }
        if shards.count > 1 || shards[0] != path {
            // Each shard's arrays checked against its index.json entry, then joined (CorpusShards.swift).
            let c = try CorpusShards.open(index: index, folders: shards, indexPath: indexPath)
            (textIDs, textOffsets, visualIDs, visualOffsets) = (c.textIDs, c.textOffsets, c.visualIDs, c.visualOffsets)
            (segmentVideo, segmentTimes, segmentClips) = (c.segmentVideo, c.segmentTimes, c.segmentClips)
            (clipWords, clipVideo, clipTimes) = (c.clipWords, c.clipVideo, c.clipTimes)
        } else {
            textIDs = try arr("text_ids", Int32.self)
            textOffsets = try arr("text_offsets", Int64.self)
            visualIDs = try arr("visual_ids", Int32.self)
            visualOffsets = try arr("visual_offsets", Int64.self)
            segmentVideo = try arr("segment_video", Int32.self)
            segmentTimes = try arr("segment_times", Float.self)
            segmentClips = try arr("segment_clips", Int64.self)
            clipWords = try arr("clip_words", Int32.self)
            clipVideo = try arr("clip_video", Int32.self)
            clipTimes = try arr("clip_times", Float.self)
        }
        if index.extras.contains("clip_audio_words") {
            let words = MappedColumn.concatenating(try shards.map {
                try MappedNPY(path: ($0 as NSString).appendingPathComponent("clip_audio_words.npy")).column(Int32.self)
            })
            guard words.count == clipWords.count, let vocab = index.audioVocab,
                  words.allSatisfy({ $0 >= 0 && Int($0) < vocab.words }) else {
                throw VideoBertError("clip_audio_words.npy does not agree with the clips or index.json audio_vocab (re-run tokenize)", file: path)
            }
            clipAudioWords = words
        } else {
            clipAudioWords = nil
        }
        let s = segmentVideo.count
        guard textOffsets.count == s + 1, visualOffsets.count == s + 1, segmentTimes.count == 2 * s, segmentClips.count == 2 * s,
              textOffsets.last.map(Int.init) == textIDs.count, visualOffsets.last.map(Int.init) == visualIDs.count,
              clipVideo.count == clipWords.count, clipTimes.count == 2 * clipWords.count,
              index.counts.segments == s, index.counts.clips == clipWords.count else {
            throw VideoBertError("corpus arrays do not agree with each other or with index.json (re-run tokenize)", file: path)
        }
        try validate()
    }

    /// Checks, once at open, every value later used as an index (docs/RELIABILITY.md, "damaged
    /// corpora"): offsets start at 0 and never decrease, ids lie in their vocabularies, video and
    /// clip references in range; and that the vocabularies and recipe beside index.json are the
    /// ones it was built with. Errors name the file and the position.
    func validate() throws {
        let indexPath = (path as NSString).appendingPathComponent("index.json")
        func file(_ name: String) -> String { (shardFolders[0] as NSString).appendingPathComponent(name + ".npy") }
        // A value's file and position there (a shard's file, for a sharded corpus).
        func at<T>(_ column: MappedColumn<T>, _ i: Int, _ name: String) -> (String, String) {
            guard shardFolders.count > 1, let l = column.location(of: i) else { return ("\(i)", file(name)) }
            return ("\(i) (\(l.position) of its shard)", l.path)
        }
        let ix = index
        guard (1...(1 << 24)).contains(ix.textVocab.size) else {
            throw VideoBertError("text_vocab.size \(ix.textVocab.size) is out of range 1...\(1 << 24)", file: indexPath)
        }
        guard (0...(1 << 24)).contains(ix.visualVocab.words) else {
            throw VideoBertError("visual_vocab.words \(ix.visualVocab.words) is out of range 0...\(1 << 24)", file: indexPath)
        }
        for (name, offsets) in [("text_offsets", textOffsets), ("visual_offsets", visualOffsets)] {
            guard offsets.first == 0 else { throw VideoBertError("must start at 0, starts at \(offsets.first ?? -1)", file: file(name)) }
            for i in 1..<offsets.count where offsets[i] < offsets[i - 1] {
                let (where_, f) = at(offsets, i, name)
                throw VideoBertError("offsets decrease at position \(where_) (\(offsets[i - 1]) then \(offsets[i]))", file: f)
            }
        }
        func ids(_ name: String, _ values: MappedColumn<Int32>, below limit: Int, what: String) throws {
            if let i = values.firstIndex(where: { $0 < 0 || Int($0) >= limit }) {
                let (where_, f) = at(values, i, name)
                throw VideoBertError("value \(values[i]) at position \(where_) is outside \(what) 0..<\(limit)", file: f)
            }
        }
        try ids("text_ids", textIDs, below: ix.textVocab.size, what: "the text vocabulary")
        try ids("visual_ids", visualIDs, below: ix.visualVocab.words, what: "the visual vocabulary")
        try ids("clip_words", clipWords, below: ix.visualVocab.words, what: "the visual vocabulary")
        try ids("segment_video", segmentVideo, below: ix.videos.count, what: "the videos of index.json")
        try ids("clip_video", clipVideo, below: ix.videos.count, what: "the videos of index.json")
        for s in 0..<segmentCount {
            let (b, e) = (segmentClips[2 * s], segmentClips[2 * s + 1])
            guard b >= 0, b <= e, e <= Int64(clipCount) else {
                throw VideoBertError("segment \(s): clips [\(b), \(e)) are not a range inside 0..<\(clipCount)", file: at(segmentClips, 2 * s, "segment_clips").1)
            }
        }
        for (i, v) in ix.videos.enumerated() {
            guard v.clipBegin >= 0, v.clipBegin <= v.clipEnd, v.clipEnd <= clipCount,
                  v.segmentBegin >= 0, v.segmentBegin <= v.segmentEnd, v.segmentEnd <= segmentCount else {
                throw VideoBertError("videos[\(i)] ('\(v.id)'): clip or segment range outside the arrays", file: indexPath)
            }
        }
        // The files beside the index are the ones it was built with.
        func check(_ relative: String, _ expected: String?, _ what: String) throws {
            guard let expected else { return }
            let p = (path as NSString).appendingPathComponent(relative)
            guard FileManager.default.fileExists(atPath: p) else { return }
            let actual = try CorpusBuilder.fingerprint(of: p)
            guard actual == expected else {
                throw VideoBertError("\(relative) is not the \(what) this index.json was built with (fingerprint \(actual), index says \(expected)); an interrupted tokenize run? re-run `videobert tokenize`", file: path)
            }
        }
        try check(ix.textVocab.file, ix.textVocab.fingerprint, "text vocabulary")
        try check((ix.visualVocab.folder as NSString).appendingPathComponent("vocab.json"), ix.visualVocab.fingerprint, "visual vocabulary")
        try check("recipe.yaml", ix.recipeFingerprint, "recipe")
    }

    /// Segment `segment`'s WordPiece ids (copied out of the mapped array: one sentence).
    public func text(of segment: Int) -> ArraySlice<Int32> {
        textIDs.slice(Int(textOffsets[segment])..<Int(textOffsets[segment + 1]))
    }

    /// Segment `segment`'s visual words (copied out of the mapped array).
    public func visual(of segment: Int) -> ArraySlice<Int32> {
        visualIDs.slice(Int(visualOffsets[segment])..<Int(visualOffsets[segment + 1]))
    }

    public func times(of segment: Int) -> (start: Float, end: Float) {
        (segmentTimes[2 * segment], segmentTimes[2 * segment + 1])
    }

    /// Segment indices of the videos in `split`.
    public func segments(in split: String) -> [Int] {
        index.videos.filter { $0.split == split }.flatMap { $0.segmentBegin..<$0.segmentEnd }
    }

    public var textVocabPath: String { (path as NSString).appendingPathComponent(index.textVocab.file) }

    /// A stored per-clip array (`clip_features`, `clip_frames`, `clip_audio`) across the shards, or
    /// nil when index.json does not list it; its rows must be the corpus' clips (the error names the file).
    public func storedRows(_ name: String) throws -> MappedRows? {
        guard index.extras.contains(name) else { return nil }
        let files = try shardFolders.map { try MappedNPY(path: ($0 as NSString).appendingPathComponent(name + ".npy")) }
        let rows = try MappedRows(files)
        guard rows.rows == clipCount else {
            throw VideoBertError("has \(rows.rows) rows, the corpus \(clipCount) clips", file: files.count == 1 ? files[0].path : path + " (" + name + ".npy of the shards)")
        }
        return rows
    }
    public var visualVocabPath: String { (path as NSString).appendingPathComponent(index.visualVocab.folder) }
}

/// Builds a corpus folder video by video. Integer arrays are gathered in memory (they are small);
/// clip features and frames, which can be large, stream to disk as they come. Each file is
/// written under a temporary name and renamed; index.json goes last, so a folder with an index
/// is always complete.
public final class CorpusBuilder {
    public let dir: String
    let featureDim: Int?
    let frameShape: [Int]?
    var textIDs: [Int32] = [], textOffsets: [Int64] = [0]
    var visualIDs: [Int32] = [], visualOffsets: [Int64] = [0]
    var segVideo: [Int32] = [], segTimes: [Float] = [], segClips: [Int64] = []
    var clipWords: [Int32] = [], clipVideo: [Int32] = [], clipTimes: [Float] = []
    var entries: [CorpusIndex.Video] = []
    var counts = CorpusIndex.Counts()
    let featureWriter: NPYStreamWriter?
    let frameWriter: NPYStreamWriter?
    /// Audio words of every clip, when stored.
    var clipAudioWords: [Int32]?
    let audioShape: [Int]?
    let audioWriter: NPYStreamWriter?

    /// - Parameters:
    ///   - featureDim: store clip features of this dimension (nil: don't).
    ///   - frameShape: store clip frames of this shape [framesPerClip, size, size, 3] (nil: don't).
    ///   - audioWords: store every clip's audio word (clip_audio_words.npy).
    ///   - audioShape: store every clip's log-mel spectrogram of this shape [frames, n_mels] (clip_audio.npy).
    ///   - featureDType: float32, or float16 (`store.features_dtype`: half the storage).
    public init(dir: String, featureDim: Int?, frameShape: [Int]?, audioWords: Bool = false, audioShape: [Int]? = nil,
                featureDType: NPYDType = .float32) throws {
        precondition(featureDType == .float32 || featureDType == .float16, "clip features are float32 or float16")
        self.dir = dir
        clipAudioWords = audioWords ? [] : nil
        self.audioShape = audioShape
        self.featureDim = featureDim
        self.frameShape = frameShape
        try AtomicFile.createDirectory(dir)
        featureWriter = try featureDim.map { try NPYStreamWriter(path: Self.path(dir, "clip_features"), dtype: featureDType, rowShape: [$0]) }
        frameWriter = try frameShape.map { try NPYStreamWriter(path: Self.path(dir, "clip_frames"), dtype: .uint8, rowShape: $0) }
        audioWriter = try audioShape.map { try NPYStreamWriter(path: Self.path(dir, "clip_audio"), dtype: .float32, rowShape: $0) }
    }

    static func path(_ dir: String, _ name: String) -> String { (dir as NSString).appendingPathComponent(name + ".npy") }

    public func append(_ v: TokenizedVideo) throws {
        let vi = entries.count
        let clipBase = clipWords.count
        let segBase = segVideo.count
        clipWords += v.clipWords
        clipVideo += [Int32](repeating: Int32(vi), count: v.clipWords.count)
        for t in v.clipTimes { clipTimes += [Float(t.start), Float(t.end)] }
        if let w = featureWriter {
            guard let f = v.features, f.count == v.clipWords.count * featureDim! else {
                throw VideoBertError("video '\(v.id)': clip features missing or of the wrong size", file: dir)
            }
            if w.dtype == .float16 {
                // Round to nearest even (Swift's Float16 init), stored little-endian.
                let half = f.map { Float16($0).bitPattern.littleEndian }
                try half.withUnsafeBytes { try w.append($0) }
            } else {
                try f.withUnsafeBytes { try w.append($0) }
            }
        }
        if let w = frameWriter {
            guard let f = v.frames, f.count == v.clipWords.count * frameShape!.reduce(1, *) else {
                throw VideoBertError("video '\(v.id)': clip frames missing or of the wrong size", file: dir)
            }
            try f.withUnsafeBytes { try w.append($0) }
        }
        if let w = audioWriter {
            guard let a = v.audio, a.count == v.clipWords.count * audioShape!.reduce(1, *) else {
                throw VideoBertError("video '\(v.id)': clip audio missing or of the wrong size", file: dir)
            }
            try a.withUnsafeBytes { try w.append($0) }
        }
        if clipAudioWords != nil {
            guard let a = v.audioWords, a.count == v.clipWords.count else {
                throw VideoBertError("video '\(v.id)': audio words missing or of the wrong count", file: dir)
            }
            clipAudioWords! += a
        }
        for s in v.segments {
            textIDs += s.textIDs
            textOffsets.append(Int64(textIDs.count))
            visualIDs += v.clipWords[s.clipBegin..<s.clipEnd]
            visualOffsets.append(Int64(visualIDs.count))
            segVideo.append(Int32(vi))
            segTimes += [Float(s.start), Float(s.end)]
            segClips += [Int64(clipBase + s.clipBegin), Int64(clipBase + s.clipEnd)]
            if s.textIDs.isEmpty { counts.videoOnlySegments += 1 }
            if s.clipCount == 0 { counts.textOnlySegments += 1 }
        }
        entries.append(CorpusIndex.Video(id: v.id, split: v.split, source: v.source, duration: v.duration,
                                         clipBegin: clipBase, clipEnd: clipWords.count,
                                         segmentBegin: segBase, segmentEnd: segVideo.count))
        counts.splits[v.split, default: 0] += 1
    }

    public func finish(textVocab: CorpusIndex.TextVocab, visualVocab: CorpusIndex.VisualVocab, clipSeconds: Double,
                       fps: Double, featureSource: String, featureDim: Int, failures: Int, recipeFingerprint: String? = nil,
                       audioVocab: CorpusIndex.VisualVocab? = nil, indexName: String = "index.json") throws -> CorpusIndex {
        counts.videos = entries.count
        counts.clips = clipWords.count
        counts.segments = segVideo.count
        counts.textTokens = textIDs.count
        counts.failures = failures
        func p(_ name: String) -> String { Self.path(dir, name) }
        try NPY.write(textIDs, shape: [textIDs.count], to: p("text_ids"))
        try NPY.write(textOffsets, shape: [textOffsets.count], to: p("text_offsets"))
        try NPY.write(visualIDs, shape: [visualIDs.count], to: p("visual_ids"))
        try NPY.write(visualOffsets, shape: [visualOffsets.count], to: p("visual_offsets"))
        try NPY.write(segVideo, shape: [segVideo.count], to: p("segment_video"))
        try NPY.write(segTimes, shape: [segVideo.count, 2], to: p("segment_times"))
        try NPY.write(segClips, shape: [segVideo.count, 2], to: p("segment_clips"))
        try NPY.write(clipWords, shape: [clipWords.count], to: p("clip_words"))
        try NPY.write(clipVideo, shape: [clipVideo.count], to: p("clip_video"))
        try NPY.write(clipTimes, shape: [clipWords.count, 2], to: p("clip_times"))
        var extras: [String] = []
        if let w = featureWriter { try w.finish(); extras.append("clip_features") } else { try? FileManager.default.removeItem(atPath: p("clip_features")) }
        if let w = frameWriter { try w.finish(); extras.append("clip_frames") } else { try? FileManager.default.removeItem(atPath: p("clip_frames")) }
        if let a = clipAudioWords, audioVocab != nil {
            try NPY.write(a, shape: [a.count], to: p("clip_audio_words"))
            extras.append("clip_audio_words")
        } else {
            try? FileManager.default.removeItem(atPath: p("clip_audio_words"))
        }
        if let w = audioWriter { try w.finish(); extras.append("clip_audio") } else { try? FileManager.default.removeItem(atPath: p("clip_audio")) }
        var docs = TokenizedCorpus.arrayDocs
        for k in ["clip_features", "clip_frames", "clip_audio_words", "clip_audio"] where !extras.contains(k) { docs[k] = nil }
        if featureWriter?.dtype == .float16 {
            docs["clip_features"] = "float16 [clips, feature_dim]: clip features (optional, store.features with store.features_dtype: float16)"
        }
        let index = CorpusIndex(textVocab: textVocab, visualVocab: visualVocab, clipSeconds: clipSeconds, fps: fps,
                                featureSource: featureSource, featureDim: featureDim, extras: extras,
                                counts: counts, videos: entries, arrays: docs, recipeFingerprint: recipeFingerprint,
                                audioVocab: extras.contains("clip_audio_words") ? audioVocab : nil)
        try JSON.write(index, to: (dir as NSString).appendingPathComponent(indexName))
        return index
    }

    /// FNV-1a 64 of a file's bytes as 16 hex digits.
    public static func fingerprint(of path: String) throws -> String { try Fingerprint.of(file: path) }

    public static func fnv1a<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 { Fingerprint.fnv1a(bytes) }
}
