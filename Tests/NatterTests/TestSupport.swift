import NIOConcurrencyHelpers

/// A thread-safe counter for test doubles.
final class NIOLockedCounter: Sendable {
    private let value = NIOLockedValueBox(0)
    func next() -> Int { value.withLockedValue { $0 += 1; return $0 } }
    /// The count so far, without counting.
    var current: Int { value.withLockedValue { $0 } }
}
