import Foundation
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
        (["worker", "--max-jobs", "100000000"], "--max-jobs must be from 1 to 100000"),
        (["worker", "--max-jobs", "0"], "--max-jobs must be from 1 to 100000"),
        (["worker", "--allow", "bad jid"], "--allow: 'bad jid' is not a JID"),
        (["worker", "--allow", "alice@localhost/laptop"], "--allow: 'alice@localhost/laptop' names a resource"),
        (["dispatch", "/vertebra/echo", "--password-file", "pw"], "--password-file or --password-env, not both"),
        (["dispatch", "/vertebra/echo", "--at", "2026-02-30T02:00:00Z"], "is not a date and time that exist"),
        (["dispatch", "/vertebra/echo", "--deadline", "-1"], "--deadline must be from 1 to"),
        (["dispatch", "/vertebra/echo", "--timeout", "-5"], "--timeout must be from 1 to"),
        (["worker", "--fast-path-budget", "-1"], "--fast-path-budget must be from 0 to"),
        (["worker", "--drain-timeout", "-1"], "--drain-timeout must be from 0 to 86400"),
        (["dispatch", "/vertebra/echo", "on=bool:1"], "argument 'on': 'bool:' is not a type (did you mean boolean:?); to send the text 'bool:1', write on=string:bool:1"),
        (["dispatch", "/vertebra/echo", "n=int:3000000000"], "argument 'n': '3000000000' is not a valid int"),
    ])
    func outOfRangeNumbersAreUsageErrors(arguments: [String], message: String) async throws {
        let output = try await Vertebra.run(arguments + ["--jid", "a@localhost/x", "--password-env", "NOPE"])
        #expect(output.status == 64, "exit \(output.status): \(output.stderr)")
        #expect(output.stderr.contains(message), "stderr: \(output.stderr)")
    }
}

/// `vertebra jobs` filters that cannot match anything are usage errors, not an empty list.
@Suite struct JobsFilterValidationTests {
    @Test(arguments: [
        (["jobs", "--worker", "bad jid"], "--worker: 'bad jid' is not a JID"),
        (["jobs", "--op", "nopath"], "--op: 'nopath' is not an operation path"),
    ])
    func aFilterThatCannotMatchIsAUsageError(arguments: [String], message: String) async throws {
        let output = try await Vertebra.run(arguments + ["--journal", "/nonexistent/journal.sqlite"])
        #expect(output.status == 64, "exit \(output.status): \(output.stderr)")
        #expect(output.stderr.contains(message), "stderr: \(output.stderr)")
    }
}

/// `vertebra dispatch --batch FILE` checks the whole file before it connects.
@Suite struct BatchFileValidationTests {
    @Test(arguments: [
        ("/vertebra/echo text=ok\nnot-a-path x=1\n", "jobs.txt:2: the line must start with an operation path"),
        ("# only a comment\n\n", "jobs.txt: no jobs"),
        ("/vertebra/echo text=\"unclosed\n", "jobs.txt:1: a double quote is not closed"),
        ("/vertebra/echo count=i4:many\n", "jobs.txt:1: argument 'count': 'many' is not a valid i4"),
        ("/vertebra/echo text=a\n/vertebra/echo text=" + String(repeating: "x", count: 300_000) + "\n", "jobs.txt:2: the job's arguments are"),
    ])
    func aBadBatchFileIsAUsageErrorNamingTheLine(contents: String, message: String) async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("jobs.txt")
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        let output = try await Vertebra.run(["dispatch", "--batch", path, "--jid", "a@localhost/x", "--password-env", "NOPE"])
        #expect(output.status == 64, "exit \(output.status): \(output.stderr)")
        #expect(output.stderr.contains(message.replacingOccurrences(of: "jobs.txt", with: path)), "stderr: \(output.stderr)")
    }

    /// Mistakes found once the command runs are usage errors too (they exited 1, which
    /// `dispatch` documents as "the job failed"), shown with that command's usage.
    @Test func aPasswordFileOthersCanReadOrADirectoryIsAUsageErrorOfThatCommand() async throws {
        let directory = try TemporaryDirectory()
        let file = directory.path("pw")
        try "secret\n".write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o644)
        for (path, message) in [(file, "can be read by other users (mode 0644)"), (directory.url.path, "is a directory")] {
            for command in [["dispatch", "/vertebra/echo"], ["workers"], ["worker"]] {
                let output = try await Vertebra.run(command + ["--jid", "a@localhost/x", "--password-file", path])
                #expect(output.status == 64, "\(command) exit \(output.status): \(output.stderr)")
                #expect(output.stderr.contains(message), "\(command): \(output.stderr)")
                #expect(output.stderr.contains("Usage: vertebra \(command[0])"), "\(command): \(output.stderr)")
            }
        }
    }

    /// A batch piped in is read like a file: `-` and /dev/stdin (which said "You don't have
    /// permission" for a pipe).
    @Test(arguments: ["-", "/dev/stdin"])
    func aBatchFromAPipeIsRead(path: String) async throws {
        let output = try await Vertebra.run(
            ["dispatch", "--batch", path, "--jid", "a@localhost/x", "--password-env", "NOPE"], input: "/vertebra/echo text=\"unclosed\n")
        let name = path == "-" ? "standard input" : path
        #expect(output.status == 64 && output.stderr.contains("\(name):1: a double quote is not closed"), "exit \(output.status): \(output.stderr)")
    }

    /// A metrics port another process holds is named as the option's problem (it printed NIO's
    /// raw bind error).
    @Test func aMetricsAddressInUseSaysSo() async throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && listen(listener, 1) == 0 && getsockname(listener, $0, &length) == 0 }
        }
        try #require(bound)
        let port = UInt16(bigEndian: address.sin_port)
        let output = try await Vertebra.run(
            ["worker", "--metrics-address", "127.0.0.1:\(port)", "--jid", "a@localhost/x", "--password-env", "HOME", "--server", "127.0.0.1:1", "--tls", "disabled"])
        #expect(output.status == 64 && output.stderr.contains("--metrics-address 127.0.0.1:\(port): the address is in use"), "exit \(output.status): \(output.stderr)")
    }

    @Test func aDirectoryAsTheBatchFileIsAUsageErrorSayingSo() async throws {
        let directory = try TemporaryDirectory()
        let output = try await Vertebra.run(["dispatch", "--batch", directory.url.path, "--jid", "a@localhost/x", "--password-env", "NOPE"])
        #expect(output.status == 64)
        #expect(output.stderr.contains("is a directory"), "stderr: \(output.stderr)")
    }

    /// A CA file that is no certificate is a configuration mistake found at once (it showed as
    /// a TLS failure at the login: "unreachable", exit 3); a bench's port out of range too.
    @Test func aCAFileThatIsNoCertificateAndABadBenchPortAreUsageErrors() async throws {
        let directory = try TemporaryDirectory()
        let notPEM = directory.path("ca.txt")
        try "not a certificate\n".write(toFile: notPEM, atomically: true, encoding: .utf8)
        let output = try await Vertebra.run(["dispatch", "/vertebra/echo", "--jid", "a@localhost/x", "--password-env", "HOME", "--ca-file", notPEM])
        #expect(output.status == 64 && output.stderr.contains("holds no PEM certificate"), "exit \(output.status): \(output.stderr)")
        let bench = try await Vertebra.run(["bench", "iq", "--port", "99999", "--password-file", notPEM])
        #expect(bench.status == 64 && bench.stderr.contains("--port must be from 1 to 65535"), "exit \(bench.status): \(bench.stderr)")
    }

    @Test func aBatchFileAndAnOperationTogetherAreRefused() async throws {
        let output = try await Vertebra.run(["dispatch", "/vertebra/echo", "--batch", "/nonexistent", "--jid", "a@localhost/x", "--password-env", "NOPE"])
        #expect(output.status == 64)
        #expect(output.stderr.contains("give an operation or --batch FILE, not both"), "stderr: \(output.stderr)")
    }
}
