import Foundation

/// A value that is only ever touched while a lock is held.
///
/// Why `@unchecked Sendable` is sound here: `value` is private and the only way to reach it is
/// `withLock`, which holds `lock` for the whole access; `Value` is itself `Sendable`, so what goes in
/// through `init` and what comes out of the closure can cross threads. This is the one unchecked
/// type in the module; everything else is checked by the compiler.
final class LockedState<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) {
        self.value = value
    }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
