import Foundation
import XCTest

/// Runs the built `videobert` executable (SwiftPM builds it beside the test bundle).
struct CLIResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

enum CLI {
    static var executable: String {
        // .build/<config>/videobertPackageTests.xctest → .build/<config>/videobert
        let testBundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for dir in [testBundle, Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()] {
            let candidate = dir.appendingPathComponent("videobert").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return testBundle.appendingPathComponent("videobert").path
    }

    @discardableResult
    static func run(_ args: [String], stdin: String? = nil, cwd: String? = nil, env: [String: String] = [:]) throws -> CLIResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in env { environment[k] = v }
        p.environment = environment
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inp
        try p.run()
        // Feed stdin and read both pipes concurrently so a full pipe never blocks either side
        // (a child that writes a lot while its input is still arriving would otherwise deadlock).
        nonisolated(unsafe) var errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let writer = inp.fileHandleForWriting
        group.enter()
        DispatchQueue.global().async {
            if let stdin { writer.write(Data(stdin.utf8)) }
            try? writer.close()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return CLIResult(status: p.terminationStatus,
                         stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
    }
}
