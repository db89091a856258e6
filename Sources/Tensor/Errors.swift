import Foundation

/// The one error type users see. Printed by the command line as `error: <file>: <message>`
/// (or `error: <message>` when no file applies), always on one line.
public struct VideoBertError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file the problem is in, when there is one.
    public var file: String?
    /// What went wrong, and where in the file (line, key or time) when that applies.
    public var message: String

    public init(_ message: String, file: String? = nil) {
        self.file = file
        self.message = message
    }

    public init(file: String, line: Int, _ message: String) {
        self.file = file
        self.message = "line \(line): \(message)"
    }

    public var description: String {
        let oneLine = message.replacingOccurrences(of: "\n", with: " ")
        if let file { return "\(file): \(oneLine)" }
        return oneLine
    }
}

extension VideoBertError: LocalizedError {
    public var errorDescription: String? { description }
}
