import Foundation
import Testing

@testable import Natter

@Suite struct SCRAMTests {
    @Test func rfc5802VectorForSHA1() throws {
        var client = try SCRAMClient(hash: .sha1, username: "user", password: "pencil", nonce: "fyko+d2lbbFgONRv9qkxdawL")
        #expect(client.clientFirstMessage == "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL")
        let final = try client.respond(toServerFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
        #expect(final == "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")
        try client.verify(serverFinal: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")
    }

    @Test func rfc7677VectorForSHA256() throws {
        var client = try SCRAMClient(hash: .sha256, username: "user", password: "pencil", nonce: "rOprNGfwEbeRWgbNEkqO")
        let final = try client.respond(
            toServerFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
        #expect(final == "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
        try client.verify(serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    }

    @Test func aServerThatDoesNotKnowThePasswordIsDetected() throws {
        var client = try SCRAMClient(hash: .sha1, username: "user", password: "pencil", nonce: "fyko+d2lbbFgONRv9qkxdawL")
        _ = try client.respond(toServerFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
        let error = #expect(throws: NatterError.self) { try client.verify(serverFinal: "v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=") }
        #expect(error?.code == .serverNotVerified)
        let refused = #expect(throws: NatterError.self) { try client.verify(serverFinal: "e=invalid-proof") }
        #expect(refused?.code == .authenticationFailed)
    }

    @Test func hostileServerFirstMessagesAreRefused() throws {
        let cases = [
            "r=someone-elses-nonce,s=QSXCR+Q6sek8bf92,i=4096",
            "r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=1",
            "r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=999999999",
            "r=fyko+d2lbbFgONRv9qkxdawLx,s=***,i=4096",
            "garbage",
        ]
        for message in cases {
            var client = try SCRAMClient(hash: .sha1, username: "user", password: "pencil", nonce: "fyko+d2lbbFgONRv9qkxdawL")
            #expect(throws: NatterError.self, "\(message)") { try client.respond(toServerFirst: message) }
        }
    }

    @Test func serverAcceptsTheRightPasswordAndRefusesAWrongOne() throws {
        for hash in SCRAMHash.allCases {
            let stored = try SCRAMCredentials.derive(password: "pencil", hash: hash)
            for (password, accepted) in [("pencil", true), ("pencil2", false)] {
                var server = SCRAMServer(hash: hash) { $0 == "user" ? stored : nil }
                var client = try SCRAMClient(hash: hash, username: "user", password: password)
                let serverFirst = try server.respond(toClientFirst: client.clientFirstMessage)
                let clientFinal = try client.respond(toServerFirst: serverFirst)
                if accepted {
                    let serverFinal = try server.verify(clientFinal: clientFinal)
                    try client.verify(serverFinal: serverFinal)
                    #expect(server.username == "user")
                } else {
                    #expect(throws: NatterError.self) { try server.verify(clientFinal: clientFinal) }
                    #expect(server.username == nil)
                }
            }
        }
    }

    @Test func storedCredentialsMatchTheRFCVector() throws {
        let salt = Array(Data(base64Encoded: "QSXCR+Q6sek8bf92") ?? Data())
        let stored = try SCRAMCredentials.derive(password: "pencil", hash: .sha1, iterations: 4096, salt: salt)
        var server = SCRAMServer(hash: .sha1) { _ in stored }
        let first = try server.respond(toClientFirst: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", serverNonce: "3rfcNHYJY1ZVvWVs7j")
        #expect(first == "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
        let final = try server.verify(clientFinal: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")
        #expect(final == "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=")
    }

    @Test func userNamesWithCommasAndEqualsAreEscaped() {
        #expect(SCRAMClient.escape("a,b=c") == "a=2Cb=3Dc")
    }

    /// An unknown user is shown a salt nobody can compute from the name (it would tell the
    /// user names that exist apart), the same on every try while the key stays.
    @Test func anUnknownUsersSaltCannotBeComputedFromTheName() throws {
        func salt(_ user: String, key: [UInt8]) throws -> String {
            var server = SCRAMServer(hash: .sha256, fakeSaltKey: key) { _ in nil }
            let first = try server.respond(toClientFirst: "n,,n=\(user),r=abc", serverNonce: "xyz")
            return first.components(separatedBy: ",").first { $0.hasPrefix("s=") }.map { String($0.dropFirst(2)) } ?? ""
        }
        let key = Array("a secret only the server knows".utf8)
        let shown = try salt("nobody", key: key)
        #expect(shown != Data(SCRAMHash.sha256.hash(Array("nobody".utf8)).prefix(16)).base64EncodedString())
        #expect(Data(base64Encoded: shown)?.count == 16)
        #expect(try salt("nobody", key: key) == shown)
        #expect(try salt("nobody", key: Array("another key".utf8)) != shown)
        #expect(try salt("somebody", key: key) != shown)
    }
}
