extension StringProtocol {
    /// The lines of a text file, ended by LF or CRLF. Swift reads CRLF as one `Character`, so a
    /// split on `"\n"` alone leaves a Windows file as one long line.
    package var fileLines: [SubSequence] {
        split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
    }
}
