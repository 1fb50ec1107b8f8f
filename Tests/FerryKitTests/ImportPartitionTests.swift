import Foundation
import Synchronization
import Testing
@testable import FerryKit

struct ImportPartitionTests {
    static let tenant = "00000000-0000-4000-8000-000000000001"

    @Test func everySpellingOfOneKeyGoesToOneSession() {
        // Spellings some database's lower() calls equal: ASCII case, a Turkish capital I and dotless i,
        // the dotted capital İ (lower-cased to i or to i + a combining dot), the Kelvin sign, full width.
        let families = [
            ["ada@example.com", "ADA@Example.COM", "Ada@example.com"],
            [
                "iris@example.com", "IRIS@example.com", "ırıs@example.com", "İris@example.com",
                "i\u{307}ris@example.com",
            ],
            ["kim@example.com", "\u{212A}im@example.com"],
            ["bob@example.com", "ｂｏｂ@example.com"],
            ["josé@example.com", "JOSÉ@example.com", "jose\u{301}@example.com"],
        ]
        for count in [2, 3, 7] {
            for family in families {
                let shares = Set(family.map { ImportPartition.of(tenant: Self.tenant, email: $0, among: count) })
                #expect(shares.count == 1, "\(family) went to sessions \(shares) of \(count)")
            }
        }
    }

    @Test func theDivisionIsTheSameOnEveryRunAndSpreadsTheKeys() {
        // A resumed run divides its lines as its first part did: fixed, not seeded per process.
        // FNV-1a of "<tenant>\0<email>", as computed independently (Python) when the division was made.
        #expect(ImportPartition.of(tenant: Self.tenant, email: "ada@example.com", among: 2) == 1)
        #expect(ImportPartition.of(tenant: Self.tenant, email: "barbara@example.com", among: 2) == 0)
        #expect(ImportPartition.of(tenant: Self.tenant, email: "grace@example.com", among: 3) == 2)
        #expect(ImportPartition.of(tenant: Self.tenant, email: "edsger@example.com", among: 3) == 1)
        var counts = [0, 0, 0]
        for index in 0..<30_000 {
            counts[ImportPartition.of(tenant: Self.tenant, email: "person\(index)@example.com", among: 3)] += 1
        }
        #expect(counts.allSatisfy { (9_000...11_000).contains($0) }, "\(counts)")
        #expect(ImportPartition.of(tenant: Self.tenant, email: "ada@example.com", among: 1) == 0)
        #expect(ImportPartition.of(.rejected(line: 4, reason: "x"), among: 3) == 0)
    }

    @Test func uuidsAreReadAsFoundationReadsThemExceptItsShortForm() {
        // Foundation's sscanf skips a leading space and reads the 35 characters after it as another UUID
        // (…678 as …6708); PostgreSQL refuses it.
        #expect(UUID(uuidString: " abcdef01-2345-6789-abcd-ef012345678") != nil)
        #expect(canonicalUUID(" abcdef01-2345-6789-abcd-ef012345678") == nil)
        var texts = [
            "00000000-0000-4000-8000-000000000001", "ABCDEF01-2345-6789-ABCD-EF0123456789",
            "abcdef01-2345-6789-abcd-ef0123456789", "{abcdef01-2345-6789-abcd-ef0123456789}",
            "abcdef0123456789abcdef0123456789", "abcdef01-2345-6789-abcd-ef01234567890",
            "abcdef01-2345-6789-abcd_ef0123456789", "gbcdef01-2345-6789-abcd-ef0123456789", "", "x",
            "abcdef01-2345-6789-abcd-ef012345678é", "abcdef01-2345-6789-abcd-ef012345678",
        ]
        for _ in 0..<200 { texts.append(UUID().uuidString) }
        for text in texts {
            #expect(canonicalUUID(text) == UUID(uuidString: text)?.uuidString.lowercased(), "\(text)")
        }
    }
}

struct SessionThreadsTests {
    /// What a thread opened, and every thread that used it.
    final class Owned: @unchecked Sendable {
        let opener = Thread.current
        var usedOnOtherThreads = 0
    }

    @Test func eachOwnedValueIsUsedOnlyOnTheThreadThatOpenedIt() throws {
        let threads = try SessionThreads<Owned>(count: 3, name: "test") { _ in Owned() }
        let owners = Mutex<[ObjectIdentifier]>([])
        for round in 0..<50 {
            let results = threads.perform(
                (0..<3).map { index -> ((Owned) throws -> Int)? in
                    // Some rounds leave a thread idle.
                    index == round % 4
                        ? nil
                        : { owned in
                            if owned.opener != Thread.current { owned.usedOnOtherThreads += 1 }
                            return index * 100 + round
                        }
                })
            for (index, result) in results.enumerated() {
                if index == round % 4 {
                    #expect(result == nil)
                } else {
                    #expect(try result?.get() == index * 100 + round)
                }
            }
        }
        try threads.performOnEach { _, owned in
            #expect(owned.usedOnOtherThreads == 0)
            owners.withLock { $0.append(ObjectIdentifier(owned)) }
        }
        #expect(Set(owners.withLock { $0 }).count == 3)
        threads.close()
    }

    @Test func aFailureOnOneThreadIsReportedForItAndTheOthersFinish() throws {
        struct Refused: Error, Equatable { let index: Int }
        let finished = Mutex(0)
        let threads = try SessionThreads<Int>(count: 3, name: "test") { $0 }
        let results = threads.perform(
            (0..<3).map { _ -> ((Int) throws -> Int)? in
                { index in
                    if index == 1 { throw Refused(index: index) }
                    Thread.sleep(forTimeInterval: 0.05)
                    finished.withLock { $0 += 1 }
                    return index
                }
            })
        #expect(finished.withLock { $0 } == 2)
        #expect(try results[0]?.get() == 0)
        #expect(try results[2]?.get() == 2)
        #expect(throws: Refused(index: 1)) { try results[1]?.get() }
    }

    @Test func aThreadThatCannotOpenFailsTheStart() {
        struct NoSession: Error {}
        #expect(throws: NoSession.self) {
            _ = try SessionThreads<Int>(count: 2, name: "test") { index in
                if index == 1 { throw NoSession() }
                return index
            }
        }
    }
}
