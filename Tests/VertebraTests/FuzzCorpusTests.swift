import Foundation
import Testing
@_spi(Fuzzing) import Vertebra

/// The fuzz targets (`scripts/fuzz.sh`) over the committed seeds and findings in `Fuzz/corpus/`:
/// what the fuzzer once found stays fixed.
@Suite struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/corpus")

    @Test(arguments: ["stream", "typed", "protocol"])
    func everyCommittedInputKeepsItsInvariants(target name: String) throws {
        let run = try #require(WireReaders.targets[name])
        let folder = Self.corpus.appendingPathComponent(name)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(files.count >= 5, "\(name): only \(files.count) seeds")
        for file in files {
            let bytes = try [UInt8](Data(contentsOf: folder.appendingPathComponent(file)))
            #expect(run(bytes).isEmpty, "\(name)/\(file): \(run(bytes))")
        }
    }
}
