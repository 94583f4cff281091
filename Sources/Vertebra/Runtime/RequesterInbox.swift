import Foundation
import Natter
import VertebraJournal
import VertebraXML

/// What an attempt waiting on a performer hears: the performer's messages, plus events the
/// requester's own machinery injects (worker presence, leases, deadlines, cancellation).
enum InboxEvent: Sendable {
    case message(ProtocolMessage)
    /// The worker's presence went away (lease starts running).
    case peerGone
    /// The worker is back.
    case peerBack
    /// The attempt's lease ran out while the worker was gone.
    case leaseExpired
    /// The job's deadline passed.
    case deadlineExceeded
    /// The worker stayed silent too long and did not confirm the attempt runs.
    case silent(String)
    /// The submitter or the program asked to cancel.
    case cancelRequested(String)
}

/// Routes performer → requester messages (`ack`, `nack`, `data`, `final`, `error`) to the
/// attempt waiting for them, keyed by (job token `A`, performer's full JID). With a journal,
/// each message is journalled before it is answered, and a repeated IQ id is answered again
/// without being delivered twice.
actor RequesterInbox {
    private struct Key: Hashable {
        let job: String
        let peer: String
    }

    private struct Box {
        let continuation: AsyncStream<InboxEvent>.Continuation
        /// Journal id of the requester-side conversation.
        let conversation: Int64?
        /// `B`, once the performer named the attempt.
        var attempt: String?
        /// IQ ids already taken (without a journal).
        var seen: Set<String> = []
        /// The attempt token of the first message taken, which proves the performer accepted
        /// the `op` even when its answer to the `op` was lost.
        var heard: JobToken?
    }

    private let journal: ExchangeJournal?
    private var boxes: [Key: Box] = [:]
    /// Recovery in progress: unknown conversations are answered "try again", not "unknown".
    private var recovering = false

    init(journal: ExchangeJournal?) {
        self.journal = journal
    }

    /// Opens the mailbox of an attempt before its `op` is sent (the `ack` may arrive before the
    /// `op`'s answer is processed).
    func open(job: String, peer: JID, conversation: Int64?, attempt: String? = nil) -> AsyncStream<InboxEvent> {
        let (stream, continuation) = AsyncStream<InboxEvent>.makeStream()
        let key = Key(job: job, peer: peer.description)
        boxes[key]?.continuation.finish()
        boxes[key] = Box(continuation: continuation, conversation: conversation, attempt: attempt)
        return stream
    }

    /// Records the attempt part `B` the performer answered the `op` with.
    func name(job: String, peer: JID, attempt: String?) {
        boxes[Key(job: job, peer: peer.description)]?.attempt = attempt
    }

    /// The attempt token the performer's messages carried, if any arrived.
    func heardAttempt(job: String, peer: JID) -> JobToken? {
        boxes[Key(job: job, peer: peer.description)]?.heard
    }

    /// Injects an event into an attempt's mailbox.
    func inject(_ event: InboxEvent, job: String, peer: JID) {
        boxes[Key(job: job, peer: peer.description)]?.continuation.yield(event)
    }

    /// Injects an event into every mailbox of `peer` (presence changes).
    func injectAll(_ event: InboxEvent, peer: JID) {
        for (key, box) in boxes where key.peer == peer.description { box.continuation.yield(event) }
    }

    /// Closes an attempt's mailbox.
    func close(job: String, peer: JID) {
        boxes.removeValue(forKey: Key(job: job, peer: peer.description))?.continuation.finish()
    }

    func setRecovering(_ value: Bool) { recovering = value }

    /// Takes one performer message; the IQ is answered `result` when this returns, with the
    /// thrown stanza error otherwise.
    func receive(_ message: ProtocolMessage, in request: IQ, from peer: JID) async throws(StanzaError) {
        let key = Key(job: message.token.job, peer: peer.description)
        guard var box = boxes[key] else {
            throw await unknown(message.token)
        }
        if let expected = box.attempt, message.token.attempt != expected {
            throw VertebraErrors.superseded(message.token.description)
        }
        func record(_ conversation: Int64) -> JournalRecord {
            .recordStanza(NewStanza(
                conversation: .id(conversation), direction: .inbound, iqID: request.id,
                kind: message.journalKind, body: JournalText.text(message.element),
                answer: JournalText.text(request.result().element)))
        }
        let isAck = if case .ack = message { true } else { false }
        if let journal, let conversation = box.conversation, !isAck {
            do {
                _ = try await journal.write(record(conversation))
            } catch let error as JournalError where error.code == .duplicateStanza {
                return
            } catch let error as JournalError where error.code == .supersededAttempt {
                throw VertebraErrors.superseded(message.token.description)
            } catch {
                throw VertebraErrors.internalError("could not journal \(message.journalKind.rawValue): \(error)")
            }
        } else {
            // Without a journal, or an ack (it changes nothing durable, DESIGN 5.1: answered at
            // once, journalled without waiting; a repeat after a restart is harmless): repeats
            // are recognised in memory.
            guard box.seen.insert(request.id).inserted else { return }
            boxes[key]?.seen = box.seen
            if let journal, let conversation = box.conversation { journal.writeLater([record(conversation)]) }
        }
        // The mailbox may have changed while the journal wrote: update it in place.
        if let current = boxes[key], current.conversation == box.conversation, current.heard == nil {
            boxes[key]?.heard = message.token
        }
        box.continuation.yield(.message(message))
    }

    private func unknown(_ token: JobToken) async -> StanzaError {
        if let journal {
            do {
                // Open in the journal but no mailbox yet (recovery is re-opening it): try again.
                let conversation = try await journal.currentAttempt(token.description)
                return conversation.state == .open || recovering
                    ? VertebraErrors.notReady("not ready for \(token) yet; try again")
                    : VertebraErrors.unknownConversation(token.description)
            } catch let error as JournalError where error.code == .supersededAttempt {
                return VertebraErrors.superseded(token.description)
            } catch {}
        }
        return recovering ? VertebraErrors.notReady("recovering; try again") : VertebraErrors.unknownConversation(token.description)
    }
}
