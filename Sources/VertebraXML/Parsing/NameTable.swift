import Foundation

/// A cheap hash of a C string for the direct-mapped caches below: its length and its first and
/// last eight bytes (names differ at the end, `urn:x op` vs `urn:x ack`; URIs at the start).
/// Collisions only cost a cache miss; equality is always checked byte for byte.
private func quickHash(_ bytes: UnsafePointer<CChar>, length: Int) -> UInt64 {
    let raw = UnsafeRawPointer(bytes)
    var hash = UInt64(length) &* 0x9E37_79B9_7F4A_7C15
    if length >= 8 {
        hash ^= raw.loadUnaligned(as: UInt64.self)
        hash = (hash ^ (hash >> 29)) &* 0xBF58_476D_1CE4_E5B9
        hash ^= raw.loadUnaligned(fromByteOffset: length - 8, as: UInt64.self)
    } else {
        for index in 0..<length { hash = (hash << 8) | UInt64(UInt8(bitPattern: bytes[index])) }
    }
    hash = (hash ^ (hash >> 32)) &* 0x94D0_49BB_1331_11EB
    return hash ^ (hash >> 29)
}

/// Turns expat's `"namespace local"` name strings into interned `(namespace, local)` pairs.
///
/// The caches are per parser, so per connection: they are kept small (a few KiB) because a
/// router holds one parser per idle client.
///
/// Streams repeat a handful of names, so a small direct-mapped cache keyed by the raw bytes
/// saves String allocations (and UTF-8 validation) for almost every element and attribute.
struct NameTable {
    struct Name {
        let namespace: String
        let local: String
    }

    /// A class, so an empty slot costs one pointer: a router keeps one table per connection.
    private final class Entry {
        let key: [UInt8]
        let name: Name
        init(key: [UInt8], name: Name) {
            self.key = key
            self.name = name
        }
    }

    private static let slotCount = 512
    /// Longer names (a namespace URI and a local name rarely exceed it) are not cached: a peer
    /// sending long made-up names cannot make the table hold slotCount x the stanza size.
    static let maxCachedBytes = 256
    private var slots = [Entry?](repeating: nil, count: NameTable.slotCount)

    /// Forgets every cached name (a new stream: nothing of the old one is kept).
    mutating func removeAll() {
        for index in slots.indices { slots[index] = nil }
    }

    /// Resolves the NUL-terminated expat name at `cName` (namespace and local name separated by
    /// a space when the name has a namespace).
    mutating func resolve(_ cName: UnsafePointer<CChar>) -> Name {
        let length = strlen(cName)
        guard length <= NameTable.maxCachedBytes else {
            return NameTable.split(UnsafeRawBufferPointer(start: cName, count: length))
        }
        let slot = Int(quickHash(cName, length: length) % UInt64(NameTable.slotCount))
        if let entry = slots[slot], entry.key.count == length,
            entry.key.withUnsafeBytes({ memcmp($0.baseAddress ?? UnsafeRawPointer(cName), cName, length) == 0 })
        {
            return entry.name
        }
        let bytes = UnsafeRawBufferPointer(start: cName, count: length)
        let name = NameTable.split(bytes)
        slots[slot] = Entry(key: Array(bytes), name: name)
        return name
    }

    private static func split(_ bytes: UnsafeRawBufferPointer) -> Name {
        guard let space = bytes.lastIndex(of: 0x20) else {
            return Name(namespace: "", local: String(decoding: bytes, as: UTF8.self))
        }
        return Name(
            namespace: String(decoding: UnsafeRawBufferPointer(rebasing: bytes[..<space]), as: UTF8.self),
            local: String(
                decoding: UnsafeRawBufferPointer(rebasing: bytes[(space + 1)...]), as: UTF8.self))
    }
}

/// Interns short attribute values (`type='set'`, `from='coordinator@host/main'`, typed-value
/// names), which repeat from stanza to stanza. The cached String is its own key, so a miss costs
/// nothing beyond the String that would have been made anyway.
struct ValueTable {
    private static let slotCount = 512
    /// Longer values (tokens, ids, payload text) rarely repeat; they are not cached.
    private static let maxCachedBytes = 48
    /// Boxed, so an empty slot costs one pointer.
    private final class Box {
        let value: String
        init(_ value: String) { self.value = value }
    }
    private var slots = [Box?](repeating: nil, count: ValueTable.slotCount)

    /// Forgets every cached value (a new stream).
    mutating func removeAll() {
        for index in slots.indices { slots[index] = nil }
    }

    mutating func resolve(_ cValue: UnsafePointer<CChar>) -> String {
        let length = strlen(cValue)
        let bytes = UnsafeRawBufferPointer(start: cValue, count: length)
        guard length <= ValueTable.maxCachedBytes else { return String(decoding: bytes, as: UTF8.self) }
        let slot = Int(quickHash(cValue, length: length) % UInt64(ValueTable.slotCount))
        if let cached = slots[slot], ValueTable.matches(cached.value, cValue, length) { return cached.value }
        let value = String(decoding: bytes, as: UTF8.self)
        slots[slot] = Box(value)
        return value
    }

    private static func matches(_ cached: String, _ cValue: UnsafePointer<CChar>, _ length: Int) -> Bool {
        let equal = cached.utf8.withContiguousStorageIfAvailable { (stored: UnsafeBufferPointer<UInt8>) -> Bool in
            guard stored.count == length, let base = stored.baseAddress else { return stored.count == length }
            return memcmp(base, cValue, length) == 0
        }
        return equal ?? false
    }
}

/// Shares the attribute array of elements with one short attribute — typed values such as
/// `<i4 name='width'>` repeat them in every stanza — so they cost no allocation after the first.
struct SingleAttributeTable {
    private final class Entry {
        let name: [UInt8]
        let value: [UInt8]
        let attributes: [XAttribute]
        init(name: [UInt8], value: [UInt8], attributes: [XAttribute]) {
            self.name = name
            self.value = value
            self.attributes = attributes
        }
    }

    private static let slotCount = 512
    private static let maxValueBytes = 32
    private var slots = [Entry?](repeating: nil, count: SingleAttributeTable.slotCount)

    private func slot(_ cName: UnsafePointer<CChar>, _ nameLength: Int, _ cValue: UnsafePointer<CChar>, _ valueLength: Int) -> Int {
        let hash = quickHash(cName, length: nameLength) &* 31 &+ quickHash(cValue, length: valueLength)
        return Int(hash % UInt64(SingleAttributeTable.slotCount))
    }

    /// The shared array for this name and value, if cached.
    func cached(_ cName: UnsafePointer<CChar>, _ cValue: UnsafePointer<CChar>) -> [XAttribute]? {
        let valueLength = strlen(cValue)
        guard valueLength <= SingleAttributeTable.maxValueBytes else { return nil }
        let nameLength = strlen(cName)
        guard let entry = slots[slot(cName, nameLength, cValue, valueLength)],
            entry.name.count == nameLength, entry.value.count == valueLength,
            entry.name.withUnsafeBytes({ memcmp($0.baseAddress ?? UnsafeRawPointer(cName), cName, nameLength) == 0 }),
            entry.value.withUnsafeBytes({ memcmp($0.baseAddress ?? UnsafeRawPointer(cValue), cValue, valueLength) == 0 })
        else { return nil }
        return entry.attributes
    }

    mutating func store(_ attributes: [XAttribute], _ cName: UnsafePointer<CChar>, _ cValue: UnsafePointer<CChar>) {
        let valueLength = strlen(cValue)
        guard valueLength <= SingleAttributeTable.maxValueBytes else { return }
        let nameLength = strlen(cName)
        slots[slot(cName, nameLength, cValue, valueLength)] = Entry(
            name: Array(UnsafeRawBufferPointer(start: cName, count: nameLength)),
            value: Array(UnsafeRawBufferPointer(start: cValue, count: valueLength)),
            attributes: attributes)
    }
}
