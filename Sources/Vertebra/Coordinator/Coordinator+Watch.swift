import Logging
import Natter
import VertebraXML

/// Watching the workers that run attempts: one watcher per worker, however many of its
/// attempts run (a worker with a thousand jobs running gets one ping per period, not a
/// thousand). Presence is the fast signal that a worker went away; a ping every period is the
/// fallback for a presence that never comes. An attempt silent for `silenceTimeout` is probed
/// for its status: a worker that does not confirm it is running (a 0.4 performer that lost the
/// conversation, a worker whose journal failed) loses it.
extension Coordinator {
    /// An attempt of `job` on `worker` is followed: its worker is watched.
    func startWatching(_ worker: JID, job token: String) {
        watchedAttempts[worker, default: []].insert(token)
        guard workerWatchers.insert(worker).inserted else { return }
        tasks.spawn { await self.watch(worker) }
    }

    /// The attempt ended: the worker's watcher stops with its last attempt (when it next
    /// wakes, before it pings).
    func stopWatching(_ worker: JID, job token: String) {
        watchedAttempts[worker]?.remove(token)
        guard watchedAttempts[worker]?.isEmpty ?? true else { return }
        watchedAttempts[worker] = nil
    }

    /// Whether `worker`'s watcher goes on; false (and it is gone) once no attempt runs there.
    private func keepWatching(_ worker: JID) -> Bool {
        guard !Task.isCancelled, watchedAttempts[worker] != nil else {
            workerWatchers.remove(worker)
            return false
        }
        return true
    }

    func heard(_ token: String, _ worker: JID) {
        lastHeard["\(token)|\(worker)"] = clock.now
    }

    private func silence(_ token: String, _ worker: JID) -> Duration? {
        lastHeard["\(token)|\(worker)"].map { clock.now - $0 }
    }

    private func watch(_ worker: JID) async {
        // A quarter of the silence timeout at most: an attempt is asked at most a quarter late
        // (it was a whole period: 20 s for a 15 s timeout).
        let period = min(options.lease, options.silenceTimeout / 4)
        while keepWatching(worker) {
            try? await clock.sleep(for: period)
            guard keepWatching(worker) else { return }
            // While we are cut off ourselves, nothing is known about the worker.
            guard await client.isConnected else { continue }
            switch await Self.ping(worker, client: client, timeout: options.lease) {
            case .gone: await inbox.injectAll(.peerGone, peer: worker)
            case .present: await inbox.injectAll(.peerBack, peer: worker)
            case .unknown: break  // no XEP-0199 (a 0.4 peer), or slow: silence decides
            }
            let silent = (watchedAttempts[worker] ?? []).filter { token in
                (silence(token, worker) ?? .zero) >= options.silenceTimeout && attemptTokens["\(token)|\(worker)"] != nil
            }
            await withTaskGroup(of: Void.self) { group in
                for token in silent { group.addTask { await self.probeSilent(token, on: worker) } }
            }
        }
    }

    /// Asks `worker` whether the silent attempt of `token` still runs.
    private func probeSilent(_ token: String, on worker: JID) async {
        guard let quiet = silence(token, worker), let attempt = attemptTokens["\(token)|\(worker)"] else { return }
        switch await AttemptStatus.ask(worker, attempt: attempt, client: client, ids: ids, timeout: options.lease) {
        case .running:
            heard(token, worker)
        case .unreachable:
            return
        case .notRunning(let why):
            logger.warning("attempt silent; its worker does not confirm it", metadata: [
                "job": "\(token)", "worker": "\(worker)", "silent": "\(quiet)", "status": "\(why)"])
            await inbox.inject(.silent("\(worker) sent nothing for \(quiet.components.seconds) s and \(why)"), job: token, peer: worker)
        }
    }

    private enum Presence { case present, gone, unknown }

    /// Only the server saying "no such recipient" counts as gone.
    private static func ping(_ worker: JID, client: any StanzaTransport, timeout: Duration) async -> Presence {
        let ping = IQ(type: .get, id: "", to: worker, payload: XElement("ping", namespace: XMPPNamespace.ping))
        do {
            _ = try await client.sendAndWait(ping, timeout: timeout)
            return .present
        } catch let error as NatterError where error.stanzaError?.meansRecipientGone ?? false {
            return .gone
        } catch {
            return .unknown
        }
    }
}
