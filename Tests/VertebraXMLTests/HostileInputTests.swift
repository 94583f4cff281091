import Testing
import VertebraXML

private let streamHeader = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"

private func streamError(_ input: String, limits: XMLParserLimits = .stream) -> XMLParseError? {
    streamError(Array(input.utf8), limits: limits)
}

private func streamError(_ bytes: [UInt8], limits: XMLParserLimits = .stream) -> XMLParseError? {
    let parser = XMLStreamParser(limits: limits)
    do {
        _ = try parser.feed(bytes)
        return nil
    } catch {
        return error
    }
}

@Suite struct HostileInputTests {
    /// Long made-up element names (not cached) come back exactly, stanza after stanza and
    /// after a stream restart (which forgets every cached name).
    @Test func longMadeUpNamesParseExactlyBeforeAndAfterAStreamRestart() throws {
        let parser = XMLStreamParser(limits: .stream)
        _ = try parser.feed(Array(streamHeader.utf8))
        for index in 0..<3 {
            let name = "x" + String(repeating: "\(index)", count: 5_000)
            let events = try parser.feed(Array("<\(name) xmlns='urn:t' a='1'/>".utf8))
            guard case .stanza(let element)? = events.first else {
                Issue.record("no stanza for name \(index)")
                continue
            }
            #expect(element.name == name)
            #expect(element.namespace == "urn:t")
        }
        parser.reset()
        _ = try parser.feed(Array(streamHeader.utf8))
        let events = try parser.feed(Array("<iq xmlns='jabber:client' type='get' id='1'/>".utf8))
        guard case .stanza(let iq)? = events.first else {
            Issue.record("no stanza after the restart")
            return
        }
        #expect(iq.name == "iq" && iq.namespace == "jabber:client" && iq[attribute: "type"] == "get")
    }

    @Test func doctypeIsRefusedAsRestrictedXML() {
        let error = streamError("<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY a 'b'>]>" + streamHeader)
        #expect(error?.code == .restrictedXML)
        #expect(error?.message.contains("DOCTYPE") == true)
    }

    @Test func billionLaughsIsRefusedBeforeAnyExpansion() {
        var bomb = "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'>"
        for level in 1...9 {
            bomb += "<!ENTITY lol\(level) '" + String(repeating: "&lol\(level == 1 ? "" : String(level - 1));", count: 10) + "'>"
        }
        bomb += "]><lolz>&lol9;</lolz>"
        let error = streamError(bomb)
        #expect(error?.code == .restrictedXML)
        #expect(throws: XMLParseError.self) { try XElement(xml: bomb) }
    }

    @Test func processingInstructionsAreRefused() {
        let error = streamError(streamHeader + "<?evil run='me'?>")
        #expect(error?.code == .restrictedXML)
        #expect(error?.message.contains("processing instruction") == true)
    }

    @Test func commentsAreRefusedInStreamsAndSkippedInDocuments() throws {
        #expect(streamError(streamHeader + "<iq><!-- hi --></iq>")?.code == .restrictedXML)
        let document = try XElement(xml: "<a><!-- note --><b/></a>")
        #expect(document.elements.map(\.name) == ["b"])
    }

    @Test func notWellFormedInputReportsWhereItBroke() {
        let input = streamHeader + "<iq><query></iq>"
        let error = streamError(input)
        #expect(error?.code == .notWellFormed)
        let endTag = streamHeader.utf8.count + "<iq><query>".utf8.count
        #expect((endTag..<endTag + "</iq>".utf8.count).contains(error?.byteOffset ?? -1))
        #expect(error?.line == 1)
        #expect(error?.description.contains("byte") == true)
    }

    @Test func invalidUTF8IsNamed() {
        for bad: [UInt8] in [[0xFF], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xE2, 0x28, 0xA1]] {
            let bytes = Array((streamHeader + "<iq>").utf8) + bad + Array("</iq>".utf8)
            #expect(streamError(bytes)?.code == .invalidUTF8, "bytes \(bad)")
        }
    }

    @Test func aStanzaOverTheLimitIsRefusedEvenWhenItArrivesWhole() {
        let limits = XMLParserLimits(maxStanzaBytes: 100)
        let stanza = "<iq>" + String(repeating: "x", count: 200) + "</iq>"
        let error = streamError(streamHeader + stanza, limits: limits)
        #expect(error?.code == .stanzaTooLarge)
        #expect(streamError(streamHeader + "<iq>small</iq>", limits: limits) == nil)
    }

    @Test func anEndlessStanzaIsCutOffWithBoundedInput() {
        let limits = XMLParserLimits(maxStanzaBytes: 64 * 1024)
        let parser = XMLStreamParser(limits: limits)
        var failure: XMLParseError?
        do {
            _ = try parser.feed(streamHeader + "<message><body>")
            let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1024)
            for _ in 0..<10_000 { _ = try parser.feed(chunk) }
        } catch {
            failure = error
        }
        #expect(failure?.code == .stanzaTooLarge)
        #expect(parser.bytesConsumed < 64 * 1024 + 20 * 1024)
    }

    @Test func oneHugeFeedIsStillCheckedAsItIsParsed() {
        let limits = XMLParserLimits(maxStanzaBytes: 32 * 1024)
        let parser = XMLStreamParser(limits: limits)
        let flood = Array((streamHeader + "<iq attr='").utf8) + [UInt8](repeating: UInt8(ascii: "z"), count: 8 << 20)
        #expect(throws: XMLParseError.self) { try parser.feed(flood) }
        #expect(parser.bytesConsumed < 64 * 1024)
    }

    @Test func excessiveDepthIsRefused() {
        let limits = XMLParserLimits(maxDepth: 10)
        let deep = String(repeating: "<a>", count: 20) + String(repeating: "</a>", count: 20)
        #expect(streamError(streamHeader + deep, limits: limits)?.code == .tooDeep)
        let shallow = String(repeating: "<a>", count: 9) + String(repeating: "</a>", count: 9)
        #expect(streamError(streamHeader + shallow, limits: limits) == nil)
    }

    @Test func tooManyAttributesAreRefused() {
        let limits = XMLParserLimits(maxAttributes: 8)
        let attributes = (0..<9).map { "a\($0)='v'" }.joined(separator: " ")
        #expect(streamError(streamHeader + "<iq \(attributes)/>", limits: limits)?.code == .tooManyAttributes)
    }

    @Test func unboundPrefixesAreRefused() {
        #expect(streamError(streamHeader + "<x:iq/>")?.code == .unboundPrefix)
        #expect(streamError(streamHeader + "<iq y:a='1'/>")?.code == .unboundPrefix)
    }

    @Test func textAtStreamLevelIsRefused() {
        #expect(streamError(streamHeader + "hello")?.code == .textAtStreamLevel)
    }

    @Test func undefinedEntitiesAreNotWellFormed() {
        #expect(streamError(streamHeader + "<iq>&nbsp;</iq>")?.code == .notWellFormed)
    }

    @Test func anErrorIsStickyUntilReset() throws {
        let parser = XMLStreamParser()
        #expect(throws: XMLParseError.self) { try parser.feed(streamHeader + "<iq></query>") }
        let again = #expect(throws: XMLParseError.self) { try parser.feed("<iq/>") }
        #expect(again?.code == .notWellFormed)
        parser.reset()
        #expect(try parser.feed(streamHeader + "<iq/>").count == 2)
    }

    @Test func truncatedAndEmptyDocumentsAreReported() {
        let truncated = #expect(throws: XMLParseError.self) { try XElement(xml: "<a><b>") }
        #expect(truncated?.code == .truncated)
        let empty = #expect(throws: XMLParseError.self) { try XElement(xml: "") }
        #expect(empty?.code == .truncated)
        let twoRoots = #expect(throws: XMLParseError.self) { try XElement(xml: "<a/><b/>") }
        #expect(twoRoots?.code == .inputAfterEnd)
    }

    @Test func manyHostileInputsInARowNeverCrash() {
        var random = SeededGenerator(seed: 7)
        let alphabet = Array("<>/='\"&;![]?x: \n".utf8) + [0xFF, 0xC3, 0xA9, 0x00]
        for _ in 0..<2_000 {
            let bytes = (0..<Int.random(in: 1...64, using: &random)).map { _ in alphabet.randomElement(using: &random) ?? 0 }
            _ = streamError(Array(streamHeader.utf8) + bytes)
            _ = try? XElement(parsing: bytes)
        }
    }
}
