import Foundation
import Testing

/// A private Prosody, ejabberd or `vertebra router` on 127.0.0.1, started with the project's
/// scripts/xmpp scripts and stopped by PID. Shared by the test targets that need a real server.
public final class XMPPServerProcess: Sendable {
    public enum Kind: String, CaseIterable, Sendable, CustomTestStringConvertible {
        /// Prosody, ejabberd, and our own embedded router (`vertebra router`).
        case prosody, ejabberd, router
        public var testDescription: String { rawValue }
        /// Whether the server offers XEP-0198 stream management (the router does not yet).
        public var offersStreamManagement: Bool { self != .router }
        /// The servers that offer XEP-0198.
        public static let withStreamManagement: [Kind] = allCases.filter(\.offersStreamManagement)
    }

    static let scripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("scripts/xmpp")

    public let kind: Kind
    public let directory: String
    public let port: Int
    public let domain: String
    public let caFile: String

    /// Password of every user the tests register.
    public static let password = "s3cret-pw"

    private init(kind: Kind, directory: String, port: Int, domain: String, caFile: String) {
        self.kind = kind
        self.directory = directory
        self.port = port
        self.domain = domain
        self.caFile = caFile
    }

    /// Starts a server with `users` (password ``password``) and TLS optional.
    public static func start(_ kind: Kind, users: [String], port: Int = 0, directory: String? = nil) async throws -> XMPPServerProcess {
        let dir = directory ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("vertebra-\(kind.rawValue)-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var environment = ["XMPP_TLS": "optional", "XMPP_SM_RESUME_TIMEOUT": "5", "XMPP_LOG_LEVEL": kind == .prosody ? "warn" : "warning"]
        if kind == .router, let binary = builtVertebra() { environment["VERTEBRA_BIN"] = binary }
        let result = try await runOffPool(
            "\(kind.rawValue)-up.sh", [dir, String(port)] + users.map { "\($0):\(password)" },
            environment: environment)
        guard result.status == 0 else {
            throw ServerError(message: "\(kind.rawValue)-up.sh failed: \(result.output)")
        }
        let env = try String(contentsOfFile: dir + "/env", encoding: .utf8)
        var values: [String: String] = [:]
        for line in env.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { values[parts[0]] = parts[1] }
        }
        guard let portText = values["XMPP_PORT"], let port = Int(portText), let domain = values["XMPP_DOMAIN"],
            let ca = values["XMPP_CAFILE"]
        else { throw ServerError(message: "bad env file: \(env)") }
        return XMPPServerProcess(kind: kind, directory: dir, port: port, domain: domain, caFile: ca)
    }

    /// Starts a server (as ``start(_:users:port:directory:)``), runs `body` with it and stops it
    /// however `body` ends: also when a `#require` fails or anything in it throws.
    public static func with<T>(
        _ kind: Kind, users: [String], port: Int = 0, directory: String? = nil, _ body: (XMPPServerProcess) async throws -> T
    ) async throws -> T {
        let server = try await start(kind, users: users, port: port, directory: directory)
        defer { server.stop() }
        return try await body(server)
    }

    /// Stops the server (by the PID its script recorded); `purge` deletes its directory.
    public func stop(purge: Bool = true) {
        _ = try? XMPPServerProcess.run("\(kind.rawValue)-down.sh", purge ? [directory, "--purge"] : [directory])
    }

    /// Stops and starts the same server (same port, accounts and certificate).
    public func restart(users: [String]) async throws -> XMPPServerProcess {
        stop(purge: false)
        return try await XMPPServerProcess.start(kind, users: users, port: port, directory: directory)
    }

    /// The `vertebra` binary built with these tests (beside the test bundle), so the router under
    /// test is the current code, not an older release build.
    private static func builtVertebra() -> String? {
        guard let directory = Bundle.main.executableURL?.deletingLastPathComponent() else { return nil }
        for candidate in [directory, directory.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("vertebra").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    public struct ServerError: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }

        public init(message: String) {
            self.message = message
        }
    }

    /// ``run(_:_:environment:)`` on a thread of its own: a server takes seconds to start, and a
    /// test blocked that long on one of Swift's cooperative threads (two on a 2-core machine)
    /// starves every other test's timers.
    public static func runOffPool(_ script: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, output: String) {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try run(script, arguments, environment: environment) })
            }
        }
    }

    public static func run(_ script: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        let process = Process()
        // bash as PATH finds it, like every other tool the tests run.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["bash", scripts.appendingPathComponent(script).path] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
