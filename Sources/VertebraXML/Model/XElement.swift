/// An immutable, namespace-aware XML element: a name in a namespace, attributes, and ordered
/// children (elements and text).
///
/// `XElement` is a value: it is `Sendable`, `Hashable`, and cheap to copy (its storage is shared
/// until changed by one of the `with…` builders). Names are local names; the namespace is the
/// resolved URI, never a prefix. Equality compares names, namespaces, attributes (in order) and
/// children, with adjacent text nodes merged by the parser.
public struct XElement: Sendable, Hashable {
    /// The local name, e.g. `iq` or `op`.
    public let name: String
    /// The namespace URI, or `""` for no namespace.
    public let namespace: String
    /// Attributes in document order.
    public let attributes: [XAttribute]
    /// Child elements and text, in document order.
    public let children: [XNode]

    /// Makes an element.
    public init(
        _ name: String, namespace: String = "", attributes: [XAttribute] = [],
        children: [XNode] = []
    ) {
        self.name = name
        self.namespace = namespace
        self.attributes = attributes
        self.children = children
    }

    /// Makes an element from a list of unnamespaced attributes given as pairs.
    public init(
        _ name: String, namespace: String = "", attributes: KeyValuePairs<String, String>,
        children: [XNode] = []
    ) {
        self.init(
            name, namespace: namespace,
            attributes: attributes.map { XAttribute($0.key, $0.value) }, children: children)
    }

    /// Makes an element whose only child is `text`.
    public init(
        _ name: String, namespace: String = "", attributes: [XAttribute] = [], text: String
    ) {
        self.init(
            name, namespace: namespace, attributes: attributes,
            children: text.isEmpty ? [] : [.text(text)])
    }
}

/// One child of an element: another element or a run of text.
public enum XNode: Sendable, Hashable {
    /// A child element.
    case element(XElement)
    /// Character data (entities already resolved).
    case text(String)
}

/// An attribute: a local name in an optional namespace, and its value.
public struct XAttribute: Sendable, Hashable {
    /// The local name.
    public let name: String
    /// The namespace URI, `""` for an unprefixed attribute.
    public let namespace: String
    /// The value, entities already resolved.
    public let value: String

    /// Makes an attribute.
    public init(_ name: String, _ value: String, namespace: String = "") {
        self.name = name
        self.value = value
        self.namespace = namespace
    }
}

// MARK: - Accessors

extension XElement {
    /// The value of the unnamespaced attribute `name`, or `nil`.
    public subscript(attribute name: String) -> String? {
        for attribute in attributes where attribute.name == name && attribute.namespace.isEmpty {
            return attribute.value
        }
        return nil
    }

    /// The value of attribute `name` in `namespace`, or `nil`.
    public func attribute(_ name: String, namespace: String) -> String? {
        attributes.first { $0.name == name && $0.namespace == namespace }?.value
    }

    /// The child elements, skipping text.
    public var elements: [XElement] {
        children.compactMap { node in
            if case .element(let element) = node { return element }
            return nil
        }
    }

    /// The first child element named `name` (in `namespace`, when given).
    public func firstElement(named name: String, namespace: String? = nil) -> XElement? {
        for case .element(let element) in children
        where element.name == name && (namespace == nil || element.namespace == namespace) {
            return element
        }
        return nil
    }

    /// The first child element, whatever its name.
    public var firstElement: XElement? {
        for case .element(let element) in children { return element }
        return nil
    }

    /// The concatenated text of the direct children (not of descendants).
    public var text: String {
        var result = ""
        for case .text(let text) in children { result += text }
        return result
    }

    /// Whether the element has child elements (text-only and empty elements have none).
    public var hasElementChildren: Bool {
        children.contains { if case .element = $0 { return true } else { return false } }
    }
}

// MARK: - Builders

extension XElement {
    /// A copy with attribute `name` set to `value` (replaced if present, appended otherwise);
    /// `nil` removes it.
    public func setting(attribute name: String, to value: String?, namespace: String = "")
        -> XElement
    {
        var attributes = self.attributes.filter { !($0.name == name && $0.namespace == namespace) }
        if let value { attributes.append(XAttribute(name, value, namespace: namespace)) }
        return XElement(
            self.name, namespace: self.namespace, attributes: attributes, children: children)
    }

    /// A copy with `children` replaced.
    public func with(children: [XNode]) -> XElement {
        XElement(name, namespace: namespace, attributes: attributes, children: children)
    }

    /// A copy with `child` appended.
    public func appending(_ child: XElement) -> XElement {
        with(children: children + [.element(child)])
    }
}

extension XElement: CustomStringConvertible {
    /// The element serialized as XML.
    public var description: String { serializedString() }
}
