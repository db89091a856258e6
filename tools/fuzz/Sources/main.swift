// videobert's fuzz harness (docs/RELIABILITY.md, "fuzzing"): a seeded mutation loop over every
// parser of outside input. The parent mutates the committed seed files (tools/fuzz/seeds) and
// hands the cases to a child process (this binary with --child), which runs each through its
// parser in-process; a thrown error is the expected outcome of bad input, while a trap, a crash
// or a hang kills or stalls the child, which the parent sees and reports with the case saved.
//
//   swift run fuzz --seconds 60                    # CI: about a minute, exit 1 on any crash
//   swift run fuzz --seconds 600 --seed 7 --keep tools/fuzz/crashes
//   swift run fuzz --replay tools/fuzz/crashes/npy-17.npy   # one case, in this process
import Backbones
import Foundation
import Index
import Model
import Recipe
import Tasks
import Tensor
import Tokenize
import Train

// MARK: - parsers

/// The parser of a seed, from its file name `<kind>--<name>.<ext>`.
func parse(kind: String, path: String) throws {
    switch kind {
    case "safetensors":
        let f = try SafeTensors.read(path)
        for n in f.names { _ = try? f.floats(n) }
    case "npy":
        let a = try NPY.read(path)
        _ = try? a.floats()
        _ = try? a.integers(Int64.self)
    case "npyheader":
        _ = try NPY.readHeader(path)
    case "features":
        let rows = try NPYFeatureFiles(path: path)
        if rows.rows > 0 && rows.dim > 0 && rows.rows * rows.dim < 1 << 24 {
            var buf = [Float](repeating: 0, count: rows.rows * rows.dim)
            try buf.withUnsafeMutableBufferPointer { try rows.copyRows(0..<rows.rows, into: $0.baseAddress!) }
        }
    case "bertconfig":
        _ = try BertConfig.load(from: path)
        _ = try Checkpoint.loadBertConfig(path)
    case "embedjsonl":
        // `videobert embed`'s input, line by line, against a small VideoBERT config (50
        // WordPieces, 20 visual words, 16 positions) and a vocabulary of that size.
        let (config, vocabulary) = try embedModel()
        var builder = EmbedSequenceBuilder(config: config, vocabularyFile: vocabulary, lowercase: true, input: path)
        let data = try InputFile.read(path, maxBytes: 1 << 24, what: "input")
        for (i, line) in data.split(separator: 0x0A).enumerated() { _ = try? builder.sequence(line: Data(line), number: i + 1) }
    case "cbtconfig":
        // What `Checkpoint(folder:)` reads from a CBT checkpoint's cbt_config.json, then the
        // parameter table the model would allocate from it.
        let c = try Checkpoint.loadCBTConfig(path)
        _ = CBTModel.parameterSpecs(c)
    case "clipconfig":
        // A Hugging Face CLIP config.json, as `CLIPCheckpoint` reads it beside the weights.
        _ = try CLIPConfig.load(path)
    case "s3ddict":
        // MIL-NCE's s3d_dict.npy: a 1-D numpy array of words ('<U' or '|S').
        _ = try S3DText.readWords(path)
    case let k where k.hasPrefix("index-"):
        // One file of a small search index (index.sqlite, or the embeddings .npy) replaced by the
        // case, then the index opened and queried as `search` and `serve` do.
        let name = String(k.dropFirst("index-".count))
        let folder = try indexCopy()
        let target = name == "embeddings.npy" ? try embeddingsName(in: folder) : name
        try FileManager.default.removeItem(atPath: folder + "/" + target)
        try FileManager.default.copyItem(atPath: path, toPath: folder + "/" + target)
        if name == VideoIndex.databaseName, let referenced = embeddingsReference(in: path), referenced != target,
           !FileManager.default.fileExists(atPath: folder + "/" + referenced) {
            // The seed's meta names the embeddings file it was written with (a time-stamped
            // name): give the template's file that name so the case gets past the open.
            try FileManager.default.copyItem(atPath: folder + "/" + (try embeddingsName(in: folder)), toPath: folder + "/" + referenced)
        }
        let index = try VideoIndex(folder: folder)
        _ = try index.videos()
        _ = try index.segment(id: "00000000abc00000-1")
        _ = try index.segments(rows: Array(0..<min(index.segmentCount, 64)))
        _ = try TranscriptBM25.load(index)?.ranking("stir the tomatoes", limit: 5)
        let dim = index.embeddings?.columns ?? 0
        for mode in SearchMode.allCases {
            _ = try index.search("cut the onion", top: 5, mode: mode) { _ in (0..<dim).map { Float($0 % 3) - 1 } }
        }
    case "recipe-pretrain":
        _ = try RecipeLoader.load(PretrainRecipe.self, file: path).problem()
    case "recipe-cbt":
        _ = try RecipeLoader.load(CBTRecipe.self, file: path).problem()
    case "recipe-tokenize":
        _ = try RecipeLoader.load(TokenizeRecipe.self, file: path).problem()
    case "recipe-caption":
        _ = try RecipeLoader.load(CaptionRecipe.self, file: path).problem()
    case "subtitles":
        _ = try SubtitleParser.parseFile(path)
    case "manifest":
        _ = try CorpusSource.discover(path)
    case "captionjson":
        _ = try CaptionJSON.parseCorpusFile(path)
    case "annotations":
        _ = try StepAnnotations.load(path)
    case "labels":
        _ = try LabelList.load(path)
    case "predictions":
        _ = try CaptionFiles.loadPredictions(path)
    case "references":
        _ = try CaptionFiles.loadReferences(path)
    case "vocab":
        _ = try TextVocabulary.load(path)
    case "pth":
        let f = try TorchFile.read(path)
        for n in f.names { _ = try? f.floats(n) }
    case "clipmerges":
        let t = try CLIPTokenizer(bpeFile: path)
        _ = t.encode("a photo of a cat &amp; “quotes” ΣΑΣ")
    case "gzip":
        _ = try Gzip.decompress(try InputFile.read(path, maxBytes: 1 << 24), limit: 1 << 24, file: path)
    case let k where k.hasPrefix("corpus-"):
        // One file of a small tokenized corpus replaced by the case, then the corpus opened
        // (TokenizedCorpus validates every array and the index at open) and walked.
        let name = String(k.dropFirst("corpus-".count))
        let folder = try corpusCopy()
        try FileManager.default.removeItem(atPath: folder + "/" + name)
        try FileManager.default.copyItem(atPath: path, toPath: folder + "/" + name)
        let c = try TokenizedCorpus(path: folder)
        for s in 0..<c.segmentCount { _ = (c.text(of: s), c.visual(of: s), c.times(of: s)) }
        for split in ["train", "val", "test"] { _ = c.segments(in: split) }
    case "selftest-trap":   // --selftest: the harness must see a trap in the child
        let empty: [Int] = []
        _ = empty[Int(getpid()) % 2 + 1]
    case "selftest-hang":   // --selftest: and a hang
        while true { sleep(1) }
    default:
        throw VideoBertError("unknown fuzz kind '\(kind)'", file: path)
    }
}

/// A small tokenized corpus (3 videos), built once per process with `CorpusBuilder`; each case
/// gets a fresh copy. `tools/fuzz/seeds/corpus-*` are its files (`fuzz --write-corpus-seeds DIR`).
nonisolated(unsafe) var corpusTemplate: String?

func buildCorpus(into dir: String) throws {
    let b = try CorpusBuilder(dir: dir, featureDim: nil, frameShape: nil)
    for v in 0..<3 {
        let clips = 4 + v
        let times = (0..<clips).map { (start: Double($0) * 1.5, end: Double($0 + 1) * 1.5) }
        let sentences = [Aligner.TimedText(start: 0, end: 2.5, ids: [7, 8, Int32(9 + v)]), Aligner.TimedText(start: 3, end: 5.5, ids: [10, 11])]
        let segments = Aligner.align(sentences: sentences, clips: times, maxVideoOnlyClips: 2)
        try b.append(TokenizedVideo(id: "video\(v)", split: ["train", "val", "test"][v], source: nil, duration: Double(clips) * 1.5,
                                    clipWords: (0..<clips).map { Int32(($0 + v) % 5) }, clipTimes: times, segments: segments))
    }
    let text = try JSONDecoder().decode(CorpusIndex.TextVocab.self, from: Data(#"{"file": "text_vocab.txt", "size": 30, "cased": false, "fingerprint": "0"}"#.utf8))
    let visual = try JSONDecoder().decode(CorpusIndex.VisualVocab.self, from: Data(#"{"folder": "vocab", "words": 5, "branching": 5, "depth": 1, "dim": 4}"#.utf8))
    _ = try b.finish(textVocab: text, visualVocab: visual,
                     clipSeconds: 1.5, fps: 4, featureSource: "builtin", featureDim: 4, failures: 0)
}

func corpusCopy() throws -> String {
    if corpusTemplate == nil {
        let t = NSTemporaryDirectory() + "videobert-fuzz-corpus-\(getpid())"
        try buildCorpus(into: t)
        corpusTemplate = t
        atexit { if let t = corpusTemplate { try? FileManager.default.removeItem(atPath: t) } }
    }
    let copy = corpusTemplate! + "-case"
    try? FileManager.default.removeItem(atPath: copy)
    try FileManager.default.copyItem(atPath: corpusTemplate!, toPath: copy)
    return copy
}

/// A small search index (3 videos of 4 segments, 8-d embeddings) written once per process with
/// `IndexBuilder.write`; each case gets a fresh copy. `tools/fuzz/seeds/index-*` are its files
/// (`fuzz --write-index-seeds DIR`).
nonisolated(unsafe) var indexTemplate: String?

func buildIndex(into dir: String) throws {
    try AtomicFile.createDirectory(dir)
    let texts = ["now let's cut the onion", "stir the tomatoes in the pan", "pour the rice", "and add salt"]
    var kept: [IndexBuilder.Indexed] = []
    for v in 0..<3 {
        let key = String(format: "%016x", 0xABC0_0000 + v)
        let segments = (0..<4).map { k in
            IndexedSegment(id: "\(key)-\(k)", row: 0, video: "v\(v)", path: "/nonexistent/v\(v).mp4", start: Double(k), end: Double(k + 1),
                           text: texts[(k + v) % texts.count], thumbnail: "thumbnails/none.png")
        }
        let embeddings = (0..<4).map { k in (0..<8).map { Float(($0 + k + v) % 5) - 2 } }
        kept.append(.init(video: IndexedVideo(key: key, id: "v\(v)", path: "/nonexistent/v\(v).mp4", fingerprint: "fuzz",
                                              duration: 4, segments: 4, segmentation: "transcript"),
                          segments: segments, embeddings: embeddings))
    }
    _ = try IndexBuilder.write(folder: dir, videos: &kept, encoder: ("fuzz", 8), note: "fuzz")
}

/// The embeddings file's name in an index folder (it carries a time stamp).
func embeddingsName(in folder: String) throws -> String {
    guard let name = try FileManager.default.contentsOfDirectory(atPath: folder).first(where: { $0.hasPrefix("embeddings-") && $0.hasSuffix(".npy") }) else {
        throw VideoBertError("the fuzz index template has no embeddings file", file: folder)
    }
    return name
}

/// The first `embeddings-<digits>-<digits>.npy` name in a file's bytes (the meta row of an index.sqlite).
func embeddingsReference(in path: String) -> String? {
    guard let data = FileManager.default.contents(atPath: path), data.count < 1 << 24 else { return nil }
    let bytes = [UInt8](data), prefix = Array("embeddings-".utf8), suffix = Array(".npy".utf8)
    var i = 0
    while i + prefix.count < bytes.count {
        if Array(bytes[i..<(i + prefix.count)]) == prefix {
            var j = i + prefix.count
            while j < bytes.count, bytes[j] == UInt8(ascii: "-") || (bytes[j] >= 0x30 && bytes[j] <= 0x39) { j += 1 }
            if j + suffix.count <= bytes.count, Array(bytes[j..<(j + suffix.count)]) == suffix {
                return String(decoding: bytes[i..<(j + suffix.count)], as: UTF8.self)
            }
        }
        i += 1
    }
    return nil
}

func indexCopy() throws -> String {
    if indexTemplate == nil {
        let t = NSTemporaryDirectory() + "videobert-fuzz-index-\(getpid())"
        try buildIndex(into: t)
        indexTemplate = t
        atexit { if let t = indexTemplate { try? FileManager.default.removeItem(atPath: t) } }
    }
    let copy = indexTemplate! + "-case"
    try? FileManager.default.removeItem(atPath: copy)
    try FileManager.default.copyItem(atPath: indexTemplate!, toPath: copy)
    return copy
}

nonisolated(unsafe) var embedFiles: (BertConfig, String)?

/// The config and vocabulary file the "embedjsonl" kind parses against (written once).
func embedModel() throws -> (BertConfig, String) {
    if let embedFiles { return embedFiles }
    let dir = NSTemporaryDirectory() + "videobert-fuzz-embed-\(getpid())"
    try AtomicFile.createDirectory(dir)
    atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "videobert-fuzz-embed-\(getpid())") }
    var tokens = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "'", "the", "a", "cut", "stir", "pour", "onion",
                  "tomato", "##es", "##s", "now", "let", "s", "bowl", "pan", "salt", "into", "add"]
    while tokens.count < 50 { tokens.append("w\(tokens.count)") }
    let vocab = dir + "/vocab.txt"
    try AtomicFile.write(tokens.joined(separator: "\n") + "\n", to: vocab)
    let json = #"{"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2, "max_position_embeddings": 16, "type_vocab_size": 2, "vocab_size": 70, "videobert_text_vocab_size": 50, "videobert_visual_words": 20, "pad_token_id": 0}"#
    try AtomicFile.write(json, to: dir + "/config.json")
    embedFiles = (try BertConfig.load(from: dir + "/config.json"), vocab)
    return embedFiles!
}

func kind(of seedName: String) -> String {
    String(seedName.components(separatedBy: "--").first ?? seedName)
}

// MARK: - mutation

struct Mutator {
    var rng: SeededRNG
    static let interesting: [UInt64] = [0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0xffff, 0x7fff_ffff, 0xffff_ffff,
                                        1 << 40, 1 << 62, 0x7fff_ffff_ffff_ffff, UInt64.max]
    static let tokens: [String] = ["-1", "1e308", "NaN", ".nan", "-0", "99999999999999999999", "2.5", "[", "{", "]", "}",
                                   "\"", "&a", "*a", ": ", "- ", "\n", "\r\n", "null", "true", "\u{FEFF}", "\t", "\\u0000",
                                   "4611686018427387904", "\"shape\": [1099511627776, 1099511627776]", "'shape': (-1,)",
                                   "00:00:01.000 --> 00:00:00.500", "99:99:99,999", "-->", "WEBVTT", "\"transcript\": 42"]

    mutating func int(_ n: Int) -> Int { n <= 1 ? 0 : rng.nextInt(n) }

    mutating func mutate(_ input: [UInt8], others: [[UInt8]]) -> [UInt8] {
        var b = input
        for _ in 0..<(1 + int(4)) {
            switch int(10) {
            case 0 where !b.isEmpty:   // flip a bit
                let i = int(b.count); b[i] ^= UInt8(1 << int(8))
            case 1 where !b.isEmpty:   // a random byte
                b[int(b.count)] = UInt8(int(256))
            case 2 where !b.isEmpty:   // delete a run
                let i = int(b.count); let n = min(b.count - i, 1 + int(16)); b.removeSubrange(i..<(i + n))
            case 3:                    // insert a token
                let t = Array(Self.tokens[int(Self.tokens.count)].utf8); b.insert(contentsOf: t, at: int(b.count + 1))
            case 4 where b.count >= 8: // an interesting little-endian integer over 1, 2, 4 or 8 bytes
                let w = [1, 2, 4, 8][int(4)]; let v = Self.interesting[int(Self.interesting.count)]; let i = int(b.count - w + 1)
                for k in 0..<w { b[i + k] = UInt8((v >> (8 * UInt64(k))) & 0xff) }
            case 5 where !b.isEmpty:   // duplicate a run (grows nesting, repeats keys)
                let i = int(b.count); let n = min(b.count - i, 1 + int(64)); let chunk = Array(b[i..<(i + n)])
                for _ in 0..<(1 + int(8)) { b.insert(contentsOf: chunk, at: i) }
            case 6:                    // truncate
                if !b.isEmpty { b.removeLast(int(b.count)) }
            case 7 where !others.isEmpty: // splice with another seed of the kind
                let o = others[int(others.count)]; let cut = int(b.count + 1); let from = int(o.count + 1)
                b = Array(b[..<cut]) + Array(o[from...])
            case 8:                    // replace a decimal number with another
                if let r = numberRange(b) { b.replaceSubrange(r, with: Array(Self.tokens[int(6)].utf8)) }
            default:                   // deep nesting
                let open = [UInt8(ascii: "["), UInt8(ascii: "{")][int(2)]
                b.insert(contentsOf: [UInt8](repeating: open, count: 1 + int(5000)), at: int(b.count + 1))
            }
        }
        return b
    }

    mutating func numberRange(_ b: [UInt8]) -> Range<Int>? {
        guard !b.isEmpty else { return nil }
        var i = int(b.count)
        var tries = 0
        while tries < b.count, !(b[i] >= 0x30 && b[i] <= 0x39) { i = (i + 1) % b.count; tries += 1 }
        guard tries < b.count else { return nil }
        var j = i
        while j < b.count, b[j] >= 0x30 && b[j] <= 0x39 { j += 1 }
        return i..<j
    }
}

// MARK: - child

/// One line to the parent, unbuffered.
func say(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }

/// Reads case paths from stdin, one a line; runs each; writes "done" per case to stdout.
func runChild() -> Never {

    while let line = readLine() {
        let parts = line.split(separator: "\t", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { continue }
        do { try parse(kind: parts[0], path: parts[1]) } catch {
            // An error must be one line naming a file.
            let s = "\(error)"
            if s.contains("\n") { say("multiline\t\(s.replacingOccurrences(of: "\n", with: "\\n"))") }
        }
        say("done")
    }
    exit(0)
}

// MARK: - parent

struct Options {
    var seconds = 60.0
    var seed: UInt64 = 0
    var seeds = "tools/fuzz/seeds"
    var keep = "tools/fuzz/crashes"
    var replay: String?
    var hang = 10.0
    var selftest = false
}

func parseOptions() -> Options {
    var o = Options()
    var args = Array(CommandLine.arguments.dropFirst())
    func value() -> String {
        guard args.count >= 2 else { FileHandle.standardError.write(Data("fuzz: \(args[0]) needs a value\n".utf8)); exit(2) }
        args.removeFirst(); return args.removeFirst()
    }
    while let a = args.first {
        switch a {
        case "--seconds": o.seconds = Double(value()) ?? 60
        case "--seed": o.seed = UInt64(value()) ?? 0
        case "--seeds": o.seeds = value()
        case "--keep": o.keep = value()
        case "--replay": o.replay = value()
        case "--hang": o.hang = Double(value()) ?? 10
        case "--selftest": o.selftest = true; args.removeFirst()
        case "--write-corpus-seeds", "--write-index-seeds": _ = value()
        case "--help", "-h":
            print("usage: fuzz [--seconds S] [--seed N] [--seeds DIR] [--keep DIR] [--hang S] | --replay FILE | --selftest | --write-corpus-seeds DIR | --write-index-seeds DIR | --child")
            print("example: swift run fuzz --seconds 60")
            exit(0)
        default: FileHandle.standardError.write(Data("fuzz: unknown argument \(a)\n".utf8)); exit(2)
        }
    }
    return o
}

final class Child {
    let process = Process()
    let input = Pipe()
    let output = Pipe()
    var buffer = Data()

    init() throws {
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        process.arguments = ["--child"]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    /// Runs one case; nil when it finished, else what went wrong.
    func run(kind: String, path: String, timeout: Double) -> String? {
        try? input.fileHandleForWriting.write(contentsOf: Data("\(kind)\t\(path)\n".utf8))
        let deadline = Date().addingTimeInterval(timeout)
        let fd = output.fileHandleForReading.fileDescriptor
        while true {
            if let nl = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeSubrange(...nl)
                if line == "done" { return nil }
                if line.hasPrefix("multiline\t") { return "an error message of several lines: " + line.dropFirst(10) }
                continue
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let left = deadline.timeIntervalSinceNow
            if left <= 0 {
                process.terminate()
                return "a hang (over \(timeout) s)"
            }
            if poll(&pfd, 1, Int32(min(left, 1) * 1000)) > 0 {
                var chunk = [UInt8](repeating: 0, count: 4096)
                let n = read(fd, &chunk, chunk.count)
                if n <= 0 {
                    process.waitUntilExit()
                    return "a crash (signal \(process.terminationStatus))"
                }
                buffer.append(contentsOf: chunk[0..<n])
            }
        }
    }
}

if CommandLine.arguments.dropFirst().first == "--child" { runChild() }
signal(SIGPIPE, SIG_IGN)
let options = parseOptions()
if let i = CommandLine.arguments.firstIndex(of: "--write-index-seeds"), i + 1 < CommandLine.arguments.count {
    let out = CommandLine.arguments[i + 1]
    let t = NSTemporaryDirectory() + "videobert-fuzz-seeds-\(getpid())"
    try buildIndex(into: t)
    let embeddings = try embeddingsName(in: t)
    for (name, seed) in [(VideoIndex.databaseName, VideoIndex.databaseName), (embeddings, "embeddings.npy")] {
        try? FileManager.default.removeItem(atPath: out + "/index-" + seed + "--" + seed)
        try FileManager.default.copyItem(atPath: t + "/" + name, toPath: out + "/index-" + seed + "--" + seed)
    }
    try? FileManager.default.removeItem(atPath: t)
    exit(0)
}
if let i = CommandLine.arguments.firstIndex(of: "--write-corpus-seeds"), i + 1 < CommandLine.arguments.count {
    let out = CommandLine.arguments[i + 1]
    let t = NSTemporaryDirectory() + "videobert-fuzz-seeds-\(getpid())"
    try buildCorpus(into: t)
    for name in try FileManager.default.contentsOfDirectory(atPath: t).sorted() where !name.hasPrefix(".") {
        try? FileManager.default.removeItem(atPath: out + "/corpus-" + name + "--" + name)
        try FileManager.default.copyItem(atPath: t + "/" + name, toPath: out + "/corpus-" + name + "--" + name)
    }
    try? FileManager.default.removeItem(atPath: t)
    exit(0)
}
if let replay = options.replay {
    let name = (replay as NSString).lastPathComponent
    do { try parse(kind: kind(of: name), path: replay); print("fuzz: \(name): parsed") } catch { print("error: \(error)") }
    exit(0)
}

if options.selftest {
    // The harness itself: a trap and a hang in the child must both be reported.
    let dir = NSTemporaryDirectory() + "videobert-fuzz-selftest-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    guard FileManager.default.createFile(atPath: dir + "/case", contents: Data()) else {
        FileHandle.standardError.write(Data("error: \(dir): cannot write the self-test case\n".utf8)); exit(2)
    }
    let trap = try Child().run(kind: "selftest-trap", path: dir + "/case", timeout: 10)
    let hang = try Child().run(kind: "selftest-hang", path: dir + "/case", timeout: 1)
    let ok = (trap ?? "").hasPrefix("a crash") && (hang ?? "").hasPrefix("a hang")
    print("fuzz: selftest: trap → \(trap ?? "not seen"); hang → \(hang ?? "not seen")")
    exit(ok ? 0 : 1)
}

let seedNames = ((try? FileManager.default.contentsOfDirectory(atPath: options.seeds)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
guard !seedNames.isEmpty else {
    FileHandle.standardError.write(Data("fuzz: no seeds in \(options.seeds)\n".utf8)); exit(2)
}
var seeds: [(name: String, kind: String, bytes: [UInt8])] = []
for n in seedNames {
    guard let d = FileManager.default.contents(atPath: (options.seeds as NSString).appendingPathComponent(n)) else { continue }
    seeds.append((n, kind(of: n), [UInt8](d)))
}
var byKind: [String: [[UInt8]]] = [:]
for s in seeds { byKind[s.kind, default: []].append(s.bytes) }

let work = NSTemporaryDirectory() + "videobert-fuzz-\(getpid())"
try? FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: work) }
var mutator = Mutator(rng: SeededRNG(seed: options.seed))
var worker = try Child()
let started = Date()
var cases = 0
var findings: [String] = []
var perKind: [String: Int] = [:]
// Every seed once as it is (the seeds must parse cleanly or fail cleanly), then mutations.
var queue = seeds.indices.map { ($0, false) }
while Date().timeIntervalSince(started) < options.seconds {
    let (index, mutate) = queue.isEmpty ? (mutator.int(seeds.count), true) : queue.removeFirst()
    let s = seeds[index]
    let bytes = mutate ? mutator.mutate(s.bytes, others: byKind[s.kind] ?? []) : s.bytes
    let ext = (s.name as NSString).pathExtension
    let path = (work as NSString).appendingPathComponent("\(s.kind)--case\(cases % 64).\(ext)")
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
        FileHandle.standardError.write(Data("error: \(path): cannot write the case (disk full?)\n".utf8)); exit(2)
    }
    cases += 1
    perKind[s.kind, default: 0] += 1
    if let problem = worker.run(kind: s.kind, path: path, timeout: options.hang) {
        try? FileManager.default.createDirectory(atPath: options.keep, withIntermediateDirectories: true)
        let saved = (options.keep as NSString).appendingPathComponent("\(s.kind)--crash-\(options.seed)-\(cases).\(ext)")
        let kept = FileManager.default.createFile(atPath: saved, contents: Data(bytes))
        let line = "fuzz: \(problem) on a mutation of \(s.name); "
            + (kept ? "saved \(saved) (replay: swift run fuzz --replay \(saved))" : "could not save it to \(saved)")
        FileHandle.standardError.write(Data((line + "\n").utf8))
        findings.append(line)
        if !problem.hasPrefix("an error message") { worker = try Child() }
    }
}
try? worker.input.fileHandleForWriting.close()
worker.process.waitUntilExit()
let kinds = perKind.keys.sorted().map { "\($0) \(perKind[$0]!)" }.joined(separator: ", ")
print("fuzz: \(cases) cases in \(String(format: "%.0f", Date().timeIntervalSince(started))) s (seed \(options.seed); \(kinds)); \(findings.count) finding\(findings.count == 1 ? "" : "s")")
exit(findings.isEmpty ? 0 : 1)
