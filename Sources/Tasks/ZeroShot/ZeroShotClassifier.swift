import Foundation
import Tensor

// Zero-shot action classification and template captioning, VideoBERT §4.2 (Sun et al. 2019):
// the pretrained model reads
//
//     [CLS] now let's [MASK] the [MASK] . [>] v1 … vm [SEP]
//
// where v1…vm are the visual words of a segment, and its MLM head at the two [MASK]s is read as
// a distribution over verbs and nouns. Predictions are restricted to a label list (the paper:
// YouCook2's verbs and nouns) and scored as top-1 / top-5 accuracy.
//
// DESIGN DECISION, labels of several WordPieces ("sprinkle" is sp ##rin ##kle in BERT's
// vocabulary). Default `fill`: the slot is filled left to right and the label scores the sum of
// the log-probabilities of its pieces as they are filled in (the chain rule):
//
//     log p(w1 | "… [MASK] …") + log p(w2 | "… w1 [MASK] …") + … + log p(wk | "… w1 … wk-1 [MASK] …")
//
// each from the MLM softmax over the text vocabulary (the softmax pretraining trains; see
// BertForPreTraining.swift), the other slot holding one [MASK]. Every label's first piece is read
// in the same single-[MASK] input as the paper's template, so the labels compete on equal terms;
// continuation pieces cost one more input per distinct prefix. Putting k [MASK]s in the slot at
// once for a k-piece label does NOT work: the number of masks tells the model the label's length
// (in the test world, the only two-piece noun won every two-mask slot). The known cost of `fill`:
// a label's first piece is read where one whole word fits ("the [MASK] ."), where the model
// rarely saw a word-start piece, so multi-piece labels are under-rated (in the test world the
// two-piece noun, "tomato ##es", is ranked last even on its own clips; see ZeroShotTests). `first`
// scores the first piece only (one input per segment; labels sharing a first piece tie).
/// How zero-shot classification is run.
public struct ZeroShotOptions: Sendable, Codable, Equatable {
    public enum PieceScoring: String, Sendable, Codable, CaseIterable { case fill, first }

    /// The input template; `{verb}` and `{noun}` become [MASK]s (VideoBERT §4.2's template).
    public var template = "now let's {verb} the {noun} ."
    /// The caption written from the top verb and noun.
    public var captionTemplate = "{verb} the {noun}"
    public var pieceScoring = PieceScoring.fill
    /// Visual words kept per segment (the first ones), also capped by the model's positions.
    public var maxVideoTokens = 48
    /// How many verbs and nouns each prediction lists.
    public var listed = 5
    /// Calibrate against the text prior: each label's score minus its score for the template
    /// with no video (pointwise mutual information between the label and the video), so labels
    /// the narration mentions often do not win whatever the video shows.
    public var calibrate = false

    public init() {}

    enum CodingKeys: String, CodingKey {
        case template, captionTemplate = "caption_template", pieceScoring = "piece_scoring"
        case maxVideoTokens = "max_video_tokens", listed, calibrate
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        template = try c.decode(String.self, forKey: .template)
        captionTemplate = try c.decode(String.self, forKey: .captionTemplate)
        pieceScoring = try c.decode(PieceScoring.self, forKey: .pieceScoring)
        maxVideoTokens = try c.decode(Int.self, forKey: .maxVideoTokens)
        listed = try c.decode(Int.self, forKey: .listed)
        calibrate = try c.decodeIfPresent(Bool.self, forKey: .calibrate) ?? false
    }
}

/// Verb and noun scores (log-probabilities, summed over a label's pieces) of one segment,
/// index-aligned with the label list.
public struct LabelScores: Sendable {
    public var verbs: [Float]
    public var nouns: [Float]
}

/// Fills the template's masks for segments and scores every label.
public final class ZeroShotClassifier {
    public let model: TaskModel
    public let labels: LabelList
    public let options: ZeroShotOptions
    /// WordPieces of each verb and noun label.
    public let verbPieces: [[Int32]]
    public let nounPieces: [[Int32]]

    /// The template split around its two slots: text before, between and after, and which slot comes first.
    let parts: [[Int32]]
    let verbFirst: Bool

    public init(model: TaskModel, labels: LabelList, options: ZeroShotOptions = ZeroShotOptions()) throws {
        self.model = model
        self.labels = labels
        self.options = options
        func pieces(_ label: String) throws -> [Int32] {
            let p = model.encode(label)
            guard !p.isEmpty else { throw VideoBertError("label '\(label)' has no WordPieces in the text vocabulary") }
            if p.contains(model.special.unk) { throw VideoBertError("label '\(label)' tokenizes to [UNK] in the text vocabulary") }
            return p
        }
        verbPieces = try labels.verbs.map(pieces)
        nounPieces = try labels.nouns.map(pieces)
        let t = options.template
        guard let v = t.range(of: "{verb}"), let n = t.range(of: "{noun}") else {
            throw VideoBertError("the template '\(t)' needs {verb} and {noun}")
        }
        verbFirst = v.lowerBound < n.lowerBound
        let (a, b) = verbFirst ? (v, n) : (n, v)
        parts = [String(t[..<a.lowerBound]), String(t[a.upperBound..<b.lowerBound]), String(t[b.upperBound...])].map { model.encode($0) }
    }

    enum Slot { case verb, noun }

    /// One input: the contents of the two slots, and the slot whose LAST token (a [MASK]) is read
    /// (nil: the base input, whose two single [MASK]s are both read).
    struct Request: Hashable {
        var verb: [Int32]
        var noun: [Int32]
        var read: Slot?
    }

    /// Text part of the input with the slots filled; returns the ids and the text positions
    /// (0-based) of the slots' last tokens.
    func templateText(verb: [Int32], noun: [Int32]) -> (ids: [Int32], verbEnd: Int, nounEnd: Int) {
        var ids = parts[0]
        ids += verbFirst ? verb : noun
        let firstEnd = ids.count - 1
        ids += parts[1]
        ids += verbFirst ? noun : verb
        let secondEnd = ids.count - 1
        ids += parts[2]
        return verbFirst ? (ids, firstEnd, secondEnd) : (ids, secondEnd, firstEnd)
    }

    /// The inputs every segment needs: the base (one [MASK] per slot), then with `fill` one per
    /// distinct proper prefix of a multi-piece label (the prefix, then a [MASK]).
    var requests: [Request] {
        let mask = model.special.mask
        var out = [Request(verb: [mask], noun: [mask], read: nil)]
        guard options.pieceScoring == .fill else { return out }
        var seen = Set(out)
        for p in verbPieces where p.count > 1 {
            for i in 1..<p.count {
                let r = Request(verb: Array(p[..<i]) + [mask], noun: [mask], read: .verb)
                if seen.insert(r).inserted { out.append(r) }
            }
        }
        for p in nounPieces where p.count > 1 {
            for i in 1..<p.count {
                let r = Request(verb: [mask], noun: Array(p[..<i]) + [mask], read: .noun)
                if seen.insert(r).inserted { out.append(r) }
            }
        }
        return out
    }

    /// Scores of every verb and noun label for each segment's visual words (0..<Vvis); with
    /// `options.calibrate`, minus the scores for no video.
    public func scores(visual: [[Int32]], progress: ProgressReporter? = nil) -> [LabelScores] {
        var out = rawScores(visual: visual, progress: progress)
        guard options.calibrate else { return out }
        let prior = rawScores(visual: [[]], progress: nil)[0]
        for i in out.indices {
            for k in out[i].verbs.indices { out[i].verbs[k] -= prior.verbs[k] }
            for k in out[i].nouns.indices { out[i].nouns[k] -= prior.nouns[k] }
        }
        return out
    }

    func rawScores(visual: [[Int32]], progress: ProgressReporter?) -> [LabelScores] {
        let requests = requests
        let R = requests.count
        let templates = requests.map { templateText(verb: $0.verb, noun: $0.noun) }
        let longest = templates.map(\.ids.count).max() ?? 0
        let videoCap = max(0, min(options.maxVideoTokens, model.maxSeq - longest - 3))
        var sequences: [TaskSequence] = []
        for v in visual {
            let video = v.prefix(videoCap).map(model.visualID)
            for t in templates { sequences.append(.joint(text: t.ids, video: video, special: model.special)) }
        }
        // For each request and slot read: the labels that take a piece from it, and that piece.
        var verbUses = [[(label: Int, piece: Int32)]](repeating: [], count: R), nounUses = verbUses
        func plan(_ pieces: [[Int32]], slot: Slot, into uses: inout [[(label: Int, piece: Int32)]]) {
            for (k, p) in pieces.enumerated() {
                for i in 0..<(options.pieceScoring == .fill ? p.count : 1) {
                    var r = 0
                    if i > 0 {
                        let prefix = Array(p[..<i]) + [model.special.mask]
                        let request = slot == .verb ? Request(verb: prefix, noun: [model.special.mask], read: .verb)
                            : Request(verb: [model.special.mask], noun: prefix, read: .noun)
                        r = requests.firstIndex(of: request)!
                    }
                    uses[r].append((k, p[i]))
                }
            }
        }
        plan(verbPieces, slot: .verb, into: &verbUses)
        plan(nounPieces, slot: .noun, into: &nounUses)
        var out = visual.map { _ in LabelScores(verbs: .init(repeating: 0, count: labels.verbs.count), nouns: .init(repeating: 0, count: labels.nouns.count)) }
        model.forEachBatch(sequences) { first, B, T, encoded in
            // Rows read (text position p is at 1 + p: after [CLS]).
            var rows: [Int32] = []
            var reads: [(segment: Int, request: Int, slot: Slot)] = []
            for b in 0..<B {
                let s = first + b, r = s % R, t = templates[r]
                if requests[r].read != .noun { rows.append(Int32(b * T + 1 + t.verbEnd)); reads.append((s / R, r, .verb)) }
                if requests[r].read != .verb { rows.append(Int32(b * T + 1 + t.nounEnd)); reads.append((s / R, r, .noun)) }
            }
            model.withTextLogProbabilities(encoded, rows: rows) { k, logProbs in
                let read = reads[k]
                if read.slot == .verb {
                    for u in verbUses[read.request] { out[read.segment].verbs[u.label] += logProbs[Int(u.piece)] }
                } else {
                    for u in nounUses[read.request] { out[read.segment].nouns[u.label] += logProbs[Int(u.piece)] }
                }
            }
            for b in 0..<B where (first + b) % R == R - 1 { progress?.advance() }
        }
        return out
    }
}

/// Rank (1 = first) of `truth` when labels are sorted by score, highest first, ties broken by
/// label order (as `topIndices`).
public func rankOf(_ truth: Int, in scores: [Float]) -> Int {
    let t = scores[truth]
    var rank = 1
    for (j, s) in scores.enumerated() where s > t || (s == t && j < truth) { rank += 1 }
    return rank
}
