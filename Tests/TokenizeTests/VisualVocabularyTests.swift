import Foundation
import XCTest
import TestSupport
import Tensor
@testable import Tokenize

/// Hierarchical k-means and the visual vocabulary: greedy-descent leaf ids, errors for nodes that
/// cannot be split, save/load, streaming and sampled fits, normalisation.
final class VisualVocabularyTests: XCTestCase {
    /// A seeded Gaussian mixture: `components` centres in `dim` dimensions, `rows` points.
    func mixture(rows: Int, dim: Int, components: Int, seed: UInt64 = 1) -> [Float] {
        var rng = SeededRNG(seed: seed)
        let centres = (0..<(components * dim)).map { _ in rng.nextGaussian() * 5 }
        var x: [Float] = []
        x.reserveCapacity(rows * dim)
        for _ in 0..<rows {
            let c = rng.nextInt(components)
            for d in 0..<dim { x.append(centres[c * dim + d] + rng.nextGaussian()) }
        }
        return x
    }

    /// Greedy descent written out plainly in Float64: at each level, the nearest of the K children.
    func bruteForceDescent(_ vocab: VisualVocabulary, _ x: ArraySlice<Float>) -> (leaf: Int, distance: Double) {
        var node = 0
        var distance = 0.0
        for l in 0..<vocab.depth {
            var best = -1
            var bestD = Double.infinity
            for c in 0..<vocab.branching {
                let centroid = vocab.centroid(level: l, node: node * vocab.branching + c)
                var d = 0.0
                for (a, b) in zip(x, centroid) { let t = Double(a) - Double(b); d += t * t }
                if d < bestD { bestD = d; best = c }
            }
            node = node * vocab.branching + best
            distance = bestD
        }
        return (node, distance)
    }

    func testLeafIdsFollowGreedyDescent() throws {
        let (rows, dim) = (1500, 8)
        let x = mixture(rows: rows, dim: dim, components: 30)
        let vocab = try x.withUnsafeBufferPointer {
            try HierarchicalKMeans(branching: 3, depth: 3, iterations: 8, seed: 2).fit($0, rows: rows, dim: dim)
        }
        XCTAssertEqual(vocab.leaves, 27)
        XCTAssertEqual(vocab.levels.map { $0.count / dim }, [3, 9, 27])
        let assignment = vocab.assign(x, rows: rows)
        var inertia = 0.0
        for i in 0..<rows {
            let (leaf, d) = bruteForceDescent(vocab, x[(i * dim)..<((i + 1) * dim)])
            XCTAssertEqual(Int(assignment.leaves[i]), leaf, "row \(i)")
            XCTAssertEqual(Double(assignment.squaredDistances[i]), d, accuracy: 1e-3 * max(1, d))
            inertia += d
        }
        // The fit's reported inertia is the same measurement over every row.
        XCTAssertEqual(vocab.info.inertia, inertia, accuracy: inertia * 1e-5)
        XCTAssertEqual(vocab.info.points, rows)
        XCTAssertEqual(vocab.info.usedLeaves, Set(assignment.leaves).count)
        // Leaf id = path digits in base K.
        for leaf in [0, 5, 26] {
            XCTAssertEqual(vocab.path(ofLeaf: leaf).reduce(0) { $0 * 3 + $1 }, leaf)
        }
        XCTAssertEqual(Array(vocab.leafCentroid(26)), Array(vocab.levels[2][(26 * dim)..<(27 * dim)]))
    }

    func testSameSeedSameVocabularyForAnyThreadCount() throws {
        let (rows, dim) = (2000, 6)
        let x = mixture(rows: rows, dim: dim, components: 40, seed: 3)
        var one = HierarchicalKMeans(branching: 4, depth: 2, iterations: 10, seed: 11)
        one.workers = 1
        var two = one
        two.workers = 2
        let a = try x.withUnsafeBufferPointer { try one.fit($0, rows: rows, dim: dim) }
        let b = try x.withUnsafeBufferPointer { try two.fit($0, rows: rows, dim: dim) }
        XCTAssertEqual(a.levels.map { $0.map(\.bitPattern) }, b.levels.map { $0.map(\.bitPattern) })
        XCTAssertEqual(a.info.inertia, b.info.inertia)
        XCTAssertEqual(a.assign(x, rows: rows, workers: 1), b.assign(x, rows: rows, workers: 2))
    }

    func testNodeWithFewerPointsThanBranchingNamesItAndWhatToChange() throws {
        // Three far-apart groups of 6 points, split 4 ways: one group must be cut in two halves
        // of 3, and a node of 3 points cannot have 4 children (18 ≥ 4² points, so the up-front
        // check passes; the minimum child size cannot be met either).
        var x: [Float] = []
        var rng = SeededRNG(seed: 5)
        for centre in [Float(0), 100, 200] {
            for _ in 0..<6 { x += [centre + rng.nextFloat(), rng.nextFloat()] }
        }
        XCTAssertThrowsError(try x.withUnsafeBufferPointer {
            try HierarchicalKMeans(branching: 4, depth: 2, iterations: 10, seed: 0).fit($0, rows: 18, dim: 2)
        }) { error in
            let message = (error as? VideoBertError)?.message ?? "\(error)"
            XCTAssertNotNil(message.range(of: #"^visual vocabulary: node \d \(level 1 of 2\) holds [0-3] clips, fewer than the branching factor 4, so it cannot be split; lower the branching or depth \(now 4\^2 = 16 words\), or give more clips than the 18 used$"#, options: .regularExpression), message)
        }
    }

    /// A group of 3 points, far from three groups of 50, would be a child of 3 under plain
    /// k-means, which cannot be split 4 ways; the fit re-seeds such small children (see
    /// `KMeans.minClusterSize`), so every node ends up splittable.
    func testSmallIsolatedGroupDoesNotBecomeAnUnsplittableNode() throws {
        var x: [Float] = []
        var rng = SeededRNG(seed: 5)
        for (centre, count) in [(Float(0), 50), (100, 50), (200, 50), (300, 3)] {
            for _ in 0..<count { x += [centre + rng.nextFloat(), rng.nextFloat()] }
        }
        let vocab = try x.withUnsafeBufferPointer {
            try HierarchicalKMeans(branching: 4, depth: 2, iterations: 10, seed: 0).fit($0, rows: 153, dim: 2)
        }
        let leaves = vocab.assign(x, rows: 153).leaves
        var perParent = [Int](repeating: 0, count: 4)
        for leaf in leaves { perParent[Int(leaf) / 4] += 1 }
        XCTAssertTrue(perParent.allSatisfy { $0 >= 4 }, "\(perParent)")
    }

    func testFewerClipsThanWordsIsAnUpFrontError() {
        let x = mixture(rows: 100, dim: 4, components: 5)
        XCTAssertThrowsError(try x.withUnsafeBufferPointer {
            try HierarchicalKMeans(branching: 12, depth: 2).fit($0, rows: 100, dim: 4)
        }) { error in
            XCTAssertEqual((error as? VideoBertError)?.message,
                           "12^2 = 144 visual words need at least 144 clips to fit, got 100; lower the branching or depth, or give more clips")
        }
    }

    func testSaveLoadRoundTripAndAtomicReplace() throws {
        let (rows, dim) = (600, 5)
        let x = mixture(rows: rows, dim: dim, components: 12)
        var hkm = HierarchicalKMeans(branching: 3, depth: 2, iterations: 5, seed: 4)
        hkm.normalization = .l2
        let vocab = try x.withUnsafeBufferPointer { try hkm.fit($0, rows: rows, dim: dim) }
        let dir = (try temporaryFolder(named: "vocab-tests") as NSString).appendingPathComponent("vocab")
        try vocab.save(to: dir)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: dir)), ["level0.npy", "level1.npy", "vocab.json"])
        let loaded = try VisualVocabulary.load(from: dir)
        XCTAssertEqual(loaded, vocab)
        XCTAssertEqual(loaded.normalization, .l2)
        XCTAssertEqual(loaded.assign(x, rows: rows), vocab.assign(x, rows: rows))
        // numpy-readable levels with the documented shapes.
        XCTAssertEqual(try NPY.read((dir as NSString).appendingPathComponent("level1.npy")).shape, [9, dim])

        // Saving again replaces the folder; no temporary folder is left behind.
        let again = try x.withUnsafeBufferPointer {
            try HierarchicalKMeans(branching: 2, depth: 2, iterations: 5, seed: 4).fit($0, rows: rows, dim: dim)
        }
        try again.save(to: dir)
        XCTAssertEqual(try VisualVocabulary.load(from: dir).branching, 2)
        let parent = (dir as NSString).deletingLastPathComponent
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: parent), ["vocab"])

        // A folder that is not a vocabulary is never replaced.
        let other = (parent as NSString).appendingPathComponent("mine")
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: (other as NSString).appendingPathComponent("notes.txt"), contents: Data("x".utf8))
        XCTAssertThrowsError(try vocab.save(to: other)) { error in
            XCTAssertTrue("\(error)".contains("is not a visual vocabulary folder"), "\(error)")
        }
    }

    func testLoadRejectsWrongShapesAndUnknownKeys() throws {
        let x = mixture(rows: 200, dim: 3, components: 6)
        let vocab = try x.withUnsafeBufferPointer { try HierarchicalKMeans(branching: 2, depth: 2, iterations: 3).fit($0, rows: 200, dim: 3) }
        let dir = (try temporaryFolder(named: "vocab-tests") as NSString).appendingPathComponent("v")
        try vocab.save(to: dir)
        let json = (dir as NSString).appendingPathComponent("vocab.json")
        let original = try String(contentsOfFile: json, encoding: .utf8)

        try original.replacingOccurrences(of: "\"dim\" : 3", with: "\"dim\" : 4").write(toFile: json, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try VisualVocabulary.load(from: dir)) { XCTAssertTrue("\($0)".contains("level 0 must be float32 [2, 4]"), "\($0)") }

        try original.replacingOccurrences(of: "\"depth\"", with: "\"colour\" : 1,\n  \"depth\"").write(toFile: json, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try VisualVocabulary.load(from: dir)) { XCTAssertTrue("\($0)".contains("unknown key 'colour'"), "\($0)") }

        try original.replacingOccurrences(of: "\"format_version\" : 1", with: "\"format_version\" : 99").write(toFile: json, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try VisualVocabulary.load(from: dir)) { XCTAssertTrue("\($0)".contains("format_version 99"), "\($0)") }

        XCTAssertThrowsError(try VisualVocabulary.load(from: "/nonexistent/vocab")) { XCTAssertTrue("\($0)".contains("no such folder"), "\($0)") }
    }

    func testStreamingFilesEqualInMemoryAndSampledFitMeasuresEveryRow() throws {
        let (rows, dim) = (3000, 4)
        let x = mixture(rows: rows, dim: dim, components: 25, seed: 9)
        let dir = try temporaryFolder(named: "vocab-tests")
        // Two per-video files, the second float16: the folder reads as their concatenation.
        let split = 1700
        try NPY.write(Array(x[0..<(split * dim)]), shape: [split, dim], to: (dir as NSString).appendingPathComponent("a.npy"))
        let halves = x[(split * dim)...].map { UInt16(Float16($0).bitPattern) }
        try halves.withUnsafeBytes {
            try NPY.write(raw: $0, dtype: .float16, shape: [rows - split, dim], to: (dir as NSString).appendingPathComponent("b.npy"))
        }
        let files = try NPYFeatureFiles(path: dir)
        XCTAssertEqual(files.rows, rows)
        XCTAssertEqual(files.files.map { ($0.path as NSString).lastPathComponent }, ["a.npy", "b.npy"])
        let expected = Array(x[0..<(split * dim)]) + x[(split * dim)...].map { Float(Float16($0)) }
        let memory = try InMemoryFeatureRows(expected, rows: rows, dim: dim)

        let hkm = HierarchicalKMeans(branching: 4, depth: 2, iterations: 6, seed: 1)
        let fromFiles = try hkm.fit(files)
        let fromMemory = try hkm.fit(memory)
        XCTAssertEqual(fromFiles.levels, fromMemory.levels)
        XCTAssertEqual(fromFiles.info.inertia, fromMemory.info.inertia)

        // Fit on a 1000-row sample; the inertia still covers all 3000 rows.
        var sampled = hkm
        sampled.maxPoints = 1000
        let vocab = try sampled.fit(files)
        XCTAssertEqual(vocab.info.fitPoints, 1000)
        XCTAssertEqual(vocab.info.points, rows)
        let all = vocab.assign(expected, rows: rows)
        XCTAssertEqual(vocab.info.inertia, all.inertia, accuracy: all.inertia * 1e-9)
        XCTAssertEqual(try vocab.assign(files), all)
    }

    func testNaNInAFeatureFileNamesFileAndRow() throws {
        let dir = try temporaryFolder(named: "vocab-tests")
        var x = mixture(rows: 50, dim: 3, components: 2)
        x[7 * 3 + 1] = .nan
        let path = (dir as NSString).appendingPathComponent("v.npy")
        try NPY.write(x, shape: [50, 3], to: path)
        XCTAssertThrowsError(try HierarchicalKMeans(branching: 2, depth: 1).fit(try NPYFeatureFiles(path: path))) { error in
            XCTAssertEqual("\(error)", "\(path): row 7 holds a NaN or infinite value")
        }
    }

    func testL2NormalisationIsAppliedBeforeAssignment() throws {
        let (rows, dim) = (400, 3)
        let x = mixture(rows: rows, dim: dim, components: 8)
        var hkm = HierarchicalKMeans(branching: 2, depth: 2, iterations: 5, seed: 0)
        hkm.normalization = .l2
        let vocab = try x.withUnsafeBufferPointer { try hkm.fit($0, rows: rows, dim: dim) }
        for l in 0..<2 {   // centroids of unit vectors lie inside the unit ball
            for j in 0..<(vocab.levels[l].count / dim) {
                XCTAssertLessThanOrEqual(vocab.centroid(level: l, node: j).reduce(0) { $0 + $1 * $1 }, 1.0001)
            }
        }
        // Scaling a vector does not change its word.
        let scaled = x.map { $0 * 7 }
        XCTAssertEqual(vocab.assign(scaled, rows: rows).leaves, vocab.assign(x, rows: rows).leaves)
    }
}

final class HalfConversionTests: XCTestCase {
    /// Every one of the 65,536 half-precision values converts as Swift's Float16 does.
    func testHalfToFloatMatchesFloat16ForEveryValue() {
        for bits in 0...UInt16.max {
            let expected = Float(Float16(bitPattern: bits))
            let got = halfToFloat(bits)
            if expected.isNaN {
                XCTAssertTrue(got.isNaN, "\(bits)")
            } else {
                XCTAssertEqual(got.bitPattern, expected.bitPattern, "\(bits)")
            }
        }
    }
}
