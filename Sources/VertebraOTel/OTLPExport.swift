import ServiceLifecycle

#if OTLP
    import OTel
#endif

/// OpenTelemetry export of a process's traces and metrics over OTLP/HTTP (swift-otel), for the
/// binaries' `--otlp-endpoint`. Only in builds with the `OTLP` trait (`swift build --traits
/// OTLP`); other builds say so instead of exporting.
public enum OTLPExport {
    /// Whether this build can export (it was built with the `OTLP` trait).
    public static var isAvailable: Bool {
        #if OTLP
            true
        #else
            false
        #endif
    }

    public struct Unavailable: Error, CustomStringConvertible {
        public init() {}
        public var description: String {
            "this vertebra was built without OTLP export; build it with `swift build --traits OTLP` (it adds swift-otel)"
        }
    }

    /// Bootstraps swift-distributed-tracing (unless `traces` is false) and swift-metrics (unless
    /// `metrics` is false) with OTLP/HTTP exporters to `endpoint` (e.g. `http://127.0.0.1:4318`;
    /// the standard `OTEL_*` environment variables apply too). Returns the service that exports
    /// in the background: run it, and shut it down gracefully at exit so the last spans leave.
    public static func bootstrap(serviceName: String, endpoint: String, traces: Bool = true, metrics: Bool = true) throws -> any Service {
        #if OTLP
            var configuration = OTel.Configuration.default
            configuration.serviceName = serviceName
            configuration.logs.enabled = false
            configuration.traces.enabled = traces
            configuration.metrics.enabled = metrics
            // The collector's base URL, as OTEL_EXPORTER_OTLP_ENDPOINT gives it: each signal has its path.
            let base = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
            configuration.traces.otlpExporter.endpoint = base + "/v1/traces"
            configuration.traces.otlpExporter.protocol = .httpProtobuf
            configuration.metrics.otlpExporter.endpoint = base + "/v1/metrics"
            configuration.metrics.otlpExporter.protocol = .httpProtobuf
            return try OTel.bootstrap(configuration: configuration)
        #else
            throw Unavailable()
        #endif
    }
}
