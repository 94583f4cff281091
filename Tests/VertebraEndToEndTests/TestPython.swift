import Foundation

/// The Python interpreter the tests run their helper scripts with: the one
/// `scripts/install-deps.sh` installed slixmpp for. `scripts/test.sh` passes it as
/// `VERTEBRA_PYTHON`; run directly, the first `python3` on PATH (never a fixed path: a pyenv or
/// venv interpreter comes first on many machines).
enum TestPython {
    static let path: String = {
        let environment = ProcessInfo.processInfo.environment
        if let chosen = environment["VERTEBRA_PYTHON"], !chosen.isEmpty { return chosen }
        for directory in (environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(directory)/python3"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        // None on PATH: launching fails and says so (scripts/install-deps.sh installs one).
        return "python3"
    }()
}
