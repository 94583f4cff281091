import Foundation
import Testing
import XMPPTestSupport

/// `vertebra coordinator --web`: starting and stopping the web view with the coordinator.
@Suite(.serialized) struct CoordinatorWebTests {
    @Test func aStopWithALivePageOpenIsCleanAndPrompt() async throws {
        let setup = try await CrashTests.Setup.make()
        defer { setup.finish() }
        let coordinator = try AgentProcess.coordinator(setup.server, directory: setup.directory, extra: ["--web", "127.0.0.1:0"])
        defer { coordinator.stop() }
        var port: Int?
        _ = try await eventually(timeout: .seconds(20)) {
            port = coordinator.logText.split(separator: "\n").first { $0.hasPrefix("web view: ") }
                .flatMap { $0.split(separator: ":").last?.split(separator: "/").first }.flatMap { Int($0) }
            return port != nil
        }
        // Signals are the service group's once the coordinator is ready (a SIGTERM before it, on
        // a loaded machine, killed the process on the spot).
        _ = try await eventually(timeout: .seconds(20)) { coordinator.logText.contains("coordinator ready") }
        // A browser's live updates: a server-sent event stream that never ends by itself.
        let page = try OpenStream(port: try #require(port), path: "/events")
        defer { page.close() }
        try await Task.sleep(for: .milliseconds(300))
        let stopping = ContinuousClock.now
        coordinator.signalTerminate()
        #expect(try await eventually(timeout: .seconds(10)) { coordinator.hasExited }, "still running 10 s after SIGTERM")
        #expect(ContinuousClock.now - stopping < .seconds(10))
        #expect(coordinator.process.terminationStatus == 0)
        let errors = coordinator.logText.split(separator: "\n").filter { $0.contains(" error ") || $0.hasPrefix("error") }
        #expect(errors.isEmpty, "\(errors)")
    }

    @Test func aWebAddressInUseStopsTheStartWithAClearError() async throws {
        let setup = try await CrashTests.Setup.make()
        defer { setup.finish() }
        let taken = try ListeningSocket()
        defer { taken.close() }
        let coordinator = try AgentProcess.coordinator(setup.server, directory: setup.directory, extra: ["--web", "127.0.0.1:\(taken.port)"])
        defer { coordinator.stop() }
        #expect(try await eventually(timeout: .seconds(20)) { coordinator.hasExited })
        #expect(coordinator.process.terminationStatus == 1)
        #expect(coordinator.logText.contains("error: the web view cannot serve on 127.0.0.1:\(taken.port)"), "\(coordinator.logText)")
        #expect(!coordinator.logText.contains("coordinator ready"))
    }

    /// `vertebra web` alone says the same (it printed NIO's raw bind error).
    @Test func aWebAddressInUseStopsVertebraWebWithAClearError() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("web-in-use-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let journal = directory + "/journal.sqlite"
        let taken = try ListeningSocket()
        defer { taken.close() }
        let (made, _) = try await AgentProcess.run(["jobs", "generate", "--count", "3", "--journal", journal])
        #expect(made == 0)
        let (status, output) = try await AgentProcess.run(["web", "--journal", journal, "--listen", "127.0.0.1:\(taken.port)"])
        #expect(status == 1)
        #expect(output.contains("error: the web view cannot serve on 127.0.0.1:\(taken.port): the address is in use"), "\(output)")
    }
}

/// An HTTP GET whose response is left unread (the server's writes fill the socket's buffer).
private struct OpenStream {
    let socket: Int32

    init(port: Int, path: String) throws {
        socket = try loopbackSocket(port: port) { fd, address in Glibc.connect(fd, address, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
        _ = request.withCString { Glibc.send(socket, $0, strlen($0), 0) }
    }

    func close() { Glibc.close(socket) }
}

/// A loopback port held by another listener.
private struct ListeningSocket {
    let socket: Int32
    let port: Int

    init() throws {
        let fd = try loopbackSocket(port: 0) { fd, address in Glibc.bind(fd, address, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        guard Glibc.listen(fd, 1) == 0 else { throw POSIXError(.EADDRINUSE) }
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        socket = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { Glibc.close(socket) }
}

/// A TCP socket on which `use` (connect or bind) was called with 127.0.0.1:port.
private func loopbackSocket(port: Int, _ use: (Int32, UnsafePointer<sockaddr>) -> Int32) throws -> Int32 {
    let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let status = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { use(fd, $0) } }
    guard status == 0 else {
        Glibc.close(fd)
        throw POSIXError(.ECONNREFUSED)
    }
    return fd
}
