import Foundation

/// One job in `vertebra jobs --json` and the web view's `/api/jobs`. Field names and meanings
/// are stable (also `retry_of`, `key`, `not_before`):
///
/// - `id` (string): the job token `A`, 32 hex digits
/// - `op` (string): the operation path, e.g. `/image/resize`
/// - `state` (string): `pending`, `dispatched`, `running`, `done`, `failed` or `cancelled`
/// - `worker` (string or null): JID of the worker of the current attempt
/// - `attempts` (number): how many times the job was dispatched
/// - `created`, `updated` (string): ISO 8601 UTC times with milliseconds
/// - `finished` (string or null): when the job reached a terminal state
/// - `duration` (number or null): `finished - created` in seconds
/// - `scope` (string): `direct`, `single` or `all`
/// - `submitter` (string or null): JID that submitted the job; null when dispatched in-process
/// - `deadline` (string or null): ISO 8601 deadline
/// - `error` (string or null): the failure reason of a failed or cancelled job
/// - `error_code` (string or null): its code (`worker-lost`, `deadline-exceeded`, ...); null for
///   jobs journalled before schema 5
public struct JobJSON: Encodable, Sendable {
    public var id: String
    public var op: String
    public var state: String
    public var worker: String?
    public var attempts: Int
    public var created: String
    public var updated: String
    public var finished: String?
    public var duration: Double?
    public var scope: String
    public var submitter: String?
    public var deadline: String?
    public var error: String?
    public var errorCode: String?
    public var retryOf: String?
    public var key: String?
    public var notBefore: String?

    public init(_ job: Job) {
        id = job.token
        op = job.operation
        state = job.state.rawValue
        worker = job.worker
        attempts = job.attempts
        created = Self.iso(job.created)
        updated = Self.iso(job.updated)
        finished = job.finished.map(Self.iso)
        duration = job.duration.map { ($0 * 1000).rounded() / 1000 }
        scope = job.scope.rawValue
        submitter = job.submitter
        deadline = job.deadline.map(Self.iso)
        error = job.error
        errorCode = job.errorCode
        retryOf = job.retryOf
        key = job.key
        notBefore = job.notBefore.map(Self.iso)
    }

    /// Nulls are written out (not omitted) so every object has every key.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(op, forKey: .op)
        try container.encode(state, forKey: .state)
        try container.encode(worker, forKey: .worker)
        try container.encode(attempts, forKey: .attempts)
        try container.encode(created, forKey: .created)
        try container.encode(updated, forKey: .updated)
        try container.encode(finished, forKey: .finished)
        try container.encode(duration, forKey: .duration)
        try container.encode(scope, forKey: .scope)
        try container.encode(submitter, forKey: .submitter)
        try container.encode(deadline, forKey: .deadline)
        try container.encode(error, forKey: .error)
        try container.encode(errorCode, forKey: .errorCode)
        try container.encode(retryOf, forKey: .retryOf)
        try container.encode(key, forKey: .key)
        try container.encode(notBefore, forKey: .notBefore)
    }

    private static func iso(_ date: Date) -> String {
        Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(date)
    }

    private enum CodingKeys: String, CodingKey {
        case id, op, state, worker, attempts, created, updated, finished, duration, scope, submitter, deadline, error
        case errorCode = "error_code", retryOf = "retry_of", key, notBefore = "not_before"
    }
}

