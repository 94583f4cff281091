import Foundation
import Testing
@testable import VertebraJournal

/// Duplicate suppression, fencing, the job state machine and recovery.
@Suite struct ConversationTests {
    let directory: TemporaryDirectory
    let journal: ExchangeJournal

    init() throws {
        directory = try TemporaryDirectory()
        journal = try ExchangeJournal(path: directory.path("journal.sqlite"), options: .init(durability: .normal))
    }

    /// Performer side: an inbound `op` starts job `A` and conversation `A:B`, answered at once.
    private func receiveOp(job: String, from peer: String, iqID: String) async throws -> String {
        let conversation = "\(job):\(newToken())"
        try await journal.write([
            .createJob(NewJob(token: job, operation: "/image/resize", submitter: peer, state: .running)),
            .openConversation(NewConversation(job: job, token: conversation, peer: peer, role: .performer)),
            .recordStanza(NewStanza(
                conversation: .opened, direction: .inbound, iqID: iqID, kind: .op,
                body: "<op type='/image/resize' token='\(job)' scope='single'/>",
                answer: "<op token='\(conversation)'/>")),
        ])
        return conversation
    }

    @Test func aRepeatedInboundIQIsRecognisedWithItsRecordedAnswer() async throws {
        let job = newToken()
        let conversation = try await receiveOp(job: job, from: "coordinator@example.org/c", iqID: "iq-1")
        let recorded = try #require(try await journal.inboundStanza(peer: "coordinator@example.org/c", iqID: "iq-1"))
        #expect(recorded.answer == "<op token='\(conversation)'/>")
        #expect(recorded.kind == .op && recorded.sequence == 1)
        #expect(try await journal.inboundStanza(peer: "coordinator@example.org/c", iqID: "iq-2") == nil)
        // Recording the retransmission is refused by the unique (peer, IQ id) index.
        let error = await journalError {
            try await journal.write(.recordStanza(NewStanza(
                conversation: .token(conversation), direction: .inbound, iqID: "iq-1", kind: .data, body: "<data/>")))
        }
        #expect(error?.code == .duplicateStanza)
        await journal.close()
    }

    @Test func theSameIQIdFromAnotherPeerIsNotADuplicate() async throws {
        _ = try await receiveOp(job: newToken(), from: "a@example.org/x", iqID: "1")
        _ = try await receiveOp(job: newToken(), from: "b@example.org/x", iqID: "1")
        #expect(try await journal.inboundStanza(peer: "a@example.org/x", iqID: "1") != nil)
        #expect(try await journal.inboundStanza(peer: "b@example.org/x", iqID: "1") != nil)
        await journal.close()
    }

    @Test func aRepeatedOpTokenGetsTheRecordedAnswerAndIsNotJournalledTwice() async throws {
        let job = newToken()
        let conversation = try await receiveOp(job: job, from: "c@example.org/c", iqID: "7")
        let replay = try #require(try await journal.opReplay(job: job, peer: "c@example.org/c"))
        #expect(replay.conversation.token == conversation)
        #expect(replay.op.answer == "<op token='\(conversation)'/>")
        #expect(try await journal.opReplay(job: job, peer: "someone-else@example.org/c") == nil)
        let again = await journalError { try await receiveOp(job: job, from: "c@example.org/c", iqID: "8") }
        #expect(again?.code == .duplicateJob)
        #expect(try await journal.conversations(ofJob: job).count == 1)
        await journal.close()
    }

    @Test func stanzasOfASupersededAttemptAreRefused() async throws {
        let job = try await journal.makeJob()
        let first = "\(job):\(newToken())"
        let second = "\(job):\(newToken())"
        try await journal.write([
            .transition(job: job, to: .dispatched),
            .openConversation(NewConversation(job: job, token: first, peer: "w1@example.org/r", role: .requester)),
        ])
        // Lease expired: retry on another worker, superseding the first attempt.
        try await journal.write([
            .transition(job: job, to: .dispatched),
            .openConversation(NewConversation(
                job: job, token: second, peer: "w2@example.org/r", role: .requester, supersedesOthers: true)),
        ])
        let late = await journalError {
            try await journal.write(.recordStanza(NewStanza(
                conversation: .token(first), direction: .inbound, iqID: "late", kind: .final, body: "<final/>")))
        }
        #expect(late?.code == .supersededAttempt)
        #expect(await journalError { try await journal.currentAttempt(first) }?.code == .supersededAttempt)
        #expect(try await journal.currentAttempt(second).peer == "w2@example.org/r")
        let record = try #require(try await journal.job(job))
        #expect(record.worker == "w2@example.org/r")
        #expect(record.attempts == 2)
        #expect(try await journal.inboundStanza(peer: "w1@example.org/r", iqID: "late") == nil)
        await journal.close()
    }

    @Test func explicitSupersedeFencesEveryAttemptButTheOneKept() async throws {
        let job = try await journal.makeJob(state: .dispatched)
        let outcomes = try await journal.write([
            .openConversation(NewConversation(job: job, token: "\(job):1", peer: "w1@x/r", role: .requester)),
            .openConversation(NewConversation(job: job, token: "\(job):2", peer: "w2@x/r", role: .requester)),
            .supersede(job: job, except: .token("\(job):2")),
        ])
        #expect(outcomes.count == 3)
        #expect(await journalError { try await journal.currentAttempt("\(job):1") }?.code == .supersededAttempt)
        #expect(try await journal.currentAttempt("\(job):2").isCurrent)
        #expect(await journalError { try await journal.currentAttempt("\(job):9") }?.code == .unknownConversation)
        await journal.close()
    }

    @Test func aDoneJobCannotBecomeRunningAndKeepsItsResult() async throws {
        let job = try await journal.makeJob()
        try await journal.write(.transition(job: job, to: .dispatched))
        try await journal.write(.transition(job: job, to: .running))
        try await journal.write(.transition(job: job, to: .done, result: "<string name='response'>ok</string>"))
        let error = await journalError { try await journal.write(.transition(job: job, to: .running)) }
        #expect(error?.code == .illegalTransition)
        #expect(error?.message.contains("from done to running") == true)
        let record = try #require(try await journal.job(job))
        #expect(record.state == .done)
        #expect(record.result == "<string name='response'>ok</string>")
        #expect(record.finished != nil && record.attempts == 1)
    }

    @Test(arguments: [JobState.done, .failed, .cancelled])
    func aTerminalJobRefusesEveryMove(terminal: JobState) async throws {
        let job = try await journal.makeJob(state: .running)
        try await journal.write(.transition(job: job, to: terminal, error: terminal == .done ? nil : "gave up"))
        for next in JobState.allCases {
            let error = await journalError { try await journal.write(.transition(job: job, to: next)) }
            #expect(error?.code == .illegalTransition, "\(terminal) -> \(next)")
        }
        #expect(try await journal.job(job)?.state == terminal)
        await journal.close()
    }

    @Test func thePendingJobStateMachineMatchesTheDocumentedTable() {
        #expect(JobState.pending.canTransition(to: .dispatched))
        #expect(!JobState.pending.canTransition(to: .done))
        #expect(JobState.running.canTransition(to: .dispatched))
        #expect(!JobState.running.canTransition(to: .pending))
        #expect(!JobState.running.canTransition(to: .running))
        #expect(JobState.allCases.filter(\.isTerminal) == [.done, .failed, .cancelled])
    }

    @Test func transitionsOfAnUnknownJobAreRefused() async throws {
        let error = await journalError { try await journal.write(.transition(job: "nope", to: .running)) }
        #expect(error?.code == .unknownJob)
        await journal.close()
    }

    /// Each move is one statement that applies only from an allowed state; the attempt count
    /// follows the documented rule whatever state the row was in.
    @Test func attemptsCountEnteringDispatchedOrRunningFromPending() async throws {
        let direct = try await journal.makeJob()
        try await journal.write(.transition(job: direct, to: .running))
        #expect(try await journal.job(direct)?.attempts == 1)
        let dispatched = try await journal.makeJob()
        try await journal.write(.transition(job: dispatched, to: .dispatched))
        try await journal.write(.transition(job: dispatched, to: .running))
        try await journal.write(.transition(job: dispatched, to: .dispatched))
        #expect(try await journal.job(dispatched)?.attempts == 2)
        try await journal.write(.transitionIfAllowed(job: dispatched, to: .done, result: "<r/>"))
        try await journal.write(.transitionIfAllowed(job: dispatched, to: .failed, error: "late"))
        let ended = try #require(try await journal.job(dispatched))
        #expect(ended.state == .done && ended.result == "<r/>" && ended.error == nil && ended.finished != nil)
        let unknown = await journalError { try await journal.write(.transitionIfAllowed(job: "nope", to: .done)) }
        #expect(unknown?.code == .unknownJob)
        await journal.close()
    }

    /// Records naming a conversation by id read nothing first: a missing one is still refused
    /// by name, and nothing of the write stays.
    @Test func recordsOfAnUnknownConversationAreRefused() async throws {
        let job = try await journal.makeJob()
        let records: [JournalRecord] = [
            .recordStanza(NewStanza(conversation: .id(9_999), direction: .inbound, iqID: "x", kind: .data, body: "<data/>")),
            .nameConversation(.id(9_999), token: "\(job):1"),
            .setConversationState(.id(9_999), .finished),
        ]
        for record in records {
            let error = await journalError { try await journal.write([.transition(job: job, to: .dispatched), record]) }
            #expect(error?.code == .unknownConversation, "\(record)")
        }
        #expect(try await journal.job(job)?.state == .pending)
        await journal.close()
    }

    @Test func recoveryListsOpenCurrentConversationsWithTheirUnacknowledgedStanzas() async throws {
        // In flight: op acknowledged, data sent and not yet acknowledged.
        let active = try await journal.makeJob(state: .running)
        let outcomes = try await journal.write([
            .openConversation(NewConversation(job: active, token: "\(active):b", peer: "c@x/r", role: .performer)),
            .recordStanza(NewStanza(conversation: .opened, direction: .inbound, iqID: "op1", kind: .op,
                                    body: "<op/>", answer: "<op token='\(active):b'/>")),
            .recordStanza(NewStanza(conversation: .opened, direction: .outbound, iqID: "d1", kind: .data,
                                    body: "<data token='\(active):b'/>")),
        ])
        #expect(outcomes[2] == .stanza(id: 2, sequence: 2))
        // Finished: not recoverable.
        let finished = try await journal.makeJob(state: .running)
        try await journal.write([
            .openConversation(NewConversation(job: finished, token: "\(finished):b", peer: "c@x/r", role: .performer)),
            .setConversationState(.opened, .finished),
            .transition(job: finished, to: .done),
        ])
        let items = try await journal.recoverableConversations()
        #expect(items.map(\.job.token) == [active])
        #expect(items.first?.unacknowledged.map(\.iqID) == ["d1"])
        // Once acknowledged, nothing is left to re-send.
        try await journal.write(.acknowledge(.iq(peer: "c@x/r", iqID: "d1", direction: .outbound), answer: "<iq type='result'/>"))
        #expect(try await journal.recoverableConversations().first?.unacknowledged.isEmpty == true)
        await journal.close()
    }

    /// An attempt that dispatches its job moves it in the statement naming its worker: the
    /// move, the attempt count and the worker as separate records gave them; an illegal move
    /// or an unknown job is refused by name and leaves no conversation behind.
    @Test func anAttemptThatDispatchesMovesItsJobAndNamesItsWorkerOrIsRefusedWhole() async throws {
        let job = try await journal.makeJob()
        let outcomes = try await journal.write([
            .openConversation(NewConversation(job: job, peer: "w1@x/r", role: .requester, supersedesOthers: true, dispatches: true)),
            .recordStanza(NewStanza(conversation: .opened, direction: .outbound, iqID: "o1", kind: .op, body: "<op/>")),
            .recordStanza(NewStanza(conversation: .opened, direction: .outbound, iqID: "o2", kind: .cancel, body: "<cancel/>")),
        ])
        #expect(outcomes[1] == .stanza(id: 1, sequence: 1) && outcomes[2] == .stanza(id: 2, sequence: 2))
        let moved = try #require(try await journal.job(job))
        #expect(moved.state == .dispatched && moved.attempts == 1 && moved.worker == "w1@x/r")
        // A retry on another worker: a second attempt counted, the first one fenced.
        try await journal.write(.transition(job: job, to: .running))
        try await journal.write([
            .openConversation(NewConversation(job: job, peer: "w2@x/r", role: .requester, supersedesOthers: true, dispatches: true)),
            .recordStanza(NewStanza(conversation: .opened, direction: .outbound, iqID: "o3", kind: .op, body: "<op/>")),
        ])
        let retried = try #require(try await journal.job(job))
        #expect(retried.attempts == 2 && retried.worker == "w2@x/r")
        #expect(try await journal.conversations(ofJob: job).map(\.isCurrent) == [false, true])
        try await journal.write(.transition(job: job, to: .done, result: "<r/>"))
        let late = await journalError {
            try await journal.write(.openConversation(NewConversation(job: job, peer: "w3@x/r", role: .requester, dispatches: true)))
        }
        #expect(late?.code == .illegalTransition)
        let unknown = await journalError {
            try await journal.write(.openConversation(NewConversation(job: "nope", peer: "w3@x/r", role: .requester, dispatches: true)))
        }
        #expect(unknown?.code == .unknownJob)
        let undispatched = await journalError {
            try await journal.write(.openConversation(NewConversation(job: "nope", peer: "w3@x/r", role: .requester)))
        }
        #expect(undispatched?.code == .unknownJob)
        #expect(try await journal.conversations(ofJob: job).count == 2)
        #expect(try await journal.job(job)?.worker == "w2@x/r")
        await journal.close()
    }

    /// A stanza of the conversation opened by the same write reads nothing back, but a record
    /// of that write that fences it (or a stanza recorded by id) is still seen.
    @Test func stanzasOfAConversationOpenedInTheSameWriteKeepTheirOrderAndFencing() async throws {
        let job = try await journal.makeJob()
        let fenced = await journalError {
            try await journal.write([
                .openConversation(NewConversation(job: job, peer: "w1@x/r", role: .requester)),
                .supersede(job: job),
                .recordStanza(NewStanza(conversation: .opened, direction: .outbound, iqID: "o1", kind: .op, body: "<op/>")),
            ])
        }
        #expect(fenced?.code == .supersededAttempt)
        #expect(try await journal.conversations(ofJob: job).isEmpty)
        let first = try await journal.write([
            .openConversation(NewConversation(job: job, peer: "w1@x/r", role: .requester)),
        ])
        guard case .conversation(let id) = first[0] else {
            Issue.record("unexpected outcomes \(first)")
            return
        }
        let outcomes = try await journal.write([
            .recordStanza(NewStanza(conversation: .id(id), direction: .outbound, iqID: "o1", kind: .op, body: "<op/>")),
            .openConversation(NewConversation(job: job, peer: "w2@x/r", role: .requester)),
            .recordStanza(NewStanza(conversation: .id(id + 1), direction: .outbound, iqID: "o2", kind: .op, body: "<op/>")),
            .recordStanza(NewStanza(conversation: .opened, direction: .outbound, iqID: "o3", kind: .data, body: "<data/>")),
        ])
        #expect(outcomes[0] == .stanza(id: 1, sequence: 1))
        #expect(outcomes[2] == .stanza(id: 2, sequence: 1) && outcomes[3] == .stanza(id: 3, sequence: 2))
        await journal.close()
    }

    /// A performer's job created in the same write is not read back; one created earlier is
    /// checked, and a missing one is refused.
    @Test func aPerformerConversationNeedsItsJob() async throws {
        let job = newToken()
        try await journal.write([
            .createJob(NewJob(token: job, operation: "/a", state: .running)),
            .openConversation(NewConversation(job: job, token: "\(job):b", peer: "c@x/r", role: .performer)),
        ])
        #expect(try await journal.conversations(ofJob: job).map(\.token) == ["\(job):b"])
        let missing = await journalError {
            try await journal.write(.openConversation(NewConversation(job: "nope", token: "nope:b", peer: "c@x/r", role: .performer)))
        }
        #expect(missing?.code == .unknownJob)
        await journal.close()
    }

    @Test func aRequesterConversationIsNamedWhenThePerformerAnswers() async throws {
        let job = try await journal.makeJob(state: .dispatched)
        let outcomes = try await journal.write([
            .openConversation(NewConversation(job: job, peer: "w@x/r", role: .requester)),
            .recordStanza(NewStanza(conversation: .opened, direction: .outbound, iqID: "o1", kind: .op, body: "<op/>")),
        ])
        guard case .conversation(let id) = outcomes[0], case .stanza(let stanza, _) = outcomes[1] else {
            Issue.record("unexpected outcomes \(outcomes)")
            return
        }
        try await journal.write([
            .nameConversation(.id(id), token: "\(job):perf"),
            .acknowledge(.id(stanza), answer: "<op token='\(job):perf'/>"),
        ])
        let timeline = try await journal.timeline(ofJob: String(job.prefix(8)))
        #expect(timeline.conversations.map(\.token) == ["\(job):perf"])
        #expect(timeline.stanzas.first?.acked != nil)
        await journal.close()
    }
}
