import Foundation
import Testing
import VertebraJournal

/// `vertebra jobs` as a user runs it: the real binary, its stdout, stderr and exit status.
@Suite struct JobsCommandTests {
    let directory: TemporaryDirectory
    let path: String
    let now = Date()
    // Fixed ids so prefixes and ordering are known.
    let doneID = "d0000000000000000000000000000001"
    let failedID = "f0000000000000000000000000000002"
    let runningID = "a0000000000000000000000000000003"
    let oldID = "c0000000000000000000000000000004"

    init() async throws {
        directory = try TemporaryDirectory()
        path = directory.path("journal.sqlite")
        let journal = try ExchangeJournal(path: path, options: .init(durability: .normal))
        try await Self.job(journal, doneID, "/image/resize", worker: "w1@example.org/a", created: now.addingTimeInterval(-600),
                           end: .done, took: 2, result: "<string name='response'>resized</string>")
        try await Self.job(journal, failedID, "/image/crop", worker: "w2@example.org/b", created: now.addingTimeInterval(-300),
                           end: .failed, took: 1, error: "out of memory", errorCode: "failed")
        try await Self.job(journal, runningID, "/mail/send", worker: "w1@example.org/c", created: now.addingTimeInterval(-60),
                           end: nil, took: 0)
        try await Self.job(journal, oldID, "/image/resize", worker: "w3@example.org/a",
                           created: now.addingTimeInterval(-40 * 86_400), end: .done, took: 4, result: "<nil/>")
        await journal.close()
    }

    /// A requester-side job: dispatched to `worker`, acknowledged, then finished as `end` after `took` s.
    static func job(
        _ journal: ExchangeJournal, _ token: String, _ operation: String, worker: String, created: Date,
        end: JobState?, took: TimeInterval, result: String? = nil, error: String? = nil, errorCode: String? = nil
    ) async throws {
        let conversation = "\(token):perf"
        try await journal.write([
            .createJob(NewJob(token: token, operation: operation, arguments: "<i4 name='width'>640</i4>", created: created)),
            .transition(job: token, to: .dispatched, at: created),
            .openConversation(NewConversation(job: token, token: conversation, peer: worker, role: .requester, created: created)),
            .recordStanza(NewStanza(conversation: .opened, direction: .outbound, iqID: "\(token)-op", kind: .op,
                                    body: "<op type='\(operation)' token='\(token)'/>",
                                    answer: "<op token='\(conversation)'/>", sent: created)),
            .recordStanza(NewStanza(conversation: .opened, direction: .inbound, iqID: "\(token)-ack", kind: .ack,
                                    body: "<ack token='\(conversation)'/>", answer: "<iq type='result'/>", sent: created)),
            .transition(job: token, to: .running, at: created),
        ])
        guard let end else { return }
        let finished = created.addingTimeInterval(took)
        try await journal.write([
            .recordStanza(NewStanza(conversation: .token(conversation), direction: .inbound, iqID: "\(token)-end",
                                    kind: end == .done ? .final : .error, body: "<\(end == .done ? "final" : "error") token='\(conversation)'/>",
                                    answer: "<iq type='result'/>", sent: finished)),
            .setConversationState(.token(conversation), end == .done ? .finished : .failed),
            .transition(job: token, to: end, result: result, error: error, at: finished, errorCode: errorCode),
        ])
    }

    func jobs(_ arguments: String...) async throws -> Vertebra.Output {
        try await Vertebra.run(["jobs"] + arguments + ["--journal", path])
    }

    func jsonArray(_ text: String) throws -> [[String: Any]] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]])
    }

    @Test func listPrintsATableOfJobsNewestFirstWithTheDocumentedColumns() async throws {
        let output = try await jobs()
        #expect(output.status == 0, "\(output.stderr)")
        let lines = output.stdout.split(separator: "\n").map(String.init)
        let header = try #require(lines.first).split(separator: " ", omittingEmptySubsequences: true)
        #expect(header == ["ID", "OPERATION", "WORKER", "STATE", "ATTEMPTS", "AGE", "DURATION"])
        #expect(lines.dropFirst().map { String($0.prefix(12)) } == [runningID, failedID, doneID, oldID].map { String($0.prefix(12)) })
        let done = try #require(lines.first { $0.hasPrefix(String(doneID.prefix(12))) })
        let cells = done.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        #expect(cells.count == 7)
        #expect(Array(cells.prefix(5)) == [String(doneID.prefix(12)), "/image/resize", "w1@example.org/a", "done", "1"])
        // The job was created 10 minutes before the fixture was written; the command runs seconds
        // later (more on a loaded machine or under a sanitizer), so the age is 10m00s to 10m59s.
        #expect(cells.count > 5 && cells[5].hasPrefix("10m") && cells[5].hasSuffix("s") && cells[5].count == 6, "age \(cells.count > 5 ? cells[5] : "")")
        #expect(cells.last == "2.0s")
        #expect(lines.first { $0.hasPrefix(String(runningID.prefix(12))) }?.hasSuffix("-") == true)
    }

    @Test func listJSONIsOneArrayWithTheDocumentedFields() async throws {
        let output = try await jobs("--json")
        #expect(output.status == 0, "\(output.stderr)")
        let array = try jsonArray(output.stdout)
        #expect(array.count == 4)
        let keys: Set<String> = ["id", "op", "state", "worker", "attempts", "created", "updated", "finished",
                                 "duration", "scope", "submitter", "deadline", "error", "error_code", "retry_of", "key", "not_before"]
        for job in array { #expect(Set(job.keys) == keys) }
        let failed = try #require(array.first { $0["id"] as? String == failedID })
        #expect(failed["op"] as? String == "/image/crop")
        #expect(failed["state"] as? String == "failed")
        #expect(failed["worker"] as? String == "w2@example.org/b")
        #expect(failed["attempts"] as? Int == 1)
        #expect(failed["error"] as? String == "out of memory")
        #expect(failed["error_code"] as? String == "failed")
        #expect(array.filter { $0["error_code"] is NSNull }.count == 3, "no code where the job did not fail")
        #expect(failed["duration"] as? Double == 1)
        let created = try #require(failed["created"] as? String)
        #expect(try Date(created, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) > now.addingTimeInterval(-301))
        let running = try #require(array.first { $0["id"] as? String == runningID })
        #expect(running["finished"] is NSNull && running["duration"] is NSNull)
    }

    @Test func filtersSelectByStateOperationWorkerAndSince() async throws {
        func ids(_ arguments: String...) async throws -> Set<String> {
            let output = try await Vertebra.run(["jobs", "--json", "--journal", path] + arguments)
            #expect(output.status == 0, "\(output.stderr)")
            return Set(try jsonArray(output.stdout).compactMap { $0["id"] as? String })
        }
        #expect(try await ids("--state", "done") == [doneID, oldID])
        #expect(try await ids("--state", "failed,running") == [failedID, runningID])
        #expect(try await ids("--op", "/image/resize") == [doneID, oldID])
        #expect(try await ids("--op", "/image/*") == [doneID, oldID, failedID])
        #expect(try await ids("--worker", "w1@example.org") == [doneID, runningID])
        #expect(try await ids("--worker", "w1@example.org/c") == [runningID])
        #expect(try await ids("--since", "7d") == [doneID, failedID, runningID])
        #expect(try await ids("--since", "2m") == [runningID])
        #expect(try await ids("--state", "done", "--since", "1h", "--op", "/image/resize") == [doneID])
        let date = TimeTextForTests.iso(now.addingTimeInterval(-400))
        #expect(try await ids("--since", date) == [failedID, runningID])
    }

    @Test func theLimitCapsTheListAndSaysMoreMatch() async throws {
        let output = try await jobs("--limit", "2")
        #expect(output.status == 0)
        let lines = output.stdout.split(separator: "\n")
        #expect(lines.count == 4)
        #expect(lines.last?.contains("more match") == true)
        let json = try await jobs("--limit", "2", "--json")
        #expect(try jsonArray(json.stdout).count == 2)
    }

    @Test(arguments: [
        (["--state", "finished"], "pending, dispatched, running, done, failed, cancelled"),
        (["--since", "3x"], "30m"),
        (["--since", "yesterday"], "2025-01-31"),
        (["--state", ""], "needs a state"),
        (["--since", "99999999999999d"], "at most 100 years"),
        (["--since", "9999999999999w"], "at most 100 years"),
        (["--limit", "0"], "from 1 to"),
        (["--limit", "9223372036854775807"], "from 1 to"),
        (["--limit", "many"], "limit"),
    ])
    func badFilterValuesExitNonZeroSayingWhatToDo(arguments: [String], hint: String) async throws {
        let output = try await Vertebra.run(["jobs"] + arguments + ["--journal", path])
        #expect(output.status != 0)
        #expect(output.stderr.contains(hint), "\(output.stderr)")
        #expect(output.stdout.isEmpty)
    }

    @Test func aMissingJournalIsAnErrorNamingTheFileAndNothingIsCreated() async throws {
        let missing = directory.path("nowhere/journal.sqlite")
        let output = try await Vertebra.run(["jobs", "--journal", missing])
        #expect(output.status == 1)
        #expect(output.stderr.hasPrefix("error: "))
        #expect(output.stderr.contains(missing))
        #expect(!FileManager.default.fileExists(atPath: missing))
    }

    @Test func aFileThatIsNotAJournalIsAnErrorNotACrash() async throws {
        let bogus = directory.path("bogus.sqlite")
        try Data(repeating: 0x42, count: 8192).write(to: URL(fileURLWithPath: bogus))
        for command in [["jobs"], ["jobs", "stats"], ["jobs", "show", "abc"], ["jobs", "prune", "--older-than", "1d"]] {
            let output = try await Vertebra.run(command + ["--journal", bogus])
            #expect(output.status == 1, "\(command)")
            #expect(output.stderr.contains("not a usable SQLite journal"), "\(command): \(output.stderr)")
        }
    }

    @Test func anEmptyFileOrADirectoryIsAnErrorAndNothingIsWritten() async throws {
        let empty = directory.path("empty.sqlite")
        _ = FileManager.default.createFile(atPath: empty, contents: nil)
        let folder = directory.path("a-directory")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for command in [["jobs"], ["jobs", "stats"], ["jobs", "show", "abc"], ["jobs", "prune", "--older-than", "1d"]] {
            let onEmpty = try await Vertebra.run(command + ["--journal", empty])
            #expect(onEmpty.status == 1, "\(command)")
            #expect(onEmpty.stderr.contains("empty, not a Vertebra journal"), "\(command): \(onEmpty.stderr)")
            let onFolder = try await Vertebra.run(command + ["--journal", folder])
            #expect(onFolder.status == 1, "\(command)")
            #expect(onFolder.stderr.contains("is a directory"), "\(command): \(onFolder.stderr)")
        }
        let size = try FileManager.default.attributesOfItem(atPath: empty)[.size] as? Int
        #expect(size == 0, "reading made the empty file a journal")
        #expect(!FileManager.default.fileExists(atPath: empty + "-wal"))
    }

    @Test func theJournalDefaultsToVertebraJournalThenXDGStateHome() async throws {
        let byVariable = try await Vertebra.run(["jobs", "--json"], environment: ["VERTEBRA_JOURNAL": path])
        #expect(try jsonArray(byVariable.stdout).count == 4)
        let state = directory.path("state")
        try FileManager.default.createDirectory(atPath: state + "/vertebra", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: path, toPath: state + "/vertebra/journal.sqlite")
        let byXDG = try await Vertebra.run(["jobs", "--json"], environment: ["XDG_STATE_HOME": state])
        #expect(try jsonArray(byXDG.stdout).count == 4, "\(byXDG.stderr)")
        let nowhere = try await Vertebra.run(["jobs"], environment: ["XDG_STATE_HOME": directory.path("empty")])
        #expect(nowhere.stderr.contains(directory.path("empty") + "/vertebra/journal.sqlite"))
    }

    @Test func listWorksWhileAnotherProcessHoldsAWriteTransaction() async throws {
        let writer = try RawDatabase(path)
        try writer.execute("""
            BEGIN IMMEDIATE;
            INSERT INTO jobs (token, operation, arguments, scope, state, attempts, created, updated)
            VALUES ('e0000000000000000000000000000005', '/uncommitted', '', 'single', 'pending', 0, 0, 0);
            """)
        let output = try await jobs("--json")
        try writer.execute("ROLLBACK")
        #expect(output.status == 0, "\(output.stderr)")
        #expect(try jsonArray(output.stdout).count == 4)
    }

    /// A runtime journals the whole `op`: show prints its arguments, one a line, without the
    /// wrapper and the protocol's extensions (it printed the whole element).
    @Test func showPrintsTheArgumentsOfAJournalledOp() async throws {
        let token = "abcd" + String(repeating: "0", count: 28)
        let op = "<op xmlns='http://xmlschema.engineyard.com/agent/api' type='/text/echo' token='\(token)'><string name='text'>hi</string>"
            + "<i4 name='n'>3</i4><dispatch xmlns='urn:x-vertebra:dispatch'><retryable>true</retryable></dispatch></op>"
        let journal = try ExchangeJournal(path: directory.path("op.sqlite"))
        try await journal.write(.createJob(NewJob(token: token, operation: "/text/echo", arguments: op)))
        await journal.close()
        let output = try await Vertebra.run(["jobs", "show", token, "--journal", directory.path("op.sqlite")])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout.contains("Arguments\n  <string name='text'>hi</string>\n  <i4 name='n'>3</i4>\n"), "\(output.stdout)")
        #expect(!output.stdout.contains("dispatch") && !output.stdout.contains("<op "), "\(output.stdout)")
    }

    /// A fast-path message journalled from inside the answer to its op has no answer of its
    /// own: show says where it came from (it said UNANSWERED).
    @Test func showMarksAFastPathMessageAsInsideItsOpsAnswer() async throws {
        let token = "abce" + String(repeating: "0", count: 28)
        let journal = try ExchangeJournal(path: directory.path("inline.sqlite"))
        try await journal.write(.createJob(NewJob(token: token, operation: "/text/echo", arguments: "")))
        try await journal.write([
            .openConversation(NewConversation(job: token, peer: "w1@example.org/a", role: .requester)),
            .recordStanza(NewStanza(
                conversation: .opened, direction: .inbound, iqID: "inline:0:op1", kind: .final,
                body: "<final xmlns='http://xmlschema.engineyard.com/agent/api' token='\(token):b'/>")),
        ])
        await journal.close()
        let output = try await Vertebra.run(["jobs", "show", token, "--journal", directory.path("inline.sqlite")])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout.contains("id=inline:0:op1  inside the op's answer") && !output.stdout.contains("UNANSWERED"), "\(output.stdout)")
    }

    @Test func showPrintsArgumentsResultAndTheWholeTimelineForAPrefix() async throws {
        let output = try await jobs("show", "d000")
        #expect(output.status == 0, "\(output.stderr)")
        let text = output.stdout
        #expect(text.contains("Job        \(doneID)"))
        #expect(text.contains("State      done (1 attempt)"))
        #expect(text.contains("<i4 name='width'>640</i4>"))
        #expect(text.contains("<string name='response'>resized</string>"))
        #expect(text.contains("\(doneID):perf  requester  peer w1@example.org/a  finished"))
        let kinds = text.split(separator: "\n").filter { $0.contains(" id=") }.compactMap { line in
            ["op", "ack", "final"].first { line.contains("  \($0)  id=") }
        }
        #expect(kinds == ["op", "ack", "final"])
        #expect(text.contains("answer: <op token='\(doneID):perf'/>"))
    }

    @Test func showJSONHasTheJobConversationsAndStanzas() async throws {
        let output = try await jobs("show", failedID, "--json")
        #expect(output.status == 0, "\(output.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        let job = try #require(object["job"] as? [String: Any])
        #expect(job["id"] as? String == failedID && job["error"] as? String == "out of memory")
        let stanzas = try #require(object["stanzas"] as? [[String: Any]])
        #expect(stanzas.map { $0["kind"] as? String } == ["op", "ack", "error"])
        #expect((object["conversations"] as? [Any])?.count == 1)
    }

    @Test func showOfAnUnknownOrAmbiguousIdFailsSayingWhatToDo() async throws {
        let unknown = try await jobs("show", "9999")
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("No job with id '9999'") && unknown.stderr.contains("vertebra jobs"))
        let ambiguous = try await jobs("show", "")
        #expect(ambiguous.status == 1)
    }

    @Test func statsCountsJobsPerStateAndOperationWithDurationPercentiles() async throws {
        let table = try await jobs("stats")
        #expect(table.status == 0, "\(table.stderr)")
        #expect(table.stdout.contains("durability normal"))
        let lines = table.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        #expect(lines.contains(["done", "2"]))
        #expect(lines.contains(["failed", "1"]))
        #expect(lines.contains(["running", "1"]))
        #expect(lines.contains(["/image/resize", "2", "0", "0", "0", "2", "0", "0"]))
        let json = try await jobs("stats", "--json")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["total"] as? Int == 4)
        #expect((object["states"] as? [String: Int])?["done"] == 2)
        // Finished durations are 1 s, 2 s and 4 s.
        #expect(object["p50"] as? Double == 2)
        #expect(object["p99"] as? Double == 4)
        #expect(object["durability"] as? String == "normal")
    }

    @Test func pruneDeletesOnlyFinishedJobsOlderThanTheAge() async throws {
        let output = try await jobs("prune", "--older-than", "30d")
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout.hasPrefix("Pruned 1 job finished before"))
        let remaining = try jsonArray(try await jobs("--json").stdout).compactMap { $0["id"] as? String }
        #expect(Set(remaining) == [doneID, failedID, runningID])
        let bad = try await jobs("prune", "--older-than", "soon")
        #expect(bad.status != 0 && bad.stderr.contains("30m"))
        // Far beyond any calendar: a usage error, not a crash (it trapped converting to Int64).
        let huge = try await jobs("prune", "--older-than", "99999999999999d")
        #expect(huge.status == 64 && huge.stderr.contains("at most 100 years"), "\(huge.status) \(huge.stderr)")
    }

    @Test func pruneDoesNotCreateAMissingJournal() async throws {
        let missing = directory.path("absent.sqlite")
        let output = try await Vertebra.run(["jobs", "prune", "--older-than", "1d", "--journal", missing])
        #expect(output.status == 1 && output.stderr.contains(missing))
        #expect(!FileManager.default.fileExists(atPath: missing))
    }

    @Test func helpListsTheSubcommandsButHidesTheTestHelper() async throws {
        let output = try await Vertebra.run(["jobs", "--help"])
        #expect(output.status == 0)
        for name in ["list", "show", "stats", "prune", "generate", "--journal"] where name != "--journal" {
            #expect(output.stdout.contains(name))
        }
        #expect(!output.stdout.contains("_crash-writer"))
        let list = try await Vertebra.run(["jobs", "list", "--help"])
        for option in ["--state", "--op", "--worker", "--since", "--limit", "--json", "--journal"] {
            #expect(list.stdout.contains(option), "\(option)")
        }
    }

    @Test func generateMakesAJournalTheOtherCommandsRead() async throws {
        let generated = directory.path("generated.sqlite")
        let output = try await Vertebra.run(["jobs", "generate", "--count", "300", "--journal", generated])
        #expect(output.status == 0, "\(output.stderr)")
        let stats = try await Vertebra.run(["jobs", "stats", "--json", "--journal", generated])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any])
        #expect(object["total"] as? Int == 300)
        #expect(try RawDatabase(generated).text("PRAGMA quick_check") == "ok")
        for days in ["inf", "nan", "1e300", "0"] {
            let bad = try await Vertebra.run(["jobs", "generate", "--days", days, "--journal", directory.path("bad.sqlite")])
            #expect(bad.status == 64 && bad.stderr.contains("--days"), "--days \(days): \(bad.status) \(bad.stderr)")
        }
    }
}

enum TimeTextForTests {
    static func iso(_ date: Date) -> String { Date.ISO8601FormatStyle().format(date) }
}

/// `vertebra jobs --follow`: the listing, then each new or changed job as the journal changes.
@Suite(.timeLimit(.minutes(2))) struct JobsFollowTests {
    /// The `(id, state)` pairs of the JSON lines in `file` so far.
    private func events(in file: String) -> [(String, String)] {
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let id = object["id"] as? String, let state = object["state"] as? String
            else { return nil }
            return (id, state)
        }
    }

    private func waitFor(_ what: String, in file: String, _ condition: ([(String, String)]) -> Bool) async throws {
        let end = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < end {
            if condition(events(in: file)) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("timed out waiting for \(what); printed: \((try? String(contentsOfFile: file, encoding: .utf8)) ?? "")")
        throw CancellationError()
    }

    @Test func followPrintsNewAndChangedJobsUntilStopped() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("follow.sqlite")
        let journal = try ExchangeJournal(path: path, options: .init(durability: .normal))
        let first = newToken()
        try await journal.write(.createJob(NewJob(token: first, operation: "/a", arguments: "", state: .pending)))
        let output = directory.path("stdout")
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        let process = Process()
        process.executableURL = try Vertebra.binary()
        process.arguments = ["jobs", "--follow", "--json", "--interval", "50", "--state", "pending,done", "--journal", path]
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        try await waitFor("the first job", in: output) { $0.contains { $0 == (first, "pending") } }
        let second = newToken()
        try await journal.write(.createJob(NewJob(token: second, operation: "/b", arguments: "", state: .pending)))
        try await journal.write(.transition(job: second, to: .running))
        try await Task.sleep(for: .milliseconds(300))
        try await journal.write(.transition(job: second, to: .done))
        try await waitFor("the second job's end", in: output) { $0.contains { $0 == (second, "done") } }
        let seen = events(in: output)
        #expect(!seen.contains { $0.1 == "running" }, "--state filters the changes too: \(seen)")
        #expect(seen.filter { $0 == (first, "pending") }.count == 1, "a job is printed again only when it changes: \(seen)")
        kill(process.processIdentifier, SIGTERM)
        let end = ContinuousClock.now + .seconds(10)
        while process.isRunning && ContinuousClock.now < end { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!process.isRunning)
        #expect(process.terminationStatus == 0)
        await journal.close()
    }

    @Test func aBadIntervalIsAUsageError() async throws {
        let output = try await Vertebra.run(["jobs", "--follow", "--interval", "5"])
        #expect(output.status == 64)
        #expect(output.stderr.contains("--interval must be from 50 to 60000 ms"))
    }
}

/// `vertebra coordinator --schedule PATH` checks the file before anything starts.
@Suite struct CoordinatorScheduleFlagTests {
    @Test func aBadScheduleIsAUsageErrorNamingTheLine() async throws {
        let directory = try TemporaryDirectory()
        let file = directory.path("schedule.txt")
        try "# nightly\n0 2 * * * /reports/nightly\n0 25 * * * /reports/late\n".write(toFile: file, atomically: true, encoding: .utf8)
        let output = try await Vertebra.run(["coordinator", "--schedule", file, "--jid", "coordinator@localhost"])
        #expect(output.status == 64, "\(output.stderr)")
        #expect(output.stderr.contains("schedule.txt:3:") && output.stderr.contains("hour"), "\(output.stderr)")
        let missing = try await Vertebra.run(["coordinator", "--schedule", directory.path("none.txt"), "--jid", "coordinator@localhost"])
        #expect(missing.status == 64 && missing.stderr.contains("cannot read the schedule"), "\(missing.stderr)")
    }
}
