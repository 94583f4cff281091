import Foundation
import Testing

/// Runs the package's `vertebra` executable, built next to the test bundle.
enum Vertebra {
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The built `vertebra` binary: beside the test bundle, else `.build/debug/vertebra` above `#filePath`.
    static func binary(filePath: String = #filePath) throws -> URL {
        var candidates: [URL] = []
        if let executable = Bundle.main.executableURL {
            candidates.append(executable.deletingLastPathComponent().appendingPathComponent("vertebra"))
        }
        var directory = URL(fileURLWithPath: filePath).deletingLastPathComponent()
        while directory.path != "/" {
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) {
                candidates.append(directory.appendingPathComponent(".build/debug/vertebra"))
                break
            }
            directory = directory.deletingLastPathComponent()
        }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw RunError.binaryNotFound(candidates.map(\.path))
        }
        return found
    }

    enum RunError: Error { case binaryNotFound([String]) }

    /// Runs `vertebra arguments...` to completion.
    /// With `asUnprivilegedUser`, runs as `nobody` through setpriv (for permission tests as root).
    static func run(
        _ arguments: [String], environment: [String: String] = [:], asUnprivilegedUser: Bool = false, input: String? = nil
    ) async throws -> Output {
        let directory = try TemporaryDirectory()
        let process = Process()
        if asUnprivilegedUser {
            // Found on PATH, as the shell would: setpriv is not in /usr/bin everywhere.
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", try binary().path] + arguments
        } else {
            process.executableURL = try binary()
            process.arguments = arguments
        }
        var merged = ProcessInfo.processInfo.environment
        merged.removeValue(forKey: "VERTEBRA_JOURNAL")
        merged.merge(environment) { $1 }
        process.environment = merged
        let out = directory.path("stdout")
        let err = directory.path("stderr")
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: err))
        // `input` arrives through a pipe, as from a shell's `|`.
        let pipe = input.map { _ in Pipe() }
        if let pipe { process.standardInput = pipe }
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch { continuation.resume(throwing: error) }
            if let pipe, let input {
                pipe.fileHandleForWriting.write(Data(input.utf8))
                try? pipe.fileHandleForWriting.close()
            }
        }
        return Output(
            status: status,
            stdout: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
    }
}
