import ArgumentParser
import Foundation
import InMemoryTracing
import Logging
import Metrics
import Natter
import Prometheus
import Tracing
import Vertebra
import VertebraAgent
import VertebraJournal

/// `vertebra bench jobs`: end-to-end no-op jobs through an XMPP server, journal on.
struct BenchJobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "End-to-end no-op jobs: jobs/s and latency through an XMPP server, journal on.",
        discussion: """
            Starts two `vertebra worker` processes (accounts w1, w2) and a coordinator in this \
            process (account coordinator), all with journals in a temporary directory, and runs \
            /vertebra/echo jobs at each in-flight level and durability. Prints one JSON line per \
            measurement (and, with --memory-jobs, the resident memory of the workers and of this \
            process after that many more jobs). scripts/bench-jobs.sh runs it against the embedded \
            router and Prosody in one go and prints them side by side.
            """)

    @OptionGroup var accounts: BenchAccounts
    @Option(help: "Label for the JSON 'server' field.") var label = "xmpp"
    @Option(name: .short, parsing: .unconditional, help: "Jobs per level (the 1-in-flight level runs at most 2,000).") var n = 5000
    @Option(help: "Jobs in flight per level, comma separated.") var inFlight = "1,256"
    @Option(help: "Durabilities to run, comma separated.") var durability = "normal,full"
    @Option(parsing: .unconditional, help: "After the normal run, this many more jobs at the highest level, then memory.") var memoryJobs = 0
    @Option(parsing: .unconditional, help: "The workers' --fast-path-budget in ms (0: the classic 8-stanza conversation).") var fastPathBudget = 50
    @Flag(help: "Turn metrics on (Prometheus backend) in this process and the workers, to measure their cost.") var metrics = false
    @Flag(help: "Record the coordinator's spans (an in-memory tracer in this process), to measure the cost of tracing.") var tracing = false

    private var levels: [Int] { inFlight.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 } }
    private var durabilities: [Durability] { durability.split(separator: ",").compactMap { Durability(rawValue: String($0)) } }

    func validate() throws {
        guard !levels.isEmpty else { throw ValidationError("--in-flight must list positive numbers") }
        guard !durabilities.isEmpty else { throw ValidationError("--durability must list normal and/or full") }
        guard n > 0, memoryJobs >= 0 else { throw ValidationError("-n must be positive") }
    }

    func run() async throws {
        #if DEBUG
            printError("warning: debug build; use swift build -c release")
        #endif
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .error
            return handler
        }
        if metrics { MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: PrometheusCollectorRegistry())) }
        if tracing { InstrumentationSystem.bootstrap(InMemoryTracer()) }
        let directory = try BenchCleanup.shared.scratchDirectory("vertebra-bench-jobs")
        defer { BenchCleanup.shared.remove(directory) }
        for durability in durabilities {
            try await runDurability(durability, directory: directory)
        }
    }

    private func runDurability(_ durability: Durability, directory: String) async throws {
        let workers = try (1...2).map { try accounts.spawnWorker(
            $0, journal: "\(directory)/w\($0)-\(durability).sqlite", extra: ["--durability", durability.rawValue, "--max-jobs", "256", "--fast-path-budget", "\(fastPathBudget)"]
                + (metrics ? ["--metrics-address", "127.0.0.1:0"] : [])) }
        defer { for worker in workers { worker.terminate(); worker.waitUntilExit() } }
        let journal = try ExchangeJournal(path: "\(directory)/coordinator-\(durability).sqlite", options: .init(durability: durability))
        let coordinator = Coordinator(
            client: XMPPClient(configuration: try accounts.configuration("coordinator", resource: "coordinator")), journal: journal,
            options: Coordinator.Options(
                accessList: accounts.workersServeEverything, workerWait: .seconds(60)))
        try await coordinator.start()
        try await coordinator.waitForWorkers(2, offering: Diagnostics.Echo.path, timeout: .seconds(30))
        _ = try await run(coordinator, jobs: 300, inFlight: 64)
        let pids = [getpid()] + workers.map(\.processIdentifier)
        let workerJIDs = try (1...2).map { try accounts.jid("w\($0)", resource: "w\($0)") }
        for level in levels {
            let jobs = level == 1 ? min(n, 2000) : n
            let before = try await Counters(journal: journal, pids: pids, workers: workerJIDs, coordinator: coordinator)
            let started = ContinuousClock.now
            let latencies = try await run(coordinator, jobs: jobs, inFlight: level)
            let wall = (ContinuousClock.now - started).seconds
            let after = try await Counters(journal: journal, pids: pids, workers: workerJIDs, coordinator: coordinator)
            let stanzas = try await Self.stanzasPerJob(journal)
            report(durability: durability, level: level, latencies: latencies, wall: wall, counters: after.perJob(since: before, jobs: jobs), stanzas: stanzas)
        }
        if durability == .normal && memoryJobs > 0 {
            // Measured half-way too: flat memory shows as no growth over the second half.
            let half = memoryJobs / 2
            _ = try await run(coordinator, jobs: half, inFlight: levels.max() ?? 256)
            let halfWorkerKiB = workers.map { Self.residentKiB(pid: $0.processIdentifier) }
            let halfOwn = Self.residentKiB(pid: getpid())
            _ = try await run(coordinator, jobs: memoryJobs - half, inFlight: levels.max() ?? 256)
            let workerKiB = workers.map { Self.residentKiB(pid: $0.processIdentifier) }
            let own = Self.residentKiB(pid: getpid())
            let list = { (values: [Int]) in values.map(String.init).joined(separator: ",") }
            print(#"{"server":"\#(label)","memory_after_jobs":\#(memoryJobs + n * levels.count),"coordinator_and_driver_kib":\#(own),"worker_kib":[\#(list(workerKiB))],"#
                + #""half_way_after_jobs":\#(half + n * levels.count),"coordinator_and_driver_kib_half_way":\#(halfOwn),"worker_kib_half_way":[\#(list(halfWorkerKiB))]}"#)
        }
        await coordinator.stop()
        await journal.close()
    }

    private func report(durability: Durability, level: Int, latencies: [Double], wall: Double, counters: Counters.PerJob, stanzas: Double) {
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
        let line = String(
            format: #"{"server":"%@\#(metrics ? "+metrics" : "")\#(tracing ? "+tracing" : "")","durability":"%@","in_flight":%d,"jobs":%d,"jobs_per_s":%.0f,"p50_ms":%.2f,"p99_ms":%.2f,"# +
                #""stanzas_per_job":%.1f,"coordinator_commits_per_job":%.2f,"coordinator_awaited_writes_per_job":%.2f,"# +
                #""coordinator_lazy_writes_per_job":%.2f,"coordinator_records_per_job":%.2f,"# +
                #""worker_commits_per_job":%.2f,"worker_awaited_writes_per_job":%.2f,"worker_lazy_writes_per_job":%.2f,"# +
                #""worker_records_per_job":%.2f,"cpu_ms_per_job":%.3f,"context_switches_per_job":%.1f,"# +
                #""coordinator_written_kib_per_job":%.1f,"worker_written_kib_per_job":%.1f}"#,
            label, durability.rawValue, level, latencies.count, Double(latencies.count) / max(wall, 1e-9),
            percentile(0.5) * 1000, percentile(0.99) * 1000, stanzas, counters.commits, counters.awaitedWrites,
            counters.lazyWrites, counters.records, counters.workerCommits, counters.workerAwaitedWrites, counters.workerLazyWrites,
            counters.workerRecords, counters.cpuMilliseconds, counters.contextSwitches,
            counters.coordinatorWrittenKiB, counters.workerWrittenKiB)
        print(line)
        fflushStandardOutput()
    }

    /// Wire stanzas per job (each IQ set and its result), from the last jobs' conversations in
    /// the coordinator's journal; an end carried inside an op's answer is no stanza of its own.
    private static func stanzasPerJob(_ journal: ExchangeJournal) async throws -> Double {
        let jobs = try await journal.jobs(matching: JobFilter(limit: 50))
        var total = 0
        for job in jobs {
            for conversation in try await journal.conversations(ofJob: job.token) where conversation.role == .requester {
                total += try await journal.stanzas(ofConversation: conversation.id).filter { !FastPath.isInline($0.iqID) }.count * 2
            }
        }
        return jobs.isEmpty ? 0 : Double(total) / Double(jobs.count)
    }

    /// The journals' counters (the coordinator's, and the workers' through
    /// `/vertebra/journal-counters`), and the CPU time and context switches of this process and
    /// the workers.
    struct Counters {
        var commits = 0, awaitedWrites = 0, lazyWrites = 0, records = 0
        var workers = Diagnostics.JournalCounters.Result(commits: 0, awaitedWrites: 0, lazyWrites: 0, records: 0)
        var cpuTicks = 0, contextSwitches = 0
        /// Bytes written (files and sockets) by the bench process and by the workers.
        var coordinatorWritten = 0, workersWritten = 0

        /// `pids`: this process first, then the workers.
        init(journal: ExchangeJournal, pids: [Int32], workers jids: [JID], coordinator: Coordinator) async throws {
            commits = await journal.committedBatches
            awaitedWrites = await journal.awaitedWrites
            lazyWrites = await journal.lazyWrites
            records = await journal.recordsWritten
            for (_, result) in try await coordinator.dispatchAll(Diagnostics.JournalCounters(), scope: .direct, to: jids) {
                let counted = try result.get()
                workers.commits += counted.commits
                workers.awaitedWrites += counted.awaitedWrites
                workers.lazyWrites += counted.lazyWrites
                workers.records += counted.records
            }
            cpuTicks = pids.map(Self.cpuTicks(pid:)).reduce(0, +)
            contextSwitches = pids.map(Self.contextSwitches(pid:)).reduce(0, +)
            coordinatorWritten = pids.first.map(Self.writtenBytes(pid:)) ?? 0
            workersWritten = pids.dropFirst().map(Self.writtenBytes(pid:)).reduce(0, +)
        }

        struct PerJob {
            var commits, awaitedWrites, lazyWrites, records: Double
            var workerCommits, workerAwaitedWrites, workerLazyWrites, workerRecords: Double
            var cpuMilliseconds, contextSwitches: Double
            var coordinatorWrittenKiB, workerWrittenKiB: Double
        }

        func perJob(since start: Counters, jobs: Int) -> PerJob {
            let count = Double(max(1, jobs))
            let ticksPerSecond = Double(max(1, sysconf(Int32(_SC_CLK_TCK))))
            func per(_ now: Int, _ then: Int) -> Double { Double(now - then) / count }
            return PerJob(
                commits: per(commits, start.commits), awaitedWrites: per(awaitedWrites, start.awaitedWrites),
                lazyWrites: per(lazyWrites, start.lazyWrites), records: per(records, start.records),
                workerCommits: per(workers.commits, start.workers.commits),
                workerAwaitedWrites: per(workers.awaitedWrites, start.workers.awaitedWrites),
                workerLazyWrites: per(workers.lazyWrites, start.workers.lazyWrites),
                workerRecords: per(workers.records, start.workers.records),
                cpuMilliseconds: Double(cpuTicks - start.cpuTicks) / ticksPerSecond * 1000 / count,
                contextSwitches: per(contextSwitches, start.contextSwitches),
                coordinatorWrittenKiB: per(coordinatorWritten, start.coordinatorWritten) / 1024,
                workerWrittenKiB: per(workersWritten, start.workersWritten) / 1024)
        }

        /// Bytes a process passed to write system calls, files and sockets alike (`wchar` of
        /// /proc/PID/io; 0 when unreadable).
        static func writtenBytes(pid: Int32) -> Int {
            guard let io = try? String(contentsOfFile: "/proc/\(pid)/io", encoding: .utf8) else { return 0 }
            for line in io.split(separator: "\n") where line.hasPrefix("wchar:") {
                return Int(line.dropFirst("wchar:".count).trimmingCharacters(in: .whitespaces)) ?? 0
            }
            return 0
        }

        /// Voluntary and involuntary context switches of every thread of a process
        /// (`/proc/PID/task/*/status`; threads that already ended are not counted).
        static func contextSwitches(pid: Int32) -> Int {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
            return tasks.reduce(0) { total, task in
                guard let status = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/status", encoding: .utf8) else { return total }
                return total + status.split(separator: "\n").reduce(0) { sum, line in
                    guard line.hasPrefix("voluntary_ctxt_switches:") || line.hasPrefix("nonvoluntary_ctxt_switches:") else { return sum }
                    return sum + (Int(line.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? 0)
                }
            }
        }

        /// utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat).
        static func cpuTicks(pid: Int32) -> Int {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return 0 }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            // After "pid (comm)", field 3 is at index 0: utime (14) is index 11, stime (15) index 12.
            guard fields.count > 12 else { return 0 }
            return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
        }
    }

    /// Runs `jobs` echo jobs with `inFlight` at a time; returns each job's latency in seconds.
    private func run(_ coordinator: Coordinator, jobs: Int, inFlight: Int) async throws -> [Double] {
        try await withThrowingTaskGroup(of: Double.self) { group in
            var started = 0
            var latencies: [Double] = []
            latencies.reserveCapacity(jobs)
            func add() {
                started += 1
                group.addTask {
                    let begin = ContinuousClock.now
                    _ = try await coordinator.dispatch(Diagnostics.Echo(text: "x"))
                    return (ContinuousClock.now - begin).seconds
                }
            }
            for _ in 0..<min(inFlight, jobs) { add() }
            while let latency = try await group.next() {
                latencies.append(latency)
                if started < jobs { add() }
            }
            return latencies
        }
    }

    static func residentKiB(pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        return 0
    }
}

func fflushStandardOutput() { fflush(nil) }
