import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Files that hold secrets (passwords, private keys) are refused when other users may read
/// them, as OpenSSH refuses a private key with loose permissions: the secret may already have
/// leaked, and using it silently hides that.
public enum SecretFile {
    /// Throws a configuration error naming the fix when `path` is readable or writable by its
    /// group or by others (`allowGroup`: by others only, for keys shared with a group such as
    /// Debian's `ssl-cert`). A missing file passes: the read that follows reports it.
    public static func checkPrivate(_ path: String, what: String, allowGroup: Bool = false) throws(NatterError) {
        var info = stat()
        guard stat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT != S_IFDIR else {
            throw NatterError(.configuration, "\(what) \(path) is a directory; give the file that holds the secret")
        }
        let forbidden: mode_t = allowGroup ? 0o007 : 0o077
        guard info.st_mode & forbidden == 0 else {
            let mode = String(info.st_mode & 0o777, radix: 8)
            throw NatterError(
                .configuration,
                "\(what) \(path) can be read by other users (mode 0\(mode)); make it private with `chmod 600 \(path)` (and change the secret if others could read it)")
        }
    }
}
