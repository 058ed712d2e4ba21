import Arbiter
import Foundation
import GRDB

extension StoreBench {
    /// Writes to `path` a 30-day store built from the store at `source` (whose recording should span
    /// one hour), shaped as the default retention leaves it: the last 7 days whole (the hour repeated),
    /// the 23 days before as one full snapshot per 10 minutes. Rounds and allocations are copied with
    /// every column the migrations gave them (read from the schema, so a new migration needs nothing
    /// here), round ids and times shifted hour by hour. Every hour's figures are those of the whole
    /// recorded hour, as the daemon's retention pass folds them before thinning: the store's own folding
    /// runs on a copy of the hour moved to start at `start` (taken down to an hour's start).
    static func synthesizeMonth(from source: String, into path: String, start: Double) throws {
        let start = (start / 3600).rounded(.down) * 3600
        for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) }
        try DecisionStore(path: path).close()    // the schema, through the store's own migrations
        let folded = path + ".hour"
        for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: folded + s) }
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: folded + s) } }
        try DatabaseQueue(path: source).writeWithoutTransaction { try $0.execute(sql: "VACUUM INTO ?", arguments: [folded]) }
        try DatabaseQueue(path: folded).write { db in
            let first = try Double.fetchOne(db, sql: "SELECT MIN(at) FROM rounds") ?? 0
            try db.execute(sql: "DELETE FROM hourly; DELETE FROM hourly_host; DELETE FROM rollup")
            try db.execute(sql: "UPDATE rounds SET at = at + ?", arguments: [start - first])
        }
        let wholeHour = try DecisionStore(path: folded)
        try wholeHour.rollUp(now: Date(timeIntervalSince1970: start + 3600))
        try wholeHour.close()
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
                    let snapshotsOnly = hour < 23 * 24
                        ? "WHERE r.id IN (SELECT MIN(id) FROM src.rounds WHERE full_snapshot = 1 GROUP BY CAST((at - \(first)) / 600 AS INTEGER))" : ""
                    try db.execute(sql: "INSERT INTO rounds (\(rounds.insert)) SELECT \(rounds.select) FROM src.rounds r \(snapshotsOnly)",
                                   arguments: ["base": base, "shift": shift])
                    try db.execute(sql: """
                        INSERT INTO allocations (\(allocations.insert)) SELECT \(allocations.select)
                        FROM src.allocations a JOIN src.rounds r ON r.id = a.round_id \(snapshotsOnly)
                        """, arguments: ["base": base])
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
    }
}

extension StoreBench {
    /// The same 30 days in the compact form (`AllocationChunk`, `RoundChunk`): each hour's rows as a
    /// blob per domain and one for the rounds, the 23 older days thinned to a snapshot per 10 minutes
    /// first, written to a real SQLite file (a bench-only table layout; the hot hours as rows are not
    /// in it). Returns that file's size and the blob bytes per allocation row and per round of the hour.
    static func chunkedMonth(from source: String, into path: String) throws -> (fileBytes: Int64, perRow: Double, perRound: Double) {
        for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) }
        let src = try DatabaseQueue(path: source)
        let (rounds, rows) = try src.read { db in
            (try Row.fetchAll(db, sql: "SELECT * FROM rounds ORDER BY id"),
             try Row.fetchAll(db, sql: "SELECT * FROM allocations ORDER BY domain_id, round_id"))
        }
        let first = (rounds.first?["at"] as Double?) ?? 0
        let kept = Set(Dictionary(grouping: rounds.filter { ($0["full_snapshot"] as Int) == 1 }, by: { Int((($0["at"] as Double) - first) / 600) })
            .values.compactMap { $0.map { $0["id"] as Int64 }.min() })
        // A blob per domain and hour (a few KiB), in 64 KiB pages.
        func blobs(thinned: Bool) -> (rounds: [UInt8], domains: [[UInt8]]) {
            let rs = rounds.filter { !thinned || kept.contains($0["id"]) }.map(StoredRound.init(row:))
            var byDomain = [[Int64]: [StoredAllocation]]()
            let at = Dictionary(uniqueKeysWithValues: rounds.map { ($0["id"] as Int64, $0["at"] as Double) })
            for r in rows where !thinned || kept.contains(r["round_id"]) {
                let part = Int64(((at[r["round_id"]] ?? first) - first) / 3600)
                byDomain[[r["domain_id"], part], default: []].append(StoredAllocation(row: r))
            }
            return (RoundChunk.encode(rs), byDomain.values.map(AllocationChunk.encode))
        }
        let whole = blobs(thinned: false), thin = blobs(thinned: true)
        let month = try DatabaseQueue(path: path)
        try month.writeWithoutTransaction { try $0.execute(sql: "PRAGMA page_size = 65536") }   // blobs of several KiB: no overflow chains
        try month.write { db in
            try db.execute(sql: """
                CREATE TABLE round_chunks (hour INTEGER PRIMARY KEY, body BLOB NOT NULL);
                CREATE TABLE allocation_chunks (id INTEGER PRIMARY KEY, domain_id INTEGER NOT NULL, first_round INTEGER NOT NULL, body BLOB NOT NULL);
                CREATE INDEX allocation_chunks_domain ON allocation_chunks (domain_id, first_round);
                """)
            for hour in 0..<(30 * 24) {
                let b = hour < 23 * 24 ? thin : whole
                try db.execute(sql: "INSERT INTO round_chunks VALUES (?, ?)", arguments: [hour, Data(b.rounds)])
                for (k, body) in b.domains.enumerated() {
                    try db.execute(sql: "INSERT INTO allocation_chunks (domain_id, first_round, body) VALUES (?, ?, ?)",
                                   arguments: [k % 100, hour * 1_000_000 + k, Data(body)])
                }
            }
        }
        try month.close()
        let perRow = Double(whole.domains.reduce(0) { $0 + $1.count }) / Double(Swift.max(1, rows.count))
        return (fileSize(path), perRow, Double(whole.rounds.count) / Double(Swift.max(1, rounds.count)))
    }
}
