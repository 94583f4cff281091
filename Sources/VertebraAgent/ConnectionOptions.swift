import ArgumentParser
import Foundation
import Logging
import Natter
import Vertebra

/// How an agent reaches its XMPP server (DESIGN §8): flags, else environment variables.
/// Passwords come from a file (or an environment variable), never from the command line.
public struct ConnectionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("XMPP server as host[:port]. Default: $VERTEBRA_SERVER, else 127.0.0.1:5222.", valueName: "host:port"))
    public var server: String?

    @Option(help: ArgumentHelp("This agent's JID (bare, or full to choose the resource). Default: $VERTEBRA_JID.", valueName: "jid"))
    public var jid: String?

    @Option(help: ArgumentHelp("File whose first line is the password. Default: $VERTEBRA_PASSWORD_FILE.", valueName: "path"))
    public var passwordFile: String?

    @Option(help: ArgumentHelp("Name of an environment variable holding the password (instead of a file).", valueName: "name"))
    public var passwordEnv: String?

    @Option(help: ArgumentHelp("CA certificate (PEM) to verify the server with. Default: $VERTEBRA_CA_FILE, else the system's.", valueName: "path"))
    public var caFile: String?

    @Option(help: ArgumentHelp("TLS: required (default), optional, or disabled (loopback only).", valueName: "policy"))
    public var tls: String = "required"

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    public var logLevel: String = "info"

    public init() {}

    public func validate() throws {
        guard ClientConfiguration.TLSPolicy(rawValue: tls) != nil else {
            throw ValidationError("--tls must be required, optional or disabled")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be trace, debug, info, notice, warning, error or critical")
        }
        guard passwordFile == nil || passwordEnv == nil else {
            throw ValidationError("give the password with --password-file or --password-env, not both")
        }
    }

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// The agent's JID as given (flag, else $VERTEBRA_JID).
    public func agentJID() throws -> JID {
        guard let text = jid ?? environment["VERTEBRA_JID"], !text.isEmpty else {
            throw ValidationError("give the agent's JID with --jid or VERTEBRA_JID (e.g. worker1@localhost)")
        }
        guard let parsed = JID(text), parsed.local != nil else {
            throw ValidationError("'\(text)' is not a JID of an account (user@domain[/resource])")
        }
        return parsed
    }

    /// A client configuration; `resource` is used when the JID names none.
    public func clientConfiguration(defaultResource: String) throws -> ClientConfiguration {
        let jid = try agentJID()
        let (host, port) = try serverAddress()
        let password: ClientConfiguration.PasswordSource
        if let name = passwordEnv {
            password = .environment(name)
        } else if let file = passwordFile ?? environment["VERTEBRA_PASSWORD_FILE"], !file.isEmpty {
            password = .file(file)
        } else {
            throw ValidationError("give the password with --password-file, VERTEBRA_PASSWORD_FILE or --password-env (never on the command line)")
        }
        var configuration = ClientConfiguration(
            host: host, port: port, jid: jid.bare, password: password, resource: jid.resource ?? defaultResource,
            tls: ClientConfiguration.TLSPolicy(rawValue: tls) ?? .required,
            trustedCAFile: caFile ?? environment["VERTEBRA_CA_FILE"].flatMap { $0.isEmpty ? nil : $0 })
        configuration.requestTimeout = .seconds(15)
        // A password file others can read, a CA file that is not there: the command line's
        // mistakes, told as usage errors (exit 64).
        do { try configuration.validate() } catch { throw ValidationError((error as? NatterError)?.message ?? "\(error)") }
        return configuration
    }

    /// Sign-in for the web view's buttons: logs in to this server as the account and acts
    /// through `coordinator`.
    public func webActions(coordinator: JID) throws -> WebSignIn {
        let (host, port) = try serverAddress()
        return WebSignIn(
            host: host, port: port, tls: ClientConfiguration.TLSPolicy(rawValue: tls) ?? .required,
            caFile: caFile ?? environment["VERTEBRA_CA_FILE"].flatMap { $0.isEmpty ? nil : $0 }, coordinator: coordinator)
    }

    /// `host[:port]` from the flag or $VERTEBRA_SERVER.
    public func serverAddress() throws -> (String, Int) {
        let text = server ?? environment["VERTEBRA_SERVER"].flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1:5222"
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, let host = parts.first, !host.isEmpty else {
            throw ValidationError("server '\(text)' is not host[:port]")
        }
        guard parts.count == 2 else { return (String(host), 5222) }
        guard let port = Int(parts[1]), (1...65535).contains(port) else {
            throw ValidationError("server '\(text)': the port must be 1-65535")
        }
        return (String(host), port)
    }

    /// Sets up logging to stderr at the chosen level.
    public func bootstrapLogging() {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

/// The state directory: $XDG_STATE_HOME/vertebra, else ~/.local/state/vertebra.
public func vertebraStateDirectory() -> String {
    let environment = ProcessInfo.processInfo.environment
    if let state = environment["XDG_STATE_HOME"], !state.isEmpty { return state + "/vertebra" }
    let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
    return home + "/.local/state/vertebra"
}

/// How the web view signs a user in: a login to the XMPP server as that account, whose
/// submitter then asks the coordinator to cancel or retry (its ACL decides).
public struct WebSignIn: Sendable {
    let host: String
    let port: Int
    let tls: ClientConfiguration.TLSPolicy
    let caFile: String?
    public let coordinator: JID

    /// A configuration for the account (the password stays in memory).
    func configuration(account: JID, password: String, resource: String) throws -> ClientConfiguration {
        var configuration = ClientConfiguration(
            host: host, port: port, jid: account.bare, password: .value(password), resource: resource, tls: tls, trustedCAFile: caFile)
        configuration.requestTimeout = .seconds(15)
        configuration.reconnect.enabled = false
        try configuration.validate()
        return configuration
    }

    public func signIn(account: String, password: String) async throws -> Submitter {
        guard let jid = JID(account), jid.local != nil else {
            throw ValidationError("'\(account)' is not an account (user@domain)")
        }
        let resource = "web-\(SecureRandom.hex(bytes: 4) ?? "0")"
        let submitter = Submitter(
            client: XMPPClient(configuration: try configuration(account: jid, password: password, resource: resource)),
            coordinator: coordinator, answerTimeout: .seconds(10))
        do {
            try await submitter.start()
        } catch {
            await submitter.stop()
            throw error
        }
        return submitter
    }
}
