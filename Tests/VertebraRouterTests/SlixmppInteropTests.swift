import Foundation
import Testing
import VertebraRouter

/// A third-party client: slixmpp (installed by `.ci/run`) logs in to the router with SCRAM over
/// STARTTLS with a verified certificate (PLAIN too, as TLS is on) and exchanges IQs (scripts/xmpp/slixmpp_router_check.py).
@Suite("slixmpp against the router")
struct SlixmppInteropTests {
    static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/xmpp/slixmpp_router_check.py").path

    @Test(arguments: ["SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN"])
    func slixmppLogsInOverTLSAndExchangesIQs(mechanism: String) async throws {
        try await TestRouter.with { router in
            let passwordFile = router.directory + "/password"
            try TestRouter.password.write(toFile: passwordFile, atomically: true, encoding: .utf8)
            chmod(passwordFile, 0o600)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: TestPython.path)
            process.arguments = [
                "-W", "ignore", Self.script, "--port", "\(router.port)", "--cafile", router.certificate,
                "--password-file", passwordFile, "--mechanism", mechanism,
            ]
            let output = Pipe()
            let errors = Pipe()
            process.standardOutput = output
            process.standardError = errors
            try process.run()
            let status = await withCheckedContinuation { continuation in
                DispatchQueue.global().async {
                    process.waitUntilExit()
                    continuation.resume(returning: process.terminationStatus)
                }
            }
            let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let complaint = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(status == 0, "slixmpp failed: \(complaint)")
            #expect(printed.contains("\"mechanism\": \"\(mechanism)\""), "printed: \(printed)")
            #expect(printed.contains("\"ok\": true"))
        }
    }
}
