import Foundation
import Logging
import Natter
import VertebraJournal
import VertebraXML

/// The registry outlives a restart: every advertisement is kept in the journal, and a
/// restarted coordinator pings the workers it knew and takes back those that answer, at once
/// (instead of waiting up to 0.9 x TTL for their next refresh).
extension Coordinator {
    /// A worker's last advertisement, as the journal keeps it.
    struct KnownWorker: Codable, Sendable {
        var advertisement: Advertisement
        /// When the advertisement runs out (seconds since 1970).
        var expires: Double
    }

    static let knownWorkerPrefix = "coordinator.worker:"

    func remember(_ worker: JID, _ ad: Advertisement) async {
        let key = Self.knownWorkerPrefix + worker.description
        var value: String?
        if ad.ttl > 0 {
            let known = KnownWorker(advertisement: ad, expires: Date().timeIntervalSince1970 + Double(ad.ttl))
            guard let data = try? JSONEncoder().encode(known) else { return }
            value = String(decoding: data, as: UTF8.self)
        }
        await journalAside(.setMeta(key: key, value: value), what: "the advertisement of \(worker)")
    }

    func forget(_ worker: JID) async {
        await journalAside(.setMeta(key: Self.knownWorkerPrefix + worker.description, value: nil), what: "that \(worker) left")
    }

    /// The workers of the journal whose advertisement has not run out.
    func knownWorkers() async throws -> [(JID, Advertisement)] {
        let now = Date().timeIntervalSince1970
        var found: [(JID, Advertisement)] = []
        for (key, value) in try await journal.meta(prefix: Self.knownWorkerPrefix) {
            guard let jid = JID(String(key.dropFirst(Self.knownWorkerPrefix.count))),
                let known = try? JSONDecoder().decode(KnownWorker.self, from: Data(value.utf8)),
                known.expires > now
            else { continue }
            var ad = known.advertisement
            ad.ttl = Int(min(Double(Advertisement.maxTTL), known.expires - now).rounded(.up))
            found.append((jid, ad))
        }
        return found
    }

    /// Pings each known worker; those that answer are live again (and get our presence, so
    /// they refresh their advertisement); the others are forgotten.
    func probe(_ known: [(JID, Advertisement)]) async {
        guard !known.isEmpty else { return }
        let client = self.client
        let timeout = min(options.answerTimeout, .seconds(3))
        let answers = await withTaskGroup(of: (JID, Advertisement, Bool).self) { group in
            for (jid, ad) in known {
                group.addTask {
                    let ping = IQ(type: .get, id: "", to: jid, payload: XElement("ping", namespace: XMPPNamespace.ping))
                    let alive: Bool
                    do {
                        _ = try await client.sendAndWait(ping, timeout: timeout)
                        alive = true
                    } catch let error as NatterError where error.stanzaError.map({ !$0.meansRecipientGone }) ?? false {
                        alive = true  // it answered, if only with an error: it is there
                    } catch {
                        alive = false
                    }
                    return (jid, ad, alive)
                }
            }
            var all: [(JID, Advertisement, Bool)] = []
            for await answer in group { all.append(answer) }
            return all
        }
        var back: [String] = []
        for (jid, ad, alive) in answers {
            if alive {
                if registry.entry(jid) == nil { registry.advertise(jid, ad, now: clock.now) }
                try? await client.sendPresence(to: jid)
                back.append(jid.description)
            } else {
                await forget(jid)
            }
        }
        logger.info("known workers probed after the start", metadata: [
            "live": "\(back.sorted())", "gone": "\(answers.count - back.count)"])
        notifyChange()
    }

    /// A journal write that no job depends on directly: a failure is logged and counted.
    func journalAside(_ record: JournalRecord, what: String) async {
        do { try await journal.write(record) } catch {
            noteJournalFailure(error, "could not journal \(what)")
        }
    }

    func noteJournalFailure(_ error: any Error, _ message: String, job: String? = nil) {
        journalFailures += 1
        var metadata: Logger.Metadata = ["error": "\(error)", "journal": "\(journal.path)"]
        if let job { metadata["job"] = "\(job)" }
        logger.error("\(message)", metadata: metadata)
    }
}

extension Coordinator {
    /// Journals what need not be durable before anything is sent (DESIGN §5.1): answer
    /// acknowledgements, `running`, and ends a journalled stanza already implies. Order with
    /// later writes is kept; a rule violation (a race the journal settles) is dropped, a failed
    /// commit is reported like any journal failure.
    func journalLater(_ records: [JournalRecord], _ what: String, job: String) {
        journal.writeLater(records) { [weak self] error in
            if let journalError = error as? JournalError, journalError.code.isRuleViolation { return }
            guard let self else { return }
            // Stopped (no task may start): logged here, not counted.
            if !self.tasks.spawn({ await self.noteJournalFailure(error, what, job: job) }) {
                self.logger.error("\(what)", metadata: ["job": "\(job)", "error": "\(error)", "journal": "\(self.journal.path)"])
            }
        }
    }
}
