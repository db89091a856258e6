import Foundation
import Tensor

/// One timed piece of speech text: an ASR caption line, a subtitle cue, or an annotated step.
public struct Cue: Sendable, Equatable, Codable {
    public var start: Double
    public var end: Double
    public var text: String

    public init(start: Double, end: Double, text: String) {
        self.start = start; self.end = end; self.text = text
    }
}

/// A video's speech as cues in time order.
public struct Transcript: Sendable, Equatable {
    public var cues: [Cue]
    /// Where it came from (for messages).
    public var source: String?

    public init(cues: [Cue], source: String? = nil) {
        self.cues = cues.sorted { ($0.start, $0.end) < ($1.start, $1.end) }
        self.source = source
    }
}
