import Foundation
import NIOConcurrencyHelpers
import VertebraXML

/// A ``StanzaInspector`` driven by a rule file (`Schemas/inspector-rules.xsd`): match stanzas by
/// direction, kind, type, peer and payload, then drop, delay, repeat or replace them with given
/// probabilities, from a seeded random generator so a chaos run can be reproduced.
public final class RuleInspector: StanzaInspector {
    /// The rule file namespace.
    public static let namespace = "urn:vertebra:inspector:1"

    struct Rule: Sendable {
        var direction: StanzaDirection?
        var kind: StanzaKind?
        var type: String?
        var peer: JID?
        var payload: String?
        var payloadNamespace: String?
        var behaviours: [Behaviour]
    }

    enum Action: Sendable {
        case drop
        case delay(minimum: Int, maximum: Int)
        case `repeat`(Int)
        case replace(XElement)
    }

    struct Behaviour: Sendable {
        let probability: Double
        let action: Action
    }

    private struct State {
        var random: SplitMix64
        var decisions: [String: Int] = [:]
    }

    let rules: [Rule]
    private let state: NIOLockedValueBox<State>

    /// Reads rules from a file; the error names the file and what is wrong.
    public convenience init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NatterError(.configuration, "inspector rule file \(path) does not exist or is not readable")
        }
        do {
            try self.init(document: try XElement(parsing: data))
        } catch let error as XMLParseError {
            throw NatterError(.configuration, "inspector rule file \(path): \(error)")
        } catch let error as NatterError {
            throw NatterError(.configuration, "inspector rule file \(path): \(error.message)")
        }
    }

    /// Reads rules from a parsed `<inspector>` document; `seed` overrides the file's seed.
    public init(document: XElement, seed: UInt64? = nil) throws {
        guard document.name == "inspector", document.namespace == RuleInspector.namespace else {
            throw NatterError(.configuration, "the root element must be <inspector xmlns='\(RuleInspector.namespace)'>")
        }
        let fileSeed = try document[attribute: "seed"].map { text -> UInt64 in
            guard let value = UInt64(text) else { throw NatterError(.configuration, "seed '\(text)' is not a whole number") }
            return value
        }
        rules = try document.elements.enumerated().map { try RuleInspector.rule($1, number: $0 + 1) }
        state = NIOLockedValueBox(State(random: SplitMix64(seed: seed ?? fileSeed ?? 0)))
    }

    /// How often each verdict was given so far (`route`, `drop`, `delay`, `repeat`, `replace`).
    public var decisions: [String: Int] { state.withLockedValue { $0.decisions } }

    public func inspect(_ stanza: XElement, direction: StanzaDirection, peer: JID?) -> InspectorVerdict {
        guard let rule = rules.first(where: { $0.matches(stanza, direction: direction, peer: peer) }) else {
            return record(.route)
        }
        return state.withLockedValue { state in
            for behaviour in rule.behaviours where state.random.nextUnit() < behaviour.probability {
                let verdict = behaviour.action.verdict(using: &state.random)
                state.decisions[verdict.name, default: 0] += 1
                return verdict
            }
            state.decisions["route", default: 0] += 1
            return .route
        }
    }

    private func record(_ verdict: InspectorVerdict) -> InspectorVerdict {
        state.withLockedValue { $0.decisions[verdict.name, default: 0] += 1 }
        return verdict
    }

    // MARK: Parsing

    private static func rule(_ element: XElement, number: Int) throws -> Rule {
        func fail(_ message: String) -> NatterError {
            NatterError(.configuration, "rule \(number): \(message)")
        }
        guard element.name == "rule", element.namespace == namespace else { throw fail("expected <rule>, found <\(element.name)>") }
        var rule = Rule(behaviours: [])
        switch element[attribute: "direction"] ?? "both" {
        case "both": rule.direction = nil
        case let text: guard let direction = StanzaDirection(rawValue: text) else { throw fail("direction '\(text)' is not inbound, outbound or both") }
            rule.direction = direction
        }
        if let text = element[attribute: "kind"] {
            guard let kind = StanzaKind(rawValue: text) else { throw fail("kind '\(text)' is not iq, message or presence") }
            rule.kind = kind
        }
        if let text = element[attribute: "peer"] {
            guard let peer = JID(text) else { throw fail("peer '\(text)' is not a JID") }
            rule.peer = peer
        }
        rule.type = element[attribute: "type"]
        rule.payload = element[attribute: "payload"]
        rule.payloadNamespace = element[attribute: "payload-namespace"]
        rule.behaviours = try element.elements.map { try behaviour($0, fail: fail) }
        guard !rule.behaviours.isEmpty else { throw fail("has no behaviour (drop, delay, repeat or replace)") }
        return rule
    }

    private static func behaviour(_ element: XElement, fail: (String) -> NatterError) throws -> Behaviour {
        let probabilityText = element[attribute: "probability"] ?? "1"
        guard let probability = Double(probabilityText), (0...1).contains(probability) else {
            throw fail("probability '\(probabilityText)' is not between 0 and 1")
        }
        func integer(_ name: String, default value: Int? = nil) throws -> Int {
            guard let text = element[attribute: name] ?? value.map(String.init), let number = Int(text), number >= 0 else {
                throw fail("<\(element.name)> needs \(name) as a non-negative whole number")
            }
            return number
        }
        switch element.name {
        case "drop": return Behaviour(probability: probability, action: .drop)
        case "delay":
            let minimum = try integer("min-ms")
            let maximum = try integer("max-ms")
            guard minimum <= maximum else { throw fail("delay min-ms \(minimum) is above max-ms \(maximum)") }
            return Behaviour(probability: probability, action: .delay(minimum: minimum, maximum: maximum))
        case "repeat":
            let times = try integer("times", default: 1)
            guard (1...100).contains(times) else { throw fail("repeat times must be 1...100") }
            return Behaviour(probability: probability, action: .repeat(times))
        case "replace":
            guard let replacement = element.firstElement else { throw fail("<replace> needs the element to send instead") }
            return Behaviour(probability: probability, action: .replace(replacement))
        default:
            throw fail("unknown behaviour <\(element.name)>")
        }
    }
}

extension RuleInspector.Rule {
    func matches(_ stanza: XElement, direction: StanzaDirection, peer: JID?) -> Bool {
        if let wanted = self.direction, wanted != direction { return false }
        if let kind, StanzaKind(stanza) != kind { return false }
        if let type, stanza[attribute: "type"] != type { return false }
        if let wanted = self.peer {
            guard let peer else { return false }
            if wanted.isFull ? peer != wanted : peer.bare != wanted { return false }
        }
        let child = stanza.firstElement
        if let payload, child?.name != payload { return false }
        if let payloadNamespace, child?.namespace != payloadNamespace { return false }
        return true
    }
}

extension RuleInspector.Action {
    func verdict(using random: inout SplitMix64) -> InspectorVerdict {
        switch self {
        case .drop: return .drop
        case .delay(let minimum, let maximum):
            return .delay(.milliseconds(minimum + Int(random.next() % UInt64(maximum - minimum + 1))))
        case .repeat(let times): return .repeat(times: times)
        case .replace(let element): return .replace(element)
        }
    }
}

extension InspectorVerdict {
    var name: String {
        switch self {
        case .route: "route"
        case .drop: "drop"
        case .replace: "replace"
        case .delay: "delay"
        case .repeat: "repeat"
        }
    }
}

/// SplitMix64: a small, fast, seedable generator for reproducible runs (not for cryptography).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// Makes a generator; the same seed gives the same sequence.
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform value in `0..<1`.
    public mutating func nextUnit() -> Double {
        Double(next() >> 11) / Double(1 << 53)
    }
}
