import Testing
import VertebraXML

@Suite struct SerializerTests {
    @Test func textAndAttributesAreEscaped() throws {
        let element = XElement(
            "a", attributes: [XAttribute("q", "it's \"x\" & <y>\t\n\r")],
            text: "]]> & <tag> \r end")
        let xml = element.serializedString()
        #expect(xml == "<a q='it&apos;s &quot;x&quot; &amp; &lt;y&gt;&#9;&#10;&#13;'>]]&gt; &amp; &lt;tag&gt; &#13; end</a>")
        #expect(try XElement(xml: xml) == element)
    }

    @Test func namespacesAreDeclaredOnlyWhereTheyChange() {
        let op = XElement(
            "op", namespace: XMLNamespace.vertebraAPI,
            children: [.element(XElement("i4", namespace: XMLNamespace.vertebraAPI, text: "1"))])
        let iq = XElement("iq", namespace: XMLNamespace.client, children: [.element(op)])
        #expect(
            iq.serializedString(inheritedNamespace: XMLNamespace.client)
                == "<iq><op xmlns='http://xmlschema.engineyard.com/agent/api'><i4>1</i4></op></iq>")
        let mixed = XElement("a", namespace: "urn:a", children: [.element(XElement("b"))])
        #expect(mixed.serializedString() == "<a xmlns='urn:a'><b xmlns=''/></a>")
    }

    @Test func namespacedAttributesGetDeclaredPrefixes() throws {
        let element = XElement(
            "body", namespace: "jabber:client",
            attributes: [
                XAttribute("lang", "en", namespace: XMLNamespace.xml),
                XAttribute("kind", "x", namespace: "urn:k"),
            ])
        let xml = element.serializedString()
        #expect(xml == "<body xmlns='jabber:client' xml:lang='en' xmlns:ns0='urn:k' ns0:kind='x'/>")
        #expect(try XElement(xml: xml) == element)
    }

    @Test func charactersXMLCannotCarryAreReplaced() throws {
        let element = XElement("a", attributes: [XAttribute("v", "a\u{1}b")], text: "x\u{0}y\u{FFFF}z")
        let xml = element.serializedString()
        #expect(xml == "<a v='a\u{FFFD}b'>x\u{FFFD}y\u{FFFD}z</a>")
        #expect(try XElement(xml: xml).text == "x\u{FFFD}y\u{FFFD}z")
    }

    @Test func streamHeaderStartTagDeclaresTheStreamPrefix() throws {
        var bytes: [UInt8] = []
        let header = XElement(
            "stream", namespace: XMLNamespace.stream,
            attributes: [XAttribute("to", "localhost"), XAttribute("version", "1.0")])
        XMLSerializer.writeStartTag(
            of: header, inheritedNamespace: XMLNamespace.client, prefix: "stream",
            declaring: [("stream", XMLNamespace.stream)], into: &bytes)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text == "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>")
    }

    @Test func randomTreesSurviveSerializeAndParse() throws {
        var random = SeededGenerator(seed: 2026)
        for round in 0..<500 {
            let tree = RandomTree.element(depth: 0, using: &random)
            let xml = tree.serializedString()
            let parsed = try XElement(xml: xml)
            #expect(parsed == tree, "round \(round): \(xml)")
            if parsed != tree { return }
        }
    }
}

/// Random elements with the characters that need care: markup, quotes, whitespace, multi-byte.
enum RandomTree {
    static let alphabet: [Character] = Array("abcXYZ019 <>&'\";]]>\t\n\r\u{7F}é日😀=/?")
    static let names = ["a", "iq", "op", "struct", "x-y", "n.m", "_u", "dateTime.iso8601"]
    static let namespaces = ["", "jabber:client", "urn:a", XMLNamespace.vertebraAPI]

    static func text(using random: inout SeededGenerator) -> String {
        String((0..<Int.random(in: 1...12, using: &random)).map { _ in alphabet.randomElement(using: &random) ?? "a" })
    }

    static func element(depth: Int, using random: inout SeededGenerator) -> XElement {
        var attributes: [XAttribute] = []
        for index in 0..<Int.random(in: 0...3, using: &random) {
            let namespace = Bool.random(using: &random) ? "" : (namespaces.randomElement(using: &random) ?? "")
            attributes.append(XAttribute("k\(index)", text(using: &random), namespace: namespace))
        }
        var children: [XNode] = []
        var lastWasText = false
        for _ in 0..<(depth > 3 ? 0 : Int.random(in: 0...4, using: &random)) {
            if !lastWasText && Bool.random(using: &random) {
                children.append(.text(text(using: &random)))
                lastWasText = true
            } else {
                children.append(.element(element(depth: depth + 1, using: &random)))
                lastWasText = false
            }
        }
        return XElement(
            names.randomElement(using: &random) ?? "a",
            namespace: namespaces.randomElement(using: &random) ?? "",
            attributes: attributes, children: children)
    }
}
