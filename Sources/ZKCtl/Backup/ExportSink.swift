import Glibc
import Synchronization
import ZooKeeper
import ZooKeeperRecipes

/// Where an export goes: stdout through `Output`, or FILE written as FILE.partial and renamed
/// once complete (so a failed export never leaves a file that looks whole).
final class ExportSink {
    private let output: Output
    /// FILE.partial, open for writing (nil: stdout).
    private var handle: Int32?
    private let finalPath: String?
    private let partialPath: String?
    private var buffer: [UInt8] = []

    init(file: String?, output: Output) throws {
        self.output = output
        guard let file else {
            handle = nil; finalPath = nil; partialPath = nil
            return
        }
        let partial = file + ".partial"
        // A new empty file in place of any old one (a link is replaced, not followed).
        unlink(partial)
        let fd = open(partial, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard fd >= 0 else {
            throw CommandError(ExitCode.cannotCreate, "cannot write '\(partial)'")
        }
        handle = fd; finalPath = file; partialPath = partial
    }

    func write(_ text: String) {
        if handle == nil { output.write(text) } else { buffer.append(contentsOf: text.utf8) }
    }

    func flushIfLarge() throws {
        if handle == nil { try output.check() }
        if buffer.count >= 1 << 16 { try flush() }
    }

    private func flush() throws {
        guard let handle, !buffer.isEmpty else { return }
        if let failure = WriteFailures.writeAll(handle, buffer) {
            throw CommandError(ExitCode.cannotCreate, "cannot write '\(partialPath ?? "")': \(String(cString: strerror(failure)))")
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Completes the document: renames the file into place, or flushes stdout and throws if
    /// any of it was lost (so that the summary never claims a document that was not written).
    func finish() throws {
        guard let handle, let partialPath, let finalPath else {
            try output.finish()
            return
        }
        try flush()
        self.handle = nil
        if close(handle) != 0 && errno != EINTR {
            let reason = String(cString: strerror(errno))
            unlink(partialPath)
            throw CommandError(ExitCode.cannotCreate, "cannot write '\(partialPath)': \(reason)")
        }
        if rename(partialPath, finalPath) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(partialPath)
            throw CommandError(ExitCode.cannotCreate, "cannot rename '\(partialPath)' to '\(finalPath)': \(reason)")
        }
    }

    func abandon() {
        guard let handle, let partialPath else { return }
        self.handle = nil
        close(handle)
        unlink(partialPath)
    }
}
