import Foundation

/// Threads that each own, for their whole life, what `open` makes for them (a database session and the
/// state that lives on it). Work reaches an owner as a closure run on its own thread, so a session is
/// only ever used by the thread that opened it; the caller hands out one round of work and waits for
/// all of it (`perform`).
final class SessionThreads<Owned>: @unchecked Sendable {
    /// One thread's hand-over point. The semaphores order every access to `work` and `outcome`: the
    /// caller writes `work` before `go`, the thread writes `outcome` before `done`.
    private final class Seat: @unchecked Sendable {
        let go = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        var work: ((Owned) throws -> Any)?
        var outcome: Result<Any, any Error>?
        var closing = false
    }

    private let seats: [Seat]
    private var closed = false

    var count: Int { seats.count }

    /// Starts `count` threads and waits until each has opened what it owns; the first failure to open is
    /// thrown (after the others are closed).
    init(count: Int, name: String, open: @escaping @Sendable (Int) throws -> Owned) throws {
        seats = (0..<max(1, count)).map { _ in Seat() }
        for (index, seat) in seats.enumerated() {
            let thread = Thread {
                var owned: Owned?
                do { owned = try open(index) } catch { seat.outcome = .failure(error) }
                seat.done.signal()
                while true {
                    seat.go.wait()
                    if seat.closing { break }
                    if let owned, let work = seat.work { seat.outcome = Result { try work(owned) } }
                    seat.work = nil
                    seat.done.signal()
                }
                owned = nil  // released (its session closed) on the thread that opened it
                seat.done.signal()
            }
            thread.name = seats.count == 1 ? name : "\(name) \(index + 1)"
            thread.start()
        }
        for seat in seats { seat.done.wait() }
        for seat in seats {
            if case .failure(let error) = seat.outcome {
                close()
                throw error
            }
        }
    }

    deinit { close() }

    /// Runs `work[i]` on thread i (nil: thread i has nothing this round) and waits for every one of them;
    /// returns what each gave or threw, by thread. A failure on one thread does not stop the others.
    func perform<Result>(_ work: [((Owned) throws -> Result)?]) -> [Swift.Result<Result, any Error>?] {
        precondition(work.count <= seats.count && !closed)
        for (index, item) in work.enumerated() {
            guard let item else { continue }
            seats[index].outcome = nil
            seats[index].work = { try item($0) }
            seats[index].go.signal()
        }
        return work.enumerated().map { index, item in
            guard item != nil else { return nil }
            seats[index].done.wait()
            return seats[index].outcome.map { outcome in outcome.map { $0 as! Result } }
        }
    }

    /// Runs the same work on every thread; throws the first error (by thread) once all have finished.
    func performOnEach(_ work: @escaping (Int, Owned) throws -> Void) throws {
        for outcome in perform((0..<seats.count).map { index in { try work(index, $0) } }) {
            if case .failure(let error) = outcome { throw error }
        }
    }

    /// Ends every thread, releasing what it owns on that thread; waits for them.
    func close() {
        guard !closed else { return }
        closed = true
        for seat in seats {
            seat.closing = true
            seat.go.signal()
        }
        for seat in seats { seat.done.wait() }
    }
}
