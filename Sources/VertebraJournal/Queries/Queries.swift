import Foundation

/// Which jobs `vertebra jobs` lists.
public struct JobFilter: Sendable, Equatable {
    /// Only jobs in one of these states; empty means all.
    public var states: Set<JobState>
    /// Only this operation; a trailing `*` matches a prefix (`/image/*`).
    public var operation: String?
    /// Only jobs whose worker is this JID; a bare JID (`worker@host`) matches all its resources.
    public var worker: String?
    /// Only jobs created at or after this time.
    public var since: Date?
    /// At most this many jobs, newest first.
    public var limit: Int
    /// Only jobs changed (``Job/updated``) at or after this time, oldest change first
    /// (`vertebra jobs --follow`).
    public var changedSince: Date?
    /// Only jobs created before this time.
    public var until: Date?
    /// Only jobs whose arguments, result or error contain this text (case-sensitive).
    public var text: String?
    /// Skip this many matching jobs first (paging).
    public var offset: Int = 0

    public init(
        states: Set<JobState> = [], operation: String? = nil, worker: String? = nil, since: Date? = nil,
        limit: Int = 50
    ) {
        self.states = states
        self.operation = operation
        self.worker = worker
        self.since = since
        self.limit = limit
    }
}

/// A job with every conversation and stanza it had: what `vertebra jobs show` prints.
public struct JobTimeline: Sendable {
    public var job: Job
    public var conversations: [Conversation]
    /// All stanzas of all conversations, in the order they were journalled.
    public var stanzas: [Stanza]
    /// The jobs that repeat this one (operator retries), oldest first.
    public var retries: [String] = []
}

/// Counts and durations over the whole journal.
public struct JournalStatistics: Sendable {
    /// One operation's counts.
    public struct OperationCount: Sendable {
        public var operation: String
        public var total: Int
        public var byState: [JobState: Int]
    }
    public var total: Int
    public var byState: [JobState: Int]
    /// Sorted by total, largest first.
    public var byOperation: [OperationCount]
    /// Median `finished - created` of finished jobs, in seconds.
    public var p50Duration: TimeInterval?
    /// 99th percentile of `finished - created`, in seconds.
    public var p99Duration: TimeInterval?
}

/// A conversation that was in progress when the agent stopped, with what it still has to do.
public struct RecoveryItem: Sendable {
    public var job: Job
    public var conversation: Conversation
    /// Stanzas without an answer yet, in sequence order: outbound ones are re-sent with their
    /// original IQ ids; inbound ones still need their answer.
    public var unacknowledged: [Stanza]
}

/// What a repeated `op` gets again (duplicate suppression).
public struct OpReplay: Sendable {
    public var job: Job
    public var conversation: Conversation
    /// The inbound `op` stanza, whose ``Stanza/answer`` is the recorded reply.
    public var op: Stanza
}

/// What a performer reads when an `op` arrives, in one call (``ExchangeJournal/opArrival(peer:iqID:job:)``).
public struct OpArrival: Sendable {
    /// The inbound stanza already recorded for this `(peer, IQ id)`: the op is a repeat.
    public var repeated: Stanza?
    /// Otherwise, the performer conversation this peer already started for the job, if any.
    public var earlier: OpReplay?
    /// The stanzas of ``earlier`` when it is still open (empty otherwise).
    public var earlierStanzas: [Stanza]
    /// The job's row, if this journal has it.
    public var job: Job?
}

/// Journal metadata.
public struct JournalInfo: Sendable {
    public var path: String
    public var schemaVersion: Int
    /// The durability the last writer used.
    public var durability: Durability?
    public var jobCount: Int
}

extension Connection {
    func job(token: String) throws -> Job? {
        try first("SELECT \(Columns.job) FROM jobs WHERE token = ?", [.text(token)]) { try job(from: $0) }
    }

    /// The token of the unfinished job holding unique `key`, if any.
    func unfinishedJob(key: String) throws -> String? {
        try first("SELECT token FROM jobs WHERE unique_key = ? AND finished IS NULL", [.text(key)]) { $0.text(0) }
    }

    /// Jobs that repeat `token` (operator retries), oldest first.
    func retries(of token: String) throws -> [String] {
        try all("SELECT token FROM jobs WHERE retry_of = ? ORDER BY created, token", [.text(token)]) { $0.text(0) }
    }

    /// A job by its full token or a unique prefix of it.
    func job(matching id: String) throws -> Job {
        let trimmed = id.trimmingCharacters(in: .whitespaces).lowercased()
        guard !trimmed.isEmpty else {
            throw JournalError(.invalidArgument, "Empty job id", path: path, remedy: "Give a job id from `vertebra jobs`")
        }
        if let exact = try job(token: trimmed) { return exact }
        // Tokens are hex, so a prefix range scan on the primary key finds the candidates.
        let candidates = try all(
            "SELECT \(Columns.job) FROM jobs WHERE token >= ? AND token < ? ORDER BY token LIMIT 6",
            [.text(trimmed), .text(trimmed + "\u{10FFFF}")]
        ) { try job(from: $0) }
        switch candidates.count {
        case 0:
            throw JournalError(
                .unknownJob, "No job with id '\(id)'", path: path,
                remedy: "List job ids with `vertebra jobs` (check --journal points at the right file)")
        case 1:
            return candidates[0]
        default:
            let shown = candidates.prefix(5).map(\.token).joined(separator: ", ")
            throw JournalError(
                .ambiguousJob, "Job id prefix '\(id)' matches several jobs (\(shown)\(candidates.count > 5 ? ", ..." : ""))",
                path: path, remedy: "Give more characters of the id")
        }
    }

    func jobs(matching filter: JobFilter) throws -> [Job] {
        guard filter.limit > 0 else {
            throw JournalError(.invalidArgument, "The limit must be at least 1, not \(filter.limit)", path: path)
        }
        var conditions: [String] = []
        var values: [SQLValue] = []
        if !filter.states.isEmpty {
            let states = filter.states.sorted { $0.rawValue < $1.rawValue }
            conditions.append("state IN (" + states.map { _ in "?" }.joined(separator: ",") + ")")
            values += states.map { .text($0.rawValue) }
        }
        if let operation = filter.operation {
            if operation.hasSuffix("*") {
                let prefix = String(operation.dropLast())
                conditions.append("operation >= ? AND operation < ?")
                values += [.text(prefix), .text(prefix + "\u{10FFFF}")]
            } else {
                conditions.append("operation = ?")
                values.append(.text(operation))
            }
        }
        if let worker = filter.worker {
            if worker.contains("/") {
                conditions.append("worker = ?")
                values.append(.text(worker))
            } else {
                // A bare JID matches itself and every `bare/resource`: '0' follows '/' in ASCII.
                conditions.append("(worker = ? OR (worker >= ? AND worker < ?))")
                values += [.text(worker), .text(worker + "/"), .text(worker + "0")]
            }
        }
        if let since = filter.since {
            conditions.append("created >= ?")
            values.append(.time(since))
        }
        if let changed = filter.changedSince {
            conditions.append("updated >= ?")
            values.append(.time(changed))
        }
        if let until = filter.until {
            conditions.append("created < ?")
            values.append(.time(until))
        }
        if let text = filter.text, !text.isEmpty {
            conditions.append("(instr(arguments, ?) > 0 OR instr(coalesce(result, ''), ?) > 0 OR instr(coalesce(error, ''), ?) > 0)")
            values += [.text(text), .text(text), .text(text)]
        }
        let whereClause = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        values.append(.int(filter.limit))
        values.append(.int(max(0, filter.offset)))
        let order = filter.changedSince == nil ? "created DESC, token" : "updated, token"
        return try all(
            "SELECT \(Columns.job) FROM jobs\(whereClause) ORDER BY \(order) LIMIT ? OFFSET ?", values
        ) { try job(from: $0) }
    }

    func conversations(ofJob token: String) throws -> [Conversation] {
        try all("SELECT \(Columns.conversation) FROM conversations WHERE job = ? ORDER BY id", [.text(token)]) {
            try conversation(from: $0)
        }
    }

    func openConversations(role: ConversationRole) throws -> [Conversation] {
        try all(
            "SELECT \(Columns.conversation) FROM conversations WHERE state = 'open' AND current = 1 AND role = ? ORDER BY id",
            [.text(role.rawValue)]
        ) { try conversation(from: $0) }
    }

    func conversation(token: String) throws -> Conversation? {
        try first("SELECT \(Columns.conversation) FROM conversations WHERE token = ?", [.text(token)]) {
            try conversation(from: $0)
        }
    }

    func stanzas(ofConversation id: Int64) throws -> [Stanza] {
        try all("SELECT \(Columns.stanza) FROM stanzas WHERE conversation = ? ORDER BY sequence", [.integer(id)]) {
            try stanza(from: $0)
        }
    }

    func timeline(ofJob id: String) throws -> JobTimeline {
        let job = try job(matching: id)
        let conversations = try conversations(ofJob: job.token)
        let stanzas = try all(
            """
            SELECT \(Columns.stanza.split(separator: ",").map { "s." + $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ", "))
            FROM stanzas s JOIN conversations c ON c.id = s.conversation
            WHERE c.job = ? ORDER BY s.id
            """, [.text(job.token)]
        ) { try stanza(from: $0) }
        return JobTimeline(job: job, conversations: conversations, stanzas: stanzas, retries: try retries(of: job.token))
    }

    func inboundStanza(peer: String, iqID: String) throws -> Stanza? {
        try first(
            "SELECT \(Columns.stanza) FROM stanzas WHERE peer = ? AND iq_id = ? AND direction = 'in'",
            [.text(peer), .text(iqID)]
        ) { try stanza(from: $0) }
    }

    func opReplay(job token: String, peer: String) throws -> OpReplay? {
        guard let job = try job(token: token) else { return nil }
        let found = try first(
            """
            SELECT \(Columns.conversation) FROM conversations
            WHERE job = ? AND peer = ? AND role = 'performer' ORDER BY id DESC LIMIT 1
            """, [.text(token), .text(peer)]
        ) { try conversation(from: $0) }
        guard let conversation = found else { return nil }
        let op = try first(
            """
            SELECT \(Columns.stanza) FROM stanzas
            WHERE conversation = ? AND direction = 'in' AND kind = 'op' ORDER BY sequence LIMIT 1
            """, [.integer(conversation.id)]
        ) { try stanza(from: $0) }
        guard let op else { return nil }
        return OpReplay(job: job, conversation: conversation, op: op)
    }

    func currentAttempt(token: String) throws -> Conversation {
        guard let conversation = try conversation(token: token) else {
            throw JournalError(
                .unknownConversation, "No conversation '\(token)'", path: path,
                remedy: "Answer the stanza with item-not-found")
        }
        guard conversation.isCurrent else {
            throw JournalError(
                .supersededAttempt,
                "Conversation \(token) of job \(conversation.job) was superseded by a newer attempt",
                path: path, remedy: "Refuse the stanza: this attempt is fenced off")
        }
        return conversation
    }

    func recoverableConversations() throws -> [RecoveryItem] {
        let open = try all(
            "SELECT \(Columns.conversation) FROM conversations WHERE state = 'open' AND current = 1 ORDER BY id"
        ) { try conversation(from: $0) }
        var items: [RecoveryItem] = []
        for conversation in open {
            guard let job = try job(token: conversation.job), !job.state.isTerminal else { continue }
            let pending = try all(
                """
                SELECT \(Columns.stanza) FROM stanzas
                WHERE conversation = ? AND acked IS NULL ORDER BY sequence
                """, [.integer(conversation.id)]
            ) { try stanza(from: $0) }
            items.append(RecoveryItem(job: job, conversation: conversation, unacknowledged: pending))
        }
        return items
    }

    func statistics() throws -> JournalStatistics {
        var byState: [JobState: Int] = [:]
        var operations: [String: JournalStatistics.OperationCount] = [:]
        try query("SELECT operation, state, count(*) FROM jobs GROUP BY operation, state") { row in
            let operation = row.text(0)
            let state = try row.value(1, as: JobState.self, path: path)
            let count = row.int(2)
            byState[state, default: 0] += count
            operations[operation, default: .init(operation: operation, total: 0, byState: [:])].total += count
            operations[operation]?.byState[state, default: 0] += count
        }
        let finished = try scalarInt("SELECT count(*) FROM jobs WHERE finished IS NOT NULL")
        func percentile(_ fraction: Double) throws -> TimeInterval? {
            guard finished > 0 else { return nil }
            let offset = min(finished - 1, Int64((Double(finished) * fraction).rounded(.up)) - 1)
            return try first(
                "SELECT finished - created FROM jobs WHERE finished IS NOT NULL ORDER BY finished - created LIMIT 1 OFFSET ?",
                [.integer(max(0, offset))]
            ) { Double($0.int64(0)) / 1000 }
        }
        return JournalStatistics(
            total: byState.values.reduce(0, +), byState: byState,
            byOperation: operations.values.sorted { ($0.total, $1.operation) > ($1.total, $0.operation) },
            p50Duration: try percentile(0.5), p99Duration: try percentile(0.99))
    }

    func info() throws -> JournalInfo {
        let durability = try first("SELECT value FROM meta WHERE key = 'durability'") { Durability(rawValue: $0.text(0)) }
        return JournalInfo(
            path: path, schemaVersion: try Schema.version(of: self), durability: durability ?? nil,
            jobCount: Int(try scalarInt("SELECT count(*) FROM jobs")))
    }
}
