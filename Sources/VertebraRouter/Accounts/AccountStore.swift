import Foundation
import NIOConcurrencyHelpers
import Natter

/// The router's accounts, loaded from a JSON file of salted SCRAM credentials.
///
/// The file is re-read when its modification time changes, so `vertebra router adduser` takes
/// effect on a running router at the next login. Lookups are safe from any thread.
///
/// File format (mode 0600):
/// ```json
/// {"format": "vertebra-router-accounts/1",
///  "accounts": [{"username": "alice", "sha1": {...}, "sha256": {...}}]}
/// ```
public final class AccountStore: Sendable {
    private struct State {
        var accounts: [String: Account]
        var modified: AccountsFile.Version?
    }

    /// The file the accounts come from, or `nil` for an in-memory store.
    public let path: String?
    private let state: NIOLockedValueBox<State>

    /// An in-memory store (tests, programs that manage accounts themselves).
    public init(accounts: [Account] = []) {
        path = nil
        state = NIOLockedValueBox(State(accounts: Dictionary(accounts.map { ($0.username, $0) }) { _, last in last }, modified: nil))
    }

    /// A store backed by `path`; a missing file is an empty store.
    public init(path: String) throws(RouterError) {
        self.path = path
        let modified = AccountsFile.modificationDate(path)
        state = NIOLockedValueBox(State(accounts: try AccountsFile.load(path), modified: modified))
    }

    /// The account named `username` (case-insensitive).
    public func account(_ username: String) -> Account? {
        reloadIfChanged()
        return state.withLockedValue { $0.accounts[username.lowercased()] }
    }

    /// The key of the salts unknown users are shown (``SCRAMServer``): derived from every
    /// account's stored keys, which never leave the server, so it is secret and stable while
    /// the accounts are.
    public var fakeSaltKey: [UInt8] {
        reloadIfChanged()
        let material = state.withLockedValue { state in
            state.accounts.keys.sorted().compactMap { state.accounts[$0] }
                .map { "\($0.username)\u{0}\($0.sha256.storedKey)\u{0}\($0.sha256.serverKey)" }.joined(separator: "\u{0}")
        }
        return SCRAMHash.sha256.hash(Array(("vertebra-router fake salt\u{0}" + material).utf8))
    }

    /// The stored credentials of `username` for `hash`.
    public func credentials(_ username: String, hash: SCRAMHash) -> SCRAMCredentials? {
        account(username)?.credentials(for: hash)
    }

    /// The user names, sorted.
    public var usernames: [String] {
        reloadIfChanged()
        return state.withLockedValue { $0.accounts.keys.sorted() }
    }

    /// Adds or replaces an account in memory (and in the file, when the store has one).
    public func put(_ account: Account) throws(RouterError) {
        try update { $0[account.username] = account }
    }

    /// Removes an account; `false` when there was none.
    @discardableResult
    public func remove(_ username: String) throws(RouterError) -> Bool {
        var removed = false
        try update { removed = $0.removeValue(forKey: username.lowercased()) != nil }
        return removed
    }

    /// Changes the accounts. With a file, the change is made to the file's latest contents
    /// under an exclusive lock, so concurrent `adduser`s (other processes) all land: each read
    /// the file, changed it and renamed its version over the others' (three of six were lost).
    private func update(_ change: (inout [String: Account]) -> Void) throws(RouterError) {
        guard let path else {
            state.withLockedValue { change(&$0.accounts) }
            return
        }
        let lock = try AccountsFile.lock(path)
        defer { AccountsFile.unlock(lock) }
        var accounts = try AccountsFile.load(path)
        change(&accounts)
        try AccountsFile.save(Array(accounts.values), to: path)
        let modified = AccountsFile.modificationDate(path)
        state.withLockedValue {
            $0.accounts = accounts
            $0.modified = modified
        }
    }

    private func reloadIfChanged() {
        guard let path else { return }
        let modified = AccountsFile.modificationDate(path)
        guard modified != state.withLockedValue({ $0.modified }) else { return }
        // A file being rewritten or broken keeps the accounts already loaded.
        guard let accounts = try? AccountsFile.load(path) else { return }
        state.withLockedValue {
            $0.accounts = accounts
            $0.modified = modified
        }
    }
}

/// Reads and writes the accounts file.
enum AccountsFile {
    static let format = "vertebra-router-accounts/1"

    private struct Contents: Codable {
        var format: String
        var accounts: [Account]
    }

    /// What identifies one written version of the file: every save renames a new inode over
    /// the old one, so the inode changes even when two saves share a timestamp.
    struct Version: Hashable {
        let inode: UInt64
        let seconds: Int
        let nanoseconds: Int
        let size: Int64
    }

    static func modificationDate(_ path: String) -> Version? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Version(
            inode: UInt64(info.st_ino), seconds: Int(info.st_mtim.tv_sec), nanoseconds: Int(info.st_mtim.tv_nsec),
            size: Int64(info.st_size))
    }

    /// What is wrong with a file JSONDecoder refused, in a sentence (not Swift's dump).
    private static func reason(_ error: any Error) -> String {
        switch error as? DecodingError {
        case .dataCorrupted?: return "not JSON"
        case .keyNotFound(let key, let context)?: return "'\(key.stringValue)' is missing\(place(context))"
        case .typeMismatch(_, let context)?, .valueNotFound(_, let context)?: return "a value has the wrong type\(place(context))"
        default: return "\(error)"
        }
    }

    private static func place(_ context: DecodingError.Context) -> String {
        let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        return path.isEmpty ? "" : " at \(path)"
    }

    static func load(_ path: String) throws(RouterError) -> [String: Account] {
        guard FileManager.default.fileExists(atPath: path) else { return [:] }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RouterError(.accounts, "accounts file \(path) is not readable")
        }
        let contents: Contents
        do {
            contents = try JSONDecoder().decode(Contents.self, from: data)
        } catch {
            throw RouterError(.accounts, "accounts file \(path) is not valid: \(Self.reason(error)); it is written by `vertebra router adduser`")
        }
        guard contents.format == format else {
            throw RouterError(.accounts, "accounts file \(path) has format '\(contents.format)', expected '\(format)'")
        }
        return Dictionary(contents.accounts.map { ($0.username, $0) }) { _, last in last }
    }

    /// Creates `path` anew with mode 0600 from the start (never briefly readable by others).
    /// Whatever is already there (a stale temporary file, or a symlink planted to redirect the
    /// write) is removed, not followed: `O_EXCL | O_NOFOLLOW`.
    private static func writePrivate(_ data: Data, to path: String) throws(RouterError) {
        let flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC
        var descriptor = open(path, flags, 0o600)
        if descriptor < 0 && errno == EEXIST {
            unlink(path)
            descriptor = open(path, flags, 0o600)
        }
        guard descriptor >= 0 else { throw RouterError(.accounts, "cannot create \(path): errno \(errno)") }
        defer { close(descriptor) }
        let written = data.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == data.count, fchmod(descriptor, 0o600) == 0, fsync(descriptor) == 0 else {
            throw RouterError(.accounts, "cannot write \(path): errno \(errno)")
        }
    }

    /// Takes the exclusive lock of the accounts file `path` (`flock` on `path.lock`, mode 0600),
    /// waiting for another writer to finish; returns its descriptor for ``unlock(_:)``.
    static func lock(_ path: String) throws(RouterError) -> Int32 {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let descriptor = open(path + ".lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw RouterError(.accounts, "cannot open \(path).lock: \(String(cString: strerror(errno)))") }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else {
                let reason = String(cString: strerror(errno))
                close(descriptor)
                throw RouterError(.accounts, "cannot lock \(path).lock: \(reason)")
            }
        }
        return descriptor
    }

    static func unlock(_ descriptor: Int32) {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }

    /// Writes atomically (a temporary file renamed over the old one), readable by the owner only.
    static func save(_ accounts: [Account], to path: String) throws(RouterError) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data: Data
        do {
            data = try encoder.encode(Contents(format: format, accounts: accounts.sorted { $0.username < $1.username }))
        } catch {
            throw RouterError(.accounts, "cannot encode the accounts: \(error)")
        }
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = path + ".tmp-\(getpid())"
        do {
            if !directory.isEmpty {
                try FileManager.default.createDirectory(
                    atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            }
            try writePrivate(data, to: temporary)
            guard rename(temporary, path) == 0 else {
                throw RouterError(.accounts, "cannot rename \(temporary) to \(path): errno \(errno)")
            }
        } catch let error as RouterError {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw RouterError(.accounts, "cannot write accounts file \(path): \(error)")
        }
    }
}
