import ArgumentParser
import Foundation
import Natter
import Vertebra
import VertebraXML

/// The server and accounts the end-to-end benchmarks use (coordinator, w1, w2, one password):
/// client configurations, worker processes, and an ACL that lets the workers serve.
struct BenchAccounts: ParsableArguments {
    @Option(help: "XMPP server as host:port.") var server: String
    @Option(help: "XMPP domain of the accounts.") var domain = "localhost"
    @Option(help: "File whose first line is the password of coordinator, w1 and w2.") var passwordFile: String
    @Option(help: "CA file to verify the server (STARTTLS); without it TLS is off (loopback).") var caFile: String?

    func validate() throws {
        let parts = server.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]), (1...65_535).contains(port) else {
            throw ValidationError("--server must be host:port with a port from 1 to 65535, not '\(server)'")
        }
        guard JID(local: "coordinator", domain: domain) != nil else { throw ValidationError("--domain '\(domain)' is not a domain") }
        guard FileManager.default.isReadableFile(atPath: passwordFile) else {
            throw ValidationError("password file \(passwordFile) does not exist or is not readable")
        }
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            throw ValidationError("CA file \(caFile) does not exist or is not readable")
        }
    }

    /// Workers w1, w2... may serve every operation.
    var workersServeEverything: AccessList { AccessList(serveRules: [.init(submitter: "*@\(domain)", operations: ["/"])]) }

    /// The full JID of `user` at `resource`.
    func jid(_ user: String, resource: String) throws -> JID {
        guard let jid = JID(local: user, domain: domain, resource: resource) else {
            throw ValidationError("'\(user)@\(domain)/\(resource)' is not a valid JID")
        }
        return jid
    }

    func configuration(_ user: String, resource: String) throws -> ClientConfiguration {
        let parts = server.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]), let jid = JID(local: user, domain: domain, resource: resource) else {
            throw ValidationError("--server must be host:port")
        }
        var configuration = ClientConfiguration(
            host: String(parts[0]), port: port, jid: jid, password: .file(passwordFile), tls: caFile == nil ? .disabled : .required,
            trustedCAFile: caFile)
        configuration.requestTimeout = .seconds(30)
        configuration.streamManagement = false
        return configuration
    }

    /// Starts `vertebra worker` as `w<index>` with its journal at `journal` and `extra` options.
    func spawnWorker(_ index: Int, journal: String, extra: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        if !FileManager.default.isExecutableFile(atPath: process.executableURL?.path ?? "") {
            process.executableURL = Bundle.main.executableURL
        }
        var arguments = [
            "worker", "--server", server, "--jid", "w\(index)@\(domain)/w\(index)", "--password-file", passwordFile,
            "--journal", journal, "--log-level", "error",
        ] + extra
        if let caFile { arguments += ["--ca-file", caFile] } else { arguments += ["--tls", "disabled"] }
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        BenchCleanup.shared.adopt(process)
        return process
    }
}
