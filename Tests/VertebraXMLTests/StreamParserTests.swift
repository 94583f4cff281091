import Testing
import VertebraXML

/// A stream with namespaces, prefixes, entities, character references, CDATA, multi-byte UTF-8
/// (2, 3 and 4 bytes) and whitespace keepalives: the sample every split must parse the same.
let sampleStream = """
    <?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
    to='localhost' version='1.0'>
    <stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features> \
    <iq type='set' id='a&amp;1' from='w@h/ré'><op xmlns='http://xmlschema.engineyard.com/agent/api' \
    type='/image/resize' token='0123456789abcdef0123456789abcdef'><string name='note'>Zoë &lt;3 \
    &#x1F600; 日本 <![CDATA[<raw> & ]]></string><struct name='s'><i4 name='n'>-7</i4></struct></op></iq>
    <message xmlns:x='urn:x' x:kind='chat'><body xml:lang='fr'>à bientôt 🦀</body></message>
    </stream:stream>
    """

func events(of text: String, chunks: [Int]) throws -> [XMLStreamEvent] {
    let bytes = Array(text.utf8)
    let parser = XMLStreamParser()
    var result: [XMLStreamEvent] = []
    var offset = 0
    for size in chunks where offset < bytes.count {
        let end = min(bytes.count, offset + size)
        result += try parser.feed(Array(bytes[offset..<end]))
        offset = end
    }
    if offset < bytes.count { result += try parser.feed(Array(bytes[offset...])) }
    return result
}

@Suite struct StreamParserTests {
    @Test func streamOpenStanzasAndCloseAreReportedInOrder() throws {
        let result = try events(of: sampleStream, chunks: [1 << 20])
        #expect(result.count == 5)
        guard case .streamOpened(let header) = result.first else {
            Issue.record("first event is not the stream opening")
            return
        }
        #expect(header.name == "stream")
        #expect(header.namespace == XMLNamespace.stream)
        #expect(header[attribute: "to"] == "localhost")
        #expect(header.children.isEmpty)
        #expect(result.last == .streamClosed)
    }

    @Test func stanzaContentIsDecodedWithNamespaces() throws {
        let result = try events(of: sampleStream, chunks: [1 << 20])
        guard case .stanza(let features) = result[1], case .stanza(let iq) = result[2],
            case .stanza(let message) = result[3]
        else {
            Issue.record("expected three stanzas, got \(result)")
            return
        }
        #expect(features.name == "features" && features.namespace == XMLNamespace.stream)
        #expect(features.firstElement?.namespace == "urn:ietf:params:xml:ns:xmpp-bind")
        #expect(iq.namespace == XMLNamespace.client)
        #expect(iq[attribute: "id"] == "a&1")
        #expect(iq[attribute: "from"] == "w@h/ré")
        let op = try #require(iq.firstElement(named: "op", namespace: XMLNamespace.vertebraAPI))
        #expect(op.firstElement(named: "string")?.text == "Zoë <3 😀 日本 <raw> & ")
        #expect(op.firstElement(named: "struct")?.firstElement?.text == "-7")
        #expect(message.attribute("kind", namespace: "urn:x") == "chat")
        let body = try #require(message.firstElement(named: "body"))
        #expect(body.attribute("lang", namespace: XMLNamespace.xml) == "fr")
        #expect(body.text == "à bientôt 🦀")
    }

    @Test func everySplitPointGivesTheSameEvents() throws {
        let whole = try events(of: sampleStream, chunks: [1 << 20])
        let length = sampleStream.utf8.count
        for split in 1..<length {
            let parts = try events(of: sampleStream, chunks: [split, length])
            #expect(parts == whole, "split at byte \(split)")
            if parts != whole { return }
        }
    }

    @Test func oneByteChunksAndRandomChunkingsGiveTheSameEvents() throws {
        let whole = try events(of: sampleStream, chunks: [1 << 20])
        #expect(try events(of: sampleStream, chunks: Array(repeating: 1, count: sampleStream.utf8.count)) == whole)
        var random = SeededGenerator(seed: 42)
        for _ in 0..<200 {
            let chunks = (0..<200).map { _ in Int.random(in: 1...17, using: &random) }
            #expect(try events(of: sampleStream, chunks: chunks) == whole)
        }
    }

    @Test func whitespaceKeepalivesBetweenStanzasAreIgnored() throws {
        let parser = XMLStreamParser()
        _ = try parser.feed("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>")
        #expect(try parser.feed(" \n \t ").isEmpty)
        #expect(try parser.feed("<presence/>  ").count == 1)
    }

    @Test func resetStartsANewStreamAfterARestart() throws {
        let parser = XMLStreamParser()
        _ = try parser.feed("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><proceed/>")
        parser.reset()
        let second = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><iq id='1'/>"
        let restarted = try parser.feed(second)
        #expect(restarted.count == 2)
        #expect(parser.bytesConsumed == second.utf8.count)
    }

    @Test func textAfterTheStreamClosesIsRefused() throws {
        let parser = XMLStreamParser()
        _ = try parser.feed("<s xmlns='jabber:client'></s>")
        #expect(try parser.feed("  ").isEmpty)
        let error = #expect(throws: XMLParseError.self) { try parser.feed("<iq/>") }
        #expect(error?.code == .inputAfterEnd)
    }
}

/// A small deterministic generator (SplitMix64), so failures reproduce.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
