import Foundation
import Tensor

/// The verb/noun anticipation head of next-step forecasters (`videobert finetune next-step`): a
/// classifier on the pooled output of `[CLS] [MASK] [>] v_current.. [SEP]` — the current step's
/// video alone — predicting the NEXT step's verb and noun, as CBT's action anticipation
/// (Sun et al. 2019, "Learning Video Representations using Contrastive Bidirectional
/// Transformer", §4.3: a linear classifier on the pooled features of the observed segment).
///
///     pooled = tanh(h_[CLS] · Wpᵀ + bp)          (BERT's pooler layout; Wp starts as the BERT's)
///     verb logits = pooled · Wvᵀ + bv,  noun logits = pooled · Wnᵀ + bn
///     loss = mean CE(verb) over rows with a verb label + mean CE(noun) over rows with a noun label
///
/// The label sets are fixed when the head is built (the train split's next-step labels); a row
/// whose label is outside them has target −1: no loss, and counted wrong by the evaluation.
///
/// Parameters, in their own ParameterStore (trained beside the BERT's), saved as
/// `anticipation.safetensors` (metadata {"format": "videobert-anticipation-head", "verbs": JSON
/// array, "nouns": JSON array}, the label of each logit in order):
///
///   anticipation.pooler.weight   [C, C]
///   anticipation.pooler.bias     [C]
///   anticipation.verb.weight     [Nv, C]
///   anticipation.verb.bias       [Nv]
///   anticipation.noun.weight     [Nn, C]
///   anticipation.noun.bias       [Nn]
///
/// Not Sendable: it owns a store whose buffers its methods mutate.
public final class AnticipationHead {
    public static let fileName = Checkpoint.File.anticipation.rawValue
    public static let poolerWeight = "anticipation.pooler.weight", poolerBias = "anticipation.pooler.bias"
    public static let verbWeight = "anticipation.verb.weight", verbBias = "anticipation.verb.bias"
    public static let nounWeight = "anticipation.noun.weight", nounBias = "anticipation.noun.bias"
    /// Labels per set a file may declare (bounds what a hostile file makes us allocate).
    public static let maxLabels = 100_000

    public let hiddenSize: Int
    public let verbs: [String], nouns: [String]
    public let store: ParameterStore

    public init(hiddenSize C: Int, verbs: [String], nouns: [String], training: Bool = true) throws {
        guard C > 0 else { throw VideoBertError("anticipation head: hidden size must be positive") }
        guard !verbs.isEmpty, !nouns.isEmpty, verbs.count <= Self.maxLabels, nouns.count <= Self.maxLabels else {
            throw VideoBertError("anticipation head: 1...\(Self.maxLabels) verbs and nouns are needed (got \(verbs.count) and \(nouns.count))")
        }
        hiddenSize = C
        self.verbs = verbs
        self.nouns = nouns
        store = try ParameterStore([
            ParameterSpec(Self.poolerWeight, [C, C], weightDecay: true), ParameterSpec(Self.poolerBias, [C], weightDecay: false),
            ParameterSpec(Self.verbWeight, [verbs.count, C], weightDecay: true), ParameterSpec(Self.verbBias, [verbs.count], weightDecay: false),
            ParameterSpec(Self.nounWeight, [nouns.count, C], weightDecay: true), ParameterSpec(Self.nounBias, [nouns.count], weightDecay: false),
        ], training: training)
    }

    /// BERT's initialisation (normal(0, std) weights, zero biases); with `pooler` given (the
    /// BERT's bert.pooler.dense weight [C, C] and bias [C]) the head's pooler starts as a copy.
    public func initialize(std: Float, seed: UInt64, pooler: (weight: UnsafePointer<Float>, bias: UnsafePointer<Float>)? = nil) {
        initializeBertStyle(store, names: store.slots.map(\.name), std: std, seed: seed)
        if let pooler {
            store.parameter(Self.poolerWeight).baseAddress!.update(from: pooler.weight, count: hiddenSize * hiddenSize)
            store.parameter(Self.poolerBias).baseAddress!.update(from: pooler.bias, count: hiddenSize)
        }
    }

    private func w(_ name: String) -> UnsafeMutablePointer<Float> { store.parameters + store.offset(of: name) }
    private func g(_ name: String) -> UnsafeMutablePointer<Float> { store.gradients + store.offset(of: name) }

    /// What a forward keeps for its backward, and the logits.
    public struct Forward: Sendable {
        public let rows: Int
        /// [N, C] the [CLS] states read, and tanh(pooler) of them.
        public let cls: [Float], pooled: [Float]
        /// [N, Nv] and [N, Nn].
        public let verbLogits: [Float], nounLogits: [Float]
    }

    /// The logits of N [CLS] states `cls` [N, C].
    public func forward(cls: [Float], rows N: Int) -> Forward {
        let C = hiddenSize, (Nv, Nn) = (verbs.count, nouns.count)
        precondition(cls.count == N * C, "anticipation head: \(N) rows need \(N * C) values, got \(cls.count)")
        var pooled = [Float](repeating: 0, count: N * C), verb = [Float](repeating: 0, count: N * Nv), noun = [Float](repeating: 0, count: N * Nn)
        if N > 0 {
            cls.withUnsafeBufferPointer { x in
                pooled.withUnsafeMutableBufferPointer { p in
                    linearForward(out: p.baseAddress!, inp: x.baseAddress!, weight: w(Self.poolerWeight), bias: w(Self.poolerBias), N: N, C: C, OC: C)
                    tanhForward(out: p.baseAddress!, inp: p.baseAddress!, N: N * C)
                    verb.withUnsafeMutableBufferPointer {
                        linearForward(out: $0.baseAddress!, inp: p.baseAddress!, weight: w(Self.verbWeight), bias: w(Self.verbBias), N: N, C: C, OC: Nv)
                    }
                    noun.withUnsafeMutableBufferPointer {
                        linearForward(out: $0.baseAddress!, inp: p.baseAddress!, weight: w(Self.nounWeight), bias: w(Self.nounBias), N: N, C: C, OC: Nn)
                    }
                }
            }
        }
        return Forward(rows: N, cls: cls, pooled: pooled, verbLogits: verb, nounLogits: noun)
    }

    /// The loss of a forward against targets (label indices; −1: no label), its counts, and in
    /// training the gradient of `scale · loss`: ADDED to the head's gradients, and returned as
    /// d(cls) [N, C] for the caller to add to the BERT's [CLS] rows.
    public struct Loss: Sendable {
        public var loss: Float = 0
        public var verbLoss: Float = 0, nounLoss: Float = 0
        public var verbCount = 0, verbCorrect = 0, nounCount = 0, nounCorrect = 0
        public var dCLS: [Float]?
    }

    public func loss(_ f: Forward, verbTargets: [Int32], nounTargets: [Int32], scale: Float = 1, backward: Bool) -> Loss {
        let N = f.rows, C = hiddenSize
        precondition(verbTargets.count == N && nounTargets.count == N, "anticipation head: one verb and one noun target per row")
        precondition(!backward || store.training, "an anticipation head built with training: false has no gradients")
        var out = Loss()
        // Softmax cross-entropy per labelled row, mean over them; d(logits) = (p − onehot) / count.
        func crossEntropy(_ logits: [Float], _ targets: [Int32], _ V: Int) -> (loss: Float, count: Int, correct: Int, d: [Float]) {
            var d = [Float](repeating: 0, count: N * V)
            let labelled = targets.filter { $0 >= 0 && Int($0) < V }.count
            var total = 0.0, correct = 0
            guard labelled > 0 else { return (0, 0, 0, d) }
            logits.withUnsafeBufferPointer { l in
                for n in 0..<N {
                    let t = Int(targets[n])
                    guard t >= 0, t < V else { continue }
                    let row = l.baseAddress! + n * V
                    var best = 0, m = row[0]
                    for v in 1..<V where row[v] > m { m = row[v]; best = v }
                    var sum = 0.0
                    for v in 0..<V { sum += Foundation.exp(Double(row[v] - m)) }
                    total += Foundation.log(sum) - Double(row[t] - m)
                    if best == t { correct += 1 }
                    if backward {
                        for v in 0..<V { d[n * V + v] = Float(Foundation.exp(Double(row[v] - m)) / sum) / Float(labelled) }
                        d[n * V + t] -= 1 / Float(labelled)
                    }
                }
            }
            return (Float(total / Double(labelled)), labelled, correct, d)
        }
        let v = crossEntropy(f.verbLogits, verbTargets, verbs.count), n = crossEntropy(f.nounLogits, nounTargets, nouns.count)
        out.verbLoss = v.loss; out.nounLoss = n.loss; out.loss = v.loss + n.loss
        out.verbCount = v.count; out.verbCorrect = v.correct; out.nounCount = n.count; out.nounCorrect = n.correct
        guard backward, N > 0 else { return out }
        var dVerb = v.d, dNoun = n.d
        for i in dVerb.indices { dVerb[i] *= scale }
        for i in dNoun.indices { dNoun[i] *= scale }
        var dPooled = [Float](repeating: 0, count: N * C), dPre = [Float](repeating: 0, count: N * C)
        var dCLS = [Float](repeating: 0, count: N * C)
        f.pooled.withUnsafeBufferPointer { p in
            dPooled.withUnsafeMutableBufferPointer { dp in
                dVerb.withUnsafeBufferPointer {
                    linearBackward(dinp: dp.baseAddress!, dweight: g(Self.verbWeight), dbias: g(Self.verbBias), dout: $0.baseAddress!,
                                   inp: p.baseAddress!, weight: w(Self.verbWeight), N: N, C: C, OC: verbs.count)
                }
                dNoun.withUnsafeBufferPointer {
                    linearBackward(dinp: dp.baseAddress!, dweight: g(Self.nounWeight), dbias: g(Self.nounBias), dout: $0.baseAddress!,
                                   inp: p.baseAddress!, weight: w(Self.nounWeight), N: N, C: C, OC: nouns.count)
                }
                dPre.withUnsafeMutableBufferPointer { tanhBackward(dinp: $0.baseAddress!, dout: dp.baseAddress!, out: p.baseAddress!, N: N * C) }
            }
        }
        f.cls.withUnsafeBufferPointer { x in
            dPre.withUnsafeBufferPointer { d in
                dCLS.withUnsafeMutableBufferPointer {
                    linearBackward(dinp: $0.baseAddress!, dweight: g(Self.poolerWeight), dbias: g(Self.poolerBias), dout: d.baseAddress!,
                                   inp: x.baseAddress!, weight: w(Self.poolerWeight), N: N, C: C, OC: C)
                }
            }
        }
        out.dCLS = dCLS
        return out
    }

    /// Top-k label indices of each row of logits [N, V] (highest first; ties: the lower index).
    public static func top(_ logits: [Float], rows N: Int, k: Int) -> [[Int]] {
        let V = N > 0 ? logits.count / N : 0
        return (0..<N).map { n in
            Array((0..<V).sorted { a, b in
                let (x, y) = (logits[n * V + a], logits[n * V + b])
                return x != y ? x > y : a < b
            }.prefix(k))
        }
    }

    public func save(to folder: String) throws {
        let store = store
        let tensors = store.slots.map { slot in
            (name: slot.name, shape: slot.shape, values: UnsafeBufferPointer(start: store.parameters + slot.offset, count: slot.count))
        }
        let encode = { (labels: [String]) -> String in
            String(decoding: (try? JSONSerialization.data(withJSONObject: labels)) ?? Data("[]".utf8), as: UTF8.self)
        }
        try SafeTensors.write(tensors, metadata: ["format": "videobert-anticipation-head", "verbs": encode(verbs), "nouns": encode(nouns)],
                              to: (folder as NSString).appendingPathComponent(Self.fileName))
    }

    /// The head saved in `folder` (sizes and labels from the file), or nil when the folder has
    /// none (a forecaster trained before the head existed).
    public static func load(from folder: String, hiddenSize C: Int, training: Bool = false) throws -> AnticipationHead? {
        let path = (folder as NSString).appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let file = try SafeTensors.read(path)
        func labels(_ key: String) throws -> [String] {
            guard let text = file.metadata[key], let list = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String],
                  !list.isEmpty, list.count <= maxLabels else {
                throw VideoBertError("metadata '\(key)' must be a JSON array of 1...\(maxLabels) strings", file: path)
            }
            return list
        }
        let head = try AnticipationHead(hiddenSize: C, verbs: try labels("verbs"), nouns: try labels("nouns"), training: training)
        try head.loadWeights(from: folder)
        return head
    }

    /// Loads the weights saved in `folder` into this head (same sizes).
    public func loadWeights(from folder: String) throws {
        let path = (folder as NSString).appendingPathComponent(Self.fileName)
        let file = try SafeTensors.read(path)
        for slot in store.slots {
            guard file.shape(slot.name) == slot.shape else {
                throw VideoBertError("\(slot.name) is \(file.shape(slot.name).map { "\($0)" } ?? "missing"), expected \(slot.shape)", file: path)
            }
            let values = try file.floats(slot.name)
            values.withUnsafeBufferPointer { (store.parameters + slot.offset).update(from: $0.baseAddress!, count: slot.count) }
        }
    }
}
