import Foundation
import GRDB
import GuestModel

/// The read models: what `list`, `history`, `explain`, `alerts` and `status` show, read from the store
/// alone (the daemon need not run). Values recorded as text come back typed (`Recorded`).
extension DecisionStore {
    /// One domain's latest recorded decision (what `list` shows).
    public struct DomainState: Sendable, Equatable, FetchableRecord {
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
        public var status: Recorded<ReportStatus>
        public var reason: Recorded<Reason>
        /// When Xen released this lifetime of the domain (nil: live).
        public var released: Double?

        /// A row of `stateColumns`.
        public init(row r: Row) {
            name = r["name"]; domid = r["domid"]; at = r["at"]
            actual = KiB(r["actual_kib"] as Int64); target = KiB(r["target_kib"] as Int64)
            floor = KiB(r["floor_kib"] as Int64); ceiling = KiB(r["ceiling_kib"] as Int64)
            weight = r["weight"]; demand = KiB(r["demand_kib"] as Int64); stall = r["stall"]
            status = Recorded(r["report_status"]); reason = Recorded(r["reason"])
            released = r["released"]
        }

        /// A recorded row (from either form) of the domain lifetime `name`/`domid`.
        init(_ x: RecordedRow, name: String, domid: Int, released: Double?) {
            self.name = name; self.domid = domid; at = x.round.at
            actual = KiB(x.row.actual); target = KiB(x.row.target); floor = KiB(x.row.floor); ceiling = KiB(x.row.ceiling)
            weight = x.row.weight; demand = KiB(x.row.demand); stall = x.row.stall
            status = Recorded(x.row.status); reason = Recorded(x.row.reason)
            self.released = released
        }
    }

    /// The lifetimes of a domain, by name or domid: (name, domid, released) by row id.
    static func lifetimes(_ db: Database, _ domain: String) throws -> [Int64: (name: String, domid: Int, released: Double?)] {
        var out = [Int64: (name: String, domid: Int, released: Double?)]()
        for r in try Row.fetchAll(db, sql: "SELECT id, name, domid, released FROM domains WHERE name = ? OR CAST(domid AS TEXT) = ?",
                                  arguments: [domain, domain]) {
            out[r["id"]] = (r["name"], r["domid"], r["released"])
        }
        return out
    }

    /// The columns `DomainState` reads.
    static let stateColumns = """
        d.name, d.domid, r.at, a.actual_kib, a.target_kib, a.floor_kib, a.ceiling_kib, a.weight, a.demand_kib,
        a.stall, a.report_status, a.reason, d.released
        """

    /// Every live domain with its latest recorded decision; with `all`, released lifetimes too (after
    /// the live ones, newest release first).
    public func latest(all: Bool = false) throws -> [DomainState] {
        try db.read { db in
            var byID = [Int64: DomainState]()
            for r in try Row.fetchAll(db, sql: """
                SELECT d.id AS lifetime, \(Self.stateColumns)
                FROM domains d
                JOIN allocations a ON a.domain_id = d.id
                JOIN rounds r ON r.id = a.round_id
                WHERE (d.released IS NULL OR ?)
                  AND a.round_id = (SELECT MAX(round_id) FROM allocations WHERE domain_id = d.id)
                """, arguments: [all]) {
                byID[r["lifetime"]] = DomainState(row: r)
            }
            // Lifetimes with rows in compact hours newer than their latest row (or with no row left).
            let newest = try Self.newestCompactHours(db)
            var later = [Int64: Double]()
            var lives = [Int64: Row]()
            for r in try Row.fetchAll(db, sql: "SELECT id, name, domid, released FROM domains WHERE released IS NULL OR ?", arguments: [all]) {
                let id: Int64 = r["id"]
                guard let hour = newest[id], byID[id].map({ $0.at < Double(hour + 1) * 3600 }) ?? true else { continue }
                later[id] = byID[id]?.at
                lives[id] = r
            }
            for (id, x) in try Self.latestCompacted(db, domains: Array(lives.keys), after: later) where x.round.at > byID[id]?.at ?? -.infinity {
                let r = lives[id]!
                byID[id] = DomainState(x, name: r["name"], domid: r["domid"], released: r["released"])
            }
            return byID.values.sorted { a, b in
                if (a.released == nil) != (b.released == nil) { return a.released == nil }
                if a.released != b.released { return (a.released ?? 0) > (b.released ?? 0) }
                return a.domid < b.domid
            }
        }
    }

    /// Each lifetime's newest compact hour holding (before thinning) a row of it, by the hourly figures.
    static func newestCompactHours(_ db: Database) throws -> [Int64: Int64] {
        guard try db.tableExists("compact_hours") else { return [:] }
        var out = [Int64: Int64]()
        for r in try Row.fetchAll(db, sql: "SELECT h.domain_id, MAX(h.hour) AS hour FROM hourly h JOIN compact_hours c ON c.hour = h.hour GROUP BY h.domain_id") {
            out[r["domain_id"]] = r["hour"]
        }
        return out
    }

    /// One domain's recorded decisions since `since` (by name or domid), oldest first.
    public func history(_ domain: String, since: Date? = nil, limit: Int = 10_000) throws -> [DomainState] {
        try db.read { db in
            let lives = try Self.lifetimes(db, domain)
            guard !lives.isEmpty else { return [] }
            let rows = try Self.recordedRows(db, from: since?.timeIntervalSince1970 ?? 0, to: 1e15, domains: Set(lives.keys))
                .sorted { ($0.round.at, $0.round.id) < ($1.round.at, $1.round.id) }
            return rows.prefix(Swift.max(0, limit)).map { x in
                let life = lives[x.domain]!
                return DomainState(x, name: life.name, domid: life.domid, released: life.released)
            }
        }
    }

    /// Everything recorded about one domain's latest decision, for `arbiter explain`.
    public struct Explanation: Sendable, Equatable, FetchableRecord {
        public var name: String, domid: Int, at: Double
        public var status: Recorded<ReportStatus>, workingSet: KiB?, stall: Double?
        public var floor: KiB, floorKind: Recorded<FloorKind>, ceiling: KiB, weight: Double, demand: KiB
        public var allocation: KiB, basis: Recorded<ShareBasis>, actual: KiB, previousTarget: KiB, target: KiB
        public var reason: Recorded<Reason>, pushed: Bool?, pushError: String?
        public var phase: Recorded<SharePhase>, budget: KiB, free: KiB
        /// The policy whose targets were pushed, and what each shadow policy last said for this domain.
        public var policy: String
        public var shadows = [ShadowView]()

        /// An allocation row (`a.*`) with its domain's name and domid and its round's at, phase,
        /// budget_kib, host_free_kib and policy; `shadows` is left empty.
        public init(row r: Row) {
            name = r["name"]; domid = r["domid"]; at = r["at"]
            status = Recorded(r["report_status"]); workingSet = (r["working_set_kib"] as Int64?).map { KiB($0) }; stall = r["stall"]
            floor = KiB(r["floor_kib"] as Int64); floorKind = Recorded(r["floor_kind"]); ceiling = KiB(r["ceiling_kib"] as Int64)
            weight = r["weight"]; demand = KiB(r["demand_kib"] as Int64)
            allocation = KiB(r["allocation_kib"] as Int64); basis = Recorded(r["basis"]); actual = KiB(r["actual_kib"] as Int64)
            previousTarget = KiB(r["previous_target_kib"] as Int64); target = KiB(r["target_kib"] as Int64)
            reason = Recorded(r["reason"]); pushed = (r["pushed"] as Int?).map { $0 == 1 }; pushError = r["push_error"]
            phase = Recorded(r["phase"]); budget = KiB(r["budget_kib"] as Int64); free = KiB(r["host_free_kib"] as Int64)
            policy = r["policy"]
        }

        /// A recorded row (from either form) of the domain `name`/`domid`; `shadows` is left empty.
        init(_ x: RecordedRow, name: String, domid: Int) {
            let a = x.row, round = x.round
            self.name = name; self.domid = domid; at = round.at
            status = Recorded(a.status); workingSet = a.workingSet.map { KiB($0) }; stall = a.stall
            floor = KiB(a.floor); floorKind = Recorded(a.floorKind); ceiling = KiB(a.ceiling); weight = a.weight; demand = KiB(a.demand)
            allocation = KiB(a.allocation); basis = Recorded(a.basis); actual = KiB(a.actual); previousTarget = KiB(a.previousTarget)
            target = KiB(a.target); reason = Recorded(a.reason); pushed = a.pushed; pushError = a.pushError
            phase = Recorded(round.phase); budget = KiB(round.budget); free = KiB(round.hostFree); policy = round.policy
        }
    }

    /// A shadow policy's latest target for a domain, at or before an explained round.
    public struct ShadowView: Sendable, Equatable, FetchableRecord {
        public var policy: String, target: KiB, reason: Recorded<Reason>, at: Double

        public init(row r: Row) {
            policy = r["policy"]; target = KiB(r["target_kib"] as Int64); reason = Recorded(r["reason"]); at = r["at"]
        }
    }

    public func explain(_ domain: String) throws -> Explanation? {
        try db.read { db in
            var e: Explanation
            var domainID: Int64 = 0, roundID: Int64 = 0, shadows = ""
            let row = try Row.fetchOne(db, sql: """
                SELECT d.name, d.domid, r.at, r.phase, r.budget_kib, r.host_free_kib, r.policy, r.shadows, a.*
                FROM allocations a JOIN domains d ON d.id = a.domain_id JOIN rounds r ON r.id = a.round_id
                WHERE (d.name = ? OR CAST(d.domid AS TEXT) = ?) ORDER BY r.at DESC, r.id DESC LIMIT 1
                """, arguments: [domain, domain])
            // A newer row of any of its lifetimes may be in a compact hour (only rows of hours with shadow
            // targets, or rounds recorded late, stay rows behind compact hours).
            let lives = try Self.lifetimes(db, domain)
            let rowAt: Double? = row?["at"]
            let newest = try Self.newestCompactHours(db)
            let candidates = lives.keys.filter { id in newest[id].map { Double($0 + 1) * 3600 > rowAt ?? -.infinity } ?? false }
            let compacted = try Self.latestCompacted(db, domains: candidates, after: Dictionary(uniqueKeysWithValues: candidates.compactMap { id in rowAt.map { (id, $0) } }))
                .values.max(by: { ($0.round.at, $0.round.id) < ($1.round.at, $1.round.id) })
            if let x = compacted, x.round.at > rowAt ?? -.infinity {
                let life = lives[x.domain]!
                e = Explanation(x, name: life.name, domid: life.domid)
                (domainID, roundID, shadows) = (x.domain, x.round.id, x.round.shadows)
            } else if let r = row {
                e = Explanation(row: r)
                (domainID, roundID, shadows) = (r["domain_id"], r["round_id"], r["shadows"])
            } else {
                return nil
            }
            // The latest row of each shadow that ran in the explained round.
            let ran = Set(shadows.split(separator: ",").map(String.init))
            e.shadows = try ShadowView.fetchAll(db, sql: """
                SELECT s.policy, s.target_kib, s.reason, r.at FROM shadow_targets s JOIN rounds r ON r.id = s.round_id
                WHERE s.domain_id = ? AND s.round_id = (SELECT MAX(s2.round_id) FROM shadow_targets s2
                      WHERE s2.domain_id = s.domain_id AND s2.policy = s.policy AND s2.round_id <= ?)
                """, arguments: [domainID, roundID])
                .filter { ran.contains($0.policy) }.sorted { $0.policy < $1.policy }
            return e
        }
    }

    public struct AlertRow: Sendable, Equatable, FetchableRecord {
        public var at: Double
        /// A decision alert's kind (`Alert.Kind`) or the daemon's own ("rounds-not-recorded").
        public var kind: String
        public var message: String

        public init(row r: Row) { at = r["at"]; kind = r["kind"]; message = r["message"] }
    }

    public func alerts(since: Date? = nil) throws -> [AlertRow] {
        try db.read { db in
            try AlertRow.fetchAll(db, sql: "SELECT at, kind, message FROM alerts WHERE at >= ? ORDER BY at",
                                  arguments: [since?.timeIntervalSince1970 ?? 0])
        }
    }

    public struct RejectionRow: Sendable, Equatable, FetchableRecord {
        public var name: String
        public var at: Double
        public var code: String
        public var reason: String

        public init(row r: Row) { name = r["name"]; at = r["at"]; code = r["code"]; reason = r["reason"] }
    }

    public func rejections(since: Date? = nil) throws -> [RejectionRow] {
        try db.read { db in
            try RejectionRow.fetchAll(db, sql: """
                SELECT d.name, j.at, j.code, j.reason FROM rejections j JOIN domains d ON d.id = j.domain_id
                WHERE j.at >= ? ORDER BY j.at
                """, arguments: [since?.timeIntervalSince1970 ?? 0])
        }
    }

    /// Rows in each table, and the rounds and allocation rows kept in compact hours (`compact_hours`,
    /// `compacted_rounds`, `compacted_rows`), for the benchmark and tests.
    public func counts() throws -> [String: Int] {
        try db.read { db in
            var out = [String: Int]()
            for t in ["domains", "rounds", "allocations", "rejections", "alerts", "config_changes"] {
                out[t] = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(t)") ?? 0
            }
            if try db.tableExists("compact_hours"), let r = try Row.fetchOne(db, sql: """
                SELECT COUNT(*) AS n, TOTAL(round_count) AS rounds, TOTAL(row_count) AS rows FROM compact_hours
                """) {
                out["compact_hours"] = r["n"]
                out["compacted_rounds"] = Int(r["rounds"] as Double)
                out["compacted_rows"] = Int(r["rows"] as Double)
            }
            return out
        }
    }
}
