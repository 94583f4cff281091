import Foundation
import Natter
import VertebraXML

/// Who may dispatch which operations through the coordinator (`/security/authorize`), and who
/// may serve (advertise) which operations as a worker.
///
/// The file has one rule per line: an optional kind (`submit`, the default, or `serve`), a JID
/// pattern, then one or more operation paths. A pattern is a bare JID (`alice@example.org`),
/// `*@example.org` (anyone at that domain) or `*` (anyone). An operation path covers itself and
/// everything below it by path component (`/image` covers `/image/resize`); `/` covers every
/// operation. `#` starts a comment.
///
/// ```
/// # submitter            operations
/// alice@example.org      /image /files/checksum
/// *@ops.example.org      /exec/run
/// # workers
/// serve w1@example.org   /image
/// serve *@workers.example.org /
/// ```
///
/// The coordinator's own account is always allowed; everyone else needs a rule. An
/// advertisement is kept only for the operations a `serve` rule allows its sender.
public struct AccessList: Sendable, Equatable {
    public struct Rule: Sendable, Equatable {
        /// A bare JID, `*@domain` or `*`.
        public var submitter: String
        public var operations: [Resource]

        public init(submitter: String, operations: [Resource]) {
            self.submitter = submitter
            self.operations = operations
        }
    }

    /// Who may submit.
    public var rules: [Rule]
    /// Who may serve.
    public var serveRules: [Rule]

    public init(rules: [Rule] = [], serveRules: [Rule] = []) {
        self.rules = rules
        self.serveRules = serveRules
    }

    /// Parses the file format above; the error names the line.
    public init(parsing text: String) throws {
        var rules: [Rule] = []
        var serveRules: [Rule] = []
        for (index, rawLine) in text.fileLines.enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            var fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
            var serves = false
            if let kind = fields.first, kind == "serve" || kind == "submit" {
                serves = kind == "serve"
                fields.removeFirst()
                guard !fields.isEmpty else { throw VertebraError(.badRequest, "ACL line \(index + 1): '\(kind)' needs a JID pattern and operation paths") }
            }
            guard let submitter = fields.first else { continue }
            guard fields.count >= 2 else {
                throw VertebraError(.badRequest, "ACL line \(index + 1): '\(submitter)' has no operation paths")
            }
            try Self.checkPattern(submitter, line: index + 1, paths: fields.dropFirst())
            let operations = try fields.dropFirst().map { path -> Resource in
                guard path.hasPrefix("/") else {
                    throw VertebraError(.badRequest, "ACL line \(index + 1): '\(path)' is not an operation path (start with /)")
                }
                return Resource(path)
            }
            if serves {
                serveRules.append(Rule(submitter: submitter, operations: operations))
            } else {
                rules.append(Rule(submitter: submitter, operations: operations))
            }
        }
        self.rules = rules
        self.serveRules = serveRules
    }

    /// A rule's JID pattern must be a bare JID, `*@domain` or `*`. A full JID is refused, not
    /// widened to its account: a rule meant for one resource would let every resource in.
    private static func checkPattern(_ pattern: String, line: Int, paths: ArraySlice<String>) throws {
        if pattern == "*" || pattern.hasPrefix("*@") { return }
        guard let jid = JID(pattern) else {
            throw VertebraError(.badRequest, "ACL line \(line): '\(pattern)' is not a JID, *@domain or *")
        }
        if let first = paths.first, !first.hasPrefix("/"), !pattern.contains("@") {
            // `frob w1@example.org /x`: an unknown kind read as a JID.
            throw VertebraError(.badRequest, "ACL line \(line): '\(pattern)' is neither 'serve' nor 'submit' (a rule is [serve|submit] JID /path ...)")
        }
        guard !jid.isFull else {
            throw VertebraError(.badRequest, "ACL line \(line): '\(pattern)' names a resource; a rule names a bare JID (\(jid.bare)), *@domain or *, and covers every resource of it")
        }
    }

    /// Reads an ACL file.
    public init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw VertebraError(.badRequest, "cannot read the ACL file \(path) (missing, unreadable or not UTF-8)")
        }
        try self.init(parsing: text)
    }

    /// Whether `submitter` may dispatch `operation`.
    public func allows(_ submitter: JID, _ operation: Resource) -> Bool {
        Self.allows(rules, submitter, operation)
    }

    /// Whether `worker` may serve (advertise) `operation`.
    public func allowsServing(_ worker: JID, _ operation: Resource) -> Bool {
        Self.allows(serveRules, worker, operation)
    }

    /// Whether any rule (submit or serve) names `jid`: only such accounts may use the
    /// coordinator's discovery and authorization services.
    public func mentions(_ jid: JID) -> Bool {
        (rules + serveRules).contains { Self.matches($0.submitter, jid) }
    }

    private static func allows(_ rules: [Rule], _ jid: JID, _ operation: Resource) -> Bool {
        rules.contains { rule in
            matches(rule.submitter, jid) && rule.operations.contains { $0.covers(operation) }
        }
    }

    private static func matches(_ pattern: String, _ jid: JID) -> Bool {
        if pattern == "*" { return true }
        if pattern.hasPrefix("*@") { return jid.domain == String(pattern.dropFirst(2)) }
        return JID(pattern)?.bare == jid.bare
    }
}
