import Foundation
import Natter
import VertebraXML

/// Every reader of peer input, as the fuzz harness (`Fuzz/`, `scripts/fuzz.sh`) and the corpus
/// regression tests drive them.
///
/// Each target takes raw bytes and returns the invariants it saw broken (a message that does
/// not read back as itself, say); thrown errors are the readers' normal answers to bad input and
/// are not violations. A crash or a trap is a finding too.
@_spi(Fuzzing) public enum WireReaders {
    /// The fuzz targets, by name.
    public static let targets: [String: @Sendable ([UInt8]) -> [String]] = [
        "stream": StreamTarget.run, "typed": TypedTarget.run, "protocol": ProtocolTarget.run,
    ]

    /// Runs the protocol readers over one element (and is what the `protocol` target runs).
    public static func exercise(_ element: XElement) -> [String] {
        var violations: [String] = []
        if let message = try? ProtocolMessage(element) {
            let again = try? ProtocolMessage(message.element)
            if again != message { violations.append("\(message) reads back as \(String(describing: again))") }
            _ = try? FastPath.inlineMessages(in: element, attempt: message.token)
        }
        _ = try? DispatchExtension.parse(element)
        _ = TraceCarrier(in: element)
        _ = DispatchExtension.followedJob(in: element)
        _ = try? Batch.ops(in: element)
        _ = Batch.tokens(in: element, count: element.elements.count)
        _ = FastPath.isRequested(in: element)
        _ = JobProgress(chunk: element.elements)
        let decoder = TypedValueDecoder()
        _ = try? decoder.decodeFields(Advertisement.self, from: element.elements)
        _ = try? decoder.decodeFields(DiscoverRequest.self, from: element.elements)
        _ = try? decoder.decodeFields(AuthorizeRequest.self, from: element.elements)
        _ = try? decoder.decodeFields(WorkerRoster.self, from: element.elements)
        _ = try? decoder.decodeFields(JobActionRequest.self, from: element.elements)
        _ = try? decoder.decodeFields(JobActionResult.self, from: element.elements)
        for kind in ProtocolMessage.ErrorKind.allCases { _ = VertebraError.parse(element.text, kind: kind) }
        return violations
    }
}

/// Generous limits for parsing again what we serialised (escaping may have grown it).
private let reparseLimits = XMLParserLimits(maxStanzaBytes: 64 << 20, maxDepth: 128, maxAttributes: 128, allowsComments: false)

/// What we serialise must parse back to the same element.
private func roundTrip(_ element: XElement) -> [String] {
    let bytes = element.serializedBytes()
    guard let again = try? XElement(parsing: bytes, limits: reparseLimits) else {
        return ["<\(element.name)> serialised as text that does not parse: \(String(decoding: bytes.prefix(300), as: UTF8.self))"]
    }
    return again == element ? [] : ["<\(element.name)> does not read back as itself: \(String(decoding: bytes.prefix(300), as: UTF8.self))"]
}

/// The stream parser, fed in two pieces split where the first byte says; every stanza must
/// survive a serialise-and-parse round trip.
private enum StreamTarget {
    static func run(_ bytes: [UInt8]) -> [String] {
        guard let first = bytes.first else { return [] }
        let body = Array(bytes.dropFirst())
        let split = body.isEmpty ? 0 : Int(first) % (body.count + 1)
        let parser = XMLStreamParser(limits: XMLParserLimits(maxStanzaBytes: 64 << 10, maxDepth: 32, maxAttributes: 32))
        var violations: [String] = []
        for piece in [Array(body[..<split]), Array(body[split...])] {
            guard let events = try? parser.feed(piece) else { return violations }
            for case .stanza(let element) in events { violations += roundTrip(element) }
        }
        return violations
    }
}

/// The typed-value decoder, into a type with a field of every kind; what decodes must encode
/// and decode to the same value.
private enum TypedTarget {
    struct Inner: Codable, Equatable {
        var name: String
        var values: [Int64]?
    }

    struct Everything: Codable {
        var i4: Int32?
        var i8: Int64?
        var int: Int?
        var small: UInt8?
        var text: String?
        var flag: Bool?
        var real: Double?
        var single: Float?
        var when: Date?
        var blob: Data?
        var path: Resource?
        var list: [String]?
        var inner: Inner?
        var inners: [Inner]?
    }

    static func run(_ bytes: [UInt8]) -> [String] {
        guard let root = try? XElement(parsing: bytes, limits: XMLParserLimits(maxStanzaBytes: 64 << 10, maxDepth: 32)) else { return [] }
        let decoder = TypedValueDecoder()
        _ = try? decoder.decode(Inner.self, from: root)
        _ = try? decoder.decode([Double].self, from: root)
        _ = try? decoder.decode(Date.self, from: root)
        guard let value = try? decoder.decodeFields(Everything.self, from: root.elements) else { return [] }
        let encoder = TypedValueEncoder()
        guard let fields = try? encoder.encodeFields(value) else { return ["a decoded value does not encode: \(value)"] }
        guard let again = try? decoder.decodeFields(Everything.self, from: fields) else {
            return ["an encoded value does not decode: \(fields.map { $0.serializedString() })"]
        }
        guard let fieldsAgain = try? encoder.encodeFields(again), fieldsAgain == fields else {
            return ["a value changes on a round trip: \(value) became \(again)"]
        }
        return fields.flatMap(roundTrip)
    }
}

/// Protocol messages and service payloads, read as an IQ's child would be.
private enum ProtocolTarget {
    static func run(_ bytes: [UInt8]) -> [String] {
        guard let root = try? XElement(parsing: bytes, limits: XMLParserLimits(maxStanzaBytes: 64 << 10, maxDepth: 32)) else { return [] }
        return WireReaders.exercise(root) + (root.elements.first.map(WireReaders.exercise) ?? [])
    }
}
