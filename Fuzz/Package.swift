// swift-tools-version:6.2
// The fuzz harness (scripts/fuzz.sh builds and runs it; not part of the main build).
import Foundation
import PackageDescription

/// The main package's identity: the name of the folder this one sits in (a clone may be named
/// anything).
let main = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()

let package = Package(
    name: "VertebraFuzz",
    dependencies: [.package(path: "..")],
    targets: [
        .target(name: "CFuzzDriver"),
        .executableTarget(
            name: "vertebra-fuzz",
            dependencies: ["CFuzzDriver", .product(name: "VertebraXML", package: main), .product(name: "Vertebra", package: main)],
            // `main` is ours (it starts libFuzzer's driver); no implicit one.
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
    ],
    swiftLanguageModes: [.v6]
)
