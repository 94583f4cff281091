import Foundation
import Vertebra
import VertebraXML

/// Vertebra's command-line argument syntax (DESIGN §8): `name=type:value` with `string:`,
/// `res:`, `i4:` or `int:` (32 bits), `i8:` or `integer:` (64 bits), `double:`, `boolean:`,
/// `base64:`; a bare `name=value` is a string. A type name of another language (`bool:`,
/// `float:` …) is an error naming the one meant.
public enum TypedArguments {
    public struct SyntaxError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Parses every argument; the error names the one that is wrong and why.
    public static func parse(_ arguments: [String]) throws -> [XElement] {
        var seen: Set<String> = []
        return try arguments.map { argument in
            let element = try parse(argument)
            let name = element[attribute: "name"] ?? ""
            guard seen.insert(name).inserted else { throw SyntaxError(description: "argument '\(name)' is given twice") }
            return element
        }
    }

    public static func parse(_ argument: String) throws -> XElement {
        guard let equals = argument.firstIndex(of: "="), equals != argument.startIndex else {
            throw SyntaxError(description: "'\(argument)' is not name=type:value (or name=value for a string)")
        }
        let name = String(argument[..<equals])
        let rest = String(argument[argument.index(after: equals)...])
        var type = "string"
        var value = rest
        if let colon = rest.firstIndex(of: ":") {
            let prefix = String(rest[..<colon])
            if kinds.contains(prefix) {
                type = prefix
                value = String(rest[rest.index(after: colon)...])
            } else if let meant = likelyMeant[prefix] {
                throw SyntaxError(description: "argument '\(name)': '\(prefix):' is not a type (did you mean \(meant):?); to send the text '\(rest)', write \(name)=string:\(rest)")
            }
        }
        try check(type, value, name: name)
        let element = type == "boolean" ? (["1", "true"].contains(value.lowercased()) ? "1" : "0") : value
        return XElement(type, namespace: XMLNamespace.vertebraAPI, attributes: [XAttribute("name", name)], text: element)
    }

    static let kinds: Set<String> = ["string", "res", "i4", "i8", "int", "integer", "double", "boolean", "base64"]

    /// Type names of other languages, refused with the one meant rather than sent as text.
    static let likelyMeant: [String: String] = [
        "bool": "boolean", "float": "double", "number": "double", "long": "i8", "i32": "i4", "i64": "i8",
        "str": "string", "bytes": "base64",
    ]

    private static func check(_ type: String, _ value: String, name: String) throws {
        let ok: Bool
        switch type {
        case "i4", "int": ok = Int32(value) != nil
        case "i8", "integer": ok = Int64(value) != nil
        case "double": ok = Double(value) != nil
        case "boolean": ok = ["1", "0", "true", "false"].contains(value.lowercased())
        case "base64": ok = Data(base64Encoded: value) != nil
        case "res": ok = value.hasPrefix("/")
        default: ok = true
        }
        guard ok else { throw SyntaxError(description: "argument '\(name)': '\(value)' is not a valid \(type)") }
    }
}

/// Typed values as JSON (for `--json` output): numbers, strings, booleans, null, arrays for
/// `list`, objects for `struct` and for a list of named values.
public enum TypedValueJSON {
    public static func object(_ values: [XElement]) -> [String: Any] {
        var result: [String: Any] = [:]
        for (index, value) in values.enumerated() { result[value[attribute: "name"] ?? "\(index)"] = json(value) }
        return result
    }

    public static func json(_ element: XElement) -> Any {
        switch element.name {
        case "i4", "int", "integer", "i8": return Int64(element.text.trimmingCharacters(in: .whitespaces)) ?? element.text
        case "double": return Double(element.text.trimmingCharacters(in: .whitespaces)) ?? element.text
        case "boolean": return ["1", "true"].contains(element.text.trimmingCharacters(in: .whitespaces))
        case "nil": return NSNull()
        case "list": return element.elements.map(json)
        case "struct": return object(element.elements)
        default: return element.text
        }
    }

    /// One line of text for a value list, for people: `name=value name2=value2`.
    public static func line(_ values: [XElement]) -> String {
        values.map { value in
            let rendered: String
            switch json(value) {
            case let text as String: rendered = text
            case let other: rendered = (try? String(data: JSONSerialization.data(withJSONObject: other, options: [.fragmentsAllowed, .sortedKeys]), encoding: .utf8) ?? "") ?? "?"
            }
            return value[attribute: "name"].map { "\($0)=\(rendered)" } ?? rendered
        }.joined(separator: " ")
    }
}
