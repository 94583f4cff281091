import Foundation
import Testing
import Vertebra
import VertebraXML

private let ns = XMLNamespace.vertebraAPI
private let job = "8f14e45fceea167a5a36dedd4bea2543"

@Suite struct ProtocolMessageTests {
    @Test func everyMessageRoundTripsThroughXML() throws {
        let token = try #require(JobToken(job))
        let attempt = try #require(token.newAttempt())
        let argument = XElement("i4", namespace: ns, attributes: [XAttribute("name", "width")], text: "640")
        let messages: [ProtocolMessage] = [
            .op(type: "/image/resize", token: token, scope: .single, arguments: [argument]),
            .op(type: "/image/resize", token: token, scope: nil, arguments: []),
            .accepted(attempt), .ack(attempt), .nack(attempt, reason: "busy"),
            .data(attempt, values: [argument]), .final(attempt, values: []),
            .error(attempt, kind: .fatal, error: VertebraError(.badRequest, "field width: expected <i4>")),
            .error(attempt, kind: .cancel, error: VertebraError(.cancelled, "by alice")), .cancel(attempt),
        ]
        for message in messages {
            let xml = message.element.serializedString()
            #expect(try ProtocolMessage(XElement(xml: xml)) == message, "\(xml)")
        }
    }

    /// An error's code is data: the `code` attribute names it; a 0.4 peer's error, without
    /// one, is read from its message; a code outside the closed set reads as failed.
    @Test func anErrorsCodeTravelsAsAnAttributeAndA04MessageIsStillRead() throws {
        let attempt = try #require(JobToken(job)?.newAttempt())
        let sent = ProtocolMessage.error(attempt, kind: .error, error: VertebraError(.workerLost, "gone: restarted"))
        #expect(sent.element[attribute: "code"] == "worker-lost")
        #expect(sent.element.elements.first?.text == "worker-lost: gone: restarted")
        let cases: [(String, VertebraError)] = [
            ("<error xmlns='\(ns)' token='\(attempt)' type='error' code='deadline-exceeded'><string name='message'>deadline-exceeded: late: very</string></error>",
             VertebraError(.deadlineExceeded, "late: very")),
            ("<error xmlns='\(ns)' token='\(attempt)' type='error' code='bad-result'><string name='message'>no prefix here</string></error>",
             VertebraError(.badResult, "no prefix here")),
            ("<error xmlns='\(ns)' token='\(attempt)' type='fatal'><string name='message'>bad-request: from 0.4</string></error>",
             VertebraError(.badRequest, "from 0.4")),
            ("<error xmlns='\(ns)' token='\(attempt)' type='fatal'><string name='message'>plain words</string></error>",
             VertebraError(.failed, "plain words")),
            ("<error xmlns='\(ns)' token='\(attempt)' type='error' code='from-the-future'><string name='message'>from-the-future: x</string></error>",
             VertebraError(.failed, "x")),
            ("<error xmlns='\(ns)' token='\(attempt)' type='cancel' code='failed'><string name='message'>cancelled: by bob</string></error>",
             VertebraError(.cancelled, "by bob")),
        ]
        for (xml, expected) in cases {
            guard case .error(_, _, let error) = try ProtocolMessage(XElement(xml: xml)) else {
                Issue.record("not an error: \(xml)")
                continue
            }
            #expect(error == expected, "\(xml)")
        }
    }

    @Test func tokensAreJobAndAttempt() throws {
        let token = try #require(JobToken.newJob())
        #expect(token.job.count == 32 && token.attempt == nil)
        let attempt = try #require(token.newAttempt())
        #expect(attempt.job == token.job && attempt.attempt?.count == 32)
        #expect(attempt.description == "\(token.job):\(attempt.attempt ?? "")")
        #expect(attempt.jobOnly == token)
        for bad in ["", ":", "a:", "a:b:c", "has space", String(repeating: "a", count: 65)] {
            #expect(JobToken(bad) == nil, "\(bad)")
        }
    }

    /// A job token starts with the second it was made (modulo 2^16, so journal indexes keyed by
    /// token take new jobs in one place), then 28 random hex digits: tokens of one second share
    /// only that prefix, and those 12 digits `vertebra jobs` shows keep 8 random ones.
    @Test func jobTokensStartWithTheirSecondAndAreOtherwiseRandom() throws {
        let when = Date(timeIntervalSince1970: 1_796_000_123.9)
        let tokens = try (0..<64).map { _ in try #require(JobToken.newJob(now: when)).job }
        let prefix = String(UInt16(1_796_000_123 & 0xFFFF), radix: 16)
        #expect(tokens.allSatisfy { $0.count == 32 && $0.hasPrefix(String(repeating: "0", count: 4 - prefix.count) + prefix) })
        #expect(tokens.allSatisfy { $0.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) } })
        #expect(Set(tokens.map { $0.prefix(12) }).count == tokens.count, "the shown 12 digits differ within one second")
        let early = try #require(JobToken.newJob(now: Date(timeIntervalSince1970: 65_536 + 5))).job
        #expect(early.hasPrefix("0005"), "the second wraps at 2^16 and is padded to 4 digits: \(early)")
        #expect(JobToken(early)?.job == early)
    }

    @Test func malformedElementsAreExplained() throws {
        let cases: [(String, String)] = [
            ("<op xmlns='\(ns)' type='/x'/>", "no token"),
            ("<op xmlns='\(ns)' type='/x' token='bad token'/>", "token 'bad token'"),
            ("<op xmlns='\(ns)' type='/x' token='\(job)' scope='some'/>", "scope 'some'"),
            ("<error xmlns='\(ns)' token='\(job)' type='oops'/>", "error type 'oops'"),
            ("<launch xmlns='\(ns)' token='\(job)'/>", "not a Vertebra protocol element"),
            ("<op xmlns='urn:other' type='/x' token='\(job)'/>", "not in the Vertebra namespace"),
            ("<op xmlns='\(ns)' type='/' token='\(job)'/>", "not an operation path"),
        ]
        for (xml, fragment) in cases {
            let error = #expect(throws: ProtocolError.self) { try ProtocolMessage(XElement(xml: xml)) }
            #expect(error?.message.contains(fragment) == true, "\(xml): \(String(describing: error))")
            #expect(error?.stanzaError.condition == .badRequest)
        }
    }

    @Test func emittedMessagesValidateAgainstTheSchema() throws {
        let token = try #require(JobToken(job)?.newAttempt())
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for message in [ProtocolMessage.ack(token), .nack(token, reason: "busy"), .error(token, kind: .cancel, error: VertebraError(.cancelled, "stopped")),
            .error(token, kind: .error, error: VertebraError(.workerLost, "restarted")), .cancel(token)] {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("vertebra-msg-\(UUID().uuidString).xml")
            try Data(message.element.serializedString().utf8).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["xmllint", "--noout", "--schema", root.appendingPathComponent("Schemas/vertebra-api.xsd").path, file.path]
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "\(message)")
        }
    }
}

struct Resize: VertebraOperation {
    static let path: Resource = "/image/resize"
    static let isRetryable = true
    struct Result: Codable, Sendable { var output: Resource }
    var source: Resource
    var width: Int
}

struct Misdeclared: VertebraOperation {
    static let path: Resource = "/security/authorize"
    typealias Result = String
}

struct Pathless: VertebraOperation {
    static let path: Resource = "/"
    typealias Result = String
}

@Suite struct OperationDeclarationTests {
    @Test func aWellDeclaredOperationPasses() throws {
        try Resize.validateDeclaration()
        #expect(Resize.isRetryable && Resize.defaultDeadline == nil)
    }

    @Test func misdeclaredOperationsAreCaughtWithAClearError() {
        let reserved = #expect(throws: ProtocolError.self) { try Misdeclared.validateDeclaration() }
        #expect(reserved?.message.contains("reserved") == true)
        let empty = #expect(throws: ProtocolError.self) { try Pathless.validateDeclaration() }
        #expect(empty?.message.contains("path is empty") == true)
    }
}
