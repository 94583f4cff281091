import Foundation
import Natter
import Testing
import Vertebra
import VertebraAgent
import VertebraJournal
import VertebraXML

/// More than one XMPP server: a two-node ejabberd cluster on loopback
/// (scripts/xmpp/ejabberd-cluster-up.sh), the coordinator and w1 on node 1, w2 on node 2. Jobs of
/// every scope cross the cluster; node 2 crashes (SIGKILL) under running jobs and w2's retryable
/// jobs finish on w1; node 2 comes back with the same directory and port, rejoins, and w2
/// reconnects and serves again. ~30 s on a 2-core box, ~10 s of which the cluster's start.
@Suite(.serialized, .timeLimit(.minutes(3))) struct ClusterTests {
    static let users = ["coordinator", "w1", "w2"]

    @Test func jobsCrossTheClusterAndSurviveANodeCrash() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vertebra-cluster-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cluster = try await EjabberdCluster.start(directory: directory + "/ejabberd", users: Self.users)
        defer { cluster.stop() }
        // Agents: stopped before the cluster (defers run last-first), also when one fails to start.
        var agents: [AgentProcess] = []
        defer { for agent in agents { agent.stop() } }
        agents.append(try ClusterAgent.coordinator(cluster, node: 1, directory: directory, lease: 2))
        agents.append(try ClusterAgent.worker(1, cluster, node: 1, directory: directory, ttl: 5))
        let w2 = try ClusterAgent.worker(2, cluster, node: 2, directory: directory, ttl: 5)
        agents.append(w2)
        let w1JID = "w1@\(cluster.domain)/w1"
        let w2JID = "w2@\(cluster.domain)/w2"
        let diagnostics = { "\n--- coordinator:\n\(agents[0].logText.suffix(3000))\n--- w1:\n\(agents[1].logText.suffix(1500))\n--- w2:\n\(w2.logText.suffix(2000))" }

        let submitter = try await cluster.submitter()
        defer { Task { await submitter.stop() } }

        // 1. Both workers registered with the coordinator, across the cluster.
        var seen: Set<String> = []
        let both = try await eventually(timeout: .seconds(40)) {
            seen = try await answering(submitter)
            return seen == [w1JID, w2JID]
        }
        try #require(both, "the workers did not both register: \(seen)\(diagnostics())")

        // 2. Every scope. single: one worker answers.
        let single = try await submitter.submit(Diagnostics.Echo.path, arguments: try TypedArguments.parse(["text=one"]))
        let singleOutcome = try #require(await Self.ended(single, within: .seconds(30)), "single: no end\(diagnostics())")
        #expect(singleOutcome.error == nil, "single: \(String(describing: singleOutcome.error))")
        #expect(singleOutcome.chunks.joined().contains { $0.text == "one" }, "single: \(singleOutcome.chunks)")
        // all: a result from each worker, one per node.
        let all = try await submitter.submit(Diagnostics.Echo.path, arguments: try TypedArguments.parse(["text=everyone"]), scope: .all)
        let allOutcome = try #require(await Self.ended(all, within: .seconds(30)), "all: no end\(diagnostics())")
        #expect(allOutcome.error == nil, "all: \(String(describing: allOutcome.error))")
        #expect(Set(allOutcome.chunks.compactMap(Self.worker(of:))) == [w1JID, w2JID], "all: \(allOutcome.chunks)")
        #expect(allOutcome.chunks.allSatisfy { chunk in chunk.contains { $0.text == "everyone" } }, "all: \(allOutcome.chunks)")
        // direct: to w2, on the other node than the coordinator.
        let direct = try await submitter.submit(
            Diagnostics.Echo.path, arguments: try TypedArguments.parse(["text=to-w2"]), scope: .direct, to: [try #require(JID(w2JID))])
        let directOutcome = try #require(await Self.ended(direct, within: .seconds(30)), "direct: no end\(diagnostics())")
        #expect(directOutcome.error == nil, "direct: \(String(describing: directOutcome.error))")
        #expect(directOutcome.chunks.compactMap(Self.worker(of:)) == [w2JID], "direct: \(directOutcome.chunks)")

        // 3. Node 2 crashes while retryable jobs run on both workers (least loaded first: they
        //    alternate between w1 and w2).
        var jobs: [Submitter.Job] = []
        for _ in 0..<4 {
            jobs.append(try await submitter.submit(Diagnostics.IdempotentSleep.path, arguments: try TypedArguments.parse(["milliseconds=i4:4000"])))
        }
        let tokens = jobs.map(\.id)
        let journal = directory + "/coordinator.sqlite"
        // Every job placed (running, or done already on a very slow machine), some running on w2.
        var before: [Job?] = []
        let placed = try await eventually(timeout: .seconds(20)) {
            before = try await Self.stored(journal, tokens)
            return before.allSatisfy { $0?.worker != nil && ($0?.state == .running || $0?.state == .done) }
                && before.contains { $0?.state == .running && $0?.worker == w2JID }
        }
        try #require(placed, "not placed, or nothing running on w2: \(before.map { "\(String(describing: $0?.state)) on \($0?.worker ?? "-")" })\(diagnostics())")
        let onW2 = Set(before.compactMap { $0 }.filter { $0.state == .running && $0.worker == w2JID }.map(\.token))
        let placedOn = Dictionary(uniqueKeysWithValues: before.compactMap { $0 }.map { ($0.token, $0.worker) })
        try await cluster.kill(node: 2)

        let finished = try await eventually(timeout: .seconds(60)) {
            try await Self.stored(journal, tokens).allSatisfy { $0?.state.isTerminal == true }
        }
        let after = try await Self.stored(journal, tokens)
        let summary = after.map { "\($0?.token ?? "?"): \(String(describing: $0?.state)) on \($0?.worker ?? "-") attempts \($0?.attempts ?? 0) \($0?.error ?? "")" }
        #expect(finished, "jobs did not end after node 2's crash: \(summary)\(diagnostics())")
        #expect(after.count == 4 && after.allSatisfy { $0 != nil })
        for case let job? in after {
            #expect(job.state == .done, "\(summary)")
            if onW2.contains(job.token) {
                // Lost with node 2 (w2 kept running, cut off), retried on the worker still reachable.
                #expect(job.worker == w1JID && job.attempts == 2, "\(summary)")
            } else {
                #expect(job.worker == placedOn[job.token] && job.attempts == 1, "\(summary)")
            }
        }
        for job in jobs {
            let result = await Self.ended(job, within: .seconds(10))
            #expect(result != nil && result?.error == nil, "the submitter heard \(String(describing: result?.error)) for \(job.id)")
        }

        // 4. Node 2 comes back (same directory and port): it rejoins the cluster, w2 reconnects
        //    and serves again.
        try await cluster.start(node: 2)
        let back = try await eventually(timeout: .seconds(60)) {
            seen = try await answering(submitter)
            return seen == [w1JID, w2JID]
        }
        #expect(back, "w2 did not come back: \(seen)\(diagnostics())")
        #expect(w2.logText.contains("reconnecting"), "w2 never lost its server?\(diagnostics())")
        let again = try await submitter.submit(
            Diagnostics.Echo.path, arguments: try TypedArguments.parse(["text=again"]), scope: .direct, to: [try #require(JID(w2JID))])
        let againOutcome = try #require(await Self.ended(again, within: .seconds(30)), "direct after the restart: no end\(diagnostics())")
        #expect(againOutcome.error == nil, "direct after the restart: \(String(describing: againOutcome.error))")
        #expect(againOutcome.chunks.compactMap(Self.worker(of:)) == [w2JID])
    }

    /// The workers that answer an echo of scope all (empty when the job fails or takes > 15 s).
    func answering(_ submitter: Submitter) async throws -> Set<String> {
        guard let job = try? await submitter.submit(Diagnostics.Echo.path, arguments: try TypedArguments.parse(["text=ping"]), scope: .all),
            let result = await Self.ended(job, within: .seconds(15)), result.error == nil
        else { return [] }
        return Set(result.chunks.compactMap(Self.worker(of:)))
    }

    /// The worker a result chunk of scope all or direct names (`<string name='worker'>`).
    static func worker(of chunk: [XElement]) -> String? {
        chunk.first { $0.name == "string" && $0[attribute: "name"] == "worker" }?.text
    }

    /// ``outcome(of:)`` bounded in time: nil when the job has not ended within `timeout`.
    static func ended(
        _ job: Submitter.Job, within timeout: Duration
    ) async -> (chunks: [[XElement]], error: VertebraError?, progress: [JobProgress])? {
        await withTaskGroup(of: (chunks: [[XElement]], error: VertebraError?, progress: [JobProgress])?.self) { group in
            group.addTask { await outcome(of: job) }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// The coordinator's journal entries of `tokens`, in their order (nil: not journalled yet).
    static func stored(_ journal: String, _ tokens: [String]) async throws -> [Job?] {
        let all = try await readJournal(journal).jobs(matching: JobFilter(limit: 100_000))
        return tokens.map { token in all.first { $0.token == token } }
    }
}

/// A two-node ejabberd cluster on 127.0.0.1 (scripts/xmpp/ejabberd-cluster-up.sh): one certificate,
/// one cookie, a private epmd; stopped by PID (ejabberd-cluster-down.sh).
final class EjabberdCluster: Sendable {
    let directory: String
    /// c2s ports of node 1 and node 2.
    let ports: [Int]
    let domain: String
    let caFile: String

    private init(directory: String, ports: [Int], domain: String, caFile: String) {
        self.directory = directory
        self.ports = ports
        self.domain = domain
        self.caFile = caFile
    }

    /// Starts both nodes (node 2 joins node 1) with `users` (password ``XMPPServerProcess/password``).
    static func start(directory: String, users: [String]) async throws -> EjabberdCluster {
        let result = try await XMPPServerProcess.runOffPool(
            "ejabberd-cluster-up.sh", [directory] + users.map { "\($0):\(XMPPServerProcess.password)" }, environment: environment)
        guard result.status == 0 else {
            _ = try? run("ejabberd-cluster-down.sh", [directory, "--purge"])
            throw XMPPServerProcess.ServerError(message: "ejabberd-cluster-up.sh failed: \(result.output)")
        }
        let env = try String(contentsOfFile: directory + "/env", encoding: .utf8)
        var values: [String: String] = [:]
        for line in env.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { values[parts[0]] = parts[1] }
        }
        guard let port1 = values["XMPP_PORT1"].flatMap(Int.init), let port2 = values["XMPP_PORT2"].flatMap(Int.init),
            let domain = values["XMPP_DOMAIN"], let ca = values["XMPP_CAFILE"], !ca.isEmpty
        else {
            _ = try? run("ejabberd-cluster-down.sh", [directory, "--purge"])
            throw XMPPServerProcess.ServerError(message: "bad env file: \(env)")
        }
        return EjabberdCluster(directory: directory, ports: [port1, port2], domain: domain, caFile: ca)
    }

    /// SIGKILL to node `node`'s beam.smp: a crash.
    func kill(node: Int) async throws {
        let result = try await XMPPServerProcess.runOffPool("ejabberd-cluster-node.sh", [directory, String(node), "kill"], environment: Self.environment)
        guard result.status == 0 else { throw XMPPServerProcess.ServerError(message: "kill node \(node): \(result.output)") }
    }

    /// Starts node `node` again (same directory and port); returns once it is back in the cluster.
    func start(node: Int) async throws {
        let result = try await XMPPServerProcess.runOffPool("ejabberd-cluster-node.sh", [directory, String(node), "start"], environment: Self.environment)
        guard result.status == 0 else { throw XMPPServerProcess.ServerError(message: "start node \(node): \(result.output)") }
    }

    /// Stops both nodes and the epmd, and deletes the directory.
    func stop() {
        _ = try? Self.run("ejabberd-cluster-down.sh", [directory, "--purge"])
    }

    func port(node: Int) -> Int { ports[node - 1] }

    /// A submitter logged in on node 1 as the coordinator's account (another resource).
    func submitter() async throws -> Submitter {
        guard let jid = JID(local: "coordinator", domain: domain, resource: "submit-\(UUID().uuidString.prefix(6))"),
            let coordinator = JID(local: "coordinator", domain: domain, resource: "coordinator")
        else { preconditionFailure("test JID") }
        var configuration = ClientConfiguration(
            host: "127.0.0.1", port: port(node: 1), jid: jid, password: .value(XMPPServerProcess.password), tls: .required,
            trustedCAFile: caFile)
        configuration.reconnect = ReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .seconds(1))
        configuration.requestTimeout = .seconds(10)
        let submitter = Submitter(client: XMPPClient(configuration: configuration), coordinator: coordinator)
        try await submitter.start()
        return submitter
    }

    private static let environment = ["XMPP_TLS": "optional", "XMPP_SM_RESUME_TIMEOUT": "5", "XMPP_LOG_LEVEL": "warning"]

    private static func run(_ script: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        try XMPPServerProcess.run(script, arguments, environment: environment)
    }
}

/// The agents of the cluster test: `vertebra coordinator` and `vertebra worker` processes
/// logged in on one node each.
enum ClusterAgent {
    static func endpoint(_ cluster: EjabberdCluster, node: Int) -> AgentProcess.Endpoint {
        AgentProcess.Endpoint(port: cluster.port(node: node), domain: cluster.domain, caFile: cluster.caFile)
    }

    static func coordinator(_ cluster: EjabberdCluster, node: Int, directory: String, lease: Int = 2, workerWait: Int = 20) throws -> AgentProcess {
        let acl = "\(directory)/acl.txt"
        try "serve w1@\(cluster.domain) /\nserve w2@\(cluster.domain) /\n".write(toFile: acl, atomically: true, encoding: .utf8)
        return try AgentProcess(
            ["coordinator", "--journal", "\(directory)/coordinator.sqlite", "--lease", String(lease), "--worker-wait", String(workerWait),
             "--acl", acl],
            user: "coordinator", resource: "coordinator", endpoint: endpoint(cluster, node: node), directory: directory)
    }

    static func worker(_ index: Int, _ cluster: EjabberdCluster, node: Int, directory: String, ttl: Int = 10) throws -> AgentProcess {
        try AgentProcess(
            ["worker", "--journal", "\(directory)/w\(index).sqlite", "--ttl", String(ttl)],
            user: "w\(index)", resource: "w\(index)", endpoint: endpoint(cluster, node: node), directory: directory)
    }
}
