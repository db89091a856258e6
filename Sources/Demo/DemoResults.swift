import Foundation
import Tasks
import Train

/// What the demo's downstream stages measured (each saved as a `DemoArtifact` result, so a re-run
/// reuses it), and the results table built from it.
public struct DemoResults {
    public var pretrain: [String: Double] = [:]
    public var cbt: [String: Double]?
    public var zeroShot: ZeroShotReport?
    public var caption: CaptionReport?
    public var captionTraining: CaptionFineTuner.Summary?
    /// The captioner fine-tuned from the CBT checkpoint (clip features in).
    public var captionCBT: CaptionReport?
    public var captionCBTTraining: CaptionFineTuner.Summary?
    public var forecast: ForecastReport?
    public var nextText: NextStepTextReport?
    /// The fine-tuned next-step forecaster, beside the train-split bigram and the other baselines.
    public var forecaster: NextStepForecastReport?
    public var forecasterTraining: CaptionFineTuner.Summary?
    public var retrieval: RetrievalReport?

    public init() {}

    public static let header = ["task", "metric", "videobert", "baseline", "chance"]

    /// The results table: each metric on the held-out test videos beside its baseline and chance.
    public func tableRows(words: Int) -> [[String]] {
        let r = self
        func pct(_ v: Double?) -> String { v.map { $0.isFinite ? String(format: "%.1f%%", 100 * $0) : "—" } ?? "—" }
        func num(_ v: Double?, _ f: String = "%.2f") -> String { v.map { String(format: f, $0) } ?? "—" }
        var rows: [[String]] = []
        let p = r.pretrain
        rows.append(["pretraining (val)", "MLM accuracy (masked WordPieces)", pct(p["mlm_acc"]), "—", "—"])
        rows.append(["", "MFM top-5 (masked visual words)", pct(p["mfm_top5"]), "—", pct(5 / Double(words))])
        rows.append(["", "text–video alignment accuracy", pct(p["align_acc"]), "—", "50.0%"])
        if let c = r.cbt {
            rows.append(["CBT (val)", "masked-frame NCE accuracy", pct(c["nce_acc"]), "—", pct(c["nce_chance"])])
            rows.append(["", "text→video R@5 (pooled embeddings)", pct(c["t2v_r5"]), "—", pct(c["chance_r5"])])
            rows.append(["", "video→text R@5 (pooled embeddings)", pct(c["v2t_r5"]), "—", pct(c["chance_r5"])])
        }
        if let z = r.zeroShot {
            rows.append(["zero-shot (test)", "verb top-1 / top-5", pct(z.verb.model.top1) + " / " + pct(z.verb.model.top5),
                         pct(z.verb.frequency.top1) + " / " + pct(z.verb.frequency.top5) + " (frequency)",
                         pct(z.verb.chance.top1) + " / " + pct(z.verb.chance.top5)])
            rows.append(["", "noun top-1 / top-5", pct(z.noun.model.top1) + " / " + pct(z.noun.model.top5),
                         pct(z.noun.frequency.top1) + " / " + pct(z.noun.frequency.top5) + " (frequency)",
                         pct(z.noun.chance.top1) + " / " + pct(z.noun.chance.top5)])
        }
        if let c = r.caption, let model = c.rows.first {
            let frequent = c.rows.first { $0.system.hasPrefix("most frequent") }
            let template = c.rows.first { $0.system.hasPrefix("zero-shot template") }
            rows.append(["captioning (test)", "fine-tuned: BLEU-4 / METEOR / CIDEr",
                         num(model.scores.bleu4) + " / " + num(model.scores.meteor) + " / " + num(model.scores.cider),
                         frequent.map { num($0.scores.bleu4) + " / " + num($0.scores.meteor) + " / " + num($0.scores.cider) + " (frequent caption)" } ?? "—", "—"])
            if let t = template {
                rows.append(["", "zero-shot template: BLEU-4 / METEOR / CIDEr", num(t.scores.bleu4) + " / " + num(t.scores.meteor) + " / " + num(t.scores.cider), "", "—"])
            }
        }
        if let c = r.captionCBT, let model = c.rows.first {
            let frequent = c.rows.first { $0.system.hasPrefix("most frequent") }
            rows.append([r.caption == nil ? "captioning (test)" : "", "fine-tuned from CBT (clip features): BLEU-4 / METEOR / CIDEr",
                         num(model.scores.bleu4) + " / " + num(model.scores.meteor) + " / " + num(model.scores.cider),
                         frequent.map { num($0.scores.bleu4) + " / " + num($0.scores.meteor) + " / " + num($0.scores.cider) + " (frequent caption)" } ?? "—", "—"])
        }
        if let f = r.forecast {
            let o = f.overall
            rows.append(["next step (test)", "next clip's visual words: top-5", pct(o.model.top5),
                         pct(o.frequency.top5) + " (frequency), " + pct(o.persistence.top5) + " (persistence)", pct(o.chance.top5)])
        }
        if let t = r.nextText {
            rows.append(["", "next sentence among \(t.options.candidates): accuracy@1", pct(t.model.accuracyAt1),
                         pct(t.unigram.accuracyAt1) + " (unigram LM)", pct(t.chance.accuracyAt1)])
        }
        if let f = r.forecaster, f.ranking.count >= 2, f.generation.count >= 2 {
            // Row 0 is the model, row 1 the step-transition bigram from the train split (it reads the
            // true current sentence or labels: the baseline with the upper hand), then the others.
            let others = f.ranking.dropFirst(2).filter { $0.system != "chance" }
            let strongest = others.max { $0.accuracy.accuracyAt1 < $1.accuracy.accuracyAt1 }
            let chance = f.ranking.first { $0.system == "chance" }
            rows.append(["", "fine-tuned: next sentence among \(f.options.candidates), accuracy@1", pct(f.ranking[0].accuracy.accuracyAt1),
                         pct(f.ranking[1].accuracy.accuracyAt1) + " (bigram)" + (strongest.map { ", " + pct($0.accuracy.accuracyAt1) + " (\($0.system.components(separatedBy: " (")[0]))" } ?? ""),
                         pct(chance?.accuracy.accuracyAt1)])
            let (m, b) = (f.generation[0].scores, f.generation[1].scores)
            rows.append(["", "fine-tuned: generated next step BLEU-4 / METEOR / CIDEr", num(m.bleu4) + " / " + num(m.meteor) + " / " + num(m.cider),
                         num(b.bleu4) + " / " + num(b.meteor) + " / " + num(b.cider) + " (bigram)", "—"])
            // Row 0 is the model (its anticipation head when it has one, from the video alone).
            if let a = f.anticipation.first, let g = f.anticipation.first(where: { $0.system.hasPrefix("step-transition bigram") }),
               let chance = f.anticipation.last {
                rows.append(["", "fine-tuned: next verb / noun top-1", pct(a.verbTop1) + " / " + pct(a.nounTop1),
                             pct(g.verbTop1) + " / " + pct(g.nounTop1) + " (bigram)", pct(chance.verbTop1) + " / " + pct(chance.nounTop1)])
            }
        }
        if let v = r.retrieval {
            rows.append(["retrieval (test, \(v.segments) segments)", "text→video R@1 / R@5 / median rank",
                         pct(v.textToVideo.recallAt1) + " / " + pct(v.textToVideo.recallAt5) + " / " + num(v.textToVideo.medianRank, "%.0f"), "—",
                         pct(v.chance.recallAt1) + " / " + pct(v.chance.recallAt5) + " / " + num(v.chance.medianRank, "%.1f")])
            rows.append(["", "video→text R@1 / R@5 / median rank",
                         pct(v.videoToText.recallAt1) + " / " + pct(v.videoToText.recallAt5) + " / " + num(v.videoToText.medianRank, "%.0f"), "—",
                         pct(v.chance.recallAt1) + " / " + pct(v.chance.recallAt5) + " / " + num(v.chance.medianRank, "%.1f")])
        }
        return rows
    }

    /// The table as the terminal shows it: every column left-aligned, a rule under the header.
    public static func render(header: [String], rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = (0..<header.count).map { c in all.map { $0[c].count }.max()! }
        func line(_ r: [String]) -> String { zip(r, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ") }
        return ([line(header), widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")] + rows.map(line)).joined(separator: "\n")
    }
}
