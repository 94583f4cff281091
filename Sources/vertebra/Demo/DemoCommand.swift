import ArgumentParser
import Foundation
import Logging
import Natter
import Vertebra
import VertebraAgent
import VertebraXML

/// `vertebra demo`: the whole system on this machine, on loopback, with real work.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Start a router, a coordinator and two agents on loopback and run a batch of real jobs.",
        discussion: """
            Needs nothing configured. Makes a state folder (printed; kept afterwards so you can \
            inspect the journal), temporary accounts with a random password, a self-signed \
            certificate; starts `vertebra router`, `vertebra coordinator`, the files agent \
            (Agents/files: /files/checksum, /files/summary over a generated data folder) and the \
            exec agent (Agents/exec: /exec/run with an allow-list); dispatches a batch of jobs \
            (streaming and single-result, one that fails on purpose, one that is cancelled), \
            shows them as they finish, prints the results and the `vertebra jobs` table. Every \
            process it started is stopped on exit, also on Ctrl-C. The agents are separate \
            executables: build everything first with `swift build`.
            """)

    @Option(help: ArgumentHelp("State folder to use (default: a new temporary one); a folder an earlier demo used is used again.", valueName: "dir")) var stateDir: String?
    @Option(parsing: .unconditional, help: "Checksum jobs in the batch (one per data set), 1 to 200.") var sets: Int = 24
    @Flag(help: "No live progress lines; for CI logs.") var nonInteractive = false
    @Flag(help: "After the batch, keep everything running (the web view too) until Ctrl-C.") var stay = false

    func validate() throws {
        guard (1...200).contains(sets) else { throw ValidationError("--sets must be 1...200") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .error
            return handler
        }
        let stage = try DemoStage(stateDir: stateDir)
        let processes = DemoProcesses()
        let signalWatch = Task {
            guard await waitForTerminationSignal() else { return }
            printError("\ninterrupted: stopping every process the demo started")
            processes.stopAll()
            Foundation.exit(130)
        }
        defer {
            signalWatch.cancel()
            processes.stopAll()
        }
        do {
            let ok = try await DemoRun(stage: stage, processes: processes, sets: sets, live: !nonInteractive, stay: stay).run()
            if stay {
                _ = await waitForTerminationSignal()
                printError("stopping every process the demo started")
            }
            processes.stopAll()
            if !ok { throw ExitCode(1) }
        } catch let error as ExitCode {
            throw error
        } catch {
            printError("error: \(error)")
            printError("logs of the processes: \(stage.directory)/*.log")
            throw ExitCode(1)
        }
    }
}

/// The demo's state folder: accounts, certificate, journals, logs, data.
struct DemoStage: Sendable {
    let directory: String
    let binaries: String
    var passwordFile: String { directory + "/password" }
    var journal: String { directory + "/journal.sqlite" }
    var routerState: String { directory + "/router" }
    var certificate: String { routerState + "/localhost.crt" }
    var data: String { directory + "/data" }

    init(stateDir: String?) throws {
        let base = stateDir ?? FileManager.default.temporaryDirectory.appendingPathComponent("vertebra-demo-\(UUID().uuidString.prefix(8).lowercased())").path
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: base, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw ValidationError("--state-dir \(base) is a file, not a folder")
        }
        do {
            try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw ValidationError("cannot make the state folder \(base): \(error.localizedDescription)")
        }
        directory = URL(fileURLWithPath: base).standardizedFileURL.path
        binaries = (Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])).deletingLastPathComponent().path
        for agent in ["files-agent", "exec-agent"] where !FileManager.default.isExecutableFile(atPath: "\(binaries)/\(agent)") {
            throw ValidationError("the \(agent) executable is not beside vertebra in \(binaries); build everything first: swift build")
        }
    }

    var vertebra: String { (Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])).path }

    /// The router accounts an earlier demo in this folder made.
    func existingAccounts() -> Set<String> {
        guard let data = FileManager.default.contents(atPath: routerState + "/accounts.json"),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let accounts = object["accounts"] as? [[String: Any]]
        else { return [] }
        return Set(accounts.compactMap { $0["username"] as? String })
    }

    /// Writes a random password (0600) and a data folder of `sets` sets of files.
    func prepare(sets: Int) throws {
        let password = SecureRandom.hex(bytes: 16) ?? UUID().uuidString
        _ = FileManager.default.createFile(atPath: passwordFile, contents: Data((password + "\n").utf8), attributes: [.posixPermissions: 0o600])
        var generator = SplitMix64(seed: 2026)
        for set in 1...sets {
            let folder = String(format: "%@/set-%02d", data, set)
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for file in 0..<(3 + Int(generator.next() % 6)) {
                let size = Int(generator.next() % 200_000)
                let bytes = (0..<size).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
                _ = FileManager.default.createFile(atPath: "\(folder)/file-\(file).bin", contents: Data(bytes))
            }
        }
    }
}
