import Foundation

/// The journal's schema and its versioned migrations.
///
/// The version lives in `PRAGMA user_version`. Each migration runs in its own transaction together
/// with the version bump, so a crash mid-migration leaves the previous version intact. A journal
/// whose version is newer than ``currentVersion`` is refused; an older one is migrated on open.
enum Schema {
    /// Identifies a file as a Vertebra journal (`PRAGMA application_id`, "VRTB").
    static let applicationID: Int64 = 0x5652_5442

    /// Migrations in order; migration `n` (1-based) brings the schema to version `n`.
    static let migrations: [String] = [version1, version2, version3, version4, version5]

    static var currentVersion: Int { migrations.count }

    /// Version 1: jobs, conversations and stanzas with the de-duplication indexes.
    static let version1 = """
        CREATE TABLE jobs (
            token     TEXT PRIMARY KEY NOT NULL,
            operation TEXT NOT NULL,
            arguments TEXT NOT NULL,
            scope     TEXT NOT NULL,
            submitter TEXT,
            state     TEXT NOT NULL
                CHECK (state IN ('pending','dispatched','running','done','failed','cancelled')),
            attempts  INTEGER NOT NULL DEFAULT 0,
            deadline  INTEGER,
            result    TEXT,
            error     TEXT,
            created   INTEGER NOT NULL,
            updated   INTEGER NOT NULL,
            finished  INTEGER
        );
        CREATE TABLE conversations (
            id      INTEGER PRIMARY KEY,
            token   TEXT UNIQUE,
            job     TEXT NOT NULL REFERENCES jobs(token) ON DELETE CASCADE,
            peer    TEXT NOT NULL,
            role    TEXT NOT NULL CHECK (role IN ('requester','performer')),
            state   TEXT NOT NULL CHECK (state IN ('open','finished','failed','cancelled')),
            current INTEGER NOT NULL DEFAULT 1 CHECK (current IN (0, 1)),
            created INTEGER NOT NULL,
            updated INTEGER NOT NULL
        );
        CREATE INDEX conversations_by_job ON conversations(job);
        CREATE INDEX conversations_open ON conversations(id) WHERE state = 'open';
        CREATE TABLE stanzas (
            id           INTEGER PRIMARY KEY,
            conversation INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            sequence     INTEGER NOT NULL,
            direction    TEXT NOT NULL CHECK (direction IN ('in','out')),
            peer         TEXT NOT NULL,
            iq_id        TEXT NOT NULL,
            kind         TEXT NOT NULL,
            body         TEXT NOT NULL,
            answer       TEXT,
            sent         INTEGER NOT NULL,
            acked        INTEGER,
            UNIQUE (conversation, sequence)
        );
        CREATE UNIQUE INDEX stanzas_inbound_dedup ON stanzas(peer, iq_id) WHERE direction = 'in';
        CREATE INDEX stanzas_outbound_iq ON stanzas(peer, iq_id) WHERE direction = 'out';
        """

    /// Version 2: metadata, the denormalized `worker` column and the indexes `vertebra jobs` needs.
    static let version2 = """
        CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
        ALTER TABLE jobs ADD COLUMN worker TEXT;
        UPDATE jobs SET worker = (
            SELECT c.peer FROM conversations c
            WHERE c.job = jobs.token AND c.role = 'requester'
            ORDER BY c.current DESC, c.id DESC LIMIT 1);
        CREATE INDEX jobs_by_created ON jobs(created);
        CREATE INDEX jobs_by_state ON jobs(state, created);
        CREATE INDEX jobs_by_operation ON jobs(operation, created);
        CREATE INDEX jobs_by_worker ON jobs(worker, created);
        CREATE INDEX jobs_by_finished ON jobs(finished) WHERE finished IS NOT NULL;
        """

    /// Version 3: covering indexes for `vertebra jobs stats` (counts per operation and state,
    /// duration percentiles) so it stays fast on large journals.
    static let version3 = """
        CREATE INDEX jobs_by_operation_state ON jobs(operation, state);
        CREATE INDEX jobs_by_duration ON jobs(finished - created) WHERE finished IS NOT NULL;
        """

    /// Version 4: operator features. `retry_of` links a job an operator retried to the job it
    /// repeats; `unique_key` makes a second submission with the key of an unfinished job return
    /// that job (the partial unique index holds it across restarts and concurrent submitters);
    /// `not_before` holds a delayed job until its time.
    static let version4 = """
        ALTER TABLE jobs ADD COLUMN retry_of TEXT;
        ALTER TABLE jobs ADD COLUMN unique_key TEXT;
        ALTER TABLE jobs ADD COLUMN not_before INTEGER;
        CREATE UNIQUE INDEX jobs_unique_key ON jobs(unique_key) WHERE unique_key IS NOT NULL AND finished IS NULL;
        CREATE INDEX jobs_by_retry_of ON jobs(retry_of) WHERE retry_of IS NOT NULL;
        """

    /// Version 5: `error_code` keeps a failed or cancelled job's code (`worker-lost`,
    /// `deadline-exceeded`, ...) as data beside its `code: text` message, so that nothing reads
    /// it back out of the text. Older rows keep NULL (their text still starts with the code).
    static let version5 = """
        ALTER TABLE jobs ADD COLUMN error_code TEXT;
        """

    /// The file's schema version.
    static func version(of connection: Connection) throws -> Int {
        Int(try connection.scalarInt("PRAGMA user_version"))
    }

    /// Refuses files that are not journals or that come from a newer version.
    static func check(_ connection: Connection) throws -> Int {
        let version = try version(of: connection)
        let application = try connection.scalarInt("PRAGMA application_id")
        if application != 0 && application != applicationID {
            throw JournalError(
                .corrupt, "The file is an SQLite database of another application, not a Vertebra journal",
                path: connection.path, remedy: "Point --journal at a Vertebra journal file")
        }
        if version == 0, try connection.scalarInt("SELECT count(*) FROM sqlite_schema") > 0 {
            throw JournalError(
                .corrupt, "The file is an SQLite database but not a Vertebra journal", path: connection.path,
                remedy: "Point --journal at a Vertebra journal file")
        }
        if version > currentVersion {
            throw JournalError(
                .newerSchema,
                "The journal has schema version \(version), newer than the version \(currentVersion) this vertebra understands",
                path: connection.path,
                remedy: "Use the newer vertebra that wrote it, or move the file aside to start a new journal")
        }
        return version
    }

    /// Brings the file to ``currentVersion``, one transaction per migration.
    static func migrate(_ connection: Connection) throws {
        var version = try check(connection)
        while version < currentVersion {
            try connection.execute("BEGIN IMMEDIATE")
            do {
                // Re-read inside the write lock: another process may have migrated meanwhile.
                version = try check(connection)
                if version < currentVersion {
                    try connection.execute(migrations[version])
                    version += 1
                    try connection.execute("PRAGMA user_version = \(version)")
                    try connection.execute("PRAGMA application_id = \(applicationID)")
                }
                try connection.execute("COMMIT")
            } catch {
                if !connection.isAutocommit { try? connection.execute("ROLLBACK") }
                throw error
            }
        }
    }
}
