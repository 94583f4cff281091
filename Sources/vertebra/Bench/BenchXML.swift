import ArgumentParser
import Foundation
import VertebraXML

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// `vertebra bench xml`: streaming parse and Codable mapping, beside Foundation in the same run.
struct BenchXML: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "xml",
        abstract: "XML parse and Codable mapping speed, beside Foundation's XMLParser and JSON coders.",
        discussion: """
            Parses a stream of realistic Vertebra IQ stanzas (ops with nested typed values) with \
            the streaming expat parser, fed in socket-sized chunks, and with Foundation's \
            XMLParser building the same element tree from the same bytes. Then maps a realistic \
            operation type to and from typed XML, beside JSONEncoder/JSONDecoder on the same \
            value. Each figure is the best of --rounds runs. Build with `-c release`.
            """)

    @Option(parsing: .unconditional, help: "Stanzas in the generated stream.")
    var stanzas = 20_000

    @Option(parsing: .unconditional, help: "Bytes handed to the streaming parser per feed (a socket read).")
    var chunk = 4096

    @Option(parsing: .unconditional, help: "Runs of each measurement; the best is reported.")
    var rounds = 5

    @Option(parsing: .unconditional, help: "Operations encoded and decoded per Codable round.")
    var operations = 50_000

    @Option(name: .customLong("stream-mib"), parsing: .unconditional, help: "MiB streamed through one parser to show memory stays bounded (0 skips).")
    var streamMiB = 256

    @Flag(help: .hidden)
    var profileParser = false

    func validate() throws {
        guard stanzas > 0, chunk > 0, rounds > 0, operations > 0, streamMiB >= 0 else {
            throw ValidationError("--stanzas, --chunk, --rounds and --operations must be positive.")
        }
        // Bounds that keep the run in memory and its sizes from overflowing.
        guard stanzas <= 10_000_000, chunk <= 64 << 20, rounds <= 1_000, operations <= 10_000_000, streamMiB <= 1 << 20 else {
            throw ValidationError("at most --stanzas 10000000, --chunk 67108864, --rounds 1000, --operations 10000000, --stream-mib 1048576.")
        }
    }

    func run() async throws {
        #if DEBUG
            print("warning: this is a debug build; numbers mean little. Use: swift run -c release vertebra bench xml\n")
        #endif
        let stream = SampleStream.make(stanzas: stanzas)
        if profileParser {  // only our parser, for perf record
            for _ in 0..<rounds { _ = try ParseRunner.vertebra(stream, chunk: chunk) }
            return
        }
        print("Stream: \(stanzas) IQ stanzas, \(stream.count) bytes (\(stream.count / stanzas) bytes/stanza), chunk \(chunk) B, best of \(rounds)")
        try benchParsing(stream, documents: SampleStream.documents(stanzas: stanzas))
        try benchCodable()
        if streamMiB > 0 { try benchBoundedMemory() }
    }

    // MARK: Parsing

    /// `documents` holds the same stanzas for Foundation, in streams of at most 5,000 stanzas:
    /// XMLParser (libxml2) refuses documents over 10 MB.
    private func benchParsing(_ stream: [UInt8], documents: [[UInt8]]) throws {
        var ours = Duration.seconds(1_000)
        var foundation = Duration.seconds(1_000)
        for _ in 0..<rounds {
            let (oursTime, oursCount) = try measure { try ParseRunner.vertebra(stream, chunk: chunk) }
            let (foundationTime, foundationCount) = try measure { try documents.reduce(0) { $0 + (try ParseRunner.foundation($1)) } }
            guard oursCount == stanzas, foundationCount == stanzas else {
                throw ValidationError("parsers disagree: \(oursCount) vs \(foundationCount) stanzas")
            }
            ours = min(ours, oursTime)
            foundation = min(foundation, foundationTime)
        }
        let table = Table(header: ["parser", "MB/s", "stanzas/s", "vs Foundation"])
        table.add(["VertebraXML (expat, streaming)", mbps(stream.count, ours), rate(stanzas, ours), ratio(foundation, ours)])
        table.add(["Foundation XMLParser (same tree)", mbps(stream.count, foundation), rate(stanzas, foundation), "1.00x"])
        print("\nStreaming parse → XElement trees")
        table.print()
    }

    // MARK: Codable

    private func benchCodable() throws {
        let operation = ResizeOperation.sample(0)
        let fields = try TypedValueEncoder().encodeFields(operation)
        let op = XElement("op", namespace: XMLNamespace.vertebraAPI, children: fields.map { .element($0) })
        let json = try JSONEncoder().encode(operation)
        let decoder = TypedValueDecoder()
        let encoder = TypedValueEncoder()
        var best = [Duration](repeating: .seconds(1_000), count: 4)
        let count = operations
        for _ in 0..<rounds {
            let times = try [
                measure {
                    var sum = 0
                    for _ in 0..<count { sum += try decoder.decodeFields(ResizeOperation.self, from: op.elements).size.width }
                    return sum
                }.0,
                measure {
                    var sum = 0
                    for _ in 0..<count { sum += try JSONDecoder().decode(ResizeOperation.self, from: json).size.width }
                    return sum
                }.0,
                measure {
                    var sum = 0
                    for index in 0..<count {
                        let fields = try encoder.encodeFields(ResizeOperation.sample(index))
                        sum += XElement("op", children: fields.map { .element($0) }).serializedBytes().count
                    }
                    return sum
                }.0,
                measure {
                    var sum = 0
                    for index in 0..<count { sum += try JSONEncoder().encode(ResizeOperation.sample(index)).count }
                    return sum
                }.0,
            ]
            for index in best.indices { best[index] = min(best[index], times[index]) }
        }
        let table = Table(header: ["mapping", "ops/s", "µs/op", "vs JSON"])
        table.add(["decode typed XML → ResizeOperation", rate(operations, best[0]), micros(best[0], operations), ratio(best[1], best[0])])
        table.add(["decode JSON → ResizeOperation (JSONDecoder)", rate(operations, best[1]), micros(best[1], operations), "1.00x"])
        table.add(["encode ResizeOperation → typed XML bytes", rate(operations, best[2]), micros(best[2], operations), ratio(best[3], best[2])])
        table.add(["encode ResizeOperation → JSON (JSONEncoder)", rate(operations, best[3]), micros(best[3], operations), "1.00x"])
        print("\nCodable mapping of a realistic operation (\(fields.count) fields, nested struct and list)")
        table.print()
    }

    // MARK: Memory

    private func benchBoundedMemory() throws {
        let parser = XMLStreamParser()
        let header = Array("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>".utf8)
        let body = SampleStream.stanzas(count: 200)
        _ = try parser.feed(header)
        let before = ResidentMemory.peakKiB()
        var fed = 0
        var seen = 0
        while fed < streamMiB << 20 {
            var offset = 0
            while offset < body.count {
                let end = min(body.count, offset + chunk)
                seen += try body[offset..<end].withUnsafeBytes { try parser.feed($0).count }
                offset = end
            }
            fed += body.count
        }
        let after = ResidentMemory.peakKiB()
        print("\nBounded memory: \(fed >> 20) MiB streamed through one parser (\(seen) stanzas); peak RSS \(before / 1024) MiB before, \(after / 1024) MiB after")
    }
}

// MARK: - Sample data

/// The operation the benchmark maps: an image resize with nested typed values.
struct ResizeOperation: Codable {
    struct Size: Codable {
        var width: Int
        var height: Int
    }
    var source: Resource
    var size: Size
    var formats: [String]
    var keepMetadata: Bool
    var quality: Double
    var note: String
    var submitted: Date
    var tags: [String: String]

    static func sample(_ index: Int) -> ResizeOperation {
        ResizeOperation(
            source: Resource("/images/2026/11/photo-\(index).jpg"),
            size: Size(width: 640 + index % 7, height: 480),
            formats: ["webp", "jpeg"], keepMetadata: index % 2 == 0, quality: 0.85,
            note: "Customer <vip> & friends", submitted: Date(timeIntervalSince1970: 1_790_000_000),
            tags: ["owner": "alice", "cluster": "rd00"])
    }
}

enum SampleStream {
    static func make(stanzas count: Int, from first: Int = 0) -> [UInt8] {
        let header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='s1' version='1.0'>"
        return Array(header.utf8) + stanzas(count: count, from: first) + Array("</stream:stream>".utf8)
    }

    static func documents(stanzas count: Int) -> [[UInt8]] {
        stride(from: 0, to: count, by: 5_000).map { start in make(stanzas: min(5_000, count - start), from: start) }
    }

    static func stanzas(count: Int, from first: Int = 0) -> [UInt8] {
        var bytes: [UInt8] = []
        for index in first..<(first + count) {
            let token = String(repeating: String(index % 16, radix: 16), count: 32)
            bytes += Array("""
                <iq type='set' id='q\(index)' to='worker@localhost/agent-\(index % 4)' from='coordinator@localhost/main'>\
                <op xmlns='http://xmlschema.engineyard.com/agent/api' type='/image/resize' token='\(token)' scope='single'>\
                <res name='source'>/images/2026/11/photo-\(index).jpg</res>\
                <struct name='size'><i4 name='width'>\(640 + index % 7)</i4><i4 name='height'>480</i4></struct>\
                <list name='formats'><string>webp</string><string>jpeg</string></list>\
                <boolean name='keepMetadata'>1</boolean><double name='quality'>0.85</double>\
                <string name='note'>Customer &lt;vip&gt; &amp; friends</string>\
                <dateTime.iso8601 name='submitted'>2026-09-21T14:13:20Z</dateTime.iso8601>\
                </op></iq>
                """.utf8)
        }
        return bytes
    }
}
