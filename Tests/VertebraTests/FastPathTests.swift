import Testing
import Vertebra
import VertebraXML

/// What the coordinator accepts inside an answer to an op (``FastPath``), and what it refuses.
@Suite struct FastPathMessageTests {
    let attempt = JobToken("8f14e45fceea167a5a36dedd4bea2543:b1")!
    let other = JobToken("8f14e45fceea167a5a36dedd4bea2543:b2")!

    func value(_ text: String) -> XElement {
        XElement("string", namespace: XMLNamespace.vertebraAPI, attributes: [XAttribute("name", "response")], text: text)
    }

    @Test func aClassicAnswerCarriesNothing() throws {
        #expect(try FastPath.inlineMessages(in: ProtocolMessage.accepted(attempt).element, attempt: attempt).isEmpty)
    }

    @Test func chunksAndTheEndComeBackInOrder() throws {
        let sent: [ProtocolMessage] = [.data(attempt, values: [value("a")]), .data(attempt, values: [value("b")]), .final(attempt, values: [])]
        let answer = FastPath.answer(attempt, inline: sent)
        #expect(try FastPath.inlineMessages(in: answer, attempt: attempt) == sent)
        let failed: [ProtocolMessage] = [.error(attempt, kind: .fatal, error: VertebraError(.failed, "no <way>"))]
        #expect(try FastPath.inlineMessages(in: FastPath.answer(attempt, inline: failed), attempt: attempt) == failed)
    }

    @Test(arguments: [
        ("no end", [ProtocolMessage.data(JobToken("8f14e45fceea167a5a36dedd4bea2543:b1")!, values: [])]),
        ("end before data", [.final(JobToken("8f14e45fceea167a5a36dedd4bea2543:b1")!, values: []), .data(JobToken("8f14e45fceea167a5a36dedd4bea2543:b1")!, values: [])]),
        ("another attempt", [.final(JobToken("8f14e45fceea167a5a36dedd4bea2543:b2")!, values: [])]),
        ("an ack inside", [.ack(JobToken("8f14e45fceea167a5a36dedd4bea2543:b1")!), .final(JobToken("8f14e45fceea167a5a36dedd4bea2543:b1")!, values: [])]),
    ])
    func aBrokenInlineConversationIsRefused(case name: String, messages: [ProtocolMessage]) {
        let answer = FastPath.answer(attempt, inline: messages)
        #expect(throws: ProtocolError.self, "\(name)") { try FastPath.inlineMessages(in: answer, attempt: attempt) }
    }

    @Test func tooManyMessagesAreRefused() {
        let chunks = Array(repeating: ProtocolMessage.data(attempt, values: []), count: FastPath.maxInlineMessages)
        let answer = FastPath.answer(attempt, inline: chunks + [.final(attempt, values: [])])
        #expect(throws: ProtocolError.self) { try FastPath.inlineMessages(in: answer, attempt: attempt) }
    }

    @Test func theMarkerIsNotAnArgument() throws {
        let op = ProtocolMessage.op(type: "/vertebra/echo", token: JobToken("8f14e45fceea167a5a36dedd4bea2543")!, scope: .single, arguments: [value("x")])
            .element.appending(FastPath.request)
        #expect(FastPath.isRequested(in: op))
        guard case .op(_, _, _, let arguments) = try ProtocolMessage(op) else { Issue.record("not an op"); return }
        #expect(arguments == [value("x")])
        #expect(!FastPath.isRequested(in: ProtocolMessage.accepted(attempt).element))
    }
}
