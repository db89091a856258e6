import Foundation
import Recipe
import Tensor

/// Sharded corpora (docs/ARCHITECTURE.md §3, "Tokenized corpus"): the arrays of a corpus may live
/// in several folders, `shards/00000`, `shards/00001`, … (the same .npy files as a single-folder
/// corpus, with shard-local positions), listed in order in index.json's `shards` with their
/// counts. index.json keeps one list of videos with global clip and segment ranges, so every
/// reader (`TokenizedCorpus`) sees one corpus: its columns are the shards' columns joined, each
/// shard's offsets and video / clip references shifted by the counts of the shards before it.
///
/// Written by `tokenize` under MPI (each rank writes its own shard; rank 0 writes only index.json),
/// with `--shards N`, and by `tokenize --append` (the new videos become new shards, tokenized
/// with the corpus' own vocabularies). A shard is built under a temporary name and renamed; it
/// is part of the corpus only once index.json lists it.
public enum CorpusShards {
    /// At most this many shards (HowTo100M's 1.2 M videos in shards of 1,000 is 1,200).
    public static let maxShards = 100_000
    /// Bound on any count of index.json's shard list before it is added or compared.
    static let maxCount = 1 << 40

    /// `shards/` + a five-digit number.
    public static func folderName(_ number: Int) -> String { String(format: "shards/%05d", number) }

    /// The folders holding the arrays: the corpus itself, or its shards' folders. Checks the
    /// shard list of index.json before anything is opened: its length, each folder a name this
    /// code writes (`.` or `shards/` + digits: no `..`, no absolute path), present, listed once,
    /// each count in range and the counts adding up to index.json's.
    static func folders(of index: CorpusIndex, corpus path: String, indexPath: String) throws -> [String] {
        guard let shards = index.shards else { return [path] }
        guard (1...maxShards).contains(shards.count) else {
            throw VideoBertError("shards: \(shards.count) entries, expected 1...\(maxShards)", file: indexPath)
        }
        var seen = Set<String>()
        var sums = [0, 0, 0, 0]
        var folders: [String] = []
        for (k, s) in shards.enumerated() {
            let digits = s.folder.hasPrefix("shards/") ? s.folder.dropFirst("shards/".count) : ""
            guard s.folder == "." || (!digits.isEmpty && digits.count <= 9 && digits.allSatisfy({ $0 >= "0" && $0 <= "9" })) else {
                throw VideoBertError("shards[\(k)].folder '\(s.folder.prefix(80))' is not '.' or shards/NNNNN", file: indexPath)
            }
            guard seen.insert(s.folder).inserted else {
                throw VideoBertError("shards[\(k)].folder '\(s.folder)' is listed twice", file: indexPath)
            }
            for (name, v) in [("videos", s.videos), ("clips", s.clips), ("segments", s.segments), ("text_tokens", s.textTokens), ("visual_tokens", s.visualTokens)]
            where !(0...maxCount).contains(v) {
                throw VideoBertError("shards[\(k)].\(name) \(v) is out of range 0...\(maxCount)", file: indexPath)
            }
            sums[0] += s.videos; sums[1] += s.clips; sums[2] += s.segments; sums[3] += s.textTokens
            let folder = s.folder == "." ? path : (path as NSString).appendingPathComponent(s.folder)
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else {
                throw VideoBertError("shards[\(k)]: folder \(s.folder) is missing (an interrupted tokenize or a partial copy?)", file: indexPath)
            }
            folders.append(folder)
        }
        guard sums[0] == index.videos.count, sums[0] == index.counts.videos, sums[1] == index.counts.clips,
              sums[2] == index.counts.segments, sums[3] == index.counts.textTokens else {
            throw VideoBertError("the shards' counts (\(sums[0]) videos, \(sums[1]) clips, \(sums[2]) segments, \(sums[3]) text tokens) do not add up to the corpus' (\(index.videos.count) videos, \(index.counts.clips) clips, \(index.counts.segments) segments, \(index.counts.textTokens) text tokens)", file: indexPath)
        }
        return folders
    }

    /// The joined columns of a sharded corpus.
    struct Columns {
        var textIDs, visualIDs, segmentVideo, clipWords, clipVideo: MappedColumn<Int32>
        var textOffsets, visualOffsets, segmentClips: MappedColumn<Int64>
        var segmentTimes, clipTimes: MappedColumn<Float>
    }

    /// Maps each shard's arrays, checks them against its entry (lengths, offsets from 0 to its
    /// token counts, video and clip references inside the shard, index.json's videos' ranges
    /// inside the shard's), then joins them. Errors name the shard's file.
    static func open(index: CorpusIndex, folders: [String], indexPath: String) throws -> Columns {
        let shards = index.shards ?? []
        var ints: [String: [(column: MappedColumn<Int32>, range: Range<Int>, bias: Int64)]] = [:]
        var longs: [String: [(column: MappedColumn<Int64>, range: Range<Int>, bias: Int64)]] = [:]
        var floats: [String: [MappedColumn<Float>]] = [:]
        var base = (videos: 0, clips: 0, segments: 0, text: 0, visual: 0)
        for (k, (s, folder)) in zip(shards, folders).enumerated() {
            func file(_ name: String) -> String { (folder as NSString).appendingPathComponent(name + ".npy") }
            func arr<T: NPYScalar & BitwiseCopyable>(_ name: String, _: T.Type) throws -> MappedColumn<T> {
                try MappedNPY(path: file(name)).column(T.self)
            }
            let textIDs = try arr("text_ids", Int32.self), textOffsets = try arr("text_offsets", Int64.self)
            let visualIDs = try arr("visual_ids", Int32.self), visualOffsets = try arr("visual_offsets", Int64.self)
            let segmentVideo = try arr("segment_video", Int32.self), segmentTimes = try arr("segment_times", Float.self)
            let segmentClips = try arr("segment_clips", Int64.self)
            let clipWords = try arr("clip_words", Int32.self), clipVideo = try arr("clip_video", Int32.self)
            let clipTimes = try arr("clip_times", Float.self)
            let n = s.segments
            guard segmentVideo.count == n, textOffsets.count == n + 1, visualOffsets.count == n + 1, segmentTimes.count == 2 * n,
                  segmentClips.count == 2 * n, textIDs.count == s.textTokens, visualIDs.count == s.visualTokens,
                  clipWords.count == s.clips, clipVideo.count == s.clips, clipTimes.count == 2 * s.clips else {
                throw VideoBertError("shard \(s.folder)'s arrays do not agree with its entry in index.json (shards[\(k)]: \(s.videos) videos, \(s.clips) clips, \(s.segments) segments)", file: folder)
            }
            for (name, offsets, total) in [("text_offsets", textOffsets, s.textTokens), ("visual_offsets", visualOffsets, s.visualTokens)] {
                guard offsets.first == 0, offsets.last == Int64(total) else {
                    throw VideoBertError("must run from 0 to \(total), runs from \(offsets.first ?? -1) to \(offsets.last ?? -1)", file: file(name))
                }
            }
            for (name, refs) in [("segment_video", segmentVideo), ("clip_video", clipVideo)] {
                if let i = refs.firstIndex(where: { $0 < 0 || Int($0) >= s.videos }) {
                    throw VideoBertError("value \(refs[i]) at position \(i) is outside the shard's videos 0..<\(s.videos)", file: file(name))
                }
            }
            if let i = segmentClips.firstIndex(where: { $0 < 0 || $0 > Int64(s.clips) }) {
                throw VideoBertError("value \(segmentClips[i]) at position \(i) is outside the shard's clips 0...\(s.clips)", file: file("segment_clips"))
            }
            for v in base.videos..<(base.videos + s.videos) {
                let e = index.videos[v]
                guard e.clipBegin >= base.clips, e.clipEnd <= base.clips + s.clips,
                      e.segmentBegin >= base.segments, e.segmentEnd <= base.segments + s.segments else {
                    throw VideoBertError("videos[\(v)] ('\(e.id)'): clip or segment range outside its shard \(s.folder)", file: indexPath)
                }
            }
            let last = k == shards.count - 1
            ints["text_ids", default: []].append((textIDs, 0..<s.textTokens, 0))
            ints["visual_ids", default: []].append((visualIDs, 0..<s.visualTokens, 0))
            ints["clip_words", default: []].append((clipWords, 0..<s.clips, 0))
            ints["segment_video", default: []].append((segmentVideo, 0..<n, Int64(base.videos)))
            ints["clip_video", default: []].append((clipVideo, 0..<s.clips, Int64(base.videos)))
            // Offsets: each shard's first n (its segments' starts), the last shard's end too.
            longs["text_offsets", default: []].append((textOffsets, 0..<(last ? n + 1 : n), Int64(base.text)))
            longs["visual_offsets", default: []].append((visualOffsets, 0..<(last ? n + 1 : n), Int64(base.visual)))
            longs["segment_clips", default: []].append((segmentClips, 0..<(2 * n), Int64(base.clips)))
            floats["segment_times", default: []].append(segmentTimes)
            floats["clip_times", default: []].append(clipTimes)
            base = (base.videos + s.videos, base.clips + s.clips, base.segments + n, base.text + s.textTokens, base.visual + s.visualTokens)
        }
        func i(_ name: String) -> MappedColumn<Int32> { .concatenating(ints[name] ?? []) }
        func l(_ name: String) -> MappedColumn<Int64> { .concatenating(longs[name] ?? []) }
        func f(_ name: String) -> MappedColumn<Float> { .concatenating(floats[name] ?? []) }
        return Columns(textIDs: i("text_ids"), visualIDs: i("visual_ids"), segmentVideo: i("segment_video"), clipWords: i("clip_words"),
                       clipVideo: i("clip_video"), textOffsets: l("text_offsets"), visualOffsets: l("visual_offsets"),
                       segmentClips: l("segment_clips"), segmentTimes: f("segment_times"), clipTimes: f("clip_times"))
    }

    /// The shard entry of a folder written by `CorpusBuilder` (its shard.json, or for `.` the
    /// corpus' own index.json), named `folder` in the new index.
    static func entry(folder: String, path: String, index: CorpusIndex) throws -> CorpusIndex.Shard {
        let visual = try NPY.readHeader((path as NSString).appendingPathComponent("visual_ids.npy")).shape.first ?? 0
        return CorpusIndex.Shard(folder: folder, videos: index.videos.count, clips: index.counts.clips, segments: index.counts.segments,
                                 textTokens: index.counts.textTokens, visualTokens: visual)
    }

    /// `base` (the corpus so far, possibly without shards) with `added` shards after it: each
    /// shard's index (`shard.json`) gives its videos, rebased to global ranges, and its counts.
    static func merge(base: CorpusIndex, basePath: String, added: [(folder: String, index: CorpusIndex)]) throws -> CorpusIndex {
        var out = base
        if out.shards == nil {
            out.shards = base.videos.isEmpty && base.counts.clips == 0 ? [] : [try entry(folder: ".", path: basePath, index: base)]
        }
        for (folder, shard) in added {
            let firstShard = out.shards!.isEmpty
            let clips = out.counts.clips, segments = out.counts.segments
            for var v in shard.videos {
                v.clipBegin += clips; v.clipEnd += clips
                v.segmentBegin += segments; v.segmentEnd += segments
                out.videos.append(v)
            }
            out.shards!.append(try entry(folder: folder, path: (basePath as NSString).appendingPathComponent(folder), index: shard))
            out.counts.videos += shard.counts.videos
            out.counts.clips += shard.counts.clips
            out.counts.segments += shard.counts.segments
            out.counts.textTokens += shard.counts.textTokens
            out.counts.videoOnlySegments += shard.counts.videoOnlySegments
            out.counts.textOnlySegments += shard.counts.textOnlySegments
            for (k, n) in shard.counts.splits { out.counts.splits[k, default: 0] += n }
            if firstShard { out.extras = shard.extras; out.arrays = shard.arrays }
            guard Set(shard.extras) == Set(out.extras) else {
                throw VideoBertError("shard \(folder) stores \(shard.extras.sorted()), the corpus \(out.extras.sorted())", file: basePath)
            }
        }
        return out
    }
}

extension TokenizedCorpus {
    /// The path of array `name` (.npy) in the corpus folder, or in its first shard's folder when
    /// index.json lists shards: for reading a header before the corpus is opened.
    public static func firstArrayPath(_ corpus: String, _ name: String) -> String {
        let indexPath = (corpus as NSString).appendingPathComponent("index.json")
        var folder = corpus
        if let index = try? JSON.decode(CorpusIndex.self, from: indexPath), index.shards != nil,
           let folders = try? CorpusShards.folders(of: index, corpus: corpus, indexPath: indexPath), let first = folders.first {
            folder = first
        }
        return (folder as NSString).appendingPathComponent(name + ".npy")
    }
}

extension CorpusTokenizer {
    /// What `--append` checks before any work: the corpus opens, the recipe is the one it was
    /// tokenized with (recipe.yaml, byte for byte: the first differing line is named), the text
    /// vocabulary is the same file, and no new video id is already in it.
    func openAppendBase() throws -> TokenizedCorpus {
        let corpus = try TokenizedCorpus(path: out)
        let recipePath = (out as NSString).appendingPathComponent("recipe.yaml")
        guard let saved = try InputFile.readIfExists(recipePath, maxBytes: 16 << 20).map({ String(decoding: $0, as: UTF8.self) }) else {
            throw VideoBertError("has no recipe.yaml, so videos cannot be appended with the same settings", file: out)
        }
        let mine = try RecipeLoader.yaml(recipe)
        if mine != saved {
            let a = saved.split(separator: "\n", omittingEmptySubsequences: false), b = mine.split(separator: "\n", omittingEmptySubsequences: false)
            let i = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
            let was = i < a.count ? String(a[i]) : "(end)", now = i < b.count ? String(b[i]) : "(end)"
            throw VideoBertError("--append: the recipe differs from the corpus' (line \(i + 1): corpus '\(was.trimmingCharacters(in: .whitespaces))', now '\(now.trimmingCharacters(in: .whitespaces))'); append with the corpus' own recipe (no --recipe or --set)", file: recipePath)
        }
        if try CorpusBuilder.fingerprint(of: textVocabPath) != corpus.index.textVocab.fingerprint {
            throw VideoBertError("--append: text.vocab is not the text vocabulary the corpus was tokenized with (\(corpus.textVocabPath))", file: textVocabPath)
        }
        let ids = Set(corpus.index.videos.map(\.id))
        if let dup = items.first(where: { ids.contains($0.id) }) {
            throw VideoBertError("--append: video '\(dup.id)' is already in the corpus", file: out)
        }
        var seen = Set<String>()
        if let dup = items.first(where: { !seen.insert($0.id).inserted }) {
            throw VideoBertError("--append: video '\(dup.id)' is listed twice", file: out)
        }
        return corpus
    }

    /// The corpus' own visual (and audio) vocabulary, checked against index.json's fingerprint.
    func appendVocabularies(_ corpus: TokenizedCorpus) throws -> (VisualVocabulary, VisualVocabulary?) {
        let vocab = try VisualVocabulary.load(from: corpus.visualVocabPath)
        guard vocab.leaves == corpus.index.visualVocab.words else {
            throw VideoBertError("has \(vocab.leaves) words, index.json \(corpus.index.visualVocab.words)", file: corpus.visualVocabPath)
        }
        var audio: VisualVocabulary? = nil
        if let a = corpus.index.audioVocab {
            let dir = (out as NSString).appendingPathComponent(a.folder)
            audio = try VisualVocabulary.load(from: dir)
            guard audio?.leaves == a.words else { throw VideoBertError("has \(audio?.leaves ?? 0) words, index.json \(a.words)", file: dir) }
        }
        return (vocab, audio)
    }

    /// One video's corpus rows from its work files (`run`'s phase 3).
    func tokenizedVideo(_ it: VideoItem, split: String, audio: Bool) throws -> TokenizedVideo {
        let w = try JSON.decode(VideoWork.self, from: workPath(it.id, ".json"))
        let words = try NPY.read(workPath(it.id, ".words.npy")).values(Int32.self)
        let feats: [Float]? = recipe.store.features ? try NPY.read(clusteringFeaturesPath(it.id)).floats() : nil
        let clipTimes = zip(w.clipStarts, w.clipEnds).map { (start: $0, end: $1) }
        let segments = Aligner.align(sentences: w.sentences.map { Aligner.TimedText(start: $0.start, end: $0.end, ids: $0.ids) },
                                     clips: clipTimes, maxVideoOnlyClips: recipe.segments.maxVideoOnlyClips)
        var frames: [UInt8]? = nil
        if recipe.store.frames {
            frames = try NPY.read(workPath(it.id, ".frames.npy")).values(UInt8.self)
        }
        let audioWords = audio ? try NPY.read(workPath(it.id, ".audio_words.npy")).values(Int32.self) : nil
        let audioMel: [Float]? = recipe.store.audio ? try NPY.read(workPath(it.id, ".audio_mel.npy")).floats() : nil
        return TokenizedVideo(id: it.id, split: split, source: it.video, duration: w.duration,
                              clipWords: words, clipTimes: clipTimes, segments: segments,
                              features: feats, frames: frames, audioWords: audioWords, audio: audioMel)
    }

    /// Phase 3 of a sharded write: the good videos in `shards` contiguous blocks (so the corpus
    /// lists them in the same order as a single-folder one), shard j written by rank j mod N
    /// under a temporary name and renamed; then rank 0 merges the shards' indexes into index.json
    /// (after the corpus' own shards when appending) and writes it last.
    func writeShards(good: [VideoItem], failures: [Failure], vocab: VisualVocabulary, reused: Bool,
                     audioVocab: VisualVocabulary?, skipped: Int, t0: Date) throws -> (Summary, [Failure]) {
        let comm = communicator
        let base = appendBase?.index
        let shardsDir = (out as NSString).appendingPathComponent("shards")
        // The next shard number: after the highest listed (the root's arrays count as 0).
        let numbers = (base?.shards ?? []).compactMap { Int($0.folder.dropFirst("shards/".count)) }
        let first = base == nil ? 0 : max(1, (numbers.max() ?? 0) + 1)
        let n = max(1, min(shardCount, max(good.count, 1)))
        let splits = CorpusSource.assignSplits(good, val: recipe.split.val, test: recipe.split.test, seed: recipe.split.seed)
        let storeFrameShape = recipe.store.frames ? [recipe.store.framesPerClip, recipe.store.frameSize, recipe.store.frameSize, 3] : nil
        let textInfo = CorpusIndex.TextVocab(file: "text_vocab.txt", size: tokenizer.vocabulary.count, cased: recipe.text.cased,
                                             fingerprint: try CorpusBuilder.fingerprint(of: textVocabPath))
        let visualJSON = (out as NSString).appendingPathComponent("vocab/vocab.json")
        let visualInfo = CorpusIndex.VisualVocab(folder: "vocab", words: vocab.leaves, branching: vocab.branching, depth: vocab.depth, dim: vocab.dim,
                                                 fingerprint: FileManager.default.fileExists(atPath: visualJSON) ? try CorpusBuilder.fingerprint(of: visualJSON) : nil)
        let audioInfo = audioVocab.map { CorpusIndex.VisualVocab(folder: "audio_vocab", words: $0.leaves, branching: $0.branching, depth: $0.depth, dim: $0.dim) }
        let clipSeconds = nominalClipSeconds
        try AtomicFile.createDirectory(shardsDir)
        for j in 0..<n where j % comm.size == comm.rank {
            let folder = (out as NSString).appendingPathComponent(CorpusShards.folderName(first + j))
            let tmp = AtomicFile.temporaryPath(for: folder)
            let builder = try CorpusBuilder(dir: tmp, featureDim: recipe.store.features ? vocab.dim : nil, frameShape: storeFrameShape,
                                            audioWords: audioVocab != nil, audioShape: recipe.store.audio ? try audioPatchShape() : nil,
                                            featureDType: recipe.store.featuresDType == "float16" ? .float16 : .float32)
            for it in good[(j * good.count / n)..<((j + 1) * good.count / n)] {
                try builder.append(try tokenizedVideo(it, split: splits[it.id] ?? "train", audio: audioVocab != nil))
            }
            _ = try builder.finish(textVocab: textInfo, visualVocab: visualInfo, clipSeconds: clipSeconds, fps: recipe.frames.fps,
                                   featureSource: recipe.features.source, featureDim: vocab.dim, failures: 0,
                                   audioVocab: audioInfo, indexName: "shard.json")
            try AtomicFile.commit(temporary: tmp, to: folder)
        }
        comm.barrier()
        guard comm.isRoot else {
            return (Summary(videos: items.count, succeeded: good.count, failed: phase1Failed.count, skipped: skipped, clips: 0, segments: 0,
                            textTokens: 0, visualWords: vocab.leaves, vocabularyReused: reused, inertia: vocab.info.inertia,
                            seconds: Date().timeIntervalSince(t0), splits: [:], out: out), [])
        }
        var added: [(folder: String, index: CorpusIndex)] = []
        for j in 0..<n {
            let name = CorpusShards.folderName(first + j)
            added.append((name, try JSON.decode(CorpusIndex.self, from: ((out as NSString).appendingPathComponent(name) as NSString).appendingPathComponent("shard.json"))))
        }
        let recipePath = (out as NSString).appendingPathComponent("recipe.yaml")
        var index: CorpusIndex
        var allFailures = failures
        if let base {
            index = try CorpusShards.merge(base: base, basePath: out, added: added)
            // failures.jsonl: the corpus' earlier failures, then these.
            let earlier = (try? String(contentsOfFile: (out as NSString).appendingPathComponent("failures.jsonl"), encoding: .utf8)) ?? ""
            let old = earlier.split(separator: "\n").compactMap { try? JSONDecoder().decode(Failure.self, from: Data($0.utf8)) }
            allFailures = old + failures
            index.counts.failures = base.counts.failures + failures.count
        } else {
            let textVocabOut = (out as NSString).appendingPathComponent("text_vocab.txt")
            try AtomicFile.write(try Data(contentsOf: URL(fileURLWithPath: textVocabPath)), to: textVocabOut)
            try AtomicFile.write(try RecipeLoader.yaml(recipe), to: recipePath)
            var empty = CorpusIndex(textVocab: textInfo, visualVocab: visualInfo, clipSeconds: clipSeconds, fps: recipe.frames.fps,
                                    featureSource: recipe.features.source, featureDim: vocab.dim, extras: [], counts: .init(), videos: [],
                                    arrays: [:], recipeFingerprint: try CorpusBuilder.fingerprint(of: recipePath), audioVocab: audioInfo)
            empty.shards = []
            index = try CorpusShards.merge(base: empty, basePath: out, added: added)
            index.counts.failures = failures.count
            if !index.extras.contains("clip_audio_words") { index.audioVocab = nil }
        }
        try writeFailures(allFailures)
        try JSON.write(index, to: (out as NSString).appendingPathComponent("index.json"))
        if base == nil {
            // What an earlier single-folder run left beside index.json is not part of this corpus.
            for name in TokenizedCorpus.arrayDocs.keys { try? FileManager.default.removeItem(atPath: CorpusBuilder.path(out, name)) }
        }
        // Shards of an earlier run that this index does not list.
        let listed = Set((index.shards ?? []).map { ($0.folder as NSString).lastPathComponent })
        for name in (try? FileManager.default.contentsOfDirectory(atPath: shardsDir)) ?? [] where !listed.contains(name) && !name.hasPrefix(".") {
            try? FileManager.default.removeItem(atPath: (shardsDir as NSString).appendingPathComponent(name))
        }
        let c = added.reduce(into: CorpusIndex.Counts()) { acc, s in
            acc.clips += s.index.counts.clips; acc.segments += s.index.counts.segments; acc.textTokens += s.index.counts.textTokens
            for (k, v) in s.index.counts.splits { acc.splits[k, default: 0] += v }
        }
        let summary = Summary(videos: items.count, succeeded: good.count, failed: failures.count, skipped: skipped,
                              clips: c.clips, segments: c.segments, textTokens: c.textTokens,
                              visualWords: vocab.leaves, vocabularyReused: reused, inertia: vocab.info.inertia,
                              seconds: Date().timeIntervalSince(t0), splits: c.splits, out: out)
        return (summary, failures)
    }
}
