import ServiceLifecycle

/// A coordinator is a swift-service-lifecycle service: in a `ServiceGroup` it starts, serves
/// until the group's graceful shutdown (a SIGTERM the group handles, or
/// `triggerGracefulShutdown()`), then stops. Every task it starts is a child of `run()`'s
/// task: `run()` returns once all have ended. Unfinished jobs stay in the journal and resume
/// at the next start.
extension Coordinator: Service {
    public func run() async throws {
        try await tasks.own {
            try await self.start()
            try? await gracefulShutdown()
            await self.stop()
        }
    }
}

/// A worker is a swift-service-lifecycle service: it starts and serves; at the group's graceful
/// shutdown it drains (withdraws its advertisement, refuses new `op`s, lets running handlers
/// finish for up to ``Worker/Options/drainTimeout``) and stops. Cancelling the group's task
/// stops it at once. Every task it starts is a child of `run()`'s task except the handlers':
/// they run the user's code, which may not heed cancellation, so the stop cancels them and
/// waits for them for 2 s only. Put workers after the coordinator in a group: a group shuts
/// its services down in reverse order, so the workers drain while the coordinator still serves.
extension Worker: Service {
    public func run() async throws {
        try await tasks.own {
            try await self.start()
            do {
                try await gracefulShutdown()
                await self.drain(timeout: self.options.drainTimeout)
            } catch {
                // Cancelled: stop at once.
            }
            await self.stop()
        }
    }
}
