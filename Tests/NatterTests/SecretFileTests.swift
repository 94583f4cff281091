import Foundation
import Testing

@testable import Natter

/// A password file others can read is refused with the fix in the message; a private one is read.
@Suite struct SecretFileTests {
    func passwordFile(mode: mode_t) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vertebra-pw-\(UUID().uuidString)").path
        try "s3cret\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, mode)
        return path
    }

    func configuration(_ path: String) throws -> ClientConfiguration {
        ClientConfiguration(host: "127.0.0.1", jid: try #require(JID("me@localhost")), password: .file(path))
    }

    @Test(arguments: [0o644, 0o640, 0o604, 0o660] as [mode_t])
    func aPasswordFileOthersCanReadIsRefused(mode: mode_t) throws {
        let path = try passwordFile(mode: mode)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = #expect(throws: NatterError.self) { try configuration(path).readPassword() }
        #expect(error?.code == .configuration)
        #expect(error?.message.contains("chmod 600 \(path)") == true)
        #expect(error?.message.contains("s3cret") == false)
    }

    @Test(arguments: [0o600, 0o400] as [mode_t])
    func aPrivatePasswordFileIsRead(mode: mode_t) throws {
        let path = try passwordFile(mode: mode)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try configuration(path).readPassword() == "s3cret")
    }

    @Test func aKeySharedWithItsGroupIsAllowedWhenAskedButNotWithEveryone() throws {
        let path = try passwordFile(mode: 0o640)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try SecretFile.checkPrivate(path, what: "TLS key", allowGroup: true)
        chmod(path, 0o644)
        #expect(throws: NatterError.self) { try SecretFile.checkPrivate(path, what: "TLS key", allowGroup: true) }
    }
}
