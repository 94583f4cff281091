import Testing
import VertebraXML

@testable import Vertebra

/// The worker's fast-path answer, driven without clock, sockets or Tasks.
@Suite struct FastAnswerTests {
    let attempt = JobToken("0123456789abcdef0123456789abcdef:fedcba98")

    func value(_ text: String) -> [XElement] {
        [XElement("string", namespace: ProtocolMessage.namespace, attributes: [XAttribute("name", "v")], text: text)]
    }

    /// The messages as short labels: `ack`, `data(TEXT)`, `final`.
    func labels(_ messages: [ProtocolMessage]) -> [String] {
        messages.map { message in
            switch message {
            case .ack: "ack"
            case .data(_, let values): "data(\(values.map(\.text).joined()))"
            case .final: "final"
            default: "other"
            }
        }
    }

    func label(_ ending: FastAnswer.Ending) -> String {
        switch ending {
        case .inAnswer: "in answer"
        case .classic(let first): "classic \(labels(first))"
        }
    }

    func makeAnswer() throws -> FastAnswer {
        FastAnswer(ack: .ack(try #require(attempt)))
    }

    @Test func aHandlerThatEndsWithinTheBudgetAnswersWithEverythingInline() throws {
        let attempt = try #require(attempt)
        var answer = try makeAnswer()
        #expect(answer.outcome == nil)
        #expect(try answer.chunk(value("a")).isEmpty, "collected, not sent")
        #expect(answer.progress(value("half")).isEmpty, "progress is dropped while collecting")
        #expect(try answer.chunk(value("b")).isEmpty)
        #expect(label(answer.end(.final(attempt, values: []))) == "in answer")
        guard case .inline(let end, let chunks)? = answer.outcome else { Issue.record("not inline"); return }
        #expect(labels([end]) == ["final"])
        #expect(chunks.map { $0.map(\.text).joined() } == ["a", "b"])
        // The budget running out afterwards changes nothing; nothing may follow the end.
        #expect(answer.budgetRanOut() == nil)
        #expect(throws: FastAnswer.YieldedAfterEnd.self) { try answer.chunk(value("late")) }
        #expect(answer.flush().isEmpty)
    }

    @Test func aHandlerPastTheBudgetTurnsClassicWithTheAckAndCollectedChunksFirst() throws {
        let attempt = try #require(attempt)
        var answer = try makeAnswer()
        _ = try answer.chunk(value("a"))
        guard case .classic? = answer.budgetRanOut() else { Issue.record("not classic"); return }
        #expect(answer.budgetRanOut() == nil, "decided once")
        // The next chunk goes out after the ack and what was collected, in order.
        #expect(labels(try answer.chunk(value("b"))) == ["ack", "data(a)", "data(b)"])
        #expect(labels(answer.progress(value("p"))) == ["data(p)"])
        #expect(answer.flush().isEmpty, "the ack goes out once")
        #expect(label(answer.end(.final(attempt, values: []))) == "classic []")
    }

    @Test func aClassicAttemptThatEndsBeforeSendingAnythingSendsTheAckBeforeItsEnd() throws {
        let attempt = try #require(attempt)
        var answer = try makeAnswer()
        _ = try answer.chunk(value("a"))
        _ = answer.budgetRanOut()
        guard case .classic(let first) = answer.end(.final(attempt, values: [])) else { Issue.record("not classic"); return }
        #expect(labels(first) == ["ack", "data(a)"])
        // The answer to the op flushes too: a second flush sends nothing.
        var flushed = try makeAnswer()
        _ = flushed.budgetRanOut()
        #expect(labels(flushed.flush()) == ["ack"])
        #expect(label(flushed.end(.final(attempt, values: []))) == "classic []")
    }
}

