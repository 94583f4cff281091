import Natter
import Testing

@testable import Vertebra

/// What a submitter reports for the stanza error its request got.
@Suite struct VertebraErrorTests {
    func code(_ condition: StanzaError.Condition, _ type: StanzaError.ErrorType = .cancel) -> String {
        VertebraError.from(StanzaError(type: type, condition: condition, text: "why"), peer: "coordinator@localhost").code.rawValue
    }

    /// A request the server would not deliver (too large) was not taken: refused, not a job of
    /// unknown fate (`vertebra dispatch --json` said `unknown`, exit 3).
    @Test func anErrorThatSaysTheRequestWasNotTakenIsARefusal() {
        #expect(code(.policyViolation, .modify) == "refused")
        #expect(code(.notAcceptable, .modify) == "refused")
        #expect(code(.conflict) == "refused" && code(.notAllowed) == "refused")
        #expect(code(.badRequest, .modify) == "bad-request")
        #expect(code(.notAuthorized, .auth) == "not-authorized")
        #expect(code(.featureNotImplemented) == "unknown-operation")
        // Nobody answered for the coordinator: whether it took the job is not known.
        #expect(code(.serviceUnavailable) == "unreachable" && code(.remoteServerTimeout, .wait) == "unreachable")
    }
}
