import Foundation
import Tensor
import Tokenize

/// WordPiece throughput on one thread: `bench wordpiece --vocab FILE --input TEXT [--cased]
/// [--reps N] [--ids OUT.npy --offsets OUT.npy]`. Reads the text (one line per text), then
/// times encoding every line into one flat id array (best of --reps), and writes the ids and
/// per-line offsets for tools/bench/wordpiece.py to compare with HF tokenizers.
func benchWordPiece(_ args: [String]) throws {
    let vocab = option(args, "vocab", "Vocab/bert-base-uncased.txt")
    let input = option(args, "input", "")
    let reps = Int(option(args, "reps", "3"))!
    let cased = args.contains("--cased")
    let idsPath = option(args, "ids", "")
    let offsetsPath = option(args, "offsets", "")
    guard let data = FileManager.default.contents(atPath: input) else {
        throw VideoBertError("cannot read benchmark text", file: input)
    }
    let loadStart = now()
    let tokenizer = BertTokenizer(vocabulary: try TextVocabulary.load(vocab), lowercase: !cased)
    let loadSeconds = now() - loadStart

    // Line boundaries (LF-separated; a final LF does not start another line).
    var starts: [Int] = []
    var ends: [Int] = []
    data.withUnsafeBytes { raw in
        let bytes = raw.bindMemory(to: UInt8.self)
        var s = 0
        for i in 0..<bytes.count where bytes[i] == 0x0A {
            starts.append(s); ends.append(i); s = i + 1
        }
        if s < bytes.count { starts.append(s); ends.append(bytes.count) }
    }

    var ids: [Int32] = []
    var offsets: [Int64] = []
    var best = Double.infinity
    for _ in 0..<reps {
        ids.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        offsets.reserveCapacity(starts.count + 1)
        let t0 = now()
        data.withUnsafeBytes { raw in
            let base = raw.bindMemory(to: UInt8.self).baseAddress!
            tokenizer.withSession { session in
                offsets.append(0)
                for k in 0..<starts.count {
                    session.encode(utf8: UnsafeBufferPointer(start: base + starts[k], count: ends[k] - starts[k]), appendingTo: &ids)
                    offsets.append(Int64(ids.count))
                }
            }
        }
        best = min(best, now() - t0)
    }
    if !idsPath.isEmpty { try NPY.write(ids, shape: [ids.count], to: idsPath) }
    if !offsetsPath.isEmpty { try NPY.write(offsets, shape: [offsets.count], to: offsetsPath) }
    printJSON(["benchmark": "wordpiece", "side": "swift", "lines": starts.count, "bytes": data.count,
               "ids": ids.count, "seconds": best, "load_seconds": loadSeconds,
               "mb_per_s": Double(data.count) / best / 1e6, "lines_per_s": Double(starts.count) / best])
}
