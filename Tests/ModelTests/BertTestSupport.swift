import Foundation
import XCTest
import TestSupport
import Tensor
@testable import Model

/// Paths of the test resources and of the repository (for models/ installed by tools/setup).
enum Paths {
    static var resources: String {
        guard let url = Bundle.module.url(forResource: "Resources", withExtension: nil) else {
            fatalError("ModelTests resources missing")
        }
        return url.path
    }
    static func resource(_ name: String) -> String { (resources as NSString).appendingPathComponent(name) }
    /// The source folder of the resources (to regenerate fixtures written by Swift tests).
    static let sourceResources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Resources").path
    static let repository = Repository.root
}

/// A JSON fixture object with typed accessors.
struct Fixture {
    let values: [String: Any]
    let path: String

    init(_ path: String) {
        self.path = path
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            fatalError("\(path): missing or not a JSON object (see tools/fixtures)")
        }
        values = object
    }

    private func raw(_ key: String) -> Any {
        guard let v = values[key] else { fatalError("\(path): no key '\(key)'") }
        return v
    }
    func int(_ key: String) -> Int { (raw(key) as! NSNumber).intValue }
    func double(_ key: String) -> Double { (raw(key) as! NSNumber).doubleValue }
    func doubles(_ key: String) -> [Double] { (raw(key) as! [NSNumber]).map(\.doubleValue) }
    func floats(_ key: String) -> [Float] { doubles(key).map { Float($0) } }
    func int32s(_ key: String) -> [Int32] { (raw(key) as! [NSNumber]).map { Int32($0.intValue) } }
    func strings(_ key: String) -> [String] { raw(key) as! [String] }

    /// The batch stored by tools/fixtures/bert.py.
    var batch: PretrainingBatch {
        PretrainingBatch(B: int("B"), T: int("T"), inputIDs: int32s("input_ids"), tokenTypeIDs: int32s("token_type_ids"),
                         attentionMask: floats("attention_mask"), textRows: int32s("text_rows"), textTargets: int32s("text_targets"),
                         videoRows: int32s("video_rows"), videoTargets: int32s("video_targets"),
                         alignLabels: int32s("align_labels"), alignWeights: floats("align_weights"))
    }
}

/// |a − b| ≤ atol + rtol·|b| element by element (llm.c's check_tensor), printing the max difference.
func checkValues(_ actual: [Float], _ expected: [Double], _ label: String, atol: Double, rtol: Double,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "\(label): size", file: file, line: line)
    guard actual.count == expected.count else { return }
    _ = actual.withUnsafeBufferPointer { checkTensor($0.baseAddress!, expected, label, atol: atol, rtol: rtol, file: file, line: line) }
}

/// Fills every parameter with random values (no tensor trivially 0 or 1, so name swaps and
/// missed terms show): LayerNorm weights 1 + N(0, 0.1²), biases N(0, 0.1²), others N(0, std²).
func randomizeParameters(_ model: BertForPreTraining, seed: UInt64, std: Float = 0.2) {
    var rng = SeededRNG(seed: seed)
    for slot in model.store.slots {
        let p = model.store.parameter(slot.name)
        for i in 0..<p.count {
            let z = rng.nextGaussian()
            if slot.name.hasSuffix("LayerNorm.weight") { p[i] = 1 + 0.1 * z }
            else if slot.name.hasSuffix("bias") { p[i] = 0.1 * z }
            else { p[i] = std * z }
        }
    }
}

/// A batch in the layout the trainer builds (Sources/Train/Examples.swift): per example
/// (text length, video length), [CLS] text [>] video [SEP], padded; masked text/video positions
/// given as indices into each part; alignment labels and weights per example.
func makeBatch(T: Int, textVocab: Int, visualWords: Int, layout: [(text: Int, video: Int)],
               maskedText: [[Int]], maskedVideo: [[Int]], alignLabels: [Int32], alignWeights: [Float], seed: UInt64) -> PretrainingBatch {
    let B = layout.count
    var rng = SeededRNG(seed: seed)
    let (cls, sep, separator, mask): (Int32, Int32, Int32, Int32) = (1, 2, 3, 4)
    var batch = PretrainingBatch(B: B, T: T, inputIDs: .init(repeating: 0, count: B * T), tokenTypeIDs: .init(repeating: 0, count: B * T),
                                 attentionMask: .init(repeating: 0, count: B * T), textRows: [], textTargets: [], videoRows: [],
                                 videoTargets: [], alignLabels: alignLabels, alignWeights: alignWeights)
    for (b, (n, m)) in layout.enumerated() {
        let text = (0..<n).map { _ in Int32(5 + rng.nextInt(textVocab - 5)) }
        let video = (0..<m).map { _ in Int32(rng.nextInt(visualWords)) }
        var ids: [Int32] = [cls] + text
        var types = [Int32](repeating: 0, count: 1 + n)
        if m > 0 { ids.append(separator); types.append(0) }
        ids += video.map { Int32(textVocab) + $0 }; types += [Int32](repeating: 1, count: m)
        ids.append(sep); types.append(m > 0 ? 1 : 0)
        precondition(ids.count <= T)
        for (i, id) in ids.enumerated() {
            batch.inputIDs[b * T + i] = id; batch.tokenTypeIDs[b * T + i] = types[i]; batch.attentionMask[b * T + i] = 1
        }
        for i in maskedText[b] {
            batch.textRows.append(Int32(b * T + 1 + i)); batch.textTargets.append(text[i])
            batch.inputIDs[b * T + 1 + i] = mask
        }
        for i in maskedVideo[b] {
            let pos = 1 + n + 1 + i
            batch.videoRows.append(Int32(b * T + pos)); batch.videoTargets.append(video[i])
            batch.inputIDs[b * T + pos] = mask
        }
    }
    return batch
}
