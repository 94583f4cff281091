import Foundation
import InMemoryTracing
import Natter
import Testing
import Tracing
@testable import Vertebra
import VertebraJournal
import VertebraXML

/// Spans across submitter, coordinator and worker share one trace, carried in the `op`s.
@Suite(.timeLimit(.minutes(1))) struct TracingTests {
    @Test func submitterCoordinatorAndWorkerSpansShareOneTrace() async throws {
        let tracer = InMemoryTracer()
        let cluster = try MemoryCluster()
        let coordinator = try await cluster.startCoordinator(journal: try cluster.journal("coordinator")) { $0.tracer = tracer }
        let worker = try await cluster.makeWorker("w1", journal: try cluster.journal("w1"), fastPath: false) { $0.tracer = tracer }
        try await worker.start()
        try await cluster.waitForWorkers(coordinator, 1)
        let transport = cluster.network.transport(JID("alice@localhost/traced")!, clock: cluster.clock, requestTimeout: cluster.answerTimeout)
        let submitter = Submitter(client: transport, coordinator: MemoryCluster.coordinatorJID, answerTimeout: cluster.answerTimeout, tracer: tracer)
        try await submitter.start()
        let job = try await submitter.submit(Echo.path, arguments: try TypedValueEncoder().encodeFields(Echo(text: "traced")))
        for await event in job.events { if case .done = event { break } }
        try await cluster.eventually("the job's spans to end") {
            Set(tracer.finishedSpans.map { $0.operationName.split(separator: " ").first.map(String.init) ?? "" })
                .isSuperset(of: ["vertebra.submit", "vertebra.job", "vertebra.attempt", "vertebra.handler"])
        }
        let spans = tracer.finishedSpans
        let submit = try #require(spans.first { $0.operationName == "vertebra.submit \(Echo.path.path)" })
        let jobSpan = try #require(spans.first { $0.operationName == "vertebra.job \(Echo.path.path)" })
        let attempt = try #require(spans.first { $0.operationName == "vertebra.attempt \(Echo.path.path)" })
        let handler = try #require(spans.first { $0.operationName == "vertebra.handler \(Echo.path.path)" })
        #expect(Set([submit, jobSpan, attempt, handler].map(\.traceID)).count == 1, "one trace: \(spans.map { ($0.operationName, $0.traceID) })")
        // Parent links: submit <- job <- attempt <- handler.
        #expect(jobSpan.spanContext.parentSpanID == submit.spanID)
        #expect(attempt.spanContext.parentSpanID == jobSpan.spanID)
        #expect(handler.spanContext.parentSpanID == attempt.spanID)
        #expect(jobSpan.attributes["vertebra.job.id"]?.toSpanAttribute() == job.id.toSpanAttribute())
        await submitter.stop()
        await worker.stop()
        await coordinator.stop()
    }

    @Test func aFailedHandlerMarksItsSpansFailed() async throws {
        let tracer = InMemoryTracer()
        let cluster = try MemoryCluster()
        let coordinator = try await cluster.startCoordinator(journal: try cluster.journal("coordinator")) {
            $0.tracer = tracer
            $0.maxAttempts = 1
        }
        let worker = try await cluster.makeWorker("w1", journal: try cluster.journal("w1")) { $0.tracer = tracer }
        try await worker.start()
        try await cluster.waitForWorkers(coordinator, 1)
        cluster.runs.failNext(1)
        await #expect(throws: VertebraError.self) { _ = try await coordinator.dispatch(Echo(text: "fails")) }
        try await cluster.eventually("the spans to end") { tracer.finishedSpans.contains { $0.operationName.hasPrefix("vertebra.job") } }
        let handler = try #require(tracer.finishedSpans.first { $0.operationName.hasPrefix("vertebra.handler") })
        let jobSpan = try #require(tracer.finishedSpans.first { $0.operationName.hasPrefix("vertebra.job") })
        #expect(handler.status?.code == .error)
        #expect(jobSpan.status?.code == .error)
        #expect(handler.traceID == jobSpan.traceID)
        await worker.stop()
        await coordinator.stop()
    }
}

/// The wire form of a trace context: bounded, and W3C fields kept as they are.
@Suite struct TraceCarrierTests {
    @Test func aW3CContextRoundTripsThroughTheDispatchExtension() throws {
        let fields = ["traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "vendor=opaque"]
        let element = try #require(DispatchExtension.element(targets: [], deadline: nil, retryable: nil, trace: TraceCarrier(fields: fields)))
        let op = XElement("op", namespace: ProtocolMessage.namespace).appending(element)
        let parsed = try #require(JournalText.element(op.serializedString()))
        #expect(TraceCarrier(in: parsed).fields == fields)
        #expect(try DispatchExtension.parse(parsed).trace.fields == fields)
    }

    @Test func oversizedOrTooManyFieldsAreDroppedNotFatal() throws {
        var children: [XNode] = (0..<20).map { .element(XElement("context", namespace: DispatchExtension.namespace, attributes: [XAttribute("name", "k\($0)")], text: "v")) }
        children.append(.element(XElement("context", namespace: DispatchExtension.namespace, attributes: [XAttribute("name", "big")], text: String(repeating: "x", count: 600))))
        children.append(.element(XElement("context", namespace: DispatchExtension.namespace, attributes: [XAttribute("name", String(repeating: "n", count: 65))], text: "v")))
        let op = XElement("op", namespace: ProtocolMessage.namespace).appending(XElement("dispatch", namespace: DispatchExtension.namespace, children: children))
        let carrier = TraceCarrier(in: op)
        #expect(carrier.fields.count == TraceCarrier.maxFields)
        #expect(carrier.fields["big"] == nil)
        #expect(try DispatchExtension.parse(op).targets.isEmpty)
    }
}
