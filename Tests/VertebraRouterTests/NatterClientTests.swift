import Foundation
import NIOConcurrencyHelpers
import Natter
import Testing
import VertebraRouter
import VertebraXML

/// Our Natter client against the router: what the interop tests do against Prosody.
@Suite("Natter client against the router")
struct NatterClientTests {
    static let job = "urn:vertebra:test:job"

    @Test func clientLogsInWithSTARTTLSAndSCRAMSHA256() async throws {
        try await TestRouter.with { router in
            let client = try await router.client("alice", resource: "agent")
            let info = try #require(await client.connection)
            #expect(info.encrypted)
            #expect(info.saslMechanism == "SCRAM-SHA-256")
            #expect(info.jid.description == "alice@localhost/agent")
            #expect(!info.streamManagement)
            await client.stop()
        }
    }

    @Test func serverChoosesAResourceWhenNoneIsAsked() async throws {
        try await TestRouter.with { router in
            let client = try await router.client("alice")
            let jid = try #require(await client.boundJID)
            #expect(jid.bare.description == "alice@localhost")
            #expect(jid.resource?.isEmpty == false)
            await client.stop()
        }
    }

    @Test func aReplacedSessionDoesNotReconnectAndTakeTheJIDBack() async throws {
        try await TestRouter.with { router in
            var configuration = try router.configuration("alice", resource: "same")
            configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(50), maximumDelay: .milliseconds(200))
            let first = XMPPClient(configuration: configuration, logger: TestRouter.clientLogger)
            try await first.start()
            let second = XMPPClient(configuration: configuration, logger: TestRouter.clientLogger)
            try await second.start()
            try await router.eventually("the first session is closed") { await !first.isConnected }
            try await Task.sleep(for: .seconds(1))
            #expect(await !first.isConnected)
            #expect(await second.isConnected)
            await second.stop()
            await first.stop()
        }
    }

    @Test func passwordWithColonAndSpaceLogsIn() async throws {
        try await TestRouter.with { router in
            var configuration = try router.configuration("carol", resource: "x", password: "c:olon pw")
            configuration.reconnect = ReconnectPolicy(enabled: false)
            let client = XMPPClient(configuration: configuration, logger: TestRouter.clientLogger)
            try await client.start()
            #expect(await client.isConnected)
            await client.stop()
        }
    }

    @Test func twoClientsExchangeIQsAndTheAnswerComesFromTheResponder() async throws {
        try await TestRouter.with { router in
            let worker = try await router.client("bob", resource: "worker")
            await worker.handleIQ(namespace: Self.job, name: "job") { request in
                XElement("done", namespace: Self.job, text: "from \(request.from?.description ?? "?")")
            }
            let coordinator = try await router.client("alice", resource: "coordinator")
            let answer = try await coordinator.sendAndWait(
                IQ(type: .set, id: "", to: JID("bob@localhost/worker"), payload: XElement("job", namespace: Self.job)))
            #expect(answer.type == .result)
            #expect(answer.from?.description == "bob@localhost/worker")
            #expect(answer.payload?.text == "from alice@localhost/coordinator")
            await coordinator.stop()
            await worker.stop()
        }
    }

    @Test func hundredConcurrentRequestsEachGetTheirOwnAnswer() async throws {
        try await TestRouter.with { router in
            let worker = try await router.client("bob", resource: "worker")
            await worker.handleIQ(namespace: Self.job, name: "job") { request in
                XElement("echo", namespace: Self.job, text: request.payload?.text ?? "")
            }
            let coordinator = try await router.client("alice", resource: "coordinator")
            let peer = try #require(JID("bob@localhost/worker"))
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<100 {
                    group.addTask {
                        let answer = try await coordinator.sendAndWait(
                            IQ(type: .set, id: "", to: peer, payload: XElement("job", namespace: Self.job, text: "n\(index)")))
                        return answer.payload?.text == "n\(index)"
                    }
                }
                var matched = 0
                for try await ok in group where ok { matched += 1 }
                #expect(matched == 100)
            }
            await coordinator.stop()
            await worker.stop()
        }
    }

    @Test func iqToAnOfflineFullJIDGetsServiceUnavailableFromThatJID() async throws {
        try await TestRouter.with { router in
            let client = try await router.client("alice", resource: "a")
            for target in ["bob@localhost/gone", "nobody@localhost", "bob@localhost"] {
                do {
                    _ = try await client.sendAndWait(
                        IQ(type: .get, id: "", to: JID(target), payload: XElement("job", namespace: Self.job)))
                    Issue.record("an IQ to \(target) was answered")
                } catch let error as NatterError {
                    #expect(error.code == .stanzaError)
                    #expect(error.stanzaError?.condition == .serviceUnavailable)
                    #expect(error.message.hasPrefix(target))
                }
            }
            await client.stop()
        }
    }

    @Test func serverAnswersPingAndDiscoInfo() async throws {
        try await TestRouter.with { router in
            let client = try await router.client("alice", resource: "a")
            let server = try #require(JID("localhost"))
            let pong = try await client.sendAndWait(IQ(type: .get, id: "", to: server, payload: XElement("ping", namespace: XMPPNamespace.ping)))
            #expect(pong.type == .result)
            let info = try await client.sendAndWait(IQ(type: .get, id: "", to: server, payload: XElement("query", namespace: XMPPNamespace.discoInfo)))
            let features = info.payload?.elements.filter { $0.name == "feature" }.compactMap { $0[attribute: "var"] } ?? []
            #expect(features.contains(XMPPNamespace.ping))
            #expect(info.payload?.firstElement(named: "identity")?[attribute: "category"] == "server")
            do {
                _ = try await client.sendAndWait(IQ(type: .get, id: "", to: server, payload: XElement("query", namespace: "jabber:iq:version")))
                Issue.record("an unknown server IQ was answered with a result")
            } catch let error as NatterError {
                #expect(error.stanzaError?.condition == .serviceUnavailable)
            }
            await client.stop()
        }
    }

    @Test func wrongPasswordFailsCleanlyAndLeavesNoConnectionOpen() async throws {
        try await TestRouter.with { router in
            let client = XMPPClient(configuration: try router.configuration("alice", resource: "a", password: "wrong"), logger: TestRouter.clientLogger)
            do {
                try await client.start()
                Issue.record("a wrong password logged in")
            } catch let error as NatterError {
                #expect(error.code == .authenticationFailed)
                #expect(error.message.contains("not-authorized"))
            }
            try await router.eventually("the failed connection to close") { router.router.connectionCount == 0 }
            try await router.stillServesNormalClients()
        }
    }

    @Test func spoofedFromIsReplacedByTheSendersJID() async throws {
        try await TestRouter.with { router in
            let bob = try await router.client("bob", resource: "b")
            let messages = await bob.exchange(.message)
            let alice = try await router.client("alice", resource: "a")
            try await alice.send(
                XElement(
                    "message", namespace: XMLNamespace.client,
                    attributes: ["to": "bob@localhost/b", "from": "carol@localhost/boss", "id": "m1"],
                    children: [.element(XElement("body", namespace: XMLNamespace.client, text: "hi"))]))
            var iterator = messages.makeAsyncIterator()
            let message = await iterator.next()
            #expect(message?[attribute: "from"] == "alice@localhost/a")
            #expect(message?.firstElement(named: "body")?.text == "hi")
            await alice.stop()
            await bob.stop()
        }
    }

    @Test func directedPresenceRecipientsGetUnavailableWhenTheSenderDisconnects() async throws {
        try await TestRouter.with { router in
            let coordinator = try await router.client("alice", resource: "coordinator")
            let presences = await coordinator.exchange(.presence)
            let worker = try await router.client("bob", resource: "worker")
            try await worker.sendPresence(to: JID("alice@localhost/coordinator"))
            var iterator = presences.makeAsyncIterator()
            let available = await iterator.next()
            #expect(available?[attribute: "from"] == "bob@localhost/worker")
            #expect(available?[attribute: "type"] == nil)
            await worker.stop()
            let unavailable = await iterator.next()
            #expect(unavailable?[attribute: "from"] == "bob@localhost/worker")
            #expect(unavailable?[attribute: "type"] == "unavailable")
            await coordinator.stop()
        }
    }

    @Test func aSessionReplacedByTheSameJIDDoesNotAnnounceUnavailable() async throws {
        try await TestRouter.with { router in
            let coordinator = try await router.client("alice", resource: "coordinator")
            let inbox = await coordinator.defaultExchange()
            var iterator = inbox.makeAsyncIterator()
            let old = try await router.client("bob", resource: "worker")
            try await old.sendPresence(to: JID("alice@localhost/coordinator"))
            #expect(await iterator.next()?.name == "presence")
            let new = try await router.client("bob", resource: "worker")
            try await router.eventually("the replaced session to close") { router.router.connectionCount == 2 }
            try await new.send(XElement("message", namespace: XMLNamespace.client, attributes: ["to": "alice@localhost/coordinator", "id": "after"]))
            let next = await iterator.next()
            #expect(next?.name == "message", "the coordinator got \(next.map { "\($0)" } ?? "nothing") before the new session's message")
            await old.stop()
            await new.stop()
            await coordinator.stop()
        }
    }

    @Test func newestSessionWinsAResourceConflictAndTheOldOneGetsConflict() async throws {
        try await TestRouter.with { router in
            let old = try await router.client("alice", resource: "same")
            let events = await old.connectionEvents()
            let new = try await router.client("alice", resource: "same")
            var reason: String?
            for await event in events {
                if case .disconnected(let why) = event {
                    reason = why
                    break
                }
            }
            #expect(reason?.contains("conflict") == true)
            #expect(await new.isConnected)
            let pong = try await new.sendAndWait(IQ(type: .get, id: "", to: JID("localhost"), payload: XElement("ping", namespace: XMPPNamespace.ping)))
            #expect(pong.type == .result)
            await old.stop()
            await new.stop()
        }
    }

    @Test func messageToABareJIDReachesEverySessionOfTheAccount() async throws {
        try await TestRouter.with { router in
            let first = try await router.client("bob", resource: "one")
            let second = try await router.client("bob", resource: "two")
            let firstMessages = await first.exchange(.message)
            let secondMessages = await second.exchange(.message)
            let alice = try await router.client("alice", resource: "a")
            try await alice.send(
                XElement(
                    "message", namespace: XMLNamespace.client, attributes: ["to": "bob@localhost", "id": "all"],
                    children: [.element(XElement("body", namespace: XMLNamespace.client, text: "to both"))]))
            var one = firstMessages.makeAsyncIterator()
            var two = secondMessages.makeAsyncIterator()
            #expect(await one.next()?.firstElement(named: "body")?.text == "to both")
            #expect(await two.next()?.firstElement(named: "body")?.text == "to both")
            await alice.stop()
            await first.stop()
            await second.stop()
        }
    }

    @Test func iqToAnotherDomainGetsRemoteServerNotFoundBecauseThereIsNoFederation() async throws {
        try await TestRouter.with { router in
            let client = try await router.client("alice", resource: "a")
            do {
                _ = try await client.sendAndWait(IQ(type: .get, id: "", to: JID("someone@example.org/x"), payload: XElement("job", namespace: Self.job)))
                Issue.record("an IQ to another domain was answered")
            } catch let error as NatterError {
                #expect(error.stanzaError?.condition == .remoteServerNotFound)
            }
            await client.stop()
        }
    }

    @Test func scramWorksWithoutTLSOnARouterWithoutCertificateOverLoopback() async throws {
        try await TestRouter.with(tls: false) { router in
            let client = try await router.client("alice", resource: "plain", tls: .disabled)
            let info = try #require(await client.connection)
            #expect(!info.encrypted)
            #expect(info.saslMechanism == "SCRAM-SHA-256")
            await client.stop()
        }
    }
}
