import ArgumentParser
import Foundation
import Logging
import Natter
import VertebraXML

/// `vertebra bench iq`: IQ round trips between two Natter clients through a real XMPP server.
struct BenchIQ: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "iq",
        abstract: "IQ round trips between two Natter clients through an XMPP server.",
        discussion: """
            A requester sends IQ sets (<job xmlns='urn:vertebra:bench:0'> with 64 bytes of data) to \
            a responder's full JID, which answers each with an empty result. After a warm-up it \
            runs N IQs one at a time and N IQs with 64 in flight, and prints one JSON object per \
            level (same fields as scripts/xmpp/slixmpp_iq_bench.py). Both clients run in this \
            process. scripts/bench-iq.sh starts Prosody and ejabberd, runs this and the slixmpp \
            baseline against each, and prints them side by side.
            """)

    @Option(help: "Server address.") var host = "127.0.0.1"
    @Option(parsing: .unconditional, help: "Server c2s port.") var port: Int
    @Option(help: "XMPP domain of the accounts.") var domain = "localhost"
    @Option(help: "Label for the JSON 'server' field.") var server = "xmpp"
    @Option(help: "Requester account (local part).") var requester = "bench-a"
    @Option(help: "Responder account (local part).") var responder = "bench-b"
    @Option(help: "File whose first line is both accounts' password.") var passwordFile: String
    @Option(help: "none or starttls.") var tls = "none"
    @Option(help: "CA file to verify the server certificate (with --tls starttls).") var cafile: String?
    @Option(name: .short, parsing: .unconditional, help: "IQs per concurrency level.") var n = 2000
    @Option(name: [.short, .long], help: "IQs in flight per level, comma separated.") var concurrency = "1,64"
    @Option(parsing: .unconditional, help: "Warm-up IQs (not reported).") var warmup = 200
    @Flag(help: "Enable XEP-0198 stream management (the slixmpp baseline runs without it).")
    var streamManagement = false

    func validate() throws {
        guard tls == "none" || tls == "starttls" else { throw ValidationError("--tls must be none or starttls") }
        guard (1...65_535).contains(port) else { throw ValidationError("--port must be from 1 to 65535, not \(port)") }
        guard n > 0, warmup >= 0 else { throw ValidationError("-n must be positive") }
        guard !levels.isEmpty else { throw ValidationError("--concurrency must list positive numbers, e.g. 1,64") }
    }

    private var levels: [Int] { concurrency.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 } }

    func run() async throws {
        #if DEBUG
            FileHandle.standardError.write(Data("warning: debug build; use swift build -c release\n".utf8))
        #endif
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
        let answering = try await client(responder, resource: "responder")
        await answering.handleIQ(namespace: "urn:vertebra:bench:0", name: "job") { _ in nil }
        let asking = try await client(requester, resource: "requester")
        guard let peer = await answering.boundJID else { throw ValidationError("the responder is not connected") }
        _ = try await roundTrips(asking, to: peer, count: warmup, inFlight: 8)
        for level in levels {
            let started = ContinuousClock.now
            let latencies = try await roundTrips(asking, to: peer, count: n, inFlight: level)
            let wall = (ContinuousClock.now - started).seconds
            print(report(level: level, latencies: latencies, wall: wall))
        }
        await asking.stop()
        await answering.stop()
    }

    private func client(_ user: String, resource: String) async throws -> XMPPClient {
        guard let jid = JID(local: user, domain: domain, resource: resource) else {
            throw ValidationError("\(user)@\(domain) is not a valid JID")
        }
        var configuration = ClientConfiguration(
            host: host, port: port, jid: jid, password: .file(passwordFile),
            tls: tls == "starttls" ? .required : .disabled, trustedCAFile: cafile)
        configuration.requestTimeout = .seconds(30)
        configuration.reconnect.enabled = false
        configuration.streamManagement = streamManagement
        let client = XMPPClient(configuration: configuration)
        try await client.start()
        return client
    }

    /// Sends `count` IQs with `inFlight` outstanding at a time; returns each round trip in ms.
    private func roundTrips(_ client: XMPPClient, to peer: JID, count: Int, inFlight: Int) async throws -> [Double] {
        let data = String(repeating: "x", count: 64)
        return try await withThrowingTaskGroup(of: [Double].self) { group in
            for lane in 0..<inFlight {
                group.addTask {
                    var latencies: [Double] = []
                    var sequence = lane
                    while sequence < count {
                        let job = XElement(
                            "job", namespace: "urn:vertebra:bench:0", attributes: [XAttribute("seq", String(sequence))],
                            children: [.element(XElement("data", namespace: "urn:vertebra:bench:0", text: data))])
                        let started = ContinuousClock.now
                        _ = try await client.sendAndWait(IQ(type: .set, id: "", to: peer, payload: job))
                        latencies.append((ContinuousClock.now - started).seconds * 1000)
                        sequence += inFlight
                    }
                    return latencies
                }
            }
            var all: [Double] = []
            for try await lane in group { all += lane }
            return all
        }
    }

    private func report(level: Int, latencies: [Double], wall: Double) -> String {
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> Double {
            sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))]
        }
        let fields: [(String, String)] = [
            ("client", "\"natter\""), ("server", "\"\(server)\""), ("concurrency", "\(level)"), ("n", "\(latencies.count)"),
            ("iq_per_s", String(format: "%.1f", Double(latencies.count) / wall)),
            ("p50_ms", String(format: "%.3f", percentile(0.5))), ("p90_ms", String(format: "%.3f", percentile(0.9))),
            ("p99_ms", String(format: "%.3f", percentile(0.99))), ("max_ms", String(format: "%.3f", sorted.last ?? 0)),
            ("errors", "0"), ("wall_s", String(format: "%.3f", wall)), ("tls", "\"\(tls)\""),
            ("sm", streamManagement ? "true" : "false"),
        ]
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }
}
