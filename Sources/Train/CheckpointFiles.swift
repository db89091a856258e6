import Foundation
import Model
import Tensor

/// The checkpoint-folder pieces shared by every trainer (`videobert pretrain`, `videobert
/// finetune caption`): `<run>/checkpoints/step-NNNNNNN/` folders written under a temporary name
/// and renamed, the newest `keep` kept, AdamW moments in `optimizer.safetensors`.
public enum CheckpointFiles {
    public static func name(step: Int) -> String { String(format: "step-%07d", step) }

    /// The newest finished checkpoint folder in `dir` (temporary folders skipped), or nil.
    public static func latest(in dir: String) -> String? {
        finished(in: dir).last.map { (dir as NSString).appendingPathComponent($0) }
    }

    static func finished(in dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix("step-") && !$0.contains(".tmp") }.sorted()
    }

    /// Writes `<dir>/step-NNNNNNN` through `fill(temporaryFolder)`, renames it into place, then
    /// deletes all but the newest `keep`. Returns the final path. On failure the temporary folder
    /// is removed and the previous checkpoints stay.
    public static func write(step: Int, in dir: String, keep: Int, _ fill: (String) throws -> Void) throws -> String {
        try AtomicFile.createDirectory(dir)
        let final = (dir as NSString).appendingPathComponent(name(step: step))
        let tmp = AtomicFile.temporaryPath(for: final)
        try AtomicFile.createDirectory(tmp)
        do {
            try fill(tmp)
            try AtomicFile.commit(temporary: tmp, to: final)
        } catch {
            try? FileManager.default.removeItem(atPath: tmp)
            throw error
        }
        for old in finished(in: dir).dropLast(keep) {
            try? FileManager.default.removeItem(atPath: (dir as NSString).appendingPathComponent(old))
        }
        return final
    }

    /// Copies the files (not subfolders) of `src` into `dst`.
    public static func copyFiles(from src: String, to dst: String) throws {
        try AtomicFile.createDirectory(dst)
        for name in try FileManager.default.contentsOfDirectory(atPath: src) where !name.hasPrefix(".") {
            let s = (src as NSString).appendingPathComponent(name)
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: s, isDirectory: &isDir) else { continue }
            if isDir.boolValue { continue }
            try AtomicFile.write(try Data(contentsOf: URL(fileURLWithPath: s)), to: (dst as NSString).appendingPathComponent(name))
        }
    }

    /// AdamW's first and second moments as `m.<name>` / `v.<name>` tensors.
    public static func writeOptimizerState(_ store: ParameterStore, to path: String) throws {
        try writeOptimizerState([("", store)], to: path)
    }

    /// The moments of several stores, each store's names under its prefix (`m.<prefix><name>`).
    public static func writeOptimizerState(_ stores: [(prefix: String, store: ParameterStore)], to path: String) throws {
        var moments: [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)] = []
        for (prefix, store) in stores {
            for slot in store.slots {
                moments.append(("m." + prefix + slot.name, slot.shape, UnsafeBufferPointer(start: store.firstMoment + slot.offset, count: slot.count)))
                moments.append(("v." + prefix + slot.name, slot.shape, UnsafeBufferPointer(start: store.secondMoment + slot.offset, count: slot.count)))
            }
        }
        try SafeTensors.write(moments, metadata: ["format": "videobert-adamw"], to: path)
    }

    /// Reads what `writeOptimizerState` wrote into the store's moments.
    public static func readOptimizerState(into store: ParameterStore, from path: String) throws {
        try readOptimizerState(into: [("", store)], from: path)
    }

    public static func readOptimizerState(into stores: [(prefix: String, store: ParameterStore)], from path: String) throws {
        let opt = try SafeTensors.read(path)
        for (prefix, store) in stores {
            for slot in store.slots {
                let m = try opt.floats("m." + prefix + slot.name), v = try opt.floats("v." + prefix + slot.name)
                guard m.count == slot.count, v.count == slot.count else {
                    throw VideoBertError("optimizer state for \(prefix + slot.name) has the wrong size", file: path)
                }
                m.withUnsafeBufferPointer { (store.firstMoment + slot.offset).update(from: $0.baseAddress!, count: slot.count) }
                v.withUnsafeBufferPointer { (store.secondMoment + slot.offset).update(from: $0.baseAddress!, count: slot.count) }
            }
        }
    }
}
