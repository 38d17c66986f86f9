import Foundation

/// Servers shared by every test of one test process.
///
/// Starting a server costs about a second, so tests that only need *a* server share one, and keep
/// out of each other's way by working under their own znode prefix (`uniqueZnodePath(_:)`). They
/// must not stop, restart or shut down a shared server; tests that do need their own
/// (`ZooKeeperServer.standalone()` / `.ensemble()`).
public enum SharedServers {
    private struct State: Sendable {
        var standalone: ZooKeeperServer?
        var startFailure: ZooKeeperServerError?
        var exitHookInstalled = false
    }

    private static let state = LockedState(State())

    /// The shared standalone server, started on first use (thread-safe: concurrent first callers
    /// wait for the one start). Stopped when the process exits normally; if it crashes, the
    /// server's watchdog stops it. If the start fails, every caller gets the same error at once
    /// rather than waiting for a start that fails again.
    public static func standalone() throws -> ZooKeeperServer {
        try state.withLock { state in
            if let server = state.standalone, !server.isShutDown {
                return server
            }
            if let failure = state.startFailure {
                throw failure
            }
            if !state.exitHookInstalled {
                atexit { SharedServers.shutdownAll() }
                state.exitHookInstalled = true
            }
            do {
                let server = try ZooKeeperServer.standalone()
                state.standalone = server
                return server
            } catch let error as ZooKeeperServerError {
                state.startFailure = error
                throw error
            }
        }
    }

    /// Stops the shared servers now (the exit hook does this anyway).
    public static func shutdownAll() {
        let server = state.withLock { state -> ZooKeeperServer? in
            defer { state.standalone = nil }
            return state.standalone
        }
        server?.shutdown()
    }
}
