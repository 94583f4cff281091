import CoreMetrics
import NIOConcurrencyHelpers
import NIOCore
import Natter

/// A live connection as other connections see it: where to write, and how to end it.
///
/// Writes go straight to the channel (NIO hops to its event loop), so routing a stanza costs
/// no task or actor hop. Ending a connection runs on its own event loop, in its handler.
final class ConnectionHandle: Sendable {
    let id: Int
    let channel: any Channel
    /// The client's IP address (connections are also counted per address).
    let address: String
    private let handler: NIOLoopBound<C2SConnection>
    /// The bound full JID, set once at resource binding.
    private let boundJID = NIOLockedValueBox<JID?>(nil)

    init(id: Int, channel: any Channel, handler: NIOLoopBound<C2SConnection>) {
        self.id = id
        self.channel = channel
        self.address = channel.remoteAddress?.ipAddress ?? "?"
        self.handler = handler
    }

    var jid: JID? { boundJID.withLockedValue { $0 } }

    func bind(_ jid: JID) { boundJID.withLockedValue { $0 = jid } }

    /// Writes serialized stanza bytes to this connection.
    func deliver(_ bytes: ByteBuffer) {
        channel.writeAndFlush(bytes, promise: nil)
    }

    /// Ends the stream with `condition` (e.g. `conflict`, `system-shutdown`).
    func terminate(_ condition: StreamErrorCondition, text: String? = nil) {
        let handler = self.handler
        channel.eventLoop.execute { handler.value.terminate(condition, text: text) }
    }
}

/// Who is connected and which full JIDs are bound, shared by every connection.
///
/// All state sits behind one lock, touched only through `withLockedValue`; no I/O happens while
/// it is held.
final class SessionRegistry: Sendable {
    /// `vertebra_router_connections`: open client connections.
    private let connectionsGauge = Gauge(label: "vertebra_router_connections")
    private struct State {
        var connections: [Int: ConnectionHandle] = [:]
        var perAddress: [String: Int] = [:]
        var sessions: [JID: ConnectionHandle] = [:]
        var resources: [JID: Set<String>] = [:]
        var nextID = 0
        var accepting = true
    }

    private let state = NIOLockedValueBox(State())
    private let maxConnections: Int
    private let maxPerAddress: Int

    init(maxConnections: Int, maxPerAddress: Int = .max) {
        self.maxConnections = maxConnections
        self.maxPerAddress = maxPerAddress
    }

    /// Why a connection was not admitted.
    enum Refusal {
        case full, tooManyFromAddress, shuttingDown
    }

    /// A fresh connection number.
    func makeID() -> Int {
        state.withLockedValue {
            $0.nextID += 1
            return $0.nextID
        }
    }

    /// Admits a connection unless the limit is reached or the router is shutting down.
    func admit(_ handle: ConnectionHandle) -> Refusal? {
        state.withLockedValue {
            guard $0.accepting else { return .shuttingDown }
            guard $0.connections.count < maxConnections else { return .full }
            guard $0.perAddress[handle.address, default: 0] < maxPerAddress else { return .tooManyFromAddress }
            $0.connections[handle.id] = handle
            $0.perAddress[handle.address, default: 0] += 1
            connectionsGauge.record($0.connections.count)
            return nil
        }
    }

    /// Forgets a closed connection and its session (if it is still the bound one).
    func release(_ handle: ConnectionHandle) {
        state.withLockedValue { state in
            guard state.connections.removeValue(forKey: handle.id) != nil else { return }
            connectionsGauge.record(state.connections.count)
            let left = state.perAddress[handle.address, default: 1] - 1
            state.perAddress[handle.address] = left > 0 ? left : nil
            guard let jid = handle.jid, state.sessions[jid]?.id == handle.id, let resource = jid.resource else { return }
            state.sessions[jid] = nil
            state.resources[jid.bare]?.remove(resource)
            if state.resources[jid.bare]?.isEmpty == true { state.resources[jid.bare] = nil }
        }
    }

    /// Binds `jid` to `handle`; returns the session it replaced (newest session wins).
    func bind(_ jid: JID, to handle: ConnectionHandle) -> ConnectionHandle? {
        handle.bind(jid)
        return state.withLockedValue { state in
            let previous = state.sessions.updateValue(handle, forKey: jid)
            if let resource = jid.resource { state.resources[jid.bare, default: []].insert(resource) }
            return previous?.id == handle.id ? nil : previous
        }
    }

    /// The session bound to a full JID.
    func session(_ jid: JID) -> ConnectionHandle? {
        state.withLockedValue { $0.sessions[jid] }
    }

    /// Every session of a bare JID.
    func sessions(ofBare bare: JID) -> [ConnectionHandle] {
        state.withLockedValue { state in
            (state.resources[bare] ?? []).compactMap { bare.with(resource: $0).flatMap { state.sessions[$0] } }
        }
    }

    /// Number of open connections.
    var connectionCount: Int { state.withLockedValue { $0.connections.count } }

    /// Number of bound sessions.
    var sessionCount: Int { state.withLockedValue { $0.sessions.count } }

    /// Stops admitting connections and returns the open ones.
    func close() -> [ConnectionHandle] {
        state.withLockedValue {
            $0.accepting = false
            return Array($0.connections.values)
        }
    }
}
