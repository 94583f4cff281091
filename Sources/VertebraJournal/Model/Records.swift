import Foundation

/// How much a committed journal write survives.
public enum Durability: String, Sendable, CaseIterable, Codable {
    /// `synchronous=FULL`: an acknowledged write survives a power loss (fsync at every commit).
    case full
    /// `synchronous=NORMAL`: an acknowledged write survives a process crash; the last commits
    /// before a power loss may be lost (fsync only at WAL checkpoints).
    case normal
}

/// How a job reaches workers (DESIGN §4).
public enum JobScope: String, Sendable, CaseIterable, Codable {
    case direct, single, all
}

/// Which side of a conversation this journal's agent is on.
public enum ConversationRole: String, Sendable, CaseIterable, Codable {
    /// We sent the `op` (coordinator to worker, or submitter to coordinator).
    case requester
    /// We received the `op` and run it.
    case performer
}

/// The state of one attempt (`A:B`).
public enum ConversationState: String, Sendable, CaseIterable, Codable {
    /// In progress: stanzas still to send or to receive. Recovery resumes these.
    case open
    /// Ended with `final`.
    case finished
    /// Ended with `error` or `nack`, or lost.
    case failed
    /// Ended by `cancel`.
    case cancelled

    /// Whether the conversation has ended.
    public var isTerminal: Bool { self != .open }
}

/// Whether we received a stanza or sent it.
public enum StanzaDirection: String, Sendable, CaseIterable, Codable {
    case inbound = "in"
    case outbound = "out"
}

/// The protocol element an IQ `set` carries (DESIGN §4).
public enum StanzaKind: String, Sendable, CaseIterable, Codable {
    case op, ack, nack, data, final, error, cancel
}

/// A job as recorded in the journal.
public struct Job: Sendable, Equatable, Codable {
    /// Token `A` (32 hex digits): the job's id.
    public var token: String
    /// Operation path, e.g. `/image/resize`.
    public var operation: String
    /// The `op` element's argument children, as XML text.
    public var arguments: String
    public var scope: JobScope
    /// JID of whoever submitted the job; nil when dispatched in-process.
    public var submitter: String?
    public var state: JobState
    /// How many times the job was dispatched (or started, for a performer).
    public var attempts: Int
    public var deadline: Date?
    /// Result values as XML text, when done.
    public var result: String?
    /// Failure reason, when failed or cancelled.
    public var error: String?
    /// Peer JID of the current requester-side attempt: the worker running it.
    public var worker: String?
    public var created: Date
    public var updated: Date
    /// When it reached a terminal state.
    public var finished: Date?
    /// The job this one repeats (`vertebra jobs retry`), if any.
    public var retryOf: String?
    /// The unique key it was submitted with: no other unfinished job has it.
    public var key: String?
    /// A delayed job does not start before this time.
    public var notBefore: Date?
    /// The failure's code (`worker-lost`, `cancelled`, ...), when the job ended with one; nil in
    /// rows written before schema 5.
    public var errorCode: String? = nil

    /// `finished - created`, when finished.
    public var duration: TimeInterval? { finished.map { $0.timeIntervalSince(created) } }
}

/// What is needed to journal a new job.
public struct NewJob: Sendable {
    public var token: String
    public var operation: String
    public var arguments: String
    public var scope: JobScope
    public var submitter: String?
    /// The first state; must not be terminal. Usually `pending` (requester) or `running` (performer).
    public var state: JobState
    public var deadline: Date?
    /// Creation time; nil means now. (Set by importers and tests.)
    public var created: Date?
    /// The job this one repeats (an operator's retry).
    public var retryOf: String?
    /// A key no other unfinished job may have: ``JournalError/Code/duplicateKey`` otherwise.
    public var key: String?
    /// Do not start before this time.
    public var notBefore: Date?

    public init(
        token: String, operation: String, arguments: String = "", scope: JobScope = .single,
        submitter: String? = nil, state: JobState = .pending, deadline: Date? = nil, created: Date? = nil,
        retryOf: String? = nil, key: String? = nil, notBefore: Date? = nil
    ) {
        self.retryOf = retryOf
        self.key = key
        self.notBefore = notBefore
        self.token = token
        self.operation = operation
        self.arguments = arguments
        self.scope = scope
        self.submitter = submitter
        self.state = state
        self.deadline = deadline
        self.created = created
    }
}

/// One attempt of a job with one peer.
public struct Conversation: Sendable, Equatable, Codable {
    /// The journal's own id for this conversation.
    public var id: Int64
    /// `A:B`; nil until the performer's answer to the `op` named it.
    public var token: String?
    /// The job's token `A`.
    public var job: String
    public var peer: String
    public var role: ConversationRole
    public var state: ConversationState
    /// False once the attempt was superseded (fencing).
    public var isCurrent: Bool
    public var created: Date
    public var updated: Date
}

/// What is needed to journal a new conversation.
public struct NewConversation: Sendable {
    public var job: String
    /// `A:B` when already known (performer side); nil for a requester until the answer arrives.
    public var token: String?
    public var peer: String
    public var role: ConversationRole
    /// Mark every other current conversation of the job in the same role superseded (a retry,
    /// DESIGN §4). A coordinator's performer-side conversation with the submitter is not an
    /// attempt and stays current when the attempts to workers are retried.
    public var supersedesOthers: Bool
    /// A requester-side attempt that dispatches its job: the job moves to `dispatched`
    /// (counting an attempt) in the statement that names its worker, as
    /// ``JournalRecord/transition(job:to:result:error:at:errorCode:)`` would, refused the same way.
    public var dispatches: Bool
    /// Nil means now.
    public var created: Date?

    public init(
        job: String, token: String? = nil, peer: String, role: ConversationRole,
        supersedesOthers: Bool = false, dispatches: Bool = false, created: Date? = nil
    ) {
        self.job = job
        self.token = token
        self.peer = peer
        self.role = role
        self.supersedesOthers = supersedesOthers
        self.dispatches = dispatches
        self.created = created
    }
}

/// Names a conversation in a ``JournalRecord``.
public enum ConversationRef: Sendable, Equatable {
    /// By the journal's id.
    case id(Int64)
    /// By its token `A:B`.
    case token(String)
    /// The conversation opened by an earlier ``JournalRecord/openConversation(_:)`` of the same write.
    case opened
}

/// One IQ exchange of a conversation: the `set` and the answer to it.
public struct Stanza: Sendable, Equatable, Codable {
    public var id: Int64
    public var conversation: Int64
    /// 1, 2, 3... within the conversation.
    public var sequence: Int
    public var direction: StanzaDirection
    /// The other party's JID.
    public var peer: String
    /// The IQ id (reused by retransmissions).
    public var iqID: String
    public var kind: StanzaKind
    /// The IQ `set` payload, XML text.
    public var body: String
    /// The IQ `result`/`error` answering it (sent by us for inbound, received for outbound).
    public var answer: String?
    /// When it was sent (outbound) or received (inbound).
    public var sent: Date
    /// When it was answered; nil while unacknowledged.
    public var acked: Date?
}

/// What is needed to journal a stanza.
public struct NewStanza: Sendable {
    public var conversation: ConversationRef
    public var direction: StanzaDirection
    public var iqID: String
    public var kind: StanzaKind
    public var body: String
    /// The answer, when it is known at once (e.g. our result to an inbound `op`).
    public var answer: String?
    /// Nil means now.
    public var sent: Date?

    public init(
        conversation: ConversationRef, direction: StanzaDirection, iqID: String, kind: StanzaKind,
        body: String, answer: String? = nil, sent: Date? = nil
    ) {
        self.conversation = conversation
        self.direction = direction
        self.iqID = iqID
        self.kind = kind
        self.body = body
        self.answer = answer
        self.sent = sent
    }
}

/// Names a stanza in a ``JournalRecord``.
public enum StanzaRef: Sendable, Equatable {
    case id(Int64)
    /// The stanza with this IQ id exchanged with `peer` in `direction`.
    case iq(peer: String, iqID: String, direction: StanzaDirection)
}

/// One change to the journal. A write is a list of records applied atomically.
public enum JournalRecord: Sendable {
    /// Journal a new job. Fails with ``JournalError/Code/duplicateJob`` if the token exists.
    case createJob(NewJob)
    /// Move a job to `state`, checked by ``JobState/canTransition(to:)``. Entering `dispatched`,
    /// or `running` from `pending`, counts an attempt; entering a terminal state sets `finished`.
    case transition(job: String, to: JobState, result: String? = nil, error: String? = nil, at: Date? = nil, errorCode: String? = nil)
    /// Like ``transition(job:to:result:error:at:errorCode:)`` where the move is allowed, and nothing where it
    /// is not (the job already ended, say by an earlier attempt): a performer's record of an end
    /// that may have been overtaken, written in the same transaction as the end's stanza.
    case transitionIfAllowed(job: String, to: JobState, result: String? = nil, error: String? = nil, errorCode: String? = nil)
    /// Journal a new attempt. A requester-side conversation also sets the job's `worker`.
    case openConversation(NewConversation)
    /// Give a requester-side conversation its token `A:B` once the performer named it.
    case nameConversation(ConversationRef, token: String)
    /// End (or reopen) a conversation.
    case setConversationState(ConversationRef, ConversationState)
    /// Fencing: mark every current requester-side conversation (attempt) of `job` superseded,
    /// except `except`.
    case supersede(job: String, except: ConversationRef? = nil)
    /// Journal a stanza; refused for a superseded conversation and for a repeated inbound (peer, IQ id).
    case recordStanza(NewStanza)
    /// Record the answer to a stanza and when it came.
    case acknowledge(StanzaRef, answer: String? = nil, at: Date? = nil)
    /// Keep an agent's own state under `key` in the `meta` table (nil deletes it). Keys starting
    /// with `journal.` are the journal's own and are refused.
    case setMeta(key: String, value: String?)
}

/// What one ``JournalRecord`` produced.
public enum RecordOutcome: Sendable, Equatable {
    case none
    /// The id of a new conversation.
    case conversation(Int64)
    /// The id and sequence number of a new stanza.
    case stanza(id: Int64, sequence: Int)
}
