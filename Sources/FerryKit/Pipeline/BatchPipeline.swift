import Foundation

/// A small blocking queue between two threads; `capacity` bounds memory, whatever the input size.
final class BoundedChannel<Element: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var buffer: [Element] = []
    private var closed = false
    private let capacity: Int

    init(capacity: Int) { self.capacity = max(1, capacity) }

    /// Blocks while full. Returns false when the receiver has closed the channel.
    func send(_ element: Element) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while buffer.count >= capacity && !closed { condition.wait() }
        guard !closed else { return false }
        buffer.append(element)
        condition.broadcast()
        return true
    }

    /// Blocks while empty. Returns nil once closed and drained.
    func receive() -> Element? {
        condition.lock()
        defer { condition.unlock() }
        while buffer.isEmpty && !closed { condition.wait() }
        guard !buffer.isEmpty else { return nil }
        let element = buffer.removeFirst()
        condition.broadcast()
        return element
    }

    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}

/// Runs a job's stages concurrently: extract on one thread, transform on another (spread over
/// every core), the sink on the calling thread, with at most `depth` batches between stages so
/// memory stays flat whatever the table size. Plan and apply differ only in the sink they pass.
/// An error in any stage stops the others and is thrown once; `stopRequested` (by default SIGINT or
/// SIGTERM) is checked before each batch reaches the sink and ends the run with `Cancelled`.
public enum BatchPipeline {
    public static func run<Raw: Sendable, Batch: Sendable>(
        depth: Int = 2,
        stopRequested: @escaping @Sendable () -> Int32? = { Cancellation.requested },
        extract: @escaping @Sendable () throws -> Raw?,
        transform: @escaping @Sendable (Raw) -> Batch,
        consume: (Batch) throws -> Void
    ) throws {
        Cancellation.watch()
        defer { Cancellation.stopWatching() }
        let extracted = BoundedChannel<PipelineMessage<Raw>>(capacity: depth)
        let transformed = BoundedChannel<PipelineMessage<Batch>>(capacity: depth)
        let stagesDone = DispatchGroup()
        startThread(stagesDone) {
            defer { extracted.close() }
            do {
                while stopRequested() == nil, let raw = try extract() {
                    if !extracted.send(.batch(raw)) { return }
                }
            } catch {
                _ = extracted.send(.failed(SendableError(error)))
            }
        }
        startThread(stagesDone) {
            defer { transformed.close() }
            while let message = extracted.receive() {
                switch message {
                case .batch(let raw):
                    if !transformed.send(.batch(transform(raw))) { extracted.close(); return }
                case .failed(let error):
                    _ = transformed.send(.failed(error))
                    return
                }
            }
        }
        defer {
            // On an early exit, unblock and wait for both stages before their connections go away.
            transformed.close()
            extracted.close()
            stagesDone.wait()
        }
        while let message = transformed.receive() {
            if let signal = stopRequested() { throw Cancelled(signal: signal) }
            switch message {
            case .batch(let batch): try consume(batch)
            case .failed(let error): throw error.underlying
            }
        }
        // The extractor also stops on a request: what it did not read is not done.
        if let signal = stopRequested() { throw Cancelled(signal: signal) }
    }

    private static func startThread(_ group: DispatchGroup, _ body: @escaping @Sendable () -> Void) {
        group.enter()
        let thread = Thread {
            body()
            group.leave()
        }
        thread.stackSize = 8 << 20
        thread.start()
    }
}

/// Maps a batch on every core, keeping order: the transform is pure, so chunks are independent.
public func parallelMap<Element: Sendable, Result: Sendable>(
    _ items: [Element], workers maximum: Int = ProcessInfo.processInfo.activeProcessorCount,
    _ transform: @escaping @Sendable (Element) -> Result
) -> [Result] {
    let workers = min(maximum, max(1, items.count / 256))
    guard workers > 1 else { return items.map(transform) }
    let chunk = (items.count + workers - 1) / workers
    let results = UnsafeMutableBufferPointer<Result?>.allocate(capacity: items.count)
    results.initialize(repeating: nil)
    defer {
        results.deinitialize()
        results.deallocate()
    }
    nonisolated(unsafe) let output = results
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
        let range = (worker * chunk)..<min(items.count, (worker + 1) * chunk)
        for index in range { output[index] = transform(items[index]) }
    }
    return results.map { $0! }
}

enum PipelineMessage<Batch: Sendable>: Sendable {
    case batch(Batch)
    case failed(SendableError)
}

/// Carries an error across threads; the errors ferry throws are value types.
struct SendableError: Error, @unchecked Sendable {
    let underlying: Error
    init(_ error: Error) { underlying = error }
}
