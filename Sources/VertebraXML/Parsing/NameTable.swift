import Foundation

/// Turns expat's `"namespace local"` name strings into interned `(namespace, local)` pairs.
///
/// Streams repeat a handful of names, so a small direct-mapped cache keyed by the raw bytes
/// saves a String allocation (and UTF-8 validation) for almost every element and attribute.
struct NameTable {
    struct Name {
        let namespace: String
        let local: String
    }

    private struct Entry {
        let key: [UInt8]
        let name: Name
    }

    private static let slotCount = 512
    private var slots = [Entry?](repeating: nil, count: NameTable.slotCount)

    /// Resolves the NUL-terminated expat name at `cName` (namespace and local name separated by
    /// a space when the name has a namespace).
    mutating func resolve(_ cName: UnsafePointer<CChar>) -> Name {
        var hash: UInt32 = 2_166_136_261
        var length = 0
        while cName[length] != 0 {
            hash = (hash ^ UInt32(UInt8(bitPattern: cName[length]))) &* 16_777_619
            length += 1
        }
        let slot = Int(hash % UInt32(NameTable.slotCount))
        if let entry = slots[slot], entry.key.count == length,
            entry.key.withUnsafeBytes({ $0.elementsEqual(UnsafeRawBufferPointer(start: cName, count: length)) })
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
