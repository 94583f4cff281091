import Foundation
import Natter
import Testing
import Vertebra
import VertebraAgent
import VertebraJournal
import VertebraXML

/// Only accounts the coordinator's ACL lets serve an operation become its workers.
@Suite(.serialized, .timeLimit(.minutes(3))) struct ServeAuthorizationTests {
    @Test func anAccountWithoutAServeRuleCannotBecomeAWorker() async throws {
        try await Cluster.with(.router, workers: 0, coordinatorOptions: { $0.workerWait = .seconds(2) }) { cluster in
            // mallory runs a perfectly good worker for /vertebra/echo, but no rule lets it serve.
            let journal = try ExchangeJournal(path: cluster.directory + "/mallory.sqlite")
            let mallory = Worker(
                client: XMPPClient(configuration: Cluster.configuration(cluster.server, user: "mallory", resource: "m")),
                journal: journal, options: Worker.Options(coordinator: cluster.coordinatorJID, advertiseTTL: .seconds(10)))
            try await mallory.register(Diagnostics.Echo.self) { operation, _ in "forged: \(operation.text)" }
            try await mallory.start()
            defer { Task { await mallory.stop() } }
            try await Task.sleep(for: .seconds(2))
            let registered = await cluster.coordinator.workers.map(\.jid)
            #expect(registered.isEmpty, "registered: \(registered)")
            // No job reaches it: not picked, and not even when named.
            await #expect {
                _ = try await cluster.coordinator.dispatch(Diagnostics.Echo(text: "x"))
            } throws: { ($0 as? VertebraError)?.code == .noWorker }
            let named = Cluster.jid(cluster.server, "mallory", "m")
            await #expect {
                _ = try await cluster.coordinator.dispatch(Diagnostics.Echo(text: "x"), scope: .direct, to: [named])
            } throws: { ($0 as? VertebraError)?.code == .notAuthorized }
            #expect(try await journal.jobs(matching: JobFilter(limit: 10)).isEmpty, "an op reached the rogue worker")
        }
    }

    @Test func aServeRuleLimitsAWorkerToItsOperations() async throws {
        let acl = "alice@* /vertebra\nserve w1@* /vertebra/echo"
        try await Cluster.with(.router, workers: 1, acl: acl) { cluster in
            try await cluster.coordinator.waitForWorkers(1, offering: Diagnostics.Echo.path, timeout: .seconds(20))
            #expect(try await cluster.coordinator.dispatch(Diagnostics.Echo(text: "ok")) == "ok")
            let offered = await cluster.coordinator.workers.first?.operations ?? []
            #expect(offered == [Diagnostics.Echo.path], "w1 may serve only /vertebra/echo, the registry has \(offered)")
        }
    }

    @Test func onlyAccountsTheACLNamesMayDiscoverWorkers() async throws {
        try await Cluster.with(.router, workers: 1) { cluster in
            try await cluster.coordinator.waitForWorkers(1, offering: Diagnostics.Echo.path, timeout: .seconds(20))
            let alice = try await cluster.submitter("alice")
            let found = try await alice.discover(Diagnostics.Echo.path)
            #expect(found == [Cluster.jid(cluster.server, "w1", "w1")])
            let mallory = try await cluster.submitter("mallory")
            await #expect {
                _ = try await mallory.discover(Diagnostics.Echo.path)
            } throws: { ($0 as? VertebraError)?.code == .notAuthorized }
            await alice.stop()
            await mallory.stop()
        }
    }
}
