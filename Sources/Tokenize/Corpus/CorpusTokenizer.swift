import Features
import Foundation
import Media
import Recipe
import Tensor

/// `videobert tokenize`: videos + transcripts → a tokenized corpus folder.
///
/// 1. Per video, two at a time (recipe `workers`): decode frames by timestamp at `frames.fps`,
///    group them into clips of `frames.clip_seconds`, compute each clip's feature (or read the
///    imported `.npy`), keep low-resolution frames when asked; parse the transcript, split it into
///    sentences and WordPieces. Results go to `work/` (one set of files per video, renamed into
///    place when complete), so a re-run skips finished videos.
/// 2. Fit the visual vocabulary (hierarchical k-means over a seeded sample of clip features), or
///    reuse the one fitted before for the same videos and settings, or load `kmeans.vocab`.
/// 3. Give every clip its visual word, pair sentences with clips, split train/val/test by video,
///    and write the corpus arrays and index.json.
///
/// A video that fails (corrupt, truncated, no video stream, bad transcript) is recorded in
/// `failures.jsonl` and the summary; the others finish.
public final class CorpusTokenizer: @unchecked Sendable {  // phase 1 workers only read its settings
    public struct Failure: Codable, Sendable, Equatable {
        public var id: String
        public var file: String?
        public var stage: String
        public var error: String
    }

    public struct Summary: Codable, Sendable {
        public var videos: Int
        public var succeeded: Int
        public var failed: Int
        public var skipped: Int
        public var clips: Int
        public var segments: Int
        public var textTokens: Int
        public var visualWords: Int
        public var vocabularyReused: Bool
        public var inertia: Double?
        public var seconds: Double
        public var splits: [String: Int]
        public var out: String
        enum CodingKeys: String, CodingKey {
            case videos, succeeded, failed, skipped, clips, segments, splits, seconds, out, inertia
            case textTokens = "text_tokens", visualWords = "visual_words", vocabularyReused = "vocabulary_reused"
        }
    }

    /// Ids of the videos that failed in phase 1 (on any rank).
    var phase1Failed: Set<String> = []

    /// What phase 1 leaves in work/<id>.json for a finished video.
    struct VideoWork: Codable {
        var id: String
        var fingerprint: String
        var duration: Double
        var clipStarts: [Double]
        var clipEnds: [Double]
        var featureDim: Int
        var sentences: [WorkSentence]
        var hasFrames: Bool
    }
    struct WorkSentence: Codable { var start: Double; var end: Double; var text: String; var ids: [Int32] }

    public let recipe: TokenizeRecipe
    public let items: [VideoItem]
    public let out: String
    public var showProgress = true
    /// Ranks sharing the work (MPI; one process by default). Videos are divided among the ranks
    /// (video i goes to rank i mod N), the vocabulary is fitted together (`HierarchicalKMeans`),
    /// each rank gives its own videos their visual words, and rank 0 writes the corpus. The
    /// output folder must be on a file system every rank sees.
    public var communicator: Communicator = SingleProcess()
    /// Add `items` to the corpus in `out` as new shards, with its own recipe and vocabularies
    /// (`tokenize --append`, CorpusShards.swift).
    public var append = false
    /// Shards to write (nil: one per rank; 1 in one process writes the single-folder layout).
    public var shards: Int? = nil
    var shardCount: Int { shards ?? communicator.size }
    /// The corpus appended to (`append`), opened and checked before any work.
    var appendBase: TokenizedCorpus?
    let workDir: String
    let tokenizer: BertTokenizer
    let textVocabPath: String
    let splitter: SentenceSplitter

    public init(recipe: TokenizeRecipe, items: [VideoItem], out: String) throws {
        if let p = recipe.problem() { throw VideoBertError(p, file: "recipe") }
        self.recipe = recipe
        self.items = items
        self.out = out
        workDir = (out as NSString).appendingPathComponent("work")
        textVocabPath = recipe.text.vocab
        guard FileManager.default.fileExists(atPath: textVocabPath) else {
            throw VideoBertError("text vocabulary not found (run tools/setup, or set text.vocab)", file: textVocabPath)
        }
        tokenizer = try BertTokenizer(vocabularyFile: textVocabPath, lowercase: !recipe.text.cased)
        splitter = SentenceSplitter(mode: SentenceSplitter.Mode(rawValue: recipe.text.sentenceMode) ?? .auto,
                                    maxTokens: recipe.text.maxTokens, maxSeconds: recipe.text.maxSeconds,
                                    pauseSeconds: recipe.text.pauseSeconds)
    }

    /// The settings that change what phase 1 produces for a video.
    var fingerprint: String {
        let r = recipe
        let vocabFP = (try? CorpusBuilder.fingerprint(of: textVocabPath)) ?? "?"
        let parts: [String] = [
            "v1", "\(r.frames.fps)", "\(r.frames.clipSeconds)", r.frames.size, r.features.source, r.features.dir,
            "\(r.features.secondsPerRow)", vocabFP, "\(r.text.cased)", r.text.sentenceMode, "\(r.text.maxTokens)",
            "\(r.text.maxSeconds)", "\(r.text.pauseSeconds)", "\(r.store.frames)", "\(r.store.frameSize)", "\(r.store.framesPerClip)",
        ] + (r.audio.enabled ? ["audio-v1", r.audio.source, r.audio.dir, "\(r.audio.secondsPerRow)"] : []) + (r.store.audio ? ["store-audio"] : [])
        return CorpusBuilder.fnv1a(Array(parts.joined(separator: "|").utf8))
    }

    func workPath(_ id: String, _ suffix: String) -> String {
        (workDir as NSString).appendingPathComponent(Self.safeName(id) + suffix)
    }

    /// Ids become file names: keep letters, digits, - _ . and replace the rest.
    static func safeName(_ id: String) -> String {
        String(id.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" })
    }

    // MARK: - run

    public func run() throws -> (Summary, [Failure]) {
        let t0 = Date()
        if communicator.isRoot {
            // One writer per folder (docs/RELIABILITY.md, "concurrency"); what a killed run left is
            // removed by rank 0 alone, before any rank writes (the barrier), since a temporary
            // name's pid means nothing on another machine.
            try FolderLock.acquire(out)
            AtomicFile.removeStaleTemporaries(in: out)
            AtomicFile.removeStaleTemporaries(in: workDir)
            AtomicFile.removeStaleTemporaries(in: (out as NSString).appendingPathComponent("shards"))
        }
        communicator.barrier()
        if append { appendBase = try openAppendBase() }
        try AtomicFile.createDirectory(workDir)
        let fp = fingerprint
        // Phase 1.
        var failures: [Failure] = []
        var pending: [Int] = []
        var skipped = 0
        let comm = communicator
        for (i, it) in items.enumerated() where i % comm.size == comm.rank {
            if let w = try? JSON.decode(VideoWork.self, from: workPath(it.id, ".json")), w.fingerprint == fp,
               FileManager.default.fileExists(atPath: workPath(it.id, ".features.npy")),
               !recipe.audio.enabled || FileManager.default.fileExists(atPath: workPath(it.id, ".audio.npy")),
               !recipe.store.audio || FileManager.default.fileExists(atPath: workPath(it.id, ".audio_mel.npy")) {
                skipped += 1
            } else {
                pending.append(i)
            }
        }
        let mine = (0..<items.count).filter { $0 % comm.size == comm.rank }.count
        let progress = ProgressReporter(label: comm.size > 1 ? "tokenize (rank \(comm.rank))" : "tokenize", total: mine, unit: "videos",
                                        enabled: showProgress)
        if skipped > 0 { progress.advance(skipped) }
        let lock = NSLock()
        let todo = pending
        nonisolated(unsafe) var next = 0
        nonisolated(unsafe) var phase1Failures: [Failure] = []
        let workers = min(comm.size > 1 ? min(recipe.workers, Threads.count) : recipe.workers, max(pending.count, 1))
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            let descriptor = ClipDescriptor()
            while true {
                lock.lock()
                guard next < todo.count else { lock.unlock(); break }
                let item = items[todo[next]]
                next += 1
                lock.unlock()
                var clips = 0
                do {
                    clips = try processVideo(item, descriptor: descriptor, fingerprint: fp)
                } catch {
                    let (file, stage) = Self.locate(error, item: item)
                    lock.lock()
                    phase1Failures.append(Failure(id: item.id, file: file, stage: stage, error: "\(error)"))
                    lock.unlock()
                }
                progress.advance(1, counters: ["clips": Double(clips)])
            }
        }
        progress.finish()
        failures = phase1Failures
        if comm.size > 1 {
            // Every rank learns which videos failed; rank 0 collects the reasons.
            try JSON.write(failures, to: (workDir as NSString).appendingPathComponent("failures.rank\(comm.rank).json"))
            var failed = [Int64](repeating: 0, count: items.count)
            let byID = Dictionary(uniqueKeysWithValues: items.enumerated().map { ($1.id, $0) })
            for f in failures { if let i = byID[f.id] { failed[i] = 1 } }
            comm.allreduceSum(&failed)
            var skippedAll = [Int64(skipped)]
            comm.allreduceSum(&skippedAll)
            skipped = Int(skippedAll[0])
            if comm.isRoot {
                failures = []
                for r in 0..<comm.size {
                    failures += try JSON.decode([Failure].self, from: (workDir as NSString).appendingPathComponent("failures.rank\(r).json"))
                }
            }
            let failedSet = Set(items.indices.filter { failed[$0] > 0 }.map { items[$0].id })
            failures = failures.filter { failedSet.contains($0.id) }
            phase1Failed = failedSet
        } else {
            phase1Failed = Set(failures.map(\.id))
        }
        failures.sort { $0.id < $1.id }
        let good = items.filter { !phase1Failed.contains($0.id) }
        if good.isEmpty && comm.isRoot && !items.isEmpty {
            // Nothing to build a corpus from: say why, here and in failures.jsonl.
            try writeFailures(failures)
            for f in failures.prefix(20) { logLine("  \(f.id): \(f.error)") }
            if failures.count > 20 { logLine("  ... and \(failures.count - 20) more") }
            let first = failures.first.map { " (first: \($0.id): \($0.error))" } ?? ""
            throw VideoBertError("every video failed (\(failures.count) of \(items.count))\(first); the reasons are in \((out as NSString).appendingPathComponent("failures.jsonl"))", file: out)
        }

        // Phase 2: the visual vocabulary (and the audio vocabulary).
        let appended = try appendBase.map { try appendVocabularies($0) }
        let (vocab, reused) = try appended.map { ($0.0, true) } ?? visualVocabulary(for: good)
        let audioVocab = try appended.map { $0.1 } ?? (recipe.audio.enabled ? try audioVocabulary(for: good) : nil)

        // Phase 3: each rank gives its videos their visual words (work/<id>.words.npy); then
        // rank 0 aligns, splits and writes the corpus.
        for (i, it) in items.enumerated() where i % comm.size == comm.rank && !phase1Failed.contains(it.id) {
            let arr = try NPY.read(clusteringFeaturesPath(it.id))
            let feats = try arr.floats()
            let words = vocab.assign(feats, rows: arr.shape[0], workers: comm.size > 1 ? 1 : Threads.count).leaves
            try NPY.write(words, shape: [words.count], to: workPath(it.id, ".words.npy"))
            if let audioVocab {
                let a = try NPY.read(workPath(it.id, ".audio.npy"))
                let audioWords = audioVocab.assign(try a.floats(), rows: a.shape[0], workers: comm.size > 1 ? 1 : Threads.count).leaves
                try NPY.write(audioWords, shape: [audioWords.count], to: workPath(it.id, ".audio_words.npy"))
            }
        }
        comm.barrier()
        if append || shardCount > 1 {
            return try writeShards(good: good, failures: failures, vocab: vocab, reused: reused, audioVocab: audioVocab, skipped: skipped, t0: t0)
        }
        guard comm.isRoot else {
            let summary = Summary(videos: items.count, succeeded: good.count, failed: phase1Failed.count, skipped: skipped, clips: 0,
                                  segments: 0, textTokens: 0, visualWords: vocab.leaves, vocabularyReused: reused,
                                  inertia: vocab.info.inertia, seconds: Date().timeIntervalSince(t0), splits: [:], out: out)
            return (summary, [])
        }
        let splits = CorpusSource.assignSplits(good, val: recipe.split.val, test: recipe.split.test, seed: recipe.split.seed)
        let storeFrameShape = recipe.store.frames ? [recipe.store.framesPerClip, recipe.store.frameSize, recipe.store.frameSize, 3] : nil
        let builder = try CorpusBuilder(dir: out, featureDim: recipe.store.features ? vocab.dim : nil, frameShape: storeFrameShape,
                                        audioWords: audioVocab != nil, audioShape: recipe.store.audio ? try audioPatchShape() : nil,
                                        featureDType: recipe.store.featuresDType == "float16" ? .float16 : .float32)
        for it in good {
            try builder.append(try tokenizedVideo(it, split: splits[it.id] ?? "train", audio: audioVocab != nil))
        }
        let textVocabOut = (out as NSString).appendingPathComponent("text_vocab.txt")
        try AtomicFile.write(try Data(contentsOf: URL(fileURLWithPath: textVocabPath)), to: textVocabOut)
        let textVocabInfo = CorpusIndex.TextVocab(file: "text_vocab.txt", size: tokenizer.vocabulary.count, cased: recipe.text.cased,
                                                  fingerprint: try CorpusBuilder.fingerprint(of: textVocabOut))
        let visualJSON = (out as NSString).appendingPathComponent("vocab/vocab.json")
        let visualInfo = CorpusIndex.VisualVocab(folder: "vocab", words: vocab.leaves, branching: vocab.branching, depth: vocab.depth, dim: vocab.dim,
                                                 fingerprint: FileManager.default.fileExists(atPath: visualJSON) ? try CorpusBuilder.fingerprint(of: visualJSON) : nil)
        let clipSeconds = recipe.features.source == "npy" ? recipe.features.secondsPerRow : Double(recipe.framesPerClip) / recipe.frames.fps
        try writeFailures(failures)
        let recipePath = (out as NSString).appendingPathComponent("recipe.yaml")
        try AtomicFile.write(try RecipeLoader.yaml(recipe), to: recipePath)
        let index = try builder.finish(textVocab: textVocabInfo, visualVocab: visualInfo, clipSeconds: clipSeconds,
                                       fps: recipe.frames.fps, featureSource: recipe.features.source, featureDim: vocab.dim,
                                       failures: failures.count, recipeFingerprint: try CorpusBuilder.fingerprint(of: recipePath),
                                       audioVocab: audioVocab.map { CorpusIndex.VisualVocab(folder: "audio_vocab", words: $0.leaves, branching: $0.branching,
                                                                                             depth: $0.depth, dim: $0.dim) })
        // Shards of an earlier sharded run in this folder are not part of this corpus.
        try? FileManager.default.removeItem(atPath: (out as NSString).appendingPathComponent("shards"))
        let summary = Summary(videos: items.count, succeeded: good.count, failed: failures.count, skipped: skipped,
                              clips: index.counts.clips, segments: index.counts.segments, textTokens: index.counts.textTokens,
                              visualWords: vocab.leaves, vocabularyReused: reused, inertia: vocab.info.inertia,
                              seconds: Date().timeIntervalSince(t0), splits: index.counts.splits, out: out)
        return (summary, failures)
    }

    /// The visual vocabulary: `kmeans.vocab` when given; else the one in `out/vocab` when it was
    /// fitted on the same videos with the same settings; else a new fit over the work files.
    func visualVocabulary(for good: [VideoItem]) throws -> (VisualVocabulary, Bool) {
        let k = recipe.kmeans
        if !k.vocab.isEmpty {
            let v = try VisualVocabulary.load(from: k.vocab)
            return (v, true)
        }
        guard !good.isEmpty else { throw VideoBertError("no video could be processed, so there is nothing to fit a vocabulary on", file: out) }
        let vocabDir = (out as NSString).appendingPathComponent("vocab")
        let comm = communicator
        // Rank 0 writes any centered features first; the others then find them.
        if comm.isRoot { for g in good { _ = try clusteringFeaturesPath(g.id) } }
        comm.barrier()
        let paths = try good.map { try clusteringFeaturesPath($0.id) }
        let rows = try paths.map { try NPY.readHeader($0).shape.first ?? 0 }
        let key = ["v1", fingerprint, recipe.features.center, "\(k.branching)", "\(k.depth)", "\(k.iters)", "\(k.seed)", "\(k.maxPoints)"]
            + zip(good, rows).map { "\($0.id):\($1)" }
        let fitKey = CorpusBuilder.fnv1a(Array(key.joined(separator: "|").utf8))
        let keyPath = (vocabDir as NSString).appendingPathComponent("fit_key.txt")
        var reuse = [Double(0)]
        if comm.isRoot, let saved = try? String(contentsOfFile: keyPath, encoding: .utf8), saved == fitKey,
           (try? VisualVocabulary.load(from: vocabDir)) != nil {
            reuse[0] = 1
        }
        reuse.withUnsafeMutableBufferPointer { comm.allreduceMax($0) }
        if reuse[0] > 0 { return (try VisualVocabulary.load(from: vocabDir), true) }
        let source = try NPYFeatureFiles(paths: paths, name: workDir)
        var hk = HierarchicalKMeans(branching: k.branching, depth: k.depth, iterations: k.iters, seed: UInt64(k.seed),
                                    maxPoints: k.maxPoints > 0 ? k.maxPoints : nil)
        hk.showProgress = showProgress && comm.isRoot
        hk.workers = comm.size > 1 ? Threads.count : recipe.workers
        hk.communicator = comm
        let vocab: VisualVocabulary
        do {
            vocab = try hk.fit(source)
        } catch let e as VideoBertError {
            throw VideoBertError(e.message + " (recipe: kmeans.branching / kmeans.depth)", file: e.file)
        }
        if comm.isRoot {
            try vocab.save(to: vocabDir)
            try AtomicFile.write(fitKey, to: keyPath)
        }
        comm.barrier()
        return (vocab, false)
    }

    /// The audio vocabulary: hierarchical k-means (`audio.branching`, `audio.depth`) over the
    /// audio descriptors of every clip of the good videos, saved to `out/audio_vocab`.
    func audioVocabulary(for good: [VideoItem]) throws -> VisualVocabulary {
        guard !good.isEmpty else { throw VideoBertError("no video could be processed, so there is nothing to fit an audio vocabulary on", file: out) }
        let a = recipe.audio
        let comm = communicator
        let source = try NPYFeatureFiles(paths: good.map { workPath($0.id, ".audio.npy") }, name: workDir)
        var hk = HierarchicalKMeans(branching: a.branching, depth: a.depth, iterations: a.iters, seed: UInt64(a.seed),
                                    maxPoints: recipe.kmeans.maxPoints > 0 ? recipe.kmeans.maxPoints : nil)
        hk.showProgress = showProgress && comm.isRoot
        hk.workers = comm.size > 1 ? Threads.count : recipe.workers
        hk.communicator = comm
        let vocab: VisualVocabulary
        do {
            vocab = try hk.fit(source)
        } catch let e as VideoBertError {
            throw VideoBertError(e.message + " (recipe: audio.branching / audio.depth)", file: e.file)
        }
        if comm.isRoot { try vocab.save(to: (out as NSString).appendingPathComponent("audio_vocab")) }
        comm.barrier()
        return vocab
    }

    /// Seconds of a clip: frames per clip / fps for decoded video, seconds per row for imported features.
    var nominalClipSeconds: Double {
        recipe.features.source == "npy" ? recipe.features.secondsPerRow : Double(recipe.framesPerClip) / recipe.frames.fps
    }

    /// Shape of a stored clip's log-mel spectrogram (`store.audio`): [frames, n_mels] of
    /// `nominalClipSeconds` of audio with the descriptor's settings.
    func audioPatchShape() throws -> [Int] {
        let s = LogMelSettings()
        let samples = Int((nominalClipSeconds * Double(s.sampleRate)).rounded())  // as audioDescriptors cuts
        let frames = s.frameCount(samples: samples)
        guard frames > 0 else {
            throw VideoBertError(String(format: "store.audio: a clip of %.3f s is shorter than one audio window (%d samples)", nominalClipSeconds, s.nFFT), file: "recipe")
        }
        return [frames, s.nMels]
    }

    /// Each clip's audio feature and, with `store.audio`, its log-mel spectrogram.
    /// - `audio.source: builtin`: the built-in audio descriptor [clips, 2·n_mels] of the file's
    ///   audio (mono at the descriptor's rate) cut by the clips' times; zeros where there is no
    ///   audio, so a file without an audio stream gives silence's descriptor.
    /// - `npy`: the rows of `<audio.dir>/<id>.npy` overlapping each clip, averaged with the
    ///   overlap as weight (zeros for a clip no row reaches).
    /// The spectrogram covers `nominalClipSeconds` from each clip's start: [clips, frames, n_mels].
    func audioFeatures(_ item: VideoItem, starts: [Double], ends: [Double]) throws -> (values: [Float], dim: Int, mel: [Float]?) {
        let settings = LogMelSettings()
        var audio: DecodedAudio? = nil
        func decoded() throws -> DecodedAudio {
            if let audio { return audio }
            guard let video = item.video else {
                throw VideoBertError("audio needs the video file, and none was found for '\(item.id)'", file: nil)
            }
            let a = try AudioReader(path: video, sampleRate: settings.sampleRate).readAll()
            audio = a
            return a
        }
        var values: [Float] = []
        let dim: Int
        if recipe.audio.source == "npy" {
            let path = (recipe.audio.dir as NSString).appendingPathComponent(item.id + ".npy")
            let f = try ImportedFeatures(path: path, videoID: item.id, secondsPerRow: recipe.audio.secondsPerRow)
            dim = f.dim
            values = [Float](repeating: 0, count: starts.count * dim)
            for (c, (start, end)) in zip(starts, ends).enumerated() {
                let first = max(0, Int((start / f.secondsPerRow).rounded(.down)))
                var weight = 0.0
                var sum = [Double](repeating: 0, count: dim)
                var r = first
                while r < f.rows {
                    let span = f.span(ofRow: r)
                    if span.start >= end { break }
                    let overlap = min(end, span.end) - max(start, span.start)
                    if overlap > 0 {
                        weight += overlap
                        for k in 0..<dim { sum[k] += overlap * Double(f.values[r * dim + k]) }
                    }
                    r += 1
                }
                if weight > 0 { for k in 0..<dim { values[c * dim + k] = Float(sum[k] / weight) } }
            }
        } else {
            let descriptor = try AudioDescriptor(settings: settings)
            dim = descriptor.dimension
            let a = try decoded()
            values.reserveCapacity(starts.count * dim)
            for (start, end) in zip(starts, ends) {
                values += descriptor.compute(a.samples(from: start, to: end))
            }
        }
        var mel: [Float]? = nil
        if recipe.store.audio {
            let shape = try audioPatchShape()
            let spectrogram = try LogMelSpectrogram(settings: settings)
            let a = try decoded()
            var all: [Float] = []
            all.reserveCapacity(starts.count * shape[0] * shape[1])
            let count = Int((nominalClipSeconds * Double(settings.sampleRate)).rounded())
            for start in starts {
                // A fixed number of samples: every patch has shape[0] frames.
                all += spectrogram.compute(a.samples(from: start, count: count))
            }
            mel = all
        }
        return (values, dim, mel)
    }

    /// The features a video's clips are clustered and assigned by: the phase-1 features, or with
    /// `features.center: video` those minus the video's mean (written once to work/<id>.centered.npy).
    func clusteringFeaturesPath(_ id: String) throws -> String {
        let raw = workPath(id, ".features.npy")
        guard recipe.features.center == "video" else { return raw }
        let centered = workPath(id, ".centered.npy")
        let rawDate = (try? FileManager.default.attributesOfItem(atPath: raw)[.modificationDate] as? Date) ?? nil
        let cenDate = (try? FileManager.default.attributesOfItem(atPath: centered)[.modificationDate] as? Date) ?? nil
        if let r = rawDate, let c = cenDate, c >= r { return centered }
        let arr = try NPY.read(raw)
        guard arr.shape.count == 2 else { throw VideoBertError("work features must be [clips, dim]", file: raw) }
        let (n, dim) = (arr.shape[0], arr.shape[1])
        var f = try arr.floats()
        var mean = [Double](repeating: 0, count: dim)
        for r in 0..<n { for k in 0..<dim { mean[k] += Double(f[r * dim + k]) } }
        for k in 0..<dim { mean[k] /= Double(max(n, 1)) }
        for r in 0..<n { for k in 0..<dim { f[r * dim + k] -= Float(mean[k]) } }
        try NPY.write(f, shape: [n, dim], to: centered)
        return centered
    }

    func writeFailures(_ failures: [Failure]) throws {
        var text = ""
        for f in failures { text += try JSON.string(f) + "\n" }
        try AtomicFile.write(text, to: (out as NSString).appendingPathComponent("failures.jsonl"))
    }

    /// Which file and stage an error belongs to, for failures.jsonl.
    static func locate(_ error: Error, item: VideoItem) -> (String?, String) {
        if let e = error as? VideoBertError, let f = e.file {
            if f == item.video { return (f, "video") }
            if case .file(let t) = item.transcript, t == f { return (f, "transcript") }
            return (f, "features")
        }
        return (item.video, "video")
    }

    // MARK: - phase 1

    /// Decodes (or imports) one video's clips and tokenizes its transcript; returns the clip count.
    func processVideo(_ item: VideoItem, descriptor: ClipDescriptor, fingerprint fp: String) throws -> Int {
        // Transcript first: cheap, and a bad one fails the video before any decoding.
        let transcript: Transcript
        switch item.transcript {
        case .none: transcript = Transcript(cues: [])
        case .cues(let t): transcript = t
        case .file(let path):
            transcript = path.lowercased().hasSuffix(".json") ? try CaptionJSON.parseSingleFile(path) : try SubtitleParser.parseFile(path)
        }
        let sentences = splitter.split(transcript) { self.tokenizer.encode($0).count }
        let workSentences = sentences.map { WorkSentence(start: $0.start, end: $0.end, text: $0.text, ids: tokenizer.encode($0.text)) }
            .filter { !$0.ids.isEmpty }

        var features: [Float] = []
        var starts: [Double] = [], ends: [Double] = []
        var frames: [UInt8] = []
        var dim = ClipDescriptor.dimension
        var duration = 0.0
        let storeFrames = recipe.store.frames
        let fpc = recipe.store.framesPerClip, side = recipe.store.frameSize

        if recipe.features.source == "npy" {
            let path = (recipe.features.dir as NSString).appendingPathComponent(item.id + ".npy")
            let f = try ImportedFeatures(path: path, videoID: item.id, secondsPerRow: recipe.features.secondsPerRow)
            features = f.values
            dim = f.dim
            for r in 0..<f.rows { let s = f.span(ofRow: r); starts.append(s.start); ends.append(s.end) }
            duration = Double(f.rows) * f.secondsPerRow
            if storeFrames {
                guard let video = item.video else {
                    throw VideoBertError("store.frames needs the video file, and none was found for '\(item.id)'", file: path)
                }
                frames = try decodeFrames(video, clipStarts: starts, clipEnds: ends, descriptor: nil).frames
            }
        } else {
            guard let video = item.video else {
                throw VideoBertError("no video file for '\(item.id)'", file: nil)
            }
            let r = try decodeFrames(video, clipStarts: nil, clipEnds: nil, descriptor: descriptor)
            starts = r.starts; ends = r.ends; frames = r.frames; duration = r.duration; features = r.features
        }
        guard !starts.isEmpty else {
            throw VideoBertError(String(format: "video is shorter than one clip (%.2f s)", duration), file: item.video)
        }
        _ = fpc; _ = side
        // Write the work files; the .json last, as the mark of a finished video.
        if recipe.audio.enabled {
            let a = try audioFeatures(item, starts: starts, ends: ends)
            if let mel = a.mel {
                let shape = try audioPatchShape()
                try NPY.write(mel, shape: [starts.count] + shape, to: workPath(item.id, ".audio_mel.npy"))
            }
            try NPY.write(a.values, shape: [starts.count, a.dim], to: workPath(item.id, ".audio.npy"))
        }
        try NPY.write(features, shape: [starts.count, dim], to: workPath(item.id, ".features.npy"))
        if storeFrames {
            try NPY.write(frames, shape: [starts.count, fpc, side, side, 3], to: workPath(item.id, ".frames.npy"))
        }
        let work = VideoWork(id: item.id, fingerprint: fp, duration: duration, clipStarts: starts, clipEnds: ends,
                             featureDim: dim, sentences: workSentences, hasFrames: storeFrames)
        try JSON.write(work, to: workPath(item.id, ".json"), pretty: false)
        return starts.count
    }

    struct Decoded { var starts: [Double] = []; var ends: [Double] = []; var frames: [UInt8] = []; var features: [Float] = []; var duration = 0.0 }

    /// Decodes at `frames.fps` and `frames.size`. Without given clip spans, clips are consecutive
    /// runs of round(fps × clip_seconds) frames (a last run of at least half that is kept); with
    /// them (imported features), frames are assigned to the clip whose span holds their time.
    /// Per clip: the descriptor (when `descriptor` is given) and `store.frames_per_clip` evenly
    /// spaced frames resized to `store.frame_size` (when frames are stored).
    func decodeFrames(_ path: String, clipStarts: [Double]?, clipEnds: [Double]?, descriptor: ClipDescriptor?) throws -> Decoded {
        guard let size = recipe.frameSize else { throw VideoBertError("bad frames.size", file: "recipe") }
        let reader = try VideoReader(path: path, threads: recipe.frames.decoderThreads)
        let fps = FrameRate(approximating: recipe.frames.fps)
        let perClip = recipe.framesPerClip
        let frameBytes = size.width * size.height * 3
        let storeFrames = recipe.store.frames
        let fpc = recipe.store.framesPerClip, side = recipe.store.frameSize
        var result = Decoded()
        var clipBuffer = [UInt8](repeating: 0, count: 0)
        var clipFrameCount = 0
        var clipFrameTimes: [Double] = []
        var currentClip = 0
        var featureRow = [Float](repeating: 0, count: ClipDescriptor.dimension)
        var small = [UInt8](repeating: 0, count: side * side * 3)
        let spans = clipStarts.map { Array(zip($0, clipEnds!)) }
        var storedFrames = [UInt8]()
        if let spans { storedFrames = [UInt8](repeating: 0, count: spans.count * fpc * side * side * 3) }
        var lastTime = 0.0

        func finishClip(start: Double, end: Double) {
            let n = clipFrameCount
            guard n > 0 else { return }
            if let descriptor {
                clipBuffer.withUnsafeBufferPointer { b in
                    featureRow.withUnsafeMutableBufferPointer { o in
                        descriptor.compute(frames: UnsafeBufferPointer(rebasing: b[0..<(n * frameBytes)]), count: n,
                                           height: size.height, width: size.width, out: o)
                    }
                }
                result.features += featureRow
            }
            if storeFrames {
                for j in 0..<fpc {
                    let src = min(n - 1, max(0, Int((Double(j) + 0.5) * Double(n) / Double(fpc))))
                    clipBuffer.withUnsafeBufferPointer { b in
                        small.withUnsafeMutableBufferPointer { d in
                            FrameResize.area(src: UnsafeBufferPointer(rebasing: b[(src * frameBytes)..<((src + 1) * frameBytes)]),
                                             srcWidth: size.width, srcHeight: size.height, dst: d, dstWidth: side, dstHeight: side)
                        }
                    }
                    if spans != nil {
                        let o = (currentClip * fpc + j) * side * side * 3
                        storedFrames.replaceSubrange(o..<(o + small.count), with: small)
                    } else {
                        result.frames += small
                    }
                }
            }
            if spans == nil { result.starts.append(start); result.ends.append(end) }
            clipFrameCount = 0
            clipFrameTimes.removeAll(keepingCapacity: true)
        }

        try reader.forEachFrame(fps: fps, width: size.width, height: size.height) { frame in
            lastTime = frame.time + 1 / recipe.frames.fps
            let clipIndex: Int
            if let spans {
                // Imported features: the clip whose span holds this frame.
                var k = currentClip
                while k < spans.count && frame.time >= spans[k].1 { k += 1 }
                guard k < spans.count else { return }
                if k != currentClip { finishClip(start: 0, end: 0); currentClip = k }
                clipIndex = k
            } else {
                clipIndex = frame.index / perClip
                if clipIndex != currentClip {
                    // Clip times from its first frame's timestamp (frame i is at i / F, except
                    // when a single-stream file starts late).
                    let start = clipFrameTimes.first ?? Double(currentClip * perClip) / recipe.frames.fps
                    finishClip(start: start, end: start + Double(perClip) / recipe.frames.fps)
                    currentClip = clipIndex
                }
            }
            let need = (clipFrameCount + 1) * frameBytes
            if clipBuffer.count < need { clipBuffer.append(contentsOf: [UInt8](repeating: 0, count: need - clipBuffer.count)) }
            clipBuffer.withUnsafeMutableBufferPointer { b in
                _ = UnsafeMutableBufferPointer(rebasing: b[(clipFrameCount * frameBytes)..<need]).initialize(from: frame.pixels)
            }
            clipFrameCount += 1
            clipFrameTimes.append(frame.time)
        }
        // The last, possibly partial clip: kept when it has at least half its frames.
        if spans != nil {
            finishClip(start: 0, end: 0)
            result.frames = storedFrames
        } else if clipFrameCount * 2 >= perClip {
            let start = clipFrameTimes.first ?? Double(currentClip * perClip) / recipe.frames.fps
            finishClip(start: start, end: start + Double(clipFrameCount) / recipe.frames.fps)
        }
        result.duration = reader.duration ?? lastTime
        return result
    }
}
