import Foundation

/// A plain-text table for the terminal: a header row, a rule, then rows; the first column
/// left-aligned, the others right-aligned (numbers).
public struct TextTable: Sendable {
    public var title: String?
    public var header: [String]
    public var rows: [[String]] = []

    public init(title: String? = nil, header: [String]) {
        self.title = title
        self.header = header
    }

    public mutating func add(_ row: [String]) { rows.append(row) }

    public func render() -> String {
        let columns = max(header.count, rows.map(\.count).max() ?? 0)
        var width = [Int](repeating: 0, count: columns)
        for row in [header] + rows { for (i, cell) in row.enumerated() { width[i] = max(width[i], cell.count) } }
        func line(_ row: [String]) -> String {
            (0..<columns).map { i -> String in
                let cell = i < row.count ? row[i] : ""
                let pad = String(repeating: " ", count: width[i] - cell.count)
                return i == 0 ? cell + pad : pad + cell
            }.joined(separator: "  ")
        }
        var out: [String] = []
        if let title { out.append(title) }
        out.append(line(header))
        out.append(String(repeating: "-", count: width.reduce(0, +) + 2 * max(columns - 1, 0)))
        for r in rows { out.append(line(r)) }
        return out.joined(separator: "\n")
    }

    /// A fraction or score with 4 decimals; "-" for NaN.
    public static func number(_ v: Double, digits: Int = 4) -> String {
        v.isFinite ? String(format: "%.\(digits)f", v) : "-"
    }
}
