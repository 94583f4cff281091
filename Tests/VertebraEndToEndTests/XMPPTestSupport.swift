// The real-server helpers (XMPPServerProcess) shared by the test targets.
@_exported import XMPPTestSupport
