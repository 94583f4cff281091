import Tracing
import VertebraXML

/// A trace context as it travels on the wire: the fields a tracer injects (`traceparent` and
/// `tracestate` for W3C Trace Context), as `<context name='...'>value</context>` children of the
/// `<dispatch>` extension of an `op` (a Vertebra 0.4 peer ignores it). Bounded: at most
/// ``maxFields`` fields, names up to ``maxName`` bytes, values up to ``maxValue``; anything past
/// that is dropped (tracing never fails a job).
struct TraceCarrier: Sendable, Equatable {
    static let maxFields = 8
    static let maxName = 64
    static let maxValue = 512

    var fields: [String: String] = [:]

    var isEmpty: Bool { fields.isEmpty }

    /// The context of `context`, as the tracer writes it.
    init(_ context: InstrumentationContext, tracer: any Tracer) {
        tracer.inject(context, into: &self, using: TraceInjector())
    }

    init(fields: [String: String] = [:]) { self.fields = fields }

    /// The fields carried by `op`'s `<dispatch>` extension.
    init(in op: XElement) {
        guard let element = op.firstElement(named: "dispatch", namespace: DispatchExtension.namespace) else { return }
        for field in element.elements where field.name == "context" && fields.count < Self.maxFields {
            guard let name = field[attribute: "name"], !name.isEmpty, name.utf8.count <= Self.maxName, field.text.utf8.count <= Self.maxValue else {
                continue
            }
            fields[name] = field.text
        }
    }

    /// The context the tracer reads from these fields (a child of `base`).
    func context(tracer: any Tracer, base: InstrumentationContext = .topLevel) -> InstrumentationContext {
        var context = base
        guard !fields.isEmpty else { return context }
        tracer.extract(self, into: &context, using: TraceExtractor())
        return context
    }

    var elements: [XElement] {
        fields.sorted { $0.key < $1.key }.map {
            XElement("context", namespace: DispatchExtension.namespace, attributes: [XAttribute("name", $0.key)], text: $0.value)
        }
    }
}

struct TraceInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout TraceCarrier) {
        guard carrier.fields.count < TraceCarrier.maxFields || carrier.fields[key] != nil else { return }
        carrier.fields[key] = value
    }
}

struct TraceExtractor: Extractor {
    func extract(key: String, from carrier: TraceCarrier) -> String? { carrier.fields[key] }
}

extension Span {
    /// Marks the span failed with `message` (its status and an `error.message` attribute).
    func fail(_ message: String) {
        setStatus(SpanStatus(code: .error, message: message))
    }
}
