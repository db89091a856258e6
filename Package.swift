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
                       providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavutil-dev", "libswscale-dev", "libswresample-dev"])]),

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
        // Training: pretraining (VideoBERT, CBT) and caption fine-tuning on one training loop; examples
        // and masking, objectives, checkpoints.
        .target(name: "Train", dependencies: ["Tensor", "Recipe", "Tokenize", "Model", "Report", "Tasks"]),
        // The built-in demo: a generated corpus of cooking videos with narration.
        .target(name: "Demo", dependencies: ["Tensor", "Media", "Recipe", "Tokenize", "Train", "Tasks", "Report"]),
        // Downstream tasks (inference: no trainer): zero-shot classification, captioning, next-step
        // prediction, retrieval; caption metrics (BLEU, METEOR, ROUGE-L, CIDEr-D as pycocoevalcap).
        .target(name: "Tasks", dependencies: ["Tensor", "Recipe", "Tokenize", "Model", "Backbones"]),
        // Standard backbones (torchvision ResNets) as forward-only feature extractors from users' weight files.
        .target(name: "Backbones", dependencies: ["Tensor", "Model", "Media"],
                swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),

        // A searchable index of a video collection: segments, thumbnails, transcripts (SQLite FTS5
        // through GRDB), embeddings (.npy, memory-mapped); search by BM25, embeddings or both.
        .target(name: "Index", dependencies: ["Tensor", "Media", "Tokenize", "Model", "Train", .product(name: "GRDB", package: "GRDB.swift")]),

        // `videobert serve`: an index over HTTP (JSON API, thumbnails, videos with range requests, one web page).
        .target(name: "Serve", dependencies: ["Index", "Tensor", .product(name: "Hummingbird", package: "hummingbird"),
                                            .product(name: "HummingbirdCore", package: "hummingbird")]),

        .executableTarget(name: "videobert", dependencies: [
            "Tensor", "Recipe", "Media", "Features", "Tokenize", "Demo", "Model", "Train", "Report", "Distributed", "Tasks", "Backbones",
            "Index", "Serve",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "bench", dependencies: ["Tensor", "Media", "Features", "Tokenize", "Model", "CMalloc", "Backbones", "Index", "Serve"],
                          path: "tools/bench/Sources"),
        // The fuzz harness (docs/RELIABILITY.md): mutates tools/fuzz/seeds through every parser of outside input.
        .executableTarget(name: "fuzz", dependencies: ["Tensor", "Recipe", "Tokenize", "Model", "Train", "Tasks", "Backbones", "Index"],
                          path: "tools/fuzz/Sources"),
        // glibc's mallinfo2 for the benchmarks (heap bytes in use across steady-state steps).
        .systemLibrary(name: "CMalloc", path: "tools/bench/CMalloc"),

        // Helpers the test targets share (repository paths, temporary folders, a .npy writer).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "TensorTests", dependencies: ["Tensor", "TestSupport"]),
        .testTarget(name: "TrainTests", dependencies: ["Train", "Tokenize", "Tensor", "Model", "TestSupport"]),
        // Optimised in debug builds too: the tests generate full ResNet weights (60M floats) from a formula.
        .testTarget(name: "BackbonesTests", dependencies: ["Backbones", "Tensor", "Model", "TestSupport"],
                    resources: [.copy("Resources")], swiftSettings: [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        .testTarget(name: "RecipeTests", dependencies: ["Recipe"]),
        .testTarget(name: "MediaTests", dependencies: ["Media", "Tensor"]),
        .testTarget(name: "FeaturesTests", dependencies: ["Features", "Tensor"],
                    resources: [.copy("Resources")]),
        .testTarget(name: "TokenizeTests", dependencies: ["Tokenize", "Tensor", "Media", "Features", "TestSupport"],
                    resources: [.copy("Resources")]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "Tensor", "TestSupport"],
                    resources: [.copy("Resources")]),
        .testTarget(name: "TasksTests", dependencies: ["Tasks", "Backbones", "Tensor", "Tokenize", "Model", "Train", "TestSupport"],
                    resources: [.copy("Resources")]),
        // Runs the built `videobert` binary end to end.
        .testTarget(name: "CLITests", dependencies: ["videobert", "Media", "Tensor", "Model", "Tokenize", "Features", "Index", "Recipe", "Demo", "Report", "Tasks", "TestSupport"]),
    ]
)
