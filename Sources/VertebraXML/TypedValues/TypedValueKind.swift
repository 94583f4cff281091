import Foundation

/// The element names of Vertebra's typed values (XML-RPC-like), and their text forms.
enum TypedValueKind {
    static let i4 = "i4"
    static let i8 = "i8"
    static let string = "string"
    static let boolean = "boolean"
    static let double = "double"
    static let resource = "res"
    static let null = "nil"
    static let base64 = "base64"
    static let dateTime = "dateTime.iso8601"
    static let list = "list"
    static let structure = "struct"

    /// Names accepted for integers on input (`int` and `integer` come from older peers).
    static let integerNames: Set<String> = [i4, i8, "int", "integer"]

    // MARK: Text forms

    static func text(for value: Bool) -> String { value ? "1" : "0" }

    static func bool(from text: String) -> Bool? {
        switch text.trimmingCharacters(in: .whitespaces) {
        case "1", "true": return true
        case "0", "false": return false
        default: return nil
        }
    }

    /// XSD `double` lexical form: Swift's shortest round-trip digits, `INF`, `-INF`, `NaN`.
    static func text<F: BinaryFloatingPoint & LosslessStringConvertible>(for value: F) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-INF" : "INF" }
        return value.description
    }

    static func floatingPoint<F: BinaryFloatingPoint & LosslessStringConvertible>(
        _: F.Type, from text: String
    ) -> F? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        switch trimmed {
        case "INF", "+INF": return F.infinity
        case "-INF": return -F.infinity
        case "NaN": return F.nan
        default:
            guard let first = trimmed.unicodeScalars.first,
                first == "-" || first == "+" || first == "." || ("0"..."9").contains(first)
            else { return nil }  // refuse Swift-only spellings such as "inf" or "nan"
            return F(trimmed)
        }
    }

    static func integer<I: FixedWidthInteger>(_: I.Type, from text: String) -> I? {
        I(text.trimmingCharacters(in: .whitespaces))
    }

    // MARK: Dates

    /// ISO 8601 in UTC, with milliseconds only when the date has a fraction of a second.
    static func text(for date: Date) -> String {
        let whole = date.timeIntervalSince1970.rounded(.down) == date.timeIntervalSince1970
        return date.formatted(
            Date.ISO8601FormatStyle(includingFractionalSeconds: !whole, timeZone: .gmt))
    }

    /// Accepts extended ISO 8601 with or without fractional seconds and zone, and XML-RPC's
    /// basic `19980717T14:08:55` (taken as UTC).
    static func date(from text: String) -> Date? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        for candidate in [trimmed, expandBasicForm(trimmed), withZone(trimmed)].compactMap({ $0 }) {
            for fractional in [false, true] {
                let style = Date.ISO8601FormatStyle(includingFractionalSeconds: fractional, timeZone: .gmt)
                if let date = try? style.parse(candidate) { return date }
            }
        }
        return nil
    }

    private static func withZone(_ text: String) -> String? {
        text.hasSuffix("Z") || text.contains("+") || text.dropFirst(10).contains("-") ? nil : text + "Z"
    }

    private static func expandBasicForm(_ text: String) -> String? {
        let characters = Array(text)
        guard characters.count >= 17, characters[8] == "T",
            characters[0..<8].allSatisfy(\.isASCIIDigit)
        else { return nil }
        let date = "\(String(characters[0..<4]))-\(String(characters[4..<6]))-\(String(characters[6..<8]))"
        let rest = String(characters[8...])
        return withZone(date + rest) ?? date + rest
    }

    // MARK: Strings

    /// The first character of `text` that XML 1.0 cannot carry, if any.
    static func firstForbiddenScalar(in text: String) -> Unicode.Scalar? {
        text.unicodeScalars.first { !XMLSerializer.isAllowedInXML($0) }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
