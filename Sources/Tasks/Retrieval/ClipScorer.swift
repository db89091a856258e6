import Backbones
import Foundation
import Model
import Tensor
import Tokenize

/// Zero-shot text→video scores with CLIP (Radford et al. 2021, https://arxiv.org/abs/2103.00020;
/// for video as CLIP4Clip's parameter-free meanP, Luo et al. 2021, https://arxiv.org/abs/2104.08860
/// §3.2): the cosine of the L2-normalised text embedding (`get_text_features` of the segment's
/// sentence) and video embedding (the mean of the segment's clip rows, each the mean of its
/// frames' `get_image_features`).
///
/// Where the video rows come from: the corpus's own `clip_features.npy`, so the corpus must be
/// tokenized with `features.source: clip-…` (the same preset as the scorer), `features.weights`
/// and `store.features: true`, and `features.center: none` (SegmentClipRows checks). The sentence
/// is the segment's WordPieces joined back into text, then CLIP's tokenizer.
public final class ClipScorer: TextVideoScorer {
    public let tower: CLIPTextTower
    public let tokenizer: CLIPTokenizer
    public let backbone: String
    let rows: SegmentClipRows

    public var name: String { "cosine of CLIP (\(backbone)) text and video embeddings" }

    public init(tower: CLIPTextTower, tokenizer: CLIPTokenizer, backbone: String, corpus: TaskCorpus) throws {
        rows = try SegmentClipRows(corpus: corpus, backbone: backbone, source: backbone, dim: tower.featureDim,
                                   what: "\(backbone)'s embedding")
        self.tower = tower
        self.tokenizer = tokenizer
        self.backbone = backbone
    }

    /// The sentence of a segment, as text.
    public func sentence(_ segment: Int, of corpus: TaskCorpus) -> String { rows.sentence(segment, of: corpus) }

    /// [N, E] unit rows: the segments' mean clip rows.
    public func videoEmbeddings(_ segments: [Int], of corpus: TaskCorpus) -> [Float] {
        var out = rows.means(segments, of: corpus)
        SegmentClipRows.normalize(&out, dim: rows.dim)
        return out
    }

    /// [N, E] unit rows: the segments' sentences through the text tower.
    public func textEmbeddings(_ segments: [Int], of corpus: TaskCorpus, progress: ProgressReporter?) throws -> [Float] {
        var out: [Float] = []
        var start = 0
        while start < segments.count {
            let part = segments[start..<min(segments.count, start + 64)]
            out += try tower.features(part.map { tokenizer.tokenize(sentence($0, of: corpus), contextLength: tower.config.maxPositions) })
            progress?.advance(part.count)
            start += part.count
        }
        SegmentClipRows.normalize(&out, dim: rows.dim)
        return out
    }

    public func scores(segments: [Int], of corpus: TaskCorpus, progress: ProgressReporter?) throws -> [Float] {
        SegmentClipRows.products(text: try textEmbeddings(segments, of: corpus, progress: progress),
                                 video: videoEmbeddings(segments, of: corpus), dim: rows.dim)
    }
}

/// Zero-shot text→video scores with MIL-NCE's S3D (Miech et al. 2020, "End-to-End Learning of
/// Visual Representations from Uncurated Instructional Videos", https://arxiv.org/abs/1912.06430):
/// the dot product of the sentence's 512-d text embedding (S3DText, the `text_module` of
/// s3d_howto100m.pth) and the segment's video embedding, the mean of its clips' 512-d joint
/// embeddings — not normalised, as the reference scores them
/// (https://github.com/antoine77340/S3D_HowTo100M README.md: `torch.matmul(text_output['text_embedding'],
/// video_output['video_embedding'].t())`).
///
/// The rows come from a corpus tokenized with `features.source: s3d-howto100m-joint` (each clip
/// one 30-frame window through S3D-G, then its `fc` into the joint space) and `store.features: true`.
/// Where MIL-NCE's own evaluation runs S3D once over a segment's frames, this averages per-clip
/// embeddings, as VideoCLIP does with the same features.
public final class MILNCEScorer: TextVideoScorer {
    public let text: S3DText
    let rows: SegmentClipRows

    public var name: String { "dot product of MIL-NCE (s3d-howto100m) text and video embeddings" }

    public init(text: S3DText, corpus: TaskCorpus) throws {
        rows = try SegmentClipRows(corpus: corpus, backbone: "s3d-howto100m", pool: "clip-joint", source: "s3d-howto100m-joint",
                                   dim: text.dim, what: "MIL-NCE's joint embedding")
        self.text = text
    }

    public func sentence(_ segment: Int, of corpus: TaskCorpus) -> String { rows.sentence(segment, of: corpus) }

    public func scores(segments: [Int], of corpus: TaskCorpus, progress: ProgressReporter?) throws -> [Float] {
        var t: [Float] = []
        var start = 0
        while start < segments.count {
            let part = segments[start..<min(segments.count, start + 256)]
            t += text.embed(part.map { sentence($0, of: corpus) })
            progress?.advance(part.count)
            start += part.count
        }
        return SegmentClipRows.products(text: t, video: rows.means(segments, of: corpus), dim: rows.dim)
    }
}
