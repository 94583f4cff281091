import Foundation
import VertebraJournal
import VertebraXML

/// HTML text: everything that comes from a journal or a request goes through ``escape(_:)``.
enum HTML {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    /// A query string of the non-empty `parameters`, percent-encoded.
    static func query(_ parameters: [(String, String?)]) -> String {
        var components = URLComponents()
        components.queryItems = parameters.compactMap { name, value in value.flatMap { $0.isEmpty ? nil : URLQueryItem(name: name, value: $0) } }
        return components.percentEncodedQuery.map { "?" + $0 } ?? ""
    }

    static func time(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    static func duration(_ seconds: TimeInterval?) -> String {
        guard let seconds else { return "-" }
        if seconds < 1 { return String(format: "%.0f ms", seconds * 1000) }
        if seconds < 120 { return String(format: "%.1f s", seconds) }
        return String(format: "%.0f min", seconds / 60)
    }

    /// The page around `body`: title, navigation, styles.
    /// A page; `script` is the HTML of its script tags (sources of this view: the CSP allows no inline script).
    static func page(title: String, current: String, body: String, script: String = "", account: String = "") -> String {
        let links = [("/jobs", "Jobs"), ("/workers", "Workers"), ("/charts", "Charts")].map { path, name in
            "<a href=\"\(path)\"\(path == current ? " class=\"current\"" : "")>\(name)</a>"
        }.joined(separator: " ")
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title)) · Vertebra</title>
            <style>\(style)</style></head>
            <body><header><strong>Vertebra</strong> <nav>\(links)</nav><span class="account">\(account)</span></header>
            <main>\(body)</main>
            \(script)
            </body></html>
            """
    }

    static let style = """
        body{font-family:system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
        header{background:#1d2330;color:#fff;padding:.6em 1.2em}header nav{display:inline;margin-left:1.5em}
        header a{color:#cfd6e4;margin-right:1em;text-decoration:none}header .account{float:right}
        header .account form{display:inline}header .account button{background:none;border:0;color:#cfd6e4;cursor:pointer}
        .actions form{display:inline;margin-right:.6em}.note{background:#fff3bf;padding:.5em .8em;border-radius:.3em}header a.current{color:#fff;border-bottom:2px solid #6ea8fe}
        main{padding:1em 1.2em}table{border-collapse:collapse;width:100%;background:#fff}
        th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #e3e6eb;font-size:.92em;vertical-align:top}
        th{background:#eef1f5}td.id{font-family:monospace}tr.fresh{animation:fresh 2s}
        @keyframes fresh{from{background:#fff3bf}to{background:#fff}}
        .state{padding:.1em .5em;border-radius:.8em;font-size:.85em}.done{background:#d3f9d8}.failed{background:#ffe3e3}
        .cancelled{background:#e9ecef}.running,.dispatched{background:#d0ebff}.pending{background:#fff3bf}
        form.filters{margin-bottom:1em}form.filters input,form.filters select{margin-right:.5em}
        pre{background:#fff;border:1px solid #e3e6eb;padding:.6em;white-space:pre-wrap;word-break:break-all}
        dl.values{margin:0}dl.values dt{font-weight:600}dl.values dd{margin:0 0 .4em 1.2em}
        .muted{color:#6b7280}.chart{background:#fff;border:1px solid #e3e6eb;margin:0 1em 1em 0}
        """

    /// Typed values (`<string name='text'>hi</string>`, structs, arrays) as nested lists.
    static func values(_ elements: [XElement]) -> String {
        guard !elements.isEmpty else { return "<p class=\"muted\">(none)</p>" }
        return "<dl class=\"values\">" + elements.map { element in
            let name = element[attribute: "name"].map { escape($0) + " " } ?? ""
            let value = element.elements.isEmpty ? "<code>\(escape(element.text))</code>" : values(element.elements)
            return "<dt>\(name)<span class=\"muted\">\(escape(element.name))</span></dt><dd>\(value)</dd>"
        }.joined() + "</dl>"
    }

    /// The argument values of a journalled `op` (its element children other than extensions).
    static func arguments(ofOp text: String) -> [XElement] {
        guard let op = try? XElement(xml: text) else { return [] }
        return op.elements.filter { $0.namespace == op.namespace }
    }

    static func resultValues(_ text: String?) -> [XElement] {
        guard let text, let element = try? XElement(xml: text) else { return [] }
        return element.elements
    }
}
