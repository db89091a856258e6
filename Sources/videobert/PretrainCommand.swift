import ArgumentParser
import Foundation
import Model
import Recipe
import Tensor
import Distributed
import Tokenize
import Train

struct PretrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pretrain",
        abstract: "Pretrain VideoBERT (MLM + MFM + alignment) or CBT (NCE over continuous clips) on a tokenized corpus.",
        discussion: """
        The model is BERT (post-LayerNorm) over [CLS] text [>] video [SEP], visual word i being \
        token T + i. Examples mix three regimes (text+video with alignment negatives, text only, \
        video only); 15% of tokens are masked (80% [MASK], 10% random, 10% kept).

        Every key of a recipe and its default: Sources/Train/PretrainRecipe.swift. \
        Recipes: Recipes/tiny.yaml (seconds), demo.yaml (minutes), videobert-base.yaml, \
        videobert-large.yaml (the paper's size; needs far more than 2 cores).

        A recipe with `variant: cbt` trains the CBT variant instead (Sun et al. 2019): a text \
        BERT with MLM, a visual transformer over continuous clip embeddings from a trainable \
        front-end (a conv net over the corpus' stored frames, or a projection of its stored \
        features) with masked-frame NCE, and a shallow cross-modal transformer trained \
        contrastively with in-batch negatives (plus InfoNCE or ranking on pooled embeddings). \
        Its keys and defaults: Sources/Train/CBTRecipe.swift; recipes Recipes/cbt-tiny.yaml, \
        cbt-demo.yaml, cbt-features.yaml. Its checkpoints hold cbt_config.json, \
        model.safetensors (frontend.*, visual.*, cross.*, pooled.*) and the text BERT as the \
        Hugging Face folder text/.

        A recipe with `variant: fusion` trains the Everything-at-Once variant (Shvetsova et al. \
        2022): text (a BERT), video (the corpus' clip features) and audio (a conv net over each \
        clip's log-mel spectrogram, or its audio word) through one fusion transformer run on \
        every modality and pair, with the combinatorial contrastive loss (t-v, t-a, v-a, t-va, \
        v-ta, a-tv). Keys: Sources/Train/FusionRecipe.swift; recipe Recipes/fusion-demo.yaml.

        Checkpoints go to <out>/checkpoints/step-NNNNNNN: a Hugging Face BERT folder \
        (config.json, model.safetensors, vocab.txt) plus the visual vocabulary, the resolved \
        recipe and the trainer state. Ctrl-C saves a checkpoint and stops; --resume continues \
        exactly where a run stopped. metrics.jsonl has one JSON object per logged step; \
        loss.svg draws the curves.

        Under mpirun or srun the run is data-parallel: rank r of N trains on slice r of every \
        global batch of N × train.batch_size examples, gradients are summed with MPI_Allreduce, \
        and rank 0 writes checkpoints, logs and progress. A run can resume with another N.

        Examples:
          videobert pretrain --recipe Recipes/demo.yaml
          mpirun -np 4 videobert pretrain --recipe Recipes/videobert-base.yaml
          videobert pretrain --recipe Recipes/tiny.yaml --set corpus=demo/tokens \\
              --set train.steps=50
          videobert pretrain --recipe Recipes/demo.yaml --resume
          videobert pretrain --recipe Recipes/cbt-demo.yaml --set corpus=demo/tokens
          videobert pretrain --recipe Recipes/fusion-demo.yaml --set corpus=demo/tokens
        """)

    @Option(help: "Recipe YAML.") var recipe: String
    @Option(name: .customLong("set"), help: "Override a recipe value, e.g. --set train.lr=5e-4 (repeatable).") var overrides: [String] = []
    @Flag(help: "Continue from the newest checkpoint in the run folder.") var resume = false
    @Option(help: "Save a checkpoint and stop after this step (time-limited jobs); continue with --resume.") var stopAt: Int?
    @Flag(help: "Print the summary as JSON only.") var json = false

    func run() throws {
        let summary: PretrainSummary
        // Under mpirun/srun: data-parallel over the ranks (each takes a slice of every global batch).
        let comm = worldCommunicator()
        do {
            switch try RecipeLoader.topLevelString("variant", file: recipe, overrides: overrides) ?? "videobert" {
            case "videobert":
                let r = try RecipeLoader.load(PretrainRecipe.self, file: recipe, overrides: overrides)
                if let p = r.problem() { throw VideoBertError(p, file: recipe) }
                if comm.size > 1 {
                    Threads.configureBLAS()
                    if comm.isRoot { logLine("pretrain: \(comm.size) ranks, \(Threads.count) thread\(Threads.count == 1 ? "" : "s") each (OpenBLAS and loops)") }
                }
                let trainer = try Trainer(recipe: r, resume: resume, communicator: comm)
                trainer.showProgress = comm.isRoot
                trainer.stopAtStep = stopAt
                summary = try trainer.run()
            case "cbt":
                let r = try RecipeLoader.load(CBTRecipe.self, file: recipe, overrides: overrides)
                if let p = r.problem() { throw VideoBertError(p, file: recipe) }
                guard comm.size == 1 else {
                    // CBT's negatives are the other videos of the batch, so slicing a batch over
                    // ranks would change the objective; it runs in one process.
                    throw VideoBertError("variant cbt trains in one process (its negatives are the whole batch); run it without mpirun", file: recipe)
                }
                // Refused before anything is allocated (docs/RELIABILITY.md, "absurd settings").
                let textConfig = r.text.initFrom.isEmpty ? nil : try BertConfig.load(from: (r.text.initFrom as NSString).appendingPathComponent("config.json"))
                // The conv front-end's share needs the corpus' frames per clip and frame side
                // (clip_frames.npy's header); a corpus without them fails later with its own message.
                var frames: (perClip: Int, size: Int)?
                if r.frontend.source == "frames", let h = try? NPY.readHeader(TokenizedCorpus.firstArrayPath(r.corpus, "clip_frames")),
                   h.shape.count == 5 {
                    frames = (h.shape[1], h.shape[2])
                }
                try MemoryEstimate.check(r.memoryEstimate(textConfig: textConfig, frames: frames), maxGB: r.train.maxMemoryGB,
                                         modelKeys: "text.*, visual.* or cross.* sizes",
                                         batchKeys: "train.batch_size, data.max_clips, data.max_text_tokens, data.cross_candidates or frontend.channels",
                                         file: recipe)
                let trainer = try CBTTrainer(recipe: r, resume: resume)
                trainer.stopAtStep = stopAt
                summary = try trainer.run()
            case "fusion":
                let r = try RecipeLoader.load(FusionRecipe.self, file: recipe, overrides: overrides)
                if let p = r.problem() { throw VideoBertError(p, file: recipe) }
                guard comm.size == 1 else {
                    throw VideoBertError("variant fusion trains in one process (its negatives are the whole batch); run it without mpirun", file: recipe)
                }
                let textConfig = r.text.initFrom.isEmpty ? nil : try BertConfig.load(from: (r.text.initFrom as NSString).appendingPathComponent("config.json"))
                try MemoryEstimate.check(r.memoryEstimate(textConfig: textConfig), maxGB: r.train.maxMemoryGB,
                                         modelKeys: "text.* or fusion.* sizes", batchKeys: "train.batch_size, data.max_clips or data.max_text_tokens",
                                         file: recipe)
                let trainer = try FusionTrainer(recipe: r, resume: resume)
                trainer.stopAtStep = stopAt
                summary = try trainer.run()
            case let other:
                throw VideoBertError("variant '\(other)' is not known (videobert, cbt or fusion)", file: recipe)
            }
        } catch let e as RecipeError {
            throw VideoBertError(e.message, file: e.file)
        } catch let e as VideoBertError where e.file == "recipe" {
            throw VideoBertError(e.message, file: recipe)
        }
        guard comm.isRoot else {
            if summary.stoppedEarly && stopAt == nil { throw ExitCode(130) }
            return
        }
        if !json {
            print("trained \(summary.steps) steps in \(String(format: "%.1f", summary.seconds)) s; final loss \(String(format: "%.4f", summary.finalLoss))")
            if !summary.eval.isEmpty {
                print("held-out: " + summary.eval.keys.sorted().map { "\($0) \(String(format: "%.4f", summary.eval[$0]!))" }.joined(separator: ", "))
            }
            print("checkpoint: \(summary.checkpoint)")
        }
        print(try JSON.string(summary))
        if summary.stoppedEarly && stopAt == nil { throw ExitCode(130) }
    }
}
