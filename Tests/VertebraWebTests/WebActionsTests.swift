import Foundation
import Synchronization
import Testing
import Vertebra
import VertebraJournal
@testable import VertebraWeb

/// The cancel and retry buttons: sign-in, session cookie, CSRF token and Origin checks, with a
/// recording stand-in for the account's XMPP login.
@Suite(.serialized, .timeLimit(.minutes(2))) struct WebActionsTests {
    final class Recorder: JobOperator, @unchecked Sendable {
        let account: String
        let calls = Mutex<[String]>([])
        init(_ account: String) { self.account = account }
        func cancelJob(_ id: String) async throws -> JobActionResult {
            calls.withLock { $0.append("cancel \(id)") }
            return JobActionResult(job: id, state: "cancelling")
        }
        func retryJob(_ id: String) async throws -> JobActionResult {
            calls.withLock { $0.append("retry \(id)") }
            guard !id.hasPrefix("0") else { throw VertebraError(.refused, "only a failed or cancelled job can be retried") }
            return JobActionResult(job: String(repeating: "e", count: 32), state: "pending", retryOf: id)
        }
        func stop() async {}
    }

    final class Fixture: @unchecked Sendable {
        let directory: String
        let journal: ExchangeJournal
        let server: RunningWebView
        let port: Int
        let running = String(repeating: "a", count: 32)
        let failed = String(repeating: "b", count: 32)
        let signedIn = SignedIn()

        final class SignedIn: Sendable {
            let list = Mutex<[Recorder]>([])
            func withLock<T>(_ body: (inout [Recorder]) -> T) -> T { list.withLock { body(&$0) } }
        }

        init() async throws {
            directory = NSTemporaryDirectory() + "web-actions-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            journal = try ExchangeJournal(path: directory + "/journal.sqlite", options: .init(durability: .normal))
            try await journal.write([
                .createJob(NewJob(token: running, operation: "/slow", arguments: "", state: .pending)), .transition(job: running, to: .running),
                .createJob(NewJob(token: failed, operation: "/broken", arguments: "", state: .pending)), .transition(job: failed, to: .failed, error: "x"),
            ])
            var options = WebView.Options(host: "127.0.0.1", port: 0, journalPath: directory + "/journal.sqlite")
            let signedIn = signedIn
            options.actions = WebActions(domain: "localhost") { account, password in
                guard password == "right password" else { throw VertebraError(.notAuthorized, "not-authorized") }
                let recorder = Recorder(account)
                signedIn.withLock { $0.append(recorder) }
                return recorder
            }
            server = try await WebView(options: options).start()
            port = server.port
        }

        func request(_ method: String, _ path: String, cookie: String? = nil, form: String? = nil, origin: String? = nil) async throws -> RawResponse {
            var headers = ["Host: 127.0.0.1:\(port)", "Connection: close"]
            if let cookie { headers.append("Cookie: \(cookie)") }
            if let origin { headers.append("Origin: \(origin)") }
            if let form { headers += ["Content-Type: application/x-www-form-urlencoded", "Content-Length: \(form.utf8.count)"] }
            return try await RawHTTP.send("\(method) \(path) HTTP/1.1\r\n" + headers.joined(separator: "\r\n") + "\r\n\r\n" + (form ?? ""), port: port)
        }

        /// Signs in; returns the session cookie (`name=value`).
        func signIn() async throws -> String {
            let response = try await request("POST", "/signin", form: "account=alice&password=right+password", origin: "http://127.0.0.1:\(port)")
            let setCookie = try #require(response.header("Set-Cookie"))
            #expect(response.status == 303)
            #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Strict"))
            return String(setCookie.split(separator: ";")[0])
        }

        func csrf(_ page: String) -> String? {
            guard let range = page.range(of: "name=\"csrf\" value=\"") else { return nil }
            return String(page[range.upperBound...].prefix(64))
        }

        func finish() async {
            await server.stop()
            await journal.close()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    @Test func withoutSignInThereAreNoButtonsAndActionsAreRefused() async throws {
        let fixture = try await Fixture()
        let page = try await fixture.request("GET", "/jobs/\(fixture.running)")
        #expect(page.status == 200 && page.body.contains("Sign in</a> to cancel or retry") && !page.body.contains("id=\"cancel\""))
        #expect(try await fixture.request("POST", "/jobs/\(fixture.running)/cancel", form: "csrf=x").status == 401)
        let wrong = try await fixture.request("POST", "/signin", form: "account=alice&password=guess")
        #expect(wrong.status == 401 && wrong.body.contains("refused alice@localhost"))
        #expect(wrong.header("Set-Cookie") == nil)
        #expect(fixture.signedIn.withLock { $0.isEmpty })
        await fixture.finish()
    }

    @Test func aSignedInUserCancelsAndRetriesWithTheFormsToken() async throws {
        let fixture = try await Fixture()
        let cookie = try await fixture.signIn()
        let page = try await fixture.request("GET", "/jobs/\(fixture.running)", cookie: cookie)
        #expect(page.body.contains("id=\"cancel\"") && !page.body.contains("id=\"retry\"") && page.body.contains("alice@localhost"))
        let token = try #require(fixture.csrf(page.body))
        // No token, a wrong one, or another site's Origin: refused, nothing done.
        #expect(try await fixture.request("POST", "/jobs/\(fixture.running)/cancel", cookie: cookie, form: "").status == 403)
        #expect(try await fixture.request("POST", "/jobs/\(fixture.running)/cancel", cookie: cookie, form: "csrf=\(String(repeating: "0", count: 64))").status == 403)
        let crossSite = try await fixture.request("POST", "/jobs/\(fixture.running)/cancel", cookie: cookie, form: "csrf=\(token)", origin: "http://evil.example")
        #expect(crossSite.status == 403 && crossSite.body.contains("cross-site cancel refused"), "\(crossSite.body)")
        let recorder = try #require(fixture.signedIn.withLock { $0.first })
        #expect(recorder.calls.withLock { $0.isEmpty })
        let cancelled = try await fixture.request("POST", "/jobs/\(fixture.running)/cancel", cookie: cookie, form: "csrf=\(token)", origin: "http://127.0.0.1:\(fixture.port)")
        #expect(cancelled.status == 303 && cancelled.header("Location")?.hasPrefix("/jobs/\(fixture.running)?note=cancelling") == true)
        // The page shows the notes it writes, and no text a link brings.
        #expect(try await fixture.request("GET", "/jobs/\(fixture.running)?note=cancelling").body.contains("Cancelling: its workers were told."))
        let spoofed = try await fixture.request("GET", "/jobs/\(fixture.running)?note=Session+expired%3A+sign+in+at+evil.example")
        #expect(spoofed.status == 200 && !spoofed.body.contains("evil.example") && !spoofed.body.contains("id=\"note\""))
        let retried = try await fixture.request("POST", "/jobs/\(fixture.failed)/retry", cookie: cookie, form: "csrf=\(token)")
        #expect(retried.header("Location")?.hasPrefix("/jobs/\(String(repeating: "e", count: 32))") == true)
        #expect(recorder.calls.withLock { $0 } == ["cancel \(fixture.running)", "retry \(fixture.failed)"])
        #expect(recorder.account == "alice@localhost")
        // Another method on a read-only page: 405, saying which one is (not 404: the page is there).
        for (method, path) in [("POST", "/jobs"), ("DELETE", "/api/jobs"), ("PUT", "/jobs/\(fixture.running)")] {
            let refused = try await fixture.request(method, path, cookie: cookie, form: "")
            #expect(refused.status == 405 && refused.header("Allow") == "GET, HEAD", "\(method) \(path): \(refused.status)")
        }
        // HEAD is GET without the body.
        let head = try await fixture.request("HEAD", "/jobs/\(fixture.running)")
        #expect(head.status == 200 && head.body.isEmpty && head.header("Content-Type")?.hasPrefix("text/html") == true, "\(head.status)")
        #expect(try await fixture.request("HEAD", "/jobs/\(String(repeating: "9", count: 32))").status == 404)
        // Signing out ends the session.
        #expect(try await fixture.request("POST", "/signout", cookie: cookie, form: "csrf=\(token)").status == 303)
        #expect(try await fixture.request("GET", "/jobs/\(fixture.running)", cookie: cookie).body.contains("Sign in</a> to cancel or retry"))
        await fixture.finish()
    }
}

struct RawResponse {
    var status: Int
    var headers: [(String, String)]
    var body: String

    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
}

/// One HTTP/1.1 exchange over a plain socket (the tests must see redirects and cookies as sent).
enum RawHTTP {
    /// Runs `body` on a thread of its own: blocking socket calls must not hold one of the few
    /// cooperative threads the server's handlers need.
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    static func send(_ request: String, port: Int) async throws -> RawResponse {
        try await offPool { try sendBlocking(request, port: port) }
    }

    private static func sendBlocking(_ request: String, port: Int) throws -> RawResponse {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = request.withCString { Glibc.send(socket, $0, strlen($0), 0) }
        var data = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let count = Glibc.recv(socket, &buffer, buffer.count, 0)
            if count <= 0 { break }
            data += buffer[0..<count]
        }
        let text = String(decoding: data, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        let lines = (parts.first ?? "").components(separatedBy: "\r\n")
        let status = lines.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        let headers = lines.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return RawResponse(status: status, headers: headers, body: parts.dropFirst().joined(separator: "\r\n\r\n"))
    }
}
