import Foundation
import NIOCore
import NIOPosix
import Natter
import Testing
import VertebraXML

/// `vertebra router` as a user runs it: accounts from the command line, a first run with no
/// configuration, and SIGTERM.
@Suite("vertebra router command")
struct RouterCommandTests {
    static func binary() throws -> String {
        var candidates: [String] = []
        if let executable = Bundle.main.executableURL {
            candidates.append(executable.deletingLastPathComponent().appendingPathComponent("vertebra").path)
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/debug/vertebra").path)
        guard let found = candidates.first(where: FileManager.default.isExecutableFile) else {
            throw RouterTestError("vertebra binary not found in \(candidates)")
        }
        return found
    }

    /// Runs the binary; returns the process (running) and the paths of its stdout and stderr.
    static func launch(_ arguments: [String], environment: [String: String] = [:], in directory: String) throws -> (Process, String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try binary())
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = directory + "/stdout-\(UUID().uuidString)"
        let err = directory + "/stderr-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return (process, out, err)
    }

    static func exitStatus(_ process: Process, timeout: Duration = .seconds(15)) async throws -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else { return nil }
            try await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }

    static func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        return port
    }

    @Test func firstRunWithNoConfigurationServesAndStopsCleanlyOnSIGTERM() async throws {
        let directory = NSTemporaryDirectory() + "router-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let state = directory + "/state"
        let environment = ["XDG_STATE_HOME": state, "ALICE_PW": "alice-pw"]

        let (add, addOut, addErr) = try Self.launch(["router", "adduser", "alice", "--password-env", "ALICE_PW"], environment: environment, in: directory)
        #expect(try await Self.exitStatus(add) == 0, "adduser: \(Self.read(addErr))")
        #expect(Self.read(addOut).contains("added alice"))
        let accounts = state + "/vertebra/router/accounts.json"
        #expect((try FileManager.default.attributesOfItem(atPath: accounts)[.posixPermissions] as? Int) == 0o600)
        #expect(!Self.read(accounts).contains("alice-pw"))

        let port = try await Self.freePort()
        let (router, out, err) = try Self.launch(["router", "--port", "\(port)"], environment: environment, in: directory)
        defer { if router.isRunning { router.terminate() } }
        let deadline = ContinuousClock.now + .seconds(15)
        while !Self.read(err).contains("router listening"), ContinuousClock.now < deadline, router.isRunning {
            try await Task.sleep(for: .milliseconds(20))
        }
        let printed = Self.read(out)
        #expect(printed.contains("accounts:    \(accounts)"), "stdout: \(printed)")
        let certificate = state + "/vertebra/router/localhost.crt"
        #expect(printed.contains("certificate: \(certificate)"))
        #expect((try FileManager.default.attributesOfItem(atPath: state + "/vertebra/router/localhost.key")[.posixPermissions] as? Int) == 0o600)

        var configuration = ClientConfiguration(
            host: "127.0.0.1", port: port, jid: try #require(JID("alice@localhost/cli")), password: .value("alice-pw"),
            trustedCAFile: certificate)
        configuration.reconnect = ReconnectPolicy(enabled: false)
        configuration.pingInterval = nil
        let client = XMPPClient(configuration: configuration, logger: TestRouter.clientLogger)
        try await client.start()
        let events = await client.connectionEvents()
        router.terminate()
        var reason: String?
        for await event in events {
            if case .disconnected(let why) = event {
                reason = why
                break
            }
        }
        #expect(reason?.contains("system-shutdown") == true)
        #expect(try await Self.exitStatus(router) == 0, "stderr: \(Self.read(err))")
        #expect(Self.read(err).contains("connection opened"))
        await client.stop()
    }

    /// The metrics endpoint closes a connection that sent bad HTTP (after its 400): such
    /// connections used to stay open, and nothing bounded how many.
    @Test func theMetricsEndpointClosesTheConnectionOfABadRequest() async throws {
        let directory = NSTemporaryDirectory() + "router-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (port, metricsPort) = (try await Self.freePort(), try await Self.freePort())
        let (router, _, err) = try Self.launch(
            ["router", "--port", "\(port)", "--metrics-address", "127.0.0.1:\(metricsPort)", "--state-dir", directory + "/state"], in: directory)
        defer { if router.isRunning { router.terminate() } }
        let started = ContinuousClock.now + .seconds(15)
        while !Self.read(err).contains("router listening"), ContinuousClock.now < started, router.isRunning {
            try await Task.sleep(for: .milliseconds(20))
        }
        let connection = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: metricsPort).get()
        try await connection.writeAndFlush(ByteBuffer(string: "GARBAGE\r\n\r\n"))
        let deadline = ContinuousClock.now + .seconds(10)
        while connection.isActive, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!connection.isActive, "the connection of a bad request is still open")
        try? await connection.close()
    }

    /// `--port 0` prints the port it chose; a port in use is an error, with no "serving" line.
    @Test func theServingLineNamesTheBoundPortAndComesOnlyOnceListening() async throws {
        let directory = NSTemporaryDirectory() + "router-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let environment = ["XDG_STATE_HOME": directory + "/state"]
        let (router, out, err) = try Self.launch(["router", "--port", "0", "--log-level", "warning"], environment: environment, in: directory)
        defer { if router.isRunning { router.terminate() } }
        let deadline = ContinuousClock.now + .seconds(15)
        while !Self.read(out).contains("serving"), ContinuousClock.now < deadline, router.isRunning {
            try await Task.sleep(for: .milliseconds(20))
        }
        let line = Self.read(out).split(separator: "\n").first { $0.hasPrefix("serving localhost on 127.0.0.1:") }
        let port = line.flatMap { $0.dropFirst("serving localhost on 127.0.0.1:".count).split(separator: ";").first }.flatMap { Int($0) }
        #expect((port ?? 0) > 0, "stdout: \(Self.read(out)) stderr: \(Self.read(err))")
        // The port is taken now: a second router on it fails without claiming to serve.
        let (second, secondOut, secondErr) = try Self.launch(["router", "--port", "\(port ?? 0)"], environment: environment, in: directory)
        #expect(try await Self.exitStatus(second) != 0)
        #expect(!Self.read(secondOut).contains("serving"), "stdout: \(Self.read(secondOut))")
        #expect(Self.read(secondErr).contains("cannot listen on 127.0.0.1:\(port ?? 0)"), "stderr: \(Self.read(secondErr))")
        router.terminate()
        #expect(try await Self.exitStatus(router) == 0)
    }

    @Test func passwordsAreNeverTakenFromTheCommandLine() async throws {
        let directory = NSTemporaryDirectory() + "router-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (add, _, err) = try Self.launch(["router", "adduser", "bob", "--password", "x", "--state-dir", directory], in: directory)
        #expect(try await Self.exitStatus(add) != 0)
        #expect(Self.read(err).contains("--password"))
        let (del, _, delErr) = try Self.launch(["router", "deluser", "nobody", "--state-dir", directory], in: directory)
        #expect(try await Self.exitStatus(del) != 0)
        #expect(Self.read(delErr).contains("no account nobody"))
    }

    /// Every mistake in an account command is a usage error (64), found before any prompt.
    @Test(arguments: [
        (["adduser", "bad name"], "'bad name' is not a valid user name"),
        (["passwd", "a@b"], "'a@b' is not a valid user name"),
        (["deluser", "x/y"], "'x/y' is not a valid user name"),
        (["adduser", "e\u{1B}[2Jz"], "'e\\u{1B}[2Jz' is not a valid user name"),
        (["adduser", "tab\tuser"], "'tab\\u{9}user' is not a valid user name"),
        (["adduser", "zero\u{200B}width"], "'zero\\u{200B}width' is not a valid user name"),
        (["deluser", "nobody"], "no account nobody"),
        (["passwd", "nobody"], "no account nobody"),
    ])
    func badAccountCommandsAreUsageErrors(arguments: [String], message: String) async throws {
        let directory = NSTemporaryDirectory() + "router-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (process, _, err) = try Self.launch(["router"] + arguments + ["--state-dir", directory], in: directory)
        #expect(try await Self.exitStatus(process) == 64, "stderr: \(Self.read(err))")
        #expect(Self.read(err).contains(message), "stderr: \(Self.read(err))")
    }

    @Test func aPasswordFileOthersCanReadIsRefusedAndAPrivateOneIsTaken() async throws {
        let directory = NSTemporaryDirectory() + "router-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/carol.pw"
        try "carol-secret\n".write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o644)
        let (open, _, openErr) = try Self.launch(["router", "adduser", "carol", "--password-file", file, "--state-dir", directory], in: directory)
        #expect(try await Self.exitStatus(open) != 0)
        #expect(Self.read(openErr).contains("chmod 600 \(file)"))
        let (negative, _, negativeErr) = try Self.launch(
            ["router", "--max-failed-logins-per-address=-1", "--state-dir", directory], in: directory)
        #expect(try await Self.exitStatus(negative) != 0)
        #expect(Self.read(negativeErr).contains("--max-failed-logins-per-address must be 0 or more"))
        chmod(file, 0o600)
        let (closed, _, closedErr) = try Self.launch(["router", "adduser", "carol", "--password-file", file, "--state-dir", directory], in: directory)
        #expect(try await Self.exitStatus(closed) == 0, "\(Self.read(closedErr))")
    }

    @Test(arguments: [
        ("--max-failed-logins-per-account=-1", "--max-failed-logins-per-account must be 0 or more"),
        ("--max-output-buffer-bytes=1000", "--max-output-buffer-bytes must be at least 65536"),
        ("--port=70000", "--port must be from 0 to 65535"),
        ("--max-connections=0", "--max-connections must be positive"),
        ("--domain=bad..domain", "--domain 'bad..domain' is not a domain"),
    ])
    func badLimitsAreRefusedNamingTheFlag(flag: String, message: String) async throws {
        let directory = NSTemporaryDirectory() + "router-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (process, _, err) = try Self.launch(["router", flag, "--state-dir", directory + "/state"], in: directory)
        #expect(try await Self.exitStatus(process) == 64)
        #expect(Self.read(err).contains(message), "got: \(Self.read(err))")
        #expect(!FileManager.default.fileExists(atPath: directory + "/state"), "files were written before the usage error")
    }

    @Test func noTLSIsRefusedOnANonLoopbackAddress() async throws {
        let directory = NSTemporaryDirectory() + "router-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (router, _, err) = try Self.launch(["router", "--no-tls", "--address", "0.0.0.0", "--state-dir", directory], in: directory)
        #expect(try await Self.exitStatus(router) == 64)
        #expect(Self.read(err).contains("--no-tls serves loopback clients only"))
    }

    @Test func aDomainThatIsNoDomainIsRefusedBeforeAnyFileIsWritten() async throws {
        let directory = NSTemporaryDirectory() + "router-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (router, _, err) = try Self.launch(["router", "--domain", "bad domain", "--state-dir", directory + "/state"], in: directory)
        #expect(try await Self.exitStatus(router) == 64)
        #expect(Self.read(err).contains("--domain 'bad domain' is not a domain"), "\(Self.read(err))")
        #expect(!FileManager.default.fileExists(atPath: directory + "/state/bad domain.crt"))
    }
}
