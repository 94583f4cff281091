internal import CExpat
import Foundation

/// The engine behind ``XMLStreamParser`` and document parsing: one expat parser, fed slices of
/// input, building ``XElement`` trees with pooled buffers.
///
/// Not `Sendable`: it owns a C parser and must be used by one task or channel handler at a time.
/// expat calls back synchronously from `XML_Parse`; callbacks record events and errors here and
/// `feed` returns them.
final class ExpatTreeParser {
    enum Mode {
        /// Depth 1 is the stream element, depth 2 elements are stanzas.
        case stream
        /// Depth 1 is the document element, returned whole.
        case document
    }

    /// Largest slice handed to expat at once, so the size limit is checked often enough to bound
    /// memory even when a caller feeds one huge buffer.
    private static let sliceBytes = 16 * 1024

    private struct Frame {
        var name = NameTable.Name(namespace: "", local: "")
        var attributes: [XAttribute] = []
        var children: [XNode] = []
        var text: [UInt8] = []
    }

    let mode: Mode
    let limits: XMLParserLimits
    private var parser: OpaquePointer?
    private var names = NameTable()
    private var frames: [Frame] = []
    private var openFrames = 0
    private var depth = 0
    private var events: [XMLStreamEvent] = []
    private var failure: XMLParseError?
    private var finished = false
    /// Bytes handed to expat since the last reset.
    private(set) var bytesConsumed = 0
    /// Offset just after the last complete top-level event (stream open, stanza).
    private var boundary = 0
    private var stanzaStart = 0
    private var sliceStart = 0
    private var slice = UnsafeRawBufferPointer(start: nil, count: 0)

    init(mode: Mode, limits: XMLParserLimits) {
        self.mode = mode
        self.limits = limits
    }

    deinit {
        if let parser { XML_ParserFree(parser) }
    }

    /// Forgets all state, as at an XMPP stream restart.
    func reset() {
        if let parser { XML_ParserFree(parser) }
        parser = nil
        openFrames = 0
        depth = 0
        events.removeAll(keepingCapacity: true)
        failure = nil
        finished = false
        bytesConsumed = 0
        boundary = 0
        stanzaStart = 0
    }

    /// Parses `bytes` and returns the events they completed.
    func feed(_ bytes: UnsafeRawBufferPointer, isFinal: Bool = false) throws(XMLParseError)
        -> [XMLStreamEvent]
    {
        if let failure { throw failure }
        if finished {
            if bytes.allSatisfy(ExpatTreeParser.isXMLWhitespace) { return [] }
            throw fail(.inputAfterEnd, "input after the end of the \(modeNoun)", at: bytesConsumed)
        }
        let parser = try liveParser()
        var offset = 0
        repeat {
            let count = min(ExpatTreeParser.sliceBytes, bytes.count - offset)
            let piece = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
            offset += count
            try parse(piece, with: parser, isFinal: isFinal && offset == bytes.count)
        } while offset < bytes.count
        let completed = events
        events.removeAll(keepingCapacity: true)
        return completed
    }

    // MARK: - Driving expat

    private var modeNoun: String { mode == .stream ? "stream" : "document" }

    private func liveParser() throws(XMLParseError) -> OpaquePointer {
        if let parser { return parser }
        guard let created = XML_ParserCreateNS("UTF-8", 0x20) else {
            throw fail(.notWellFormed, "expat could not allocate a parser", at: 0)
        }
        parser = created
        XML_SetUserData(created, Unmanaged.passUnretained(self).toOpaque())
        vertebra_expat_disable_reparse_deferral(created)
        installCallbacks(on: created)
        return created
    }

    private func parse(_ piece: UnsafeRawBufferPointer, with parser: OpaquePointer, isFinal: Bool)
        throws(XMLParseError)
    {
        sliceStart = bytesConsumed
        slice = piece
        defer { slice = UnsafeRawBufferPointer(start: nil, count: 0) }
        let base = piece.baseAddress?.assumingMemoryBound(to: CChar.self)
        let status = XML_Parse(parser, base, Int32(piece.count), isFinal ? 1 : 0)
        bytesConsumed += piece.count
        if let failure { throw failure }
        if status != XML_STATUS_OK {
            throw expatFailure(parser)
        }
        if !finished, bytesConsumed - boundary > limits.maxStanzaBytes {
            throw fail(
                .stanzaTooLarge,
                "more than \(limits.maxStanzaBytes) bytes without a complete \(mode == .stream ? "stanza" : "document")",
                at: boundary)
        }
    }

    private func expatFailure(_ parser: OpaquePointer) -> XMLParseError {
        let code = XML_GetErrorCode(parser)
        let offset = Int(vertebra_expat_byte_index(parser))
        let line = Int(XML_GetCurrentLineNumber(parser))
        let column = Int(XML_GetCurrentColumnNumber(parser))
        let text = XML_ErrorString(code).map { String(cString: $0) } ?? "unknown expat error"
        let kind: XMLParseError.Code
        switch code {
        case XML_ERROR_UNBOUND_PREFIX: kind = .unboundPrefix
        case XML_ERROR_NO_ELEMENTS, XML_ERROR_UNCLOSED_TOKEN: kind = .truncated
        case XML_ERROR_PARTIAL_CHAR: kind = .invalidUTF8
        case XML_ERROR_JUNK_AFTER_DOC_ELEMENT: kind = .inputAfterEnd
        case XML_ERROR_INVALID_TOKEN where sliceHasInvalidUTF8(from: offset): kind = .invalidUTF8
        default: kind = .notWellFormed
        }
        let failure = XMLParseError(
            code: kind, message: text, byteOffset: offset, line: line, column: column)
        self.failure = failure
        return failure
    }

    private func sliceHasInvalidUTF8(from offset: Int) -> Bool {
        let start = max(0, min(slice.count, offset - sliceStart))
        return UTF8Validation.firstInvalidByte(in: UnsafeRawBufferPointer(rebasing: slice[start...])) != nil
    }

    @discardableResult
    private func fail(_ code: XMLParseError.Code, _ message: String, at offset: Int)
        -> XMLParseError
    {
        var line = 0
        var column = 0
        if let parser {
            line = Int(XML_GetCurrentLineNumber(parser))
            column = Int(XML_GetCurrentColumnNumber(parser))
        }
        let failure = XMLParseError(
            code: code, message: message, byteOffset: offset, line: line, column: column)
        if self.failure == nil { self.failure = failure }
        return failure
    }

    /// Records a violation found inside a callback and stops expat.
    private func abort(_ code: XMLParseError.Code, _ message: String) {
        guard let parser, failure == nil else { return }
        fail(code, message, at: Int(vertebra_expat_byte_index(parser)))
        XML_StopParser(parser, 0)
    }

    private func currentEventEnd() -> Int {
        guard let parser else { return bytesConsumed }
        return Int(vertebra_expat_byte_index(parser)) + Int(XML_GetCurrentByteCount(parser))
    }

    // MARK: - Callbacks

    private static func owner(_ userData: UnsafeMutableRawPointer?) -> ExpatTreeParser? {
        guard let userData else { return nil }
        return Unmanaged<ExpatTreeParser>.fromOpaque(userData).takeUnretainedValue()
    }

    private func installCallbacks(on parser: OpaquePointer) {
        XML_SetElementHandler(
            parser,
            { userData, name, attributes in
                guard let name else { return }
                ExpatTreeParser.owner(userData)?.startElement(name, attributes)
            },
            { userData, _ in ExpatTreeParser.owner(userData)?.endElement() })
        XML_SetCharacterDataHandler(parser) { userData, bytes, length in
            guard let bytes, length > 0 else { return }
            ExpatTreeParser.owner(userData)?.characters(
                UnsafeRawBufferPointer(start: bytes, count: Int(length)))
        }
        XML_SetStartDoctypeDeclHandler(parser) { userData, _, _, _, _ in
            ExpatTreeParser.owner(userData)?.abort(.restrictedXML, "DOCTYPE declarations are not allowed")
        }
        XML_SetEntityDeclHandler(parser) { userData, _, _, _, _, _, _, _, _ in
            ExpatTreeParser.owner(userData)?.abort(.restrictedXML, "entity declarations are not allowed")
        }
        XML_SetProcessingInstructionHandler(parser) { userData, _, _ in
            ExpatTreeParser.owner(userData)?.abort(.restrictedXML, "processing instructions are not allowed")
        }
        XML_SetCommentHandler(parser) { userData, _ in
            guard let owner = ExpatTreeParser.owner(userData), !owner.limits.allowsComments else { return }
            owner.abort(.restrictedXML, "comments are not allowed")
        }
    }

    private var rootDepth: Int { mode == .stream ? 2 : 1 }

    private func startElement(
        _ cName: UnsafePointer<CChar>, _ cAttributes: UnsafeMutablePointer<UnsafePointer<CChar>?>?
    ) {
        depth += 1
        if depth > limits.maxDepth {
            return abort(.tooDeep, "elements nested deeper than \(limits.maxDepth)")
        }
        let name = names.resolve(cName)
        guard let attributes = readAttributes(cAttributes) else { return }
        if mode == .stream && depth == 1 {
            events.append(
                .streamOpened(XElement(name.local, namespace: name.namespace, attributes: attributes)))
            boundary = currentEventEnd()
            return
        }
        if depth == rootDepth, let parser {
            stanzaStart = Int(vertebra_expat_byte_index(parser))
        }
        if openFrames > 0 { flushText(of: openFrames - 1) }
        pushFrame(name, attributes)
    }

    private func readAttributes(_ cAttributes: UnsafeMutablePointer<UnsafePointer<CChar>?>?)
        -> [XAttribute]?
    {
        guard let cAttributes, cAttributes[0] != nil else { return [] }
        var count = 0
        while cAttributes[count * 2] != nil { count += 1 }
        if count > limits.maxAttributes {
            abort(.tooManyAttributes, "\(count) attributes on one element; at most \(limits.maxAttributes) allowed")
            return nil
        }
        var attributes: [XAttribute] = []
        attributes.reserveCapacity(count)
        for index in 0..<count {
            guard let cName = cAttributes[index * 2], let cValue = cAttributes[index * 2 + 1] else { break }
            let name = names.resolve(cName)
            attributes.append(
                XAttribute(name.local, String(cString: cValue), namespace: name.namespace))
        }
        return attributes
    }

    private func pushFrame(_ name: NameTable.Name, _ attributes: [XAttribute]) {
        if openFrames == frames.count { frames.append(Frame()) }
        frames[openFrames].name = name
        frames[openFrames].attributes = attributes
        openFrames += 1
    }

    private func endElement() {
        defer { depth -= 1 }
        if mode == .stream && depth == 1 {
            events.append(.streamClosed)
            finished = true
            boundary = currentEventEnd()
            return
        }
        guard openFrames > 0 else { return }
        let element = popFrame()
        if openFrames > 0 {
            frames[openFrames - 1].children.append(.element(element))
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

    private func popFrame() -> XElement {
        let index = openFrames - 1
        flushText(of: index)
        openFrames -= 1
        let children = frames[index].children.isEmpty ? [] : Array(frames[index].children)
        frames[index].children.removeAll(keepingCapacity: true)
        let frame = frames[index]
        return XElement(
            frame.name.local, namespace: frame.name.namespace, attributes: frame.attributes,
            children: children)
    }

    private func flushText(of index: Int) {
        guard !frames[index].text.isEmpty else { return }
        let text = String(decoding: frames[index].text, as: UTF8.self)
        frames[index].text.removeAll(keepingCapacity: true)
        frames[index].children.append(.text(text))
    }

    private func characters(_ bytes: UnsafeRawBufferPointer) {
        if openFrames > 0 {
            frames[openFrames - 1].text.append(contentsOf: bytes)
        } else if !bytes.allSatisfy(ExpatTreeParser.isXMLWhitespace) {
            abort(.textAtStreamLevel, "text outside any stanza")
        }
    }

    static func isXMLWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }
}
