// swift-tools-version: 6.1
import PackageDescription

// ONNX Runtime comes from its PyPI wheel, unpacked by `make setup` into .deps/onnxruntime/lib.
// The binaries find it at run time through an rpath: one relative to the binary (which survives
// moving the checkout) and one absolute (for binaries copied elsewhere on this machine).
let onnxRuntimeLib = Context.packageDirectory + "/.deps/onnxruntime/lib"
let onnxRuntimeLinkFlags: [LinkerSetting] = [
    .unsafeFlags([
        "-L", onnxRuntimeLib,
        "-Xlinker", "-rpath", "-Xlinker", "$ORIGIN/../../../.deps/onnxruntime/lib",
        "-Xlinker", "-rpath", "-Xlinker", onnxRuntimeLib,
    ])
]

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "Lark",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "lark", targets: ["lark"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.3.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        .package(url: "https://github.com/vapor/sqlite-nio", from: "1.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.34.1"),
    ],
    targets: [
        // C declarations only.
        .systemLibrary(name: "CEspeakNG", path: "Sources/CEspeakNG", pkgConfig: "espeak-ng"),
        .systemLibrary(name: "COnnxRuntime", path: "Sources/COnnxRuntime"),
        .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),

        .target(name: "SpeechCore", swiftSettings: strict),
        .target(name: "TextNormalization", dependencies: ["SpeechCore"], swiftSettings: strict),
        .target(name: "SpeechMarks", dependencies: ["SpeechCore"], swiftSettings: strict),
        .target(
            name: "Espeak",
            dependencies: ["SpeechCore", "CEspeakNG"],
            swiftSettings: strict
        ),
        .target(
            name: "Phonemizer",
            dependencies: ["SpeechCore", "Espeak"],
            swiftSettings: strict
        ),
        .target(name: "OnnxGraph", swiftSettings: strict),
        // Lark's own CPU kernels (C, SIMD paths chosen at run time), registered with ONNX Runtime
        // as custom operators. Optimized even in debug builds: tests run voices through them.
        .target(name: "CLarkKernels", cSettings: [.unsafeFlags(["-O2"])]),
        .target(
            name: "OnnxRuntime",
            dependencies: ["COnnxRuntime", "CLarkKernels"],
            swiftSettings: strict,
            linkerSettings: onnxRuntimeLinkFlags
        ),
        .target(
            name: "PiperEngine",
            dependencies: [
                "SpeechCore", "Phonemizer", "OnnxRuntime", "OnnxGraph", "CLarkKernels",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "EspeakEngine",
            dependencies: ["SpeechCore", "Espeak"],
            swiftSettings: strict
        ),
        .target(
            name: "VoiceCatalog",
            dependencies: [
                "SpeechCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // FFmpeg's libraries, loaded at the first compressed encoding (not linked): see lark_ffmpeg.h.
        .target(name: "CLarkFFmpeg"),
        .target(
            name: "AudioEncoding",
            dependencies: ["SpeechCore", "CLarkFFmpeg"],
            swiftSettings: strict
        ),
        .target(name: "SSML", dependencies: ["SpeechCore"], swiftSettings: strict),
        .target(
            name: "SpeechService",
            dependencies: [
                "SpeechCore", "PiperEngine", "EspeakEngine", "VoiceCatalog", "Espeak", "TextNormalization", "SSML", "AudioEncoding",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "SpeechJobs",
            dependencies: [
                "SpeechCore",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "AudioStorage",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "JobWorkers",
            dependencies: [
                "SpeechCore", "SpeechJobs", "SpeechService", "AudioEncoding", "AudioStorage", "SpeechMarks",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Connection-level protections shared by the HTTP and Wyoming servers.
        .target(
            name: "NetworkGuards",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        .target(
            name: "AccessControl",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .target(
            name: "LarkServer",
            dependencies: [
                "AccessControl", "NetworkGuards", "SpeechCore", "SpeechService", "VoiceCatalog", "AudioEncoding", "SpeechJobs", "JobWorkers", "AudioStorage",
                "SpeechMarks",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            ],
            // The web page, compiled into the binary (see WebAssets.swift for why not a bundle).
            resources: [
                .embedInCode("Web/index.html"), .embedInCode("Web/style.css"), .embedInCode("Web/errors.js"),
                .embedInCode("Web/api.js"), .embedInCode("Web/voices.js"), .embedInCode("Web/player.js"),
                .embedInCode("Web/jobs.js"), .embedInCode("Web/app.js"),
                // The OpenAPI document, served at /openapi.json (docs/openapi.json links to it).
                .embedInCode("Contract/openapi.json"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "WyomingServer",
            dependencies: [
                "SpeechCore", "SpeechService", "NetworkGuards",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "lark",
            dependencies: [
                "AccessControl", "SpeechCore", "OnnxRuntime", "PiperEngine", "SpeechService", "VoiceCatalog", "CMalloc", "AudioEncoding", "LarkServer", "SpeechJobs", "JobWorkers", "AudioStorage",
                "TextNormalization", "WyomingServer",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),

        .testTarget(
            name: "LarkTests",
            dependencies: [
                "AccessControl", "SpeechCore", "Espeak", "Phonemizer", "OnnxRuntime", "OnnxGraph", "PiperEngine", "EspeakEngine", "CLarkKernels",
                "VoiceCatalog", "AudioEncoding", "SpeechService", "LarkServer", "SpeechJobs", "JobWorkers", "AudioStorage",
                "TextNormalization", "SSML", "SpeechMarks", "WyomingServer",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            exclude: ["Resources"],
            swiftSettings: strict
        ),
    ]
)
