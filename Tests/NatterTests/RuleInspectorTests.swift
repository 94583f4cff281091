import Foundation
import Testing
import VertebraXML

@testable import Natter

private func rules(_ body: String, seed: UInt64 = 1) throws -> RuleInspector {
    try RuleInspector(document: XElement(xml: "<inspector xmlns='urn:vertebra:inspector:1' seed='\(seed)'>\(body)</inspector>"))
}

private let op = XElement(
    "iq", namespace: XMLNamespace.client, attributes: [XAttribute("type", "set"), XAttribute("id", "1"), XAttribute("to", "worker@localhost/a")],
    children: [.element(XElement("op", namespace: XMLNamespace.vertebraAPI))])

@Suite struct RuleInspectorTests {
    @Test func theFirstMatchingRuleDecides() throws {
        let inspector = try rules("""
            <rule direction='inbound'><drop/></rule>
            <rule kind='iq' type='set' payload='op' payload-namespace='\(XMLNamespace.vertebraAPI)' peer='worker@localhost'><repeat times='2'/></rule>
            <rule><delay min-ms='5' max-ms='5'/></rule>
            """)
        let peer = JID("worker@localhost/a")
        #expect(inspector.inspect(op, direction: .outbound, peer: peer) == .repeat(times: 2))
        #expect(inspector.inspect(op, direction: .inbound, peer: peer) == .drop)
        #expect(inspector.inspect(op, direction: .outbound, peer: JID("other@localhost/a")) == .delay(.milliseconds(5)))
        #expect(inspector.decisions == ["repeat": 1, "drop": 1, "delay": 1])
    }

    @Test func probabilitiesAreReproducibleWithTheSameSeed() throws {
        let body = "<rule><drop probability='0.3'/><repeat probability='0.5'/></rule>"
        let first = try rules(body, seed: 99)
        let second = try rules(body, seed: 99)
        let verdicts = (0..<200).map { _ in first.inspect(op, direction: .outbound, peer: nil) }
        #expect(verdicts == (0..<200).map { _ in second.inspect(op, direction: .outbound, peer: nil) })
        let drops = verdicts.filter { $0 == .drop }.count
        #expect((30...90).contains(drops), "about 30 % of 200 should drop, got \(drops)")
        #expect(verdicts.contains(.route))
    }

    @Test func replaceSendsTheGivenElement() throws {
        let inspector = try rules("<rule><replace><presence xmlns='jabber:client' type='unavailable'/></replace></rule>")
        guard case .replace(let element) = inspector.inspect(op, direction: .outbound, peer: nil) else {
            Issue.record("expected replace")
            return
        }
        #expect(element.name == "presence" && element[attribute: "type"] == "unavailable")
    }

    @Test func badRuleFilesGetClearErrors() throws {
        let cases: [(String, String)] = [
            ("<rule><explode/></rule>", "unknown behaviour <explode>"),
            ("<rule/>", "has no behaviour"),
            ("<rule direction='sideways'><drop/></rule>", "direction 'sideways'"),
            ("<rule><drop probability='1.5'/></rule>", "probability '1.5'"),
            ("<rule><delay min-ms='9' max-ms='1'/></rule>", "min-ms 9 is above max-ms 1"),
            ("<rule peer='@@'><drop/></rule>", "peer '@@' is not a JID"),
            ("<rule kind='chat'><drop/></rule>", "kind 'chat'"),
        ]
        for (body, message) in cases {
            let error = #expect(throws: NatterError.self) { try rules(body) }
            #expect(error?.message.contains(message) == true, "\(body): \(String(describing: error))")
        }
        let missing = #expect(throws: NatterError.self) { try RuleInspector(contentsOf: "/nonexistent/rules.xml") }
        #expect(missing?.message.contains("/nonexistent/rules.xml") == true)
    }

    @Test func theExampleRuleFileValidatesAndLoads() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let example = root.appendingPathComponent("Schemas/examples/inspector-rules.xml").path
        let inspector = try RuleInspector(contentsOf: example)
        #expect(inspector.rules.count == 2)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["xmllint", "--noout", "--schema", root.appendingPathComponent("Schemas/inspector-rules.xsd").path, example]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }
}
