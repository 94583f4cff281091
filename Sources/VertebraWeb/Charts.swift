import Foundation
import VertebraJournal

/// Small server-rendered SVG charts (no scripts, nothing fetched from elsewhere).
enum Charts {
    struct Minute {
        var count = 0
        var p50 = 0.0
        var p99 = 0.0
    }

    /// The last 60 minutes (oldest first): jobs finished in each, and their duration p50/p99 in ms.
    static func perMinute(_ jobs: [Job], now: Date) -> [Minute] {
        var durations = Array(repeating: [Double](), count: 60)
        for job in jobs {
            guard let finished = job.finished, let duration = job.duration else { continue }
            let age = now.timeIntervalSince(finished)
            guard age >= 0, age < 3600 else { continue }
            durations[59 - Int(age / 60)].append(duration * 1000)
        }
        return durations.map { values in
            let sorted = values.sorted()
            func percentile(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
            return Minute(count: values.count, p50: percentile(0.5), p99: percentile(0.99))
        }
    }

    static let width = 600.0, height = 120.0

    static func bars(_ values: [Double], title: String, unit: String) -> String {
        let top = max(values.max() ?? 0, 1)
        let step = width / Double(max(values.count, 1))
        let bars = values.enumerated().map { index, value in
            let barHeight = (value / top) * (height - 20)
            return String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#4c6ef5\"><title>%@%@</title></rect>",
                          Double(index) * step, height - barHeight, max(step - 1, 1), barHeight, number(value), unit)
        }.joined()
        return frame(title: title, top: top, content: bars)
    }

    static func lines(_ series: [(String, [Double])], title: String) -> String {
        let top = max(series.flatMap(\.1).max() ?? 0, 1)
        let colors = ["#2b8a3e", "#e8590c"]
        var content = ""
        for (index, (name, values)) in series.enumerated() {
            let step = width / Double(max(values.count - 1, 1))
            let points = values.enumerated().map { String(format: "%.1f,%.1f", Double($0) * step, height - ($1 / top) * (height - 20)) }.joined(separator: " ")
            content += "<polyline fill=\"none\" stroke=\"\(colors[index % colors.count])\" stroke-width=\"2\" points=\"\(points)\"><title>\(HTML.escape(name))</title></polyline>"
            content += "<text x=\"\(width - 60)\" y=\"\(14 + 14 * index)\" font-size=\"11\" fill=\"\(colors[index % colors.count])\">\(HTML.escape(name))</text>"
        }
        return frame(title: title, top: top, content: content)
    }

    /// `12`, or `0.35` below 10.
    static func number(_ value: Double) -> String {
        value >= 10 ? String(format: "%.0f", value) : String(format: "%.2f", value)
    }

    private static func frame(title: String, top: Double, content: String) -> String {
        """
        <svg class="chart" xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" role="img" aria-label="\(HTML.escape(title))">\
        <text x="4" y="12" font-size="11" fill="#6b7280">\(HTML.escape(title)) (max \(number(top)); 60 min → now)</text>\
        <line x1="0" y1="\(height - 0.5)" x2="\(width)" y2="\(height - 0.5)" stroke="#ced4da"/>\(content)</svg>
        """
    }
}
