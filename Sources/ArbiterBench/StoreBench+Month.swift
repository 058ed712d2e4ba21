import Arbiter
import Foundation
import GRDB

extension StoreBench {
    /// Writes to `path` a 30-day store built from the store at `source` (whose recording should span
    /// one hour), shaped as the default retention leaves it: the last two hours as rows, the rest of the
    /// last 7 days as compact hours (the hour repeated), the 23 days before as compact hours thinned to one
    /// full snapshot per 10 minutes, and every hour's figures. The compact hours and the figures are the
    /// store's own: its retention pass runs on a copy of the hour moved to start at `start` (taken down to
    /// an hour's start), folding, compacting and then thinning it; the month repeats what it made, round
    /// ids and times shifted hour by hour. Rows are copied with every column the migrations gave them
    /// (read from the schema, so a new migration needs nothing here).
    /// Returns how long the retention pass took that folded and compacted the hour.
    @discardableResult
    static func synthesizeMonth(from source: String, into path: String, start: Double) throws -> Int64 {
        let start = (start / 3600).rounded(.down) * 3600
        for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) }
        try DecisionStore(path: path).close()    // the schema, through the store's own migrations
        let folded = path + ".hour"
        for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: folded + s) }
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: folded + s) } }
        try DatabaseQueue(path: source).writeWithoutTransaction { try $0.execute(sql: "VACUUM INTO ?", arguments: [folded]) }
        try DatabaseQueue(path: folded).write { db in
            let first = try Double.fetchOne(db, sql: "SELECT MIN(at) FROM rounds") ?? 0
            try db.execute(sql: "DELETE FROM hourly; DELETE FROM hourly_host; DELETE FROM rollup; DELETE FROM compact_hours")
            try db.execute(sql: "UPDATE rounds SET at = at + ?", arguments: [start - first])
        }
        // The hour as retention leaves it: compacted whole (two hours later), then thinned (a week later).
        let hourStore = try DecisionStore(path: folded)
        func compactHour() throws -> (rounds: [StoredRound], sections: [(domain: Int64, rows: [StoredAllocation])]) {
            let q = try DatabaseQueue(path: folded)
            defer { try? q.close() }
            guard let r = try q.read({ try Row.fetchOne($0, sql: "SELECT rounds, allocations FROM compact_hours") }) else { return ([], []) }
            return (try RoundChunk.decode(Array(r["rounds"] as Data)),
                    try DecisionStore.sections(Array(r["allocations"] as Data)).map { ($0.domain, try AllocationChunk.decode($0.chunk)) })
        }
        var pass: Int64 = 0
        var failure: (any Error)?
        pass = nanos {
            do { try hourStore.prune(now: Date(timeIntervalSince1970: start + 3 * 3600), downsampleAfter: 30 * 86400, retain: 90 * 86400) }
            catch { failure = error }
        }
        if let failure { throw failure }
        let whole = try compactHour()
        try hourStore.prune(now: Date(timeIntervalSince1970: start + 3 * 3600), downsampleAfter: 60, retain: 90 * 86400)
        let thin = try compactHour()
        try hourStore.close()

        let month = try DatabaseQueue(path: path)
        try month.writeWithoutTransaction { db in
            try db.execute(sql: "ATTACH DATABASE ? AS src", arguments: [source])
            /// `table`'s columns as a list for INSERT, and the SELECT list from `alias`, with `shifted`'s expressions.
            func columns(_ table: String, _ alias: String, _ shifted: [String: String]) throws -> (insert: String, select: String) {
                let names = try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?, 'main') ORDER BY cid", arguments: [table])
                return (names.joined(separator: ", "), names.map { shifted[$0] ?? "\(alias).\($0)" }.joined(separator: ", "))
            }
            try db.execute(sql: "ATTACH DATABASE ? AS folded", arguments: [folded])
            let rounds = try columns("rounds", "r", ["id": "r.id + :base", "at": "r.at + :shift"])
            let hourly = try columns("hourly", "h", ["hour": "h.hour + :h"])
            let host = try columns("hourly_host", "h", ["hour": "h.hour + :h", "first_at": "h.first_at + :s", "last_at": "h.last_at + :s"])
            let allocations = try columns("allocations", "a", ["round_id": "a.round_id + :base"])
            let first = try Double.fetchOne(db, sql: "SELECT MIN(at) FROM src.rounds") ?? 0
            try db.inTransaction {
                try db.execute(sql: "INSERT INTO domains SELECT * FROM src.domains")
                for hour in 0..<(30 * 24) {
                    let shift = start + Double(hour) * 3600 - first
                    let base = Int64(hour) * 10_000_000
                    // (A source hour the store would not compact, one with shadow targets, is copied as rows.)
                    if hour >= 30 * 24 - 2 || whole.rounds.isEmpty {
                        try db.execute(sql: "INSERT INTO rounds (\(rounds.insert)) SELECT \(rounds.select) FROM src.rounds r",
                                       arguments: ["base": base, "shift": shift])
                        try db.execute(sql: "INSERT INTO allocations (\(allocations.insert)) SELECT \(allocations.select) FROM src.allocations a",
                                       arguments: ["base": base])
                    } else {
                        let c = hour < 23 * 24 ? thin : whole
                        let rs = c.rounds.map { r in var r = r; r.id += base; r.at += Double(hour) * 3600; return r }
                        let sections = c.sections.map { s in (s.domain, s.rows.map { a in var a = a; a.roundID += base; return a }) }
                        try db.execute(sql: """
                            INSERT INTO compact_hours (hour, first_round, last_round, round_count, row_count, thinned, rounds, allocations)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                            """, arguments: [Int64(start / 3600) + Int64(hour), rs.first!.id, rs.last!.id, rs.count, sections.reduce(0) { $0 + $1.1.count },
                                             hour < 23 * 24 ? 1 : 0, Data(RoundChunk.encode(rs)), Data(DecisionStore.encodeSections(sections))])
                    }
                    try db.execute(sql: "INSERT INTO hourly (\(hourly.insert)) SELECT \(hourly.select) FROM folded.hourly h", arguments: ["h": hour])
                    try db.execute(sql: "INSERT INTO hourly_host (\(host.insert)) SELECT \(host.select) FROM folded.hourly_host h",
                                   arguments: ["h": hour, "s": Double(hour) * 3600])
                }
                try db.execute(sql: "INSERT INTO rollup (id, until_round) SELECT 1, MAX(id) FROM rounds")
                return .commit
            }
            try db.execute(sql: "DETACH DATABASE src")
            try db.execute(sql: "DETACH DATABASE folded")
        }
        return pass
    }
}
