import Media

extension FeaturePreset {
    /// The S3D presets (S3D.swift). A row is one clip: frames [i·stride, i·stride + framesPerRow)
    /// run through the network together (FeatureExtractor), not a mean of per-frame vectors.
    static let s3dPresets: [String: FeaturePreset] = [
        // torchvision's S3D Kinetics-400 weights (S3D_Weights.KINETICS400_V1, s3d-d76dad2f.pth) with
        // their evaluation transform: frames resized to 256×256 (not keeping the aspect ratio),
        // centre crop 224, [0, 1], Kinetics mean/std; clips of 128 frames at 15 fps as the weights'
        // accuracy is documented. https://github.com/pytorch/vision/blob/v0.28.0/torchvision/models/video/s3d.py
        // L155-161 (url, `partial(VideoClassification, crop_size=(224, 224), resize_size=(256, 256))`)
        // and L168-169 ("frame_rate=15, clips_per_video=1, clip_len=128"); torchvision/transforms/_presets.py
        // L92-93 (mean (0.43216, 0.394666, 0.37645), std (0.22803, 0.22145, 0.216989)) and L115-118
        // (resize, center_crop, convert_image_dtype, normalize). Frames are scaled by FFmpeg's
        // bicubic scaler (as `videobert frames`), not torchvision's bilinear without antialiasing.
        // `--fps` / `--frames-per-row` change the clips (VideoBERT: 20 fps, 30 frames; ≥ 14 frames).
        "s3d-kinetics": FeaturePreset(backbone: "s3d-kinetics", dim: 1024, fps: FrameRate(15), shortSide: 256, crop: 224,
                                      mean: [0.43216, 0.394666, 0.37645], std: [0.22803, 0.22145, 0.216989],
                                      framesPerRow: 128, strideFrames: 128, fixedScale: [256, 256]),
        // MIL-NCE S3D-G trained on HowTo100M (s3d_howto100m.pth + s3d_dict.npy,
        // https://github.com/antoine77340/S3D_HowTo100M README.md L13-14, L33 "normalized to [0, 1]")
        // as VideoCLIP/MMPT extracts it: 30 fps, shorter side 224, centre crop 224 (offsets
        // truncated), x/255 with no mean/std, non-overlapping clips of 30 frames (one per second).
        // https://github.com/facebookresearch/fairseq/blob/main/examples/MMPT/scripts/video_feature_extractor/extract.py
        // L66-71 (fps 30, size 224, centercrop), videoreader.py L55-61 (output size, truncated),
        // L80-85 (ffmpeg fps then scale) and L89-92 (crop x = int((width − 224) / 2)),
        // preprocessing.py L53-57 (/255, 30-frame clips). MMPT keeps `video_embedding` (the 512-d
        // joint space, `--joint` here) L2-normalised in float16; we write the raw vector, by default
        // mixed_5c (1024-d, the input of that projection).
        "s3d-howto100m": FeaturePreset(backbone: "s3d-howto100m", dim: 1024, fps: FrameRate(30), shortSide: 224, crop: 224,
                                       mean: [0, 0, 0], std: [1, 1, 1], framesPerRow: 30, strideFrames: 30, cropTruncates: true),
    ]
}
