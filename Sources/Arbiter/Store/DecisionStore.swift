import ArbiterMigrations
import Foundation
import GRDB
import GuestModel
import Synchronization

/// The decision store: one SQLite file (WAL), schema only through `migrations/`, one writer.
/// Writes are named after their intent; reads serve `list`, `history`, `alerts` and the reports, and
/// never need the daemon to be running.
public final class DecisionStore: Sendable {
    let db: any DatabaseWriter
    /// Live domain rows by domid and name (the writer is serialised, so a plain lock suffices).
    private let domainCache = Mutex<[DomID: (name: String, id: Int64)]>([:])

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
    /// unless `fullSnapshot`). `names` maps domids to names; `pushes` the actuation results.
    @discardableResult
    public func record(_ d: Decision, at: Date, trigger: Trigger, hostTotal: KiB, outcomes: [DomainOutcome], fullSnapshot: Bool,
                       names: [DomID: String], uuids: [DomID: String] = [:], pushes: [DomID: Push] = [:],
                       policy: String = "arbiter", shadowPolicies: [String] = [], shadows: [Shadow] = []) throws -> Int64 {
        let t = at.timeIntervalSince1970
        do {
            return try write(d, t: t, trigger: trigger, hostTotal: hostTotal, outcomes: outcomes, fullSnapshot: fullSnapshot,
                             names: names, uuids: uuids, pushes: pushes, policy: policy, shadowPolicies: shadowPolicies, shadows: shadows)
        } catch {
            // The transaction rolled back: domain rows it created are gone, so forget the cache.
            domainCache.withLock { $0.removeAll() }
            throw error
        }
    }

    private func write(_ d: Decision, t: Double, trigger: Trigger, hostTotal: KiB, outcomes: [DomainOutcome], fullSnapshot: Bool,
                       names: [DomID: String], uuids: [DomID: String], pushes: [DomID: Push], policy: String,
                       shadowPolicies: [String], shadows: [Shadow]) throws -> Int64 {
        try db.write { db in
            try db.execute(sql: """
                INSERT INTO rounds (at, trigger, host_total_kib, host_free_kib, reserve_kib, budget_kib, phase, full_snapshot, policy, shadows)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [t, trigger.rawValue, hostTotal.value, Swift.max(0, d.free.value), d.reserve.value, d.budget.value,
                                 Self.phaseName(d.phase), fullSnapshot ? 1 : 0, policy, shadowPolicies.joined(separator: ",")])
            let roundID = db.lastInsertedRowID
            var ids = [DomID: Int64]()
            for o in d.outcomes {
                ids[o.domid] = try domainID(db, o.domid, name: names[o.domid] ?? "dom\(o.domid)", uuid: uuids[o.domid], at: t)
            }
            try db.execute(sql: "UPDATE domains SET last_seen = ? WHERE released IS NULL AND last_seen < ?", arguments: [t, t])
            let insert = try db.cachedStatement(sql: """
                INSERT INTO allocations (round_id, domain_id, report_status, working_set_kib, stall, floor_kib, floor_kind,
                    ceiling_kib, weight, demand_kib, allocation_kib, basis, actual_kib, previous_target_kib, target_kib,
                    reason, paced, pushed, push_error)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            for o in outcomes {
                let domainID = ids[o.domid]!
                var pushed: Int? = nil
                var pushError: String? = nil
                switch pushes[o.domid] {
                case .pushed: pushed = 1
                case .failed(let why): pushed = 0; pushError = why
                case nil: break
                }
                try insert.execute(arguments: [roundID, domainID, o.status.description, o.workingSet?.value, o.stall.map { Swift.min(1, Swift.max(0, $0)) },
                                               o.floor.value, o.floorKind.description, o.ceiling.value, o.weight, o.demand.value,
                                               o.allocation.value, o.basis.description, o.actual.value, o.previousTarget.value, o.target.value,
                                               o.reason.rawValue, o.paced ? 1 : 0, pushed, pushError])
            }
            if !shadows.isEmpty {
                let shadow = try db.cachedStatement(sql: "INSERT INTO shadow_targets (round_id, domain_id, policy, target_kib, reason) VALUES (?, ?, ?, ?, ?)")
                for s in shadows {
                    guard let domainID = ids[s.domid], s.target.value > 0 else { continue }
                    try shadow.execute(arguments: [roundID, domainID, s.policy, s.target.value, s.reason.rawValue])
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

    /// Retention: rounds older than `downsampleAfter` keep only one full snapshot per `interval` (and
    /// every round that raised an alert); everything older than `retain` goes, with its rejections and
    /// alerts, and the domain lifetimes that no longer have any row. Returns the rounds removed.
    @discardableResult
    public func prune(now: Date, downsampleAfter: TimeInterval, retain: TimeInterval, interval: TimeInterval = 600) throws -> Int {
        let t = now.timeIntervalSince1970
        let cutoff = t - downsampleAfter
        return try db.write { db in
            try db.execute(sql: """
                DELETE FROM rounds WHERE at < ?
                  AND id NOT IN (SELECT MIN(id) FROM rounds WHERE at < ? AND full_snapshot = 1 GROUP BY CAST(at / ? AS INTEGER))
                  AND id NOT IN (SELECT round_id FROM alerts WHERE round_id IS NOT NULL)
                """, arguments: [cutoff, cutoff, Swift.max(1, interval)])
            var removed = db.changesCount
            try db.execute(sql: "DELETE FROM rounds WHERE at < ?", arguments: [t - retain])
            removed += db.changesCount
            try db.execute(sql: "DELETE FROM alerts WHERE at < ?", arguments: [t - retain])
            try db.execute(sql: "DELETE FROM rejections WHERE at < ?", arguments: [t - retain])
            try db.execute(sql: """
                DELETE FROM domains WHERE released IS NOT NULL AND released < ?
                  AND id NOT IN (SELECT domain_id FROM allocations) AND id NOT IN (SELECT domain_id FROM rejections)
                  AND id NOT IN (SELECT domain_id FROM shadow_targets)
                """, arguments: [t - retain])
            return removed
        }
    }

    /// Saves (or, when empty, removes) a domain's admin settings, and who did it.
    public func saveSetting(_ name: String, _ s: AdminSetting, who: String, at: Date) throws {
        let t = at.timeIntervalSince1970
        try db.write { db in
            if s.min == nil && s.max == nil && s.weight == nil {
                try db.execute(sql: "DELETE FROM domain_settings WHERE name = ?", arguments: [name])
            } else {
                try db.execute(sql: """
                    INSERT INTO domain_settings (name, floor_kib, ceiling_kib, weight, updated_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET floor_kib = excluded.floor_kib, ceiling_kib = excluded.ceiling_kib,
                        weight = excluded.weight, updated_at = excluded.updated_at
                    """, arguments: [name, s.min?.value, s.max?.value, s.weight, t])
            }
            let detail = "floor=\(s.min.map { String($0.value) } ?? "auto") ceiling=\(s.max.map { String($0.value) } ?? "static-max") "
                + "weight=\(s.weight.map { String($0) } ?? "default")"
            try db.execute(sql: "INSERT INTO admin_actions (at, who, action, detail) VALUES (?, ?, ?, ?)",
                           arguments: [t, who, "set \(name)", detail])
        }
    }

    /// Every domain's saved admin settings, by name.
    public func settings() throws -> [String: AdminSetting] {
        try db.read { db in
            var out = [String: AdminSetting]()
            for r in try Row.fetchAll(db, sql: "SELECT name, floor_kib, ceiling_kib, weight FROM domain_settings") {
                let name: String = r["name"]
                let floor: Int64? = r["floor_kib"]
                let ceiling: Int64? = r["ceiling_kib"]
                let weight: Double? = r["weight"]
                out[name] = AdminSetting(min: floor.map { KiB($0) }, max: ceiling.map { KiB($0) }, weight: weight)
            }
            return out
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
            try db.execute(sql: "UPDATE domains SET released = ? WHERE id = ?", arguments: [t, id])
        }
        try db.execute(sql: "INSERT INTO domains (domid, name, uuid, first_seen, last_seen) VALUES (?, ?, ?, ?, ?)",
                       arguments: [Int(domid.raw), name, uuid, t, t])
        return db.lastInsertedRowID
    }

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

    /// Benchmarks: writes to `path` a 30-day store built from this one's recording (which should span
    /// one hour), shaped as the default retention leaves it: the last 7 days whole (the hour repeated),
    /// the 23 days before as one full snapshot per 10 minutes.
    public func synthesizeMonth(into path: String, from start: Double) throws {
        for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) }
        let month = try DecisionStore(path: path)
        guard let source = (db as? DatabasePool)?.path else { throw DatabaseError(message: "synthesizeMonth needs a file store") }
        try month.db.writeWithoutTransaction { db in
            try db.execute(sql: "ATTACH DATABASE ? AS src", arguments: [source])
            let first = try Double.fetchOne(db, sql: "SELECT MIN(at) FROM src.rounds") ?? 0
            try db.inTransaction {
                try db.execute(sql: "INSERT INTO domains SELECT * FROM src.domains")
                for hour in 0..<(30 * 24) {
                    let shift = start + Double(hour) * 3600 - first
                    let base = Int64(hour) * 10_000_000
                    let snapshotsOnly = hour < 23 * 24
                        ? "WHERE id IN (SELECT MIN(id) FROM src.rounds WHERE full_snapshot = 1 GROUP BY CAST((at - \(first)) / 600 AS INTEGER))" : ""
                    try db.execute(sql: """
                        INSERT INTO rounds SELECT id + ?, at + ?, trigger, host_total_kib, host_free_kib, reserve_kib, budget_kib, phase, full_snapshot, policy, shadows
                        FROM src.rounds \(snapshotsOnly)
                        """, arguments: [base, shift])
                    try db.execute(sql: """
                        INSERT INTO allocations SELECT a.round_id + ?, a.domain_id, a.report_status, a.working_set_kib, a.stall, a.floor_kib,
                            a.floor_kind, a.ceiling_kib, a.weight, a.demand_kib, a.allocation_kib, a.basis, a.actual_kib,
                            a.previous_target_kib, a.target_kib, a.reason, a.paced, a.pushed, a.push_error
                        FROM src.allocations a JOIN src.rounds r ON r.id = a.round_id \(snapshotsOnly.replacingOccurrences(of: "WHERE id IN", with: "WHERE r.id IN"))
                        """, arguments: [base])
                }
                return .commit
            }
            try db.execute(sql: "DETACH DATABASE src")
        }
    }

    // MARK: - reads

    /// One domain's latest recorded decision (what `list` shows).
    public struct DomainState: Sendable, Equatable {
        public var name: String
        public var domid: Int
        public var at: Double
        public var actual: KiB
        public var target: KiB
        public var floor: KiB
        public var ceiling: KiB
        public var weight: Double
        public var demand: KiB
        public var stall: Double?
        public var status: String
        public var reason: String
        /// When Xen released this lifetime of the domain (nil: live).
        public var released: Double? = nil
    }

    /// The columns `state(_:)` reads.
    static let stateColumns = """
        d.name, d.domid, r.at, a.actual_kib, a.target_kib, a.floor_kib, a.ceiling_kib, a.weight, a.demand_kib,
        a.stall, a.report_status, a.reason, d.released
        """

    /// Every live domain with its latest recorded decision; with `all`, released lifetimes too (after
    /// the live ones, newest release first).
    public func latest(all: Bool = false) throws -> [DomainState] {
        try db.read { db in
            try Row.fetchAll(db, sql: """
                SELECT \(Self.stateColumns)
                FROM domains d
                JOIN allocations a ON a.domain_id = d.id
                JOIN rounds r ON r.id = a.round_id
                WHERE (d.released IS NULL OR ?)
                  AND a.round_id = (SELECT MAX(round_id) FROM allocations WHERE domain_id = d.id)
                ORDER BY d.released IS NOT NULL, d.released DESC, d.domid
                """, arguments: [all]).map(Self.state)
        }
    }

    /// One domain's recorded decisions since `since` (by name or domid), oldest first.
    public func history(_ domain: String, since: Date? = nil, limit: Int = 10_000) throws -> [DomainState] {
        try db.read { db in
            try Row.fetchAll(db, sql: """
                SELECT \(Self.stateColumns)
                FROM allocations a
                JOIN domains d ON d.id = a.domain_id
                JOIN rounds r ON r.id = a.round_id
                WHERE (d.name = ? OR CAST(d.domid AS TEXT) = ?) AND r.at >= ?
                ORDER BY r.at, r.id
                LIMIT ?
                """, arguments: [domain, domain, since?.timeIntervalSince1970 ?? 0, limit]).map(Self.state)
        }
    }

    /// Everything recorded about one domain's latest decision, for `arbiter explain`.
    public struct Explanation: Sendable, Equatable {
        public var name: String, domid: Int, at: Double
        public var status: String, workingSet: KiB?, stall: Double?
        public var floor: KiB, floorKind: String, ceiling: KiB, weight: Double, demand: KiB
        public var allocation: KiB, basis: String, actual: KiB, previousTarget: KiB, target: KiB
        public var reason: String, pushed: Bool?, pushError: String?
        public var phase: String, budget: KiB, free: KiB
        /// The policy whose targets were pushed, and what each shadow policy last said for this domain.
        public var policy = "arbiter"
        public var shadows = [ShadowView]()
    }

    /// A shadow policy's latest target for a domain, at or before an explained round.
    public struct ShadowView: Sendable, Equatable {
        public var policy: String, target: KiB, reason: String, at: Double
    }

    public func explain(_ domain: String) throws -> Explanation? {
        try db.read { db in
            guard let r = try Row.fetchOne(db, sql: """
                SELECT d.name, d.domid, r.at, r.phase, r.budget_kib, r.host_free_kib, r.policy, r.shadows, a.*
                FROM allocations a JOIN domains d ON d.id = a.domain_id JOIN rounds r ON r.id = a.round_id
                WHERE (d.name = ? OR CAST(d.domid AS TEXT) = ?) ORDER BY r.at DESC, r.id DESC LIMIT 1
                """, arguments: [domain, domain]) else { return nil }
            let ws: Int64? = r["working_set_kib"]
            let pushed: Int? = r["pushed"]
            var shadows = [ShadowView]()
            // The latest row of each shadow that ran in the explained round.
            let ran = Set((r["shadows"] as String).split(separator: ",").map(String.init))
            for s in try Row.fetchAll(db, sql: """
                SELECT s.policy, s.target_kib, s.reason, r.at FROM shadow_targets s JOIN rounds r ON r.id = s.round_id
                WHERE s.domain_id = ? AND s.round_id = (SELECT MAX(s2.round_id) FROM shadow_targets s2
                      WHERE s2.domain_id = s.domain_id AND s2.policy = s.policy AND s2.round_id <= ?)
                """, arguments: [r["domain_id"] as Int64, r["round_id"] as Int64]) where ran.contains(s[0] as String) {
                shadows.append(ShadowView(policy: s[0], target: KiB(s[1] as Int64), reason: s[2], at: s[3]))
            }
            var e = Explanation(name: r["name"], domid: r["domid"], at: r["at"], status: r["report_status"], workingSet: ws.map { KiB($0) },
                               stall: r["stall"], floor: KiB(r["floor_kib"] as Int64), floorKind: r["floor_kind"],
                               ceiling: KiB(r["ceiling_kib"] as Int64), weight: r["weight"], demand: KiB(r["demand_kib"] as Int64),
                               allocation: KiB(r["allocation_kib"] as Int64), basis: r["basis"], actual: KiB(r["actual_kib"] as Int64),
                               previousTarget: KiB(r["previous_target_kib"] as Int64), target: KiB(r["target_kib"] as Int64),
                               reason: r["reason"], pushed: pushed.map { $0 == 1 }, pushError: r["push_error"],
                               phase: r["phase"], budget: KiB(r["budget_kib"] as Int64), free: KiB(r["host_free_kib"] as Int64))
            e.policy = r["policy"]
            e.shadows = shadows.sorted { $0.policy < $1.policy }
            return e
        }
    }

    public struct AlertRow: Sendable, Equatable {
        public var at: Double
        public var kind: String
        public var message: String
    }

    public func alerts(since: Date? = nil) throws -> [AlertRow] {
        try db.read { db in
            try Row.fetchAll(db, sql: "SELECT at, kind, message FROM alerts WHERE at >= ? ORDER BY at",
                             arguments: [since?.timeIntervalSince1970 ?? 0]).map {
                AlertRow(at: $0["at"], kind: $0["kind"], message: $0["message"])
            }
        }
    }

    public struct RejectionRow: Sendable, Equatable {
        public var name: String
        public var at: Double
        public var code: String
        public var reason: String
    }

    public func rejections(since: Date? = nil) throws -> [RejectionRow] {
        try db.read { db in
            try Row.fetchAll(db, sql: """
                SELECT d.name, j.at, j.code, j.reason FROM rejections j JOIN domains d ON d.id = j.domain_id
                WHERE j.at >= ? ORDER BY j.at
                """, arguments: [since?.timeIntervalSince1970 ?? 0]).map {
                RejectionRow(name: $0["name"], at: $0["at"], code: $0["code"], reason: $0["reason"])
            }
        }
    }

    /// Rounds recorded, and rows in each table (for status and tests).
    public func counts() throws -> [String: Int] {
        try db.read { db in
            var out = [String: Int]()
            for t in ["domains", "rounds", "allocations", "rejections", "alerts", "config_changes"] {
                out[t] = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(t)") ?? 0
            }
            return out
        }
    }

    static func state(_ r: Row) -> DomainState {
        DomainState(name: r["name"], domid: r["domid"], at: r["at"], actual: KiB(r["actual_kib"] as Int64), target: KiB(r["target_kib"] as Int64),
                    floor: KiB(r["floor_kib"] as Int64), ceiling: KiB(r["ceiling_kib"] as Int64), weight: r["weight"],
                    demand: KiB(r["demand_kib"] as Int64), stall: r["stall"], status: r["report_status"], reason: r["reason"],
                    released: r["released"])
    }
}
