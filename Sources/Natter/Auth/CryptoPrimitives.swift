internal import CCrypto

/// The hash functions SCRAM uses, from the system libcrypto (OpenSSL). Nothing here is
/// hand-rolled: these are thin calls into `EVP_Digest`, `HMAC` and `PKCS5_PBKDF2_HMAC`.
public enum SCRAMHash: String, Sendable, CaseIterable {
    /// SCRAM-SHA-1 (RFC 5802).
    case sha1 = "SCRAM-SHA-1"
    /// SCRAM-SHA-256 (RFC 7677).
    case sha256 = "SCRAM-SHA-256"

    /// The SASL mechanism name.
    public var mechanism: String { rawValue }

    var bits: Int32 { self == .sha1 ? 1 : 256 }
    var outputLength: Int { self == .sha1 ? 20 : 32 }

    /// The digest of `data` with this mechanism's hash function.
    public func hash(_ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let length = data.withUnsafeBytes { vertebra_hash(bits, $0.baseAddress, $0.count, &out) }
        return Array(out.prefix(Int(length)))
    }

    func hmac(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let length = key.withUnsafeBytes { keyBytes in
            data.withUnsafeBytes { dataBytes in
                vertebra_hmac(bits, keyBytes.baseAddress, keyBytes.count, dataBytes.baseAddress, dataBytes.count, &out)
            }
        }
        return Array(out.prefix(Int(length)))
    }

    /// PBKDF2 with this hash; `nil` only if libcrypto fails.
    func pbkdf2(password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: outputLength)
        let ok = password.withUnsafeBytes { passwordBytes in
            salt.withUnsafeBytes { saltBytes in
                vertebra_pbkdf2(
                    bits, passwordBytes.baseAddress?.assumingMemoryBound(to: CChar.self), passwordBytes.count,
                    saltBytes.baseAddress?.assumingMemoryBound(to: UInt8.self), saltBytes.count,
                    Int32(clamping: iterations), &out, out.count)
            }
        }
        return ok == 1 ? out : nil
    }
}

/// Cryptographically secure random bytes from libcrypto.
public enum SecureRandom {
    /// `count` random bytes; `nil` only if libcrypto's generator fails.
    public static func bytes(_ count: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        return vertebra_random(&out, Int32(count)) == 1 ? out : nil
    }

    /// `bytes` random bytes as lowercase hex (twice as many digits).
    public static func hex(bytes count: Int) -> String? {
        let digits = Array("0123456789abcdef")
        return bytes(count).map { String($0.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0x0F)]] }) }
    }
}
