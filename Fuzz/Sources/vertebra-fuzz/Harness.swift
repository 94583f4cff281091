import CFuzzDriver
import Foundation
@_spi(Fuzzing) import Vertebra

// libFuzzer harness for the paths that read the wire (scripts/fuzz.sh). The target is chosen
// by VERTEBRA_FUZZ_TARGET: `stream` (the XMPP stream parser), `typed` (the typed-value
// decoder), `protocol` (Vertebra's protocol messages and service payloads). A crash, a trap or a
// broken invariant (reported, then `abort()`) is a finding; thrown errors are the code's normal
// answers to bad input.

/// The target named by VERTEBRA_FUZZ_TARGET (the program stops when it names none).
let target: @Sendable ([UInt8]) -> [String] = {
    let name = ProcessInfo.processInfo.environment["VERTEBRA_FUZZ_TARGET"] ?? ""
    guard let target = WireReaders.targets[name] else {
        FileHandle.standardError.write(Data("set VERTEBRA_FUZZ_TARGET to one of \(WireReaders.targets.keys.sorted())\n".utf8))
        exit(2)
    }
    return target
}()

/// The program's entry point (SwiftPM names an executable's `main` after its module): hands
/// control to libFuzzer with ``fuzzOne(_:_:)`` as the target.
@_cdecl("vertebra_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    _ = target
    return LLVMFuzzerRunDriver(&count, &arguments) { data, size in fuzzOne(data, size) }
}

func fuzzOne(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = start.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? []
    let violations = target(bytes)
    guard violations.isEmpty else {
        FileHandle.standardError.write(Data(("invariant broken:\n" + violations.joined(separator: "\n") + "\n").utf8))
        abort()
    }
    return 0
}

