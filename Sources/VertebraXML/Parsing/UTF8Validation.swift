/// Locates malformed UTF-8, so that a parser error caused by bad bytes can say so.
enum UTF8Validation {
    /// The offset of the first byte that starts an invalid UTF-8 sequence, or `nil`. A sequence
    /// cut off by the end of `bytes` is not invalid (the rest may arrive in the next chunk).
    static func firstInvalidByte(in bytes: UnsafeRawBufferPointer) -> Int? {
        var index = 0
        while index < bytes.count {
            let lead = bytes[index]
            let length: Int
            switch lead {
            case 0x00...0x7F: length = 1
            case 0xC2...0xDF: length = 2
            case 0xE0...0xEF: length = 3
            case 0xF0...0xF4: length = 4
            default: return index
            }
            for offset in 1..<max(length, 1) where index + offset < bytes.count {
                let byte = bytes[index + offset]
                guard (0x80...0xBF).contains(byte), isValidSecondByte(byte, lead: lead, offset: offset)
                else { return index }
            }
            index += length
        }
        return nil
    }

    /// Overlong forms, surrogates and values past U+10FFFF are refused at the second byte.
    private static func isValidSecondByte(_ byte: UInt8, lead: UInt8, offset: Int) -> Bool {
        guard offset == 1 else { return true }
        switch lead {
        case 0xE0: return byte >= 0xA0
        case 0xED: return byte <= 0x9F
        case 0xF0: return byte >= 0x90
        case 0xF4: return byte <= 0x8F
        default: return true
        }
    }
}
