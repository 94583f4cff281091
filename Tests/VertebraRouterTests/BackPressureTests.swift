import Foundation
import NIOCore
import Natter
import Testing
import VertebraXML

/// A client that does not read cannot make the router hold unbounded output (DESIGN 6.1).
@Suite(.timeLimit(.minutes(2))) struct BackPressureTests {
    /// A client that sends requests but never reads the answers is stalled, not buffered for:
    /// the router stops reading it while its answers back up, keeps the connection, and sends
    /// every answer once the client reads again.
    @Test func aClientThatDoesNotReadItsAnswersIsStalledNotBufferedFor() async throws {
        try await TestRouter.with(tls: false, adjust: {
            $0.limits.stanzasPerSecond = 0
            $0.limits.maxOutputBufferBytes = 4 << 20
        }) { router in
            let deaf = try await RawClient(port: router.port, receiveBuffer: 4096)
            #expect(try await deaf.bind("alice", resource: "deaf"))
            try await deaf.setReading(false)
            // Pings until our own socket stops taking them. Without back-pressure the router
            // would read them all and hold the answers (far past its 4 MiB limit) or close us.
            let chunk = 1000
            var sent = 0
            while deaf.channel.isWritable, sent < 2_000_000 {
                var text = ""
                for id in sent..<(sent + chunk) {
                    text += "<iq type='get' id='p\(id)' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
                }
                deaf.channel.writeAndFlush(ByteBuffer(string: text), promise: nil)
                sent += chunk
                try await Task.sleep(for: .milliseconds(2))
            }
            #expect(!deaf.channel.isWritable, "the router read \(sent) pings without its output backing up")
            try await Task.sleep(for: .milliseconds(500))
            #expect(deaf.isOpen, "the router closed a client whose answers it should have stopped producing")
            #expect(router.router.sessionCount == 1)
            // Reading again: every ping is answered.
            try await deaf.setReading(true)
            #expect(try await deaf.waitFor("id='p\(sent - 1)'", timeout: .seconds(60)), "not every ping was answered")
            let other = try await RawClient(port: router.port)
            #expect(try await other.bind("bob", resource: "other"))
            try await other.send("<iq type='get' id='other' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
            #expect(try await other.waitFor("id='other'"))
            await other.close()
            await deaf.close()
        }
    }

    /// A client that others write to but that never reads is closed once the router holds more
    /// than its limit for it; the sender stays connected.
    @Test func aSlowReaderIsClosedPastTheOutputLimit() async throws {
        try await TestRouter.with(tls: false, adjust: {
            $0.limits.stanzasPerSecond = 0
            $0.limits.maxOutputBufferBytes = 256 << 10
        }) { router in
            let slow = try await RawClient(port: router.port, receiveBuffer: 4096)
            #expect(try await slow.bind("bob", resource: "slow"))
            try await slow.setReading(false)
            let sender = try await RawClient(port: router.port)
            #expect(try await sender.bind("alice", resource: "sender"))
            #expect(router.router.sessionCount == 2)
            let body = String(repeating: "x", count: 8192)
            for batch in 0..<40 {
                var text = ""
                for id in 0..<100 { text += "<message to='bob@localhost/slow' id='m\(batch)-\(id)'><body>\(body)</body></message>" }
                try await sender.send(text)
                if router.router.sessionCount == 1 { break }
            }
            try await router.eventually("the slow reader's session to end") { router.router.sessionCount == 1 }
            // The slow reader, reading again, finds its stream ended.
            try await slow.setReading(true)
            #expect(try await slow.waitClosed(timeout: .seconds(30)))
            #expect(sender.isOpen)
            try await sender.send("<iq type='get' id='still' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
            #expect(try await sender.waitFor("id='still'"))
            await sender.close()
        }
    }
}
