import Foundation
import GRDB
import GuestModel

extension DecisionStore {
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
}
