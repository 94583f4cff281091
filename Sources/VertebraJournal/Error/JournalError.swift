import Foundation

/// An error raised by the exchange journal.
///
/// Like GRDB's `DatabaseError` and swift-jobs' `JobQueueError`, it is a struct with an extensible
/// ``Code`` plus context: the journal file, SQLite's own result code and message when SQLite
/// produced the error, and a ``remedy`` telling the user what to do about it.
public struct JournalError: Error, Sendable, CustomStringConvertible, Equatable {
    /// What kind of failure this is. Compare with the static members, e.g. `error.code == .locked`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// A stable, machine-readable name (`"locked"`, `"illegal-transition"`, ...).
        public let rawValue: String
        /// Makes a code; prefer the static members.
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The journal file does not exist (and this opener does not create it).
        public static let fileNotFound = Code("file-not-found")
        /// The file or its directory cannot be opened or created.
        public static let cannotOpen = Code("cannot-open")
        /// Another connection holds a lock longer than the busy timeout.
        public static let locked = Code("locked")
        /// The file is not an SQLite database, or it is damaged or truncated.
        public static let corrupt = Code("corrupt")
        /// The file (or its directory) cannot be written.
        public static let readOnly = Code("read-only")
        /// The disk (or the journal's configured size limit) is full.
        public static let diskFull = Code("disk-full")
        /// The disk reported an I/O error.
        public static let ioError = Code("io-error")
        /// The journal was written by a newer version of Vertebra.
        public static let newerSchema = Code("newer-schema")
        /// No job with this id.
        public static let unknownJob = Code("unknown-job")
        /// An id prefix matches more than one job.
        public static let ambiguousJob = Code("ambiguous-job")
        /// No conversation with this reference.
        public static let unknownConversation = Code("unknown-conversation")
        /// No stanza with this reference.
        public static let unknownStanza = Code("unknown-stanza")
        /// A job with this token already exists.
        public static let duplicateJob = Code("duplicate-job")
        /// An unfinished job already has this unique key.
        public static let duplicateKey = Code("duplicate-key")
        /// An inbound stanza with this (peer, IQ id) was already recorded.
        public static let duplicateStanza = Code("duplicate-stanza")
        /// A conversation with this token already exists.
        public static let duplicateConversation = Code("duplicate-conversation")
        /// The job state machine does not allow this move.
        public static let illegalTransition = Code("illegal-transition")
        /// The conversation is a superseded attempt (fencing).
        public static let supersededAttempt = Code("superseded-attempt")
        /// A filter or argument value is invalid.
        public static let invalidArgument = Code("invalid-argument")
        /// The journal was closed.
        public static let closed = Code("closed")
        /// Any other SQLite failure.
        public static let sqlite = Code("sqlite")
    }

    /// What kind of failure this is.
    public var code: Code
    /// What went wrong, in one sentence.
    public var message: String
    /// The journal file concerned, when known.
    public var path: String?
    /// SQLite's extended result code, when SQLite produced the error.
    public var sqliteCode: Int32?
    /// SQLite's error message, when SQLite produced the error.
    public var sqliteMessage: String?
    /// What the user can do about it.
    public var remedy: String?

    /// Makes an error; the journal fills in ``path`` where it knows it.
    public init(
        _ code: Code, _ message: String, path: String? = nil, sqliteCode: Int32? = nil,
        sqliteMessage: String? = nil, remedy: String? = nil
    ) {
        self.code = code
        self.message = message
        self.path = path
        self.sqliteCode = sqliteCode
        self.sqliteMessage = sqliteMessage
        self.remedy = remedy
    }

    /// `message (journal: path; SQLite: message). remedy`
    public var description: String {
        var text = message
        var context: [String] = []
        if let path { context.append("journal: \(path)") }
        if let sqliteMessage, let sqliteCode { context.append("SQLite \(sqliteCode): \(sqliteMessage)") }
        if !context.isEmpty { text += " (" + context.joined(separator: "; ") + ")" }
        if let remedy { text += ". " + remedy }
        return text
    }

    func with(path: String) -> JournalError {
        var copy = self
        if copy.path == nil { copy.path = path }
        return copy
    }
}
