import VertebraXML

/// The coordinator's service operations (DESIGN §4), in the shapes Vertebra 0.4 used.
public enum ServiceOperation {
    public static let advertise: Resource = "/security/advertise"
    public static let discover: Resource = "/security/discover"
    public static let authorize: Resource = "/security/authorize"
    /// The live roster (`vertebra workers`): an extension for accounts whose ACL rule covers it.
    public static let workers: Resource = "/security/workers"
    /// Operator actions on one job (`vertebra jobs cancel|retry`): extensions, allowed to the
    /// job's submitter and to accounts whose ACL rule covers the path.
    public static let cancelJob: Resource = "/security/jobs/cancel"
    public static let retryJob: Resource = "/security/jobs/retry"
}

/// The arguments of `/security/jobs/cancel` and `/security/jobs/retry`.
struct JobActionRequest: Codable, Sendable {
    /// A job id or a unique prefix of it.
    var job: String
}

/// The answer to an operator action on a job.
public struct JobActionResult: Codable, Sendable, Equatable {
    /// The job acted on: for a retry, the new job.
    public var job: String
    /// `cancelling` (the job's workers were told; it ends `cancelled`), or the new job's state.
    public var state: String
    /// For a retry, the job it repeats.
    public var retryOf: String?

    public init(job: String, state: String, retryOf: String? = nil) {
        self.job = job
        self.state = state
        self.retryOf = retryOf
    }
}

/// One live worker as `/security/workers` reports it.
public struct WorkerStatus: Codable, Sendable, Equatable {
    public var jid: String
    public var operations: [Resource]
    /// Jobs it runs now (as the coordinator counts them) and how many it takes at once.
    public var outstanding: Int
    public var capacity: Int
    /// Seconds since its last advertisement, and until that advertisement runs out.
    public var advertisedSecondsAgo: Int
    public var expiresInSeconds: Int
}

/// The answer to `/security/workers`.
struct WorkerRoster: Codable, Sendable {
    var workers: [WorkerStatus]
}

/// `/security/advertise`: a worker's operations and resources, valid for `ttl` seconds (0
/// withdraws). `retryable` and `capacity` are extensions a 0.4 coordinator ignores.
struct Advertisement: Codable, Sendable, Equatable {
    var operations: [Resource]
    var resources: [String: [Resource]]
    var ttl: Int
    /// Operations that may be run again after a lost attempt.
    var retryable: [Resource]?
    /// How many jobs the worker runs at once.
    var capacity: Int?
    /// The fast-path budget in milliseconds, when the worker offers the fast path (``FastPath``).
    var fastPath: Int?

    /// Bounds a coordinator accepts (a day; a generous pool).
    static let maxTTL = 86_400
    static let maxCapacity = 100_000
}

/// `/security/discover`: which workers can run `operation` on `resources`.
struct DiscoverRequest: Codable, Sendable {
    struct Job: Codable, Sendable {
        var operation: Resource
        var resources: [String: Resource]?
    }
    var job: Job
}

/// The answer to `/security/discover`.
struct DiscoverResult: Codable, Sendable {
    var jids: [String]
}

/// `/security/authorize`: may `from` dispatch `operation`?
struct AuthorizeRequest: Codable, Sendable {
    var from: String
    var operation: Resource
}

/// The answer to `/security/authorize`: `authorized` or `notauthorized`.
enum AuthorizeAnswer {
    static let authorized = "authorized"
    static let notAuthorized = "notauthorized"
}
