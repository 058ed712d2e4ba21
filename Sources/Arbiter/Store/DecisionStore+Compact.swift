import Foundation
import GRDB

/// Compact hours (V0005): an hour that ended before the last full hour, once folded into the hourly
/// figures, becomes one row holding its rounds and every domain's allocation rows as blobs of changes
/// (`RoundChunk`, `AllocationChunk`); its rows are removed. Reads (`recordedRows`) merge both forms, so
/// `history`, `explain`, `list` and `report` answer the same before and after.
extension DecisionStore {
    /// The most hours one retention pass compacts (an hour of 100 domains takes ~0.3 s; a store from
    /// before V0005 catches up over passes, its older hours staying rows meanwhile).
    static let compactBatch = 6
    /// And a retention pass stops compacting or thinning after this long (at least one hour each), so a
    /// large host's daemon loop (and its systemd watchdog) never waits long for it.
    static let passBudget: Duration = .seconds(2)

    /// An hour's allocation rows: the count of domains, then per domain its id, its chunk's length in
    /// bytes and the chunk.
    public static func encodeSections(_ byDomain: [(domain: Int64, rows: [StoredAllocation])]) -> [UInt8] {
        var w = ChunkWriter()
        w.varint(UInt64(byDomain.count))
        for (domain, rows) in byDomain {
            let chunk = AllocationChunk.encode(rows)
            w.varint(UInt64(bitPattern: domain))
            w.varint(UInt64(chunk.count))
            w.append(chunk)
        }
        return w.bytes
    }

    /// The domains of an hour's allocation blob, each with its chunk (not yet decoded).
    public static func sections(_ bytes: [UInt8]) throws -> [(domain: Int64, chunk: ArraySlice<UInt8>)] {
        var r = ChunkReader(bytes[...])
        let n = try r.count()
        var out = [(domain: Int64, chunk: ArraySlice<UInt8>)]()
        for _ in 0..<n {
            let domain = Int64(bitPattern: try r.varint())
            out.append((domain, try r.slice(Int(clamping: try r.varint()))))
        }
        guard r.atEnd else { throw ChunkError(description: "hour blob has bytes after its \(n) domains") }
        return out
    }

    /// Compacts the hours that ended before `before` (the previous hour's start: the last full hour stays
    /// rows), are folded into the hourly figures and hold no shadow targets, oldest first, at most
    /// `compactBatch`. Returns the hours compacted.
    @discardableResult
    static func compact(_ db: Database, before: Double) throws -> Int {
        let folded = try foldedUntil(db)
        let hours = try Int64.fetchAll(db, sql: """
            SELECT DISTINCT CAST(at / 3600 AS INTEGER) AS h FROM rounds WHERE at >= 0 AND at < ? AND id <= ?
              AND CAST(at / 3600 AS INTEGER) NOT IN (SELECT hour FROM compact_hours)
              AND CAST(at / 3600 AS INTEGER) NOT IN (SELECT DISTINCT CAST(r.at / 3600 AS INTEGER) FROM shadow_targets s JOIN rounds r ON r.id = s.round_id)
            ORDER BY h LIMIT ?
            """, arguments: [before, folded, compactBatch])
        let deadline = ContinuousClock.now + passBudget
        var done = 0
        for hour in hours {
            if done > 0 && ContinuousClock.now > deadline { break }
            let window: StatementArguments = [Double(hour) * 3600, Double(hour + 1) * 3600, folded]
            let rounds = try Row.fetchAll(db, sql: "SELECT * FROM rounds WHERE at >= ? AND at < ? AND id <= ? ORDER BY id", arguments: window)
                .map(StoredRound.init(row:))
            guard let first = rounds.first?.id, let last = rounds.last?.id else { continue }
            let shadowed = try Bool.fetchOne(db, sql: """
                SELECT EXISTS (SELECT 1 FROM shadow_targets s JOIN rounds r ON r.id = s.round_id WHERE r.at >= ? AND r.at < ? AND r.id <= ?)
                """, arguments: window) ?? false
            if shadowed { continue }
            var byDomain = [Int64: [StoredAllocation]]()
            var count = 0
            for row in try Row.fetchAll(db, sql: """
                SELECT a.* FROM rounds r JOIN allocations a ON a.round_id = r.id WHERE r.at >= ? AND r.at < ? AND r.id <= ?
                ORDER BY a.domain_id, a.round_id
                """, arguments: window) {
                byDomain[row["domain_id"], default: []].append(StoredAllocation(row: row))
                count += 1
            }
            try db.execute(sql: """
                INSERT INTO compact_hours (hour, first_round, last_round, round_count, row_count, rounds, allocations) VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [hour, first, last, rounds.count, count, Data(RoundChunk.encode(rounds)),
                                 Data(encodeSections(byDomain.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))])
            try db.execute(sql: "DELETE FROM rounds WHERE at >= ? AND at < ? AND id <= ?", arguments: window)
            done += 1
        }
        return done
    }

    /// Thins the compact hours wholly older than `cutoff` (as retention thins rows): each keeps the first
    /// full snapshot of every `interval` and the rounds at which an alert was raised. Returns the rounds
    /// dropped.
    static func thinCompact(_ db: Database, cutoff: Double, interval: Double) throws -> Int {
        var dropped = 0
        let hours = try Row.fetchAll(db, sql: "SELECT hour, rounds, allocations FROM compact_hours WHERE thinned = 0 AND (hour + 1) * 3600 <= ? ORDER BY hour",
                                     arguments: [cutoff])
        guard let firstHour = hours.first?["hour"] as Int64? else { return 0 }
        // The intervals that already have their snapshot in an hour thinned before (an interval may span hours).
        func bucket(_ t: Double) -> Int64 { Int64((t / interval).rounded(.down)) }
        var seen = Set<Int64>()
        let bucketStart = (Double(bucket(Double(firstHour) * 3600)) * interval / 3600).rounded(.down)
        for blob in try Data.fetchAll(db, sql: "SELECT rounds FROM compact_hours WHERE thinned = 1 AND hour >= ? AND hour < ?",
                                      arguments: [bucketStart, firstHour]) {
            for r in try RoundChunk.decode(Array(blob)) where r.fullSnapshot { seen.insert(bucket(r.at)) }
        }
        let deadline = ContinuousClock.now + passBudget
        for (k, r) in hours.enumerated() {
            if k > 0 && ContinuousClock.now > deadline { break }
            let hour: Int64 = r["hour"]
            let rounds = try RoundChunk.decode(Array(r["rounds"] as Data))
            // An alert names its round by time (compaction cleared its round id), to the microsecond as kept.
            let alerts = Set(try Double.fetchAll(db, sql: "SELECT at FROM alerts WHERE at >= ? AND at < ?",
                                                 arguments: [Double(hour) * 3600 - 1, Double(hour + 1) * 3600 + 1]).map(RoundChunk.micros))
            let kept = rounds.filter { round in
                if alerts.contains(RoundChunk.micros(round.at)) { return true }
                guard round.fullSnapshot else { return false }
                return seen.insert(bucket(round.at)).inserted
            }
            let ids = Set(kept.map(\.id))
            dropped += rounds.count - kept.count
            var left = [(domain: Int64, rows: [StoredAllocation])]()
            var count = 0
            for s in try sections(Array(r["allocations"] as Data)) {
                let rows = try AllocationChunk.decode(s.chunk, keep: ids.contains)
                if !rows.isEmpty { left.append((s.domain, rows)); count += rows.count }
            }
            guard let first = kept.first?.id, let last = kept.last?.id else {
                try db.execute(sql: "DELETE FROM compact_hours WHERE hour = ?", arguments: [hour])
                continue
            }
            try db.execute(sql: """
                UPDATE compact_hours SET thinned = 1, first_round = ?, last_round = ?, round_count = ?, row_count = ?, rounds = ?, allocations = ?
                WHERE hour = ?
                """, arguments: [first, last, kept.count, count, Data(RoundChunk.encode(kept)), Data(encodeSections(left)), hour])
        }
        return dropped
    }

    /// One recorded allocation row with its round, from either form.
    struct RecordedRow {
        var round: StoredRound
        var domain: Int64
        var row: StoredAllocation
    }

    /// A compact hour as read: its rounds decoded, its allocation blob not yet.
    struct CompactHour {
        var rounds: [StoredRound]
        var allocations: [UInt8]
    }

    /// The compact hours that may hold rounds in `from...to`, oldest first.
    static func compactHours(_ db: Database, from: Double, to: Double) throws -> [CompactHour] {
        guard try db.tableExists("compact_hours") else { return [] }
        func hour(_ t: Double) -> Double { Swift.max(-1e12, Swift.min(1e12, (t / 3600).rounded(.down))) }
        return try Row.fetchAll(db, sql: "SELECT rounds, allocations FROM compact_hours WHERE hour >= ? AND hour <= ? ORDER BY hour",
                                arguments: [hour(from), hour(to)]).map {
            CompactHour(rounds: try RoundChunk.decode(Array($0["rounds"] as Data)), allocations: Array($0["allocations"] as Data))
        }
    }

    /// The rounds of the compact hours in `from...to`, oldest first.
    static func compactRounds(_ db: Database, from: Double, to: Double) throws -> [StoredRound] {
        try compactHours(db, from: from, to: to).flatMap(\.rounds).filter { $0.at >= from && $0.at <= to }
    }

    /// The phase of the round recorded before round `id`, in either form.
    static func phaseBefore(_ db: Database, round id: Int64) throws -> String? {
        let row = try Row.fetchOne(db, sql: "SELECT id, phase FROM rounds WHERE id < ? ORDER BY id DESC LIMIT 1", arguments: [id])
        var best: (id: Int64, phase: String)? = row.map { ($0["id"], $0["phase"]) }
        if try db.tableExists("compact_hours"),
           let blob = try Data.fetchOne(db, sql: "SELECT rounds FROM compact_hours WHERE first_round < ? ORDER BY first_round DESC LIMIT 1", arguments: [id]),
           let r = try RoundChunk.decode(Array(blob)).last(where: { $0.id < id }), r.id > (best?.id ?? Int64.min) {
            best = (r.id, r.phase)
        }
        return best?.phase
    }

    /// Every recorded allocation row of `domains` (nil: every domain) whose round is in `from...to` (and
    /// in `rounds`, when given), from the rows and the compact hours, ordered by domain, then time and round.
    /// `sorted: false` leaves them in no particular order (the caller sorts what it keeps).
    /// `hours`: the compact hours of the period, when the caller has read them already.
    static func recordedRows(_ db: Database, from: Double, to: Double, domains: Set<Int64>?, rounds only: Set<Int64>? = nil,
                             sorted: Bool = true, hours: [CompactHour]? = nil) throws -> [RecordedRow] {
        var out = [RecordedRow]()
        var filter = domains.map { "AND a.domain_id IN (\($0.map(String.init).joined(separator: ",")))" } ?? ""
        if let only { filter += " AND r.id IN (\(only.map(String.init).joined(separator: ",")))" }
        for r in try Row.fetchAll(db, sql: """
            SELECT r.*, a.* FROM rounds r JOIN allocations a ON a.round_id = r.id WHERE r.at >= ? AND r.at <= ? \(filter)
            """, arguments: [from, to]) {
            out.append(RecordedRow(round: StoredRound(row: r), domain: r["domain_id"], row: StoredAllocation(row: r)))
        }
        for h in try hours ?? compactHours(db, from: from, to: to) {
            var rounds = [Int64: StoredRound]()
            for r in h.rounds where only?.contains(r.id) ?? true { rounds[r.id] = r }
            if rounds.isEmpty { continue }
            for s in try sections(h.allocations) where domains?.contains(s.domain) ?? true {
                for row in try AllocationChunk.decode(s.chunk, keep: only.map { only in { only.contains($0) } }) {
                    guard let round = rounds[row.roundID], round.at >= from, round.at <= to, only?.contains(round.id) ?? true else { continue }
                    out.append(RecordedRow(round: round, domain: s.domain, row: row))
                }
            }
        }
        if sorted { out.sort { ($0.domain, $0.round.at, $0.round.id) < ($1.domain, $1.round.at, $1.round.id) } }
        return out
    }

    /// The latest row of each of `domains` in compact hours newer than `after` (a time; nil: any): the
    /// domain's compact hours by its hourly figures, newest first, until one still holds a row of it
    /// (thinning may have left none in an hour it had rows in).
    static func latestCompacted(_ db: Database, domains: [Int64], after: [Int64: Double] = [:]) throws -> [Int64: RecordedRow] {
        guard !domains.isEmpty, try db.tableExists("compact_hours") else { return [:] }
        var out = [Int64: RecordedRow]()
        for d in domains {
            let floor = after[d].map { ($0 / 3600).rounded(.down) } ?? -1e12
            for hour in try Int64.fetchAll(db, sql: """
                SELECT c.hour FROM compact_hours c JOIN hourly h ON h.hour = c.hour WHERE h.domain_id = ? AND c.hour >= ? ORDER BY c.hour DESC
                """, arguments: [d, floor]) {
                if let x = try recordedRows(db, from: Double(hour) * 3600, to: Double(hour + 1) * 3600 - 1e-6, domains: [d]).last {
                    out[d] = x
                    break
                }
            }
        }
        return out
    }
}
