import Glibc
import ZKCtl

// The command runs as a task and exits the process from there; the main thread only waits.
// (Swift's async main would park the main thread in dispatch_main, which ends it with
// pthread_exit: an unwind of the main stack, then an exit through yet another thread, paid by
// every one-shot command.)
func start(_ arguments: [String]) {
    Task.detached { exit(await ZKCtl.run(arguments)) }
}

start(Array(CommandLine.arguments.dropFirst()))
while true { pause() }
