import Foundation
import Hummingbird
import Index
import HummingbirdCore
import Tensor

/// `videobert serve`: an index (`VideoIndex`) over HTTP with Hummingbird.
///
///   GET /                          the search page (SearchPage.swift): one self-contained HTML file
///   GET /healthz                   {"status": "ok", "segments", "videos", "encoder"}
///   GET /api/search?q=&top=&mode=  {"query", "mode", "results": [{"id", "video", "path", "start", "end",
///                                  "score", "text", "thumbnail", "media"}]}
///   GET /api/segments/{id}         one segment
///   GET /api/thumbnails/{id}.png   its thumbnail
///   GET /media/{key}               a video file of the index's own list, with HTTP range requests
///   POST /api/caption?window=&beam=&format=
///                                  a video as the request body (at most `maxUploadBytes`), spooled
///                                  to a temporary file that is removed afterwards, captioned by the
///                                  server's captioner: {"segments": [{"index", "start", "end", "caption"}]}
///                                  (format=vtt: WebVTT); 413 beyond the limit, 422 for a video that
///                                  cannot be captioned, 400 when the server has no captioner
///
/// Every response to a bad request is a 4xx with a JSON body {"error": "..."}; nothing a client
/// sends stops the server. With a token, every /api/ and /media/ call needs
/// `Authorization: Bearer <token>` (or `?token=` for the page's <img> and <video> elements,
/// which cannot send headers); / and /healthz are open. Only the videos listed in the index are
/// served, looked up by key (a hash of their path): no path from the request reaches the file system.
public final class SearchServer: Sendable {
    public struct Options: Sendable {
        public var host = "127.0.0.1"
        /// 0: any free port (the bound one is printed and passed to `onRunning`).
        public var port = 8080
        public var token: String?
        /// Longest query, in bytes.
        public var maxQueryBytes = 1024
        /// Most results per search.
        public var maxTop = 100
        /// Threads that rank batches of embedding queries (SearchEngine's EmbeddingBatcher).
        public var rankingThreads = 1
        /// Largest video `POST /api/caption` accepts, in bytes.
        public var maxUploadBytes = 200 << 20
        public init() {}
    }

    /// What `POST /api/caption` asks of the captioner.
    public struct CaptionRequest: Sendable, Equatable {
        /// Seconds per segment (the upload has no transcript).
        public var window: Double
        /// Beam width (1: greedy).
        public var beam: Int
    }

    public struct CaptionedSegment: Codable, Sendable, Equatable {
        public var index: Int
        public var start: Double
        public var end: Double
        public var caption: String
        public init(index: Int, start: Double, end: Double, caption: String) {
            self.index = index; self.start = start; self.end = end; self.caption = caption
        }
    }

    /// Captions the video file at the path (blocking; called off the event loops, one at a time).
    /// A `VideoBertError` means the upload cannot be captioned (a 422 with its message).
    public typealias Captioner = @Sendable (_ video: String, _ request: CaptionRequest) throws -> [CaptionedSegment]

    let index: VideoIndex
    let engine: SearchEngine
    let embed: (@Sendable (String) throws -> [Float])?
    let options: Options
    let videos: [String: IndexedVideo]
    let page: String
    let captioner: Captioner?
    /// One caption at a time (each is a decode and a model's forward passes on every core).
    let captionQueue = DispatchQueue(label: "videobert.serve.caption")

    /// - Parameter embed: the query encoder of the index's checkpoint (nil: the index has no
    ///   embeddings, or none is available; embedding searches are then a 4xx).
    /// - Parameter captioner: what `POST /api/caption` runs (nil: the endpoint answers 400).
    public init(index: VideoIndex, embed: (@Sendable (String) throws -> [Float])?, options: Options, captioner: Captioner? = nil) throws {
        self.index = index
        self.captioner = captioner
        engine = try SearchEngine(index: index, workers: options.rankingThreads)
        self.embed = embed
        self.options = options
        videos = Dictionary(try index.videos().map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        page = SearchPage.html(hasEmbeddings: index.embeddings != nil && embed != nil, tokenRequired: options.token != nil)
    }

    struct Failure: Error {
        var status: HTTPResponse.Status
        var message: String
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        json(["error": message], status: status)
    }

    /// Runs until SIGINT / SIGTERM. `onRunning` gets the bound port.
    public func run(onRunning: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let responder = CallbackResponder<BasicRequestContext> { [self] request, context in
            do {
                return try await self.respond(request, context: context)
            } catch let f as Failure {
                return Self.error(f.status, f.message)
            } catch let e as VideoBertError {
                return Self.error(.internalServerError, e.description)
            } catch let e as HTTPError {
                return Self.error(e.status, e.body ?? e.status.reasonPhrase)
            } catch {
                return Self.error(.internalServerError, "\(error)")
            }
        }
        // Request heads beyond 16 KiB (a long query string) are refused by the HTTP decoder with a 4xx.
        let http = HTTP1Channel.Configuration(httpDecoderConfiguration: .init(maxHeaderFieldSize: 16 * 1024, maxHeaderListSize: 16 * 1024, maxHeaderFieldCount: 100))
        let app = Application(responder: responder, server: .http1(configuration: http),
                              configuration: .init(address: .hostname(options.host, port: options.port), serverName: "videobert"),
                              onServerRunning: { channel in onRunning(channel.localAddress?.port ?? 0) })
        try await app.runService()
    }

    /// The query parameters, percent-decoded ('+' is a space, as HTML forms send it).
    static func query(_ uri: URI) -> [String: String] {
        guard let q = uri.query, !q.isEmpty else { return [:] }
        var out: [String: String] = [:]
        for pair in q.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String? { String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding }
            guard let k = decode(parts[0]) else { continue }
            out[k] = parts.count > 1 ? decode(parts[1]) ?? "" : ""
        }
        return out
    }

    /// Constant-time comparison (the token must not leak through timing).
    static func same(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) { diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0) }
        return diff == 0
    }

    func authorize(_ request: Request, query: [String: String]) throws {
        guard let token = options.token else { return }
        if let header = request.headers[.authorization], header.hasPrefix("Bearer "), Self.same(String(header.dropFirst(7)), token) { return }
        if let given = query["token"], Self.same(given, token) { return }
        throw Failure(status: .unauthorized, message: "missing or wrong token: send Authorization: Bearer <token>")
    }

    func respond(_ request: Request, context: BasicRequestContext) async throws -> Response {
        if request.uri.path == "/api/caption" {
            guard request.method == .post else { throw Failure(status: .methodNotAllowed, message: "POST a video to /api/caption") }
            guard (request.uri.query?.utf8.count ?? 0) <= 1024 else { throw Failure(status: .uriTooLong, message: "query string longer than 1024 bytes") }
            let query = Self.query(request.uri)
            try authorize(request, query: query)
            return try await caption(request, query: query)
        }
        guard request.method == .get || request.method == .head else {
            throw Failure(status: .methodNotAllowed, message: "only GET and HEAD are served")
        }
        let path = request.uri.path
        guard path.utf8.count <= 512 else { throw Failure(status: .uriTooLong, message: "path longer than 512 bytes") }
        guard (request.uri.query?.utf8.count ?? 0) <= 4 * options.maxQueryBytes else {
            throw Failure(status: .uriTooLong, message: "query string longer than \(4 * options.maxQueryBytes) bytes")
        }
        let query = Self.query(request.uri)
        switch path {
        case "/", "/index.html":
            return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: page)))
        case "/healthz":
            struct Health: Encodable { var status: String; var segments: Int; var videos: Int; var encoder: String }
            return Self.json(Health(status: "ok", segments: index.segmentCount, videos: videos.count, encoder: index.encoder))
        case "/api/search":
            try authorize(request, query: query)
            return try await search(query)
        default:
            break
        }
        if let id = Self.suffix(path, after: "/api/segments/") {
            try authorize(request, query: query)
            guard Self.validID(id), let s = try index.segment(id: id) else { throw Failure(status: .notFound, message: "no segment '\(Self.clip(id))'") }
            return Self.json(Result(s, score: nil))
        }
        if let name = Self.suffix(path, after: "/api/thumbnails/") {
            try authorize(request, query: query)
            guard name.hasSuffix(".png"), case let id = String(name.dropLast(4)), Self.validID(id), let s = try index.segment(id: id) else {
                throw Failure(status: .notFound, message: "no thumbnail '\(Self.clip(name))'")
            }
            let file = (index.folder as NSString).appendingPathComponent(s.thumbnail)
            guard !s.thumbnail.contains(".."), let data = FileManager.default.contents(atPath: file) else {
                throw Failure(status: .notFound, message: "the thumbnail of '\(id)' is missing")
            }
            return Response(status: .ok, headers: [.contentType: "image/png", .cacheControl: "max-age=3600"],
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
        }
        if let key = Self.suffix(path, after: "/media/") {
            try authorize(request, query: query)
            guard key.utf8.count == 16, key.allSatisfy({ $0.isHexDigit }), let video = videos[key] else {
                throw Failure(status: .notFound, message: "no video '\(Self.clip(key))' in this index")
            }
            return try await media(video, request: request, context: context)
        }
        throw Failure(status: .notFound, message: "no such endpoint: \(Self.clip(path))")
    }

    static func suffix(_ path: String, after prefix: String) -> String? {
        path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : nil
    }

    /// Segment ids are "<16 hex digits>-<number>": anything else (`..`, `/`, encodings) is not one.
    static func validID(_ id: String) -> Bool {
        let parts = id.split(separator: "-", omittingEmptySubsequences: false)
        return parts.count == 2 && parts[0].utf8.count == 16 && parts[0].allSatisfy { $0.isHexDigit && ($0.isNumber || $0.isLowercase) }
            && (1...7).contains(parts[1].utf8.count) && parts[1].allSatisfy { $0.isASCII && $0.isNumber }
    }

    /// At most 64 characters of something a client sent, for an error message.
    static func clip(_ s: String) -> String { s.count <= 64 ? s : String(s.prefix(64)) + "…" }

    struct Result: Encodable {
        var id: String, video: String, path: String, start: Double, end: Double, score: Double?, text: String, thumbnail: String, media: String
        init(_ s: IndexedSegment, score: Double?) {
            id = s.id; video = s.video; path = s.path; start = s.start; end = s.end; self.score = score; text = s.text
            thumbnail = "/api/thumbnails/\(s.id).png"
            media = "/media/\(s.id.split(separator: "-")[0])"
        }
        init(_ h: SearchHit) {
            self.init(IndexedSegment(id: h.id, row: 0, video: h.video, path: h.path, start: h.start, end: h.end, text: h.text, thumbnail: ""),
                      score: h.score)
        }
    }

    func search(_ query: [String: String]) async throws -> Response {
        guard let q = query["q"], !q.trimmingCharacters(in: .whitespaces).isEmpty else { throw Failure(status: .badRequest, message: "missing q (the query)") }
        guard q.utf8.count <= options.maxQueryBytes else {
            throw Failure(status: .uriTooLong, message: "the query is longer than \(options.maxQueryBytes) bytes")
        }
        var top = 10
        if let t = query["top"] {
            guard let n = Int(t), n >= 1, n <= options.maxTop else { throw Failure(status: .badRequest, message: "top must be an integer in 1...\(options.maxTop)") }
            top = n
        }
        var mode = SearchMode.hybrid
        if let m = query["mode"] {
            guard let parsed = SearchMode(rawValue: m) else { throw Failure(status: .badRequest, message: "mode must be text, embedding or hybrid") }
            mode = parsed
        }
        if mode == .embedding && (index.embeddings == nil || embed == nil) {
            throw Failure(status: .badRequest, message: index.embeddings == nil ? "this index has no embeddings (\(index.note)); use mode=text"
                                                                               : "the server has no query encoder (start it with --checkpoint); use mode=text")
        }
        // Hybrid without a query encoder is text alone.
        let effective = (mode == .hybrid && embed == nil) ? SearchMode.text : mode
        let hits = try await engine.search(q, top: top, mode: effective) { text in
            guard let embed else { throw Failure(status: .badRequest, message: "no query encoder") }
            return try embed(text)
        }
        struct Body: Encodable { var query: String; var mode: String; var results: [Result] }
        return Self.json(Body(query: q, mode: effective.rawValue, results: hits.map(Result.init)))
    }

    /// `POST /api/caption`: the body streamed to a private temporary folder (at most
    /// maxUploadBytes, else 413), captioned, the folder removed whatever happens.
    func caption(_ request: Request, query: [String: String]) async throws -> Response {
        guard let captioner else {
            throw Failure(status: .badRequest, message: "this server has no captioner: start it with --checkpoint CAPTIONER (from `videobert finetune caption`)")
        }
        let limit = options.maxUploadBytes
        let tooLarge = Failure(status: .contentTooLarge, message: "the upload is larger than \(limit >> 20) MB (--max-upload-mb)")
        if let declared = request.headers[.contentLength] {
            guard let n = Int(declared), n >= 0 else { throw Failure(status: .badRequest, message: "bad Content-Length") }
            guard n <= limit else { throw tooLarge }
        }
        var wanted = CaptionRequest(window: 6, beam: 1)
        if let w = query["window"] {
            guard let v = Double(w.hasSuffix("s") ? String(w.dropLast()) : w), v > 0, v <= 3600 else {
                throw Failure(status: .badRequest, message: "window must be seconds in (0, 3600]")
            }
            wanted.window = v
        }
        if let b = query["beam"] {
            guard let v = Int(b), (1...8).contains(v) else { throw Failure(status: .badRequest, message: "beam must be an integer in 1...8") }
            wanted.beam = v
        }
        let format = query["format"] ?? "json"
        guard format == "json" || format == "vtt" else { throw Failure(status: .badRequest, message: "format must be json or vtt") }
        // Spool: a folder of our own (0700), so nothing else is beside the video.
        let dir = NSTemporaryDirectory() + "videobert-upload-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ext = Self.uploadExtension(request.headers[.contentType])
        let file = dir + "/upload." + ext
        guard FileManager.default.createFile(atPath: file, contents: nil), let handle = FileHandle(forWritingAtPath: file) else {
            throw VideoBertError("cannot create a temporary file", file: file)
        }
        var total = 0
        do {
            defer { try? handle.close() }
            for try await buffer in request.body {
                total += buffer.readableBytes
                guard total <= limit else { throw tooLarge }
                try handle.write(contentsOf: Data(buffer.readableBytesView))
            }
        }
        guard total > 0 else { throw Failure(status: .badRequest, message: "empty upload: POST the video file as the request body") }
        let segments: [CaptionedSegment]
        do {
            let asked = wanted
            segments = try await withCheckedThrowingContinuation { continuation in
                captionQueue.async { continuation.resume(with: Swift.Result { try captioner(file, asked) }) }
            }
        } catch let e as VideoBertError {
            let message = e.description.replacingOccurrences(of: file, with: "upload").replacingOccurrences(of: dir, with: "upload")
            throw Failure(status: .unprocessableContent, message: "cannot caption the upload: " + message)
        }
        if format == "vtt" {
            func stamp(_ t: Double) -> String {
                let ms = Int((max(0, t) * 1000).rounded())
                return String(format: "%02d:%02d:%02d.%03d", ms / 3_600_000, (ms / 60_000) % 60, (ms / 1000) % 60, ms % 1000)
            }
            let cues = segments.map { "\(stamp($0.start)) --> \(stamp($0.end))\n\($0.caption.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "-->", with: "->"))\n" }
            return Response(status: .ok, headers: [.contentType: "text/vtt; charset=utf-8", .cacheControl: "no-store"],
                            body: ResponseBody(byteBuffer: ByteBuffer(string: "WEBVTT\n\n" + cues.joined(separator: "\n"))))
        }
        struct Body: Encodable { var bytes: Int; var window: Double; var beam: Int; var segments: [CaptionedSegment] }
        return Self.json(Body(bytes: total, window: wanted.window, beam: wanted.beam, segments: segments))
    }

    /// The spooled file's extension from the upload's Content-Type (FFmpeg probes the content
    /// anyway; the name is only a hint, and never "txt", which FFmpeg would render as text).
    static func uploadExtension(_ contentType: String?) -> String {
        switch contentType?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() {
        case "video/webm": return "webm"
        case "video/quicktime": return "mov"
        case "video/x-matroska": return "mkv"
        case "video/ogg": return "ogv"
        case "video/x-msvideo": return "avi"
        case "video/mpeg": return "mpg"
        default: return "mp4"
        }
    }

    static func contentType(_ path: String) -> String {
        switch (path as NSString).pathExtension.lowercased() {
        case "mp4", "m4v": return "video/mp4"
        case "webm": return "video/webm"
        case "ogv": return "video/ogg"
        case "mov": return "video/quicktime"
        case "mkv": return "video/x-matroska"
        default: return "application/octet-stream"
        }
    }

    /// A byte range of RFC 9110 §14.1.2 ("bytes=a-b", "bytes=a-", "bytes=-n"; one range) within
    /// a file of `size` bytes: nil when the header is not one, an empty result when unsatisfiable.
    static func range(_ header: String, size: Int) -> ClosedRange<Int>?? {
        guard header.hasPrefix("bytes="), !header.contains(",") else { return nil }
        let spec = header.dropFirst(6).trimmingCharacters(in: .whitespaces)
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        let a = parts[0].trimmingCharacters(in: .whitespaces), b = parts[1].trimmingCharacters(in: .whitespaces)
        guard a.count <= 18, b.count <= 18, a.allSatisfy(\.isNumber), b.allSatisfy(\.isNumber) else { return nil }
        if a.isEmpty {
            guard let n = Int(b), n > 0, size > 0 else { return .some(nil) }
            return .some(max(0, size - n)...(size - 1))
        }
        guard let lower = Int(a) else { return nil }
        let upper = b.isEmpty ? size - 1 : min(Int(b) ?? -1, size - 1)
        if !b.isEmpty, let u = Int(b), u < lower { return nil }
        guard lower < size, lower <= upper else { return .some(nil) }
        return .some(lower...upper)
    }

    func media(_ video: IndexedVideo, request: Request, context: BasicRequestContext) async throws -> Response {
        let attributes = try? FileManager.default.attributesOfItem(atPath: video.path)
        guard let size = (attributes?[.size] as? NSNumber)?.intValue else {
            throw Failure(status: .notFound, message: "the video '\(video.id)' is no longer on disk")
        }
        var headers: HTTPFields = [.contentType: Self.contentType(video.path), .acceptRanges: "bytes"]
        let io = FileIO()
        if let header = request.headers[.range], let parsed = Self.range(header, size: size) {
            guard let r = parsed else {
                headers[.contentRange] = "bytes */\(size)"
                return Response(status: .rangeNotSatisfiable, headers: headers,
                                body: ResponseBody(byteBuffer: ByteBuffer(string: "{\"error\":\"range not satisfiable\"}")))
            }
            headers[.contentRange] = "bytes \(r.lowerBound)-\(r.upperBound)/\(size)"
            headers[.contentLength] = "\(r.count)"
            if request.method == .head { return Response(status: .partialContent, headers: headers) }
            return Response(status: .partialContent, headers: headers, body: try await io.loadFile(path: video.path, range: r, context: context))
        }
        headers[.contentLength] = "\(size)"
        if request.method == .head || size == 0 { return Response(status: .ok, headers: headers) }
        return Response(status: .ok, headers: headers, body: try await io.loadFile(path: video.path, context: context))
    }
}
