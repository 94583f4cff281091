import Foundation

/// Applying ``JournalRecord``s inside an open transaction.
extension Connection {
    /// Applies one write's records; the caller owns the transaction or savepoint around it.
    func apply(_ records: [JournalRecord], now: Date) throws -> [RecordOutcome] {
        var opened: Opened?
        var created: Set<String> = []
        var outcomes: [RecordOutcome] = []
        outcomes.reserveCapacity(records.count)
        for record in records {
            outcomes.append(try apply(record, now: now, opened: &opened, created: &created))
        }
        return outcomes
    }

    /// `opened` and `created` carry what earlier records of the same write made, so that later
    /// ones need not read it back.
    private func apply(_ record: JournalRecord, now: Date, opened: inout Opened?, created: inout Set<String>) throws -> RecordOutcome {
        switch record {
        case .createJob(let job):
            try createJob(job, now: now)
            created.insert(job.token)
            return .none
        case .transition(let token, let state, let result, let error, let at, let code):
            try transition(token, to: state, result: result, error: error, errorCode: code, at: at ?? now)
            return .none
        case .transitionIfAllowed(let token, let state, let result, let error, let code):
            try transition(token, to: state, result: result, error: error, errorCode: code, at: now, onlyIfAllowed: true)
            return .none
        case .openConversation(let conversation):
            let id = try openConversation(conversation, now: now, jobIsNew: created.contains(conversation.job))
            opened = Opened(
                conversation: ResolvedConversation(id: id, token: conversation.token, job: conversation.job, peer: conversation.peer, current: true))
            return .conversation(id)
        case .nameConversation(let reference, let token):
            let id = try conversationID(reference, opened: opened?.conversation.id)
            if id == opened?.conversation.id { opened?.conversation.token = token }
            try constraint(.duplicateConversation, "A conversation named \(token) already exists") {
                try run("UPDATE conversations SET token = ?, updated = ? WHERE id = ?",
                        [.text(token), .time(now), .integer(id)])
            }
            try requireChange(reference)
            return .none
        case .setConversationState(let reference, let state):
            opened?.isUntouched = false
            let id = try conversationID(reference, opened: opened?.conversation.id)
            try run("UPDATE conversations SET state = ?, updated = ? WHERE id = ?",
                    [.text(state.rawValue), .time(now), .integer(id)])
            try requireChange(reference)
            return .none
        case .supersede(let token, let except):
            opened?.isUntouched = false
            try requireJob(token)
            let kept = try except.map { try resolve($0, opened: opened?.conversation.id).id } ?? -1
            try run(
                "UPDATE conversations SET current = 0, updated = ? WHERE job = ? AND current = 1 AND id <> ? AND role = 'requester'",
                [.time(now), .text(token), .integer(kept)])
            return .none
        case .recordStanza(let stanza):
            return try recordStanza(stanza, now: now, opened: &opened)
        case .acknowledge(let reference, let answer, let at):
            try acknowledge(reference, answer: answer, at: at ?? now)
            return .none
        case .setMeta(let key, let value):
            try setMeta(key, value)
            return .none
        }
    }

    private func setMeta(_ key: String, _ value: String?) throws {
        guard !key.isEmpty, !key.hasPrefix("journal."), key != "durability" else {
            throw JournalError(.invalidArgument, "The meta key '\(key)' is reserved for the journal", path: path)
        }
        if let value {
            try run(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [.text(key), .text(value)])
        } else {
            try run("DELETE FROM meta WHERE key = ?", [.text(key)])
        }
    }

    private func createJob(_ job: NewJob, now: Date) throws {
        guard !job.state.isTerminal else {
            throw JournalError(
                .invalidArgument, "A new job cannot start in the terminal state \(job.state)", path: path)
        }
        let created = job.created ?? now
        let attempts = job.state == .pending ? 0 : 1
        if let key = job.key, let holder = try unfinishedJob(key: key) {
            throw JournalError(
                .duplicateKey, "The unfinished job \(holder) already has the key '\(key)'", path: path,
                remedy: "Follow job \(holder), or submit again once it has finished")
        }
        try constraint(.duplicateJob, "A job with token \(job.token) already exists") {
            try run(
                """
                INSERT INTO jobs (token, operation, arguments, scope, submitter, state, attempts, deadline,
                                  created, updated, retry_of, unique_key, not_before)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [.text(job.token), .text(job.operation), .text(job.arguments), .text(job.scope.rawValue),
                 .optional(job.submitter), .text(job.state.rawValue), .int(attempts), .time(job.deadline),
                 .time(created), .time(created), .optional(job.retryOf), .optional(job.key), .time(job.notBefore)])
        }
    }

    private func jobState(_ token: String) throws -> JobState {
        guard let current = try first("SELECT state FROM jobs WHERE token = ?", [.text(token)], {
            try $0.value(0, as: JobState.self, path: path)
        }) else {
            throw unknownJob(token)
        }
        return current
    }

    /// Per target state: the move's statement and the states it may come from. Entering
    /// `dispatched`, or `running` from `pending`, counts an attempt (SET reads the row as it was);
    /// a worker given (?7) and an error code (?8) are set in the same statement. The allowed
    /// states are ORed, not an `IN` list, which SQLite would build a temporary b-tree for on
    /// every call.
    private static let transitionStatements: [JobState: (String, [SQLValue])] = Dictionary(
        uniqueKeysWithValues: JobState.allCases.map { next in
            let from = JobState.allCases.filter { $0.canTransition(to: next) }
            let sql = """
                UPDATE jobs SET state = ?1,
                    attempts = attempts + (CASE WHEN ?1 = 'dispatched' OR (?1 = 'running' AND state = 'pending') THEN 1 ELSE 0 END),
                    result = coalesce(?2, result), error = coalesce(?3, error), updated = ?4, finished = ?5,
                    worker = coalesce(?7, worker), error_code = coalesce(?8, error_code)
                WHERE token = ?6 AND (\(from.isEmpty ? "0" : Array(repeating: "state = ?", count: from.count).joined(separator: " OR ")))
                """
            return (next, (sql, from.map { SQLValue.text($0.rawValue) }))
        })

    /// Moves a job in one statement that applies only from a state allowed to move to `next`;
    /// when nothing moved, a read says why (no such job, or an illegal move, which
    /// `onlyIfAllowed` ignores).
    private func transition(
        _ token: String, to next: JobState, result: String?, error: String?, errorCode: String? = nil, at: Date,
        onlyIfAllowed: Bool = false, worker: String? = nil
    ) throws {
        guard let (sql, from) = Self.transitionStatements[next] else {
            throw JournalError(.invalidArgument, "No statement moves a job to \(next)", path: path)
        }
        try run(
            sql,
            [.text(next.rawValue), .optional(result), .optional(error), .time(at), next.isTerminal ? .time(at) : .null,
             .text(token), .optional(worker), .optional(errorCode)] + from)
        guard changes == 0 else { return }
        let current = try jobState(token)
        guard !onlyIfAllowed else { return }
        let allowed = current.allowedNextStates.map(\.rawValue).sorted()
        throw JournalError(
            .illegalTransition, "Job \(token) cannot move from \(current) to \(next)", path: path,
            remedy: allowed.isEmpty
                ? "\(current) is terminal; nothing can follow it"
                : "From \(current) it may move to: \(allowed.joined(separator: ", "))")
    }

    /// The job moves first: it finds an unknown job without a read, and nothing was written yet
    /// when it refuses (the foreign key would refuse the conversation less clearly).
    private func openConversation(_ conversation: NewConversation, now: Date, jobIsNew: Bool) throws -> Int64 {
        let created = conversation.created ?? now
        switch (conversation.role, conversation.dispatches) {
        case (.requester, true):
            try transition(conversation.job, to: .dispatched, result: nil, error: nil, at: created, worker: conversation.peer)
        case (.requester, false):
            try run("UPDATE jobs SET worker = ?, updated = max(updated, ?) WHERE token = ?",
                    [.text(conversation.peer), .time(created), .text(conversation.job)])
            guard changes > 0 else { throw unknownJob(conversation.job) }
        case (.performer, _):
            if !jobIsNew { try requireJob(conversation.job) }
        }
        if conversation.supersedesOthers {
            try run("UPDATE conversations SET current = 0, updated = ? WHERE job = ? AND current = 1 AND role = ?",
                    [.time(created), .text(conversation.job), .text(conversation.role.rawValue)])
        }
        try constraint(.duplicateConversation, "A conversation named \(conversation.token ?? "") already exists") {
            try run(
                """
                INSERT INTO conversations (token, job, peer, role, state, current, created, updated)
                VALUES (?, ?, ?, ?, 'open', 1, ?, ?)
                """,
                [.optional(conversation.token), .text(conversation.job), .text(conversation.peer),
                 .text(conversation.role.rawValue), .time(created), .time(created)])
        }
        return lastInsertRowID
    }

    /// A stanza of the conversation this write opened reads nothing: it is current and its
    /// sequence is known.
    private func recordStanza(_ stanza: NewStanza, now: Date, opened: inout Opened?) throws -> RecordOutcome {
        let conversation: ResolvedConversation
        let sequence: Int
        if stanza.conversation == .opened, let fresh = opened, fresh.isUntouched {
            conversation = fresh.conversation
            sequence = fresh.stanzas + 1
        } else {
            conversation = try resolve(stanza.conversation, opened: opened?.conversation.id)
            sequence = Int(try scalarInt(
                "SELECT coalesce(max(sequence), 0) + 1 FROM stanzas WHERE conversation = ?",
                [.integer(conversation.id)]))
        }
        guard conversation.current else {
            throw JournalError(
                .supersededAttempt,
                "Conversation \(conversation.token ?? "#\(conversation.id)") of job \(conversation.job) was superseded by a newer attempt",
                path: path, remedy: "Refuse the stanza: this attempt is fenced off")
        }
        let sent = stanza.sent ?? now
        try constraint(
            .duplicateStanza, "Stanza \(stanza.iqID) from \(conversation.peer) was already recorded"
        ) {
            try run(
                """
                INSERT INTO stanzas (conversation, sequence, direction, peer, iq_id, kind, body, answer, sent, acked)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [.integer(conversation.id), .int(sequence), .text(stanza.direction.rawValue),
                 .text(conversation.peer), .text(stanza.iqID), .text(stanza.kind.rawValue), .text(stanza.body),
                 .optional(stanza.answer), .time(sent), stanza.answer == nil ? .null : .time(sent)])
        }
        if conversation.id == opened?.conversation.id { opened?.stanzas = sequence }
        return .stanza(id: lastInsertRowID, sequence: sequence)
    }

    private func acknowledge(_ reference: StanzaRef, answer: String?, at: Date) throws {
        switch reference {
        case .id(let id):
            try run("UPDATE stanzas SET answer = coalesce(?, answer), acked = ? WHERE id = ?",
                    [.optional(answer), .time(at), .integer(id)])
        case .iq(let peer, let iqID, let direction):
            try run(
                """
                UPDATE stanzas SET answer = coalesce(?, answer), acked = ?
                WHERE id = (SELECT max(id) FROM stanzas WHERE peer = ? AND iq_id = ? AND direction = ?)
                """,
                [.optional(answer), .time(at), .text(peer), .text(iqID), .text(direction.rawValue)])
        }
        guard changes > 0 else {
            throw JournalError(.unknownStanza, "No stanza \(reference) to acknowledge", path: path)
        }
    }

    // MARK: Helpers

    private struct ResolvedConversation {
        var id: Int64
        var token: String?
        var job: String
        var peer: String
        var current: Bool
    }

    /// The conversation an ``JournalRecord/openConversation(_:)`` of this write opened, known
    /// without a read while no later record of the write could have changed it.
    private struct Opened {
        var conversation: ResolvedConversation
        /// Stanzas recorded into it so far (its last sequence number).
        var stanzas = 0
        var isUntouched = true
    }

    private func resolve(_ reference: ConversationRef, opened: Int64?) throws -> ResolvedConversation {
        let select = "SELECT id, token, job, peer, current FROM conversations WHERE "
        let found: ResolvedConversation?
        let map: (Row) -> ResolvedConversation = {
            ResolvedConversation(
                id: $0.int64(0), token: $0.optionalText(1), job: $0.text(2), peer: $0.text(3),
                current: $0.int64(4) != 0)
        }
        switch reference {
        case .id(let id): found = try first(select + "id = ?", [.integer(id)], map)
        case .token(let token): found = try first(select + "token = ?", [.text(token)], map)
        case .opened:
            guard let opened else {
                throw JournalError(
                    .invalidArgument, "ConversationRef.opened used before openConversation in the same write",
                    path: path)
            }
            found = try first(select + "id = ?", [.integer(opened)], map)
        }
        guard let found else {
            throw JournalError(.unknownConversation, "No conversation \(reference)", path: path)
        }
        return found
    }

    /// The id a reference names: no read for an id (a missing row shows later as no change).
    private func conversationID(_ reference: ConversationRef, opened: Int64?) throws -> Int64 {
        switch reference {
        case .id(let id): return id
        case .opened:
            guard let opened else { return try resolve(reference, opened: opened).id }
            return opened
        case .token: return try resolve(reference, opened: opened).id
        }
    }

    /// Throws `.unknownConversation` when the last statement changed no row.
    private func requireChange(_ reference: ConversationRef) throws {
        guard changes == 0 else { return }
        throw JournalError(.unknownConversation, "No conversation \(reference)", path: path)
    }

    private func requireJob(_ token: String) throws {
        guard try first("SELECT 1 FROM jobs WHERE token = ?", [.text(token)], { _ in true }) != nil else {
            throw unknownJob(token)
        }
    }

    private func unknownJob(_ token: String) -> JournalError {
        JournalError(.unknownJob, "No job with token \(token)", path: path)
    }

    /// Turns a UNIQUE/PRIMARY KEY violation raised by `body` into `code`.
    private func constraint(
        _ code: JournalError.Code, _ message: @autoclosure () -> String, _ body: () throws -> Void
    ) throws {
        do {
            try body()
        } catch let error as JournalError where error.sqliteCode.map({ $0 & 0xff == 19 }) == true {
            throw JournalError(
                code, message(), path: path, sqliteCode: error.sqliteCode, sqliteMessage: error.sqliteMessage)
        }
    }
}

extension JournalRecord {
    /// True when applying the record may change rows and then still fail a rule check, so that
    /// it needs a savepoint even alone.
    var modifiesBeforeItsLastCheck: Bool {
        if case .openConversation = self { return true }
        return false
    }
}

extension JournalError.Code {
    /// A rule of the journal refused one write (a duplicate, an illegal move, fencing...), or
    /// the journal was closed on purpose; anything else means storage failed.
    public var isRuleViolation: Bool { isConfinedToWrite || self == .closed || self == .ambiguousJob }

    /// Errors that concern one write only: the rest of its batch still commits.
    var isConfinedToWrite: Bool {
        [.unknownJob, .unknownConversation, .unknownStanza, .duplicateJob, .duplicateKey, .duplicateStanza,
         .duplicateConversation, .illegalTransition, .supersededAttempt, .invalidArgument].contains(self)
    }
}
