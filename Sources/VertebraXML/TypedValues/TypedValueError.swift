/// A value that could not be mapped between Swift and Vertebra's typed XML values.
///
/// It names the field by its coding path (`size.width`, `files[2]`), what was expected, and what
/// was found, so an agent can answer a bad payload with a `bad-request` that says which field is
/// wrong.
public struct TypedValueError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of problem. Extensible: new codes may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The code's stable name.
        public let rawValue: String
        private init(_ rawValue: String) { self.rawValue = rawValue }

        /// The element has another type than the Swift value needs.
        public static let typeMismatch = Code("type-mismatch")
        /// A required field is absent.
        public static let missingField = Code("missing-field")
        /// The element has the right type but its content is not a valid value of it
        /// (`<i4>12x</i4>`, a number out of range, bad base64, a string XML cannot carry).
        public static let invalidValue = Code("invalid-value")
        /// A list has fewer items than the Swift value needs.
        public static let missingItem = Code("missing-item")

        public var description: String { rawValue }
    }

    /// What went wrong.
    public let code: Code
    /// The field's path, e.g. `["size", "width"]` or `["files", "[2]"]`.
    public let path: [String]
    /// What the Swift type needed, e.g. `<i4> (or <i8>, <int>, <integer>)`.
    public let expected: String
    /// What the payload held, e.g. `<string name='width'>`, or `nothing`.
    public let found: String

    /// Makes an error.
    public init(code: Code, path: [String], expected: String, found: String) {
        self.code = code
        self.path = path
        self.expected = expected
        self.found = found
    }

    /// The path as one string, `size.width` or `files[2]`; `(top level)` when empty.
    public var field: String {
        guard !path.isEmpty else { return "(top level)" }
        var result = ""
        for component in path {
            if !component.hasPrefix("["), !result.isEmpty { result += "." }
            result += component
        }
        return result
    }

    public var description: String {
        "field \(field): expected \(expected), found \(found)"
    }

    static func path(_ codingPath: [any CodingKey]) -> [String] {
        codingPath.map { key in
            if key is IndexKey, let index = key.intValue { return "[\(index)]" }
            return key.stringValue
        }
    }
}
