import Foundation
import Synchronization

/// The processes the demo started; all are stopped by PID on exit.
final class DemoProcesses: Sendable {
    private struct Entry {
        let process: Process
        let log: String
    }

    private let started = Mutex<[Entry]>([])

    /// Starts `executable arguments...` with output to `log`.
    func start(_ executable: String, _ arguments: [String], log: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        started.withLock { $0.append(Entry(process: process, log: log)) }
        return process
    }

    /// The processes that exited already, with the end of their logs (to explain a failure).
    func exited() -> [String] {
        started.withLock { list in
            list.filter { !$0.process.isRunning }.map { entry in
                let log = (try? String(contentsOfFile: entry.log, encoding: .utf8)) ?? ""
                return "\(entry.log) (exit status \(entry.process.terminationStatus)):\n\(log.suffix(800))"
            }
        }
    }

    /// SIGTERM to each (newest first), then SIGKILL to any still running after 5 s; returns once
    /// every one has exited (a killed process takes a moment to go), so nothing outlives the demo.
    func stopAll() {
        let processes = started.withLock { list -> [Process] in
            defer { list.removeAll() }
            return list.map(\.process)
        }
        for process in processes.reversed() where process.isRunning { process.terminate() }
        let end = Date().addingTimeInterval(5)
        for process in processes {
            while process.isRunning && Date() < end { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        let gone = Date().addingTimeInterval(5)
        for process in processes {
            while process.isRunning && Date() < gone { usleep(10_000) }
        }
    }

    /// Runs a command to completion and returns its output; throws when it fails.
    static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let output = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw DemoError("\((executable as NSString).lastPathComponent) \(arguments.first ?? "") failed: \(output)")
        }
        return output
    }

    /// A free TCP port on 127.0.0.1.
    static func freePort() throws -> Int {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw DemoError("no socket for finding a free port") }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Bool in
                bind(socket, pointer, length) == 0 && getsockname(socket, pointer, &length) == 0
            }
        }
        guard bound else { throw DemoError("could not find a free port on 127.0.0.1") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Waits until something accepts connections on 127.0.0.1:`port`.
    static func waitForPort(_ port: Int, timeout: TimeInterval = 20) throws {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            close(socket)
            if connected { return }
            usleep(100_000)
        }
        throw DemoError("nothing listens on 127.0.0.1:\(port) after \(Int(timeout)) s")
    }
}

struct DemoError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
