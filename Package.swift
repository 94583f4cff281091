// swift-tools-version:6.2
import PackageDescription

/// Settings every target of ours shares: Swift 6 language mode, strict concurrency, no warnings.
let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]

let package = Package(
    name: "Vertebra",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "VertebraXML", targets: ["VertebraXML"]),
        .executable(name: "vertebra", targets: ["vertebra"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CExpat", pkgConfig: "expat",
            providers: [.apt(["libexpat1-dev"]), .brew(["expat"])]),
        .target(name: "VertebraXML", dependencies: ["CExpat"], swiftSettings: strict),
        .executableTarget(
            name: "vertebra",
            dependencies: [
                "VertebraXML",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "VertebraXMLTests", dependencies: ["VertebraXML"], swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
