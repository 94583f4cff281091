import Foundation
import Testing
@testable import VertebraJournal

/// The version-1 schema exactly as the first release wrote it; kept here, independent of the
/// library, so that the migration test really starts from an old file.
private let version1DDL = """
    CREATE TABLE jobs (token TEXT PRIMARY KEY NOT NULL, operation TEXT NOT NULL, arguments TEXT NOT NULL,
        scope TEXT NOT NULL, submitter TEXT,
        state TEXT NOT NULL CHECK (state IN ('pending','dispatched','running','done','failed','cancelled')),
        attempts INTEGER NOT NULL DEFAULT 0, deadline INTEGER, result TEXT, error TEXT,
        created INTEGER NOT NULL, updated INTEGER NOT NULL, finished INTEGER);
    CREATE TABLE conversations (id INTEGER PRIMARY KEY, token TEXT UNIQUE,
        job TEXT NOT NULL REFERENCES jobs(token) ON DELETE CASCADE, peer TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('requester','performer')),
        state TEXT NOT NULL CHECK (state IN ('open','finished','failed','cancelled')),
        current INTEGER NOT NULL DEFAULT 1 CHECK (current IN (0, 1)),
        created INTEGER NOT NULL, updated INTEGER NOT NULL);
    CREATE INDEX conversations_by_job ON conversations(job);
    CREATE INDEX conversations_open ON conversations(id) WHERE state = 'open';
    CREATE TABLE stanzas (id INTEGER PRIMARY KEY,
        conversation INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        sequence INTEGER NOT NULL, direction TEXT NOT NULL CHECK (direction IN ('in','out')),
        peer TEXT NOT NULL, iq_id TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL, answer TEXT,
        sent INTEGER NOT NULL, acked INTEGER, UNIQUE (conversation, sequence));
    CREATE UNIQUE INDEX stanzas_inbound_dedup ON stanzas(peer, iq_id) WHERE direction = 'in';
    CREATE INDEX stanzas_outbound_iq ON stanzas(peer, iq_id) WHERE direction = 'out';
    PRAGMA application_id = 1448236098;
    PRAGMA user_version = 1;
    """

@Suite struct SchemaTests {

    /// The journal's writer skips the schema's CHECKs (it writes only enum values); another
    /// connection to the same file is still refused a state the schema does not know.
    @Test func theSchemaStillRefusesAnUnknownStateFromAnotherConnection() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("journal.sqlite")
        let journal = try ExchangeJournal(path: path, options: .init(durability: .normal))
        let token = try await journal.makeJob()
        try await journal.write(.transition(job: token, to: .dispatched))
        let other = try Connection(path: path, mode: .readWrite, busyTimeout: .seconds(1))
        let refused = await journalError { try other.run("UPDATE jobs SET state = 'lost' WHERE token = ?", [.text(token)]) }
        #expect(refused?.sqliteCode.map { $0 & 0xFF } == 19, "a CHECK constraint failure: \(String(describing: refused))")
        #expect(try await journal.job(token)?.state == .dispatched)
        await journal.close()
    }
    @Test func aNewJournalIsCreatedAtTheCurrentVersionInWALModeWithItsDurabilityRecorded() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("state/nested/journal.sqlite")
        let journal = try ExchangeJournal(path: path, options: .init(durability: .normal))
        let info = try await journal.info()
        #expect(info.schemaVersion == ExchangeJournal.schemaVersion)
        #expect(info.durability == .normal)
        await journal.close()
        let raw = try RawDatabase(path)
        #expect(try raw.text("PRAGMA journal_mode") == "wal")
        #expect(try raw.text("SELECT value FROM meta WHERE key = 'durability'") == "normal")
    }

    @Test func fullAndNormalReallySetTheWriterConnectionsSynchronousPragma() async throws {
        let directory = try TemporaryDirectory()
        for (durability, expected) in [(Durability.full, Int64(2)), (.normal, 1)] {
            let journal = try ExchangeJournal(
                path: directory.path("\(durability).sqlite"), options: .init(durability: durability))
            let pragmas = try await journal.writerPragmas()
            #expect(pragmas.synchronous == expected)
            // Checkpoints run on their own thread, never inside the writer's commits.
            #expect(pragmas.walAutocheckpoint == 0)
            // A batch's savepoint undo pages stay in memory instead of a temporary file.
            #expect(pragmas.tempStore == 2)
            await journal.close()
        }
    }

    @Test func aReopenedJournalKeepsItsRecordedDurabilityUnlessToldOtherwise() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("journal.sqlite")
        try await ExchangeJournal(path: path, options: .init(durability: .normal)).close()
        let reopened = try ExchangeJournal(path: path)
        #expect(reopened.durability == .normal)
        await reopened.close()
        let full = try ExchangeJournal(path: path, options: .init(durability: .full))
        #expect(full.durability == .full)
        await full.close()
        #expect(try await JournalReader(path: path).info().durability == .full)
    }

    @Test func aVersion1JournalOpensAndIsMigratedKeepingItsJobs() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("old.sqlite")
        do {
            let raw = try RawDatabase(path)
            try raw.execute(version1DDL)
            try raw.execute("""
                INSERT INTO jobs (token, operation, arguments, scope, state, attempts, created, updated)
                VALUES ('aaaa', '/image/resize', '<i4 name="w">10</i4>', 'single', 'running', 1, 1000, 2000);
                INSERT INTO conversations (token, job, peer, role, state, current, created, updated)
                VALUES ('aaaa:bbbb', 'aaaa', 'worker@example.org/w1', 'requester', 'open', 1, 1000, 2000);
                """)
        }
        let journal = try ExchangeJournal(path: path)
        #expect(try await journal.info().schemaVersion == ExchangeJournal.schemaVersion)
        let job = try #require(try await journal.job("aaaa"))
        #expect(job.state == .running)
        #expect(job.arguments == "<i4 name=\"w\">10</i4>")
        #expect(job.worker == "worker@example.org/w1")
        #expect(job.errorCode == nil)
        // The migrated file accepts new writes, error codes included (schema 5).
        try await journal.write(.transition(job: "aaaa", to: .failed, error: "worker-lost: gone", errorCode: "worker-lost"))
        let ended = try #require(try await journal.job("aaaa"))
        #expect(ended.state == .failed && ended.error == "worker-lost: gone" && ended.errorCode == "worker-lost")
        await journal.close()
    }

    @Test func aReaderMigratesAnOldJournalBeforeReadingIt() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("old.sqlite")
        do { try RawDatabase(path).execute(version1DDL) }
        let reader = try JournalReader(path: path)
        #expect(try await reader.info().schemaVersion == ExchangeJournal.schemaVersion)
        #expect(try await reader.jobs(matching: JobFilter()).isEmpty)
    }

    @Test func aJournalFromANewerVersionIsRefusedNamingTheFileAndBothVersions() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("future.sqlite")
        do {
            let raw = try RawDatabase(path)
            try raw.execute(version1DDL)
            try raw.execute("PRAGMA user_version = 99")
        }
        let writerError = await journalError { try ExchangeJournal(path: path) }
        #expect(writerError?.code == .newerSchema)
        let text = writerError?.description ?? ""
        #expect(text.contains(path) && text.contains("99") && text.contains("\(ExchangeJournal.schemaVersion)"))
        let readerError = await journalError { try JournalReader(path: path) }
        #expect(readerError?.code == .newerSchema)
        // Refusing must not have touched the file.
        #expect(try RawDatabase(path).integer("PRAGMA user_version") == 99)
    }

    @Test func anSQLiteFileOfAnotherApplicationIsNotTakenOver() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("other.sqlite")
        do { try RawDatabase(path).execute("CREATE TABLE notes (body TEXT)") }
        let error = await journalError { try ExchangeJournal(path: path) }
        #expect(error?.code == .corrupt)
        #expect(try RawDatabase(path).integer("SELECT count(*) FROM sqlite_schema") == 1)
    }
}
