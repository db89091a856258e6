// BERT's input embeddings (Devlin et al. 2019, §3 "Input/Output Representations"; HF BertEmbeddings):
// the sum of a token embedding, a learned absolute position embedding and a segment
// (token_type) embedding. BERT then applies LayerNorm and dropout; the caller does that with
// `layerNormForward` and `dropoutForward`, as HF does.
//
// Shape letters: B batch, T sequence length, C hidden size, V vocabulary, P maximum positions,
// S segment types (2 in BERT: 0 text, 1 video in videobert).

/// out[b,t,:] = wordEmbeddings[inputIds[b,t],:] + positionEmbeddings[t,:] + tokenTypeEmbeddings[tokenTypeIds[b,t],:]
///
/// Positions are 0..<T (HF's default `position_ids`, padding at the end of each sequence).
/// - Parameters:
///   - out: [B, T, C] the summed embeddings (written).
///   - inputIds: [B, T] token ids, each in 0..<V, or negative for a position without a word
///     embedding (its input vector is added by the caller: BertForPreTraining's input-embedding
///     rows). The caller validates ids (the batcher and the `embed` command check them against
///     the vocabulary, with a message naming the file).
///   - tokenTypeIds: [B, T] segment ids, each in 0..<S; nil means all 0 (HF's default).
///   - wordEmbeddings: [V, C] `embeddings.word_embeddings.weight`.
///   - positionEmbeddings: [P, C] with T ≤ P, `embeddings.position_embeddings.weight`.
///   - tokenTypeEmbeddings: [S, C] `embeddings.token_type_embeddings.weight`.
public func embeddingsForward(out: UnsafeMutablePointer<Float>,
                              inputIds: UnsafePointer<Int32>,
                              tokenTypeIds: UnsafePointer<Int32>?,
                              wordEmbeddings: UnsafePointer<Float>,
                              positionEmbeddings: UnsafePointer<Float>,
                              tokenTypeEmbeddings: UnsafePointer<Float>,
                              B: Int, T: Int, C: Int) {
    Parallel.forEachRange(B * T, grain: max(1, 16_384 / max(C, 1))) { rows in
        for bt in rows {
            let t = bt % T
            let id = Int(inputIds[bt])
            let position = positionEmbeddings + t * C
            let segment = tokenTypeEmbeddings + Int(tokenTypeIds?[bt] ?? 0) * C
            let o = out + bt * C
            if id >= 0 {
                let word = wordEmbeddings + id * C
                for c in 0..<C { o[c] = word[c] + position[c] + segment[c] }
            } else {
                for c in 0..<C { o[c] = position[c] + segment[c] }
            }
        }
    }
}

/// Backward of `embeddingsForward`: scatter-adds dout into the three tables' gradients.
///
/// HF's word embedding is `nn.Embedding(V, C, padding_idx=pad_token_id)`: the padding token's
/// row never receives a gradient (it stays at its initial zeros). Pass `paddingId: 0` (BERT's
/// [PAD]) to match; positions holding padding still contribute to the position and segment tables.
///
/// Workers split the C columns (not the rows), so rows sharing a token id never race and the
/// sums run in row order on any number of threads (deterministic).
/// - Parameters:
///   - dwordEmbeddings: [V, C] accumulated (+=); rows of ids absent from the batch are untouched.
///   - dpositionEmbeddings: [P, C] accumulated (+=) in rows 0..<T.
///   - dtokenTypeEmbeddings: [S, C] accumulated (+=).
///   - dout: [B, T, C] gradient of the summed embeddings.
///   - inputIds, tokenTypeIds: [B, T] as given to forward.
///   - paddingId: the id whose word-embedding row gets no gradient, or nil for none. Negative
///     ids (positions without a word embedding) give no word-embedding gradient either.
public func embeddingsBackward(dwordEmbeddings: UnsafeMutablePointer<Float>,
                               dpositionEmbeddings: UnsafeMutablePointer<Float>,
                               dtokenTypeEmbeddings: UnsafeMutablePointer<Float>,
                               dout: UnsafePointer<Float>,
                               inputIds: UnsafePointer<Int32>,
                               tokenTypeIds: UnsafePointer<Int32>?,
                               paddingId: Int32?,
                               B: Int, T: Int, C: Int) {
    let rows = B * T
    let skip = paddingId ?? -1
    // Split columns only when there are enough rows for the work to pay.
    let columnGrain = Parallel.columnGrain(rows: rows, columns: C)
    Parallel.forEachRange(C, grain: columnGrain) { columns in
        let c0 = columns.lowerBound, width = columns.count
        for bt in 0..<rows {
            let g = dout + bt * C + c0
            let id = inputIds[bt]
            let position = dpositionEmbeddings + (bt % T) * C + c0
            let segment = dtokenTypeEmbeddings + Int(tokenTypeIds?[bt] ?? 0) * C + c0
            if id != skip && id >= 0 {
                let word = dwordEmbeddings + Int(id) * C + c0
                for c in 0..<width { word[c] += g[c] }
            }
            for c in 0..<width {
                position[c] += g[c]
                segment[c] += g[c]
            }
        }
    }
}
