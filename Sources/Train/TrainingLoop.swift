import Foundation
import Model
import Recipe
import Report
import Tensor

/// Set by SIGINT/SIGTERM; the training loop checks it after every step, saves a checkpoint and stops.
nonisolated(unsafe) var stopRequested: sig_atomic_t = 0

/// What a pretraining run reports when it ends (`videobert pretrain` prints it as JSON).
public struct PretrainSummary: Codable, Sendable {
    public var steps: Int
    public var finalLoss: Double
    public var eval: [String: Double]
    public var checkpoint: String
    public var seconds: Double
    public var stoppedEarly: Bool
    enum CodingKeys: String, CodingKey {
        case steps, eval, checkpoint, seconds
        case finalLoss = "final_loss", stoppedEarly = "stopped_early"
    }

    /// A run stopped before its first step has no loss: `final_loss` is null then (JSON has no NaN).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(steps, forKey: .steps)
        if finalLoss.isFinite { try c.encode(finalLoss, forKey: .finalLoss) } else { try c.encodeNil(forKey: .finalLoss) }
        try c.encode(eval.filter { $0.value.isFinite }, forKey: .eval)
        try c.encode(checkpoint, forKey: .checkpoint)
        try c.encode(seconds, forKey: .seconds)
        try c.encode(stoppedEarly, forKey: .stoppedEarly)
    }

    public init(steps: Int, finalLoss: Double, eval: [String: Double], checkpoint: String, seconds: Double, stoppedEarly: Bool) {
        self.steps = steps; self.finalLoss = finalLoss; self.eval = eval; self.checkpoint = checkpoint
        self.seconds = seconds; self.stoppedEarly = stoppedEarly
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        steps = try c.decode(Int.self, forKey: .steps)
        finalLoss = try c.decodeIfPresent(Double.self, forKey: .finalLoss) ?? .nan
        eval = try c.decode([String: Double].self, forKey: .eval)
        checkpoint = try c.decode(String.self, forKey: .checkpoint)
        seconds = try c.decode(Double.self, forKey: .seconds)
        stoppedEarly = try c.decode(Bool.self, forKey: .stoppedEarly)
    }
}

/// Measurements of micro-batches, summed: each key holds (sum, count) and reports sum / count.
/// A loss is added as (value, 1) per micro-batch, so it reports the mean over micro-batches; an
/// accuracy as (correct, rows), so it reports the fraction over all rows and is left out while
/// no row was scored.
public struct MetricSums: Sendable {
    private(set) var sums: [String: (sum: Double, count: Double)] = [:]
    /// Tokens (or examples) processed, for the throughput.
    public var tokens = 0

    public init() {}

    public mutating func add(_ key: String, _ value: Double, count: Double = 1) {
        let old = sums[key] ?? (0, 0)
        sums[key] = (old.sum + value, old.count + count)
    }

    /// A ratio that is reported only when `count` adds up to more than 0.
    public mutating func addRatio(_ key: String, correct: Int, count: Int) {
        add(key, Double(correct), count: Double(count))
    }

    /// Adds another's sums, counts and tokens.
    public mutating func add(_ other: MetricSums) {
        for (key, s) in other.sums { add(key, s.sum, count: s.count) }
        tokens += other.tokens
    }

    /// Every key with a positive count: sum / count.
    public func values(prefix: String = "") -> [String: Double] {
        var out: [String: Double] = [:]
        for (key, s) in sums where s.count > 0 { out[prefix + key] = s.sum / s.count }
        return out
    }
}

/// The model-specific half of a training run (VideoBERT, CBT, caption fine-tuning); `TrainingLoop` is the other
/// half: AdamW over every store, the learning-rate schedule, clipping, gradient accumulation,
/// NaN checks, held-out evaluation, metrics.jsonl, loss.svg, atomic checkpoints with the trainer
/// state, exact resume and Ctrl-C.
public protocol PretrainingTask: AnyObject {
    associatedtype SamplerState: Codable
    /// Every parameter store, with the prefix its tensors take in optimizer.safetensors.
    var parameterStores: [(prefix: String, store: ParameterStore)] { get }
    /// One line for the log when the run starts.
    var runDescription: String { get }
    /// The metrics drawn in loss.svg.
    var plotKeys: [String] { get }
    /// Fresh parameters (a run from step 0).
    func initializeParameters() throws
    /// One micro-batch, forward and backward: its loss and measurements, gradients of
    /// lossScale · loss ADDED to the stores' gradients.
    func trainMicroBatch(step: Int, micro: Int, dropoutSeed: UInt64, lossScale: Float) -> (loss: Float, metrics: MetricSums)
    /// Held-out metrics (the same data every time).
    func evaluate(step: Int) throws -> [String: Double]
    /// Writes the model's files (weights, configs, vocabularies) into a checkpoint folder.
    func saveModel(to folder: String) throws
    /// Loads the weights of a checkpoint folder written by `saveModel`.
    func loadModel(from folder: String) throws
    /// The data position, saved in trainer_state.json.
    var samplerState: SamplerState { get }
    func restoreSampler(_ state: SamplerState)
    /// Why a sampler state read from a checkpoint cannot be restored (indices out of range), or nil.
    func samplerStateProblem(_ state: SamplerState) -> String?
    /// Values computed from the summed measurements of a logging window (e.g. a total loss from
    /// the objectives' row-weighted means).
    func finishMetrics(_ values: inout [String: Double])
    /// Called when `run` returns or throws (a task stops its background batch loader).
    func trainingEnded()
}

extension PretrainingTask {
    public func finishMetrics(_ values: inout [String: Double]) {}
    public func trainingEnded() {}
    public func samplerStateProblem(_ state: SamplerState) -> String? { nil }
}

/// What a caller may set on a run before `run()`: the progress line, and a step to stop at.
public final class TrainingControls {
    public var showProgress = true
    /// Stop (as on Ctrl-C: checkpoint, then return) once this step is done. For tests and for
    /// splitting a run into sessions; nil: run to `train.steps`.
    public var stopAtStep: Int?
    public init() {}
}

/// A training run (`TrainingLoop`, and the fronts that own one: `Trainer`, `CBTTrainer`,
/// `CaptionFineTuner`), with the loop's controls as its properties.
public protocol TrainingRun: AnyObject {
    var controls: TrainingControls { get }
}

extension TrainingRun {
    public var showProgress: Bool {
        get { controls.showProgress }
        set { controls.showProgress = newValue }
    }
    public var stopAtStep: Int? {
        get { controls.stopAtStep }
        set { controls.stopAtStep = newValue }
    }
}

/// The generic training loop (see `PretrainingTask`). Checkpoints: every `checkpoint.every`
/// steps, at the end and on Ctrl-C, `<out>/checkpoints/step-NNNNNNN/` with the task's files plus
/// recipe.yaml (resolved), trainer_state.json and optimizer.safetensors (AdamW moments `m.<name>`,
/// `v.<name>`), written under a temporary name and renamed; the newest `checkpoint.keep` are kept.
///
/// Data-parallel (N ranks of `comm`): the task draws rank r's slice of each global batch and
/// reports measurements over all ranks; the loop sums the gradients of every store over the ranks
/// (`MPI_Allreduce`), has every rank stop at the same step, and lets rank 0 alone evaluate and
/// write checkpoints, metrics.jsonl, loss.svg and progress.
public final class TrainingLoop<Task: PretrainingTask>: TrainingRun {
    public struct Settings {
        public var out: String
        public var train: Optimization
        public var eval: PretrainRecipe.Evaluation
        public var checkpoint: PretrainRecipe.Checkpointing
        public var logEvery: Int
        /// The resolved recipe, saved as recipe.yaml.
        public var recipeText: String
        /// Settings that must not change across a resume.
        public var fingerprint: String
        /// Names the run in the log and the progress line.
        public var label = "pretrain"
        /// The split written beside training metrics in metrics.jsonl.
        public var trainSplit = "train"
        /// trainer_state.json's `format`: a resume checks it, so one kind of run cannot continue another.
        public var stateFormat = "videobert-trainer-state"
        /// loss.svg's title.
        public var plotTitle = "pretraining loss"

        public init(out: String, train: Optimization, eval: PretrainRecipe.Evaluation,
                    checkpoint: PretrainRecipe.Checkpointing, logEvery: Int, recipeText: String, fingerprint: String) {
            self.out = out; self.train = train; self.eval = eval; self.checkpoint = checkpoint; self.logEvery = logEvery
            self.recipeText = recipeText; self.fingerprint = fingerprint
        }
    }

    /// Saved as trainer_state.json in every checkpoint (no wall-clock values, so that identical
    /// runs write identical bytes).
    struct TrainerState: Codable {
        var format = "videobert-trainer-state"
        var version = 1
        var step: Int
        var adamStep: Int
        var sampler: Task.SamplerState
        var recipeFingerprint: String
    }

    let task: Task
    let settings: Settings
    var adams: [AdamW]
    public internal(set) var step = 0
    public let controls = TrainingControls()
    let runDir: String
    let checkpointsDir: String
    let comm: Communicator

    public init(task: Task, settings: Settings, resume: Bool, communicator: Communicator = SingleProcess()) throws {
        self.task = task
        comm = communicator
        self.settings = settings
        runDir = settings.out
        checkpointsDir = (settings.out as NSString).appendingPathComponent("checkpoints")
        if communicator.isRoot {
            // One writer per run folder; what a killed run left (.step-*.tmp-PID-N) is removed.
            try FolderLock.acquire(settings.out)
            AtomicFile.removeStaleTemporaries(in: settings.out)
            AtomicFile.removeStaleTemporaries(in: checkpointsDir)
        }
        let t = settings.train
        adams = task.parameterStores.map { AdamW(store: $0.store, beta1: t.beta1, beta2: t.beta2, eps: t.eps, weightDecay: t.weightDecay) }
        let latest = Self.latestCheckpoint(in: checkpointsDir)
        if resume, let latest {
            try restore(from: latest)
        } else {
            if resume { logLine("\(settings.label): no checkpoint in \(checkpointsDir); starting from step 0") }
            if !resume, latest != nil {
                throw VideoBertError("holds checkpoints of an earlier run; pass --resume to continue it, or choose another out", file: checkpointsDir)
            }
            try task.initializeParameters()
        }
    }

    var stores: [ParameterStore] { task.parameterStores.map(\.store) }

    // MARK: Checkpoints

    static func checkpointName(_ step: Int) -> String { CheckpointFiles.name(step: step) }

    static func latestCheckpoint(in dir: String) -> String? { CheckpointFiles.latest(in: dir) }

    func saveCheckpoint() throws -> String {
        try CheckpointFiles.write(step: step, in: checkpointsDir, keep: settings.checkpoint.keep) { tmp in
            try task.saveModel(to: tmp)
            try AtomicFile.write(settings.recipeText, to: (tmp as NSString).appendingPathComponent(Checkpoint.File.recipe.rawValue))
            let state = TrainerState(format: settings.stateFormat, step: step, adamStep: adams[0].step, sampler: task.samplerState, recipeFingerprint: settings.fingerprint)
            try JSON.write(state, to: (tmp as NSString).appendingPathComponent(Checkpoint.File.trainerState.rawValue))
            try CheckpointFiles.writeOptimizerState(task.parameterStores, to: (tmp as NSString).appendingPathComponent(Checkpoint.File.optimizer.rawValue))
        }
    }

    func restore(from dir: String) throws {
        let statePath = (dir as NSString).appendingPathComponent(Checkpoint.File.trainerState.rawValue)
        let state = try JSON.decode(TrainerState.self, from: statePath)
        // Validated before anything is loaded or printed (docs/RELIABILITY.md, "damaged state").
        let maxStep = 1 << 40
        guard (0...maxStep).contains(state.step), (0...maxStep).contains(state.adamStep) else {
            throw VideoBertError("step \(state.step) / adam_step \(state.adamStep) outside 0...\(maxStep)", file: statePath)
        }
        guard Self.checkpointName(state.step) == (dir as NSString).lastPathComponent else {
            throw VideoBertError("step \(state.step) does not match the folder name \((dir as NSString).lastPathComponent)", file: statePath)
        }
        if let p = task.samplerStateProblem(state.sampler) {
            throw VideoBertError(p, file: statePath)
        }
        guard state.format == settings.stateFormat else {
            throw VideoBertError("holds a \(state.format) checkpoint, not a \(settings.stateFormat) one", file: dir)
        }
        guard state.recipeFingerprint == settings.fingerprint else {
            throw VideoBertError("was written with different model or data settings; resume with the recipe it was started with", file: dir)
        }
        try task.loadModel(from: dir)
        try CheckpointFiles.readOptimizerState(into: task.parameterStores, from: (dir as NSString).appendingPathComponent(Checkpoint.File.optimizer.rawValue))
        for i in adams.indices { adams[i].step = state.adamStep }
        task.restoreSampler(state.sampler)
        step = state.step
        logLine("\(settings.label): resumed from \(dir) at step \(step)")
    }

    // MARK: Training

    public func run() throws -> PretrainSummary {
        let started = Date()
        let root = comm.isRoot
        let N = comm.size
        try AtomicFile.createDirectory(runDir)
        let metricsPath = (runDir as NSString).appendingPathComponent("metrics.jsonl")
        if step == 0 && root { try AtomicFile.write("", to: metricsPath) }
        let metrics = root ? try MetricsLog(path: metricsPath, truncateAfterStep: step) : nil
        let plotPath = (runDir as NSString).appendingPathComponent("loss.svg")
        let t = settings.train
        if root {
            logLine("\(settings.label): \(task.runDescription); \(N) rank\(N == 1 ? "" : "s") × batch \(t.batchSize) × \(t.gradAccum) accumulation = \(N * t.batchSize * t.gradAccum) examples per step; \(t.steps) steps")
        }
        let previous = signal(SIGINT) { _ in stopRequested = 1 }
        let previousTerm = signal(SIGTERM) { _ in stopRequested = 1 }
        defer { signal(SIGINT, previous); signal(SIGTERM, previousTerm) }
        defer { task.trainingEnded() }
        stopRequested = 0

        let progress = ProgressReporter(label: settings.label, total: t.steps, unit: "steps", enabled: showProgress && root)
        progress.advance(step)
        var meter = MetricSums()
        var windowStart = Date()
        var lastCheckpoint = Self.latestCheckpoint(in: checkpointsDir) ?? ""
        var lastEval: [String: Double] = [:]
        var lastLoss = Double.nan
        var stoppedEarly = false
        let scale = 1 / Float(t.gradAccum)
        let stores = stores
        func lastGood() -> String { lastCheckpoint.isEmpty ? "none" : lastCheckpoint }
        while step < t.steps {
            // Every rank stops at the same step (Ctrl-C reaches the ranks at different moments).
            var stop = [Double(stopRequested != 0 || (stopAtStep.map { step >= $0 } ?? false) ? 1 : 0)]
            if N > 1 { stop.withUnsafeMutableBufferPointer { comm.allreduceMax($0) } }
            if stop[0] > 0 { stoppedEarly = true; break }
            step += 1
            for store in stores { store.zeroGradients() }
            var stepLoss = 0.0
            // With many micro-batches a step can take long: Ctrl-C / SIGTERM is honoured between
            // them (one process), abandoning the step; the checkpoint holds the state before it.
            let samplerBefore = N == 1 && t.gradAccum > 1 ? task.samplerState : nil
            var abandoned = false
            for micro in 0..<t.gradAccum {
                if let samplerBefore, micro > 0, stopRequested != 0 {
                    task.restoreSampler(samplerBefore)
                    abandoned = true
                    break
                }
                let seed = dropoutSeed(base: UInt64(t.seed), step: step, site: micro)
                let (loss, m) = task.trainMicroBatch(step: step, micro: micro, dropoutSeed: seed, lossScale: scale)
                guard loss.isFinite else {
                    let parts = m.values().filter { $0.key.hasSuffix("loss") }.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
                    throw VideoBertError("loss is \(loss) at step \(step) (\(parts.joined(separator: ", "))); the last good checkpoint is \(lastGood())", file: runDir)
                }
                meter.add(m)
                stepLoss += Double(loss) / Double(t.gradAccum)
            }
            if abandoned {
                step -= 1
                for store in stores { store.zeroGradients() }
                stoppedEarly = true
                break
            }
            if N > 1 {
                for store in stores { comm.allreduceSum(UnsafeMutableBufferPointer(start: store.gradients, count: store.count)) }
            }
            for store in stores {
                if let bad = store.firstNonFiniteGradient() {
                    throw VideoBertError("gradient of \(bad) is not finite at step \(step); the last good checkpoint is \(lastGood())", file: runDir)
                }
            }
            let gradNorm = t.clipGrad > 0 ? clipGradientNorm(stores, maxNorm: t.clipGrad) : gradientNorm(stores)
            let lr = t.learningRate(step: step)
            for i in adams.indices { adams[i].update(stores[i], lr: lr) }
            lastLoss = stepLoss

            if step % settings.logEvery == 0 || step == t.steps {
                let secs = Date().timeIntervalSince(windowStart)
                var line = meter.values()
                task.finishMetrics(&line)
                line["lr"] = lr
                line["grad_norm"] = gradNorm
                line["tokens_per_s"] = Double(meter.tokens) / max(secs, 1e-9)
                line["seconds"] = Date().timeIntervalSince(started)
                if N > 1 { line["bytes_communicated"] = Double(comm.bytesCommunicated) }
                try metrics?.append(step: step, kind: "train", split: settings.trainSplit, values: line)
                progress.setStatus(String(format: "loss %.3f  %.0f tok/s", line["loss"] ?? .nan, line["tokens_per_s"] ?? 0))
                meter = MetricSums()
                windowStart = Date()
            }
            if root && ((settings.eval.every > 0 && step % settings.eval.every == 0) || step == t.steps) {
                lastEval = try task.evaluate(step: step)
                if !lastEval.isEmpty {   // nothing held out: no eval line
                    var line = lastEval
                    line["seconds"] = Date().timeIntervalSince(started)
                    try metrics?.append(step: step, kind: "eval", split: settings.eval.split, values: line)
                    try metrics?.plot(to: plotPath, title: settings.plotTitle, keys: task.plotKeys)
                }
                windowStart = Date()
            }
            if root && (step % settings.checkpoint.every == 0 || step == t.steps) {
                lastCheckpoint = try saveCheckpoint()
            }
            progress.advance()
        }
        if stoppedEarly && root {
            lastCheckpoint = try saveCheckpoint()
            logLine("\(settings.label): stopped at step \(step); saved \(lastCheckpoint) (continue with --resume)")
        }
        progress.finish()
        try metrics?.plot(to: plotPath, title: settings.plotTitle, keys: task.plotKeys)
        if N > 1 { comm.barrier() }
        return PretrainSummary(steps: step, finalLoss: lastLoss, eval: lastEval, checkpoint: lastCheckpoint,
                               seconds: Date().timeIntervalSince(started), stoppedEarly: stoppedEarly)
    }
}
