import Testing

/// Numbers a user types into the agent commands are range-checked before anything connects:
/// a clear usage error (exit 64), never a trap.
@Suite struct AgentCommandValidationTests {
    @Test(arguments: [
        (["dispatch", "/vertebra/echo", "text=x", "--deadline", "9999999999999999"], "--deadline must be from 1 to"),
        (["dispatch", "/vertebra/echo", "--deadline", "0"], "--deadline must be from 1 to"),
        (["dispatch", "/vertebra/echo", "--timeout", "99999999999"], "--timeout must be from 1 to"),
        (["coordinator", "--lease", "0"], "--lease must be from 1 to"),
        (["coordinator", "--silence-timeout", "9999999999"], "--silence-timeout must be from 1 to"),
        (["coordinator", "--worker-wait", "0"], "--worker-wait must be from 1 to"),
        (["coordinator", "--max-attempts", "0"], "--max-attempts must be from 1 to 1000"),
        (["worker", "--journal-max-size", "12q"], "is not a size such as 200k"),
        (["worker", "--journal-max-size", "4k"], "--journal-max-size must be at least 64k"),
        (["worker", "--ttl", "100000"], "--ttl must be at most 86400"),
    ])
    func outOfRangeNumbersAreUsageErrors(arguments: [String], message: String) async throws {
        let output = try await Vertebra.run(arguments + ["--jid", "a@localhost/x", "--password-env", "NOPE"])
        #expect(output.status == 64, "exit \(output.status): \(output.stderr)")
        #expect(output.stderr.contains(message), "stderr: \(output.stderr)")
    }
}
