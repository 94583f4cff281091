import Foundation
import Testing
import VertebraAgent

/// The web view in a real browser: headless Chromium (installed by `.ci/run`) driven over the
/// DevTools protocol by `scripts/web-browser-test.py`, against a real router, coordinator
/// (`--web`) and worker. New jobs appear and finish without a reload; every page is
/// screenshotted and checked not to be blank.
/// Part of the serialized `RecoveryTests`: Chromium is heavy, and those tests time real jobs.
extension RecoveryTests {
    static var repositoryRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// The venv python with websocket-client (scripts/bench-venv.sh installs it when missing).
    static func browserPython() throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["bash", repositoryRoot + "/scripts/bench-venv.sh", "websocket=websocket-client"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let path = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard process.terminationStatus == 0, !path.isEmpty else { throw CocoaError(.executableNotLoadable) }
        return path
    }

    @Test func jobsAppearLiveAndEveryPageRendersInChromium() async throws {
        let setup = try await CrashTests.Setup.make()
        defer { setup.finish() }
        let coordinator = try AgentProcess.coordinator(setup.server, directory: setup.directory, extra: ["--web", "127.0.0.1:0"])
        let worker = try AgentProcess.worker(1, setup.server, directory: setup.directory)
        defer {
            coordinator.stop()
            worker.stop()
        }
        try await CrashTests().waitForWorkers(setup, count: 1)
        for index in 0..<5 {
            let (status, _) = try await AgentProcess.command(["dispatch", "/vertebra/echo", "text=before \(index)"], server: setup.server, directory: setup.directory)
            #expect(status == 0)
        }
        var url: String?
        _ = try await eventually(timeout: .seconds(20)) {
            url = coordinator.logText.split(separator: "\n").first { $0.hasPrefix("web view: ") }.map { String($0.dropFirst("web view: ".count).dropLast("/jobs".count)) }
            return url != nil
        }
        let base = try #require(url, "no web view line in: \(coordinator.logText.prefix(1000))")
        let screenshots = setup.directory + "/screenshots"
        // The job the browser must see arrive: dispatched detached by the script, its id printed.
        let dispatch = try AgentProcess.commandLine(["dispatch", "/vertebra/sleep", "milliseconds=i4:1500", "--detach"], server: setup.server, directory: setup.directory)
        // And a long one, which the browser cancels after signing in as the coordinator's account.
        let long = try AgentProcess.commandLine(["dispatch", "/vertebra/sleep", "milliseconds=i4:60000", "--detach"], server: setup.server, directory: setup.directory)
        let longJSON = String(decoding: try JSONSerialization.data(withJSONObject: long.arguments), as: UTF8.self)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.browserPython())
        process.arguments = [Self.repositoryRoot + "/scripts/web-browser-test.py", "--url", base, "--screenshots", screenshots,
                             "--account", "coordinator", "--password-env", "WEB_TEST_PASSWORD", "--long-job", longJSON, "--"] + dispatch.arguments
        var environment = dispatch.environment
        environment["WEB_TEST_PASSWORD"] = XMPPServerProcess.password.trimmingCharacters(in: .whitespacesAndNewlines)
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let printed = String(decoding: await ChildOutput.readToEnd(process, output), as: UTF8.self)
        #expect(process.terminationStatus == 0, "\(printed)")
        #expect(printed.contains("appeared and finished live, without a reload"), "\(printed)")
        #expect(printed.contains("cancelled from its page"), "\(printed)")
        for page in ["jobs", "job", "jobs-done", "workers", "charts", "job-cancelled"] {
            let size = (try? FileManager.default.attributesOfItem(atPath: "\(screenshots)/\(page).png")[.size] as? Int) ?? 0
            #expect(size > 5_000, "\(page).png: \(size) bytes")
        }
        if let keep = ProcessInfo.processInfo.environment["VERTEBRA_KEEP_SCREENSHOTS"], !keep.isEmpty {
            try? FileManager.default.createDirectory(atPath: keep, withIntermediateDirectories: true)
            for page in ["jobs", "job", "workers", "charts"] {
                try? FileManager.default.removeItem(atPath: "\(keep)/\(page).png")
                try? FileManager.default.copyItem(atPath: "\(screenshots)/\(page).png", toPath: "\(keep)/\(page).png")
            }
        }
    }
}
