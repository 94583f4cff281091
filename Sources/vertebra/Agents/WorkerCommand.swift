import ArgumentParser
import VertebraAgent

/// `vertebra worker`: a worker hosting the built-in diagnostic operations.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a worker with the built-in diagnostic operations.",
        discussion: """
            Hosts /vertebra/echo, /vertebra/sleep, /vertebra/idempotent-sleep, /vertebra/count \
            (streaming), /vertebra/fail and /vertebra/journal-counters (the journal's commit \
            counts), to try a setup out. Real operations live in agents: \
            small executables that register their own operation types (see Agents/ and README.md) \
            and take these same options. Stops on SIGINT/SIGTERM after withdrawing its \
            advertisement.
            """)

    @OptionGroup var options: WorkerOptions
    @OptionGroup var traceFile: TraceFileOptions
    @OptionGroup var otlp: OTLPOptions

    func run() async throws {
        do {
            let traces = try traceFile.start()
            let exporter = try otlp.start(serviceName: "vertebra-worker", traces: traces == nil, metrics: options.metrics.metricsAddress == nil)
            try await options.run(name: "worker") { worker in try await Diagnostics.register(on: worker) }
            await traces?.stop()
            await exporter?.stop()
        } catch let error as ValidationError {
            throw error
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }
}
