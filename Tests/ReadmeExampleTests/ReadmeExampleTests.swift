import Foundation
import Logging
import Natter
import Testing
import Vertebra
import VertebraJournal

/// The README's Swift example is this target's WordCountExample.swift, verbatim: it compiles
/// here, runs end to end through the embedded router, and the README may not drift from it.
@Suite(.serialized, .timeLimit(.minutes(3))) struct ReadmeExampleTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func theReadmeShowsTheExampleVerbatim() throws {
        let readme = try String(contentsOf: Self.root.appendingPathComponent("README.md"), encoding: .utf8)
        let example = try String(
            contentsOf: Self.root.appendingPathComponent("Tests/ReadmeExampleTests/WordCountExample.swift"), encoding: .utf8)
        #expect(readme.contains(example), "README.md must contain Tests/ReadmeExampleTests/WordCountExample.swift verbatim")
    }

    @Test func theExampleRunsEndToEnd() async throws {
        let server = try await XMPPServerProcess.start(.router, users: ["coordinator", "counter"])
        defer { server.stop() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("readme-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func configuration(_ user: String) throws -> ClientConfiguration {
            let jid = try #require(JID("\(user)@\(server.domain)/\(user)"))
            return ClientConfiguration(
                host: "127.0.0.1", port: server.port, jid: jid, password: .value(XMPPServerProcess.password), tls: .required,
                trustedCAFile: server.caFile)
        }
        let journal = try ExchangeJournal(path: directory + "/coordinator.sqlite")
        // The coordinator's ACL names who may serve what.
        let acl = try AccessList(parsing: "serve counter@\(server.domain) /text")
        let coordinator = Coordinator(
            client: XMPPClient(configuration: try configuration("coordinator")), journal: journal, options: .init(accessList: acl))
        try await coordinator.start()
        let coordinatorJID = coordinator.client.jid
        let worker = try await startWordCountWorker(try configuration("counter"), coordinator: coordinatorJID, journalPath: directory + "/worker.sqlite")
        try await coordinator.waitForWorkers(1, offering: WordCount.path)
        let result = try await countWords("one two\nthree four five", with: coordinator)
        #expect(result == WordCount.Result(words: 5, lines: 2))
        await worker.stop()
        await coordinator.stop()
    }
}
