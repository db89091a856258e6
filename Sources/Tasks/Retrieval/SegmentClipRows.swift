import Backbones
import Foundation
import Recipe
import Tensor
import Tokenize

/// What a dual-encoder scorer (ClipScorer, MILNCEScorer) reads from a corpus: its stored clip
/// rows (`clip_features.npy`, memory-mapped) when they are a backbone's embeddings, a segment's
/// video as the mean of its clip rows, and a segment's sentence as text.
///
/// The checks name the corpus file and the recipe value to change: features not centred
/// (`features.center: none`), extracted by the expected backbone (each video's `.json` beside its
/// features, FeatureExtractor's record: `backbone`, and `pool` when given), stored
/// (`store.features: true`), of the expected width.
struct SegmentClipRows {
    /// The corpus's clip_features.npy rows (every shard's), memory-mapped (float32 or float16 on disk).
    let rows: MappedRows
    let dim: Int
    let vocabulary: TextVocabulary

    /// - Parameters:
    ///   - backbone, pool: what the corpus's feature records must say (pool nil: any).
    ///   - source: the `features.source` that makes such a corpus (named in the errors).
    ///   - what: the embedding's name in errors ("clip-vit-b32's embedding").
    init(corpus: TaskCorpus, backbone: String, pool: String? = nil, source: String, dim expected: Int, what: String) throws {
        let recipe = (corpus.path as NSString).appendingPathComponent("recipe.yaml")
        if FileManager.default.fileExists(atPath: recipe) {
            if let center = try RecipeLoader.string(at: "features.center", file: recipe), center != "none" {
                throw VideoBertError("its features were centred per video (features.center: \(center)): \(what) scores need the raw embeddings (features.center: none)", file: recipe)
            }
            // Features extracted by `tokenize` with a backbone preset: each video's .json names it.
            if let dir = try RecipeLoader.string(at: "features.dir", file: recipe), !dir.isEmpty,
               let id = corpus.corpus.index.videos.first?.id {
                let json = (dir as NSString).appendingPathComponent(id + ".json")
                if let data = try InputFile.readIfExists(json, maxBytes: 64 << 20),
                   let record = try? JSONDecoder().decode(FeatureRecord.self, from: data),
                   record.backbone != backbone || (pool != nil && record.pool != pool) {
                    throw VideoBertError("the corpus's features are \(record.backbone)'s \(record.pool) rows (\(json)), not \(what): tokenize with features.source: \(source)", file: corpus.path)
                }
            }
        }
        guard case .features(let rows, let dim) = try ClipInputs.load(corpus: corpus.corpus, source: "features") else {
            throw VideoBertError("has no clip_features.npy; tokenize with features.source: \(source) and store.features: true", file: corpus.path)
        }
        guard dim == expected else {
            throw VideoBertError("its clip features have \(dim) values, \(what) \(expected): tokenize with features.source: \(source) and store.features: true", file: corpus.path)
        }
        self.rows = rows
        self.dim = dim
        vocabulary = try TextVocabulary.load(corpus.corpus.textVocabPath)
    }

    /// The sentence of a segment, as text: its WordPieces joined back (`WordPieceText.join`,
    /// lower-cased as BERT uncased left it).
    func sentence(_ segment: Int, of corpus: TaskCorpus) -> String {
        WordPieceText.join(corpus.corpus.text(of: segment).map { vocabulary.token($0) ?? "" })
    }

    /// [N, dim]: the mean of each segment's clip rows (zero for a segment without clips).
    func means(_ segments: [Int], of corpus: TaskCorpus) -> [Float] {
        var out = [Float](repeating: 0, count: segments.count * dim)
        var clips: [Float] = []
        for (i, s) in segments.enumerated() {
            let (b, e) = (Int(corpus.corpus.segmentClips[2 * s]), Int(corpus.corpus.segmentClips[2 * s + 1]))
            guard e > b else { continue }
            clips.removeAll(keepingCapacity: true)
            rows.appendFloatRows(b..<e, to: &clips)
            let inv = 1 / Float(e - b)
            for c in 0..<(e - b) { for d in 0..<dim { out[i * dim + d] += clips[c * dim + d] * inv } }
        }
        return out
    }

    /// [T, V] = text [T, dim] · video [V, dim]ᵀ through sgemm.
    static func products(text t: [Float], video v: [Float], dim: Int) -> [Float] {
        let (T, V) = (t.count / dim, v.count / dim)
        var out = [Float](repeating: 0, count: T * V)
        out.withUnsafeMutableBufferPointer { s in
            BLAS.sgemm(transA: false, transB: true, m: T, n: V, k: dim, a: t, lda: dim, b: v, ldb: dim, beta: 0, c: s.baseAddress!, ldc: V)
        }
        return out
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
