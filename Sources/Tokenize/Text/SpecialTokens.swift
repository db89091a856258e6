import Foundation
import Tensor

/// BERT's special tokens, looked up by name in the text vocabulary. VideoBERT's text/video
/// separator `[>]` reuses BERT's first unused slot, `[unused0]`.
public struct SpecialTokens: Sendable, Codable, Equatable {
    public var pad: Int32
    public var unk: Int32
    public var cls: Int32
    public var sep: Int32
    public var mask: Int32
    /// `[>]`, between the text and the video.
    public var videoSeparator: Int32
    /// `[>>]` (`[unused1]`), between the video and the audio (nil when the vocabulary has none).
    public var audioSeparator: Int32? = nil

    public init(vocabulary v: TextVocabulary) throws {
        func id(_ t: String) throws -> Int32 {
            guard let i = v.id(of: t) else { throw VideoBertError("the text vocabulary has no \(t) token", file: v.source) }
            return i
        }
        pad = try id("[PAD]"); unk = try id("[UNK]"); cls = try id("[CLS]"); sep = try id("[SEP]"); mask = try id("[MASK]")
        videoSeparator = try id("[unused0]")
        audioSeparator = v.id(of: "[unused1]")
    }

    public init(pad: Int32, unk: Int32, cls: Int32, sep: Int32, mask: Int32, videoSeparator: Int32) {
        self.pad = pad; self.unk = unk; self.cls = cls; self.sep = sep; self.mask = mask; self.videoSeparator = videoSeparator
    }
}
