import ArgumentParser
import Foundation
import Synchronization
import Logging
import Natter
import Vertebra
import VertebraAgent
import VertebraXML

/// `vertebra dispatch OP ARG...`: submit a job to the coordinator and print its results.
struct DispatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dispatch",
        abstract: "Submit a job through the coordinator and print its results.",
        discussion: """
            Arguments are name=type:value with type string, res, i4 (or int), i8 (or integer), \
            double, boolean or base64; a bare name=value is a string. Example:
              vertebra dispatch /vertebra/echo text=hello
              vertebra dispatch /vertebra/count count=i4:3 --scope all --json
            Results print one chunk per line (with --json: one JSON object at the end); progress \
            and the job's end go to stderr. Ctrl-C cancels the job (a --key submission that \
            followed another's job stops following it instead). Exit status: 0 done, 1 failed \
            or cancelled (the reason is printed), 3 the coordinator could not be reached or did \
            not answer in time.

            --batch FILE submits every job of FILE (- for standard input) instead, one per line in the same syntax \
            (`/vertebra/echo text="hello world"`; # comments), up to 1,000 jobs per request, each \
            request journalled by the coordinator in one transaction; --scope, --to and \
            --deadline apply to every job. It prints the job ids in file order (with --json: \
            {"jobs": [...]}) and exits 0 once all were accepted; their results are in the \
            coordinator's journal (`vertebra jobs show ID`).

            --key K makes the job unique: while a job submitted with key K is unfinished, the \
            coordinator makes this submission follow that job (its id is printed) instead of \
            starting another. --at TIME or --in DURATION delays the job's start (it is journalled \
            at once and survives a coordinator restart); with --detach the id prints at once.
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var traceFile: TraceFileOptions
    @OptionGroup var otlp: OTLPOptions
    @Argument(help: "Operation path, e.g. /vertebra/echo.") var operation: String?
    @Argument(help: "Arguments as name=type:value.") var arguments: [String] = []
    @Option(help: "single (one worker, with fail-over), all (every capable worker) or direct (--to).") var scope: String = "single"
    @Option(help: ArgumentHelp("Target worker's full JID for --scope direct (repeatable).", valueName: "jid")) var to: [String] = []
    @Option(help: ArgumentHelp("The coordinator's full JID. Default: $VERTEBRA_COORDINATOR, else coordinator@DOMAIN/coordinator.", valueName: "jid"))
    var coordinator: String?
    // Unconditional: `--deadline -1` is a number out of range, not a missing value.
    @Option(parsing: .unconditional, help: "Seconds the job may take (the coordinator cancels it then).") var deadline: Int?
    @Option(parsing: .unconditional, help: "Seconds to wait for the end before giving up (the job goes on).") var timeout: Int = 300
    @Flag(help: "Print one JSON object: {job, state, results, error, code}; a job not accepted has job null and state refused or unknown.") var json = false
    @Flag(help: "Print the job id once the coordinator accepted it, and exit (the coordinator then relays nothing to this command; follow the job with `vertebra jobs`).") var detach = false
    @Option(help: ArgumentHelp("Submit every job of this file (one per line: OPERATION name=type:value ...); print their ids and exit.", valueName: "file"))
    var batch: String?
    @Option(help: ArgumentHelp("A unique key: while a job with this key is unfinished, follow it instead of starting another.", valueName: "key"))
    var key: String?
    @Option(help: ArgumentHelp("Start the job at this time: 2026-12-01T02:00:00Z, or local 2026-12-01 02:00.", valueName: "time"))
    var at: String?
    @Option(name: .customLong("in"), help: ArgumentHelp("Start the job after this delay: 90s, 15m, 2h, 1d, 1h30m.", valueName: "duration"))
    var delay: String?

    func validate() throws {
        if let batch {
            guard operation == nil, arguments.isEmpty else { throw ValidationError("give an operation or --batch FILE, not both") }
            guard !detach else { throw ValidationError("--batch always detaches; drop --detach") }
            _ = try Self.batchJobs(batch)
        } else {
            guard let operation, operation.hasPrefix("/") else { throw ValidationError("the operation must be a path such as /vertebra/echo") }
        }
        guard let parsed = Scope(rawValue: scope) else { throw ValidationError("--scope must be single, all or direct") }
        if parsed == .direct && to.isEmpty { throw ValidationError("--scope direct needs --to JID") }
        if !to.isEmpty && parsed != .direct { throw ValidationError("--to goes with --scope direct") }
        for target in to where JID(target)?.isFull != true { throw ValidationError("--to '\(target)' is not a full JID") }
        if batch == nil { do { _ = try TypedArguments.parse(arguments) } catch { throw ValidationError("\(error)") } }
        // Ten years at most: a larger number is a mistake, and the coordinator refuses it too.
        if let deadline, !(1...315_360_000).contains(deadline) {
            throw ValidationError("--deadline must be from 1 to 315360000 seconds (ten years), not \(deadline)")
        }
        guard (1...315_360_000).contains(timeout) else { throw ValidationError("--timeout must be from 1 to 315360000 seconds, not \(timeout)") }
        if at != nil && delay != nil { throw ValidationError("give --at or --in, not both") }
        if let key, let problem = Submitter.keyProblem(key) { throw ValidationError("--key: \(problem)") }
        if batch != nil && key != nil { throw ValidationError("--key goes with one job, not --batch") }
        do { _ = try startTime() } catch { throw ValidationError("\(error)") }
    }

    /// When the job starts (--at or --in), nil for now.
    private func startTime() throws -> Date? {
        if let at { return try StartTime.parseTime(at) }
        if let delay { return Date().addingTimeInterval(try StartTime.parseDuration(delay)) }
        return nil
    }

    func run() async throws {
        var level = connection
        if level.logLevel == "info" { level.logLevel = "warning" }
        level.bootstrapLogging()
        let configuration: ClientConfiguration
        let coordinatorJID: JID
        do {
            var base = try connection.clientConfiguration(defaultResource: "dispatch-\(SecureRandom.hex(bytes: 4) ?? "0")")
            base.reconnect.enabled = false
            configuration = base
            let text = coordinator ?? ProcessInfo.processInfo.environment["VERTEBRA_COORDINATOR"].flatMap { $0.isEmpty ? nil : $0 }
                ?? "coordinator@\(configuration.jid.domain)/coordinator"
            guard let jid = JID(text), jid.isFull else { throw ValidationError("coordinator '\(text)' is not a full JID") }
            coordinatorJID = jid
        } catch let error as ValidationError {
            throw error
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        let traces = try traceFile.start()
        let exporter = try otlp.start(serviceName: "vertebra-dispatch", traces: traces == nil, metrics: true)
        let submitter = Submitter(client: XMPPClient(configuration: configuration), coordinator: coordinatorJID)
        let code = batch == nil ? await submit(with: submitter) : await submitBatches(with: submitter)
        await submitter.stop()
        await traces?.stop()
        await exporter?.stop()
        if code != 0 { throw ExitCode(code) }
    }

    private func submit(with submitter: Submitter) async -> Int32 {
        let job: Submitter.Job
        do {
            try await submitter.start()
            job = try await submitter.submit(
                Resource(operation ?? ""), arguments: try TypedArguments.parse(arguments), scope: Scope(rawValue: scope) ?? .single,
                to: to.compactMap(JID.init), deadline: deadline.map { .seconds($0) }, key: key, notBefore: try startTime(),
                detach: detach)
        } catch let error as VertebraError {
            printError("error: \(error.message) [\(error.code)]")
            let refused = error.code != .unreachable
            if json { printOutcome(job: nil, state: refused ? "refused" : "unknown", error: error.message, code: error.code.rawValue) }
            return refused ? 1 : 3
        } catch {
            printError("error: \(error)")
            if json { printOutcome(job: nil, state: "unknown", error: "\(error)", code: VertebraError.Code.unreachable.rawValue) }
            return 3
        }
        if detach {
            if json { printJSON(["job": job.id, "state": "accepted"]) } else { print(job.id) }
            return 0
        }
        if !json {
            let start = (try? startTime()).map { time in
                let text = ISO8601DateFormatter().string(from: time)
                return time <= Date() ? "; it starts at once (\(text) has passed)" : "; it starts at \(text)"
            } ?? ""
            printError("job \(job.id) accepted by \(submitter.coordinator)" + (key == nil ? "" : " (key \(key ?? ""))") + start)
        }
        let cancelOnSignal = Task {
            guard await waitForTerminationSignal() else { return }
            printError("cancelling job \(job.id)...")
            try? await submitter.cancel(job)
        }
        defer { cancelOnSignal.cancel() }
        return await follow(job)
    }

    /// The batch file's text, read at most once per run (a pipe cannot be read twice).
    private static let batchTexts = Mutex<[String: String]>([:])

    private static func readOnce(_ path: String) throws -> String {
        if let text = batchTexts.withLock({ $0[path] }) { return text }
        let handle = path == "-" ? FileHandle.standardInput : try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        guard let text = String(data: try handle.readToEnd() ?? Data(), encoding: .utf8) else {
            throw ValidationError("the batch file \(path) is not UTF-8 text")
        }
        batchTexts.withLock { $0[path] = text }
        return text
    }

    /// What the system said, without Foundation's wrapping ("The file … couldn't be opened").
    private static func reason(_ error: any Error) -> String {
        let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError
        if let posix = underlying, posix.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(posix.code))) }
        if (error as NSError).domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32((error as NSError).code))) }
        return error.localizedDescription
    }

    /// The jobs of the batch file at `path`, with --scope, --to and --deadline applied.
    private static func batchJobs(_ path: String) throws -> [Batch.Job] {
        let text: String
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw ValidationError("the batch file \(path) is a directory; give a file with one job per line")
        }
        // A pipe or /dev/stdin reads like a file (String(contentsOfFile:) said "permission" for
        // them); `-` is standard input. Read once: checked at validation, sent at run.
        do {
            text = try Self.readOnce(path)
        } catch let error as ValidationError {
            throw error
        } catch {
            throw ValidationError("cannot read the batch file \(path): \(Self.reason(error))")
        }
        do { return try BatchFile.parse(text, name: path == "-" ? "standard input" : path) } catch { throw ValidationError("\(error)") }
    }

    private func submitBatches(with submitter: Submitter) async -> Int32 {
        var jobs: [Batch.Job]
        do { jobs = try Self.batchJobs(batch ?? "") } catch {
            printError("error: \(error)")
            return 1
        }
        for index in jobs.indices {
            jobs[index].scope = Scope(rawValue: scope) ?? .single
            jobs[index].targets = to.compactMap(JID.init)
            jobs[index].deadline = deadline.map { .seconds($0) }
            jobs[index].notBefore = try? startTime()
        }
        let chunks = BatchFile.chunks(jobs)
        var ids: [String] = []
        do {
            try await submitter.start()
            for (number, chunk) in chunks.enumerated() {
                let accepted = try await submitter.submitBatch(chunk)
                ids += accepted
                if !json { for id in accepted { printUnbuffered(id) } }
                printError("accepted \(ids.count) of \(jobs.count) jobs" + (chunks.count > 1 ? " (request \(number + 1) of \(chunks.count))" : ""))
            }
        } catch {
            let reason = (error as? VertebraError).map { "\($0.message) [\($0.code)]" } ?? "\(error)"
            printError("error: \(reason); \(ids.count) of \(jobs.count) jobs were accepted before it (their ids are printed)")
            if json { printJSON(["jobs": ids, "error": reason]) }
            return (error as? VertebraError)?.code == .unreachable || !(error is VertebraError) ? 3 : 1
        }
        if json { printJSON(["jobs": ids]) }
        return 0
    }

    private func printJSON(_ object: [String: Any]) {
        printJSONLine(object)
    }

    /// The one object `--json` prints however the command ends: every key, null when it does
    /// not apply.
    private func printOutcome(job: String?, state: String, results: [[XElement]] = [], error: String?, code: String?) {
        printJSON([
            "job": job ?? NSNull(), "state": state, "results": results.map(TypedValueJSON.object),
            "error": error ?? NSNull(), "code": code ?? NSNull(),
        ])
    }

    private func follow(_ job: Submitter.Job) async -> Int32 {
        var chunks: [[XElement]] = []
        var outcome: (state: String, error: VertebraError?)?
        // Events and a timeout tick (nil) in one stream.
        let (merged, continuation) = AsyncStream<Submitter.Event?>.makeStream()
        let forward = Task {
            for await event in job.events { continuation.yield(event) }
            continuation.finish()
        }
        let seconds = timeout
        let timer = Task {
            try? await Task.sleep(for: .seconds(seconds))
            continuation.yield(nil)
        }
        defer {
            forward.cancel()
            timer.cancel()
        }
        for await item in merged {
            guard let event = item else { break }
            switch event {
            case .accepted: continue
            case .progress(let progress):
                if !json { printError("progress: \(progress.message)" + (progress.total.map { " (\(progress.done ?? 0)/\($0))" } ?? "")) }
            case .data(let values):
                chunks.append(values)
                if !json { printUnbuffered(TypedValueJSON.line(values)) }
            case .done: outcome = ("done", nil)
            // `unreachable` never comes from the coordinator: this command lost its connection.
            case .failed(let error) where error.code == .unreachable: outcome = ("unknown", error)
            case .failed(let error): outcome = (error.code == .cancelled ? "cancelled" : "failed", error)
            }
            if outcome != nil { break }
        }
        guard let outcome else {
            let reason = "no end of job \(job.id) within \(timeout) s; it goes on (see `vertebra jobs show \(job.id)`)"
            printError("error: \(reason)")
            if json { printOutcome(job: job.id, state: "unknown", results: chunks, error: reason, code: VertebraError.Code.unreachable.rawValue) }
            return 3
        }
        if json {
            printOutcome(job: job.id, state: outcome.state, results: chunks, error: outcome.error?.message, code: outcome.error?.code.rawValue)
        } else if let error = outcome.error, outcome.state == "unknown" {
            printError("error: \(error.message) (see `vertebra jobs show \(job.id)`)")
        } else if let error = outcome.error {
            printError("error: job \(job.id) \(outcome.state): \(error.message) [\(error.code)]")
        } else {
            printError("job \(job.id) done")
        }
        guard let error = outcome.error else { return 0 }
        return error.code == .unreachable ? 3 : 1
    }
}
