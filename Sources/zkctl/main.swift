import CStartup
import Glibc
import ZKCtl

// The command runs as a task that prefers the main thread, and exits the process from there.
// The main thread runs its jobs (and its task groups' children) and the client's blocking calls
// (closing the session, say), so a one-shot command starts no thread of the global pool and none
// for those calls. (Swift's async main would park the main thread in dispatch_main, which ends
// it with pthread_exit: an unwind of the main stack, then an exit through yet another thread.)
func start(_ arguments: [String]) {
    Task(executorPreference: ZKCtl.mainThread) { exit(await ZKCtl.run(arguments)) }
}

// argv as the C library passed it (Sources/CStartup says why not CommandLine.arguments), without
// argv[0]; String(cString:) repairs bytes that are not UTF-8 as CommandLine.arguments does.
func arguments() -> [String] {
    var count: Int32 = 0
    let argv = zkctl_startup_arguments(&count)
    return count < 2 ? [] : (1..<Int(count)).map { argv[$0].map { String(cString: $0) } ?? "" }
}

start(arguments())
ZKCtl.serveMainThread()
