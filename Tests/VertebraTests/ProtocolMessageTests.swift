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
            .error(attempt, kind: .fatal, message: "field width: expected <i4>"), .cancel(attempt),
        ]
        for message in messages {
            let xml = message.element.serializedString()
            #expect(try ProtocolMessage(XElement(xml: xml)) == message, "\(xml)")
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
            #expect(error?.stanzaError.condition == "bad-request")
        }
    }

    @Test func emittedMessagesValidateAgainstTheSchema() throws {
        let token = try #require(JobToken(job)?.newAttempt())
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for message in [ProtocolMessage.ack(token), .nack(token, reason: "busy"), .error(token, kind: .cancel, message: "stopped"), .cancel(token)] {
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
