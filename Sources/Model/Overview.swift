// Module Model: the tensor and layer core the BERT model is assembled from (issue 3).
//
// Conventions (llm.c's train_gpt2.c):
// - Layers are pairs of free functions over UnsafeMutablePointer<Float>, `xForward(out:…)` /
//   `xBackward(dinp:…)`. Forward saves what backward needs into caller-owned buffers (mean/rstd,
//   attention probabilities, pre-activations); backward ACCUMULATES (+=) into every gradient, so
//   the caller zeroes activation gradients (Arena.zero) and parameter gradients
//   (ParameterStore.zeroGradients) once per step, and tied or shared weights simply add up.
//   Exception, by name: `softmaxCrossEntropyBackwardInPlace` overwrites the probabilities.
// - Shape letters: B batch, T sequence length, C hidden, NH heads, HS = C/NH, FF intermediate
//   size, V vocabulary (text WordPieces + visual words), P maximum positions, N rows (B·T),
//   M selected rows. Every pointer's shape is in its function's documentation.
// - Matrix work is BLAS.sgemm with transpose flags; elementwise work runs on Parallel's workers.
//   Every threaded reduction splits outputs, so results are bit-identical on any core count.
// - Dropout masks are regenerated from a seed in backward (`dropoutSeed(base:step:site:)` gives
//   one per call site and step), never stored; p = 0 is the identity (evaluation).
//
// The assembled model is BertForPreTraining.swift (config: BertConfig.swift, checkpoints in HF's
// format: BertCheckpoint.swift); tests: BertModelTests (PyTorch parity, finite differences) and
// HFInteropTests (transformers reads ours, we read theirs). Its layer stack is TransformerEncoder
// (L post-LN BERT layers over input embeddings, parameters under a name prefix, activations in the
// caller's arena), which the CBT model (CBT/CBTModel.swift) also uses for its visual and
// cross-modal transformers.
//
// Assembling HF's BertForPreTraining (post-LayerNorm) from these, per step:
//   embeddings:  embeddingsForward → layerNormForward (eps 1e-12) → dropoutForward
//   each layer:  linearForward (fused QKV: query/key/value weights adjacent in the ParameterStore,
//                then the three biases, see Attention.swift) → attentionForward (mask [B, T],
//                attention_probs_dropout_prob) → linearForward (attention.output.dense) →
//                dropoutForward → residualForward (+ layer input) → layerNormForward →
//                linearForward (intermediate.dense) → geluForward → linearForward (output.dense) →
//                dropoutForward → residualForward → layerNormForward
//   MLM / MFM:   gatherRowsForward (masked positions b·T + t) → linearForward (transform.dense) →
//                geluForward → layerNormForward → linearForward with weight = word embeddings
//                (tied: its backward accumulates into the embedding gradient) and bias
//                `cls.predictions.bias`, text rows against rows [0, Ttext) and video rows against
//                rows [Ttext, V) only → softmaxCrossEntropyForward over each part's rows
//   alignment:   gatherRowsForward ([CLS] rows b·T) → linearForward (pooler.dense) → tanhForward →
//                linearForward (seq_relationship, OC = 2) → softmaxCrossEntropyForward over the
//                rows of the text+video examples
//   backward:    the same list read in reverse with the *Backward functions;
//                embeddingsBackward with paddingId 0 (HF's padding_idx); then clipGradientNorm
//                and AdamW.update. GradientCheckTests.testPostLayerNormEncoderLayerComposes and
//                tools/bench/Sources/LayersBench.swift show one encoder layer wired this way.
