import Foundation

/// Decodes `Decodable` Swift values from Vertebra's typed XML values (the reverse of
/// ``TypedValueEncoder``).
///
/// Input is read leniently where old peers differ (`int`/`integer` for integers, `true`/`false`
/// for booleans, `<res>` where a `String` is wanted, integers where a `Double` is wanted) and
/// strictly everywhere else: a payload that does not fit the type throws a ``TypedValueError``
/// naming the field, the expected element and the element found.
public struct TypedValueDecoder: Sendable {
    /// The namespace typed values are read from; elements in no namespace are accepted too.
    public var namespace: String

    /// Makes a decoder.
    public init(namespace: String = XMLNamespace.vertebraAPI) {
        self.namespace = namespace
    }

    /// Decodes `type` from the named children of an operation or result (the reverse of
    /// ``TypedValueEncoder/encodeFields(_:)``). A non-struct type is read from the child named
    /// `response`, or from the only child.
    public func decodeFields<T: Decodable>(_ type: T.Type, from elements: [XElement]) throws -> T {
        let fields = XElement(
            TypedValueKind.structure, namespace: namespace,
            children: elements.map { .element($0) })
        return try ValueDecoder(element: fields, codingPath: [], context: context, isFieldList: true)
            .unbox(type)
    }

    /// Decodes `type` from one typed element.
    public func decode<T: Decodable>(_ type: T.Type, from element: XElement) throws -> T {
        try ValueDecoder(element: element, codingPath: [], context: context, isFieldList: false)
            .unbox(type)
    }

    private var context: DecodingContext { DecodingContext(namespace: namespace) }
}

struct DecodingContext {
    let namespace: String

    func isTypedValue(_ element: XElement) -> Bool {
        element.namespace == namespace || element.namespace.isEmpty
    }

    func typedChildren(of element: XElement) -> [XElement] {
        element.elements.filter(isTypedValue)
    }
}

// MARK: - Decoder

final class ValueDecoder: Decoder {
    let element: XElement
    let codingPath: [any CodingKey]
    let context: DecodingContext
    /// The top level of ``TypedValueDecoder/decodeFields(_:from:)``: a struct of fields, whose
    /// non-struct reading is the `response` field.
    let isFieldList: Bool
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(element: XElement, codingPath: [any CodingKey], context: DecodingContext, isFieldList: Bool) {
        self.element = element
        self.codingPath = codingPath
        self.context = context
        self.isFieldList = isFieldList
    }

    func container<Key: CodingKey>(keyedBy _: Key.Type) throws -> KeyedDecodingContainer<Key> {
        try expect(element, kinds: [TypedValueKind.structure], described: "<struct>", at: codingPath)
        return KeyedDecodingContainer(KeyedContainer<Key>(decoder: self, structure: element))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let list = try valueElement()
        try expect(list, kinds: [TypedValueKind.list], described: "<list>", at: codingPath)
        return UnkeyedContainer(decoder: self, items: context.typedChildren(of: list))
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleValueContainer(decoder: self, element: try valueElement())
    }

    /// The element a non-struct value is read from: at the field-list level, `response`.
    private func valueElement() throws -> XElement {
        guard isFieldList else { return element }
        let fields = context.typedChildren(of: element)
        if let response = fields.first(where: { $0[attribute: "name"] == "response" }) { return response }
        if fields.count == 1, let only = fields.first { return only }
        throw TypedValueError(
            code: .missingField, path: TypedValueError.path(codingPath),
            expected: "a single value named 'response'",
            found: fields.isEmpty ? "no values" : "\(fields.count) values without 'response'")
    }

    /// Decodes `type` from this decoder's element, handling the types with their own XML form.
    func unbox<T: Decodable>(_ type: T.Type) throws -> T {
        if let special = try specialValue(type) { return special }
        return try T(from: self)
    }

    private func specialValue<T: Decodable>(_ type: T.Type) throws -> T? {
        guard type == Date.self || type == Data.self || type == URL.self || type == Resource.self else {
            return nil
        }
        let value = try valueElement()
        let reader = ScalarReader(element: value, codingPath: codingPath)
        switch type {
        case is Date.Type: return try reader.date() as? T
        case is Data.Type: return try reader.data() as? T
        case is URL.Type: return try reader.url() as? T
        default: return try reader.resource() as? T
        }
    }

    func child(_ element: XElement, key: any CodingKey) -> ValueDecoder {
        ValueDecoder(element: element, codingPath: codingPath + [key], context: context, isFieldList: false)
    }
}

func expect(_ element: XElement, kinds: Set<String>, described: String, at path: [any CodingKey])
    throws
{
    guard kinds.contains(element.name) else {
        throw TypedValueError(
            code: .typeMismatch, path: TypedValueError.path(path), expected: described,
            found: describe(element))
    }
}

/// `<string name='width'>`: how errors name what they found.
func describe(_ element: XElement) -> String {
    let name = element[attribute: "name"].map { " name='\($0)'" } ?? ""
    return "<\(element.name)\(name)>"
}

// MARK: - Scalars

/// Reads one scalar typed value, checking its element name and content.
struct ScalarReader {
    let element: XElement
    let codingPath: [any CodingKey]

    private func text(_ kinds: Set<String>, _ described: String) throws -> String {
        try expect(element, kinds: kinds, described: described, at: codingPath)
        return element.text
    }

    private func invalid(_ expected: String) -> TypedValueError {
        let shown = element.text.count > 40 ? String(element.text.prefix(40)) + "…" : element.text
        return TypedValueError(
            code: .invalidValue, path: TypedValueError.path(codingPath), expected: expected,
            found: "\(describe(element)) containing '\(shown)'")
    }

    var isNil: Bool { element.name == TypedValueKind.null }

    func string() throws -> String {
        try text([TypedValueKind.string, TypedValueKind.resource], "<string>")
    }

    func bool() throws -> Bool {
        let value = try text([TypedValueKind.boolean], "<boolean>")
        guard let result = TypedValueKind.bool(from: value) else { throw invalid("1 or 0") }
        return result
    }

    func integer<I: FixedWidthInteger>(_ type: I.Type) throws -> I {
        let value = try text(TypedValueKind.integerNames, "<i4> (or <i8>, <int>, <integer>)")
        guard let result = TypedValueKind.integer(type, from: value) else {
            throw invalid("an integer in \(I.min)...\(I.max)")
        }
        return result
    }

    func floatingPoint<F: BinaryFloatingPoint & LosslessStringConvertible>(_ type: F.Type) throws -> F {
        let kinds = TypedValueKind.integerNames.union([TypedValueKind.double])
        let value = try text(kinds, "<double>")
        guard let result = TypedValueKind.floatingPoint(type, from: value) else {
            throw invalid("a decimal number, INF, -INF or NaN")
        }
        return result
    }

    func date() throws -> Date {
        let value = try text([TypedValueKind.dateTime], "<dateTime.iso8601>")
        guard let result = TypedValueKind.date(from: value) else {
            throw invalid("an ISO 8601 date and time such as 2026-11-27T10:00:00Z")
        }
        return result
    }

    func data() throws -> Data {
        let value = try text([TypedValueKind.base64], "<base64>")
        guard let result = Data(base64Encoded: value, options: .ignoreUnknownCharacters) else {
            throw invalid("base64 text")
        }
        return result
    }

    func url() throws -> URL {
        guard let result = URL(string: try string()) else { throw invalid("a URL") }
        return result
    }

    func resource() throws -> Resource {
        Resource(try text([TypedValueKind.resource, TypedValueKind.string], "<res>"))
    }
}

// MARK: - Containers

private struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: ValueDecoder
    /// Named fields in document order (first of a repeated name wins). Structs are small, so a
    /// linear scan beats hashing; large ones (dictionaries) get an index.
    let fields: [(name: String, element: XElement)]
    let index: [String: Int]?
    var codingPath: [any CodingKey] { decoder.codingPath }

    init(decoder: ValueDecoder, structure: XElement) {
        var fields: [(name: String, element: XElement)] = []
        for case .element(let child) in structure.children where decoder.context.isTypedValue(child) {
            guard let name = child[attribute: "name"] else { continue }
            fields.append((name, child))
        }
        self.decoder = decoder
        self.fields = fields
        if fields.count > 16 {
            var index: [String: Int] = [:]
            for (position, field) in fields.enumerated() where index[field.name] == nil { index[field.name] = position }
            self.index = index
        } else {
            self.index = nil
        }
    }

    var allKeys: [Key] {
        var seen: Set<String> = []
        return fields.compactMap { field in seen.insert(field.name).inserted ? Key(stringValue: field.name) : nil }
    }

    private func lookup(_ name: String) -> XElement? {
        if let index { return index[name].map { fields[$0].element } }
        return fields.first { $0.name == name }?.element
    }

    func contains(_ key: Key) -> Bool { lookup(key.stringValue) != nil }

    private func field(_ key: Key) throws -> XElement {
        guard let element = lookup(key.stringValue) else {
            throw TypedValueError(
                code: .missingField, path: TypedValueError.path(codingPath + [key]),
                expected: "a value named '\(key.stringValue)'", found: "nothing")
        }
        return element
    }

    private func reader(_ key: Key) throws -> ScalarReader {
        ScalarReader(element: try field(key), codingPath: codingPath + [key])
    }

    func decodeNil(forKey key: Key) throws -> Bool { try reader(key).isNil }
    func decode(_: Bool.Type, forKey key: Key) throws -> Bool { try reader(key).bool() }
    func decode(_: String.Type, forKey key: Key) throws -> String { try reader(key).string() }
    func decode(_: Double.Type, forKey key: Key) throws -> Double { try reader(key).floatingPoint(Double.self) }
    func decode(_: Float.Type, forKey key: Key) throws -> Float { try reader(key).floatingPoint(Float.self) }
    func decode(_: Int.Type, forKey key: Key) throws -> Int { try reader(key).integer(Int.self) }
    func decode(_: Int8.Type, forKey key: Key) throws -> Int8 { try reader(key).integer(Int8.self) }
    func decode(_: Int16.Type, forKey key: Key) throws -> Int16 { try reader(key).integer(Int16.self) }
    func decode(_: Int32.Type, forKey key: Key) throws -> Int32 { try reader(key).integer(Int32.self) }
    func decode(_: Int64.Type, forKey key: Key) throws -> Int64 { try reader(key).integer(Int64.self) }
    func decode(_: UInt.Type, forKey key: Key) throws -> UInt { try reader(key).integer(UInt.self) }
    func decode(_: UInt8.Type, forKey key: Key) throws -> UInt8 { try reader(key).integer(UInt8.self) }
    func decode(_: UInt16.Type, forKey key: Key) throws -> UInt16 { try reader(key).integer(UInt16.self) }
    func decode(_: UInt32.Type, forKey key: Key) throws -> UInt32 { try reader(key).integer(UInt32.self) }
    func decode(_: UInt64.Type, forKey key: Key) throws -> UInt64 { try reader(key).integer(UInt64.self) }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try decoder.child(try field(key), key: key).unbox(type)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        try decoder.child(try field(key), key: key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try decoder.child(try field(key), key: key).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        let key = IndexKey(stringValue: "super")
        guard let element = lookup("super") else {
            throw TypedValueError(
                code: .missingField, path: TypedValueError.path(codingPath + [key]),
                expected: "a value named 'super'", found: "nothing")
        }
        return decoder.child(element, key: key)
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        decoder.child(try field(key), key: key)
    }
}

private struct UnkeyedContainer: UnkeyedDecodingContainer {
    let decoder: ValueDecoder
    let items: [XElement]
    private(set) var currentIndex = 0
    var codingPath: [any CodingKey] { decoder.codingPath }
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    init(decoder: ValueDecoder, items: [XElement]) {
        self.decoder = decoder
        self.items = items
    }

    private var key: IndexKey { IndexKey(intValue: currentIndex) }

    private func current() throws -> XElement {
        guard !isAtEnd else {
            throw TypedValueError(
                code: .missingItem, path: TypedValueError.path(codingPath + [key]),
                expected: "an item at index \(currentIndex)", found: "the end of a \(items.count)-item list")
        }
        return items[currentIndex]
    }

    private mutating func next<T>(_ read: (ScalarReader) throws -> T) throws -> T {
        let value = try read(ScalarReader(element: try current(), codingPath: codingPath + [key]))
        currentIndex += 1
        return value
    }

    mutating func decodeNil() throws -> Bool {
        guard try ScalarReader(element: current(), codingPath: codingPath + [key]).isNil else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode(_: Bool.Type) throws -> Bool { try next { try $0.bool() } }
    mutating func decode(_: String.Type) throws -> String { try next { try $0.string() } }
    mutating func decode(_: Double.Type) throws -> Double { try next { try $0.floatingPoint(Double.self) } }
    mutating func decode(_: Float.Type) throws -> Float { try next { try $0.floatingPoint(Float.self) } }
    mutating func decode(_: Int.Type) throws -> Int { try next { try $0.integer(Int.self) } }
    mutating func decode(_: Int8.Type) throws -> Int8 { try next { try $0.integer(Int8.self) } }
    mutating func decode(_: Int16.Type) throws -> Int16 { try next { try $0.integer(Int16.self) } }
    mutating func decode(_: Int32.Type) throws -> Int32 { try next { try $0.integer(Int32.self) } }
    mutating func decode(_: Int64.Type) throws -> Int64 { try next { try $0.integer(Int64.self) } }
    mutating func decode(_: UInt.Type) throws -> UInt { try next { try $0.integer(UInt.self) } }
    mutating func decode(_: UInt8.Type) throws -> UInt8 { try next { try $0.integer(UInt8.self) } }
    mutating func decode(_: UInt16.Type) throws -> UInt16 { try next { try $0.integer(UInt16.self) } }
    mutating func decode(_: UInt32.Type) throws -> UInt32 { try next { try $0.integer(UInt32.self) } }
    mutating func decode(_: UInt64.Type) throws -> UInt64 { try next { try $0.integer(UInt64.self) } }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let value = try decoder.child(try current(), key: key).unbox(type)
        currentIndex += 1
        return value
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        let container = try decoder.child(try current(), key: key).container(keyedBy: type)
        currentIndex += 1
        return container
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let container = try decoder.child(try current(), key: key).unkeyedContainer()
        currentIndex += 1
        return container
    }

    mutating func superDecoder() throws -> any Decoder {
        let child = decoder.child(try current(), key: key)
        currentIndex += 1
        return child
    }
}

private struct SingleValueContainer: SingleValueDecodingContainer {
    let decoder: ValueDecoder
    let element: XElement
    var codingPath: [any CodingKey] { decoder.codingPath }
    private var reader: ScalarReader { ScalarReader(element: element, codingPath: codingPath) }

    func decodeNil() -> Bool { reader.isNil }
    func decode(_: Bool.Type) throws -> Bool { try reader.bool() }
    func decode(_: String.Type) throws -> String { try reader.string() }
    func decode(_: Double.Type) throws -> Double { try reader.floatingPoint(Double.self) }
    func decode(_: Float.Type) throws -> Float { try reader.floatingPoint(Float.self) }
    func decode(_: Int.Type) throws -> Int { try reader.integer(Int.self) }
    func decode(_: Int8.Type) throws -> Int8 { try reader.integer(Int8.self) }
    func decode(_: Int16.Type) throws -> Int16 { try reader.integer(Int16.self) }
    func decode(_: Int32.Type) throws -> Int32 { try reader.integer(Int32.self) }
    func decode(_: Int64.Type) throws -> Int64 { try reader.integer(Int64.self) }
    func decode(_: UInt.Type) throws -> UInt { try reader.integer(UInt.self) }
    func decode(_: UInt8.Type) throws -> UInt8 { try reader.integer(UInt8.self) }
    func decode(_: UInt16.Type) throws -> UInt16 { try reader.integer(UInt16.self) }
    func decode(_: UInt32.Type) throws -> UInt32 { try reader.integer(UInt32.self) }
    func decode(_: UInt64.Type) throws -> UInt64 { try reader.integer(UInt64.self) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try ValueDecoder(
            element: element, codingPath: codingPath, context: decoder.context, isFieldList: false
        ).unbox(type)
    }
}
