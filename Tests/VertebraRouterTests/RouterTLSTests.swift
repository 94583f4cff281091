import Foundation
import Testing
import VertebraRouter

/// The self-signed certificate is made with the `openssl` a shell would find: a path given
/// that does not exist falls back to PATH, not to a failure.
@Suite struct RouterTLSTests {
    @Test func aMissingOpensslPathFallsBackToTheOneOnPath() throws {
        let directory = NSTemporaryDirectory() + "router-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = RouterConfiguration.TLSFiles(certificatePath: directory + "/cert.pem", privateKeyPath: directory + "/key.pem")
        #expect(try RouterTLS.ensureSelfSigned(files, domain: "localhost", openssl: "/nonexistent/bin/openssl"))
        let key = try FileManager.default.attributesOfItem(atPath: files.privateKeyPath)
        #expect((key[.posixPermissions] as? Int) == 0o600)
        #expect(try String(contentsOfFile: files.certificatePath, encoding: .utf8).contains("BEGIN CERTIFICATE"))
        #expect(try !RouterTLS.ensureSelfSigned(files, domain: "localhost"), "an existing pair is kept")
    }
}
