import Foundation
import Testing
import VertebraXML

/// The repository root, found from this file's location.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

let apiSchema = packageRoot.appendingPathComponent("Schemas/vertebra-api.xsd")

/// Validates `xml` against the wire-protocol XSD with xmllint (Debian: libxml2-utils).
func validate(_ xml: String) throws -> (valid: Bool, output: String) {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("vertebra-xsd-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let file = directory.appendingPathComponent("payload.xml")
    try Data(xml.utf8).write(to: file)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["xmllint", "--noout", "--schema", apiSchema.path, file.path]
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    if process.terminationStatus == 127 {
        Issue.record("xmllint is not installed: apt-get install libxml2-utils")
    }
    return (process.terminationStatus == 0, text)
}

private let token = "8f14e45fceea167a5a36dedd4bea2543"

@Suite struct SchemaTests {
    @Test func encodedOperationValidates() throws {
        let fields = try TypedValueEncoder().encodeFields(Everything.sample)
        let op = XElement(
            "op", namespace: XMLNamespace.vertebraAPI,
            attributes: [XAttribute("type", "/test/everything"), XAttribute("token", token), XAttribute("scope", "single")],
            children: fields.map { .element($0) })
        let result = try validate(op.serializedString())
        #expect(result.valid, "\(result.output)")
    }

    @Test func encodedResultsValidateInDataFinalAndError() throws {
        let values: [[XElement]] = [
            try TypedValueEncoder().encodeFields(["a", "b"]),
            try TypedValueEncoder().encodeFields(Double.infinity),
            try TypedValueEncoder().encodeFields(Data([1, 2, 3])),
            try TypedValueEncoder().encodeFields([String?.none]),
        ]
        for fields in values {
            for kind in ["data", "final", "error", "nack"] {
                let element = XElement(
                    kind, namespace: XMLNamespace.vertebraAPI,
                    attributes: [XAttribute("token", token + ":b")], children: fields.map { .element($0) })
                let result = try validate(element.serializedString())
                #expect(result.valid, "\(kind): \(result.output)")
            }
        }
    }

    @Test func everyExampleValidatesAndParses() throws {
        let directory = packageRoot.appendingPathComponent("Schemas/examples")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".xml") && !$0.hasPrefix("iq-") && !$0.hasPrefix("inspector-") }
        #expect(files.count >= 8)
        for file in files {
            let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            let result = try validate(text)
            #expect(result.valid, "\(file): \(result.output)")
            #expect(try XElement(xml: text).namespace == XMLNamespace.vertebraAPI)
        }
    }

    @Test func invalidPayloadsAreRejected() throws {
        let api = XMLNamespace.vertebraAPI
        for bad in [
            "<op xmlns='\(api)' type='/x' token='\(token)'><i4 name='n'>twelve</i4></op>",
            "<ack xmlns='\(api)'/>",
            "<op xmlns='\(api)' type='/x' token='\(token)' scope='some'/>",
            "<data xmlns='\(api)' token='a:b'><float name='x'>1</float></data>",
        ] {
            #expect(try !validate(bad).valid, "\(bad)")
        }
    }
}
