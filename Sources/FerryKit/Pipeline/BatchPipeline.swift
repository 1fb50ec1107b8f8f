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

/// Runs a job's stages on two cores: the producer (extract and transform) on its own thread,
/// the sink on the calling thread, with at most `depth` batches in between. Plan and apply
/// differ only in the sink they pass.
public enum BatchPipeline {
    public static func run<Batch: Sendable>(
        depth: Int = 2,
        produce: @escaping @Sendable () throws -> Batch?,
        consume: (Batch) throws -> Void
    ) throws {
        let channel = BoundedChannel<PipelineMessage<Batch>>(capacity: depth)
        let finished = DispatchSemaphore(value: 0)
        let producer = Thread {
            defer { channel.close(); finished.signal() }
            do {
                while let batch = try produce() {
                    if !channel.send(.batch(batch)) { return }
                }
            } catch {
                _ = channel.send(.failed(SendableError(error)))
            }
        }
        producer.stackSize = 8 << 20
        producer.start()
        defer {
            channel.close()
            finished.wait()
        }
        while let message = channel.receive() {
            switch message {
            case .batch(let batch): try consume(batch)
            case .failed(let error): throw error.underlying
            }
        }
    }
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
