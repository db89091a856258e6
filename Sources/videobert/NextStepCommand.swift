import ArgumentParser
import Foundation
import Model
import Tasks
import Tensor

/// `videobert next-step`: what comes next, in visual words and as text.
struct NextStepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "next-step",
        abstract: "Next-step prediction: forecast the next segment's visual words, and rank the next sentence.",
        discussion: """
        Visual: for consecutive segments of a held-out video, "[CLS] v_cur.. [MASK]xH [SEP]" \
        (pretraining's video-only regime) predicts the next segment's first H visual words: top-1 \
        and top-5 accuracy per position beside the train split's most frequent words, persistence \
        (the current words, newest first) and chance. A few continuations are sampled by filling \
        the masks left to right (temperature, top-k), as the paper's long-range prediction.

        Text: given the current sentence and visual words, the true next sentence is ranked among \
        --candidates sentences (the others from other videos of the split) by its masked \
        pseudo-log-likelihood in "[CLS] current candidate [>] video [SEP]" (pretraining joins \
        consecutive segments, so this is in distribution): accuracy@1 and mean rank beside a \
        unigram language model of the train split's WordPieces and chance (1/N, (N+1)/2).

        A forecaster checkpoint (`videobert finetune next-step`, kinds videobert-forecaster and \
        cbt-forecaster) is evaluated instead on the consecutive annotated steps of --annotations: \
        the true next sentence ranked among --candidates by the generator's log-likelihood given \
        the current step's video; the generated next sentence scored with BLEU/METEOR/ROUGE-L/CIDEr \
        against the true next step's; and, when the annotations give verb/noun, the next step's \
        labels named by the generated sentence. Beside every row: the step-transition bigram of \
        the train split (P(next | current TRUE sentence or labels)), the unigram LM, frequency, \
        persistence and chance; a last line per measure says whether the model beats the bigram.

        A video file instead of --corpus: the forecast for what follows its end (or --at): the \
        video is tokenized as the checkpoint's training corpus was (as `caption VIDEO` does), \
        the current segment is the one in progress then; printed are its visual words, the next \
        ones (top words per position and sampled continuations; --sheet draws them as a \
        contact sheet, each word as the training clip nearest its centroid), and the sentences \
        of --candidates FILE (one per line) ranked as above; a forecaster also generates the \
        next sentence.

        Example:
          videobert next-step demo/corpus/videos/video-0003.mp4 --at 0:12 \\
              --checkpoint demo/pretrain/checkpoints/step-0003000 \\
              --candidates next.txt --sheet next.png
          videobert next-step --checkpoint demo/pretrain/checkpoints/step-0003000 \\
              --corpus demo/tokens --split test --samples-out continuations.json \\
              --out-json next-step.json
          videobert next-step --checkpoint demo/next-step/checkpoints/step-0000600 \\
              --corpus demo/tokens --annotations demo/corpus/annotations.json
        """)

    struct Result: Encodable {
        var visual: ForecastReport?
        var text: NextStepTextReport?
        var forecaster: NextStepForecastReport?
    }

    enum Part: String, ExpressibleByArgument, CaseIterable { case both, visual, text }

    @Argument(help: "A video file: forecast what follows its end (or --at), instead of evaluating --corpus.") var video: String?
    @OptionGroup var task: TaskOptions
    @Option(help: "Which part to run: both, visual or text.") var part: Part = .both
    @Option(help: "Future visual words predicted per segment (H).") var horizon: Int = ForecastOptions().horizon
    @Option(help: "Segment pairs whose continuations are sampled.") var sampledPairs: Int = ForecastOptions().sampledPairs
    @Option(help: "Continuations sampled per pair.") var samples: Int = ForecastOptions().samples
    @Option(help: "Sampling temperature.") var temperature: Double = ForecastOptions().temperature
    @Option(help: "Sample among the k most probable visual words (0: all).") var topK: Int = ForecastOptions().topK
    @Option(name: .customLong("candidates"), help: "Candidates per next-sentence query, the true one included (default 10); with a VIDEO: a file of candidate sentences, one per line.") var candidatesOption: String?
    var candidates: Int { candidatesOption.flatMap { Int($0) } ?? NextStepTextOptions().candidates }
    @Option(help: "With a VIDEO: the time to forecast from, e.g. 1:23 or 83.5s (default: its end).") var at: String?
    @Option(help: "With a VIDEO: write the context and forecast visual words here as a contact sheet (PNG).") var sheet: String?
    @Option(help: "Candidate score: sum or mean of the masked log-probabilities.") var score: NextStepTextOptions.Aggregate = .sum
    @Option(help: "At most this many next-sentence queries (0: all).") var maxQueries: Int = 0
    @Option(help: "Seed for candidates and samples.") var seed: UInt64 = 0
    @Option(help: "Write the sampled continuations (JSON) here.") var samplesOut: String?
    @Option(help: "Forecaster checkpoints: step annotations (YouCook2 JSON or JSONL; verb/noun fields give the anticipation rows).") var annotations: String?
    @Option(help: "Forecaster checkpoints: beam width of the generated next sentence (1: greedy).") var beam: Int = GenerationOptions().beam
    @Option(help: "Forecaster checkpoints: WordPieces generated at most (candidates are cut there too).") var maxTokens: Int = 16

    func validate() throws {
        guard horizon >= 1 else { throw ValidationError("--horizon must be at least 1") }
        try validateVideo()
        guard candidates >= 2 else { throw ValidationError("--candidates must be at least 2") }
        guard temperature > 0 else { throw ValidationError("--temperature must be positive") }
        guard beam >= 1 else { throw ValidationError("--beam must be at least 1") }
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1") }
    }

    func run() throws {
        if video != nil { return try runVideo() }
        let opened = try Checkpoint(folder: task.checkpoint)
        if opened.kind.isForecaster { return try runForecaster() }
        if annotations != nil {
            throw VideoBertError("is a \(opened.kind.rawValue) checkpoint: --annotations is read with a forecaster (`videobert finetune next-step`)", file: task.checkpoint)
        }
        let (model, corpus) = try task.load()
        var result = Result()
        var tables: [String] = []
        if part != .text {
            var o = ForecastOptions()
            o.horizon = horizon; o.sampledPairs = sampledPairs; o.samples = samples; o.temperature = temperature; o.topK = topK; o.seed = seed
            let r = try VisualForecast.run(model: model, corpus: corpus, split: task.split, trainSplit: task.trainSplit, options: o)
            if let samplesOut { try JSON.write(r.continuations, to: samplesOut) }
            result.visual = r
            tables.append(VisualForecast.table(r))
        }
        if part != .visual {
            var o = NextStepTextOptions()
            o.candidates = candidates; o.score = score; o.maxQueries = maxQueries; o.seed = seed
            let r = try NextStepRanking.run(model: model, corpus: corpus, split: task.split, trainSplit: task.trainSplit, options: o)
            result.text = r
            tables.append(NextStepRanking.table(r))
        }
        try task.emit(result, table: tables.joined(separator: "\n\n"))
    }

    /// A fine-tuned forecaster: ranking, generation and anticipation beside the baselines (NextStepForecast.swift).
    func runForecaster() throws {
        guard let annotations else {
            throw VideoBertError("is a next-step forecaster: give the steps to evaluate with --annotations (YouCook2 JSON or JSONL)", file: task.checkpoint)
        }
        let (model, corpus) = try task.load(allowClipFeatures: true)
        let steps = try StepAnnotations.load(annotations)
        var o = NextStepForecastOptions()
        o.candidates = candidates; o.score = score; o.maxQueries = maxQueries; o.seed = seed
        o.generation.beam = beam; o.generation.maxTokens = maxTokens
        let r = try NextStepForecast.run(model: model, corpus: corpus, annotations: steps, split: task.split, trainSplit: task.trainSplit, options: o)
        try task.emit(Result(forecaster: r), table: NextStepForecast.table(r))
    }
}
