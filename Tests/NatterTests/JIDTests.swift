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

    /// Control and invisible characters make a name that looks like another (or writes escape
    /// codes to a terminal listing it): refused in every part; a resource may hold spaces.
    @Test(arguments: ["ta\tb@host", "e\u{1B}[2Jz@host", "de\u{7F}l@host", "zero\u{200B}width@host", "nb\u{00A0}sp@host",
                      "user@ho\u{0007}st", "user@bad..domain", "user@host/re\u{0000}s", "user@host/r\u{2028}es", "user@host/\u{200E}r"])
    func rejectsControlAndInvisibleCharacters(text: String) {
        #expect(JID(text) == nil, "\(text.debugDescription)")
    }

    @Test func acceptsUnicodeNamesAndResourcesWithSpaces() {
        #expect(JID("jürgen@bücher.example/Küche")?.local == "jürgen")
        #expect(JID("user@host/my phone")?.resource == "my phone")
    }
}
