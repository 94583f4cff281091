import ArgumentParser
import Foundation
import Natter
import VertebraAgent
import Logging
import ServiceLifecycle
import VertebraRouter

/// `vertebra router`: the embedded XMPP server for one-machine setups.
struct RouterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "router",
        abstract: "Run the embedded XMPP server, or manage its accounts.",
        discussion: """
            With no options, `vertebra router` serves domain localhost on 127.0.0.1:5222 with a \
            self-signed certificate made on first run, and accounts from the state directory \
            ($XDG_STATE_HOME/vertebra/router, else ~/.local/state/vertebra/router). Add accounts with \
            `vertebra router adduser NAME`. Stop it with SIGTERM or Ctrl-C: every stream is closed \
            with a system-shutdown stream error.
            """,
        subcommands: [RouterServe.self, RouterAddUser.self, RouterDelUser.self, RouterPasswd.self, RouterUsers.self],
        defaultSubcommand: RouterServe.self)
}

/// Where the router keeps its state.
struct RouterState: ParsableArguments {
    @Option(help: ArgumentHelp("State directory.", discussion: "Default: $XDG_STATE_HOME/vertebra/router, else ~/.local/state/vertebra/router.", valueName: "dir"))
    var stateDir: String?

    @Option(help: ArgumentHelp("Accounts file (salted SCRAM credentials, mode 0600). Default: STATE/accounts.json.", valueName: "path"))
    var accounts: String?

    var directory: String {
        if let stateDir { return stateDir }
        let environment = ProcessInfo.processInfo.environment
        if let state = environment["XDG_STATE_HOME"], !state.isEmpty { return state + "/vertebra/router" }
        return NSHomeDirectory() + "/.local/state/vertebra/router"
    }

    var accountsPath: String { accounts ?? directory + "/accounts.json" }
}

/// `vertebra router serve` (the default): listen and route.
struct RouterServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Listen for XMPP clients and route their stanzas (the default).")

    @OptionGroup var state: RouterState
    @OptionGroup var metrics: MetricsOptions
    @Option(help: "Address to listen on.") var address = "127.0.0.1"
    @Option(parsing: .unconditional, help: "Port to listen on.") var port = 5222
    @Option(help: "XMPP domain served (the part after @ in JIDs).") var domain = "localhost"
    @Option(help: ArgumentHelp("TLS certificate chain (PEM). Default: STATE/DOMAIN.crt, made self-signed if missing.", valueName: "path"))
    var cert: String?
    @Option(help: ArgumentHelp("TLS private key (PEM). Default: STATE/DOMAIN.key.", valueName: "path")) var key: String?
    @Flag(help: "Offer no TLS (loopback clients only; for tests).") var noTLS = false
    @Flag(help: "Let clients authenticate without STARTTLS (SCRAM, or PLAIN on loopback).") var allowPlaintext = false
    @Option(parsing: .unconditional, help: "Largest stanza in bytes (policy-violation beyond).") var maxStanzaBytes = 1 << 20
    @Option(parsing: .unconditional, help: "Most simultaneous connections.") var maxConnections = 10_000
    @Option(parsing: .unconditional, help: "Most simultaneous connections from one IP address (loopback included).") var maxConnectionsPerAddress = 512
    @Option(parsing: .unconditional, help: "Failed logins one IP address may make per minute, across its connections; then its logins are refused until the minute ends (0: no limit).")
    var maxFailedLoginsPerAddress = 20
    @Option(parsing: .unconditional, help: "Failed logins one account may suffer per minute, from any address; then logins to it are refused until the minute ends (0: no limit).")
    var maxFailedLoginsPerAccount = 50
    @Option(parsing: .unconditional, help: "Bytes held for a connection that does not read what it is sent; past it the connection is closed.")
    var maxOutputBufferBytes = 16 << 20
    @Option(parsing: .unconditional, help: "Stanzas per second per connection on average (0: unlimited).") var stanzaRate = 10_000
    @Option(parsing: .unconditional, help: "Stanza burst per connection above the average rate.") var stanzaBurst = 20_000
    @Option(parsing: .unconditional, help: "Seconds a connection has to authenticate.") var authTimeout = 30
    @Option(help: "Log level: trace (stanzas), debug, info (connection events), notice, warning, error, critical.") var logLevel = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level must be trace, debug, info, notice, warning, error or critical") }
        guard authTimeout > 0 else { throw ValidationError("--auth-timeout must be positive") }
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be from 0 to 65535 (0 picks a free one), not \(port)") }
        guard maxConnections > 0 else { throw ValidationError("--max-connections must be positive") }
        guard maxStanzaBytes >= 4096 else { throw ValidationError("--max-stanza-bytes must be at least 4096") }
        guard stanzaRate >= 0, stanzaBurst >= 0 else { throw ValidationError("--stanza-rate and --stanza-burst must be 0 or more") }
        guard JID("user@\(domain)") != nil, !domain.contains("/") else {
            throw ValidationError("--domain '\(domain)' is not a domain (e.g. localhost or xmpp.example.org)")
        }
        guard maxConnectionsPerAddress > 0 else { throw ValidationError("--max-connections-per-address must be positive") }
        guard maxFailedLoginsPerAddress >= 0 else { throw ValidationError("--max-failed-logins-per-address must be 0 or more") }
        guard maxFailedLoginsPerAccount >= 0 else { throw ValidationError("--max-failed-logins-per-account must be 0 or more") }
        guard maxOutputBufferBytes >= 64 << 10 else { throw ValidationError("--max-output-buffer-bytes must be at least 65536") }
        guard (cert == nil) == (key == nil) else { throw ValidationError("give both --cert and --key, or neither") }
        if noTLS && !Self.isLoopback(address) {
            throw ValidationError("--no-tls serves loopback clients only; listen on 127.0.0.1 or ::1, not \(address) (or drop --no-tls)")
        }
    }

    static func isLoopback(_ address: String) -> Bool {
        address.hasPrefix("127.") || address == "::1" || address == "localhost"
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "vertebra.router")
        let directory = state.directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var tls: RouterConfiguration.TLSFiles?
        if !noTLS {
            let files = RouterConfiguration.TLSFiles(
                certificatePath: cert ?? "\(directory)/\(domain).crt", privateKeyPath: key ?? "\(directory)/\(domain).key")
            if cert == nil, try RouterTLS.ensureSelfSigned(files, domain: domain) {
                say("made a self-signed certificate for \(domain)")
            }
            tls = files
        }
        let accounts = try AccountStore(path: state.accountsPath)
        let endpoint = try await metrics.start()
        var configuration = RouterConfiguration(
            host: address, port: port, domain: domain, tls: tls, requireTLS: !allowPlaintext,
            limits: RouterLimits(
                maxStanzaBytes: maxStanzaBytes, maxConnections: maxConnections, stanzasPerSecond: stanzaRate,
                stanzaBurst: stanzaBurst, authTimeout: .seconds(authTimeout), maxConnectionsPerAddress: maxConnectionsPerAddress))
        configuration.domain = domain.lowercased()
        configuration.maxFailedLoginsPerAddress = maxFailedLoginsPerAddress
        configuration.maxFailedLoginsPerAccount = maxFailedLoginsPerAccount
        configuration.limits.maxOutputBufferBytes = maxOutputBufferBytes
        let router = try XMPPRouter(configuration: configuration, accounts: accounts, logger: logger) { [address, domain] bound in
            say("serving \(domain) on \(address):\(bound.port ?? 0); stop with Ctrl-C or SIGTERM")
        }
        say("accounts:    \(state.accountsPath) (\(accounts.usernames.count) accounts)")
        if let tls {
            say("certificate: \(tls.certificatePath)")
            say("key:         \(tls.privateKeyPath)")
        } else {
            say("TLS:         off (--no-tls)")
        }
        if accounts.usernames.isEmpty {
            say("no accounts yet: add one with `vertebra router adduser NAME` (it takes effect without a restart)")
        }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [router], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        await endpoint?.stop()
    }
}

/// Reads a password from a file, an environment variable, or a prompt without echo.
struct PasswordInput: ParsableArguments {
    @Option(help: ArgumentHelp("Read the password from the first line of this file.", valueName: "path")) var passwordFile: String?
    @Option(help: ArgumentHelp("Read the password from this environment variable.", valueName: "name")) var passwordEnv: String?

    func validate() throws {
        guard passwordFile == nil || passwordEnv == nil else {
            throw ValidationError("give the password with --password-file or --password-env, not both")
        }
    }

    func read(for user: String) throws -> String {
        if let passwordFile {
            do { try SecretFile.checkPrivate(passwordFile, what: "password file") } catch { throw ValidationError(error.message) }
            guard let data = FileManager.default.contents(atPath: passwordFile) else {
                throw ValidationError("password file \(passwordFile) does not exist or is not readable")
            }
            let line = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
            guard !line.isEmpty else { throw ValidationError("password file \(passwordFile) is empty") }
            return line
        }
        if let passwordEnv {
            guard let value = ProcessInfo.processInfo.environment[passwordEnv], !value.isEmpty else {
                throw ValidationError("environment variable \(passwordEnv) is not set or empty")
            }
            return value
        }
        guard isatty(STDIN_FILENO) == 1 else {
            guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                throw ValidationError("no password: use --password-file, --password-env, or a terminal")
            }
            return line
        }
        let first = try prompt("Password for \(user): ")
        let second = try prompt("Again: ")
        guard first == second else { throw ValidationError("the passwords differ") }
        guard !first.isEmpty else { throw ValidationError("the password is empty") }
        return first
    }

    /// Reads a line from the terminal with echo off.
    private func prompt(_ text: String) throws -> String {
        FileHandle.standardError.write(Data(text.utf8))
        var saved = termios()
        guard tcgetattr(STDIN_FILENO, &saved) == 0 else { throw ValidationError("cannot read the terminal settings") }
        var silent = saved
        silent.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &silent)
        defer {
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
            FileHandle.standardError.write(Data("\n".utf8))
        }
        return readLine(strippingNewline: true) ?? ""
    }
}

/// A user name no JID can have is a usage error (exit 64), found before any password prompt.
private func validateUserName(_ name: String) throws {
    do {
        _ = try Account.normalized(name)
    } catch {
        throw ValidationError(error.message)
    }
}

/// `vertebra router adduser NAME`.
struct RouterAddUser: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "adduser", abstract: "Add an account (salted SCRAM credentials, never the password).")
    @OptionGroup var state: RouterState
    @OptionGroup var password: PasswordInput
    @Argument(help: "User name (the local part of the JID).") var name: String

    func validate() throws { try validateUserName(name) }

    func run() async throws {
        let store = try AccountStore(path: state.accountsPath)
        guard store.account(name) == nil else { throw ValidationError("\(name) exists; use `vertebra router passwd \(name)`") }
        try store.put(try Account(username: name, password: try password.read(for: name)))
        say("added \(name.lowercased()) to \(state.accountsPath)")
    }
}

/// `vertebra router passwd NAME`.
struct RouterPasswd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "passwd", abstract: "Change an account's password.")
    @OptionGroup var state: RouterState
    @OptionGroup var password: PasswordInput
    @Argument(help: "User name.") var name: String

    func validate() throws { try validateUserName(name) }

    func run() async throws {
        let store = try AccountStore(path: state.accountsPath)
        guard store.account(name) != nil else { throw ValidationError("no account \(name) in \(state.accountsPath)") }
        try store.put(try Account(username: name, password: try password.read(for: name)))
        say("changed the password of \(name.lowercased())")
    }
}

/// `vertebra router deluser NAME`.
struct RouterDelUser: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "deluser", abstract: "Remove an account.")
    @OptionGroup var state: RouterState
    @Argument(help: "User name.") var name: String

    func validate() throws { try validateUserName(name) }

    func run() async throws {
        let store = try AccountStore(path: state.accountsPath)
        guard try store.remove(name) else { throw ValidationError("no account \(name) in \(state.accountsPath)") }
        say("removed \(name.lowercased())")
    }
}

/// `vertebra router users`.
struct RouterUsers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "users", abstract: "List the accounts.")
    @OptionGroup var state: RouterState

    func run() async throws {
        let names = try AccountStore(path: state.accountsPath).usernames
        for name in names { say(name) }
        if names.isEmpty {
            let missing = FileManager.default.fileExists(atPath: state.accountsPath) ? "" : "; the file does not exist"
            printError("no accounts in \(state.accountsPath)\(missing) (add one with `vertebra router adduser NAME`)")
        }
    }
}

/// Writes a line to standard output at once (not buffered until exit), so that a supervisor or
/// test reading the output sees it while the router runs.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
