import Natter
import VertebraXML

/// Every reader of peer input in this module, reachable from the fuzz harness (`Fuzz/`).
///
/// `exercise` runs each reader over one element as a peer's stanza would reach it and returns
/// the invariants it saw broken (a message that does not read back as itself, say); thrown
/// errors are the readers' normal answers to bad input and are not violations.
@_spi(Fuzzing) public enum WireReaders {
    public static func exercise(_ element: XElement) -> [String] {
        var violations: [String] = []
        if let message = try? ProtocolMessage(element) {
            let again = try? ProtocolMessage(message.element)
            if again != message { violations.append("\(message) reads back as \(String(describing: again))") }
            _ = try? FastPath.inlineMessages(in: element, attempt: message.token)
        }
        _ = try? DispatchExtension.parse(element)
        _ = FastPath.isRequested(in: element)
        _ = JobProgress(chunk: element.elements)
        let decoder = TypedValueDecoder()
        _ = try? decoder.decodeFields(Advertisement.self, from: element.elements)
        _ = try? decoder.decodeFields(DiscoverRequest.self, from: element.elements)
        _ = try? decoder.decodeFields(AuthorizeRequest.self, from: element.elements)
        for kind in ProtocolMessage.ErrorKind.allCases { _ = VertebraError.parse(element.text, kind: kind) }
        return violations
    }
}
