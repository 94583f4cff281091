import Synchronization

/// The tasks a coordinator or worker starts while it runs, as children of one task group, so
/// that none outlives it. `Service.run()` runs the group in its own task (``own(_:)``);
/// `start()` without `run()` gives it one task (``runUnlessRunning()``). Once the group is
/// closed, the tasks still running are cancelled and ``closeAndWait()`` returns when every
/// one has ended.
///
/// Only code that heeds cancellation belongs here: a closed group waits for its last child.
/// Operation handlers (the user's code) therefore run in tasks of their own, which a worker's
/// stop cancels and waits for within a bound.
final class OwnedTasks: Sendable {
    typealias Body = @Sendable () async -> Void

    private let spawned: AsyncStream<Body>
    private let spawner: AsyncStream<Body>.Continuation
    private let state = Mutex(State())

    private struct State {
        var running = false
        var closed = false
        var ended = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    init() {
        (spawned, spawner) = AsyncStream.makeStream()
    }

    /// What `start()` throws after `stop()`.
    static let stopped = VertebraError(.shutDown, "stopped: a coordinator, worker or submitter does not start again after stop(); make a new one")

    /// Starts `body` as a child of the group; false (and `body` never runs) once it is closed.
    @discardableResult
    func spawn(_ body: @escaping Body) -> Bool {
        if case .terminated = spawner.yield(body) { return false }
        return true
    }

    /// Starts `body` as a child that ``Cancellation/cancel()`` ends alone (at the price of one
    /// more task); nil once the group is closed.
    func spawnCancellable(_ body: @escaping Body) -> Cancellation? {
        let cancellation = Cancellation()
        let spawned = spawn {
            await withTaskGroup(of: Void.self) { inner in
                inner.addTask {
                    await body()
                    cancellation.cancel()
                }
                await cancellation.wait()
                inner.cancelAll()
            }
        }
        return spawned ? cancellation : nil
    }

    /// Runs the group in the calling task while `body` runs (unless a `start()` before gave it
    /// a task already); then closes it and returns once its last task has ended.
    func own<T: Sendable>(isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> T) async throws -> T {
        let runningAlready = state.withLock { state in
            defer { state.running = true }
            return state.running
        }
        guard !runningAlready else {
            do {
                let value = try await body()
                await closeAndWait()
                return value
            } catch {
                await closeAndWait()
                throw error
            }
        }
        async let group: Void = runGroup()
        do {
            let value = try await body()
            close()
            await group
            return value
        } catch {
            close()
            await group
            throw error
        }
    }

    /// Runs `start` with the group running (in a task of its own unless ``own(_:)`` runs it);
    /// a start that fails closes the group again.
    func starting(isolation: isolated (any Actor)? = #isolation, _ start: () async throws -> Void) async throws {
        guard !state.withLock({ $0.closed }) else { throw Self.stopped }
        runUnlessRunning()
        do {
            try await start()
        } catch {
            await closeAndWait()
            throw error
        }
    }

    /// Gives the group a task of its own, unless ``own(_:)`` or an earlier call runs it.
    func runUnlessRunning() {
        let start = state.withLock { state in
            defer { state.running = true }
            return !state.running
        }
        if start { Task { await self.runGroup() } }
    }

    /// No new tasks; those running are cancelled.
    func close() {
        state.withLock { $0.closed = true }
        spawner.finish()
    }

    /// Closes the group and returns once its last task has ended (at once if it never ran).
    func closeAndWait() async {
        close()
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let ended = state.withLock { state in
                if state.ended || !state.running { return true }
                state.waiters.append(waiter)
                return false
            }
            if ended { waiter.resume() }
        }
    }

    private func runGroup() async {
        await withDiscardingTaskGroup { group in
            // Ends at close(), or when the task running the group is cancelled.
            for await body in spawned { group.addTask(operation: body) }
            spawner.finish()
            group.cancelAll()
        }
        let waiters = state.withLock { state in
            state.ended = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Ends one child started by ``spawnCancellable(_:)``.
    final class Cancellation: Sendable {
        private let state = Mutex<(done: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

        /// Cancels the child (nothing once it ended).
        func cancel() {
            let waiter = state.withLock { state in
                state.done = true
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }

        /// Returns at ``cancel()``, at the child's end, or when the waiting task is cancelled.
        fileprivate func wait() async {
            await withTaskCancellationHandler {
                await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                    let done = state.withLock { state in
                        if !state.done { state.waiter = waiter }
                        return state.done
                    }
                    if done { waiter.resume() }
                }
            } onCancel: {
                cancel()
            }
        }
    }
}
