import VertebraXML

/// The negotiated fast path (DESIGN §6.2), an extension a Vertebra 0.4 peer never sees.
///
/// A worker that offers it says so in its advertisement (`<i4 name='fastPath'>`, its budget in
/// milliseconds). The coordinator then adds `<fast-path xmlns='urn:x-vertebra:fast-path'/>` to
/// the `op` it sends that worker, and the worker may end the conversation in its answer to the
/// `op`: when the handler finishes within the budget, the IQ result carries the accepted token
/// with the rest of the conversation inside, each result chunk a `data` as it would have been
/// sent, then the end:
///
/// ```xml
/// <op xmlns='http://xmlschema.engineyard.com/agent/api' token='A:B'>
///   <data token='A:B'>…one chunk…</data>                  <!-- zero or more -->
///   <final token='A:B'/>                                  <!-- or <error type='…'> -->
/// </op>
/// ```
///
/// two stanzas instead of eight. A handler that runs longer continues as the classic
/// conversation (`ack`, `data`…, `final`). Both sides journal the inline messages under the IQ
/// ids ``inlineID(of:index:)``, so a repeated `op` is answered with exactly the same result.
public enum FastPath {
    public static let namespace = "urn:x-vertebra:fast-path"
    /// The largest budget a worker may offer (the coordinator's answer timeout must exceed it).
    public static let maxBudgetMilliseconds = 5_000

    /// The marker the coordinator adds to an `op`.
    public static var request: XElement { XElement("fast-path", namespace: namespace) }

    /// Whether an `op` asks for the fast path.
    public static func isRequested(in op: XElement) -> Bool {
        op.firstElement(named: "fast-path", namespace: namespace) != nil
    }

    /// The journal's IQ id for the `index`th message that travelled inside the answer to the
    /// `op` whose IQ id is `opID`.
    public static func inlineID(of opID: String, index: Int) -> String { "inline:\(index):" + opID }

    public static func isInline(_ iqID: String) -> Bool { iqID.hasPrefix("inline:") }

    /// The answer to an `op`: the accepted token, with the inline messages inside.
    public static func answer(_ attempt: JobToken, inline: [ProtocolMessage]) -> XElement {
        inline.reduce(ProtocolMessage.accepted(attempt).element) { $0.appending($1.element) }
    }

    /// The messages carried inside an answer to an `op` (empty for a classic answer): `data`
    /// chunks, then one `final` or `error`, all of the answer's attempt. Throws when they are
    /// there but do not make such a sequence.
    public static func inlineMessages(in answer: XElement, attempt: JobToken) throws(ProtocolError) -> [ProtocolMessage] {
        let children = answer.elements.filter { $0.namespace == XMLNamespace.vertebraAPI }
        guard !children.isEmpty else { return [] }
        guard children.count <= maxInlineMessages else {
            throw ProtocolError("an answer carries \(children.count) messages; at most \(maxInlineMessages)")
        }
        var messages: [ProtocolMessage] = []
        for child in children {
            let message = try ProtocolMessage(child)
            guard message.token == attempt else { throw ProtocolError("an inline <\(child.name)> names attempt \(message.token), not \(attempt)") }
            messages.append(message)
        }
        for message in messages.dropLast() {
            guard case .data = message else { throw ProtocolError("only data may come before the end of an inline conversation") }
        }
        switch messages.last {
        case .final?, .error?: return messages
        default: throw ProtocolError("an inline conversation must end with final or error")
        }
    }

    /// Bounds what one answer may carry (the stanza size limit bounds its bytes).
    public static let maxInlineMessages = 10_000
}
