import Foundation
import NIOSSL
import Natter

/// TLS for the router: the server context from PEM files, and a self-signed pair for a first
/// local run.
public enum RouterTLS {
    /// A NIOSSL server context from the certificate chain and key in `files`.
    public static func makeContext(_ files: RouterConfiguration.TLSFiles) throws(RouterError) -> NIOSSLContext {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(files.certificatePath).map { NIOSSLCertificateSource.certificate($0) }
            guard !chain.isEmpty else {
                throw RouterError(.tls, "\(files.certificatePath) contains no PEM certificate")
            }
            do { try SecretFile.checkPrivate(files.privateKeyPath, what: "TLS key", allowGroup: true) } catch {
                throw RouterError(.tls, error.message)
            }
            let key = try NIOSSLPrivateKey(file: files.privateKeyPath, format: .pem)
            var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
            configuration.minimumTLSVersion = .tlsv12
            return try NIOSSLContext(configuration: configuration)
        } catch let error as RouterError {
            throw error
        } catch {
            throw RouterError(
                .tls, "cannot load TLS certificate \(files.certificatePath) and key \(files.privateKeyPath): \(error)")
        }
    }

    /// Writes a self-signed certificate for `domain` (subject alternative name `DNS:domain`,
    /// P-256 key, 10 years) with the `openssl` command, unless both files already exist.
    /// Returns `true` when it made a new pair. The key file is created with mode 0600.
    ///
    /// The `openssl` command is used instead of an X.509 library so that the router adds no
    /// second copy of BoringSSL or an ASN.1 stack to the build; Debian ships it with libssl.
    @discardableResult
    public static func ensureSelfSigned(
        _ files: RouterConfiguration.TLSFiles, domain: String, openssl: String? = nil
    ) throws(RouterError) -> Bool {
        let manager = FileManager.default
        if manager.fileExists(atPath: files.certificatePath) && manager.fileExists(atPath: files.privateKeyPath) {
            return false
        }
        // The path given, then the first on PATH (as a shell finds it), then the usual places.
        let onPath = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/openssl" }
        let candidates = [openssl].compactMap { $0 } + onPath + ["/usr/bin/openssl", "/usr/local/bin/openssl", "/opt/homebrew/bin/openssl"]
        guard let executable = candidates.first(where: manager.isExecutableFile) else {
            throw RouterError(
                .tls, "the openssl command is needed to make a self-signed certificate; install it (apt-get install openssl) or pass --cert and --key")
        }
        for path in [files.certificatePath, files.privateKeyPath] {
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty {
                try? manager.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            }
        }
        // The key file exists with mode 0600 before openssl writes into it.
        let descriptor = open(files.privateKeyPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard descriptor >= 0 else { throw RouterError(.tls, "cannot create \(files.privateKeyPath): errno \(errno)") }
        close(descriptor)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650",
            "-subj", "/CN=\(domain)", "-addext", "subjectAltName=DNS:\(domain)",
            "-keyout", files.privateKeyPath, "-out", files.certificatePath,
        ]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw RouterError(.tls, "cannot run \(executable): \(error)")
        }
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw RouterError(
                .tls, "openssl could not make a certificate: \(String(decoding: message, as: UTF8.self).prefix(500))")
        }
        chmod(files.privateKeyPath, 0o600)
        chmod(files.certificatePath, 0o644)
        return true
    }
}
