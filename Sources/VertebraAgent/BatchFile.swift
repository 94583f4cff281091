import Foundation
import Vertebra
import VertebraXML

/// `vertebra dispatch --batch FILE`: one job per line, `OPERATION name=type:value ...` in the
/// command line's argument syntax. Blank lines are skipped, and `#` starts a comment (at the
/// start of a word, outside quotes); a value
/// with spaces goes in double quotes (`text="hello world"`, `\"` and `\\` inside).
public enum BatchFile {
    public struct LineError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The jobs of `text`; the error names the file, the line and what is wrong.
    public static func parse(_ text: String, name: String) throws -> [Batch.Job] {
        var jobs: [Batch.Job] = []
        for (index, line) in text.fileLines.enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty, !trimmed.hasPrefix("#") else { continue }
            do {
                let words = try split(trimmed)
                guard let path = words.first, path.hasPrefix("/") else {
                    throw LineError(description: "the line must start with an operation path such as /vertebra/echo")
                }
                let job = Batch.Job(Resource(path), arguments: try TypedArguments.parse(Array(words.dropFirst())))
                let bytes = job.arguments.reduce(0) { $0 + $1.serializedBytes().count }
                guard bytes <= maxJobBytes else {
                    throw LineError(description: "the job's arguments are \(bytes) bytes; a batched job carries at most \(maxJobBytes) (256 KiB)")
                }
                jobs.append(job)
            } catch {
                throw LineError(description: "\(name):\(index + 1): \(error)")
            }
        }
        guard !jobs.isEmpty else { throw LineError(description: "\(name): no jobs (one per line: OPERATION name=type:value ...)") }
        return jobs
    }

    /// Splits on spaces, keeping double-quoted stretches (with `\"` and `\\`) together. A `#`
    /// that starts a word outside quotes starts a comment to the end of the line (`text=a#b`
    /// and `"#b"` keep theirs).
    public static func split(_ line: String) throws -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quoted = false
        var escaped = false
        for character in line {
            if escaped {
                current.append(character)
                escaped = false
            } else if quoted && character == "\\" {
                escaped = true
            } else if character == "\"" {
                quoted.toggle()
                inWord = true
            } else if character == "#", !quoted, !inWord {
                break
            } else if character == " " || character == "\t", !quoted {
                if inWord { words.append(current) }
                current = ""
                inWord = false
            } else {
                current.append(character)
                inWord = true
            }
        }
        guard !quoted else { throw LineError(description: "a double quote is not closed") }
        if inWord { words.append(current) }
        return words
    }

    /// The most XML a batched job's arguments may take: one batch request's size, well under
    /// the servers' stanza limits (Prosody's default is 256 KiB, the router's 1 MiB).
    public static let maxJobBytes = 256 << 10

    /// `jobs` cut into batches of at most ``Batch/maxJobs`` jobs and about `maxBytes` of XML
    /// each (a stanza must stay well under the server's limit).
    public static func chunks(_ jobs: [Batch.Job], maxBytes: Int = 256 << 10) -> [[Batch.Job]] {
        var chunks: [[Batch.Job]] = []
        var current: [Batch.Job] = []
        var bytes = 0
        for job in jobs {
            let size = 200 + job.arguments.reduce(0) { $0 + $1.serializedBytes().count }
            if !current.isEmpty, current.count == Batch.maxJobs || bytes + size > maxBytes {
                chunks.append(current)
                current = []
                bytes = 0
            }
            current.append(job)
            bytes += size
        }
        if !current.isEmpty { chunks.append(current) }
        return chunks
    }
}
