import Foundation
import Synchronization

/// Runs `body` once and returns its duration and result.
func measure<T>(_ body: () throws -> T) rethrows -> (Duration, T) {
    let clock = ContinuousClock()
    let start = clock.now
    let result = try body()
    return (clock.now - start, result)
}

extension Duration {
    var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}

func mbps(_ bytes: Int, _ time: Duration) -> String {
    String(format: "%.1f", Double(bytes) / 1_000_000 / max(time.seconds, 1e-9))
}

func rate(_ count: Int, _ time: Duration) -> String {
    String(format: "%.0f", Double(count) / max(time.seconds, 1e-9))
}

func micros(_ time: Duration, _ count: Int) -> String {
    String(format: "%.2f", time.seconds * 1e6 / Double(count))
}

/// How many times faster `candidate` is than `baseline`.
func ratio(_ baseline: Duration, _ candidate: Duration) -> String {
    String(format: "%.2fx", baseline.seconds / max(candidate.seconds, 1e-9))
}

/// A plain-text table with aligned columns.
final class Table {
    private let header: [String]
    private var rows: [[String]] = []

    init(header: [String]) { self.header = header }

    func add(_ row: [String]) { rows.append(row) }

    func print() {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        func line(_ row: [String]) -> String {
            row.enumerated().map { column, cell in
                column == 0
                    ? cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[column] - cell.count) + cell
            }.joined(separator: "  ")
        }
        Swift.print(line(header))
        Swift.print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
        rows.forEach { Swift.print(line($0)) }
    }
}

/// Peak resident memory of this process.
enum ResidentMemory {
    static func peakKiB() -> Int {
        var usage = rusage()
        #if os(Linux)
            getrusage(Int32(truncatingIfNeeded: RUSAGE_SELF.rawValue), &usage)
        #else
            getrusage(RUSAGE_SELF, &usage)
        #endif
        return usage.ru_maxrss
    }
}

/// What a benchmark leaves behind if it is stopped by SIGINT or SIGTERM: its scratch folders
/// and the worker processes it started. The first signal stops those workers, removes the
/// folders and exits 128 + the signal's number (the `defer`s of an interrupted run never run).
final class BenchCleanup: Sendable {
    static let shared = BenchCleanup()

    private struct State {
        var directories: Set<String> = []
        var processes: [Process] = []
        var sources: [any DispatchSourceSignal] = []
    }
    private let state = Mutex(State())

    /// Creates a fresh folder `prefix-XXXXXXXX` under `parent` (the system's temporary folder by
    /// default), removed on a signal; the caller removes it when done (``remove(_:)``).
    func scratchDirectory(_ prefix: String, under parent: String? = nil) throws -> String {
        let base = URL(fileURLWithPath: parent ?? FileManager.default.temporaryDirectory.path)
        let path = base.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        listen()
        state.withLock { _ = $0.directories.insert(path) }
        return path
    }

    func remove(_ directory: String) {
        state.withLock { _ = $0.directories.remove(directory) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A started child process, terminated on a signal.
    func adopt(_ process: Process) {
        listen()
        state.withLock { $0.processes.append(process) }
    }

    private func listen() {
        state.withLock { state in
            guard state.sources.isEmpty else { return }
            for number in [SIGINT, SIGTERM] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { [self] in cleanUpAndExit(number) }
                source.resume()
                state.sources.append(source)
            }
        }
    }

    private func cleanUpAndExit(_ number: Int32) -> Never {
        let (directories, processes) = state.withLock { ($0.directories, $0.processes) }
        for process in processes where process.isRunning { process.terminate() }
        for process in processes { process.waitUntilExit() }
        for directory in directories { try? FileManager.default.removeItem(atPath: directory) }
        FileHandle.standardError.write(Data("interrupted: stopped the workers and removed the scratch folders\n".utf8))
        exit(128 + number)
    }
}
