/// Writes ``XElement`` trees as XML 1.0 text, UTF-8 encoded.
///
/// Element namespaces are written as default-namespace declarations, only where an element's
/// namespace differs from its parent's; attribute namespaces get generated prefixes declared on
/// the element that first needs them. Text and attribute values are escaped so that the output
/// re-parses to an equal element, including `]]>`, quotes, tabs and line ends. Characters XML 1.0
/// cannot carry at all (most C0 controls, U+FFFE, U+FFFF) are replaced by U+FFFD; the Codable
/// encoder refuses such strings up front so that typed payloads are never altered silently.
public enum XMLSerializer {
    /// Appends `element` to `output`. `inheritedNamespace` is the default namespace in force
    /// where the element is written (for a stanza inside an XMPP client stream: `jabber:client`).
    public static func write(
        _ element: XElement, inheritedNamespace: String = "", into output: inout [UInt8]
    ) {
        var scope = PrefixScope()
        write(element, defaultNamespace: inheritedNamespace, scope: &scope, into: &output)
    }

    /// Appends only the start tag of `element` (used for a stream header, whose end comes later).
    /// `extraDeclarations` are written as given, e.g. `("stream", XMLNamespace.stream)`.
    /// `defaultNamespace` declares the default namespace of the content (e.g. `jabber:client`).
    public static func writeStartTag(
        of element: XElement, inheritedNamespace: String = "",
        prefix: String? = nil, declaring extraDeclarations: [(prefix: String, namespace: String)] = [],
        defaultNamespace: String? = nil, into output: inout [UInt8]
    ) {
        var scope = PrefixScope()
        output.append(UInt8(ascii: "<"))
        if let prefix {
            output.append(contentsOf: prefix.utf8)
            output.append(UInt8(ascii: ":"))
        }
        output.append(contentsOf: element.name.utf8)
        if let defaultNamespace { appendAttribute("xmlns", defaultNamespace, into: &output) }
        for declaration in extraDeclarations {
            appendAttribute("xmlns:" + declaration.prefix, declaration.namespace, into: &output)
            scope.bindings.append((declaration.namespace, declaration.prefix))
        }
        if prefix == nil, element.namespace != inheritedNamespace {
            appendAttribute("xmlns", element.namespace, into: &output)
        }
        writeAttributes(of: element, scope: &scope, into: &output)
        output.append(UInt8(ascii: ">"))
    }

    // MARK: - Elements

    private struct PrefixScope {
        var bindings: [(namespace: String, prefix: String)] = []
        var generated = 0

        func prefix(for namespace: String) -> String? {
            if namespace == XMLNamespace.xml { return "xml" }
            return bindings.last { $0.namespace == namespace }?.prefix
        }
    }

    private static func write(
        _ element: XElement, defaultNamespace: String, scope: inout PrefixScope,
        into output: inout [UInt8]
    ) {
        let savedBindings = scope.bindings.count
        output.append(UInt8(ascii: "<"))
        output.append(contentsOf: element.name.utf8)
        if element.namespace != defaultNamespace {
            appendAttribute("xmlns", element.namespace, into: &output)
        }
        writeAttributes(of: element, scope: &scope, into: &output)
        if element.children.isEmpty {
            output.append(contentsOf: "/>".utf8)
        } else {
            output.append(UInt8(ascii: ">"))
            for child in element.children {
                switch child {
                case .element(let nested):
                    write(nested, defaultNamespace: element.namespace, scope: &scope, into: &output)
                case .text(let text):
                    appendEscaped(text, inAttribute: false, into: &output)
                }
            }
            output.append(contentsOf: "</".utf8)
            output.append(contentsOf: element.name.utf8)
            output.append(UInt8(ascii: ">"))
        }
        scope.bindings.removeSubrange(savedBindings...)
    }

    private static func writeAttributes(
        of element: XElement, scope: inout PrefixScope, into output: inout [UInt8]
    ) {
        for attribute in element.attributes {
            guard !attribute.namespace.isEmpty else {
                appendAttribute(attribute.name, attribute.value, into: &output)
                continue
            }
            let prefix: String
            if let bound = scope.prefix(for: attribute.namespace) {
                prefix = bound
            } else {
                prefix = "ns\(scope.generated)"
                scope.generated += 1
                scope.bindings.append((attribute.namespace, prefix))
                appendAttribute("xmlns:" + prefix, attribute.namespace, into: &output)
            }
            appendAttribute(prefix + ":" + attribute.name, attribute.value, into: &output)
        }
    }

    private static func appendAttribute(_ name: String, _ value: String, into output: inout [UInt8]) {
        output.append(UInt8(ascii: " "))
        output.append(contentsOf: name.utf8)
        output.append(contentsOf: "='".utf8)
        appendEscaped(value, inAttribute: true, into: &output)
        output.append(UInt8(ascii: "'"))
    }

    // MARK: - Escaping

    /// Appends `text` escaped for element content or a single-quoted attribute value.
    static func appendEscaped(_ text: String, inAttribute: Bool, into output: inout [UInt8]) {
        var text = text
        text.withUTF8 { bytes in
            var runStart = 0
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                let replacement = escape(byte, next: bytes, at: index, inAttribute: inAttribute)
                guard let (escaped, consumed) = replacement else {
                    index += 1
                    continue
                }
                output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
                output.append(contentsOf: escaped.utf8)
                index += consumed
                runStart = index
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count]))
        }
    }

    private static let replacementCharacter = "\u{FFFD}"

    /// The escape for the byte at `index`, and how many bytes it replaces; `nil` to copy as is.
    private static func escape(
        _ byte: UInt8, next bytes: UnsafeBufferPointer<UInt8>, at index: Int, inAttribute: Bool
    ) -> (String, Int)? {
        switch byte {
        case UInt8(ascii: "&"): return ("&amp;", 1)
        case UInt8(ascii: "<"): return ("&lt;", 1)
        case UInt8(ascii: ">"): return ("&gt;", 1)
        case UInt8(ascii: "'") where inAttribute: return ("&apos;", 1)
        case UInt8(ascii: "\"") where inAttribute: return ("&quot;", 1)
        case 0x0D: return ("&#13;", 1)
        case 0x0A where inAttribute: return ("&#10;", 1)
        case 0x09 where inAttribute: return ("&#9;", 1)
        case 0x09, 0x0A: return nil
        case 0x00...0x1F: return (replacementCharacter, 1)
        case 0xEF where index + 2 < bytes.count && bytes[index + 1] == 0xBF
            && (bytes[index + 2] == 0xBE || bytes[index + 2] == 0xBF):
            return (replacementCharacter, 3)  // U+FFFE, U+FFFF
        default: return nil
        }
    }
}

extension XElement {
    /// The element as XML text; `inheritedNamespace` is the default namespace of its context.
    public func serializedString(inheritedNamespace: String = "") -> String {
        String(decoding: serializedBytes(inheritedNamespace: inheritedNamespace), as: UTF8.self)
    }

    /// The element as UTF-8 XML bytes; `inheritedNamespace` is the default namespace of its context.
    public func serializedBytes(inheritedNamespace: String = "") -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(256)
        XMLSerializer.write(self, inheritedNamespace: inheritedNamespace, into: &output)
        return output
    }
}

extension XMLSerializer {
    /// Whether XML 1.0 can carry `scalar` (the `Char` production of the XML specification).
    public static func isAllowedInXML(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09, 0x0A, 0x0D: return true
        case 0x00...0x1F: return false
        case 0xFFFE, 0xFFFF: return false
        default: return true
        }
    }
}
