import Foundation
import Media
import Tasks
import TestSupport
import Tokenize
import XCTest

/// `videobert next-step VIDEO --checkpoint C`: a raw demo video, tokenized through the path
/// `caption VIDEO` uses, gets the forecast the corpus gives for the same segment — the corpus
/// evaluation's sampled continuations, and the candidates' scores computed on the corpus's
/// tokens — with a tiny VideoBERT (3 steps) and a forecaster fine-tuned from it (2 steps), on
/// IndexCLITests' demo corpus.
final class NextStepVideoCLITests: XCTestCase {
    func run(_ args: [String]) throws -> CLIResult { try CLI.run(args, env: ["VIDEOBERT_QUIET": "1"]) }

    func json(_ r: CLIResult) throws -> [String: Any] {
        XCTAssertEqual(r.status, 0, r.stderr)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
    }

    func testRawVideoForecastEqualsTheCorpusForecast() throws {
        let f = try IndexCLITests.Fixture.get()
        let dir = try temporaryFolder(named: "videobert-next-step-video")
        let pretrained = try ApplyFixture.get().pretrained

        // The corpus evaluation: the first test pair's context and sampled continuations.
        let samplesFile = dir + "/samples.json"
        _ = try json(try run(["next-step", "--checkpoint", pretrained, "--corpus", f.dir + "/t", "--part", "visual", "--horizon", "2",
                              "--samples", "2", "--sampled-pairs", "1", "--samples-out", samplesFile, "--json"]))
        let continuations = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: samplesFile))) as? [[String: Any]])
        let first = try XCTUnwrap(continuations.first)
        let id = try XCTUnwrap(first["id"] as? String).split(separator: "#")
        let (videoID, k) = (String(id[0]), try XCTUnwrap(Int(id[1])))
        let corpus = try TaskCorpus(path: f.dir + "/t")
        let v = try XCTUnwrap(corpus.videoIndex[videoID])
        let segment = corpus.corpus.index.videos[v].segmentBegin + k
        let end = Double(corpus.corpus.times(of: segment).end)
        let at = String(format: "%.3fs", (end * 1000).rounded(.down) / 1000)
        let file = f.corpus + "/videos/\(videoID).mp4"

        // Candidates: sentences of the corpus.
        let sentences = ["now let's stir the tomatoes", "cut the onion", "pour the milk into the bowl", "peel the potatoes"]
        try (sentences.joined(separator: "\n") + "\n\n").write(toFile: dir + "/candidates.txt", atomically: true, encoding: .utf8)

        // The raw video, forecast from the end of that segment.
        let r = try json(try run(["next-step", file, "--checkpoint", pretrained, "--at", at, "--horizon", "2", "--samples", "2",
                                  "--candidates", dir + "/candidates.txt", "--sheet", dir + "/next.png", "--json"]))
        XCTAssertEqual(r["video"] as? String, videoID)
        XCTAssertEqual(r["segment"] as? Int, k)
        XCTAssertEqual(r["context"] as? [Int], first["context"] as? [Int])
        let visual = try XCTUnwrap(r["visual"] as? [String: Any])
        XCTAssertEqual(visual["samples"] as? [[Int]], first["samples"] as? [[Int]])
        let positions = try XCTUnwrap(visual["positions"] as? [[String: Any]])
        XCTAssertEqual(positions.count, 2)
        for p in positions {
            let top = try XCTUnwrap(p["top"] as? [[String: Any]]).compactMap { $0["log_probability"] as? Double }
            XCTAssertEqual(top.count, 5)
            XCTAssertEqual(top, top.sorted(by: >))
        }
        // The candidates' pseudo-log-likelihoods, computed on the corpus's own tokens of the segment.
        let model = try TaskModel(checkpoint: pretrained, corpus: corpus)
        let options = NextStepTextOptions()
        let textCap = max(1, min(options.maxTextTokens, (model.maxSeq - 4) / 3))
        let videoCap = max(0, min(options.maxVideoTokens, model.maxSeq - 3 - 2 * textCap))
        let expected = NextStepRanking.pseudoLogLikelihoods(model: model, context: Array(corpus.corpus.text(of: segment).suffix(textCap)),
                                                            candidates: sentences.map { Array(model.encode($0).prefix(textCap)) },
                                                            video: Array(corpus.corpus.visual(of: segment).prefix(videoCap)), aggregate: .sum)
        let ranked = try XCTUnwrap(r["candidates"] as? [[String: Any]])
        XCTAssertEqual(ranked.count, 4)
        XCTAssertEqual(ranked.compactMap { $0["rank"] as? Int }, [1, 2, 3, 4])
        for c in ranked {
            let line = try XCTUnwrap(c["line"] as? Int)
            XCTAssertEqual(c["text"] as? String, sentences[line])
            XCTAssertEqual(try XCTUnwrap(c["score"] as? Double), expected[line], accuracy: 1e-3 * max(1, abs(expected[line])))
        }
        let png = try Data(contentsOf: URL(fileURLWithPath: dir + "/next.png"))
        XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47])

        // Without --at: the end of the video; the table names the segment and the ranking.
        let table = try run(["next-step", file, "--checkpoint", pretrained, "--candidates", dir + "/candidates.txt"])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertTrue(table.stdout.contains("next step after") && table.stdout.contains("next visual words") && table.stdout.contains("cut the onion"), table.stdout)

        // A forecaster fine-tuned from it: the generated sentence and the candidates' generator
        // log-likelihoods equal those computed on the corpus's visual words of the segment.
        try """
        init: \(pretrained)
        corpus: \(f.dir)/t
        annotations: \(f.corpus)/annotations.json
        out: \(dir)/forecaster
        data:
          max_video_tokens: 8
          max_caption_tokens: 6
        train:
          batch_size: 4
          steps: 2
          lr: 0.001
          warmup_steps: 1
        eval:
          every: 0
          batches: 1
        checkpoint:
          every: 2
          keep: 1
        log_every: 1
        """.write(toFile: dir + "/next-step.yaml", atomically: true, encoding: .utf8)
        let tuned = try json(try run(["finetune", "next-step", "--recipe", dir + "/next-step.yaml", "--json"]))
        let forecaster = try XCTUnwrap(tuned["checkpoint"] as? String)
        let g = try json(try run(["next-step", file, "--checkpoint", forecaster, "--at", at, "--beam", "1", "--max-tokens", "5",
                                  "--candidates", dir + "/candidates.txt", "--json"]))
        XCTAssertEqual(g["kind"] as? String, "videobert-forecaster")
        XCTAssertNil(g["visual"] as? [String: Any])
        let fmodel = try TaskModel(checkpoint: forecaster, corpus: corpus, allowClipFeatures: true)
        let generator = CaptionGenerator(model: fmodel)
        var gen = GenerationOptions()
        gen.beam = 1; gen.maxTokens = 5
        let video = CaptionVideo.words(Array(corpus.corpus.visual(of: segment))).prefix(generator.videoLimit(gen))
        XCTAssertEqual(g["generated"] as? String, generator.generate([video], options: gen)[0].text)
        let fexpected = NextStepForecast.generatorLogLikelihoods(generator: generator, video: video,
                                                                 candidates: sentences.map { Array(fmodel.encode($0).prefix(5)) }, aggregate: .sum)
        for c in try XCTUnwrap(g["candidates"] as? [[String: Any]]) {
            let line = try XCTUnwrap(c["line"] as? Int)
            XCTAssertEqual(try XCTUnwrap(c["score"] as? Double), fexpected[line], accuracy: 1e-3 * max(1, abs(fexpected[line])))
        }

        // Errors: one line naming the file (or the option), the exit status non-zero.
        let short = dir + "/short.mp4"
        try TestPattern.writeVideo(path: short, width: 32, height: 32, fps: FrameRate(approximating: 10), seconds: 0.2)
        try Data("not a video".utf8).write(to: URL(fileURLWithPath: dir + "/broken.mp4"))
        for (args, status, says) in [
            ([file, "--at", "1:75"], 64, "--at must be a time"),
            ([file, "--at", "soon"], 64, "--at must be a time"),
            ([file, "--at", "10:00"], 1, "past the end of the video"),
            ([file, "--at", "0"], 1, "no clip begins before"),
            ([short], 1, "shorter than one clip"),
            ([dir + "/broken.mp4"], 1, "broken.mp4"),
            ([dir + "/nope.mp4"], 1, "nope.mp4"),
            ([file, "--candidates", dir + "/nope.txt"], 1, "nope.txt"),
            ([file, "--annotations", dir + "/x.json"], 64, "go with --corpus"),
        ] {
            let e = try run(["next-step"] + args + ["--checkpoint", pretrained])
            XCTAssertEqual(e.status, Int32(status), "\(args): \(e.stderr)")
            XCTAssertTrue(e.stderr.contains(says), "\(args): \(e.stderr)")
            if status == 1 {
                XCTAssertEqual(e.stderr.split(separator: "\n").count, 1, "\(args): \(e.stderr)")
                XCTAssertTrue(e.stderr.hasPrefix("error: "), e.stderr)
            }
        }
        // --corpus is still required without a video.
        let missing = try run(["next-step", "--checkpoint", pretrained])
        XCTAssertEqual(missing.status, 64, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("--corpus"), missing.stderr)
    }
}
