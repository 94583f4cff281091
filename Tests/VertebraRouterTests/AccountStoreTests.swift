import Foundation
import NIOConcurrencyHelpers
import Logging
import Natter
import Testing
import VertebraRouter
import XMPPTestSupport

@Suite("Accounts file")
struct AccountStoreTests {
    private func temporaryPath() -> String {
        NSTemporaryDirectory() + "accounts-\(UUID().uuidString)/accounts.json"
    }

    @Test func savedAccountsAreOwnerOnlyAndHoldNoPlaintextPassword() async throws {
        let path = temporaryPath()
        let store = try AccountStore(path: path)
        try store.put(try Account(username: "Alice", password: "very-secret-password"))
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(!text.contains("very-secret-password"))
        #expect(text.contains("SCRAM-SHA-1") && text.contains("SCRAM-SHA-256"))
        let reloaded = try AccountStore(path: path)
        #expect(reloaded.usernames == ["alice"])
        #expect(reloaded.account("ALICE")?.matches(password: "very-secret-password") == true)
        #expect(reloaded.account("alice")?.matches(password: "very-secret-passwore") == false)
        try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent)
    }

    @Test func aSymlinkPlantedAtTheTemporaryFileIsNotFollowed() async throws {
        let path = temporaryPath()
        let directory = (path as NSString).deletingLastPathComponent
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try AccountStore(path: path)
        try store.put(try Account(username: "alice", password: "first-password"))
        // Someone who can write the directory points the next temporary file at another file.
        let victim = directory + "/victim"
        try "do not overwrite".write(toFile: victim, atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: path + ".tmp-\(getpid())", withDestinationPath: victim)
        try store.put(try Account(username: "bob", password: "second-password"))
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "do not overwrite")
        #expect(try AccountStore(path: path).usernames == ["alice", "bob"])
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect((attributes[.type] as? FileAttributeType) == .typeRegular)
    }

    /// Writers that add users at the same time (`router adduser` run in parallel by a
    /// provisioning script) all land: three of six used to be lost without an error.
    @Test func concurrentWritersLoseNoAccount() async throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        try AccountStore(path: path).put(try Account(username: "first", password: "pw"))
        let accounts = try (0..<8).map { try Account(username: "user\($0)", password: "pw") }
        let stores = try accounts.map { _ in try AccountStore(path: path) }
        let failures = NIOLockedValueBox<[String]>([])
        DispatchQueue.concurrentPerform(iterations: accounts.count) { index in
            do { try stores[index].put(accounts[index]) } catch { failures.withLockedValue { $0.append("\(error)") } }
        }
        #expect(failures.withLockedValue { $0 }.isEmpty)
        #expect(try AccountStore(path: path).usernames == ["first"] + (0..<8).map { "user\($0)" })
    }

    @Test func anotherProcessAddingAUserIsSeenWithoutRestart() async throws {
        let path = temporaryPath()
        let running = try AccountStore(path: path)
        #expect(running.account("bob") == nil)
        try await Task.sleep(for: .milliseconds(20))
        try AccountStore(path: path).put(try Account(username: "bob", password: "pw"))
        #expect(running.account("bob") != nil)
        #expect(try AccountStore(path: path).remove("bob"))
        #expect(running.account("bob") == nil)
        try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent)
    }

    @Test func invalidUserNamesAndBrokenFilesAreRefusedWithAClearError() async throws {
        #expect(throws: RouterError.self) { try Account(username: "a b", password: "pw") }
        #expect(throws: RouterError.self) { try Account(username: "x@y", password: "pw") }
        let path = temporaryPath()
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        for (contents, reason) in [("not json", "is not valid: not JSON"), ("{\"accounts\": []}", "is not valid: 'format' is missing")] {
            try contents.write(toFile: path, atomically: true, encoding: .utf8)
            do {
                _ = try AccountStore(path: path)
                Issue.record("a broken file was accepted")
            } catch {
                #expect(error.code == .accounts)
                #expect(error.message.contains(path) && error.message.contains(reason), "\(error.message)")
                #expect(!error.message.contains("DecodingError"), "\(error.message)")
            }
        }
        try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent)
    }
}

/// Credentials never reach the log, even at trace level.
@Suite struct CredentialLoggingTests {
    /// Keeps every log line.
    @Test func aPLAINPasswordIsNotLoggedAtTrace() async throws {
        let lines = LineCapture.Lines()
        let logger = Logger(label: "router-trace") { _ in LineCapture(lines) }
        try await TestRouter.with(tls: false, requireTLS: false, logger: logger) { router in
            let raw = try await RawClient(port: router.port)
            #expect(try await raw.logInPLAIN("alice"))
            await raw.close()
        }
        let logged = lines.all.joined(separator: "\n")
        #expect(logged.contains("stanza in"), "nothing was traced: the test would prove nothing")
        #expect(!logged.contains(Data("\u{0}alice\u{0}\(TestRouter.password)".utf8).base64EncodedString()))
        #expect(!logged.contains(TestRouter.password))
    }
}
