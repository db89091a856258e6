import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `videobert serve` on loopback (a free port): the API, thumbnails, range requests on the
/// videos, the token, hostile requests (`../` ids, a 1 MB query, bad parameters) — each a clear
/// 4xx with a JSON error, the server still answering afterwards — and the page in headless Chromium.
final class ServeCLITests: XCTestCase {
    /// A running `videobert serve` (this test's own process, stopped by its pid).
    final class Server {
        let process = Process()
        let port: Int
        init(_ args: [String]) throws {
            process.executableURL = URL(fileURLWithPath: CLI.executable)
            process.arguments = ["serve"] + args + ["--port", "0"]
            let out = Pipe()
            process.standardOutput = out
            process.standardError = FileHandle.nullDevice
            try process.run()
            // The first line: "serving http://127.0.0.1:PORT/".
            var line = Data()
            let deadline = Date().addingTimeInterval(60)
            while !line.contains(0x0A) && Date() < deadline {
                let chunk = out.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                line += chunk
            }
            let text = String(decoding: line, as: UTF8.self)
            guard let range = text.range(of: "serving http://127.0.0.1:"),
                  let p = Int(text[range.upperBound...].prefix { $0.isNumber }) else {
                process.terminate()
                throw ServerError("serve did not start: \(text)")
            }
            port = p
        }
        deinit { if process.isRunning { kill(process.processIdentifier, SIGTERM); process.waitUntilExit() } }
    }

    struct ServerError: Error, CustomStringConvertible { var description: String; init(_ d: String) { description = d } }

    struct Reply {
        var status: Int
        var headers: [String: String]
        var body: Data
        var json: Any? { try? JSONSerialization.jsonObject(with: body) }
        var error: String? { (json as? [String: Any])?["error"] as? String }
    }

    /// One raw HTTP/1.1 request over a socket (the path is sent exactly as given: no client
    /// normalises `../` away).
    static func request(_ port: Int, _ target: String, method: String = "GET", headers: [String: String] = [:], body: Data = Data()) throws -> Reply {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ServerError("socket") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0 else { throw ServerError("connect: \(String(cString: strerror(errno)))") }
        var text = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (k, v) in headers { text += "\(k): \(v)\r\n" }
        if !body.isEmpty && headers["Content-Length"] == nil { text += "Content-Length: \(body.count)\r\n" }
        text += "\r\n"
        let bytes = Array(text.utf8) + Array(body)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }   // the server may refuse a huge head before reading all of it
            sent += n
        }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            data.append(contentsOf: buffer[0..<n])
        }
        guard let split = data.range(of: Data("\r\n\r\n".utf8)) else { throw ServerError("no HTTP response to \(target.prefix(80)): \(data.count) bytes") }
        let head = String(decoding: data[..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let status = Int(head[0].split(separator: " ")[1]) ?? 0
        var fields: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Data(data[split.upperBound...])
        if fields["transfer-encoding"] == "chunked" { body = dechunk(body) }
        return Reply(status: status, headers: fields, body: body)
    }

    static func dechunk(_ data: Data) -> Data {
        var out = Data(), i = data.startIndex
        while let lineEnd = data[i...].range(of: Data("\r\n".utf8)) {
            let size = Int(String(decoding: data[i..<lineEnd.lowerBound], as: UTF8.self), radix: 16) ?? 0
            if size == 0 { break }
            let start = lineEnd.upperBound
            out += data[start..<min(data.endIndex, start + size)]
            i = min(data.endIndex, start + size + 2)
        }
        return out
    }

    func testAPIThumbnailsRangesTokenAndHostileRequests() throws {
        let f = try IndexCLITests.Fixture.get()
        let token = "t0ken-\(UUID().uuidString)"
        let server = try Server([f.index, "--token", token])
        let port = server.port
        let auth = ["Authorization": "Bearer " + token]
        func get(_ target: String, _ headers: [String: String]? = nil) throws -> Reply { try Self.request(port, target, headers: headers ?? auth) }
        func alive(file: StaticString = #filePath, line: UInt = #line) throws {
            let h = try get("/healthz", [:])
            XCTAssertEqual(h.status, 200, file: file, line: line)
            XCTAssertEqual((h.json as? [String: Any])?["status"] as? String, "ok", file: file, line: line)
        }
        try alive()
        let health = try XCTUnwrap(try get("/healthz", [:]).json as? [String: Any])
        XCTAssertEqual(health["segments"] as? Int, f.summary["segments"] as? Int)
        XCTAssertEqual(health["encoder"] as? String, "cbt-pooled")

        // The page is open; the API needs the token.
        let page = try get("/", [:])
        XCTAssertEqual(page.status, 200)
        XCTAssertTrue(String(decoding: page.body, as: UTF8.self).contains("<video"))
        for headers in [[:], ["Authorization": "Bearer wrong"], ["Authorization": token]] {
            let r = try get("/api/search?q=stir+the+tomatoes", headers)
            XCTAssertEqual(r.status, 401, "\(headers)")
            XCTAssertTrue(r.error?.contains("token") == true, "\(r.error ?? "")")
        }

        // Search in every mode, the same ranking as the CLI.
        var first: [String: Any] = [:]
        for mode in ["text", "embedding", "hybrid"] {
            let r = try get("/api/search?q=stir%20the%20tomatoes&top=5&mode=\(mode)")
            XCTAssertEqual(r.status, 200, String(decoding: r.body, as: UTF8.self))
            let body = try XCTUnwrap(r.json as? [String: Any])
            XCTAssertEqual(body["mode"] as? String, mode)
            let results = try XCTUnwrap(body["results"] as? [[String: Any]])
            XCTAssertEqual(results.count, 5)
            let cli = try CLI.run(["search", f.index, "stir the tomatoes", "--top", "5", "--mode", mode, "--json"])
            let expected = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(cli.stdout.utf8)) as? [[String: Any]])
            XCTAssertEqual(results.map { $0["id"] as! String }, expected.map { $0["id"] as! String }, mode)
            if mode == "text" { first = results[0] }
        }
        let id = try XCTUnwrap(first["id"] as? String)

        // A segment, its thumbnail (header or ?token=), its video with range requests.
        let segment = try get("/api/segments/\(id)")
        XCTAssertEqual(segment.status, 200)
        XCTAssertEqual((segment.json as? [String: Any])?["text"] as? String, first["text"] as? String)
        for thumb in [try get("/api/thumbnails/\(id).png"), try get("/api/thumbnails/\(id).png?token=\(token)", [:])] {
            XCTAssertEqual(thumb.status, 200)
            XCTAssertEqual(thumb.headers["content-type"], "image/png")
            XCTAssertEqual(Array(thumb.body.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
        }
        let media = try XCTUnwrap(first["media"] as? String)
        let file = try Data(contentsOf: URL(fileURLWithPath: first["path"] as! String))
        let whole = try get(media)
        XCTAssertEqual(whole.status, 200)
        XCTAssertEqual(whole.headers["accept-ranges"], "bytes")
        XCTAssertEqual(whole.headers["content-type"], "video/mp4")
        XCTAssertEqual(whole.body, file)
        var headers = auth
        headers["Range"] = "bytes=10-109"
        let part = try get(media, headers)
        XCTAssertEqual(part.status, 206)
        XCTAssertEqual(part.headers["content-range"], "bytes 10-109/\(file.count)")
        XCTAssertEqual(part.body, file[10..<110])
        headers["Range"] = "bytes=-50"
        let tail = try get(media, headers)
        XCTAssertEqual(tail.status, 206)
        XCTAssertEqual(tail.body, file.suffix(50))
        headers["Range"] = "bytes=\(file.count + 10)-"
        let beyond = try get(media, headers)
        XCTAssertEqual(beyond.status, 416)
        XCTAssertEqual(beyond.headers["content-range"], "bytes */\(file.count)")

        // Hostile and bad requests: a 4xx with a JSON error each, and the server still answers.
        let hostile = [
            "/api/segments/../../../../etc/passwd", "/api/segments/..%2F..%2F..%2Fetc%2Fpasswd", "/api/thumbnails/../index.sqlite",
            "/api/thumbnails/..%2Findex.sqlite", "/api/thumbnails/\(id)/../../index.sqlite", "/media/../../../etc/passwd",
            "/media/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/media/0000000000000000", "/../index.sqlite", "/thumbnails/x.png",
            "/api/segments/ffffffffffffffff-0", "/api/search", "/api/search?q=", "/api/search?q=a&top=0", "/api/search?q=a&top=abc",
            "/api/search?q=a&top=100000", "/api/search?q=a&mode=nope", "/api/search?q=%ZZ",
            "/api/search?q=" + String(repeating: "onion+", count: 300),
        ]
        for target in hostile {
            let r = try get(target)
            XCTAssertTrue((400..<500).contains(r.status), "\(target.prefix(80)): \(r.status)")
            XCTAssertNotNil(r.error, "\(target.prefix(80)): \(String(decoding: r.body.prefix(200), as: UTF8.self))")
            XCTAssertFalse(String(decoding: r.body, as: UTF8.self).contains("root:"), target)
        }
        let post = try Self.request(port, "/api/search?q=a", method: "POST", headers: auth)
        XCTAssertEqual(post.status, 405)
        try alive()
        // A 1 MB query: refused with a 4xx (by the HTTP decoder: the request head is too large).
        let huge = try get("/api/search?q=" + String(repeating: "a", count: 1 << 20))
        XCTAssertTrue((400..<500).contains(huge.status), "1 MB query: \(huge.status)")
        try alive()
        let after = try get("/api/search?q=onion&mode=text")
        XCTAssertEqual(after.status, 200)
    }

    /// The page in headless Chromium: opened with a query (as typed into the box), the results
    /// render with thumbnails and times; a screenshot is saved beside the test's files.
    func testSearchPageInHeadlessChromium() throws {
        guard let browser = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("chromium not installed (tools/setup --dev installs it)")
        }
        let f = try IndexCLITests.Fixture.get()
        let server = try Server([f.index])
        let url = "http://127.0.0.1:\(server.port)/?q=stir+the+tomatoes"
        func chromium(_ args: [String]) throws -> String {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: browser)
            p.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + f.dir + "/chromium-\(UUID().uuidString)",
                           "--virtual-time-budget=8000"] + args + [url]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return String(decoding: data, as: UTF8.self)
        }
        let dom = try chromium(["--dump-dom"])
        let hits = dom.components(separatedBy: "<li class=\"hit").count - 1
        XCTAssertEqual(hits, 10, String(dom.suffix(2000)))
        XCTAssertTrue(dom.contains("10 results (hybrid)"), String(dom.suffix(2000)))
        XCTAssertTrue(dom.contains("src=\"/api/thumbnails/"), "thumbnails")
        XCTAssertTrue(dom.contains("tomatoes"))
        let shot = f.dir + "/search-page.png"
        _ = try chromium(["--screenshot=" + shot, "--window-size=1100,900", "--hide-scrollbars"])
        let png = try Data(contentsOf: URL(fileURLWithPath: shot))
        XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47])
        print("search page screenshot: \(shot)")
        if let out = ProcessInfo.processInfo.environment["VIDEOBERT_TEST_OUTPUT"] {
            try? FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            try? png.write(to: URL(fileURLWithPath: out + "/search-page.png"))
        }
    }
}
