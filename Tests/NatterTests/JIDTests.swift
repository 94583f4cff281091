import Testing

@testable import Natter

@Suite struct JIDTests {
    @Test func parsesFullBareAndDomainJIDs() throws {
        let full = try #require(JID("Worker@LocalHost/Agent-1"))
        #expect(full.local == "worker" && full.domain == "localhost" && full.resource == "Agent-1")
        #expect(full.description == "worker@localhost/Agent-1")
        #expect(full.bare.description == "worker@localhost")
        #expect(JID("localhost")?.local == nil)
        #expect(JID("a@b/c/d")?.resource == "c/d")
    }

    @Test func rejectsMalformedJIDs() {
        for bad in ["", "@host", "user@", "user@host/", "a@b@c", "us er@host", "user@.host", "/res"] {
            #expect(JID(bad) == nil, "\(bad)")
        }
    }
}
