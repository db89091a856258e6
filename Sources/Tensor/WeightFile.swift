import Foundation

/// A file of named tensors as users download them: Hugging Face safetensors (`.safetensors`) or a
/// PyTorch `torch.save` archive (`.pth`, `.pt`, `.bin`; read by `TorchFile`, nothing executed).
/// The format is recognised by the file's first bytes, not its extension.
public struct WeightFile: Sendable {
    enum Source: Sendable {
        case safetensors(SafeTensors.File)
        case torch(TorchFile)
    }
    let source: Source
    public let path: String

    public static func open(_ path: String) throws -> WeightFile {
        guard let h = FileHandle(forReadingAtPath: path) else {
            throw VideoBertError(FileManager.default.fileExists(atPath: path) ? "cannot read file" : "no such file", file: path)
        }
        let head = [UInt8]((try? h.read(upToCount: 4)) ?? Data())
        try? h.close()
        let zipMagic = head == [0x50, 0x4B, 0x03, 0x04], legacyPickle = head.starts(with: [0x80, 0x02])
        let ext = URL(fileURLWithPath: path).pathExtension.lowercased()
        if zipMagic || legacyPickle || ["pth", "pt", "bin", "ckpt"].contains(ext) {
            return WeightFile(source: .torch(try TorchFile.read(path)), path: path)
        }
        return WeightFile(source: .safetensors(try SafeTensors.read(path)), path: path)
    }

    /// Tensor names, sorted.
    public var names: [String] {
        switch source {
        case .safetensors(let f): return f.names
        case .torch(let f): return f.names
        }
    }

    public func shape(_ name: String) -> [Int]? {
        switch source {
        case .safetensors(let f): return f.shape(name)
        case .torch(let f): return f.shape(name)
        }
    }

    /// The tensor as contiguous Float32 values.
    public func floats(_ name: String) throws -> [Float] {
        switch source {
        case .safetensors(let f): return try f.floats(name)
        case .torch(let f): return try f.floats(name)
        }
    }

    /// Checks that tensor `name` exists with exactly `shape`: a missing tensor or another shape is
    /// one error naming the key and both shapes.
    @discardableResult
    public func checkShape(_ name: String, _ shape: [Int]) throws -> [Int] {
        guard let s = self.shape(name) else {
            throw VideoBertError("missing tensor '\(name)' (expected shape \(shape))", file: path)
        }
        guard s == shape else {
            throw VideoBertError("tensor '\(name)' has shape \(s), expected \(shape)", file: path)
        }
        return s
    }

    /// The tensor `name`, checked to have exactly `shape` (see `checkShape`).
    public func floats(_ name: String, shape: [Int]) throws -> [Float] {
        try checkShape(name, shape)
        return try floats(name)
    }
}
