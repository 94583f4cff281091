import Foundation
import Natter
import Testing
import VertebraRouter

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
        try "not json".write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try AccountStore(path: path)
            Issue.record("a broken file was accepted")
        } catch {
            #expect(error.code == .accounts)
            #expect(error.message.contains(path))
        }
        try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent)
    }
}
