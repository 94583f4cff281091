import Foundation
import Testing
import VertebraXML

struct Everything: Codable, Equatable {
    enum Color: String, Codable { case red, green }
    enum Level: Int, Codable { case low = 1, high = 9 }
    struct Inner: Codable, Equatable {
        var label: String
        var values: [Int]
    }
    var text: String
    var small: Int
    var large: Int
    var int8: Int8
    var int16: Int16
    var int32: Int32
    var int64: Int64
    var uint: UInt
    var uint8: UInt8
    var uint16: UInt16
    var uint32: UInt32
    var uint64: UInt64
    var flag: Bool
    var ratio: Double
    var single: Float
    var blob: Data
    var when: Date
    var link: URL
    var where_: Resource
    var maybe: String?
    var absent: Int?
    var color: Color
    var level: Level
    var inner: Inner
    var list: [Inner]
    var grid: [[Int]]
    var table: [String: Double]
    var optionals: [String?]

    static let sample = Everything(
        text: "héllo <&> \"world\"", small: -42, large: 5_000_000_000, int8: -8, int16: 1600,
        int32: .min, int64: .max, uint: 7, uint8: 255, uint16: 65535, uint32: .max, uint64: 1 << 40,
        flag: true, ratio: 0.1, single: 1.5, blob: Data([0, 1, 2, 250, 255]),
        when: Date(timeIntervalSince1970: 1_790_000_000.25),
        link: URL(string: "https://example.com/a?b=c&d")!, where_: "/cluster/rd00", maybe: "yes",
        absent: nil, color: .green, level: .high, inner: Inner(label: "in", values: [1, 2]),
        list: [Inner(label: "a", values: []), Inner(label: "b", values: [3])],
        grid: [[1, 2], [], [3]], table: ["x": 1.25, "y": -2], optionals: ["a", nil, "c"])
}

private let ns = XMLNamespace.vertebraAPI

private func field(_ kind: String, _ name: String?, _ text: String) -> XElement {
    XElement(kind, namespace: ns, attributes: name.map { [XAttribute("name", $0)] } ?? [], text: text)
}

@Suite struct CodableTests {
    @Test func everySupportedTypeRoundTrips() throws {
        let fields = try TypedValueEncoder().encodeFields(Everything.sample)
        let decoded = try TypedValueDecoder().decodeFields(Everything.self, from: fields)
        #expect(decoded == Everything.sample)
    }

    @Test func roundTripSurvivesSerializationAndParsing() throws {
        let fields = try TypedValueEncoder().encodeFields(Everything.sample)
        let op = XElement("op", namespace: ns, attributes: [XAttribute("type", "/test")], children: fields.map { .element($0) })
        let reparsed = try XElement(xml: op.serializedString())
        #expect(try TypedValueDecoder().decodeFields(Everything.self, from: reparsed.elements) == Everything.sample)
    }

    @Test func scalarsUseVertebraElementNames() throws {
        let fields = try TypedValueEncoder().encodeFields(Everything.sample)
        func named(_ name: String) -> XElement? { fields.first { $0[attribute: "name"] == name } }
        #expect(named("text") == field("string", "text", "héllo <&> \"world\""))
        #expect(named("small") == field("i4", "small", "-42"))
        #expect(named("large") == field("i8", "large", "5000000000"))
        #expect(named("uint32")?.name == "i8")
        #expect(named("flag") == field("boolean", "flag", "1"))
        #expect(named("ratio") == field("double", "ratio", "0.1"))
        #expect(named("blob") == field("base64", "blob", "AAEC+v8="))
        #expect(named("when") == field("dateTime.iso8601", "when", "2026-09-21T14:13:20.250Z"))
        #expect(named("link") == field("string", "link", "https://example.com/a?b=c&d"))
        #expect(named("where_") == field("res", "where_", "/cluster/rd00"))
        #expect(named("absent") == nil)
        #expect(named("color") == field("string", "color", "green"))
        #expect(named("level") == field("i4", "level", "9"))
        #expect(named("inner")?.name == "struct")
        #expect(named("list")?.name == "list")
        #expect(named("list")?.elements.first?.name == "struct")
        #expect(named("list")?.elements.first?[attribute: "name"] == nil)
        #expect(named("optionals")?.elements.map(\.name) == ["string", "nil", "string"])
    }

    @Test func nonStructValuesAreWrappedAsResponse() throws {
        let fields = try TypedValueEncoder().encodeFields("done")
        #expect(fields == [field("string", "response", "done")])
        #expect(try TypedValueDecoder().decodeFields(String.self, from: fields) == "done")
        let list = try TypedValueEncoder().encodeFields([1, 2])
        #expect(list.first?.name == "list" && list.first?[attribute: "name"] == "response")
        #expect(try TypedValueDecoder().decodeFields([Int].self, from: list) == [1, 2])
    }

    @Test func oldPeersSpellingsAreAccepted() throws {
        struct Old: Codable, Equatable { var a: Int; var b: Int64; var c: Bool; var d: Date; var e: String; var f: Double }
        let fields = [
            field("int", "a", " 12 "), field("integer", "b", "-3"), field("boolean", "c", "true"),
            field("dateTime.iso8601", "d", "19980717T14:08:55"), field("res", "e", "/x"), field("i4", "f", "2"),
        ]
        let old = try TypedValueDecoder().decodeFields(Old.self, from: fields)
        #expect(old == Old(a: 12, b: -3, c: true, d: Date(timeIntervalSince1970: 900_684_535), e: "/x", f: 2))
    }

    @Test func specialDoublesUseXSDSpellings() throws {
        let encoded = try [Double.infinity, -.infinity, .nan].map { try TypedValueEncoder().encode($0).text }
        #expect(encoded == ["INF", "-INF", "NaN"])
        let back = try TypedValueDecoder().decode(Double.self, from: field("double", nil, "NaN"))
        #expect(back.isNaN)
        #expect(throws: TypedValueError.self) { try TypedValueDecoder().decode(Double.self, from: field("double", nil, "inf")) }
    }

    @Test func aWrongElementTypeNamesThePathExpectedAndFound() throws {
        struct Size: Codable { var width: Int }
        struct Job: Codable { var size: Size }
        let fields = [XElement("struct", namespace: ns, attributes: [XAttribute("name", "size")], children: [.element(field("string", "width", "wide"))])]
        let error = #expect(throws: TypedValueError.self) { try TypedValueDecoder().decodeFields(Job.self, from: fields) }
        #expect(error?.code == .typeMismatch)
        #expect(error?.field == "size.width")
        #expect(error?.expected.contains("<i4>") == true)
        #expect(error?.found == "<string name='width'>")
        #expect(error?.description == "field size.width: expected <i4> (or <i8>, <int>, <integer>), found <string name='width'>")
    }

    @Test func aMissingFieldIsNamed() {
        struct Job: Codable { var path: String }
        let error = #expect(throws: TypedValueError.self) { try TypedValueDecoder().decodeFields(Job.self, from: []) }
        #expect(error?.code == .missingField)
        #expect(error?.field == "path")
    }

    @Test func invalidContentIsReported() {
        struct Job: Codable { var n: UInt8 }
        let overflow = #expect(throws: TypedValueError.self) { try TypedValueDecoder().decodeFields(Job.self, from: [field("i4", "n", "300")]) }
        #expect(overflow?.code == .invalidValue)
        #expect(overflow?.expected == "an integer in 0...255")
        let garbage = #expect(throws: TypedValueError.self) { try TypedValueDecoder().decodeFields(Job.self, from: [field("i4", "n", "12x")]) }
        #expect(garbage?.found == "<i4 name='n'> containing '12x'")
        #expect(throws: TypedValueError.self) { try TypedValueDecoder().decode(Data.self, from: field("base64", nil, "!!!")) }
        #expect(throws: TypedValueError.self) { try TypedValueDecoder().decode(Bool.self, from: field("boolean", nil, "yes")) }
        #expect(throws: TypedValueError.self) { try TypedValueDecoder().decode(Date.self, from: field("dateTime.iso8601", nil, "tomorrow")) }
    }

    @Test func listErrorsNameTheIndex() {
        struct Job: Codable { var formats: [Int] }
        let list = XElement("list", namespace: ns, attributes: [XAttribute("name", "formats")], children: [.element(field("i4", nil, "1")), .element(field("string", nil, "x"))])
        let error = #expect(throws: TypedValueError.self) { try TypedValueDecoder().decodeFields(Job.self, from: [list]) }
        #expect(error?.field == "formats[1]")
        struct Pair: Codable {
            var a: Int
            var b: Int
            init(from decoder: any Decoder) throws {
                var items = try decoder.unkeyedContainer()
                a = try items.decode(Int.self)
                b = try items.decode(Int.self)
            }
        }
        let short = XElement("list", namespace: ns, children: [.element(field("i4", nil, "1"))])
        let missing = #expect(throws: TypedValueError.self) { try TypedValueDecoder().decode(Pair.self, from: short) }
        #expect(missing?.code == .missingItem)
    }

    @Test func aStructWhereAListIsExpectedIsAMismatch() {
        struct Job: Codable { var items: [String] }
        let wrong = XElement("struct", namespace: ns, attributes: [XAttribute("name", "items")])
        let error = #expect(throws: TypedValueError.self) { try TypedValueDecoder().decodeFields(Job.self, from: [wrong]) }
        #expect(error?.expected == "<list>")
        #expect(error?.found == "<struct name='items'>")
    }

    @Test func stringsXMLCannotCarryAreRefusedWhenEncoding() {
        struct Job: Codable { var note: String }
        let error = #expect(throws: TypedValueError.self) { try TypedValueEncoder().encodeFields(Job(note: "bell\u{7}")) }
        #expect(error?.field == "note")
        #expect(error?.found.contains("U+0007") == true)
    }

    @Test func integersBeyondSixtyFourSignedBitsAreRefused() {
        let error = #expect(throws: TypedValueError.self) { try TypedValueEncoder().encode(UInt64.max) }
        #expect(error?.code == .invalidValue)
    }

    @Test func elementsOfOtherNamespacesAreIgnored() throws {
        struct Job: Codable, Equatable { var a: Int }
        let fields = [XElement("i4", namespace: "urn:other", attributes: [XAttribute("name", "a")], text: "9"), field("i4", "a", "1")]
        #expect(try TypedValueDecoder().decodeFields(Job.self, from: fields) == Job(a: 1))
    }

    @Test func resourcesMatchByWholeComponents() {
        let cluster: Resource = "/cluster"
        #expect(cluster.covers("/cluster/rd00"))
        #expect(cluster.covers("/cluster"))
        #expect(!Resource("/cluster/rd001").covers("/cluster/rd00"))
        #expect(!Resource("/cluster/rd00").covers("/cluster/rd001"))
        #expect(Resource("a//b/").path == "/a/b")
        #expect(Resource("/").covers("/anything"))
    }
}
