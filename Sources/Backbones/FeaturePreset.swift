import Foundation
import Media
import Tensor

/// How a backbone sees a video: which frames, at what size and crop, normalised how, and how
/// per-frame vectors become rows. Each preset is the reference extractor's preprocessing,
/// cited where it is defined; `videobert features` writes the resolved values beside every
/// `.npy` (`FeatureRecord`) so another tool can replicate them.
///
/// Frames are those of `ffmpeg -i VIDEO -vf fps=F,scale=W:H -pix_fmt rgb24` (VideoReader's
/// `forEachFrame`), with W×H chosen per video so that the shorter side is `shortSide` and the
/// longer one `int(shortSide · long / short)` (truncated); then a centre crop of `crop`×`crop`
/// (torchvision's offsets: `int(round((H − h) / 2))`, Python's round half to even), or the whole
/// frame; values scaled to [0, 1]; then (x − mean) / std per channel. Row i reads frames
/// [i·stride, i·stride + framesPerRow) and is the mean of their vectors (2-D backbones).
public struct FeaturePreset: Sendable, Equatable {
    public var backbone: String
    public var dim: Int
    public var fps: FrameRate
    public var shortSide: Int
    /// Side of the square centre crop; nil keeps the whole scaled frame.
    public var crop: Int?
    public var mean: [Float]
    public var std: [Float]
    public var framesPerRow: Int
    public var strideFrames: Int
    /// A fixed W×H scale instead of `shortSide` (torchvision's video transforms resize to (256, 256)).
    public var fixedScale: [Int]? = nil
    /// Crop offsets `int((W − w) / 2)` (truncated, as MMPT's videoreader.py) instead of torchvision's round.
    public var cropTruncates = false
    /// A 3-D backbone (S3D): a row is one clip of framesPerRow frames, not a mean of per-frame vectors.
    public var isClip: Bool { backbone.hasPrefix("s3d") }
    /// s3d-howto100m: write MIL-NCE's 512-d joint text-video embedding instead of mixed_5c (1024-d).
    public var joint = false

    /// ImageNet statistics, the normalisation of torchvision's classification weights.
    static let imagenetMean: [Float] = [0.485, 0.456, 0.406]
    static let imagenetStd: [Float] = [0.229, 0.224, 0.225]

    public static let all: [String: FeaturePreset] = [
        // HowTo100M's released "2D" features (Miech et al. 2019): torchvision ResNet-152 ImageNet
        // weights (`models.resnet152(pretrained=True)`, i.e. resnet152-394f9c45.pth) at 1 frame per
        // second, the shorter side scaled to 224, NO crop (the whole frame, globally average-pooled),
        // x/255 then ImageNet mean/std. https://github.com/antoine77340/video_feature_extractor
        // extract.py L32-37 (framerate=1, size=224, centercrop only for 3d), video_loader.py L38-44
        // (output size, truncated) and L59-63 (ffmpeg fps then scale), preprocessing.py L17-18 and
        // L31-33 (normalisation), model.py L19-21 (ResNet-152 up to layer4 + global average pool).
        // (That script then L2-normalises and stores float16, extract.py L68-73; we write the raw
        // pooled vector, the input of torchvision's fc.)
        "resnet152": FeaturePreset(backbone: "resnet152", dim: 2048, fps: FrameRate(1), shortSide: 224, crop: nil,
                                   mean: imagenetMean, std: imagenetStd, framesPerRow: 1, strideFrames: 1),
        // torchvision's evaluation transform of the ResNet-50 ImageNet weights
        // (ResNet50_Weights.IMAGENET1K_V1, resnet50-0676ba61.pth): shorter side to 256, centre
        // crop 224, ImageNet mean/std. https://github.com/pytorch/vision/blob/v0.28.0/torchvision/models/resnet.py
        // L356-359 (`partial(ImageClassification, crop_size=224)`), torchvision/transforms/_presets.py
        // L39-65 (resize_size=256, center_crop, mean/std), torchvision/transforms/functional.py
        // L368-370 (new long side int(size·long/short)) and L592-593 (crop offsets). Frames are
        // scaled by FFmpeg's bicubic scaler (as `videobert frames`), not torchvision's bilinear.
        // One frame per second.
        "resnet50": FeaturePreset(backbone: "resnet50", dim: 2048, fps: FrameRate(1), shortSide: 256, crop: 224,
                                  mean: imagenetMean, std: imagenetStd, framesPerRow: 1, strideFrames: 1),
        // CLIP (Radford et al. 2021): the vision tower's projected embedding per frame
        // (`CLIPModel.get_image_features`, CLIPConfig.swift / CLIP.swift), with CLIP's own preprocessing
        // `_transform` of https://github.com/openai/CLIP/blob/main/clip/clip.py: Resize(224, BICUBIC)
        // of the shorter side, CenterCrop(224), ToTensor, Normalize(CLIP mean/std); frames at 1 fps
        // with each row the mean of its frames' embeddings as CLIP4Clip's meanP
        // (https://github.com/ArrowLuo/CLIP4Clip main_task_retrieval.py `--feature_framerate`
        // default 1; modules/modeling.py `_mean_pooling_for_similarity_visual`).
        "clip-vit-b32": clip("clip-vit-b32", dim: 512),
        "clip-vit-b16": clip("clip-vit-b16", dim: 512),
        "clip-vit-l14": clip("clip-vit-l14", dim: 768),
    ].merging(s3dPresets) { a, _ in a }

    public static var names: [String] { all.keys.sorted() }

    /// CLIP's normalisation (openai/CLIP clip/clip.py `_transform`).
    static let clipMean: [Float] = [0.48145466, 0.4578275, 0.40821073]
    static let clipStd: [Float] = [0.26862954, 0.26130258, 0.27577711]
    static func clip(_ name: String, dim: Int) -> FeaturePreset {
        FeaturePreset(backbone: name, dim: dim, fps: FrameRate(1), shortSide: 224, crop: 224, mean: clipMean, std: clipStd,
                      framesPerRow: 1, strideFrames: 1)
    }

    /// The scaled frame size W×H for a video of `width`×`height` (video_loader.py L38-44;
    /// torchvision functional.py L368-370): shorter side → shortSide, longer → int(shortSide·long/short).
    public func scaledSize(width: Int, height: Int) -> (width: Int, height: Int) {
        if let f = fixedScale, f.count == 2 { return (f[0], f[1]) }
        if height >= width {
            return (shortSide, Int(Double(height * shortSide) / Double(width)))
        }
        return (Int(Double(width * shortSide) / Double(height)), shortSide)
    }

    /// The crop rectangle (x, y, w, h) inside a W×H scaled frame: torchvision's centre crop
    /// offsets `int(round((W − w) / 2))` with Python's round half to even, or the whole frame.
    public func cropRect(width: Int, height: Int) -> (x: Int, y: Int, w: Int, h: Int) {
        guard let c = crop else { return (0, 0, width, height) }
        let truncates = cropTruncates
        func offset(_ d: Int) -> Int {
            let half = d / 2
            if truncates { return half }
            return d % 2 == 0 ? half : (half % 2 == 0 ? half : half + 1)   // round((d)/2), ties to even
        }
        return (offset(width - c), offset(height - c), c, c)
    }
}

/// The `<video_id>.json` written beside each `<video_id>.npy`: the resolved preprocessing.
public struct FeatureRecord: Codable, Equatable, Sendable {
    public var backbone: String
    public var dim: Int
    public var fps: Double
    public var scale: [Int]
    public var crop: [Int]
    public var mean: [Float]
    public var std: [Float]
    public var frames_per_row: Int
    public var stride_frames: Int
    public var pool: String
    public var rows: [[Double]]
}
