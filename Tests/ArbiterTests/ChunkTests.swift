import BundledScenarios
import Foundation
import GRDB
import Logging
import Testing
@testable import Arbiter
import GuestModel
import HostSimulator

/// The compact form of recorded rows: what goes in comes back (stall to a millionth, round times to
/// the microsecond), and a damaged blob is refused, never a crash.
@Suite("Chunks")
struct ChunkTests {
    func quantized(_ a: StoredAllocation) -> StoredAllocation {
        var a = a
        a.stall = a.stall.map { Double(AllocationChunk.micro($0)) / 1_000_000 }
        return a
    }

    func quantized(_ r: StoredRound) -> StoredRound {
        var r = r
        r.at = Double(RoundChunk.micros(r.at)) / 1_000_000
        return r
    }

    /// Rows whose every field changes now and then, by small and by huge steps, with absent values,
    /// texts this arbiter does not know, failed pushes and odd weights.
    func randomAllocations(_ n: Int, seed: UInt64) -> [StoredAllocation] {
        var rng = SplitMix64(seed: seed)
        var a = StoredAllocation.zero
        a.roundID = Int64.random(in: 1...1_000_000, using: &rng)
        var out = [StoredAllocation]()
        func some(_ p: Int) -> Bool { Int.random(in: 0..<100, using: &rng) < p }
        func size() -> Int64 { some(5) ? Int64.random(in: 0...Int64.max / 4, using: &rng) : Int64.random(in: 0...(64 << 20), using: &rng) }
        let texts = ["fresh", "stale", "none", "steady", "grow:demand", "shrink:idle", "held:from-the-future", "", "ünïcode ✓"]
        for _ in 0..<n {
            a.roundID += some(90) ? Int64.random(in: 1...40, using: &rng) : Int64.random(in: 1...1_000_000_000, using: &rng)
            if some(10) { a.status = texts.randomElement(using: &rng)! }
            if some(60) { a.workingSet = some(10) ? nil : size() }
            if some(30) { a.stall = some(20) ? nil : Double.random(in: 0...1, using: &rng) }
            if some(50) { a.floor = size() }
            if some(5) { a.floorKind = texts.randomElement(using: &rng)! }
            if some(5) { a.ceiling = size() }
            if some(3) { a.weight = some(50) ? Double.random(in: 0.01...1000, using: &rng) : Double(Int.random(in: 1...8, using: &rng)) }
            if some(50) { a.demand = size() }
            if some(50) { a.allocation = size() }
            if some(5) { a.basis = texts.randomElement(using: &rng)! }
            if some(40) { a.actual = size() }
            a.previousTarget = some(95) ? a.target : size()
            if some(30) { a.target = size() }
            if some(20) { a.reason = texts.randomElement(using: &rng)! }
            if some(10) { a.paced.toggle() }
            if some(20) {
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: a.pushed = nil; a.pushError = nil
                case 1: a.pushed = true; a.pushError = nil
                default: a.pushed = false; a.pushError = some(50) ? "libxl_set_memory_target: -3" : texts.randomElement(using: &rng)!
                }
            }
            out.append(a)
        }
        return out
    }

    @Test(arguments: [0, 1, 2, 500]) func allocationRowsComeBackAsTheyWent(n: Int) throws {
        for seed in 0..<UInt64(n > 2 ? 20 : 1) {
            let rows = randomAllocations(n, seed: seed)
            #expect(try AllocationChunk.decode(AllocationChunk.encode(rows)) == rows.map(quantized))
            let pages = rows.map { $0.scaled { $0 & ~3 } }       // every size whole pages: kept in pages
            #expect(try AllocationChunk.decode(AllocationChunk.encode(pages)) == pages.map(quantized))
        }
    }

    @Test func roundsComeBackAsTheyWent() throws {
        var rng = SplitMix64(seed: 7)
        var r = StoredRound(id: 5, at: 1_800_000_000.25, trigger: "startup", hostTotal: 64 << 20, hostFree: 1 << 20, reserve: 65536,
                            budget: 60 << 20, phase: "uncontended", fullSnapshot: true, policy: "arbiter", shadows: "", quietBefore: 0)
        var rounds = [StoredRound]()
        for _ in 0..<2000 {
            rounds.append(r)
            r.id += Int64.random(in: 1...3, using: &rng)
            r.at += Double.random(in: 0.1...20, using: &rng)
            if Bool.random(using: &rng) { r.trigger = ["report", "tick", "shutdown", "admin"].randomElement(using: &rng)! }
            if Int.random(in: 0..<10, using: &rng) == 0 { r.hostTotal = Int64.random(in: 0...(1 << 40), using: &rng) }
            r.hostFree = Int64.random(in: 0...(1 << 30), using: &rng)
            r.budget = Int64.random(in: 0...(1 << 30), using: &rng)
            if Int.random(in: 0..<20, using: &rng) == 0 { r.reserve = Int64.random(in: 0...(1 << 24), using: &rng) }
            if Int.random(in: 0..<5, using: &rng) == 0 { r.phase = ["uncontended", "contended", "infeasible"].randomElement(using: &rng)! }
            r.fullSnapshot = Int.random(in: 0..<30, using: &rng) == 0
            if Int.random(in: 0..<100, using: &rng) == 0 { r.policy = "qmemman"; r.shadows = "arbiter,squeezed" }
            r.quietBefore = Int64.random(in: 0...5, using: &rng)
        }
        #expect(try RoundChunk.decode(RoundChunk.encode(rounds)) == rounds.map(quantized))
    }

    /// Every cut of a blob is refused; random bytes are refused or read, never a crash.
    @Test func damagedBlobsAreRefused() throws {
        let blob = AllocationChunk.encode(randomAllocations(60, seed: 3))
        for k in 0..<blob.count {
            #expect(throws: ChunkError.self) { try AllocationChunk.decode(Array(blob[..<k])) }
        }
        var extra = blob
        extra.append(0)
        #expect(throws: ChunkError.self) { try AllocationChunk.decode(extra) }
        let rounds = RoundChunk.encode([StoredRound.zero, StoredRound.zero])
        for k in 0..<rounds.count {
            #expect(throws: ChunkError.self) { try RoundChunk.decode(Array(rounds[..<k])) }
        }
        var rng = SplitMix64(seed: 11)
        for _ in 0..<20_000 {
            var junk = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if !junk.isEmpty && Bool.random(using: &rng) { junk[0] = 1 }      // past the version check, often
            _ = try? AllocationChunk.decode(junk)
            _ = try? RoundChunk.decode(junk)
        }
        // A count larger than the blob could hold is refused before anything is reserved for it.
        var w = ChunkWriter()
        w.varint(1)
        w.varint(UInt64.max >> 1)
        #expect(throws: ChunkError.self) { try AllocationChunk.decode(w.bytes) }
    }

    /// What the control loop records, per domain and for the rounds, survives the round trip.
    @Test func aRecordedRunComesBack() async throws {
        let store = try await recordDefaultScenario(rounds: 150, step: 2)
        let (rows, rounds) = try store.db.read { db in
            (try Row.fetchAll(db, sql: "SELECT * FROM allocations ORDER BY domain_id, round_id"),
             try Row.fetchAll(db, sql: "SELECT * FROM rounds ORDER BY id").map(StoredRound.init(row:)))
        }
        let byDomain = Dictionary(grouping: rows, by: { $0["domain_id"] as Int64 }).mapValues { $0.map(StoredAllocation.init(row:)) }
        #expect(byDomain.count == 13 && rows.count > 150)
        var bytes = 0
        for (_, list) in byDomain {
            let blob = AllocationChunk.encode(list)
            bytes += blob.count
            #expect(try AllocationChunk.decode(blob) == list.map(quantized))
        }
        #expect(try RoundChunk.decode(RoundChunk.encode(rounds)) == rounds.map(quantized))
        #expect(bytes < rows.count * 40)      // well under the ~100 bytes a row takes as an SQL row
    }
}
