import ArgumentParser
import Demo
import Foundation
import Tensor

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the whole toolkit on the built-in demo corpus, with no data of your own.",
        discussion: """
        Stages (each reuses its output when it is already there, so a re-run only does what is missing):
          1. corpus     render cooking videos with narration         <out>/corpus
          2. tokens     Recipes/tokenize-demo.yaml                   <out>/tokens
          3. words      contact sheets of the visual words           <out>/words
          4. pretrain   VideoBERT with Recipes/demo.yaml             <out>/pretrain
          5. cbt        a short CBT run, Recipes/cbt-demo.yaml       <out>/cbt
          6. zero-shot  verb/noun classification, template captions  <out>/results
          7. caption    fine-tune a captioner, caption test steps    <out>/caption
                        (Recipes/finetune-caption-demo.yaml); and one
                        from CBT clip features                       <out>/caption-cbt
                        (Recipes/finetune-caption-cbt-demo.yaml)
          8. next-step  the next clip's words and sentence (zero-shot);
                        a forecaster fine-tuned on the next step     <out>/next-step
                        (Recipes/finetune-next-step-demo.yaml)
          9. retrieval  text→video and video→text, test segments
        then a results table here (pretraining on the val videos, the tasks on the test videos, each \
        beside its baselines) and <out>/report.html.

        Examples:
          videobert demo --out demo
          videobert demo --out demo --skip-cbt  # VideoBERT only
          videobert demo --out small --videos 120 --steps 600
          videobert demo --out wide --pretrain-set model.hidden_size=256 \\
              --pretrain-set model.num_heads=8
        """)

    @Option(help: "Output folder.") var out: String = "demo"
    @Option(help: "Videos in the demo corpus.") var videos: Int = 400
    @Option(help: "Frame size of the rendered videos (WxH).") var size: String = "64x64"
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Pretraining steps (Recipes/demo.yaml's train.steps unless given).") var steps: Int?
    @Option(help: "CBT steps (a short run; Recipes/cbt-demo.yaml trains longer).") var cbtSteps: Int = 200
    @Option(help: "Caption fine-tuning steps (Recipes/finetune-caption-demo.yaml's unless given).") var captionSteps: Int?
    @Flag(help: "Leave out the CBT stage.") var skipCbt = false
    @Option(help: "Next-step sentence candidates per query (the true one among them).") var candidates: Int = 10
    @Option(name: .customLong("tokenize-set"), help: "Override a value of Recipes/tokenize-demo.yaml (repeatable).") var tokenizeSet: [String] = []
    @Option(name: .customLong("pretrain-set"), help: "Override a value of Recipes/demo.yaml (repeatable).") var pretrainSet: [String] = []
    @Option(name: .customLong("cbt-set"), help: "Override a value of Recipes/cbt-demo.yaml (repeatable).") var cbtSet: [String] = []
    @Option(name: .customLong("caption-set"), help: "Override a value of Recipes/finetune-caption-demo.yaml (repeatable).") var captionSet: [String] = []
    @Option(name: .customLong("caption-cbt-set"), help: "Override a value of Recipes/finetune-caption-cbt-demo.yaml (repeatable).") var captionCbtSet: [String] = []
    @Option(name: .customLong("next-step-set"), help: "Override a value of Recipes/finetune-next-step-demo.yaml (repeatable).") var nextStepSet: [String] = []
    @Option(help: "Where Recipes/ and Vocab/ are (default: the current folder).") var root: String = "."

    func validate() throws {
        guard parseSize(size) != nil else { throw ValidationError("--size must be WxH, e.g. 64x64") }
        if let p = options.problem() { throw ValidationError(p) }
    }

    func parseSize(_ s: String) -> (Int, Int)? {
        let p = s.lowercased().split(separator: "x").compactMap { Int($0) }
        guard p.count == 2, p[0] >= 16, p[1] >= 16 else { return nil }
        return (p[0], p[1])
    }

    /// The pipeline's options from the flags (the stages themselves are `DemoPipeline`).
    var options: DemoPipeline.Options {
        var o = DemoPipeline.Options()
        o.out = out
        o.root = root
        o.videos = videos
        (o.width, o.height) = parseSize(size) ?? (o.width, o.height)
        o.seed = seed
        o.steps = steps
        o.cbtSteps = cbtSteps
        o.captionSteps = captionSteps
        o.skipCBT = skipCbt
        o.candidates = candidates
        (o.tokenizeSet, o.pretrainSet, o.cbtSet) = (tokenizeSet, pretrainSet, cbtSet)
        (o.captionSet, o.captionCBTSet, o.nextStepSet) = (captionSet, captionCbtSet, nextStepSet)
        return o
    }

    func run() throws {
        let outcome: DemoPipeline.Outcome
        do {
            outcome = try DemoPipeline(options: options).run()
        } catch is DemoPipeline.Interrupted {
            throw ExitCode(130)
        }
        print("")
        print(DemoResults.render(header: outcome.header, rows: outcome.rows))
        print("")
        for (name, secs) in outcome.timings { print(name.padding(toLength: 12, withPad: " ", startingAt: 0) + String(format: "%6.0f s", secs)) }
        print("total       " + String(format: "%6.0f s", outcome.seconds) + " → " + out)
        print("report: \(outcome.report)")
    }
}
