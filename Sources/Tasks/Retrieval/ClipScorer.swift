import Backbones
import Foundation
import Model
import Recipe
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
/// and `store.features: true`, and `features.center: none`. The sentence is the segment's
/// WordPieces joined back into text (`WordPieceText.join`: lower-cased as BERT uncased left it;
/// CLIP lower-cases anyway), then CLIP's tokenizer.
public final class ClipScorer: TextVideoScorer {
    public let tower: CLIPTextTower
    public let tokenizer: CLIPTokenizer
    public let backbone: String
    /// The corpus's clip_features.npy, memory-mapped (float32 or float16 on disk).
    let rows: MappedRows
    let dim: Int
    let vocabulary: TextVocabulary

    public var name: String { "cosine of CLIP (\(backbone)) text and video embeddings" }

    /// Checks that `corpus` holds rows of `backbone`'s embedding (see the type's documentation);
    /// errors name the corpus file and the recipe key to change.
    public init(tower: CLIPTextTower, tokenizer: CLIPTokenizer, backbone: String, corpus: TaskCorpus) throws {
        let recipe = (corpus.path as NSString).appendingPathComponent("recipe.yaml")
        if FileManager.default.fileExists(atPath: recipe) {
            if let center = try RecipeLoader.string(at: "features.center", file: recipe), center != "none" {
                throw VideoBertError("its features were centred per video (features.center: \(center)): CLIP scores need the raw embeddings (features.center: none)", file: recipe)
            }
            // Features extracted by `tokenize` with a backbone preset: each video's .json names it.
            if let dir = try RecipeLoader.string(at: "features.dir", file: recipe), !dir.isEmpty,
               let id = corpus.corpus.index.videos.first?.id {
                let json = (dir as NSString).appendingPathComponent(id + ".json")
                if let data = try InputFile.readIfExists(json, maxBytes: 64 << 20),
                   let record = try? JSONDecoder().decode(FeatureRecord.self, from: data), record.backbone != backbone {
                    throw VideoBertError("the corpus's features are \(record.backbone)'s (\(json)), not \(backbone)'s: tokenize with features.source: \(backbone)", file: corpus.path)
                }
            }
        }
        guard case .features(let rows, let dim) = try ClipInputs.load(corpus: corpus.corpus, source: "features") else {
            throw VideoBertError("has no clip_features.npy; tokenize with features.source: \(backbone) and store.features: true", file: corpus.path)
        }
        guard dim == tower.featureDim else {
            throw VideoBertError("its clip features have \(dim) values, \(backbone)'s embedding \(tower.featureDim): tokenize with features.source: \(backbone) and store.features: true", file: corpus.path)
        }
        self.tower = tower
        self.tokenizer = tokenizer
        self.backbone = backbone
        self.rows = rows
        self.dim = dim
        vocabulary = try TextVocabulary.load(corpus.corpus.textVocabPath)
    }

    /// The sentence of a segment, as text.
    public func sentence(_ segment: Int, of corpus: TaskCorpus) -> String {
        WordPieceText.join(corpus.corpus.text(of: segment).map { vocabulary.token($0) ?? "" })
    }

    /// [N, E] unit rows: the segments' mean clip rows.
    public func videoEmbeddings(_ segments: [Int], of corpus: TaskCorpus) -> [Float] {
        var out = [Float](repeating: 0, count: segments.count * dim)
        var clips: [Float] = []
        for (i, s) in segments.enumerated() {
            let (b, e) = (Int(corpus.corpus.segmentClips[2 * s]), Int(corpus.corpus.segmentClips[2 * s + 1]))
            guard e > b else { continue }
            clips.removeAll(keepingCapacity: true)
            rows.appendFloatRows(b..<e, to: &clips)
            for c in 0..<(e - b) { for d in 0..<dim { out[i * dim + d] += clips[c * dim + d] } }
        }
        Self.normalize(&out, dim: dim)
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
        Self.normalize(&out, dim: dim)
        return out
    }

    public func scores(segments: [Int], of corpus: TaskCorpus, progress: ProgressReporter?) throws -> [Float] {
        let t = try textEmbeddings(segments, of: corpus, progress: progress), v = videoEmbeddings(segments, of: corpus)
        let N = segments.count
        var similarity = [Float](repeating: 0, count: N * N)
        similarity.withUnsafeMutableBufferPointer { s in
            BLAS.sgemm(transA: false, transB: true, m: N, n: N, k: dim, a: t, lda: dim, b: v, ldb: dim, beta: 0, c: s.baseAddress!, ldc: N)
        }
        return similarity
    }

    /// Each row divided by its L2 norm (a zero row stays zero).
    static func normalize(_ x: inout [Float], dim: Int) {
        for r in 0..<(x.count / dim) {
            var norm: Float = 0
            for d in 0..<dim { norm += x[r * dim + d] * x[r * dim + d] }
            let inv = norm > 0 ? 1 / norm.squareRoot() : 0
            for d in 0..<dim { x[r * dim + d] *= inv }
        }
    }
}
