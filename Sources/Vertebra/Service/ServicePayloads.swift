import VertebraXML

/// The coordinator's service operations (DESIGN §4), in the shapes Vertebra 0.4 used.
public enum ServiceOperation {
    public static let advertise: Resource = "/security/advertise"
    public static let discover: Resource = "/security/discover"
    public static let authorize: Resource = "/security/authorize"
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
