import Foundation

/// A sentence of speech with its time span.
public struct Sentence: Sendable, Equatable, Codable {
    public var start: Double
    public var end: Double
    public var text: String

    public init(start: Double, end: Double, text: String) {
        self.start = start; self.end = end; self.text = text
    }
}

/// Turns caption cues into sentences.
///
/// Cues rarely match sentences: ASR output (HowTo100M) comes in 2–5 s fragments without
/// punctuation, subtitles break lines mid-sentence. The cue texts are joined into one stream of
/// words, each word timed by spreading its cue's span over the cue's characters. Then:
/// - with punctuation (`mode` = `.punctuation`, or `.auto` when the text has sentence marks):
///   a sentence ends at a word ending in `.`, `!` or `?` (closing quotes/brackets allowed),
///   except common abbreviations;
/// - always: a sentence also ends before a pause of `pauseSeconds`, and before it would exceed
///   `maxTokens` WordPieces or `maxSeconds` (the VideoBERT paper punctuates ASR with a language
///   model; cutting by length and pauses is the model-free stand-in).
public struct SentenceSplitter: Sendable {
    public enum Mode: String, Codable, Sendable { case auto, punctuation, length }

    public var mode: Mode = .auto
    public var maxTokens = 32
    public var maxSeconds = 12.0
    public var pauseSeconds = 2.0

    public init(mode: Mode = .auto, maxTokens: Int = 32, maxSeconds: Double = 12, pauseSeconds: Double = 2) {
        self.mode = mode; self.maxTokens = maxTokens; self.maxSeconds = maxSeconds; self.pauseSeconds = pauseSeconds
    }

    struct TimedWord { var text: String; var start: Double; var end: Double }

    static let abbreviations: Set<String> = [
        "mr.", "mrs.", "ms.", "dr.", "st.", "vs.", "etc.", "e.g.", "i.e.", "approx.", "min.", "tbsp.", "tsp.", "oz.", "lb.", "lbs.", "no.",
    ]

    /// `tokenCount` gives a word's length in WordPieces (pass `{ _ in 1 }` to count words).
    public func split(_ transcript: Transcript, tokenCount: (String) -> Int) -> [Sentence] {
        let words = Self.timedWords(transcript)
        guard !words.isEmpty else { return [] }
        let usePunctuation: Bool
        switch mode {
        case .punctuation: usePunctuation = true
        case .length: usePunctuation = false
        case .auto:
            let ends = words.reduce(0) { $0 + (Self.endsSentence($1.text) ? 1 : 0) }
            usePunctuation = ends >= max(1, words.count / 60)
        }
        var out: [Sentence] = []
        var current: [TimedWord] = []
        var tokens = 0
        func flush() {
            guard let f = current.first, let l = current.last else { return }
            out.append(Sentence(start: f.start, end: max(l.end, f.start), text: current.map(\.text).joined(separator: " ")))
            current.removeAll(keepingCapacity: true)
            tokens = 0
        }
        for w in words {
            let n = max(1, tokenCount(w.text))
            if let f = current.first, let l = current.last {
                let pause = w.start - l.end >= pauseSeconds
                let tooLong = tokens + n > maxTokens || w.end - f.start > maxSeconds
                if pause || tooLong { flush() }
            }
            current.append(w)
            tokens += n
            if usePunctuation && Self.endsSentence(w.text) { flush() }
        }
        flush()
        return out
    }

    static func endsSentence(_ word: String) -> Bool {
        var w = Substring(word)
        while let last = w.last, "\"')]}»”’".contains(last) { w = w.dropLast() }
        guard let last = w.last, ".!?。！？…".contains(last) else { return false }
        if last == "." && abbreviations.contains(w.lowercased()) { return false }
        return true
    }

    /// Words with times: each cue's span is spread over its characters, and times are kept
    /// non-decreasing when cues overlap.
    static func timedWords(_ transcript: Transcript) -> [TimedWord] {
        var out: [TimedWord] = []
        var floor = -Double.infinity
        for cue in transcript.cues {
            let parts = cue.text.split(whereSeparator: { $0.isWhitespace })
            guard !parts.isEmpty else { continue }
            let totalChars = parts.reduce(0) { $0 + $1.count } + parts.count - 1
            let span = max(cue.end - cue.start, 0)
            var offset = 0
            for p in parts {
                let s = cue.start + span * Double(offset) / Double(totalChars)
                let e = cue.start + span * Double(offset + p.count) / Double(totalChars)
                offset += p.count + 1
                let start = max(s, floor)
                out.append(TimedWord(text: String(p), start: start, end: max(e, start)))
                floor = start
            }
        }
        return out
    }
}
