import ArgumentParser
import Foundation
import Logging
import Natter
import Vertebra
import VertebraAgent
import VertebraJournal
import VertebraXML

/// `vertebra bench burst`: a burst of jobs far beyond the workers' capacity queues durably and
/// costs the coordinator next to nothing while it waits.
struct BenchBurst: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "burst",
        abstract: "A burst of jobs beyond every worker's capacity: all must end done; the coordinator's CPU while they wait.",
        discussion: """
            Starts two `vertebra worker` processes (accounts w1, w2, --max-jobs each) and a \
            coordinator in this process. First every worker slot is taken by a /vertebra/sleep of \
            --hold seconds; then -n /vertebra/echo jobs are submitted at once. While they wait \
            (queued, pending) this process's CPU time is sampled: that is the coordinator's \
            waiting cost. Then the slots free and the burst drains. Prints one JSON line.
            """)

    @OptionGroup var accounts: BenchAccounts
    @Option(name: .short, parsing: .unconditional, help: "Jobs in the burst.") var n = 20_000
    @Option(parsing: .unconditional, help: "Jobs each worker runs at once.") var maxJobs = 4
    @Option(parsing: .unconditional, help: "Seconds the slots are held before the burst may drain (holds both sampling windows).") var hold = 25
    @Option(parsing: .unconditional, help: "Seconds of each CPU sample: idle with the slots held (the baseline), then with the burst queued.") var sample = 4

    func validate() throws {
        guard (1...1_000_000).contains(n) else { throw ValidationError("-n must be from 1 to 1000000") }
        guard (1...256).contains(maxJobs) else { throw ValidationError("--max-jobs must be from 1 to 256") }
        guard (1...60).contains(sample) else { throw ValidationError("--sample must be from 1 to 60 seconds") }
        guard (3 * sample...600).contains(hold) else { throw ValidationError("--hold must be from 3 x --sample to 600 seconds") }
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
        let directory = try BenchCleanup.shared.scratchDirectory("vertebra-bench-burst")
        defer { BenchCleanup.shared.remove(directory) }
        let workers = try (1...2).map { try accounts.spawnWorker($0, journal: "\(directory)/w\($0).sqlite", extra: ["--max-jobs", String(maxJobs)]) }
        defer { for worker in workers { worker.terminate(); worker.waitUntilExit() } }
        let journal = try ExchangeJournal(path: "\(directory)/coordinator.sqlite", options: .init(durability: .normal))
        let coordinator = Coordinator(
            client: XMPPClient(configuration: try accounts.configuration("coordinator", resource: "coordinator")), journal: journal,
            options: Coordinator.Options(
                accessList: accounts.workersServeEverything, workerWait: .seconds(30), answerTimeout: .seconds(30)))
        try await coordinator.start()
        try await coordinator.waitForWorkers(2, offering: Diagnostics.Echo.path, timeout: .seconds(30))
        let slots = 2 * maxJobs
        let holders = try await submitAll(coordinator, slots) { _ in
            (Diagnostics.Sleep.path, try encode(Diagnostics.Sleep(milliseconds: hold * 1000)))
        }
        let heldAt = ContinuousClock.now
        // Baseline, same process, same window: the coordinator with its slots held and nothing queued.
        try await Task.sleep(for: .milliseconds(500))
        let idleBefore = Self.cpuSeconds()
        try await Task.sleep(for: .seconds(sample))
        let idleCPU = Self.cpuSeconds() - idleBefore
        let submitStart = ContinuousClock.now
        let burst = try await submitAll(coordinator, n) { _ in (Diagnostics.Echo.path, try encode(Diagnostics.Echo(text: "x"))) }
        let submitSeconds = (ContinuousClock.now - submitStart).seconds
        let residentKiB = BenchJobs.residentKiB(pid: getpid())
        // The same window with the burst queued (it must end before the slots free).
        let left = Double(hold) - (ContinuousClock.now - heldAt).seconds - 1
        guard left >= Double(sample) else {
            throw ValidationError("submitting took too long to sample \(sample) s before the slots free; raise --hold")
        }
        let cpuBefore = Self.cpuSeconds()
        try await Task.sleep(for: .seconds(sample))
        let waitingCPU = Self.cpuSeconds() - cpuBefore
        let window = Double(sample)
        let drainStart = ContinuousClock.now
        let (done, failed, firstError) = await Self.outcomes(holders + burst)
        let drainSeconds = (ContinuousClock.now - drainStart).seconds
        print(String(
            format: #"{"jobs":%d,"workers":2,"max_jobs":%d,"submit_s":%.2f,"window_s":%.1f,"idle_cpu_s":%.3f,"waiting_cpu_s":%.3f,"waiting_cpu_share":%.4f,"waiting_vs_idle":%.2f,"drain_s":%.2f,"jobs_per_s_draining":%.0f,"rss_kib_queued":%d,"done":%d,"failed":%d%@}"#,
            n, maxJobs, submitSeconds, window, idleCPU, waitingCPU, waitingCPU / window, waitingCPU / max(idleCPU, 0.001), drainSeconds,
            Double(n) / max(drainSeconds, 1e-9),
            residentKiB, done, failed, firstError.map { #","first_error":"\#($0.replacingOccurrences(of: "\"", with: "'"))""# } ?? ""))
        fflushStandardOutput()
        await coordinator.stop()
        await journal.close()
        if failed > 0 { throw ExitCode(1) }
    }

    private func encode<T: Encodable>(_ value: T) throws -> [XElement] {
        try TypedValueEncoder().encodeFields(value)
    }

    private func submitAll(
        _ coordinator: Coordinator, _ count: Int, _ make: (Int) throws -> (Resource, [XElement])
    ) async throws -> [JobHandle] {
        var handles: [JobHandle] = []
        handles.reserveCapacity(count)
        for index in 0..<count {
            let (path, arguments) = try make(index)
            handles.append(try await coordinator.submit(path, arguments: arguments))
        }
        return handles
    }

    private static func outcomes(_ handles: [JobHandle]) async -> (Int, Int, String?) {
        await withTaskGroup(of: String?.self) { group in
            for handle in handles {
                group.addTask {
                    for await event in handle.events {
                        if case .failed(let error) = event { return error.description }
                    }
                    return nil
                }
            }
            var done = 0
            var failed = 0
            var first: String?
            for await error in group {
                if let error {
                    failed += 1
                    first = first ?? error
                } else {
                    done += 1
                }
            }
            return (done, failed, first)
        }
    }

    /// User + system CPU time of this process.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}
