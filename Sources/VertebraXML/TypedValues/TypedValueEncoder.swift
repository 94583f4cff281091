import Foundation

/// Encodes `Encodable` Swift values as Vertebra's typed XML values.
///
/// The mapping (DESIGN §4): a keyed container becomes named children (nested: `<struct>`), an
/// unkeyed container a `<list>`, `String` `<string>`, integers `<i4>` (or `<i8>` outside 32
/// bits), `Bool` `<boolean>` (1/0), `Double`/`Float` `<double>`, `Data` `<base64>`, `Date`
/// `<dateTime.iso8601>`, `URL` `<string>`, ``Resource`` `<res>`, and `nil` `<nil>`.
///
/// ```swift
/// struct Resize: Codable { var path: Resource; var width: Int }
/// let fields = try TypedValueEncoder().encodeFields(Resize(path: "/img/a.png", width: 640))
/// // <res name='path'>/img/a.png</res><i4 name='width'>640</i4>
/// ```
public struct TypedValueEncoder: Sendable {
    /// The namespace of the emitted elements; Vertebra's API namespace by default.
    public var namespace: String

    /// Makes an encoder.
    public init(namespace: String = XMLNamespace.vertebraAPI) {
        self.namespace = namespace
    }

    /// Encodes `value` as the named children of an operation or result: a struct's fields become
    /// one element each; any other value becomes one element named `response`.
    public func encodeFields<T: Encodable>(_ value: T) throws -> [XElement] {
        let node = try encodeNode(value)
        if case .fields(let keys, let values) = node.content {
            return keys.compactMap { key in values[key]?.element(named: key, namespace: namespace) }
        }
        return [node.element(named: "response", namespace: namespace)]
    }

    /// Encodes `value` as one typed element, with a `name` attribute when `name` is given.
    public func encode<T: Encodable>(_ value: T, named name: String? = nil) throws -> XElement {
        try encodeNode(value).element(named: name, namespace: namespace)
    }

    private func encodeNode<T: Encodable>(_ value: T) throws -> EncodedValue {
        let encoder = ValueEncoder(node: EncodedValue(), codingPath: [])
        return try encoder.box(value, at: [])
    }
}

// MARK: - Encoded tree

/// A value being encoded; containers hold references to the nodes they fill.
final class EncodedValue {
    enum Content {
        case empty
        case scalar(kind: String, text: String)
        case fields(keys: [String], values: [String: EncodedValue])
        case items([EncodedValue])
    }

    var content: Content = .empty

    init(_ content: Content = .empty) { self.content = content }

    func element(named name: String?, namespace: String) -> XElement {
        let attributes = name.map { [XAttribute("name", $0)] } ?? []
        switch content {
        case .empty:
            return XElement(TypedValueKind.structure, namespace: namespace, attributes: attributes)
        case .scalar(let kind, let text):
            return XElement(kind, namespace: namespace, attributes: attributes, text: text)
        case .fields(let keys, let values):
            let children = keys.compactMap { key in
                values[key].map { XNode.element($0.element(named: key, namespace: namespace)) }
            }
            return XElement(
                TypedValueKind.structure, namespace: namespace, attributes: attributes,
                children: children)
        case .items(let items):
            return XElement(
                TypedValueKind.list, namespace: namespace, attributes: attributes,
                children: items.map { .element($0.element(named: nil, namespace: namespace)) })
        }
    }

    func set(_ value: EncodedValue, forKey key: String) {
        guard case .fields(var keys, var values) = content else {
            content = .fields(keys: [key], values: [key: value])
            return
        }
        content = .empty  // drop the reference so the arrays below are uniquely owned
        if values.updateValue(value, forKey: key) == nil { keys.append(key) }
        content = .fields(keys: keys, values: values)
    }

    func append(_ value: EncodedValue) {
        guard case .items(var items) = content else {
            content = .items([value])
            return
        }
        content = .empty
        items.append(value)
        content = .items(items)
    }

    var itemCount: Int {
        if case .items(let items) = content { return items.count }
        return 0
    }
}

// MARK: - Encoder

final class ValueEncoder: Encoder {
    let node: EncodedValue
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(node: EncodedValue, codingPath: [any CodingKey]) {
        self.node = node
        self.codingPath = codingPath
    }

    func container<Key: CodingKey>(keyedBy _: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .fields = node.content {} else { node.content = .fields(keys: [], values: [:]) }
        return KeyedEncodingContainer(KeyedContainer<Key>(node: node, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if case .items = node.content {} else { node.content = .items([]) }
        return UnkeyedContainer(node: node, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleValueContainer(encoder: self)
    }

    /// Encodes `value` into a new node, handling the types with their own XML form.
    func box<T: Encodable>(_ value: T, at path: [any CodingKey]) throws -> EncodedValue {
        if let scalar = try Self.scalar(for: value, at: path) { return EncodedValue(scalar) }
        let node = EncodedValue()
        try value.encode(to: ValueEncoder(node: node, codingPath: path))
        return node
    }

    static func scalar<T: Encodable>(for value: T, at path: [any CodingKey]) throws
        -> EncodedValue.Content?
    {
        switch value {
        case let date as Date: return .scalar(kind: TypedValueKind.dateTime, text: TypedValueKind.text(for: date))
        case let data as Data: return .scalar(kind: TypedValueKind.base64, text: data.base64EncodedString())
        case let url as URL: return try string(url.absoluteString, at: path)
        case let resource as Resource: return try resourceContent(resource, at: path)
        default: return nil
        }
    }

    static func string(_ text: String, at path: [any CodingKey]) throws -> EncodedValue.Content {
        if let scalar = TypedValueKind.firstForbiddenScalar(in: text) {
            let code = String(scalar.value, radix: 16, uppercase: true)
            throw TypedValueError(
                code: .invalidValue, path: TypedValueError.path(path),
                expected: "text XML 1.0 can carry (send binary data as Data, which maps to <base64>)",
                found: "a string containing U+\(String(repeating: "0", count: max(0, 4 - code.count)))\(code)")
        }
        return .scalar(kind: TypedValueKind.string, text: text)
    }

    static func resourceContent(_ resource: Resource, at path: [any CodingKey]) throws
        -> EncodedValue.Content
    {
        guard case .scalar(_, let text) = try string(resource.path, at: path) else {
            return .scalar(kind: TypedValueKind.resource, text: resource.path)
        }
        return .scalar(kind: TypedValueKind.resource, text: text)
    }

    static func integer<I: BinaryInteger>(_ value: I, at path: [any CodingKey]) throws
        -> EncodedValue.Content
    {
        if let small = Int32(exactly: value) { return .scalar(kind: TypedValueKind.i4, text: String(small)) }
        if let large = Int64(exactly: value) { return .scalar(kind: TypedValueKind.i8, text: String(large)) }
        throw TypedValueError(
            code: .invalidValue, path: TypedValueError.path(path),
            expected: "an integer that fits in 64 signed bits (<i8>)", found: "\(value)")
    }
}

// MARK: - Containers

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: EncodedValue
    let codingPath: [any CodingKey]

    private func put(_ content: EncodedValue.Content, _ key: Key) {
        node.set(EncodedValue(content), forKey: key.stringValue)
    }

    private func path(_ key: Key) -> [any CodingKey] { codingPath + [key] }

    mutating func encodeNil(forKey key: Key) throws { put(.scalar(kind: TypedValueKind.null, text: ""), key) }
    mutating func encode(_ value: Bool, forKey key: Key) throws {
        put(.scalar(kind: TypedValueKind.boolean, text: TypedValueKind.text(for: value)), key)
    }
    mutating func encode(_ value: String, forKey key: Key) throws {
        put(try ValueEncoder.string(value, at: path(key)), key)
    }
    mutating func encode(_ value: Double, forKey key: Key) throws {
        put(.scalar(kind: TypedValueKind.double, text: TypedValueKind.text(for: value)), key)
    }
    mutating func encode(_ value: Float, forKey key: Key) throws {
        put(.scalar(kind: TypedValueKind.double, text: TypedValueKind.text(for: value)), key)
    }
    mutating func encode(_ value: Int, forKey key: Key) throws { put(try ValueEncoder.integer(value, at: path(key)), key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { put(try ValueEncoder.integer(value, at: path(key)), key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { put(try ValueEncoder.integer(value, at: path(key)), key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { put(try ValueEncoder.integer(value, at: path(key)), key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { put(try ValueEncoder.integer(value, at: path(key)), key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { put(try ValueEncoder.integer(value, at: path(key)), key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { put(try ValueEncoder.integer(value, at: path(key)), key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { put(try ValueEncoder.integer(value, at: path(key)), key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { put(try ValueEncoder.integer(value, at: path(key)), key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { put(try ValueEncoder.integer(value, at: path(key)), key) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        let encoder = ValueEncoder(node: EncodedValue(), codingPath: path(key))
        node.set(try encoder.box(value, at: path(key)), forKey: key.stringValue)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy _: NestedKey.Type, forKey key: Key)
        -> KeyedEncodingContainer<NestedKey>
    {
        let child = EncodedValue(.fields(keys: [], values: [:]))
        node.set(child, forKey: key.stringValue)
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(node: child, codingPath: path(key)))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let child = EncodedValue(.items([]))
        node.set(child, forKey: key.stringValue)
        return UnkeyedContainer(node: child, codingPath: path(key))
    }

    mutating func superEncoder() -> any Encoder {
        superEncoder(named: "super", key: IndexKey(stringValue: "super"))
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        superEncoder(named: key.stringValue, key: key)
    }

    private func superEncoder(named name: String, key: any CodingKey) -> any Encoder {
        let child = EncodedValue()
        node.set(child, forKey: name)
        return ValueEncoder(node: child, codingPath: codingPath + [key])
    }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let node: EncodedValue
    let codingPath: [any CodingKey]
    var count: Int { node.itemCount }

    private var nextPath: [any CodingKey] { codingPath + [IndexKey(intValue: count)] }
    private func put(_ content: EncodedValue.Content) { node.append(EncodedValue(content)) }

    mutating func encodeNil() throws { put(.scalar(kind: TypedValueKind.null, text: "")) }
    mutating func encode(_ value: Bool) throws {
        put(.scalar(kind: TypedValueKind.boolean, text: TypedValueKind.text(for: value)))
    }
    mutating func encode(_ value: String) throws { put(try ValueEncoder.string(value, at: nextPath)) }
    mutating func encode(_ value: Double) throws {
        put(.scalar(kind: TypedValueKind.double, text: TypedValueKind.text(for: value)))
    }
    mutating func encode(_ value: Float) throws {
        put(.scalar(kind: TypedValueKind.double, text: TypedValueKind.text(for: value)))
    }
    mutating func encode(_ value: Int) throws { put(try ValueEncoder.integer(value, at: nextPath)) }
    mutating func encode(_ value: Int8) throws { put(try ValueEncoder.integer(value, at: nextPath)) }
    mutating func encode(_ value: Int16) throws { put(try ValueEncoder.integer(value, at: nextPath)) }
    mutating func encode(_ value: Int32) throws { put(try ValueEncoder.integer(value, at: nextPath)) }
    mutating func encode(_ value: Int64) throws { put(try ValueEncoder.integer(value, at: nextPath)) }
    mutating func encode(_ value: UInt) throws { put(try ValueEncoder.integer(value, at: nextPath)) }
    mutating func encode(_ value: UInt8) throws { put(try ValueEncoder.integer(value, at: nextPath)) }
    mutating func encode(_ value: UInt16) throws { put(try ValueEncoder.integer(value, at: nextPath)) }
    mutating func encode(_ value: UInt32) throws { put(try ValueEncoder.integer(value, at: nextPath)) }
    mutating func encode(_ value: UInt64) throws { put(try ValueEncoder.integer(value, at: nextPath)) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        let path = nextPath
        node.append(try ValueEncoder(node: EncodedValue(), codingPath: path).box(value, at: path))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy _: NestedKey.Type)
        -> KeyedEncodingContainer<NestedKey>
    {
        let path = nextPath
        let child = EncodedValue(.fields(keys: [], values: [:]))
        node.append(child)
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(node: child, codingPath: path))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let path = nextPath
        let child = EncodedValue(.items([]))
        node.append(child)
        return UnkeyedContainer(node: child, codingPath: path)
    }

    mutating func superEncoder() -> any Encoder {
        let path = nextPath
        let child = EncodedValue()
        node.append(child)
        return ValueEncoder(node: child, codingPath: path)
    }
}

private struct SingleValueContainer: SingleValueEncodingContainer {
    let encoder: ValueEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    private func put(_ content: EncodedValue.Content) { encoder.node.content = content }

    mutating func encodeNil() throws { put(.scalar(kind: TypedValueKind.null, text: "")) }
    mutating func encode(_ value: Bool) throws {
        put(.scalar(kind: TypedValueKind.boolean, text: TypedValueKind.text(for: value)))
    }
    mutating func encode(_ value: String) throws { put(try ValueEncoder.string(value, at: codingPath)) }
    mutating func encode(_ value: Double) throws {
        put(.scalar(kind: TypedValueKind.double, text: TypedValueKind.text(for: value)))
    }
    mutating func encode(_ value: Float) throws {
        put(.scalar(kind: TypedValueKind.double, text: TypedValueKind.text(for: value)))
    }
    mutating func encode(_ value: Int) throws { put(try ValueEncoder.integer(value, at: codingPath)) }
    mutating func encode(_ value: Int8) throws { put(try ValueEncoder.integer(value, at: codingPath)) }
    mutating func encode(_ value: Int16) throws { put(try ValueEncoder.integer(value, at: codingPath)) }
    mutating func encode(_ value: Int32) throws { put(try ValueEncoder.integer(value, at: codingPath)) }
    mutating func encode(_ value: Int64) throws { put(try ValueEncoder.integer(value, at: codingPath)) }
    mutating func encode(_ value: UInt) throws { put(try ValueEncoder.integer(value, at: codingPath)) }
    mutating func encode(_ value: UInt8) throws { put(try ValueEncoder.integer(value, at: codingPath)) }
    mutating func encode(_ value: UInt16) throws { put(try ValueEncoder.integer(value, at: codingPath)) }
    mutating func encode(_ value: UInt32) throws { put(try ValueEncoder.integer(value, at: codingPath)) }
    mutating func encode(_ value: UInt64) throws { put(try ValueEncoder.integer(value, at: codingPath)) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        if let scalar = try ValueEncoder.scalar(for: value, at: codingPath) {
            put(scalar)
        } else {
            try value.encode(to: encoder)
        }
    }
}

/// A coding key for list positions and synthetic keys such as `super`.
struct IndexKey: CodingKey {
    let stringValue: String
    let intValue: Int?

    init(intValue: Int) {
        self.stringValue = "Index \(intValue)"
        self.intValue = intValue
    }

    init(stringValue: String) {
        self.stringValue = stringValue
        self.intValue = nil
    }
}
