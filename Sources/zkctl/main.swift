import Glibc
import ZKCtl

// The command runs as a task and exits the process from there. The main thread serves the
// client's blocking calls meanwhile (closing the session, say), so no thread is made for them.
// (Swift's async main would park the main thread in dispatch_main, which ends it with
// pthread_exit: an unwind of the main stack, then an exit through yet another thread, paid by
// every one-shot command.)
func start(_ arguments: [String]) {
    Task.detached { exit(await ZKCtl.run(arguments)) }
}

start(Array(CommandLine.arguments.dropFirst()))
ZKCtl.serveBlockingWork()
