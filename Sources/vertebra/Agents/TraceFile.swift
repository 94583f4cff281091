import ArgumentParser
import Foundation
import InMemoryTracing
import Natter
import Tracing

/// `--trace-file PATH`: record this process's spans and append them to PATH as JSON lines (one
/// span per line: name, trace_id, span_id, parent_span_id, kind, start_ns, end_ns, status,
/// attributes), every second and at exit. For seeing a job's trace across the submitter, the
/// coordinator and the worker without a tracing backend; programs that embed Vertebra bootstrap
/// their own tracer (swift-otel) instead.
struct TraceFileOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Append this process's spans to this file as JSON lines (created owner-only).", valueName: "path"))
    var traceFile: String?

    /// Bootstraps the tracer and starts writing; call it before making the agent.
    func start() throws -> TraceFileWriter? {
        guard let traceFile else { return nil }
        let descriptor = open(traceFile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else {
            throw ValidationError("--trace-file: cannot open \(traceFile): \(String(cString: strerror(errno)))")
        }
        // Random W3C-sized ids (16 and 8 bytes, hex): the in-memory tracer's default ids count
        // from 1 in every process, and a trace here spans processes.
        let tracer = InMemoryTracer(idGenerator: .init(
            nextTraceID: { SecureRandom.hex(bytes: 16) ?? UUID().uuidString },
            nextSpanID: { SecureRandom.hex(bytes: 8) ?? UUID().uuidString }))
        InstrumentationSystem.bootstrap(tracer)
        return TraceFileWriter(tracer: tracer, handle: FileHandle(fileDescriptor: descriptor, closeOnDealloc: true))
    }
}

/// Moves finished spans from the in-memory tracer to the file.
final class TraceFileWriter: Sendable {
    private let tracer: InMemoryTracer
    private let handle: FileHandle
    private let task: Task<Void, Never>

    init(tracer: InMemoryTracer, handle: FileHandle) {
        self.tracer = tracer
        self.handle = handle
        task = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                Self.write(tracer.popFinishedSpans(), to: handle)
            }
        }
    }

    /// Writes what is left and stops. Waits for the periodic write first: spans it took from the
    /// tracer must reach the file before the process exits.
    func stop() async {
        task.cancel()
        await task.value
        Self.write(tracer.popFinishedSpans(), to: handle)
    }

    private static func write(_ spans: [FinishedInMemorySpan], to handle: FileHandle) {
        guard !spans.isEmpty else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = Data()
        for span in spans {
            guard let line = try? encoder.encode(SpanLine(span)) else { continue }
            data.append(line)
            data.append(0x0A)
        }
        try? handle.write(contentsOf: data)
    }

    private struct SpanLine: Encodable {
        let name, traceID, spanID, kind: String
        let parentSpanID: String?
        let startNS, endNS: UInt64
        let status: String?
        let attributes: [String: String]

        init(_ span: FinishedInMemorySpan) {
            name = span.operationName
            traceID = span.traceID
            spanID = span.spanID
            parentSpanID = span.parentSpanID
            kind = "\(span.kind)"
            startNS = span.startInstant.nanosecondsSinceEpoch
            endNS = span.endInstant.nanosecondsSinceEpoch
            status = span.status.map { "\($0.code)" + ($0.message.map { ": \($0)" } ?? "") }
            var values: [String: String] = [:]
            span.attributes.forEach { key, value in values[key] = "\(value)" }
            attributes = values
        }

        enum CodingKeys: String, CodingKey {
            case name, kind, status, attributes
            case traceID = "trace_id", spanID = "span_id", parentSpanID = "parent_span_id", startNS = "start_ns", endNS = "end_ns"
        }
    }
}
