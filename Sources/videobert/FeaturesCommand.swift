import ArgumentParser
import Backbones
import Foundation
import Media
import Tensor
import Tokenize

/// `videobert features`: standard backbone features (torchvision ResNets) for videos.
struct FeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features",
        abstract: "Features from a standard backbone (ResNet-50/152 and CLIP ViT per frame, S3D per clip) for videos; CLIP and S3D-HowTo100M text embeddings.",
        discussion: """
        Writes OUT/<video_id>.npy (float32 [rows, dim]) and OUT/<video_id>.json with the preprocessing: {"backbone", "dim", "fps", "scale": [W, H], "crop": [w, h], "mean", "std", "frames_per_row", "stride_frames", "pool", "rows": [[start_s, end_s], ...]}. Frames are those of `ffmpeg -vf fps=F,scale=W:H -pix_fmt rgb24` (as `videobert frames`), centre-cropped to w×h, scaled to [0, 1], then (x - mean) / std; row i is the mean of the vectors of frames [i·stride, i·stride + frames_per_row). The vector is the input of torchvision's fc (2048 values).

        Presets: resnet152 is HowTo100M's 2D features (1 fps, shorter side 224, whole frame; torchvision resnet152-394f9c45.pth); resnet50 is torchvision's ImageNet evaluation transform (shorter side 256, centre crop 224; resnet50-0676ba61.pth). Weights: a torchvision state dict as .pth (read without executing anything) or .safetensors.

        CLIP (clip-vit-b32, clip-vit-b16, clip-vit-l14): --weights is a Hugging Face CLIP folder (config.json + model.safetensors or pytorch_model.bin, e.g. openai/clip-vit-base-patch32); the vector is the projected image embedding (get_image_features, not normalised), frames at 1 fps, shorter side 224 (bicubic), centre crop 224, CLIP's mean/std. With --text (repeatable) or --text-file (one text per line) instead of videos, writes the texts' projected embeddings (get_text_features) to --out X.npy [texts, dim]; the tokenizer is the folder's vocab.json + merges.txt, or --vocab.

        S3D (3-D, a row is one clip of frames_per_row frames, "pool": "clip"): s3d-kinetics is torchvision's S3D (s3d-d76dad2f.pth; 15 fps, 256×256 then centre crop 224, Kinetics mean/std, 128-frame clips; the 1024-d mean of its average pool); s3d-howto100m is MIL-NCE's S3D-G (s3d_howto100m.pth; 30 fps, shorter side 224, centre crop 224, [0, 1], 30-frame clips as VideoCLIP extracts them; mixed_5c, 1024-d, or with --joint its 512-d text-video embedding). Text into the same 512-d space: --text/--text-file with --dictionary s3d_dict.npy and --out X.npy.

        VIDEO|DIR|MANIFEST: one video file, a folder of videos, or a .jsonl manifest of {"id", "video"}. Finished videos are skipped (rerun to resume); a video that fails is reported and the others are done (exit status 1).

        Example:
          videobert features talks/ --backbone resnet152 \\
            --weights resnet152-394f9c45.pth --out features/
          videobert features talks/ --backbone clip-vit-b32 \\
            --weights clip-vit-base-patch32/ --out clip-features/
          videobert features --backbone clip-vit-b32 --weights clip-vit-base-patch32/ \\
            --text "a man riding a bike" --text "slicing onions" --out texts.npy
          videobert features talks/ --backbone s3d-howto100m --joint \\
            --weights s3d_howto100m.pth --out s3d/
          videobert features --backbone s3d-howto100m --weights s3d_howto100m.pth \\
            --dictionary s3d_dict.npy --text "crack the eggs" --out query.npy
        """
    )

    @Argument(help: "A video file, a folder of videos, or a .jsonl manifest (none with --text / --text-file).")
    var input: String?

    @Option(help: "\(FeaturePreset.names.joined(separator: ", ")).")
    var backbone: String

    @Option(help: "The backbone's state dict (.pth/.pt/.bin or .safetensors).")
    var weights: String

    @Option(help: "Output folder for <video_id>.npy and <video_id>.json (with --text: the .npy file).")
    var out: String

    @Option(help: "A text to embed (CLIP, s3d-howto100m; repeatable); --out is then a .npy file [texts, dim].")
    var text: [String] = []

    @Option(help: "A UTF-8 file of texts to embed, one per line.")
    var textFile: String?

    @Option(help: "CLIP: the tokenizer's vocabulary (bpe_simple_vocab_16e6.txt.gz or a folder with vocab.json + merges.txt); default: the --weights folder.")
    var vocab: String?

    @Flag(help: "s3d-howto100m: write the 512-d joint text-video embedding instead of mixed_5c.")
    var joint = false

    @Option(help: "s3d-howto100m's vocabulary, s3d_dict.npy (with --text/--text-file).")
    var dictionary: String?

    @Option(help: "Frames per second (default: the preset's).")
    var fps: String?

    @Option(help: "Frames averaged into one row (default: the preset's, 1).")
    var framesPerRow: Int?

    @Option(help: "Frames between the starts of rows (default: frames per row).")
    var strideFrames: Int?

    @Option(help: "Frames per backbone batch.")
    var batch: Int = 16

    @Option(help: "Decoder threads; 0 lets FFmpeg use one per core.")
    var threads: Int = 0

    func validate() throws {
        guard FeaturePreset.all[backbone] != nil else {
            throw ValidationError("--backbone must be one of \(FeaturePreset.names.joined(separator: ", ")) (got '\(backbone)')")
        }
        if let fps { do { _ = try FrameRate(parsing: fps) } catch let e as VideoBertError { throw ValidationError(e.message) } }
        if let f = framesPerRow, !(1...10_000).contains(f) { throw ValidationError("--frames-per-row must be 1...10000") }
        if let s = strideFrames, !(1...10_000).contains(s) { throw ValidationError("--stride-frames must be 1...10000") }
        if !(1...1024).contains(batch) { throw ValidationError("--batch must be 1...1024") }
        if threads < 0 { throw ValidationError("--threads must be 0 (automatic) or more") }
        if joint && backbone != "s3d-howto100m" { throw ValidationError("--joint is for --backbone s3d-howto100m") }
        let texts = !text.isEmpty || textFile != nil
        let clip = CLIPConfig.presets[backbone] != nil
        if texts && input != nil { throw ValidationError("give videos or --text / --text-file, not both") }
        if !texts && input == nil { throw ValidationError("missing VIDEO|DIR|MANIFEST (or --text / --text-file)") }
        if texts && !clip && backbone != "s3d-howto100m" {
            throw ValidationError("--text needs a backbone with a text tower (\((CLIPConfig.presets.keys.sorted() + ["s3d-howto100m"]).joined(separator: ", ")))")
        }
        if texts && !clip && dictionary == nil { throw ValidationError("--text/--text-file with s3d-howto100m need --dictionary (s3d_dict.npy)") }
    }

    func run() throws {
        if input == nil, CLIPConfig.presets[backbone] != nil {
            Threads.configureBLAS()
            return try CLIPTextCommand.embed(texts: text, textFile: textFile, backbone: backbone, weights: weights, vocab: vocab, out: out, batch: batch)
        }
        if let dictionary, input == nil {
            var texts = text
            if let textFile {
                let body: String
                do { body = try String(contentsOfFile: textFile, encoding: .utf8) } catch {
                    throw VideoBertError("cannot read the text file (UTF-8 expected)", file: textFile)
                }
                texts += body.split(separator: "\n", omittingEmptySubsequences: false).map { String($0) }.filter { !$0.isEmpty }
            }
            let tower = try S3DText(weights: try WeightFile.open(weights), dictionary: dictionary)
            try NPY.write(tower.embed(texts), shape: [texts.count, tower.dim], to: out)
            struct TextLine: Encodable { var out: String; var texts: Int; var dim: Int }
            print(try JSON.string(TextLine(out: out, texts: texts.count, dim: tower.dim)))
            return
        }
        guard let input else { throw VideoBertError("missing a video file, folder or manifest") }
        var preset = FeaturePreset.all[backbone]!
        if let fps { preset.fps = try FrameRate(parsing: fps) }
        if let f = framesPerRow { preset.framesPerRow = f; preset.strideFrames = f }
        if let s = strideFrames { preset.strideFrames = s }
        preset.joint = joint
        let videos = try Self.videos(input)
        Threads.configureBLAS()
        let extractor = try FeatureExtractor(preset: preset, weights: weights)
        extractor.batchSize = batch
        extractor.decoderThreads = threads
        let summary = try extractor.run(videos, out: out)
        struct Line: Encodable { var out: String; var written: Int; var skipped: Int; var failed: Int }
        print(try JSON.string(Line(out: out, written: summary.written.count, skipped: summary.skipped.count, failed: summary.failed.count)))
        if !summary.failed.isEmpty {
            throw VideoBertError("\(summary.failed.count) of \(videos.count) videos failed (errors above); rerun to retry them")
        }
    }

    /// `tokenize` with `features.source: <backbone>`: extracts the corpus's features with the
    /// preset into `features.dir` (default OUT/features-<backbone>; finished videos are kept, so a
    /// rerun resumes) and returns the recipe reading them as `npy` (one row per
    /// frames_per_row / fps seconds). A video that fails here is then a failed video of tokenize.
    static func extractForTokenize(recipe: TokenizeRecipe, items: [VideoItem], out: String) throws -> TokenizeRecipe {
        var r = recipe
        // s3d-howto100m-joint: the s3d-howto100m preset writing its joint embedding (`--joint`).
        let joint = r.features.source == "s3d-howto100m-joint"
        guard let base = FeaturePreset.all[joint ? "s3d-howto100m" : r.features.source] else {
            throw VideoBertError("features.source '\(r.features.source)' is not a backbone preset (\(FeaturePreset.names.joined(separator: ", ")))")
        }
        var preset = base
        preset.joint = joint
        if preset.isClip {
            // A clip backbone (S3D) sees the recipe's clips: frames.fps, round(fps × clip_seconds) frames each.
            preset.fps = FrameRate(approximating: r.frames.fps)
            preset.framesPerRow = r.framesPerClip
            preset.strideFrames = r.framesPerClip
        }
        let dir = r.features.dir.isEmpty ? (out as NSString).appendingPathComponent("features-" + r.features.source) : r.features.dir
        Threads.configureBLAS()
        let extractor = try FeatureExtractor(preset: preset, weights: r.features.weights)
        _ = try extractor.run(items.compactMap { item in item.video.map { (item.id, $0) } }, out: dir)
        r.features.source = "npy"
        r.features.dir = dir
        r.features.secondsPerRow = Double(preset.framesPerRow) / preset.fps.framesPerSecond
        return r
    }

    /// (id, video) pairs: one file (id = its base name), or a folder / .jsonl manifest as `tokenize` reads them.
    static func videos(_ input: String) throws -> [(id: String, video: String)] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: input, isDirectory: &isDir) else {
            throw VideoBertError("no such video, folder or manifest", file: input)
        }
        if !isDir.boolValue && !input.hasSuffix(".jsonl") && !input.hasSuffix(".json") {
            return [(((input as NSString).lastPathComponent as NSString).deletingPathExtension, input)]
        }
        let items = try CorpusSource.discover(input).compactMap { item in item.video.map { (item.id, $0) } }
        guard !items.isEmpty else { throw VideoBertError("lists no video files", file: input) }
        return items
    }
}
