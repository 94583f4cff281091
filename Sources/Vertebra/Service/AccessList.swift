import Foundation
import Natter
import VertebraXML

/// Who may dispatch which operations through the coordinator (`/security/authorize`).
///
/// The file has one rule per line: a submitter pattern, then one or more operation paths.
/// A submitter pattern is a bare JID (`alice@example.org`), `*@example.org` (anyone at that
/// domain) or `*` (anyone). An operation path covers itself and everything below it by path
/// component (`/image` covers `/image/resize`); `/` covers every operation. `#` starts a comment.
///
/// ```
/// # submitter            operations
/// alice@example.org      /image /files/checksum
/// *@ops.example.org      /exec/run
/// ```
///
/// The coordinator's own account is always allowed; everyone else needs a rule.
public struct AccessList: Sendable, Equatable {
    public struct Rule: Sendable, Equatable {
        public var submitter: String
        public var operations: [Resource]
    }

    public var rules: [Rule]

    public init(rules: [Rule] = []) {
        self.rules = rules
    }

    /// Parses the file format above; the error names the line.
    public init(parsing text: String) throws {
        var rules: [Rule] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let submitter = fields.first else { continue }
            guard fields.count >= 2 else {
                throw VertebraError(.badRequest, "ACL line \(index + 1): '\(submitter)' has no operation paths")
            }
            guard submitter == "*" || submitter.hasPrefix("*@") || JID(submitter) != nil else {
                throw VertebraError(.badRequest, "ACL line \(index + 1): '\(submitter)' is not a JID, *@domain or *")
            }
            let operations = try fields.dropFirst().map { path -> Resource in
                guard path.hasPrefix("/") else {
                    throw VertebraError(.badRequest, "ACL line \(index + 1): '\(path)' is not an operation path (start with /)")
                }
                return Resource(path)
            }
            rules.append(Rule(submitter: submitter, operations: operations))
        }
        self.rules = rules
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
        rules.contains { rule in
            matches(rule.submitter, submitter) && rule.operations.contains { $0.covers(operation) }
        }
    }

    private func matches(_ pattern: String, _ jid: JID) -> Bool {
        if pattern == "*" { return true }
        if pattern.hasPrefix("*@") { return jid.domain == String(pattern.dropFirst(2)) }
        return JID(pattern)?.bare == jid.bare
    }
}
