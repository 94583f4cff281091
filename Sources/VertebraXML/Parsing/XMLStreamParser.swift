import Foundation

/// A streaming parser for XMPP streams: feed it bytes as they arrive; it returns the stream
/// opening, each complete stanza, and the stream close.
///
/// One expat parser serves the whole stream, so any split of the input — inside a tag, an
/// entity, or a multi-byte UTF-8 character — gives the same events. Memory is bounded by
/// ``XMLParserLimits/maxStanzaBytes``, not by the length of the stream.
///
/// ```swift
/// let parser = XMLStreamParser()
/// for event in try parser.feed(bytesFromSocket) {
///     if case .stanza(let stanza) = event { route(stanza) }
/// }
/// ```
///
/// Not `Sendable`: own one parser per connection, in one task or channel handler. After an
/// error every later `feed` throws the same error; call ``reset()`` for a new stream (as XMPP
/// requires after STARTTLS and SASL).
public final class XMLStreamParser {
    private let engine: ExpatTreeParser

    /// Makes a parser enforcing `limits`.
    public init(limits: XMLParserLimits = .stream) {
        engine = ExpatTreeParser(mode: .stream, limits: limits)
    }

    /// The limits this parser enforces.
    public var limits: XMLParserLimits { engine.limits }

    /// Bytes consumed since the parser was made or last reset.
    public var bytesConsumed: Int { engine.bytesConsumed }

    /// Parses the next chunk of the stream and returns the events it completed, in order.
    public func feed(_ bytes: UnsafeRawBufferPointer) throws(XMLParseError) -> [XMLStreamEvent] {
        try engine.feed(bytes)
    }

    /// Parses the next chunk of the stream.
    public func feed(_ bytes: [UInt8]) throws(XMLParseError) -> [XMLStreamEvent] {
        try bytes.withUnsafeBytes { buffer in
            Result { () throws(XMLParseError) in try engine.feed(buffer) }
        }.get()
    }

    /// Parses the next chunk of the stream.
    public func feed(_ data: Data) throws(XMLParseError) -> [XMLStreamEvent] {
        try data.withUnsafeBytes { buffer in
            Result { () throws(XMLParseError) in try engine.feed(buffer) }
        }.get()
    }

    /// Parses the next chunk of the stream, given as text.
    public func feed(_ text: String) throws(XMLParseError) -> [XMLStreamEvent] {
        try feed(Array(text.utf8))
    }

    /// Starts over for a new stream on the same connection.
    public func reset() { engine.reset() }
}

@available(*, unavailable)
extension XMLStreamParser: Sendable {}

// MARK: - Standalone documents

extension XElement {
    /// Parses a standalone XML document (a payload, a file) into its root element.
    ///
    /// The same rules as for streams apply: no DOCTYPE, entity declarations or processing
    /// instructions; limits from `limits` (comments are allowed by the default document limits).
    public init(parsing bytes: UnsafeRawBufferPointer, limits: XMLParserLimits = .document)
        throws(XMLParseError)
    {
        let engine = ExpatTreeParser(mode: .document, limits: limits)
        let events = try engine.feed(bytes, isFinal: true)
        guard case .stanza(let root)? = events.first else {
            throw XMLParseError(
                code: .truncated, message: "the document has no root element",
                byteOffset: bytes.count)
        }
        self = root
    }

    /// Parses a standalone XML document given as bytes.
    public init(parsing bytes: [UInt8], limits: XMLParserLimits = .document) throws(XMLParseError) {
        self = try bytes.withUnsafeBytes { buffer in
            Result { () throws(XMLParseError) in try XElement(parsing: buffer, limits: limits) }
        }.get()
    }

    /// Parses a standalone XML document given as `Data`.
    public init(parsing data: Data, limits: XMLParserLimits = .document) throws(XMLParseError) {
        self = try data.withUnsafeBytes { buffer in
            Result { () throws(XMLParseError) in try XElement(parsing: buffer, limits: limits) }
        }.get()
    }

    /// Parses a standalone XML document given as text.
    public init(xml: String, limits: XMLParserLimits = .document) throws(XMLParseError) {
        try self.init(parsing: Array(xml.utf8), limits: limits)
    }
}
