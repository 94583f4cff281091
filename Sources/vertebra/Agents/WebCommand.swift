import ArgumentParser
import Foundation
import NIOCore
import Logging
import Natter
import Vertebra
import VertebraAgent
import VertebraWeb

/// `vertebra web`: the live web view of a journal (and of a coordinator's workers).
struct WebCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "web",
        abstract: "Serve a live web view of the jobs in a journal (and the coordinator's workers).",
        discussion: """
            Opens the journal read-only (--journal PATH, else as `vertebra jobs` finds it), so it \
            works beside a running coordinator or on a journal file alone for a post-mortem. \
            Pages: /jobs (filters, paging, live updates), /jobs/ID, /workers, /charts, and \
            /api/jobs (JSON). Listens on 127.0.0.1:8080 unless told otherwise. Reading needs no \
            sign-in (--sign-in or --jid adds one, for the cancel and retry buttons) and it speaks \
            plain HTTP, so keep it on loopback and reach it through an SSH tunnel (ssh -L \
            8080:127.0.0.1:8080 HOST). With --jid (and a password), it also asks the coordinator for its live workers \
            (the ACL must cover /security/workers for that account). `vertebra coordinator --web \
            ADDRESS` serves the same view from the coordinator itself.
            """)

    @OptionGroup var location: JournalLocation
    @Option(help: ArgumentHelp("Address to listen on.", valueName: "host:port")) var listen = "127.0.0.1:8080"
    @Option(help: ArgumentHelp("With --jid: the coordinator's full JID. Default: $VERTEBRA_COORDINATOR, else coordinator@DOMAIN/coordinator.", valueName: "jid"))
    var coordinator: String?
    @OptionGroup var connection: ConnectionOptions
    @Flag(help: "Offer sign-in (with an account of the XMPP server) for the cancel and retry buttons; implied by --jid.")
    var signIn = false

    func validate() throws {
        _ = try WebAddress.parse(listen)
    }

    func run() async throws {
        var level = connection
        if level.logLevel == "info" { level.logLevel = "warning" }
        level.bootstrapLogging()
        let (host, port) = try WebAddress.parse(listen)
        var roster: (@Sendable () async throws -> [WorkerStatus])?
        var actions: WebActions?
        let hasAccount = connection.jid != nil || ProcessInfo.processInfo.environment["VERTEBRA_JID"].map({ !$0.isEmpty }) == true
        if signIn || hasAccount {
            let text = coordinator ?? ProcessInfo.processInfo.environment["VERTEBRA_COORDINATOR"].flatMap { $0.isEmpty ? nil : $0 }
                ?? "coordinator@localhost/coordinator"
            guard let coordinatorJID = JID(text), coordinatorJID.isFull else { throw ValidationError("coordinator '\(text)' is not a full JID") }
            let signIn = try connection.webActions(coordinator: coordinatorJID)
            actions = WebActions(domain: coordinatorJID.domain) { account, password in try await signIn.signIn(account: account, password: password) }
        }
        if hasAccount {
            var configuration = try connection.clientConfiguration(defaultResource: "web-\(SecureRandom.hex(bytes: 4) ?? "0")")
            configuration.reconnect.enabled = true
            let text = coordinator ?? ProcessInfo.processInfo.environment["VERTEBRA_COORDINATOR"].flatMap { $0.isEmpty ? nil : $0 }
                ?? "coordinator@\(configuration.jid.domain)/coordinator"
            guard let coordinatorJID = JID(text), coordinatorJID.isFull else { throw ValidationError("coordinator '\(text)' is not a full JID") }
            let submitter = Submitter(client: XMPPClient(configuration: configuration), coordinator: coordinatorJID, answerTimeout: .seconds(5))
            try await submitter.start()
            roster = { try await submitter.workers() }
        }
        let view: WebView
        do {
            var options = WebView.Options(host: host, port: port, journalPath: location.path, roster: roster)
            options.actions = actions
            view = try WebView(options: options)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        do {
            try await view.run { port in WebAddress.announce(host: host, port: port) }
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            printError("error: the web view cannot serve on \(listen): the address is in use (another process listens there; pick another --listen)")
            throw ExitCode(1)
        }
    }
}

/// `HOST:PORT` of the web view, and what it prints once it listens.
enum WebAddress {
    static func parse(_ text: String) throws -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port) else {
            throw ValidationError("the web address must be HOST:PORT with a port from 0 to 65535, not '\(text)'")
        }
        let host = String(text[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        guard !host.isEmpty else { throw ValidationError("the web address needs a host, e.g. 127.0.0.1:8080") }
        return (host, port)
    }

    static func announce(host: String, port: Int) {
        let shown = host.contains(":") ? "[\(host)]" : host
        printError("web view: http://\(shown):\(port)/jobs")
        if !["127.0.0.1", "::1", "localhost"].contains(host) {
            printError("warning: the web view listens on \(host), beyond this machine; reading needs no sign-in: anyone who reaches it reads every job's arguments")
        } else {
            printError("(loopback only; from another machine use an SSH tunnel: ssh -L \(port):127.0.0.1:\(port) THIS-HOST)")
        }
    }
}
