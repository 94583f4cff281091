import Natter
import Synchronization
import VertebraXML

/// How protocol elements and values are kept in the journal: serialized XML text.
enum JournalText {
    /// One element as text.
    static func text(_ element: XElement) -> String { element.serializedString() }

    /// A list of typed values as text, wrapped in `<values>` so it stays one document.
    static func text(values: [XElement]) -> String {
        XElement("values", namespace: XMLNamespace.vertebraAPI, children: values.map { .element($0) })
            .serializedString()
    }

    /// Reads an element back; nil for text that is not one (an old or damaged record).
    static func element(_ text: String) -> XElement? { try? XElement(xml: text) }

    /// Reads values written by ``text(values:)``.
    static func values(_ text: String) -> [XElement] { element(text)?.elements ?? [] }
}

/// IQ ids for stanzas we send: unique across restarts of this agent (a random prefix per
/// process plus a counter), because the peer's journal de-duplicates by `(peer, id)`.
final class StanzaIDs: Sendable {
    private let prefix: String
    private let counter = Mutex(0)

    init() {
        prefix = "v" + (SecureRandom.hex(bytes: 6) ?? String(UInt64.random(in: 0...UInt64.max), radix: 36))
    }

    func next() -> String {
        let value = counter.withLock { count in
            count += 1
            return count
        }
        return "\(prefix)-\(value)"
    }
}
