import Foundation

/// SIGINT and SIGTERM while a pipeline runs: the batch being written commits or rolls back as a whole,
/// no new batch starts, and the run is recorded as interrupted (resumable) instead of dying between
/// two statements. A second signal ends the process at once, as operators expect of Ctrl-C twice.
public enum Cancellation {
    /// The signal that asked the run to stop (nil while none has).
    public static var requested: Int32? { locked { $0.signal } }

    private struct State {
        var signal: Int32?
        var sources: [DispatchSourceSignal] = []
        var depth = 0
    }
    private static let lock = NSLock()
    // Guarded by `lock`.
    nonisolated(unsafe) private static var state = State()

    private static func locked<T>(_ body: (inout State) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&state)
    }

    /// Watches for SIGINT and SIGTERM until the matching `stopWatching` (calls nest).
    static func watch() {
        locked { state in
            state.depth += 1
            guard state.depth == 1 else { return }
            for number in [SIGINT, SIGTERM] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { Cancellation.request(number) }
                source.resume()
                state.sources.append(source)
            }
        }
    }

    static func stopWatching() {
        locked { state in
            state.depth -= 1
            guard state.depth == 0 else { return }
            for source in state.sources { source.cancel() }
            state.sources = []
            // A signal that arrived while watching has been handled (the run stopped); restore the default.
            for number in [SIGINT, SIGTERM] { signal(number, SIG_DFL) }
        }
    }

    /// Records the request; a second one exits at once with the shell's code for the signal.
    public static func request(_ number: Int32) {
        let second = locked { state -> Bool in
            defer { if state.signal == nil { state.signal = number } }
            return state.signal != nil
        }
        if second {
            FileHandle.standardError.write(Data("ferry: second signal: exiting now\n".utf8))
            _exit(128 + number)
        }
        FileHandle.standardError.write(
            Data("ferry: \(signalName(number)) received: stopping after the batch in flight (again to exit now)\n".utf8)
        )
    }

    static func signalName(_ number: Int32) -> String {
        switch number {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        default: "signal \(number)"
        }
    }
}

/// A run stopped on request (SIGINT, SIGTERM) between two batches.
public struct Cancelled: Error, CustomStringConvertible, Sendable {
    public let signal: Int32
    public var description: String { "stopped by \(Cancellation.signalName(signal))" }
    /// The shell's exit code for the signal (130 for SIGINT, 143 for SIGTERM).
    public var exitCode: Int32 { 128 + signal }
}
