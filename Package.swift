// swift-tools-version:6.0
// videobert: VideoBERT-style masked pretraining on video, from video files to a trained model.
// Layout, data flow, formats and where to add things: docs/ARCHITECTURE.md.
import PackageDescription

let package = Package(
    name: "videobert",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "videobert", targets: ["videobert"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        // C libraries, found through pkg-config; `tools/setup` installs the Debian packages.
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CFFmpeg", path: "Sources/CFFmpeg", pkgConfig: "libavformat",
                       providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavutil-dev", "libswscale-dev"])]),

        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),

        // Flat float storage, sgemm, seeded RNG, .npy / safetensors / JSON I/O, atomic writes, progress.
        .target(name: "Tensor", dependencies: ["CBLAS", "CZlib"]),
        // YAML recipes with defaults in one place, strict keys, `--set key=value` overrides.
        .target(name: "Recipe", dependencies: ["Yams"]),
        // Decoding (libavformat/libavcodec), frame sampling by timestamp, RGB scaling, encoding.
        .target(name: "Media", dependencies: ["CFFmpeg", "Tensor"]),
        // One vector per clip: the built-in descriptor, or imported .npy features.
        .target(name: "Features", dependencies: ["Tensor"]),
        // WordPiece, k-means, transcripts, alignment, the tokenized corpus.
        .target(name: "Tokenize", dependencies: ["Tensor", "Recipe", "Media", "Features"]),
        // BertConfig, BertForPreTraining (HF checkpoint I/O) from layers as forward/backward pairs, parameters, arena, AdamW.
        // Optimised in debug builds too: its SIMD kernels (exp, GELU, softmax) run ~20× slower
        // unoptimised, which is where a debug test run spent most of its time.
        .target(name: "Model", dependencies: ["Tensor"], swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),

        // More than one process: MPI (mpirun, srun) as a Communicator.
        .target(name: "Distributed", dependencies: ["CMPI", "Tensor"]),
        // Tables, plots (SVG), contact sheets, report.html.
        .target(name: "Report", dependencies: ["Tensor"]),
        // Pretraining: examples and masking, objectives, the trainer, checkpoints.
        .target(name: "Train", dependencies: ["Tensor", "Recipe", "Tokenize", "Model", "Report"]),
        // The built-in demo: a generated corpus of cooking videos with narration.
        .target(name: "Demo", dependencies: ["Tensor"]),
        // Downstream tasks: zero-shot classification, fine-tuned captioning, next-step prediction, retrieval;
        // caption metrics (BLEU, METEOR, ROUGE-L, CIDEr-D as pycocoevalcap).
        .target(name: "Tasks", dependencies: ["Tensor", "Recipe", "Tokenize", "Model", "Train"]),

        // A searchable index of a video collection: segments, thumbnails, transcripts (SQLite FTS5
        // through GRDB), embeddings (.npy, memory-mapped); search by BM25, embeddings or both.
        .target(name: "Index", dependencies: ["Tensor", "Media", "Tokenize", "Model", "Train", .product(name: "GRDB", package: "GRDB.swift")]),

        // `videobert serve`: an index over HTTP (JSON API, thumbnails, videos with range requests, one web page).
        .target(name: "Serve", dependencies: ["Index", "Tensor", .product(name: "Hummingbird", package: "hummingbird"),
                                            .product(name: "HummingbirdCore", package: "hummingbird")]),

        .executableTarget(name: "videobert", dependencies: [
            "Tensor", "Recipe", "Media", "Features", "Tokenize", "Demo", "Model", "Train", "Report", "Distributed", "Tasks", "Index", "Serve",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "bench", dependencies: ["Tensor", "Media", "Features", "Tokenize", "Model", "CMalloc", "Index", "Serve"],
                          path: "tools/bench/Sources"),
        // glibc's mallinfo2 for the benchmarks (heap bytes in use across steady-state steps).
        .systemLibrary(name: "CMalloc", path: "tools/bench/CMalloc"),

        .testTarget(name: "TensorTests", dependencies: ["Tensor"]),
        .testTarget(name: "TrainTests", dependencies: ["Train", "Tokenize", "Tensor", "Model"]),
        .testTarget(name: "RecipeTests", dependencies: ["Recipe"]),
        .testTarget(name: "MediaTests", dependencies: ["Media", "Tensor"]),
        .testTarget(name: "FeaturesTests", dependencies: ["Features", "Tensor"]),
        .testTarget(name: "TokenizeTests", dependencies: ["Tokenize", "Tensor", "Media", "Features"],
                    resources: [.copy("Resources")]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "Tensor"],
                    resources: [.copy("Resources")]),
        .testTarget(name: "TasksTests", dependencies: ["Tasks", "Tensor", "Tokenize", "Model", "Train"],
                    resources: [.copy("Resources")]),
        // Runs the built `videobert` binary end to end.
        .testTarget(name: "CLITests", dependencies: ["videobert", "Media", "Tensor", "Model", "Tokenize", "Index", "Recipe"]),
    ]
)
