import Foundation

/// Times are stored as integer milliseconds since 1970 (UTC).
extension Date {
    var journalMilliseconds: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }
    init(journalMilliseconds: Int64) { self.init(timeIntervalSince1970: Double(journalMilliseconds) / 1000) }
}

extension SQLValue {
    static func time(_ date: Date) -> SQLValue { .integer(date.journalMilliseconds) }
    static func time(_ date: Date?) -> SQLValue { date.map { .integer($0.journalMilliseconds) } ?? .null }
}

extension Row {
    func time(_ column: Int32) -> Date { Date(journalMilliseconds: int64(column)) }
    func optionalTime(_ column: Int32) -> Date? { optionalInt64(column).map(Date.init(journalMilliseconds:)) }

    /// Decodes a stored enum value; a value this version does not know is a damaged journal.
    func value<T: RawRepresentable>(_ column: Int32, as type: T.Type, path: String) throws -> T
    where T.RawValue == String {
        let raw = text(column)
        guard let value = T(rawValue: raw) else {
            throw JournalError(
                .corrupt, "The journal holds an unknown \(T.self) value '\(raw)'", path: path,
                remedy: "The file was changed by another program; move it aside or restore a backup")
        }
        return value
    }
}

enum Columns {
    static let job = """
        token, operation, arguments, scope, submitter, state, attempts, deadline, result, error, \
        worker, created, updated, finished, retry_of, unique_key, not_before, error_code
        """
    static let conversation = "id, token, job, peer, role, state, current, created, updated"
    static let stanza = "id, conversation, sequence, direction, peer, iq_id, kind, body, answer, sent, acked"
}

extension Connection {
    func job(from row: Row) throws -> Job {
        Job(
            token: row.text(0), operation: row.text(1), arguments: row.text(2),
            scope: try row.value(3, as: JobScope.self, path: path), submitter: row.optionalText(4),
            state: try row.value(5, as: JobState.self, path: path), attempts: row.int(6),
            deadline: row.optionalTime(7), result: row.optionalText(8), error: row.optionalText(9),
            worker: row.optionalText(10), created: row.time(11), updated: row.time(12),
            finished: row.optionalTime(13), retryOf: row.optionalText(14), key: row.optionalText(15),
            notBefore: row.optionalTime(16), errorCode: row.optionalText(17))
    }

    func conversation(from row: Row) throws -> Conversation {
        Conversation(
            id: row.int64(0), token: row.optionalText(1), job: row.text(2), peer: row.text(3),
            role: try row.value(4, as: ConversationRole.self, path: path),
            state: try row.value(5, as: ConversationState.self, path: path),
            isCurrent: row.int64(6) != 0, created: row.time(7), updated: row.time(8))
    }

    func stanza(from row: Row) throws -> Stanza {
        Stanza(
            id: row.int64(0), conversation: row.int64(1), sequence: row.int(2),
            direction: try row.value(3, as: StanzaDirection.self, path: path), peer: row.text(4),
            iqID: row.text(5), kind: try row.value(6, as: StanzaKind.self, path: path), body: row.text(7),
            answer: row.optionalText(8), sent: row.time(9), acked: row.optionalTime(10))
    }
}
