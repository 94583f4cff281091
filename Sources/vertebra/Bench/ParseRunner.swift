import Foundation
import VertebraXML

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// The two parsers under comparison, each turning the same bytes into ``XElement`` stanzas.
enum ParseRunner {
    /// Feeds the stream in `chunk`-byte pieces, as a socket would deliver it.
    static func vertebra(_ stream: [UInt8], chunk: Int) throws -> Int {
        let parser = XMLStreamParser()
        var stanzas = 0
        try stream.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let end = min(bytes.count, offset + chunk)
                for event in try parser.feed(UnsafeRawBufferPointer(rebasing: bytes[offset..<end])) {
                    if case .stanza = event { stanzas += 1 }
                }
                offset = end
            }
        }
        return stanzas
    }

    /// Foundation's XMLParser cannot be fed in pieces, so it gets the whole stream at once.
    static func foundation(_ stream: [UInt8]) throws -> Int {
        let builder = FoundationTreeBuilder()
        let parser = XMLParser(data: Data(stream))
        parser.shouldProcessNamespaces = true
        parser.delegate = builder
        guard parser.parse() else {
            throw BenchError("Foundation XMLParser failed: \(parser.parserError.map { "\($0)" } ?? "unknown error")")
        }
        return builder.stanzas
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Builds the same ``XElement`` stanzas from Foundation's SAX callbacks.
final class FoundationTreeBuilder: NSObject, XMLParserDelegate {
    private struct Frame {
        var name: String
        var namespace: String
        var attributes: [XAttribute]
        var children: [XNode] = []
        var text = ""
    }

    private var frames: [Frame] = []
    private var depth = 0
    private(set) var stanzas = 0

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
        qualifiedName: String?, attributes: [String: String]
    ) {
        depth += 1
        guard depth >= 2 else { return }
        flushText()
        let attributes = attributes.map { XAttribute($0.key, $0.value) }
        frames.append(Frame(name: elementName, namespace: namespaceURI ?? "", attributes: attributes))
    }

    func parser(
        _ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?,
        qualifiedName: String?
    ) {
        defer { depth -= 1 }
        guard depth >= 2 else { return }
        flushText()
        guard let frame = frames.popLast() else { return }
        let element = XElement(
            frame.name, namespace: frame.namespace, attributes: frame.attributes,
            children: frame.children)
        if frames.isEmpty {
            stanzas += 1
        } else {
            frames[frames.count - 1].children.append(.element(element))
        }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        guard !frames.isEmpty else { return }
        frames[frames.count - 1].text += string
    }

    private func flushText() {
        guard let last = frames.indices.last, !frames[last].text.isEmpty else { return }
        frames[last].children.append(.text(frames[last].text))
        frames[last].text = ""
    }
}
