import Foundation

/// What the demo writes under its output folder, and what each thing is computed from: the stage
/// graph of `videobert demo` (docs/ARCHITECTURE.md §9, "the demo"). A re-run reuses whatever
/// exists; when an artifact is recomputed, everything downstream of it in this graph is stale and
/// is removed, so that it is recomputed too — the graph, not a list at each call site, says what
/// that is.
public enum DemoArtifact: String, CaseIterable, Sendable {
    // Folders (a model, a corpus).
    case corpus, tokens, words, pretrain, cbt
    /// The captioner fine-tuned from the VideoBERT checkpoint, the one from CBT, and the
    /// next-step forecaster (the captioner's training with the next step's sentence as target).
    case caption, captionCBT = "caption-cbt", forecaster = "next-step"
    // Results: <out>/results/<name>.json.
    case pretrainEval = "pretrain-eval", cbtEval = "cbt-eval", zeroShot = "zero-shot"
    case captionTraining = "caption-training", captionReport = "caption-report"
    case captionCBTTraining = "caption-cbt-training", captionCBTReport = "caption-cbt-report"
    case nextStepVisual = "next-step-visual", nextStepText = "next-step-text", retrieval
    case forecasterTraining = "next-step-training", forecasterReport = "next-step-forecast"

    /// The artifacts this one is computed from.
    public var inputs: [DemoArtifact] {
        switch self {
        case .corpus: return []
        case .tokens: return [.corpus]
        case .words, .pretrain, .cbt: return [.tokens]
        case .pretrainEval, .zeroShot, .caption, .forecaster, .nextStepVisual, .nextStepText, .retrieval: return [.pretrain]
        case .forecasterTraining, .forecasterReport: return [.forecaster]
        case .cbtEval, .captionCBT: return [.cbt]
        case .captionTraining: return [.caption]
        // The caption table scores the zero-shot template captions as a baseline.
        case .captionReport: return [.caption, .zeroShot]
        case .captionCBTTraining, .captionCBTReport: return [.captionCBT]
        }
    }

    public var isFolder: Bool {
        switch self {
        case .corpus, .tokens, .words, .pretrain, .cbt, .caption, .captionCBT, .forecaster: return true
        default: return false
        }
    }

    /// Where it lives, relative to the demo's output folder. Result files keep the names earlier
    /// versions wrote, so an existing demo folder is reused as it is.
    public var relativePath: String {
        guard !isFolder else { return rawValue }
        let name: String
        switch self {
        case .pretrainEval: name = "pretrain"
        case .cbtEval: name = "cbt"
        case .captionReport: name = "caption"
        case .captionCBTReport: name = "caption-cbt"
        default: name = rawValue
        }
        return "results/" + name + ".json"
    }

    /// Everything computed, directly or not, from this artifact (itself excluded), in declaration order.
    public var downstream: [DemoArtifact] {
        var stale: Set<DemoArtifact> = [self]
        var grew = true
        while grew {
            grew = false
            for a in DemoArtifact.allCases where !stale.contains(a) && a.inputs.contains(where: stale.contains) {
                stale.insert(a)
                grew = true
            }
        }
        return DemoArtifact.allCases.filter { $0 != self && stale.contains($0) }
    }
}
