/// A stretch of a video: the sentence spoken then (possibly empty) and the clips shown then
/// (possibly none). The unit that pretraining examples are built from.
public struct AlignedSegment: Sendable, Equatable, Codable {
    public var start: Double
    public var end: Double
    /// WordPiece ids of the sentence (empty for a video-only segment).
    public var textIDs: [Int32]
    /// Clips of this segment, as indices into the video's clips.
    public var clipBegin: Int
    public var clipEnd: Int

    public var clipCount: Int { clipEnd - clipBegin }
    public var isVideoOnly: Bool { textIDs.isEmpty }
}

/// Pairs sentences with clips (VideoBERT §3.3: "the visual tokens are the clips that occur
/// during the sentence"): a sentence's clips are the clips whose span overlaps its time span.
/// Clips that no sentence overlaps (stretches without speech) become video-only segments of at
/// most `maxVideoOnlyClips` clips. A sentence spoken after the video's last clip keeps its text
/// with no clips (a text-only segment), so no speech is lost.
public enum Aligner {
    public struct TimedText: Sendable {
        public var start: Double
        public var end: Double
        public var ids: [Int32]
        public init(start: Double, end: Double, ids: [Int32]) { self.start = start; self.end = end; self.ids = ids }
    }

    /// - Parameters:
    ///   - sentences: in time order.
    ///   - clips: clip spans in time order, non-overlapping.
    public static func align(sentences: [TimedText], clips: [(start: Double, end: Double)], maxVideoOnlyClips: Int) -> [AlignedSegment] {
        var segments: [AlignedSegment] = []
        var covered = [Bool](repeating: false, count: clips.count)
        var lo = 0
        for s in sentences where !s.ids.isEmpty {
            // First clip ending after the sentence starts (clips are sorted, so advance a cursor;
            // sentences may overlap, so restart from the cursor's earliest candidate).
            while lo < clips.count && clips[lo].end <= s.start { lo += 1 }
            var hi = lo
            while hi < clips.count && clips[hi].start < s.end { hi += 1 }
            // A zero-length sentence inside a clip still gets that clip.
            if hi == lo && lo < clips.count && clips[lo].start <= s.start && s.start < clips[lo].end { hi = lo + 1 }
            for c in lo..<hi { covered[c] = true }
            segments.append(AlignedSegment(start: s.start, end: s.end, textIDs: s.ids, clipBegin: lo, clipEnd: max(hi, lo)))
        }
        // Runs of uncovered clips → video-only segments.
        let cap = max(1, maxVideoOnlyClips)
        var c = 0
        while c < clips.count {
            if covered[c] { c += 1; continue }
            var e = c
            while e < clips.count && !covered[e] && e - c < cap { e += 1 }
            segments.append(AlignedSegment(start: clips[c].start, end: clips[e - 1].end, textIDs: [], clipBegin: c, clipEnd: e))
            c = e
        }
        segments.sort { ($0.start, $0.clipBegin, $0.end) < ($1.start, $1.clipBegin, $1.end) }
        return segments
    }
}
