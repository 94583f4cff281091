import ArgumentParser
import FilesAgentOperations
import VertebraAgent

/// `files-agent`: a worker serving `/files/checksum` for the files under one root directory.
@main
struct FilesAgent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "files-agent",
        abstract: "Worker agent: /files/checksum streams the SHA-256 of each file under --root; /files/summary counts files and bytes.",
        discussion: """
            Example: files-agent --root /srv/data --jid files@localhost --password-file pw
            then: vertebra dispatch /files/checksum path=reports
            or:   vertebra dispatch /files/summary path=reports
            Paths outside --root (.., absolute paths elsewhere, symbolic links out) are refused.
            """)

    @OptionGroup var worker: WorkerOptions
    @Option(help: ArgumentHelp("The directory checksums may be taken under.", valueName: "dir")) var root: String

    func run() async throws {
        let integrity = try FileIntegrity(root: root)
        try await worker.run(name: "files-agent") { try await integrity.register(on: $0) }
    }
}
