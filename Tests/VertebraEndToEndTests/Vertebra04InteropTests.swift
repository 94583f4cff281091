import Foundation
import Natter
import Testing
import Vertebra
import VertebraAgent
import VertebraJournal
import VertebraXML

/// Against an independent Vertebra 0.4 implementation (scripts/vertebra04/peer.py, Python +
/// slixmpp), both ways: it requests from our worker and coordinator, and performs for our
/// coordinator.
@Suite(.serialized, .timeLimit(.minutes(5))) struct Vertebra04InteropTests {
    static let peer = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/vertebra04/peer.py").path

    static func arguments(_ cluster: Cluster, jid: String) -> [String] {
        ["--port", String(cluster.server.port), "--jid", jid, "--cafile", cluster.server.caFile]
    }

    static func environment() -> [String: String] {
        ProcessInfo.processInfo.environment.merging(["PEER_PASSWORD": XMPPServerProcess.password]) { $1 }
    }

    /// Runs `peer.py request ...` and returns its exit status and JSON event lines.
    static func request(_ cluster: Cluster, to target: JID, op: String, _ values: [String]) throws -> (Int32, [[String: Any]]) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestPython.path)
        process.arguments = [peer, "request"] + arguments(cluster, jid: "alice@\(cluster.server.domain)/py")
            + ["--to", target.description, "--op", op, "--timeout", "30"] + values
        process.environment = environment()
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let events = String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
        return (process.terminationStatus, events)
    }

    @Test func pythonRequesterIsServedByOurWorkerAndByOurCoordinator() async throws {
        try await Cluster.with(.prosody, workers: 1, workerOptions: { _, options in
            options.authorizedRequesters = [JID("alice@localhost") ?? options.coordinator]
        }) { cluster in
            // Directly to the worker (alice is allowed there).
            let worker = Cluster.jid(cluster.server, "w1", "w1")
            let (status, events) = try Self.request(cluster, to: worker, op: "/vertebra/count", ["count=i4:3"])
            #expect(status == 0, "\(events)")
            let done = try #require(events.last)
            #expect(done["state"] as? String == "done")
            let data = (done["data"] as? [[String: Any]]) ?? []
            #expect(data.compactMap { $0["index"] as? Int } == [0, 1, 2])

            // Through the coordinator (alice is in the ACL): it journals and relays.
            let (relayed, relayEvents) = try Self.request(cluster, to: cluster.coordinatorJID, op: "/vertebra/echo", ["text=über 0.4"])
            #expect(relayed == 0, "\(relayEvents)")
            let relayDone = try #require(relayEvents.last)
            #expect(((relayDone["data"] as? [[String: Any]])?.first?["response"] as? String) == "über 0.4")
            let jobs = try await cluster.coordinatorJournal.jobs(matching: JobFilter(limit: 10))
            #expect(jobs.first?.state == .done)
            #expect(jobs.first?.submitter == "alice@\(cluster.server.domain)/py")

            // A payload that does not decode: the Python side sees bad-request.
            let (bad, badEvents) = try Self.request(cluster, to: worker, op: "/vertebra/sleep", ["milliseconds=soon"])
            #expect(bad == 2)
            #expect(badEvents.last?["condition"] as? String == "bad-request")
        }
    }

    @Test func pythonPerformerRunsOurCoordinatorsJobs() async throws {
        try await Cluster.with(.prosody, workers: 0) { cluster in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: TestPython.path)
            let performer = Cluster.jid(cluster.server, "w3", "py")
            process.arguments = [Self.peer, "perform"] + Self.arguments(cluster, jid: performer.description)
            process.environment = Self.environment()
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
            try process.run()
            // SIGKILL: the test process's blocked signal mask is inherited, so SIGTERM would wait forever.
            defer {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
            // Wait for its "ready" line.
            var buffer = Data()
            while !String(decoding: buffer, as: UTF8.self).contains("\"ready\"") {
                let chunk = pipe.fileHandleForReading.availableData
                guard !chunk.isEmpty else { break }
                buffer += chunk
            }
            let upcase = try await cluster.coordinator.submit(
                "/test/upcase", arguments: try TypedArguments.parse(["text=vertebra"]), scope: .direct, to: [performer])
            var values: [XElement] = []
            var failure: VertebraError?
            for await event in upcase.events {
                if case .data(_, let chunk) = event { values += chunk }
                if case .failed(let error) = event { failure = error }
            }
            #expect(failure == nil)
            #expect(values.first?.text == "VERTEBRA")

            let count = try await cluster.coordinator.submit(
                "/test/count", arguments: try TypedArguments.parse(["n=i4:4"]), scope: .direct, to: [performer])
            var indexes: [String] = []
            for await event in count.events { if case .data(_, let chunk) = event { indexes += chunk.map(\.text) } }
            #expect(indexes == ["0", "1", "2", "3"])

            let fail = try await cluster.coordinator.submit("/test/fail", arguments: [], scope: .direct, to: [performer])
            var failed: VertebraError?
            for await event in fail.events { if case .failed(let error) = event { failed = error } }
            #expect(failed?.message.contains("failed on purpose") == true)
            let stored = try await cluster.coordinatorJournal.job(fail.id)
            #expect(stored?.state == .failed)
        }
    }
}
