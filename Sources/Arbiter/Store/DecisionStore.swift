import ArbiterMigrations
import Foundation
import GRDB
import GRDBSQLite
import GuestModel
import Synchronization

/// The decision store: one SQLite file (WAL), schema only through `migrations/`, one writer.
/// Writes are named after their intent; reads serve `list`, `history`, `alerts` and the reports, and
/// never need the daemon to be running. Here: opening, migrating, recording and closing; retention,
/// admin settings and the read models are in DecisionStore+Retention, +Settings and +Queries.
public final class DecisionStore: Sendable {
    let db: any DatabaseWriter
    /// Live domain rows by domid and name (the writer is serialised, so a plain lock suffices).
    private let domainCache = Mutex<[DomID: (name: String, id: Int64)]>([:])
    /// When live domains' `last_seen` was last brought up to a round's time: at most once a minute (each
    /// time it rewrites every live domain's row), and at every release, which sets a lifetime's end.
    private let lastSeenAt = Mutex<Double>(-.infinity)
    static let lastSeenPeriod = 60.0

    /// Why a file cannot be used as the decision store: one line for the admin.
    public struct Refusal: Error, CustomStringConvertible {
        public var description: String
    }

    /// The most the write-ahead log may hold before SQLite moves it into the main file, and the size it
    /// is cut back to after: a full disk or a busy reader never lets it grow without bound.
    public static let walLimitBytes = 1 << 20

    /// What the read verbs should say before their output (a database from a newer arbiter, a
    /// read-only medium); empty when there is nothing to say.
    public let warnings: [String]

    /// Opens (creating if needed) the database at `path` in WAL mode and applies pending migrations,
    /// each in its own transaction. Refuses a file that is not an arbiter store, or one a newer
    /// arbiter has migrated (writing to it could corrupt what that version keeps).
    public init(path: String) throws {
        var config = Configuration()
        config.busyMode = .timeout(5)
        // synchronous = NORMAL in WAL mode: a crash of the process loses nothing; a power cut may lose
        // the last rounds' rows, never the file's integrity. FULL would fsync every round.
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA foreign_keys = ON")
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA journal_size_limit = \(Self.walLimitBytes)")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(Self.walLimitBytes / 4096 / 2)")
        }
        do {
            db = try DatabasePool(path: path, configuration: config)
        } catch {
            throw Refusal(description: Self.explain(error, path))
        }
        let migrator = Self.migrator()
        try db.read { db in
            let applied = try Self.checkArbiterStore(db, path: path, migrator: migrator, reading: false)
            if let newer = Self.newer(applied, path) {
                throw Refusal(description: newer + ": refusing to write to it; run the newer arbiter or use another --db")
            }
        }
        try migrator.migrate(db)
        warnings = []
    }

    /// An in-memory store (tests).
    public init() throws {
        var config = Configuration()
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA foreign_keys = ON") }
        db = try DatabaseQueue(configuration: config)
        try Self.migrator().migrate(db)
        warnings = []
    }

    /// Opens an existing database read-only, without migrating (for the CLI's read verbs). On a
    /// read-only medium, where SQLite cannot make the WAL's shared-memory file, it opens the file as
    /// immutable (rows the daemon had not yet checkpointed are then not seen, and it says so).
    public init(readingAt path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw Refusal(description: "\(path): no such file (has the daemon run with this --db?)") }
        var config = Configuration()
        config.readonly = true
        config.busyMode = .timeout(5)
        var notes = [String]()
        var queue: DatabaseQueue
        do {
            queue = try DatabaseQueue(path: path, configuration: config)
            _ = try queue.read { try $0.tableExists("grdb_migrations") }
        } catch {
            // SQLITE_CANTOPEN / SQLITE_READONLY: no -shm can be made beside the file.
            let dir = (path as NSString).deletingLastPathComponent
            guard let e = error as? DatabaseError, [14, 8].contains(e.resultCode.primaryResultCode.rawValue),
                  access(dir.isEmpty ? "." : dir, W_OK) != 0 else {
                throw Refusal(description: Self.explain(error, path))
            }
            let uri = "file:" + (path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? path) + "?immutable=1"
            do { queue = try DatabaseQueue(path: uri, configuration: config) } catch { throw Refusal(description: Self.explain(error, path)) }
            notes.append("\(path) is on a read-only medium: read without locking; rounds the daemon had not checkpointed into the file are not shown")
        }
        db = queue
        let applied = try queue.read { try Self.checkArbiterStore($0, path: path, migrator: Self.migrator(), reading: true) }
        if let newer = Self.newer(applied, path) { notes.append(newer + ": showing what this version understands") }
        warnings = notes
    }

    /// What to say of a store with migrations this binary does not know, if it has any.
    static func newer(_ applied: Set<String>, _ path: String) -> String? {
        let unknown = applied.subtracting(ArbiterMigrations.all.map(\.id)).sorted()
        return unknown.isEmpty ? nil
            : "\(path) was written by a newer arbiter (migrations \(unknown.joined(separator: ", ")) are unknown to this one)"
    }

    /// The migrations already applied, after checking that this is an arbiter store at all: an empty
    /// database is one not yet initialised, one with tables but no migration record belongs to
    /// something else.
    static func checkArbiterStore(_ db: Database, path: String, migrator: DatabaseMigrator, reading: Bool) throws -> Set<String> {
        if try db.tableExists("grdb_migrations") { return try migrator.appliedIdentifiers(db) }
        let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' LIMIT 3")
        if tables.isEmpty {
            if reading { throw Refusal(description: "\(path) is empty: not an arbiter decision store yet (the daemon creates it on its first start)") }
            return []
        }
        throw Refusal(description: "\(path) is an SQLite database but not an arbiter decision store (it has tables such as \(tables.joined(separator: ", ")) and no migration record)")
    }

    /// One line for an error opening `path`.
    static func explain(_ error: any Error, _ path: String) -> String {
        guard let e = error as? DatabaseError else { return "\(path): \(error)" }
        switch e.resultCode.primaryResultCode.rawValue {
        case 26: return "\(path) is not an SQLite database (not an arbiter decision store)"
        case 14: return "\(path): cannot open (\(e.message ?? "unable to open database file"))"
        case 8: return "\(path): read-only (\(e.message ?? "attempt to write a readonly database"))"
        case 13: return "\(path): the disk is full"
        default: return "\(path): \(e.message ?? "\(e)")"
        }
    }

    /// The migrations, in order (`migrations/V*.sql`).
    public static func migrator(upTo last: String? = nil) -> DatabaseMigrator {
        var m = DatabaseMigrator()
        for (id, sql) in ArbiterMigrations.all {
            m.registerMigration(id) { db in try db.execute(sql: sql) }
            if id == last { break }
        }
        return m
    }

    public func appliedMigrations() throws -> [String] {
        try db.read { try Self.migrator().appliedMigrations($0) }
    }

    // MARK: - writes

    /// Why a round ran. (The schema also allows 'admin', which no round has ever been recorded with.)
    public enum Trigger: String, Sendable { case startup, report, tick, shutdown }

    /// The result of pushing one target: nil = nothing pushed (no change or dry run).
    public enum Push: Sendable, Equatable { case pushed, failed(String) }

    /// What a shadow policy would have set for a domain this round (recorded, never pushed).
    public struct Shadow: Sendable, Equatable {
        public var policy: String
        public var domid: DomID
        public var target: KiB
        public var reason: Reason
        public init(policy: String, domid: DomID, target: KiB, reason: Reason) {
            self.policy = policy; self.domid = domid; self.target = target; self.reason = reason
        }
    }

    /// Records one round: the host, and the outcomes given (the caller passes only those that changed,
    /// unless `fullSnapshot`). `names` maps domids to names; `pushes` the actuation results; `quietBefore`
    /// the rounds since the last recorded one that changed nothing and were not recorded.
    @discardableResult
    public func record(_ d: Decision, at: Date, trigger: Trigger, hostTotal: KiB, outcomes: [DomainOutcome], fullSnapshot: Bool,
                       names: [DomID: String], uuids: [DomID: String] = [:], pushes: [DomID: Push] = [:],
                       policy: String = "arbiter", shadowPolicies: [String] = [], shadows: [Shadow] = [], quietBefore: Int = 0) throws -> Int64 {
        // Kept to the microsecond (and stalls to a millionth), as the compact form of older hours keeps
        // them: compacting an hour changes nothing any read verb shows.
        let t = Double(RoundChunk.micros(at.timeIntervalSince1970)) / 1_000_000
        do {
            return try write(d, t: t, trigger: trigger, hostTotal: hostTotal, outcomes: outcomes, fullSnapshot: fullSnapshot,
                             names: names, uuids: uuids, pushes: pushes, policy: policy, shadowPolicies: shadowPolicies, shadows: shadows,
                             quietBefore: quietBefore)
        } catch {
            // The transaction rolled back: domain rows it created are gone, so forget the cache.
            domainCache.withLock { $0.removeAll() }
            throw error
        }
    }

    private func write(_ d: Decision, t: Double, trigger: Trigger, hostTotal: KiB, outcomes: [DomainOutcome], fullSnapshot: Bool,
                       names: [DomID: String], uuids: [DomID: String], pushes: [DomID: Push], policy: String,
                       shadowPolicies: [String], shadows: [Shadow], quietBefore: Int) throws -> Int64 {
        try db.write { db in
            try db.execute(sql: """
                INSERT INTO rounds (at, trigger, host_total_kib, host_free_kib, reserve_kib, budget_kib, phase, full_snapshot, policy, shadows,
                                    quiet_before)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [t, trigger.rawValue, hostTotal.value, Swift.max(0, d.free.value), d.reserve.value, d.budget.value,
                                 d.phase.recordedText, fullSnapshot ? 1 : 0, policy, shadowPolicies.joined(separator: ","), Swift.max(0, quietBefore)])
            let roundID = db.lastInsertedRowID
            var ids = [DomID: Int64]()
            for o in d.outcomes {
                ids[o.domid] = try domainID(db, o.domid, name: names[o.domid] ?? "dom\(o.domid)", uuid: uuids[o.domid], at: t)
            }
            if lastSeenAt.withLock({ abs(t - $0) >= Self.lastSeenPeriod }) {
                try db.execute(sql: "UPDATE domains SET last_seen = ? WHERE released IS NULL AND last_seen < ?", arguments: [t, t])
                lastSeenAt.withLock { $0 = t }
            }
            let insert = try db.cachedStatement(sql: """
                INSERT INTO allocations (round_id, domain_id, report_status, working_set_kib, stall, floor_kib, floor_kind,
                    ceiling_kib, weight, demand_kib, allocation_kib, basis, actual_kib, previous_target_kib, target_kib,
                    reason, paced, pushed, push_error)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            // Bound straight to SQLite: a full snapshot of 1,000 domains is 19,000 values, and boxing each
            // as GRDB's arguments cost more than SQLite's own insert.
            let row = AllocationRow(insert.sqliteStatement)
            for o in outcomes {
                var pushed: Int64? = nil
                var pushError: String? = nil
                switch pushes[o.domid] {
                case .pushed: pushed = 1
                case .failed(let why): pushed = 0; pushError = why
                case nil: break
                }
                try row.insert(db, [.integer(roundID), .integer(ids[o.domid]!), .text(o.status.recordedText),
                                    o.workingSet.map { .integer($0.value) } ?? .null,
                                    o.stall.map { .real(Double(AllocationChunk.micro($0)) / 1_000_000) } ?? .null,
                                    .integer(o.floor.value), .text(o.floorKind.recordedText), .integer(o.ceiling.value), .real(o.weight),
                                    .integer(o.demand.value), .integer(o.allocation.value), .text(o.basis.recordedText), .integer(o.actual.value),
                                    .integer(o.previousTarget.value), .integer(o.target.value), .text(o.reason.recordedText), .integer(o.paced ? 1 : 0),
                                    pushed.map { .integer($0) } ?? .null, pushError.map { .text($0) } ?? .null])
            }
            if !shadows.isEmpty {
                let shadow = try db.cachedStatement(sql: "INSERT INTO shadow_targets (round_id, domain_id, policy, target_kib, reason) VALUES (?, ?, ?, ?, ?)")
                for s in shadows {
                    guard let domainID = ids[s.domid], s.target.value > 0 else { continue }
                    try shadow.execute(arguments: [roundID, domainID, s.policy, s.target.value, s.reason.recordedText])
                }
            }
            for a in d.alerts {
                try db.execute(sql: "INSERT INTO alerts (round_id, at, kind, shortfall_kib, message) VALUES (?, ?, ?, ?, ?)",
                               arguments: [roundID, t, a.kind.rawValue, a.shortfall.value, a.description])
            }
            return roundID
        }
    }

    /// Records a refused guest report.
    public func recordRejection(_ domid: DomID, name: String, at: Date, _ why: ReportRejection) throws {
        let t = at.timeIntervalSince1970
        try db.write { db in
            let id = try domainID(db, domid, name: name, at: t)
            try db.execute(sql: "INSERT INTO rejections (domain_id, at, code, reason) VALUES (?, ?, ?, ?)",
                           arguments: [id, t, why.code, why.description])
        }
    }

    /// Records an alert raised outside a round (e.g. a floor forced past what the host has).
    /// `kind` is a decision alert's kind or the daemon's own: "rounds-not-recorded".
    public func recordAlert(kind: String, shortfall: KiB, message: String, at: Date) throws {
        try db.write { db in
            try db.execute(sql: "INSERT INTO alerts (round_id, at, kind, shortfall_kib, message) VALUES (NULL, ?, ?, ?, ?)",
                           arguments: [at.timeIntervalSince1970, kind, shortfall.value, message])
        }
    }

    /// Marks a domain released by Xen: its domid may come back as another domain.
    public func domainReleased(_ domid: DomID, at: Date) throws {
        domainCache.withLock { $0[domid] = nil }
        try db.write { db in
            try db.execute(sql: "UPDATE domains SET released = ?, last_seen = MAX(last_seen, ?) WHERE domid = ? AND released IS NULL",
                           arguments: [at.timeIntervalSince1970, at.timeIntervalSince1970, Int(domid.raw)])
        }
    }

    public func recordConfigChange(source: String, accepted: Bool, detail: String, at: Date) throws {
        try db.write { db in
            try db.execute(sql: "INSERT INTO config_changes (at, source, accepted, detail) VALUES (?, ?, ?, ?)",
                           arguments: [at.timeIntervalSince1970, source, accepted ? 1 : 0, detail])
        }
    }

    /// The live domain row for `domid` with this name, created when new (a new name on a known domid
    /// means Xen reused the id: the old lifetime is closed). Cached: one query per domain lifetime.
    func domainID(_ db: Database, _ domid: DomID, name: String, uuid: String? = nil, at t: Double) throws -> Int64 {
        if let hit = domainCache.withLock({ $0[domid] }), hit.name == name { return hit.id }
        let id = try Self.lookupDomain(db, domid, name: name, uuid: uuid, at: t)
        domainCache.withLock { $0[domid] = (name, id) }
        return id
    }

    static func lookupDomain(_ db: Database, _ domid: DomID, name: String, uuid: String?, at t: Double) throws -> Int64 {
        if let row = try Row.fetchOne(db, sql: "SELECT id, name FROM domains WHERE domid = ? AND released IS NULL", arguments: [Int(domid.raw)]) {
            let id: Int64 = row["id"]
            if (row["name"] as String) == name { return id }
            try db.execute(sql: "UPDATE domains SET released = ?, last_seen = MAX(last_seen, ?) WHERE id = ?", arguments: [t, t, id])
        }
        try db.execute(sql: "INSERT INTO domains (domid, name, uuid, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)",
                       arguments: [Int(domid.raw), name, uuid, t, t])
        return db.lastInsertedRowID
    }

    /// A phase as the store (and the control socket's status) names it.
    static func phaseName(_ p: SharePhase) -> String {
        switch p {
        case .uncontended: "uncontended"
        case .contended: "contended"
        case .infeasible: "infeasible"
        }
    }

    /// Moves the WAL into the main file and cuts it to nothing (after a failed write, at shutdown, and
    /// for size measurements; SQLite also checkpoints by itself every `walLimitBytes / 2`).
    public func checkpoint() throws {
        try db.writeWithoutTransaction { try $0.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    /// Checkpoints and closes the store: no `-wal` is left behind a clean shutdown.
    public func close() throws {
        try checkpoint()
        try (db as? DatabasePool)?.close()
    }

    /// The WAL file's size now, in bytes (0 when there is none).
    public var walBytes: Int64 {
        guard let path = (db as? DatabasePool)?.path else { return 0 }
        return (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int64) ?? 0
    }
}

/// One prepared INSERT's values bound with SQLite's own calls (the hot path of recording a round).
struct AllocationRow {
    enum Value { case integer(Int64), real(Double), text(String), null }
    let statement: OpaquePointer

    init(_ statement: OpaquePointer) { self.statement = statement }

    /// Binds `values` in order, runs the statement and resets it; an SQLite error is thrown as GRDB's.
    func insert(_ db: Database, _ values: [Value]) throws {
        defer { sqlite3_reset(statement); sqlite3_clear_bindings(statement) }
        precondition(values.count == Int(sqlite3_bind_parameter_count(statement)), "allocation row: \(values.count) values for the statement's parameters")
        for (i, v) in values.enumerated() {
            let k = Int32(i + 1)
            switch v {
            case .integer(let n): sqlite3_bind_int64(statement, k, n)
            case .real(let x): sqlite3_bind_double(statement, k, x)
            case .text(let t): sqlite3_bind_text(statement, k, t, Int32(clamping: t.utf8.count), SQLITE_TRANSIENT)
            case .null: sqlite3_bind_null(statement, k)
            }
        }
        let code = sqlite3_step(statement)
        guard code == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)),
                                sql: sqlite3_sql(statement).map { String(cString: $0) })
        }
    }
}

/// SQLite's "copy this text now" destructor, which Swift cannot import as a macro.
private let SQLITE_TRANSIENT = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
