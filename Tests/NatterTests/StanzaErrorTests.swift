import Testing
import VertebraXML

@testable import Natter

@Suite struct StanzaErrorTests {
    private func read(_ xml: String) throws -> StanzaError? {
        StanzaError(try XElement(xml: xml))
    }

    @Test func everyDefinedConditionSurvivesTheWire() throws {
        for condition in StanzaError.Condition.allCases {
            let sent = StanzaError(type: .cancel, condition: condition, text: "why")
            let serialized = sent.element.serializedString()
            #expect(serialized.contains("<\(condition.rawValue) xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"), "\(serialized)")
            #expect(try read(serialized) == sent)
        }
    }

    @Test func aConditionOutsideTheDefinedSetReadsAsUndefined() throws {
        let error = try #require(try read("""
            <error xmlns='jabber:client' type='auth'><payment-required xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
            <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>pay</text></error>
            """))
        #expect(error.condition == .undefinedCondition && error.text == "pay" && error.type == .auth)
        #expect(error.description == "undefined-condition (auth): pay")
        #expect(try read("<error xmlns='jabber:client' type='cancel'/>")?.condition == .undefinedCondition)
        #expect(try read("<error xmlns='jabber:client' type='nonsense'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>") == nil)
    }

    @Test func theRecipientIsGoneOnlyForItsThreeConditions() {
        let gone = StanzaError.Condition.allCases.filter { StanzaError(type: .cancel, condition: $0).meansRecipientGone }
        #expect(gone == [.itemNotFound, .recipientUnavailable, .serviceUnavailable])
    }
}
