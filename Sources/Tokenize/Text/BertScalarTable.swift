import Foundation

/// What BERT's basic tokenization does with one character of the input.
enum BertScalarKind: UInt8 {
    /// Part of a word.
    case word = 0
    /// Dropped without splitting the word (control and format characters, U+FFFD, and —
    /// when accents are stripped — characters whose NFD is only non-spacing marks).
    case removed = 1
    /// Ends the current word.
    case whitespace = 2
    /// A word of its own (punctuation, and CJK ideographs, which BERT pads with spaces).
    case single = 3
}

/// Per-scalar facts of BERT's basic tokenization (Devlin et al. 2019, the `BasicTokenizer` of
/// google-research/bert's tokenization.py) as HF tokenizers 0.23 implements it
/// (`BertNormalizer` then `BertPreTokenizer`), for one mode: cased (clean text, pad CJK) or
/// uncased (also NFD, drop non-spacing marks, lower-case; in HF's order: strip accents *then*
/// lower-case).
///
/// One 32-bit entry per scalar, built lazily per block of 256 scalars (a block costs up to 256
/// Foundation NFD calls, so building all 1.1 M scalars up front would take about a second;
/// real text touches a few dozen blocks). An entry tells the kind, whether the scalar needs the
/// general path (`slow`), and where its normalized UTF-8 bytes are:
///
///     bits 0–1  BertScalarKind        bit 2  slow
///     bits 3–7  output byte count     bits 8–10  output scalar count
///     bits 11–31 byte offset of the output inside the block
///
/// Where the sources disagree, this follows HF tokenizers (see `BertUnicodeTables`):
/// character classes are Unicode 8.0 (unicode_categories crate); canonical decompositions and
/// combining classes are Unicode 9.0 (unicode-normalization-alignments crate), so scalars
/// assigned later neither decompose nor reorder; lower-casing is Rust's `char::to_lowercase`,
/// per scalar without context (Σ → σ always; Python's `str.lower` gives final ς).
final class BertScalarTable: @unchecked Sendable {
    // @unchecked Sendable: `blocks` is read and written only under `lock`. A block is fully
    // built before it is stored and never written again, so a pointer obtained under the lock
    // (which orders the build before the read) stays valid and immutable; encoders cache such
    // pointers per session (`BlockCache`). Blocks are freed in deinit only (the shared tables
    // live as long as the process).
    let uncased: Bool
    private let lock = NSLock()
    private let blocks: UnsafeMutablePointer<UnsafeRawPointer?>
    static let blockCount = 0x110000 >> 8

    static let cased = BertScalarTable(uncased: false)
    static let uncased = BertScalarTable(uncased: true)

    private init(uncased: Bool) {
        self.uncased = uncased
        blocks = .allocate(capacity: Self.blockCount)
        blocks.initialize(repeating: nil, count: Self.blockCount)
    }

    deinit {
        for i in 0..<Self.blockCount { blocks[i]?.deallocate() }
        blocks.deallocate()
    }

    /// Block `index` (scalars index·256 ..< index·256 + 256): 256 entries, then the output bytes.
    func block(_ index: Int) -> UnsafeRawPointer {
        lock.lock()
        defer { lock.unlock() }
        if let b = blocks[index] { return b }
        let b = buildBlock(index)
        blocks[index] = b
        return b
    }

    // MARK: Lookup (hot path)

    @inline(__always)
    static func entry(_ block: UnsafeRawPointer, _ scalar: UInt32) -> UInt32 {
        block.load(fromByteOffset: Int(scalar & 0xFF) &* 4, as: UInt32.self)
    }

    @inline(__always) static func kind(_ e: UInt32) -> UInt32 { e & 3 }
    @inline(__always) static func isSlow(_ e: UInt32) -> Bool { e & 4 != 0 }
    @inline(__always) static func byteCount(_ e: UInt32) -> Int { Int((e >> 3) & 31) }
    @inline(__always) static func scalarCount(_ e: UInt32) -> Int { Int((e >> 8) & 7) }
    @inline(__always) static func bytes(_ block: UnsafeRawPointer, _ e: UInt32) -> UnsafePointer<UInt8> {
        (block + Int(e >> 11)).assumingMemoryBound(to: UInt8.self)
    }

    // MARK: Building

    private func buildBlock(_ index: Int) -> UnsafeRawPointer {  // under lock
        var entries = [UInt32](repeating: 0, count: 256)
        var tail: [UInt8] = []
        let tailStart = 256 * 4
        for low in 0..<256 {
            let value = UInt32(index << 8 | low)
            guard let scalar = Unicode.Scalar(value) else {
                entries[low] = BertScalarKind.removed.rawValue.asUInt32  // surrogates never occur in valid UTF-8
                continue
            }
            let facts = uncased ? Self.uncasedFacts(scalar) : Self.casedFacts(scalar)
            var utf8: [UInt8] = []
            for s in facts.output { utf8.append(contentsOf: String(s).utf8) }
            precondition(utf8.count < 32 && facts.output.count < 8, "normalized form of U+\(String(value, radix: 16)) too long")
            let offset = tailStart + tail.count
            tail.append(contentsOf: utf8)
            entries[low] = facts.kind.rawValue.asUInt32 | (facts.slow ? 4 : 0)
                | UInt32(utf8.count) << 3 | UInt32(facts.output.count) << 8 | UInt32(offset) << 11
        }
        let raw = UnsafeMutableRawPointer.allocate(byteCount: tailStart + tail.count, alignment: 8)
        entries.withUnsafeBytes { raw.copyMemory(from: $0.baseAddress!, byteCount: tailStart) }
        tail.withUnsafeBytes { if $0.count > 0 { (raw + tailStart).copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
        return UnsafeRawPointer(raw)
    }

    struct Facts {
        var kind: BertScalarKind
        var output: [Unicode.Scalar]
        var slow = false
    }

    /// Cased: text cleaning and CJK padding only; the scalar passes through unchanged.
    static func casedFacts(_ s: Unicode.Scalar) -> Facts {
        if isRemoved(s.value) { return Facts(kind: .removed, output: []) }
        if isWhitespace(s.value) { return Facts(kind: .whitespace, output: []) }
        if isIdeograph(s.value) || isPunctuation(s.value) { return Facts(kind: .single, output: [s]) }
        return Facts(kind: .word, output: [s])
    }

    /// Uncased: after cleaning and CJK padding, NFD, drop non-spacing marks, lower-case; the
    /// pre-tokenizer then looks at the resulting scalars.
    static func uncasedFacts(_ s: Unicode.Scalar) -> Facts {
        if isRemoved(s.value) { return Facts(kind: .removed, output: []) }
        if isWhitespace(s.value) { return Facts(kind: .whitespace, output: []) }
        var output: [Unicode.Scalar] = []
        var keptNonStarter = false
        for d in decomposition(s) where !isNonspacingMark(d.value) {
            if combiningClass(d) != 0 { keptNonStarter = true }
            output.append(contentsOf: lowercase(d))
        }
        if isIdeograph(s.value) {
            // Padded with spaces before NFD: a word of its own whatever it maps to.
            return Facts(kind: .single, output: output, slow: keptNonStarter || output.count != 1)
        }
        if output.isEmpty { return Facts(kind: .removed, output: []) }
        let punctuation = output.filter { isPunctuation($0.value) }.count
        let whitespace = output.contains { isWhitespace($0.value) }
        if keptNonStarter || whitespace || (punctuation > 0 && output.count > 1) {
            // Reordering with neighbours or a split inside the scalar's output: general path.
            return Facts(kind: .word, output: output, slow: true)
        }
        return Facts(kind: punctuation == 1 ? .single : .word, output: output)
    }

    // MARK: Unicode facts, as HF tokenizers sees them

    static func inRanges(_ v: UInt32, _ ranges: [UInt32]) -> Bool {
        // Binary search over sorted (first, last) pairs.
        var lo = 0, hi = ranges.count / 2
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[2 * mid + 1] < v { lo = mid + 1 } else { hi = mid }
        }
        return lo < ranges.count / 2 && ranges[2 * lo] <= v
    }

    static func isRemoved(_ v: UInt32) -> Bool { inRanges(v, BertUnicodeTables.removedRanges) }
    static func isWhitespace(_ v: UInt32) -> Bool { inRanges(v, BertUnicodeTables.whitespaceRanges) }
    static func isIdeograph(_ v: UInt32) -> Bool { inRanges(v, BertUnicodeTables.ideographRanges) }
    static func isPunctuation(_ v: UInt32) -> Bool { inRanges(v, BertUnicodeTables.punctuationRanges) }
    static func isNonspacingMark(_ v: UInt32) -> Bool { inRanges(v, BertUnicodeTables.nonspacingMarkRanges) }

    /// HF's normalization data is Unicode 9.0: later scalars have no decomposition and class 0.
    static func knownToNormalizer(_ s: Unicode.Scalar) -> Bool {
        guard let age = s.properties.age else { return false }
        return age.major < 9 || (age.major == 9 && age.minor == 0)
    }

    /// Canonical combining class as HF's NFD sees it.
    static func combiningClass(_ s: Unicode.Scalar) -> UInt8 {
        knownToNormalizer(s) ? s.properties.canonicalCombiningClass.rawValue : 0
    }

    /// Full canonical decomposition (NFD of one scalar; already in canonical order).
    static func decomposition(_ s: Unicode.Scalar) -> [Unicode.Scalar] {
        let v = s.value
        // Hangul syllables decompose algorithmically (Unicode §3.12).
        if v >= 0xAC00 && v <= 0xD7A3 {
            let index = v - 0xAC00
            let l = Unicode.Scalar(0x1100 + index / 588)!
            let vowel = Unicode.Scalar(0x1161 + (index % 588) / 28)!
            let t = index % 28
            return t == 0 ? [l, vowel] : [l, vowel, Unicode.Scalar(0x11A7 + t)!]
        }
        // Plain ASCII, unified ideographs and unknown scalars never decompose; skip Foundation.
        if v < 0xC0 || (isIdeograph(v) && !(0xF900...0xFAFF).contains(v) && !(0x2F800...0x2FA1F).contains(v))
            || !knownToNormalizer(s) {
            return [s]
        }
        return Array(String(s).decomposedStringWithCanonicalMapping.unicodeScalars)
    }

    /// Rust's `char::to_lowercase` (full mapping, no context); Swift's data agrees on every scalar.
    static func lowercase(_ s: Unicode.Scalar) -> [Unicode.Scalar] {
        if s.value < 0x80 {
            return s.value >= 65 && s.value <= 90 ? [Unicode.Scalar(s.value + 32)!] : [s]
        }
        if !s.properties.changesWhenLowercased { return [s] }
        return Array(s.properties.lowercaseMapping.unicodeScalars)
    }
}

private extension UInt8 {
    var asUInt32: UInt32 { UInt32(self) }
}

/// One encoder's view of a `BertScalarTable`: block pointers fetched once under the table's lock,
/// then read without locking. Allocated on the first non-ASCII scalar (ASCII text never needs it).
struct BlockCache {
    private var pointers: UnsafeMutablePointer<UnsafeRawPointer?>?

    @inline(__always)
    mutating func block(_ table: BertScalarTable, _ scalar: UInt32) -> UnsafeRawPointer {
        let index = Int(scalar >> 8)
        if let p = pointers, let b = p[index] { return b }
        return fetch(table, index)
    }

    private mutating func fetch(_ table: BertScalarTable, _ index: Int) -> UnsafeRawPointer {
        if pointers == nil {
            pointers = .allocate(capacity: BertScalarTable.blockCount)
            pointers!.initialize(repeating: nil, count: BertScalarTable.blockCount)
        }
        let b = table.block(index)
        pointers![index] = b
        return b
    }

    func deallocate() { pointers?.deallocate() }
}
