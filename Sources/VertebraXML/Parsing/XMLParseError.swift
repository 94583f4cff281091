/// Why XML input was refused, and where.
///
/// Every malformed or hostile input reaches the caller as one of these; the parser never crashes
/// and never buffers more than its ``XMLParserLimits`` allow. `code` says what kind of problem it
/// is (transport layers map it to a stream error: `not-well-formed`, `restricted-xml`,
/// `policy-violation`, ...); `message` says what was seen; `byteOffset` is where, counted from
/// the first byte fed to the parser.
public struct XMLParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of problem. Extensible: new codes may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's stable name.
        public let rawValue: String
        private init(_ rawValue: String) { self.rawValue = rawValue }

        /// The input is not well-formed XML (bad syntax, mismatched tags, invalid characters).
        public static let notWellFormed = Code("not-well-formed")
        /// The bytes are not valid UTF-8.
        public static let invalidUTF8 = Code("invalid-utf8")
        /// A construct XMPP forbids: DOCTYPE, entity declaration, processing instruction, comment.
        public static let restrictedXML = Code("restricted-xml")
        /// A prefix is used without a namespace declaration.
        public static let unboundPrefix = Code("unbound-prefix")
        /// A stanza (or document) is larger than ``XMLParserLimits/maxStanzaBytes``.
        public static let stanzaTooLarge = Code("stanza-too-large")
        /// Elements are nested deeper than ``XMLParserLimits/maxDepth``.
        public static let tooDeep = Code("too-deep")
        /// An element has more attributes than ``XMLParserLimits/maxAttributes``.
        public static let tooManyAttributes = Code("too-many-attributes")
        /// Non-whitespace text outside any stanza, at the stream level.
        public static let textAtStreamLevel = Code("text-at-stream-level")
        /// The input ended before the document (or stanza) was complete.
        public static let truncated = Code("truncated")
        /// Input arrived after the stream or document was closed, or after an earlier error.
        public static let inputAfterEnd = Code("input-after-end")

        public var description: String { rawValue }
    }

    /// What kind of problem this is.
    public let code: Code
    /// A human-readable explanation of what was wrong.
    public let message: String
    /// Byte offset of the problem from the first byte fed to the parser.
    public let byteOffset: Int
    /// 1-based line of the problem, when known.
    public let line: Int
    /// 0-based column of the problem, when known.
    public let column: Int

    /// Makes an error.
    public init(code: Code, message: String, byteOffset: Int, line: Int = 0, column: Int = 0) {
        self.code = code
        self.message = message
        self.byteOffset = byteOffset
        self.line = line
        self.column = column
    }

    public var description: String {
        let position = line > 0 ? "line \(line), column \(column), " : ""
        return "XML \(code): \(message) (at \(position)byte \(byteOffset))"
    }
}
