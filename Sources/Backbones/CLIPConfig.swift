import Foundation
import Tensor

// The architecture of a CLIP model (Radford et al. 2021, https://arxiv.org/abs/2103.00020) as
// Hugging Face transformers stores it in a CLIP folder's `config.json` (`CLIPConfig` with its
// `text_config` and `vision_config`; keys absent from the file take transformers' defaults,
// transformers/models/clip/configuration_clip.py `CLIPTextConfig.__init__`,
// `CLIPVisionConfig.__init__`, and the legacy `text_config_dict` / `vision_config_dict` override
// them as `CLIPConfig.__init__` does).

/// One transformer tower: width, depth, heads, MLP width, activation, LayerNorm ε.
public struct CLIPTowerShape: Sendable, Equatable {
    public var hidden: Int
    public var intermediate: Int
    public var layers: Int
    public var heads: Int
    /// `quick_gelu` (x·σ(1.702x), CLIP's) or `gelu` (erf).
    public var activation: String
    public var eps: Float

    public init(hidden: Int, intermediate: Int, layers: Int, heads: Int, activation: String, eps: Float) {
        (self.hidden, self.intermediate, self.layers, self.heads, self.activation, self.eps) = (hidden, intermediate, layers, heads, activation, eps)
    }
}

public struct CLIPConfig: Sendable, Equatable {
    public var vision: CLIPTowerShape
    public var imageSize: Int
    public var patchSize: Int
    public var text: CLIPTowerShape
    public var vocabSize: Int
    public var maxPositions: Int
    public var projectionDim: Int

    /// transformers' `CLIPConfig()`: ViT-B/32 and the 12-layer, 512-wide text tower.
    public static let vitB32 = CLIPConfig(
        vision: CLIPTowerShape(hidden: 768, intermediate: 3072, layers: 12, heads: 12, activation: "quick_gelu", eps: 1e-5),
        imageSize: 224, patchSize: 32,
        text: CLIPTowerShape(hidden: 512, intermediate: 2048, layers: 12, heads: 8, activation: "quick_gelu", eps: 1e-5),
        vocabSize: 49408, maxPositions: 77, projectionDim: 512)
    /// openai/clip-vit-base-patch16: as ViT-B/32 with 16×16 patches.
    public static let vitB16: CLIPConfig = { var c = vitB32; c.patchSize = 16; return c }()
    /// openai/clip-vit-large-patch14: 24 layers of 1024 (16 heads), 14×14 patches; text 768 wide (12 heads); projection 768.
    public static let vitL14: CLIPConfig = {
        var c = vitB32
        c.vision = CLIPTowerShape(hidden: 1024, intermediate: 4096, layers: 24, heads: 16, activation: "quick_gelu", eps: 1e-5)
        c.patchSize = 14
        c.text = CLIPTowerShape(hidden: 768, intermediate: 3072, layers: 12, heads: 12, activation: "quick_gelu", eps: 1e-5)
        c.projectionDim = 768
        return c
    }()

    /// The architecture each CLIP preset expects (FeaturePreset's `clip-vit-*`).
    public static let presets: [String: CLIPConfig] = ["clip-vit-b32": vitB32, "clip-vit-b16": vitB16, "clip-vit-l14": vitL14]

    public var patchesPerSide: Int { imageSize / patchSize }
    /// Vision sequence length: the class token and one per patch.
    public var visionTokens: Int { patchesPerSide * patchesPerSide + 1 }

    /// Reads a Hugging Face CLIP `config.json`; keys it omits take transformers' defaults.
    public static func load(_ path: String) throws -> CLIPConfig {
        let data = try InputFile.read(path, maxBytes: 1 << 22, what: "CLIP config.json")
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw VideoBertError("not a JSON object (a Hugging Face CLIP config.json)", file: path)
        }
        if let type = root["model_type"] as? String, type != "clip" {
            throw VideoBertError("model_type '\(type)' is not a CLIP model (\"clip\")", file: path)
        }
        func section(_ name: String) throws -> [String: Any] {
            var merged: [String: Any] = [:]
            for key in [name, name + "_dict"] {
                guard let value = root[key], !(value is NSNull) else { continue }
                guard let dict = value as? [String: Any] else { throw VideoBertError("'\(key)' is not an object", file: path) }
                merged.merge(dict) { _, new in new }
            }
            return merged
        }
        func int(_ d: [String: Any], _ key: String, _ fallback: Int, in sectionName: String, limit: Int) throws -> Int {
            guard let v = d[key] else { return fallback }
            guard let n = v as? NSNumber, let i = Int(exactly: n.doubleValue), i >= 1, i <= limit else {
                throw VideoBertError("'\(sectionName).\(key)' must be a whole number in 1...\(limit), got \(v)", file: path)
            }
            return i
        }
        func tower(_ d: [String: Any], _ name: String, _ base: CLIPTowerShape) throws -> CLIPTowerShape {
            var t = base
            t.hidden = try int(d, "hidden_size", base.hidden, in: name, limit: 1 << 14)
            t.intermediate = try int(d, "intermediate_size", base.intermediate, in: name, limit: 1 << 16)
            t.layers = try int(d, "num_hidden_layers", base.layers, in: name, limit: 256)
            t.heads = try int(d, "num_attention_heads", base.heads, in: name, limit: 64)
            if let a = d["hidden_act"] {
                guard let s = a as? String, ["quick_gelu", "gelu"].contains(s) else {
                    throw VideoBertError("'\(name).hidden_act' \(a) is not supported (quick_gelu or gelu)", file: path)
                }
                t.activation = s
            }
            if let e = d["layer_norm_eps"] {
                guard let n = e as? NSNumber, n.doubleValue > 0, n.doubleValue < 1 else {
                    throw VideoBertError("'\(name).layer_norm_eps' must be in (0, 1), got \(e)", file: path)
                }
                t.eps = n.floatValue
            }
            guard t.hidden % t.heads == 0 else {
                throw VideoBertError("'\(name).hidden_size' \(t.hidden) is not a multiple of num_attention_heads \(t.heads)", file: path)
            }
            return t
        }
        let base = vitB32
        var c = base
        let v = try section("vision_config"), t = try section("text_config")
        c.vision = try tower(v, "vision_config", base.vision)
        c.imageSize = try int(v, "image_size", base.imageSize, in: "vision_config", limit: 4096)
        c.patchSize = try int(v, "patch_size", base.patchSize, in: "vision_config", limit: 1024)
        if let ch = v["num_channels"], (ch as? NSNumber)?.intValue != 3 {
            throw VideoBertError("'vision_config.num_channels' \(ch) is not supported (3)", file: path)
        }
        guard c.imageSize % c.patchSize == 0 else {
            throw VideoBertError("'vision_config.image_size' \(c.imageSize) is not a multiple of patch_size \(c.patchSize)", file: path)
        }
        c.text = try tower(t, "text_config", base.text)
        c.vocabSize = try int(t, "vocab_size", base.vocabSize, in: "text_config", limit: 1 << 20)
        // Bounded so that one text's attention scores (heads · positions²) stay within 2²⁶ floats.
        c.maxPositions = try int(t, "max_position_embeddings", base.maxPositions, in: "text_config", limit: 1024)
        c.projectionDim = try int(root, "projection_dim", base.projectionDim, in: "config", limit: 1 << 14)
        return c
    }

    /// Every tensor of transformers' `CLIPModel` state dict with its shape, by tower
    /// (`vision_model.*` + `visual_projection.weight`, `text_model.*` + `text_projection.weight`).
    public func stateDictShapes(vision: Bool) -> [(String, [Int])] {
        var out: [(String, [Int])] = []
        let t = vision ? self.vision : self.text, D = t.hidden, p = vision ? "vision_model" : "text_model"
        if vision {
            out.append(("\(p).embeddings.class_embedding", [D]))
            out.append(("\(p).embeddings.patch_embedding.weight", [D, 3, patchSize, patchSize]))
            out.append(("\(p).embeddings.position_embedding.weight", [visionTokens, D]))
            out.append(("\(p).pre_layrnorm.weight", [D]))       // sic: transformers' name
            out.append(("\(p).pre_layrnorm.bias", [D]))
        } else {
            out.append(("\(p).embeddings.token_embedding.weight", [vocabSize, D]))
            out.append(("\(p).embeddings.position_embedding.weight", [maxPositions, D]))
        }
        for l in 0..<t.layers {
            let q = "\(p).encoder.layers.\(l)"
            for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                out.append(("\(q).self_attn.\(proj).weight", [D, D]))
                out.append(("\(q).self_attn.\(proj).bias", [D]))
            }
            out.append(("\(q).layer_norm1.weight", [D])); out.append(("\(q).layer_norm1.bias", [D]))
            out.append(("\(q).mlp.fc1.weight", [t.intermediate, D])); out.append(("\(q).mlp.fc1.bias", [t.intermediate]))
            out.append(("\(q).mlp.fc2.weight", [D, t.intermediate])); out.append(("\(q).mlp.fc2.bias", [D]))
            out.append(("\(q).layer_norm2.weight", [D])); out.append(("\(q).layer_norm2.bias", [D]))
        }
        let final = vision ? "post_layernorm" : "final_layer_norm"
        out.append(("\(p).\(final).weight", [D])); out.append(("\(p).\(final).bias", [D]))
        out.append((vision ? "visual_projection.weight" : "text_projection.weight", [projectionDim, D]))
        return out
    }

    /// Checks the file's tensors against CLIPModel's: a tensor neither tower has is an error
    /// (the `position_ids` buffers older checkpoints store and `logit_scale` are allowed), and
    /// every tensor of the wanted tower must be there with its shape.
    func check(_ weights: WeightFile, vision: Bool) throws {
        let known = Set((stateDictShapes(vision: true) + stateDictShapes(vision: false)).map(\.0) + ["logit_scale"])
        for n in weights.names where !known.contains(n) && !n.hasSuffix("embeddings.position_ids") {
            throw VideoBertError("unexpected tensor '\(n)' with shape \(weights.shape(n) ?? []) (not part of transformers' CLIPModel with this config.json; is this a CLIP state dict?)", file: weights.path)
        }
        for (n, s) in stateDictShapes(vision: vision) { try weights.checkShape(n, s) }
    }
}

/// A Hugging Face CLIP folder (or one weight file): its config and weights.
public struct CLIPCheckpoint: Sendable {
    public let config: CLIPConfig
    public let weights: WeightFile

    /// `path`: a folder with `config.json` and `model.safetensors` (or `pytorch_model.bin`), or a
    /// weight file (.safetensors, .bin, .pth) whose folder may hold its `config.json`. Without a
    /// config.json the architecture is the preset's (`CLIPConfig.presets[preset]`); with one it
    /// must agree with the preset's vision tower (patch size and width).
    public init(path: String, preset: String) throws {
        guard let expected = CLIPConfig.presets[preset] else {
            throw VideoBertError("unknown CLIP preset '\(preset)' (known: \(CLIPConfig.presets.keys.sorted().joined(separator: ", ")))")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw VideoBertError("no such CLIP folder or weight file", file: path)
        }
        let folder = isDirectory.boolValue ? path : (path as NSString).deletingLastPathComponent
        var file = path
        if isDirectory.boolValue {
            let candidates = ["model.safetensors", "pytorch_model.bin"].map { (folder as NSString).appendingPathComponent($0) }
            guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
                throw VideoBertError("holds no model.safetensors or pytorch_model.bin (a Hugging Face CLIP folder, e.g. openai/clip-vit-base-patch32)", file: path)
            }
            file = found
        }
        let configPath = (folder.isEmpty ? "." : folder as NSString).appendingPathComponent("config.json")
        var config = expected
        if FileManager.default.fileExists(atPath: configPath) {
            config = try CLIPConfig.load(configPath)
            guard config.patchSize == expected.patchSize, config.vision.hidden == expected.vision.hidden,
                  config.vision.layers == expected.vision.layers else {
                throw VideoBertError("describes a ViT with \(config.patchSize)×\(config.patchSize) patches, width \(config.vision.hidden), \(config.vision.layers) layers; \(preset) is patch \(expected.patchSize), width \(expected.vision.hidden), \(expected.vision.layers) layers", file: configPath)
            }
            // The preset's crop is the model's input: the same image size (this also bounds the vision sequence).
            guard config.imageSize == expected.imageSize else {
                throw VideoBertError("'vision_config.image_size' \(config.imageSize) is not \(preset)'s \(expected.imageSize)", file: configPath)
            }
        } else if isDirectory.boolValue {
            throw VideoBertError("has no config.json (a Hugging Face CLIP folder holds config.json and model.safetensors)", file: path)
        }
        self.config = config
        weights = try WeightFile.open(file)
    }
}
