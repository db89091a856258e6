import Foundation

/// Checked arithmetic for sizes read from files (docs/RELIABILITY.md, "sizes"). Every count,
/// shape or offset that comes from outside goes through here before it is multiplied or used to
/// allocate: a negative value, an overflow or a value past the limit is an error, never a trap.
public enum Bounded {
    /// The largest number of bytes one array read from a file may claim (1 TiB): past any real
    /// tensor, far below where `Int` arithmetic on it could overflow.
    public static let maxBytes = 1 << 40

    /// The product of `factors`, or nil when one is negative, the product overflows or exceeds `limit`.
    public static func product(_ factors: [Int], limit: Int = Int.max) -> Int? {
        var p = 1
        for f in factors {
            guard f >= 0 else { return nil }
            let (r, o) = p.multipliedReportingOverflow(by: f)
            guard !o, r <= limit else { return nil }
            p = r
        }
        return p
    }

    /// `a + b`, or nil when either is negative, the sum overflows or exceeds `limit`.
    public static func sum(_ a: Int, _ b: Int, limit: Int = Int.max) -> Int? {
        guard a >= 0, b >= 0 else { return nil }
        let (r, o) = a.addingReportingOverflow(b)
        guard !o, r <= limit else { return nil }
        return r
    }

    /// The byte size of an array of `shape` with `elementSize`-byte elements, checked:
    /// an error naming `what` and `file` when a dimension is negative or the size overflows
    /// or passes `maxBytes`.
    public static func byteCount(shape: [Int], elementSize: Int, what: String, file: String?) throws -> Int {
        if let d = shape.first(where: { $0 < 0 }) {
            throw VideoBertError("\(what): negative dimension \(d) in shape \(shape)", file: file)
        }
        guard let n = product(shape + [elementSize], limit: maxBytes) else {
            throw VideoBertError("\(what): shape \(shape) is too large (over \(maxBytes >> 30) GiB or overflows)", file: file)
        }
        return n
    }

    /// An exact integer from a JSON number (`JSONSerialization` output): nil for fractions,
    /// non-numbers and magnitudes past 2^53 (where a double no longer holds every integer).
    public static func exactInt(_ value: Any?) -> Int? {
        guard let n = value as? NSNumber else { return nil }
        let d = n.doubleValue
        guard d.isFinite, d.rounded() == d, abs(d) <= 9_007_199_254_740_992 else { return nil }
        return Int(d)
    }
}
