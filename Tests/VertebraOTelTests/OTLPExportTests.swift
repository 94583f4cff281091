import Foundation
import Hummingbird
import Natter
import ServiceLifecycle
import Synchronization
import Testing
import Vertebra
import VertebraJournal
import VertebraOTel
import VertebraXML

#if OTLP
    /// With the OTLP trait: a job's spans reach an OTLP/HTTP collector (a Hummingbird stand-in
    /// that records what is posted to it).
    @Suite(.timeLimit(.minutes(2))) struct OTLPExportTests {
        struct Ping: VertebraOperation {
            static let path: Resource = "/test/ping"
            struct Result: Codable, Sendable { var pong: String }
            var text: String
        }

        final class Posts: Sendable {
            let list = Mutex<[(path: String, body: Data)]>([])
        }

        @Test func aJobsSpansReachTheCollector() async throws {
            let posts = Posts()
            let router = Router()
            for path in ["/v1/traces", "/v1/metrics"] {
                router.post(RouterPath(stringLiteral: path)) { request, _ -> HTTPResponse.Status in
                    var request = request
                    let body = try await request.collectBody(upTo: 8 << 20)
                    posts.list.withLock { $0.append((path, Data(buffer: body))) }
                    return .ok
                }
            }
            let (ports, portContinuation) = AsyncStream<Int>.makeStream()
            let collector = Application(
                router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { portContinuation.yield($0.localAddress?.port ?? 0) })
            let collecting = Task { try await collector.runService(gracefulShutdownSignals: []) }
            defer { collecting.cancel() }
            var port = 0
            for await value in ports { port = value; break }

            let exporter = try OTLPExport.bootstrap(serviceName: "vertebra-test", endpoint: "http://127.0.0.1:\(port)", metrics: false)
            let group = ServiceGroup(configuration: .init(services: [exporter], logger: .init(label: "otlp-test")))
            let exporting = Task { try await group.run() }

            let directory = NSTemporaryDirectory() + "otlp-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let network = InMemoryNetwork()
            let coordinatorJID = try #require(JID("coordinator@localhost/c"))
            var options = Coordinator.Options()
            options.accessList = try AccessList(parsing: "serve w@localhost /test")
            let coordinator = Coordinator(
                client: network.transport(coordinatorJID), journal: try ExchangeJournal(path: directory + "/c.sqlite"), options: options)
            try await coordinator.start()
            let worker = Worker(
                client: network.transport(try #require(JID("w@localhost/w"))), journal: try ExchangeJournal(path: directory + "/w.sqlite"),
                options: .init(coordinator: coordinatorJID))
            try await worker.register(Ping.self) { op, _ in Ping.Result(pong: op.text) }
            try await worker.start()
            try await coordinator.waitForWorkers(1, offering: Ping.path, timeout: .seconds(20))
            #expect(try await coordinator.dispatch(Ping(text: "hi")).pong == "hi")
            await worker.stop()
            await coordinator.stop()

            await group.triggerGracefulShutdown()  // flushes the queued spans
            try await exporting.value
            let traces = posts.list.withLock { $0.filter { $0.path == "/v1/traces" } }.map(\.body).reduce(Data(), +)
            #expect(!traces.isEmpty, "nothing was posted to /v1/traces")
            for name in ["vertebra.job /test/ping", "vertebra.attempt /test/ping", "vertebra.handler /test/ping"] {
                #expect(traces.range(of: Data(name.utf8)) != nil, "\(name) is not among the exported spans")
            }
        }
    }
#else
    /// Without the OTLP trait, export is refused with a clear reason, not faked.
    @Suite struct OTLPExportTests {
        @Test func aBuildWithoutTheTraitSaysHowToGetIt() {
            #expect(!OTLPExport.isAvailable)
            #expect {
                _ = try OTLPExport.bootstrap(serviceName: "x", endpoint: "http://127.0.0.1:4318")
            } throws: { error in
                "\(error)".contains("swift build --traits OTLP")
            }
        }
    }
#endif
