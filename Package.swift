// swift-tools-version:6.2
import PackageDescription

/// Settings every target of ours shares: Swift 6 language mode, strict concurrency, no warnings.
let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]

let package = Package(
    name: "Vertebra",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "VertebraXML", targets: ["VertebraXML"]),
        .library(name: "Natter", targets: ["Natter"]),
        .library(name: "VertebraJournal", targets: ["VertebraJournal"]),
        .library(name: "Vertebra", targets: ["Vertebra"]),
        .library(name: "VertebraRouter", targets: ["VertebraRouter"]),
        .library(name: "VertebraAgent", targets: ["VertebraAgent"]),
        .library(name: "VertebraWeb", targets: ["VertebraWeb"]),
        .executable(name: "vertebra", targets: ["vertebra"]),
        .executable(name: "files-agent", targets: ["files-agent"]),
        .executable(name: "exec-agent", targets: ["exec-agent"]),
    ],
    traits: [
        .trait(
            name: "OTLP",
            description: "OpenTelemetry export (OTLP/HTTP, swift-otel) of the binaries' traces and metrics: `swift build --traits OTLP`; off by default, it is a heavy build")
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        .systemLibrary(
            name: "CExpat", pkgConfig: "expat",
            providers: [.apt(["libexpat1-dev"]), .brew(["expat"])]),
        .systemLibrary(
            name: "CSQLite", pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]),
        .systemLibrary(
            name: "CCrypto", pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"]), .brew(["openssl"])]),
        .target(name: "VertebraXML", dependencies: ["CExpat"], swiftSettings: strict),
        .target(
            name: "VertebraJournal", dependencies: ["CSQLite", .product(name: "CoreMetrics", package: "swift-metrics")],
            swiftSettings: strict),
        .target(
            name: "Natter",
            dependencies: [
                "VertebraXML", "CCrypto",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict),
        .target(
            name: "Vertebra",
            dependencies: [
                "VertebraXML", "Natter", "VertebraJournal",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict),
        .target(
            name: "VertebraAgent",
            dependencies: [
                "Vertebra", "Natter", "VertebraJournal", "VertebraXML",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict),
        .target(
            name: "VertebraRouter",
            dependencies: [
                "VertebraXML", "Natter",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict),
        // The web view: its own target, so that the core libraries do not depend on Hummingbird.
        .target(
            name: "VertebraWeb",
            dependencies: [
                "VertebraJournal", "Vertebra", "VertebraXML", "Natter",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        // OTLP export: its own target, and swift-otel only with the OTLP trait, so the core builds fast.
        .target(
            name: "VertebraOTel",
            dependencies: [
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "OTel", package: "swift-otel", condition: .when(traits: ["OTLP"])),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "vertebra",
            dependencies: [
                "VertebraXML", "VertebraJournal", "Natter", "VertebraRouter", "Vertebra", "VertebraAgent", "VertebraWeb", "VertebraOTel",
                "FilesAgentOperations", "ExecAgentOperations",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict),
        // Example agents (Agents/): each is a library of operations and a small executable.
        .target(
            name: "FilesAgentOperations", dependencies: ["Vertebra", "VertebraXML", "CCrypto"], path: "Agents/files/Operations",
            swiftSettings: strict),
        .executableTarget(
            name: "files-agent", dependencies: ["FilesAgentOperations", "VertebraAgent", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Agents/files/Main", swiftSettings: strict),
        .target(name: "CPosixShims"),
        .target(
            name: "ExecAgentOperations", dependencies: ["Vertebra", "VertebraXML", "CPosixShims"], path: "Agents/exec/Operations",
            swiftSettings: strict),
        .executableTarget(
            name: "exec-agent", dependencies: ["ExecAgentOperations", "VertebraAgent", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Agents/exec/Main", swiftSettings: strict),
        .target(
            name: "XMPPTestSupport", dependencies: [.product(name: "Logging", package: "swift-log")], path: "Tests/XMPPTestSupport",
            swiftSettings: strict),
        .testTarget(
            name: "ReadmeExampleTests",
            dependencies: [
                "Vertebra", "Natter", "VertebraJournal", "VertebraXML", "vertebra", "XMPPTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "AgentTests", dependencies: ["FilesAgentOperations", "ExecAgentOperations", "Vertebra"], path: "Tests/AgentTests",
            swiftSettings: strict),
        .testTarget(
            name: "VertebraXMLTests", dependencies: ["VertebraXML"], swiftSettings: strict),
        .testTarget(
            name: "VertebraJournalTests", dependencies: ["VertebraJournal", "vertebra", "CSQLite"],
            swiftSettings: strict),
        .testTarget(
            name: "VertebraTests",
            dependencies: [
                "Vertebra", "VertebraAgent", "Natter", "VertebraJournal", "VertebraXML", "XMPPTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "VertebraOTelTests",
            dependencies: [
                "VertebraOTel", "Vertebra", "Natter", "VertebraJournal", "VertebraXML",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "VertebraWebTests",
            dependencies: ["VertebraWeb", "VertebraJournal", "Vertebra", "VertebraXML", "vertebra"],
            swiftSettings: strict),
        .testTarget(
            name: "VertebraEndToEndTests",
            dependencies: [
                "Vertebra", "VertebraAgent", "Natter", "VertebraJournal", "VertebraXML", "vertebra", "files-agent", "exec-agent",
                "XMPPTestSupport", .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "NatterTests",
            dependencies: [
                "Natter", "XMPPTestSupport",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "VertebraRouterTests",
            dependencies: [
                "VertebraRouter", "Natter", "VertebraXML", "vertebra", "XMPPTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
