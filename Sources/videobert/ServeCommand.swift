import ArgumentParser
import Foundation
import Index
import Model
import Serve
import Tasks
import Tensor

/// `videobert serve`: an index over HTTP (JSON API, thumbnails, videos, one web page).
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve an index over HTTP: a search page, a JSON API, thumbnails and the videos.",
        discussion: """
        Open http://127.0.0.1:8080/ for the search page: a search box, ranked results with \
        thumbnails, times and transcript, and a player that plays a hit from its start. The API: \
        GET /api/search?q=&top=&mode= (the results of `videobert search --json`, plus thumbnail \
        and media URLs), GET /api/segments/{id}, GET /api/thumbnails/{id}.png, GET /media/{key} \
        (the video files listed in the index, with HTTP range requests) and GET /healthz.

        Binds to 127.0.0.1 unless --host says otherwise. With --token, every /api/ and /media/ \
        call needs "Authorization: Bearer TOKEN" (the page: open /#token=TOKEN). Bad requests \
        get a 4xx with {"error": "..."}; queries are at most 1024 bytes, results at most 100. \
        The query encoder is the index's checkpoint (or --checkpoint); without one, searches \
        are BM25 over the transcripts. Prints "serving http://HOST:PORT/" once listening \
        (--port 0: any free port). Stops on Ctrl-C.

        POST /api/caption captions an uploaded video (the request body, at most --max-upload-mb) \
        with a captioner given as --checkpoint (from `videobert finetune caption`; --checkpoint \
        may be given twice: a captioner and a query encoder): fixed windows (?window=6), \
        {"segments": [{"index", "start", "end", "caption"}]} or WebVTT with ?format=vtt.

        Example:
          videobert serve demo/index
          videobert serve demo/index --port 0 --token s3cret
          videobert serve demo/index --checkpoint demo/caption/checkpoints/step-0000600
          curl --data-binary @video-0003.mp4 http://127.0.0.1:8080/api/caption
        """)

    @Argument(help: "The index folder (from `videobert index`).") var index: String
    @Option(help: "Encode queries with this checkpoint instead of the index's; a captioner (from `videobert finetune caption`) answers POST /api/caption. Repeatable (one of each).") var checkpoint: [String] = []
    @Option(help: "Largest upload POST /api/caption accepts, in MB.") var maxUploadMb: Int = 200
    @Option(help: "Address to bind.") var host: String = "127.0.0.1"
    @Option(help: "Port (0: any free port).") var port: Int = 8080
    @Option(help: "Require this bearer token on every API call.") var token: String?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535") }
        guard (1...16384).contains(maxUploadMb) else { throw ValidationError("--max-upload-mb must be in 1...16384") }
        guard checkpoint.count <= 2 else { throw ValidationError("--checkpoint at most twice: a query encoder and a captioner") }
        if let token { guard !token.isEmpty, token.utf8.count <= 256 else { throw ValidationError("--token must be 1 to 256 bytes") } }
    }

    /// Shares a query encoder between request handlers (its forward pass is serialised by its own lock).
    final class Encoder: @unchecked Sendable {
        let encoder: SegmentEncoder
        init(_ e: SegmentEncoder) { encoder = e }
    }

    /// The checkpoints given, by role: captioners answer POST /api/caption, any other is the query encoder.
    func roles() throws -> (encoder: String?, captioner: String?) {
        var encoder: String?, captioner: String?
        for c in checkpoint {
            let kind = try Checkpoint(folder: c).kind
            if kind == .videobertCaptioner || kind == .cbtCaptioner {
                guard captioner == nil else { throw VideoBertError("a second captioner: give one captioner and at most one query encoder", file: c) }
                captioner = c
            } else {
                guard encoder == nil else { throw VideoBertError("a second query encoder: give at most one, and one captioner", file: c) }
                encoder = c
            }
        }
        return (encoder, captioner)
    }

    /// POST /api/caption's work: the upload captioned as `caption VIDEO --window W` captions it.
    static func captioner(_ checkpoint: String) throws -> SearchServer.Captioner {
        // Fails now, not at the first upload, when the training corpus cannot be found.
        _ = try RawVideos.trainingCorpus(checkpoint: checkpoint, corpus: nil, accepting: [.videobertCaptioner, .cbtCaptioner],
                                         reads: "captioners (from `videobert finetune caption`)")
        return { file, request in
            var generation = GenerationOptions()
            generation.beam = request.beam
            let captioner = VideoCaptioner(checkpoint: checkpoint, corpus: nil, transcript: nil, window: request.window, generation: generation,
                                           batch: 16, showProgress: false)
            let (segments, failures) = try captioner.run(videos: [file])
            if segments.isEmpty, let f = failures.first { throw VideoBertError(f.error) }
            return segments.map { SearchServer.CaptionedSegment(index: $0.index, start: $0.start, end: $0.end, caption: $0.caption) }
        }
    }

    func run() throws {
        let index = try VideoIndex(folder: self.index, connections: max(2, ProcessInfo.processInfo.activeProcessorCount))
        let (checkpoint, captionCheckpoint) = try roles()
        let captioner = try captionCheckpoint.map(Self.captioner)
        var embed: (@Sendable (String) throws -> [Float])?
        if index.embeddings != nil && (checkpoint != nil || !index.checkpoint.isEmpty) {
            let e = Encoder(try SearchCommand.queryEncoder(index: index, checkpoint: checkpoint))
            embed = { try e.encoder.encodeText([$0])[0] }
        } else if index.embeddings == nil {
            logLine("serve: no embeddings in this index (\(index.note)): searches are BM25 over the transcripts")
        }
        // Requests run side by side: one OpenBLAS thread per call (docs/ARCHITECTURE.md §8).
        BLAS.threads = 1
        var options = SearchServer.Options()
        options.host = host
        options.port = port
        options.token = token
        options.maxUploadBytes = maxUploadMb << 20
        let server = try SearchServer(index: index, embed: embed, options: options, captioner: captioner)
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var failure: Error?
        let host = self.host
        Task {
            do {
                try await server.run { port in
                    let shown = host.contains(":") ? "[\(host)]" : host
                    FileHandle.standardOutput.write(Data("serving http://\(shown):\(port)/\n".utf8))
                }
            } catch {
                failure = error
            }
            done.signal()
        }
        done.wait()
        if let failure { throw VideoBertError("cannot serve on \(host):\(port): \(failure)", file: self.index) }
    }
}
