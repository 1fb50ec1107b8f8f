import Foundation
import Synchronization
import Testing
@testable import FerryKit

/// A counter several pipeline threads share in these tests.
final class Tally: Sendable {
    private let value = Mutex(0)
    private let peak = Mutex(0)
    func add(_ delta: Int) {
        value.withLock { value in
            value += delta
            let now = value
            peak.withLock { $0 = max($0, now) }
        }
    }
    var current: Int { value.withLock { $0 } }
    var highest: Int { peak.withLock { $0 } }
}

struct StageError: Error, Equatable { let stage: String }

@Suite("The batch pipeline: order, back-pressure, errors, stop requests")
struct BatchPipelineTests {
    @Test func batchesReachTheSinkInOrderWhateverTheTransformTakes() throws {
        let next = Tally()
        var seen: [Int] = []
        try BatchPipeline.run(
            stopRequested: { nil },
            extract: { () -> Int? in
                next.add(1)
                return next.current <= 200 ? next.current : nil
            },
            transform: { (number: Int) -> Int in
                if number % 7 == 0 { Thread.sleep(forTimeInterval: 0.002) }
                return number * 10
            },
            consume: { seen.append($0) })
        #expect(seen == (1...200).map { $0 * 10 })
    }

    @Test func aSlowSinkHoldsOnlyAFewBatchesInFlight() throws {
        let read = Tally(), inFlight = Tally()
        var consumed = 0
        try BatchPipeline.run(
            depth: 2, stopRequested: { nil },
            extract: { () -> Int? in
                read.add(1)
                guard read.current <= 50 else { return nil }
                inFlight.add(1)
                return read.current
            },
            transform: { (number: Int) -> Int in number },
            consume: { _ in
                Thread.sleep(forTimeInterval: 0.003)
                inFlight.add(-1)
                consumed += 1
            })
        #expect(consumed == 50)
        // Two queues of two, one batch in each stage's hands, one in the sink: never the whole input.
        #expect(inFlight.highest <= 7, "peak \(inFlight.highest) batches in flight")
    }

    @Test func anExtractErrorStopsTheRunAndIsThrownOnce() throws {
        let read = Tally()
        var consumed = 0
        #expect(throws: StageError(stage: "extract")) {
            try BatchPipeline.run(
                stopRequested: { nil },
                extract: { () -> Int? in
                    read.add(1)
                    if read.current == 5 { throw StageError(stage: "extract") }
                    return read.current
                },
                transform: { (number: Int) -> Int in number },
                consume: { _ in consumed += 1 })
        }
        #expect(consumed == 4, "the batches before the failure were consumed, none after")
        #expect(read.current == 5, "nothing was read after the failure")
    }

    @Test func aSinkErrorStopsExtractAndTransform() throws {
        let read = Tally()
        #expect(throws: StageError(stage: "sink")) {
            try BatchPipeline.run(
                stopRequested: { nil },
                extract: { () -> Int? in
                    read.add(1)
                    return read.current <= 10_000 ? read.current : nil
                },
                transform: { (number: Int) -> Int in number },
                consume: { number in if number == 3 { throw StageError(stage: "sink") } })
        }
        // The stages stop at once (joined before run returns), not after reading everything.
        #expect(read.current < 20, "read \(read.current) batches")
    }

    @Test func aStopRequestEndsTheRunBeforeTheNextBatchReachesTheSink() throws {
        let read = Tally()
        let stop = Mutex<Int32?>(nil)
        var consumed: [Int] = []
        #expect {
            try BatchPipeline.run(
                stopRequested: { stop.withLock { $0 } },
                extract: { () -> Int? in
                    read.add(1)
                    return read.current <= 1_000 ? read.current : nil
                },
                transform: { (number: Int) -> Int in number },
                consume: { number in
                    consumed.append(number)
                    if number == 3 { stop.withLock { $0 = SIGTERM } }
                })
        } throws: { ($0 as? Cancelled)?.signal == SIGTERM }
        #expect(consumed == [1, 2, 3])
        #expect(read.current < 20)
    }
}
