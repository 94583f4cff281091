internal import CExpat
import Foundation

/// The engine behind ``XMLStreamParser`` and document parsing: one expat parser, fed slices of
/// input, building ``XElement`` trees with pooled buffers.
///
/// Not `Sendable`: it owns a C parser and must be used by one task or channel handler at a time.
/// expat calls back synchronously from `XML_Parse`; the callbacks work on a ``TreeBuilder``
/// reached through a raw pointer (so the hot path pays no dynamic exclusivity checks), which
/// records events and errors for `feed` to return.
final class ExpatTreeParser {
    /// Largest slice handed to expat at once, so the size limit is checked often enough to bound
    /// memory even when a caller feeds one huge buffer.
    private static let sliceBytes = 16 * 1024

    private let state: UnsafeMutablePointer<TreeBuilder>
    private var parser: OpaquePointer?

    init(mode: TreeBuilder.Mode, limits: XMLParserLimits) {
        state = .allocate(capacity: 1)
        state.initialize(to: TreeBuilder(mode: mode, limits: limits))
    }

    deinit {
        if let parser { XML_ParserFree(parser) }
        state.deinitialize(count: 1)
        state.deallocate()
    }

    var limits: XMLParserLimits { state.pointee.limits }
    var bytesConsumed: Int { state.pointee.bytesConsumed }

    /// Forgets all state, as at an XMPP stream restart.
    func reset() {
        if let parser { XML_ParserFree(parser) }
        parser = nil
        state.pointee.reset()
    }

    /// Parses `bytes` and returns the events they completed.
    func feed(_ bytes: UnsafeRawBufferPointer, isFinal: Bool = false) throws(XMLParseError)
        -> [XMLStreamEvent]
    {
        if let failure = state.pointee.failure { throw failure }
        if state.pointee.finished {
            if bytes.allSatisfy(TreeBuilder.isXMLWhitespace) { return [] }
            throw state.pointee.fail(
                .inputAfterEnd, "input after the end of the \(state.pointee.modeNoun)",
                at: state.pointee.bytesConsumed)
        }
        let parser = try liveParser()
        var offset = 0
        repeat {
            let count = min(ExpatTreeParser.sliceBytes, bytes.count - offset)
            let piece = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
            offset += count
            try parse(piece, with: parser, isFinal: isFinal && offset == bytes.count)
        } while offset < bytes.count
        return state.pointee.takeEvents()
    }

    private func liveParser() throws(XMLParseError) -> OpaquePointer {
        if let parser { return parser }
        guard let created = XML_ParserCreateNS("UTF-8", 0x20) else {
            throw state.pointee.fail(.notWellFormed, "expat could not allocate a parser", at: 0)
        }
        parser = created
        state.pointee.parser = created
        XML_SetUserData(created, UnsafeMutableRawPointer(state))
        vertebra_expat_disable_reparse_deferral(created)
        TreeBuilder.installCallbacks(on: created)
        return created
    }

    private func parse(_ piece: UnsafeRawBufferPointer, with parser: OpaquePointer, isFinal: Bool)
        throws(XMLParseError)
    {
        let base = piece.baseAddress?.assumingMemoryBound(to: CChar.self)
        let status = XML_Parse(parser, base, Int32(piece.count), isFinal ? 1 : 0)
        let sliceStart = state.pointee.bytesConsumed
        state.pointee.bytesConsumed += piece.count
        if let failure = state.pointee.failure { throw failure }
        if status != XML_STATUS_OK {
            throw state.pointee.expatFailure(piece: piece, pieceStart: sliceStart)
        }
        try state.pointee.checkUnfinishedSize()
    }
}

/// Builds trees from expat's callbacks and keeps the parse's bookkeeping: depth, limits, the
/// byte offsets of the last complete event, and the first failure.
struct TreeBuilder {
    enum Mode {
        /// Depth 1 is the stream element, depth 2 elements are stanzas.
        case stream
        /// Depth 1 is the document element, returned whole.
        case document
    }

    /// An open element; its children so far are `nodes[firstChild...]`.
    private struct Frame {
        let name: NameTable.Name
        let attributes: [XAttribute]
        let firstChild: Int
    }

    let mode: Mode
    let limits: XMLParserLimits
    var parser: OpaquePointer?
    private(set) var failure: XMLParseError?
    private(set) var finished = false
    /// Bytes handed to expat since the last reset.
    var bytesConsumed = 0
    private var names = NameTable()
    private var values = ValueTable()
    private var singleAttributes = SingleAttributeTable()
    /// Open elements, innermost last.
    private var frames: [Frame] = []
    /// Children of all open elements, as one stack (fewer buffers than one array per element).
    private var nodes: [XNode] = []
    /// Character data of the innermost open element not yet turned into a text node. Most text
    /// arrives in one callback and becomes a String directly; more pieces are appended to it.
    private var text: String?
    private var depth = 0
    private var events: [XMLStreamEvent] = []
    /// Offset just after the last complete top-level event (stream open, stanza).
    private var boundary = 0
    private var stanzaStart = 0

    init(mode: Mode, limits: XMLParserLimits) {
        self.mode = mode
        self.limits = limits
    }

    mutating func reset() {
        parser = nil
        names.removeAll()
        values.removeAll()
        failure = nil
        finished = false
        bytesConsumed = 0
        frames.removeAll(keepingCapacity: true)
        nodes.removeAll(keepingCapacity: true)
        text = nil
        depth = 0
        events.removeAll(keepingCapacity: true)
        boundary = 0
        stanzaStart = 0
    }

    var modeNoun: String { mode == .stream ? "stream" : "document" }

    mutating func takeEvents() -> [XMLStreamEvent] {
        let completed = events
        events.removeAll(keepingCapacity: true)
        return completed
    }

    // MARK: Errors and limits

    mutating func checkUnfinishedSize() throws(XMLParseError) {
        guard !finished, bytesConsumed - boundary > limits.maxStanzaBytes else { return }
        let unit = mode == .stream ? "stanza" : "document"
        throw fail(.stanzaTooLarge, "more than \(limits.maxStanzaBytes) bytes without a complete \(unit)", at: boundary)
    }

    mutating func expatFailure(piece: UnsafeRawBufferPointer, pieceStart: Int) -> XMLParseError {
        guard let parser else { return fail(.notWellFormed, "parser missing", at: pieceStart) }
        let code = XML_GetErrorCode(parser)
        let offset = Int(vertebra_expat_byte_index(parser))
        let text = XML_ErrorString(code).map { String(cString: $0) } ?? "unknown expat error"
        let kind: XMLParseError.Code
        switch code {
        case XML_ERROR_UNBOUND_PREFIX: kind = .unboundPrefix
        case XML_ERROR_NO_ELEMENTS, XML_ERROR_UNCLOSED_TOKEN: kind = .truncated
        case XML_ERROR_PARTIAL_CHAR: kind = .invalidUTF8
        case XML_ERROR_JUNK_AFTER_DOC_ELEMENT: kind = .inputAfterEnd
        case XML_ERROR_INVALID_TOKEN:
            let start = max(0, min(piece.count, offset - pieceStart))
            let rest = UnsafeRawBufferPointer(rebasing: piece[start...])
            kind = UTF8Validation.firstInvalidByte(in: rest) == nil ? .notWellFormed : .invalidUTF8
        default: kind = .notWellFormed
        }
        return fail(kind, text, at: offset)
    }

    @discardableResult
    mutating func fail(_ code: XMLParseError.Code, _ message: String, at offset: Int) -> XMLParseError {
        var line = 0
        var column = 0
        if let parser {
            line = Int(XML_GetCurrentLineNumber(parser))
            column = Int(XML_GetCurrentColumnNumber(parser))
        }
        let error = XMLParseError(code: code, message: message, byteOffset: offset, line: line, column: column)
        if failure == nil { failure = error }
        return failure ?? error
    }

    /// Records a violation found inside a callback and stops expat.
    private mutating func abort(_ code: XMLParseError.Code, _ message: String) {
        guard let parser, failure == nil else { return }
        fail(code, message, at: Int(vertebra_expat_byte_index(parser)))
        XML_StopParser(parser, 0)
    }

    private func currentEventEnd() -> Int {
        guard let parser else { return bytesConsumed }
        return Int(vertebra_expat_byte_index(parser)) + Int(XML_GetCurrentByteCount(parser))
    }

    // MARK: Callbacks

    private static func builder(_ userData: UnsafeMutableRawPointer?) -> UnsafeMutablePointer<TreeBuilder>? {
        userData?.assumingMemoryBound(to: TreeBuilder.self)
    }

    static func installCallbacks(on parser: OpaquePointer) {
        XML_SetElementHandler(
            parser,
            { userData, name, attributes in
                guard let name else { return }
                TreeBuilder.builder(userData)?.pointee.startElement(name, attributes)
            },
            { userData, _ in TreeBuilder.builder(userData)?.pointee.endElement() })
        XML_SetCharacterDataHandler(parser) { userData, bytes, length in
            guard let bytes, length > 0 else { return }
            TreeBuilder.builder(userData)?.pointee.characters(
                UnsafeRawBufferPointer(start: bytes, count: Int(length)))
        }
        XML_SetStartDoctypeDeclHandler(parser) { userData, _, _, _, _ in
            TreeBuilder.builder(userData)?.pointee.abort(.restrictedXML, "DOCTYPE declarations are not allowed")
        }
        XML_SetEntityDeclHandler(parser) { userData, _, _, _, _, _, _, _, _ in
            TreeBuilder.builder(userData)?.pointee.abort(.restrictedXML, "entity declarations are not allowed")
        }
        XML_SetProcessingInstructionHandler(parser) { userData, _, _ in
            TreeBuilder.builder(userData)?.pointee.abort(.restrictedXML, "processing instructions are not allowed")
        }
        XML_SetCommentHandler(parser) { userData, _ in
            guard let builder = TreeBuilder.builder(userData), !builder.pointee.limits.allowsComments else { return }
            builder.pointee.abort(.restrictedXML, "comments are not allowed")
        }
    }

    private var rootDepth: Int { mode == .stream ? 2 : 1 }

    private mutating func startElement(
        _ cName: UnsafePointer<CChar>, _ cAttributes: UnsafeMutablePointer<UnsafePointer<CChar>?>?
    ) {
        depth += 1
        if depth > limits.maxDepth {
            return abort(.tooDeep, "elements nested deeper than \(limits.maxDepth)")
        }
        let name = names.resolve(cName)
        guard let attributes = readAttributes(cAttributes) else { return }
        if mode == .stream && depth == 1 {
            events.append(.streamOpened(XElement(name.local, namespace: name.namespace, attributes: attributes)))
            boundary = currentEventEnd()
            return
        }
        if depth == rootDepth, let parser {
            stanzaStart = Int(vertebra_expat_byte_index(parser))
        }
        flushText()
        frames.append(Frame(name: name, attributes: attributes, firstChild: nodes.count))
    }

    private mutating func readAttributes(_ cAttributes: UnsafeMutablePointer<UnsafePointer<CChar>?>?)
        -> [XAttribute]?
    {
        guard let cAttributes, cAttributes[0] != nil else { return [] }
        var count = 0
        while cAttributes[count * 2] != nil { count += 1 }
        if count > limits.maxAttributes {
            abort(.tooManyAttributes, "\(count) attributes on one element; at most \(limits.maxAttributes) allowed")
            return nil
        }
        if count == 1, let cName = cAttributes[0], let cValue = cAttributes[1],
            let shared = singleAttributes.cached(cName, cValue)
        {
            return shared
        }
        var attributes: [XAttribute] = []
        attributes.reserveCapacity(count)
        for index in 0..<count {
            guard let cName = cAttributes[index * 2], let cValue = cAttributes[index * 2 + 1] else { break }
            let name = names.resolve(cName)
            attributes.append(XAttribute(name.local, values.resolve(cValue), namespace: name.namespace))
        }
        if count == 1, let cName = cAttributes[0], let cValue = cAttributes[1] {
            singleAttributes.store(attributes, cName, cValue)
        }
        return attributes
    }

    private mutating func endElement() {
        defer { depth -= 1 }
        if mode == .stream && depth == 1 {
            events.append(.streamClosed)
            finished = true
            boundary = currentEventEnd()
            return
        }
        guard let frame = frames.popLast() else { return }
        let children: [XNode]
        if frame.firstChild == nodes.count {
            // A leaf (most typed values): its text, if any, is the only child.
            children = text.map { [.text($0)] } ?? []
            text = nil
        } else {
            flushText()
            children = Array(nodes[frame.firstChild...])
            nodes.removeLast(nodes.count - frame.firstChild)
        }
        let element = XElement(
            frame.name.local, namespace: frame.name.namespace, attributes: frame.attributes,
            children: children)
        if !frames.isEmpty {
            nodes.append(.element(element))
            return
        }
        let end = currentEventEnd()
        if end - stanzaStart > limits.maxStanzaBytes {
            return abort(.stanzaTooLarge, "a \(end - stanzaStart)-byte element exceeds the \(limits.maxStanzaBytes)-byte limit")
        }
        events.append(.stanza(element))
        boundary = end
        if mode == .document { finished = true }
    }

    private mutating func flushText() {
        guard let pending = text else { return }
        nodes.append(.text(pending))
        text = nil
    }

    private mutating func characters(_ bytes: UnsafeRawBufferPointer) {
        if !frames.isEmpty {
            let piece = String(decoding: bytes, as: UTF8.self)
            if text == nil { text = piece } else { text? += piece }
        } else if !bytes.allSatisfy(TreeBuilder.isXMLWhitespace) {
            abort(.textAtStreamLevel, "text outside any stanza")
        }
    }

    static func isXMLWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }
}
