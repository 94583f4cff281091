import ExecAgentOperations
import FilesAgentOperations
import Foundation
import Natter
import Vertebra
import VertebraAgent
import VertebraXML

/// One run of the demo: start everything, dispatch the batch, report.
struct DemoRun {
    let stage: DemoStage
    let processes: DemoProcesses
    let sets: Int
    let live: Bool
    /// Keep everything (and the web view) up after the batch, until Ctrl-C.
    var stay = false

    /// A job of the batch and the state it should end in.
    struct Planned: Sendable {
        let label: String
        let path: Resource
        let arguments: [XElement]
        let expected: String
        var cancelAfter: Duration?
    }

    struct Finished: Sendable {
        let planned: Planned
        let id: String
        let state: String
        let chunks: [[XElement]]
        let error: VertebraError?
    }

    func run() async throws -> Bool {
        print("Vertebra demo: router + coordinator + 2 agents on 127.0.0.1")
        print("state folder: \(stage.directory)")
        try stage.prepare(sets: sets)
        let port = try startServices()
        let submitter = try await connect(port: port)
        defer { Task { await submitter.stop() } }
        defer {
            if stay {
                print("\neverything stays up (--stay): the web view keeps showing the jobs; Ctrl-C stops the demo")
            }
        }
        do {
            try await submitter.waitForWorkers(offering: [FileChecksum.path, CommandRun.path], timeout: .seconds(60))
        } catch {
            throw DemoError("\(error)\n" + processes.exited().joined(separator: "\n"))
        }
        print("  both agents registered with the coordinator")
        let plan = try batch()
        print("\ndispatching \(plan.count) jobs (\(sets) streaming checksums, a summary, commands, one failing on purpose, one cancelled)")
        let results = await dispatch(plan, with: submitter)
        return report(results)
    }

    // MARK: - Starting

    private func startServices() throws -> Int {
        let vertebra = stage.vertebra
        // A state folder used before (--state-dir) has the accounts: their passwords are set again.
        let existing = stage.existingAccounts()
        for user in ["coordinator", "files", "exec"] {
            let verb = existing.contains(user) ? "passwd" : "adduser"
            _ = try DemoProcesses.run(vertebra, ["router", verb, "--state-dir", stage.routerState, "--password-file", stage.passwordFile, user])
        }
        let port = try DemoProcesses.freePort()
        _ = try processes.start(vertebra, ["router", "--state-dir", stage.routerState, "--port", String(port), "--log-level", "notice"], log: stage.directory + "/router.log")
        try DemoProcesses.waitForPort(port)
        print("  router       127.0.0.1:\(port) (STARTTLS, self-signed certificate \(stage.certificate))")
        let common = ["--server", "127.0.0.1:\(port)", "--password-file", stage.passwordFile, "--ca-file", stage.certificate]
        // Who may serve what: each agent its own operations, nobody else.
        let acl = stage.directory + "/acl.txt"
        try "serve files@localhost /files\nserve exec@localhost /exec\n".write(toFile: acl, atomically: true, encoding: .utf8)
        let webPort = try DemoProcesses.freePort()
        _ = try processes.start(
            vertebra, ["coordinator", "--jid", "coordinator@localhost/coordinator", "--journal", stage.journal, "--acl", acl,
                       "--web", "127.0.0.1:\(webPort)"] + common,
            log: stage.directory + "/coordinator.log")
        print("  coordinator  coordinator@localhost/coordinator, journal \(stage.journal), ACL \(acl)")
        print("  web view     http://127.0.0.1:\(webPort)/jobs  (open it to watch the jobs finish live; --stay keeps it up after the batch)")
        _ = try processes.start(
            stage.binaries + "/files-agent",
            ["--jid", "files@localhost/files", "--root", stage.data, "--journal", stage.directory + "/files-agent.sqlite"] + common,
            log: stage.directory + "/files-agent.log")
        print("  files-agent  files@localhost/files, root \(stage.data)")
        let allowed = ["uname", "date", "df", "ls", "sleep"].compactMap { name in
            ["/usr/bin/\(name)", "/bin/\(name)"].first(where: FileManager.default.isExecutableFile(atPath:)).map { "\(name)=\($0)" }
        }
        _ = try processes.start(
            stage.binaries + "/exec-agent",
            ["--jid", "exec@localhost/exec", "--journal", stage.directory + "/exec-agent.sqlite"] + allowed.flatMap { ["--allow-command", $0] } + common,
            log: stage.directory + "/exec-agent.log")
        print("  exec-agent   exec@localhost/exec, allow-list \(allowed.map { $0.split(separator: "=")[0] }.joined(separator: ", "))")
        return port
    }

    private func connect(port: Int) async throws -> Submitter {
        guard let jid = JID("coordinator@localhost/demo"), let coordinator = JID("coordinator@localhost/coordinator") else {
            throw DemoError("bad demo JIDs")
        }
        var configuration = ClientConfiguration(
            host: "127.0.0.1", port: port, jid: jid, password: .file(stage.passwordFile), tls: .required, trustedCAFile: stage.certificate)
        configuration.requestTimeout = .seconds(15)
        let submitter = Submitter(client: XMPPClient(configuration: configuration), coordinator: coordinator)
        try await submitter.start()
        return submitter
    }

    // MARK: - The batch

    private func batch() throws -> [Planned] {
        let encoder = TypedValueEncoder()
        var plan: [Planned] = []
        for set in 1...sets {
            let path = String(format: "set-%02d", set)
            plan.append(Planned(label: "checksum \(path)", path: FileChecksum.path, arguments: try encoder.encodeFields(FileChecksum(path: path)), expected: "done"))
        }
        plan.append(Planned(label: "summary of the data folder", path: FileSummary.path, arguments: try encoder.encodeFields(FileSummary(path: ".")), expected: "done"))
        for (label, command, arguments) in [("uname -a", "uname", ["-a"]), ("date -u", "date", ["-u"]), ("df -h /", "df", ["-h", "/"]), ("ls data", "ls", ["-l", stage.data])] {
            plan.append(Planned(label: label, path: CommandRun.path, arguments: try encoder.encodeFields(CommandRun(command: command, arguments: arguments)), expected: "done"))
        }
        plan.append(Planned(
            label: "checksum /etc (outside the root: fails on purpose)", path: FileChecksum.path,
            arguments: try encoder.encodeFields(FileChecksum(path: "/etc")), expected: "failed"))
        plan.append(Planned(
            label: "sleep 60 (cancelled after 1 s)", path: CommandRun.path,
            arguments: try encoder.encodeFields(CommandRun(command: "sleep", arguments: ["60"])), expected: "cancelled",
            cancelAfter: .seconds(1)))
        return plan
    }

    private func dispatch(_ plan: [Planned], with submitter: Submitter) async -> [Finished] {
        let total = plan.count
        let counter = DemoCounter()
        let live = self.live
        return await withTaskGroup(of: Finished.self) { group in
            for planned in plan {
                group.addTask {
                    let finished = await Self.runOne(planned, with: submitter)
                    let done = counter.next()
                    if live {
                        let mark = finished.state == planned.expected ? "ok " : "!! "
                        print(String(format: "  [%2d/%2d] %@%-9@ %@", done, total, mark, finished.state, planned.label))
                    }
                    return finished
                }
            }
            var results: [Finished] = []
            for await result in group { results.append(result) }
            return plan.compactMap { planned in results.first { $0.planned.label == planned.label } }
        }
    }

    private static func runOne(_ planned: Planned, with submitter: Submitter) async -> Finished {
        let job: Submitter.Job
        do {
            job = try await submitter.submit(planned.path, arguments: planned.arguments)
        } catch {
            return Finished(planned: planned, id: "-", state: "failed", chunks: [], error: error as? VertebraError ?? VertebraError(.unreachable, "\(error)"))
        }
        let canceller = planned.cancelAfter.map { delay in
            Task {
                try await Task.sleep(for: delay)
                try await submitter.cancel(job)
            }
        }
        defer { canceller?.cancel() }
        var chunks: [[XElement]] = []
        for await event in job.events {
            switch event {
            case .data(let values): chunks.append(values)
            case .done: return Finished(planned: planned, id: job.id, state: "done", chunks: chunks, error: nil)
            case .failed(let error):
                return Finished(planned: planned, id: job.id, state: error.code == .cancelled ? "cancelled" : "failed", chunks: chunks, error: error)
            case .accepted, .progress: continue
            }
        }
        return Finished(planned: planned, id: job.id, state: "unknown", chunks: chunks, error: VertebraError(.shutDown, "no end heard"))
    }

    // MARK: - Report

    private func report(_ results: [Finished]) -> Bool {
        print("\nresults")
        for result in results {
            let id = String(result.id.prefix(12))
            print("  \(id.padding(toLength: 12, withPad: " ", startingAt: 0))  \(result.state.padding(toLength: 9, withPad: " ", startingAt: 0))  \(result.planned.label): \(summary(result))")
        }
        print("\nvertebra jobs --journal \(stage.journal)")
        if let table = try? DemoProcesses.run(stage.vertebra, ["jobs", "--journal", stage.journal, "--limit", "100"]) {
            print(table, terminator: "")
        }
        let wrong = results.filter { $0.state != $0.planned.expected }
        print("""

            Inspect it further (the folder is kept; delete it when done):
              \(stage.vertebra) jobs --journal \(stage.journal)
              \(stage.vertebra) jobs show \(results.first?.id.prefix(12) ?? "ID") --journal \(stage.journal)
              \(stage.vertebra) jobs stats --journal \(stage.journal)
              \(stage.vertebra) jobs --journal \(stage.directory)/files-agent.sqlite     (the files agent's own journal)
            Logs: \(stage.directory)/*.log
            """)
        if wrong.isEmpty {
            print("\nall \(results.count) jobs ended as expected")
        } else {
            printError("\n\(wrong.count) jobs did not end as expected: " + wrong.map { "\($0.planned.label) (\($0.state))" }.joined(separator: ", "))
        }
        return wrong.isEmpty
    }

    private func summary(_ result: Finished) -> String {
        if let error = result.error { return error.message }
        switch result.planned.path {
        case FileChecksum.path:
            let bytes = result.chunks.compactMap { chunk in chunk.first { $0[attribute: "name"] == "bytes" }.flatMap { Int($0.text) } }.reduce(0, +)
            let first = result.chunks.first?.first { $0[attribute: "name"] == "sha256" }?.text.prefix(16) ?? ""
            return "\(result.chunks.count) files, \(bytes / 1024) KiB, first sha256 \(first)…"
        case FileSummary.path:
            return result.chunks.first.map(TypedValueJSON.line) ?? "-"
        default:
            let lines = result.chunks.compactMap { chunk in chunk.first { $0[attribute: "name"] == "line" }?.text }
            return lines.first.map { "\($0)" + (lines.count > 1 ? " (+\(lines.count - 1) lines)" : "") } ?? "(no output)"
        }
    }
}

/// Counts finished jobs for the progress lines.
final class DemoCounter: Sendable {
    private let value = Mutex(0)
    func next() -> Int { value.withLock { $0 += 1; return $0 } }
}

import Synchronization
