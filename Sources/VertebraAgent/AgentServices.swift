import Logging
import ServiceLifecycle
import UnixSignals

/// Runs an agent's services in one `ServiceGroup` until SIGINT or SIGTERM. The first signal
/// shuts the group down gracefully, services in reverse order (a worker drains, a coordinator
/// stops after the web view in front of it); a second signal cancels the group, so every
/// service stops at once (a worker's drain is cut short). `onSignal` runs at each signal, with
/// its count, before the group hears of it. Returns once every service has ended.
public func runUntilSignalled(
    _ services: [any Service], logger: Logger, onSignal: @escaping @Sendable (Int) -> Void = { _ in }
) async throws {
    let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: services, logger: logger))
    let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
    try await withThrowingTaskGroup(of: Bool.self) { tasks in
        tasks.addTask {
            try await group.run()
            return true
        }
        tasks.addTask {
            var count = 0
            for await _ in signals {
                count += 1
                onSignal(count)
                if count == 1 { await group.triggerGracefulShutdown() } else { break }
            }
            return false
        }
        // The group's end (its shutdown, or a service that failed), or a second signal; the
        // other task is then cancelled and awaited (a cancelled group stops its services).
        let groupEnded = try await tasks.next() ?? true
        tasks.cancelAll()
        if !groupEnded {
            do { _ = try await tasks.next() } catch is CancellationError {}
        }
    }
}

/// Something started before the group (an HTTP endpoint, a trace file, an exporter) as one of
/// its services: it runs until the group's shutdown, then `stop` runs. Earlier services in the
/// group's list stop later.
public struct StopsAtShutdown: Service, CustomStringConvertible {
    public let description: String
    private let stop: @Sendable () async -> Void

    public init(_ name: String, stop: @escaping @Sendable () async -> Void) {
        self.description = name
        self.stop = stop
    }

    public func run() async throws {
        // Returns at a graceful shutdown, throws when cancelled: either way it is time to stop.
        try? await gracefulShutdown()
        await stop()
    }
}
