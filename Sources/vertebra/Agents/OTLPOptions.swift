import ArgumentParser
import Foundation
import ServiceLifecycle
import VertebraOTel

/// `--otlp-endpoint URL`: export this process's traces and metrics over OTLP/HTTP (builds with
/// the `OTLP` trait only). Traces already going to `--trace-file`, or metrics already served at
/// `--metrics-address`, stay there.
struct OTLPOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Export traces and metrics over OTLP/HTTP to this collector, e.g. http://127.0.0.1:4318 (needs a build with --traits OTLP).",
        valueName: "url"))
    var otlpEndpoint: String?

    func validate() throws {
        guard let otlpEndpoint else { return }
        guard let url = URL(string: otlpEndpoint), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
            throw ValidationError("--otlp-endpoint must be an http(s) URL such as http://127.0.0.1:4318, not '\(otlpEndpoint)'")
        }
        guard OTLPExport.isAvailable else { throw ValidationError("--otlp-endpoint: \(OTLPExport.Unavailable())") }
    }

    /// Bootstraps the exporters and runs them in the background; call it before making the agent.
    func start(serviceName: String, traces: Bool, metrics: Bool) throws -> OTLPRunner? {
        guard let otlpEndpoint else { return nil }
        guard traces || metrics else {
            throw ValidationError("--otlp-endpoint has nothing to export: traces go to --trace-file and metrics to --metrics-address")
        }
        let service = try OTLPExport.bootstrap(serviceName: serviceName, endpoint: otlpEndpoint, traces: traces, metrics: metrics)
        printError("OTLP export to \(otlpEndpoint) (\([traces ? "traces" : nil, metrics ? "metrics" : nil].compactMap { $0 }.joined(separator: ", ")))")
        return OTLPRunner(service: service)
    }
}

/// The exporters' service in a group of its own; ``stop()`` shuts it down gracefully, which
/// flushes what is still queued.
final class OTLPRunner: Sendable {
    private let group: ServiceGroup
    private let task: Task<Void, Never>

    init(service: any Service) {
        let group = ServiceGroup(configuration: .init(services: [service], logger: .init(label: "vertebra.otlp")))
        self.group = group
        task = Task { try? await group.run() }
    }

    func stop() async {
        await group.triggerGracefulShutdown()
        await task.value
    }
}
