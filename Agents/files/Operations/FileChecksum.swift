import CCrypto
import Foundation
import Vertebra
import VertebraXML

/// `/files/checksum`: the SHA-256 of every regular file under `path` (a file or a directory,
/// relative to the agent's root or absolute inside it), streamed one result per file in path
/// order. Paths that leave the root (`..`, absolute paths elsewhere, symbolic links pointing
/// out) are refused; under a directory, symbolic links, FIFOs, sockets and devices are skipped.
/// Read-only, so retryable.
public struct FileChecksum: VertebraOperation {
    public static let path: Resource = "/files/checksum"
    public static let isRetryable = true
    public static let defaultDeadline: Duration? = .seconds(600)

    public struct Result: Codable, Sendable, Equatable {
        /// The file's path relative to the root.
        public var path: String
        public var sha256: String
        public var bytes: Int
    }

    /// A file or directory, relative to the root (or absolute inside it).
    public var path: String
    /// Most files to report (default ``defaultLimit``, at most ``maxLimit``): a larger tree
    /// fails the job, saying so.
    public var limit: Int?

    public static let defaultLimit = 10_000
    public static let maxLimit = 1_000_000

    public init(path: String, limit: Int? = nil) {
        self.path = path
        self.limit = limit
    }
}

/// `/files/summary`: how many files and bytes are under `path` (one result).
public struct FileSummary: VertebraOperation {
    public static let path: Resource = "/files/summary"
    public static let isRetryable = true

    public struct Result: Codable, Sendable, Equatable {
        public var files: Int
        public var bytes: Int
    }

    public var path: String

    public init(path: String) { self.path = path }
}

/// The file-integrity agent's logic, independent of XMPP so it can be tested directly.
public struct FileIntegrity: Sendable {
    /// The directory everything must stay inside (symbolic links resolved).
    public let root: URL

    public init(root: String) throws {
        let url = URL(fileURLWithPath: root).standardizedFileURL.resolvingSymlinksInPath()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw OperationFailure("root \(root) is not a directory", fatal: true)
        }
        self.root = url
    }

    /// Resolves `path` inside the root, or explains why it is refused.
    public func resolve(_ path: String) throws -> URL {
        guard !path.isEmpty, !path.contains("\0") else { throw OperationFailure("refused: an empty path", fatal: true) }
        let candidate = path.hasPrefix("/") ? URL(fileURLWithPath: path) : root.appendingPathComponent(path)
        let resolved = candidate.standardizedFileURL.resolvingSymlinksInPath()
        guard resolved.path == root.path || resolved.path.hasPrefix(root.path + "/") else {
            throw OperationFailure("refused: \(path) is outside the allowed root \(root.path)", fatal: true)
        }
        guard FileManager.default.fileExists(atPath: resolved.path) else {
            throw OperationFailure("no such file or directory: \(path)", fatal: true)
        }
        return resolved
    }

    /// The regular files at or under `url`, sorted. Under a directory, symbolic links are
    /// skipped, not followed (wherever they lead), and so are FIFOs, sockets and devices: both
    /// operations see the same files. A `url` that is itself no regular file or directory is
    /// refused.
    public func files(under url: URL, limit: Int) throws -> [URL] {
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory)
        guard isDirectory.boolValue else {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else {
                throw OperationFailure("refused: \(relative(url)) is not a regular file", fatal: true)
            }
            return [url]
        }
        let keys: [URLResourceKey] = [.isRegularFileKey, .isSymbolicLinkKey]
        guard let enumerator = FileManager.default.enumerator(at: url, includingPropertiesForKeys: keys) else {
            throw OperationFailure("cannot list \(url.path)", fatal: true)
        }
        var found: [URL] = []
        for case let file as URL in enumerator {
            let values = try? file.resourceValues(forKeys: Set(keys))
            guard values?.isSymbolicLink == false, values?.isRegularFile == true, file.path.hasPrefix(root.path + "/") else { continue }
            found.append(file)
            if found.count > limit { throw OperationFailure("more than \(limit) files under \(url.path); narrow the path or raise limit", fatal: true) }
        }
        return found.sorted { $0.path < $1.path }
    }

    /// The SHA-256 (hex) and size of a file, read in 1 MiB blocks.
    ///
    /// The file is opened without following a final symbolic link and without blocking (a FIFO
    /// or device is refused, never waited on); then the *opened* file is checked: a regular
    /// file whose real path is still inside the root. A file swapped for a link between listing
    /// and reading is refused, not read. Cancellation is checked between blocks.
    public func checksum(_ url: URL) throws -> FileChecksum.Result {
        let descriptor = open(url.path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            let reason = errno == ELOOP ? "refused: it became a symbolic link" : "cannot read it (errno \(errno))"
            throw OperationFailure("\(relative(url)): \(reason)", fatal: true)
        }
        defer { close(descriptor) }
        try checkOpened(descriptor, url)
        guard let context = vertebra_sha256_begin() else { throw OperationFailure("libcrypto could not start SHA-256", fatal: true) }
        var bytes = 0
        var block = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            if Task.isCancelled {
                vertebra_sha256_discard(context)
                throw CancellationError()
            }
            let count = block.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else {
                vertebra_sha256_discard(context)
                throw OperationFailure("reading \(relative(url)) failed: errno \(errno)", fatal: true)
            }
            if count == 0 { break }
            bytes += count
            let ok = block.withUnsafeBytes { vertebra_sha256_update(context, $0.baseAddress, count) }
            guard ok == 1 else {
                vertebra_sha256_discard(context)
                throw OperationFailure("SHA-256 failed on \(relative(url))", fatal: true)
            }
        }
        var digest = [UInt8](repeating: 0, count: 32)
        guard vertebra_sha256_finish(context, &digest) == 32 else { throw OperationFailure("SHA-256 failed", fatal: true) }
        return FileChecksum.Result(path: relative(url), sha256: digest.map { String(format: "%02x", $0) }.joined(), bytes: bytes)
    }

    /// The opened file must be a regular file whose real path is inside the root.
    private func checkOpened(_ descriptor: Int32, _ url: URL) throws {
        var info = stat()
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw OperationFailure("refused: \(relative(url)) is not a regular file", fatal: true)
        }
        guard let real = Self.realPath(of: descriptor), real == root.path || real.hasPrefix(root.path + "/") else {
            throw OperationFailure("refused: \(relative(url)) now leads outside the allowed root \(root.path)", fatal: true)
        }
    }

    /// Where an open file really is (Linux: its /proc/self/fd link; Darwin: F_GETPATH).
    private static func realPath(of descriptor: Int32) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        #if os(Linux)
            let length = readlink("/proc/self/fd/\(descriptor)", &buffer, buffer.count - 1)
            guard length > 0 else { return nil }
            return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        #else
            guard fcntl(descriptor, F_GETPATH, &buffer) == 0 else { return nil }
            return String(cString: buffer)
        #endif
    }

    func relative(_ url: URL) -> String {
        let path = url.standardizedFileURL.path
        return path == root.path ? "." : String(path.dropFirst(root.path.count + 1))
    }

    /// The number of files and bytes under `path`.
    public func summary(_ path: String) throws -> FileSummary.Result {
        let files = try files(under: try resolve(path), limit: FileChecksum.maxLimit)
        let bytes = files.reduce(0) { total, file in
            total + ((try? file.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0)
        }
        return FileSummary.Result(files: files.count, bytes: bytes)
    }

    /// Registers `/files/checksum` and `/files/summary` on a worker.
    public func register(on worker: Worker) async throws {
        let integrity = self
        try await worker.register(FileSummary.self) { op, _ in try integrity.summary(op.path) }
        try await worker.registerStreaming(FileChecksum.self) { op, context, results in
            let target = try integrity.resolve(op.path)
            let limit = op.limit ?? FileChecksum.defaultLimit
            guard (1...FileChecksum.maxLimit).contains(limit) else {
                throw OperationFailure("limit must be from 1 to \(FileChecksum.maxLimit), not \(limit)", fatal: true)
            }
            let files = try integrity.files(under: target, limit: limit)
            for (index, file) in files.enumerated() {
                try Task.checkCancellation()
                try await results.yield(try integrity.checksum(file))
                if files.count >= 20 && (index + 1) % 10 == 0 {
                    try await context.reportProgress("\(index + 1) of \(files.count) files", done: index + 1, total: files.count)
                }
            }
        }
    }
}
