import GuestModel

/// The xenstore paths the arbiter reads and watches, in one place. Guest-writable paths are marked;
/// everything else is written by the toolstack (trusted).
public enum XenstorePaths {
    /// A domain's home: `/local/domain/<domid>`.
    public static func home(_ d: DomID) -> String { "/local/domain/\(d.raw)" }
    /// `name` (toolstack), relative to a domain's home.
    public static let nameKey = "name"
    /// `memory/static-max` (KiB; toolstack): libxl refuses targets above it.
    public static let staticMaxKey = "memory/static-max"
    /// `memory/target` (KiB; written by libxl_set_memory_target, read by the guest's balloon driver).
    public static let targetKey = "memory/target"
    /// `memory/uncooperative` (written by the arbiter, as squeezed does): "1" while the domain's balloon
    /// is marked uncooperative and held at what it has; removed when it is asked again.
    public static func uncooperative(_ d: DomID) -> String { home(d) + "/memory/uncooperative" }
    /// `data/pressure` (guest-writable: hostile until parsed): our reporter's line.
    public static let pressureKey = "data/pressure"
    /// `data/meminfo_total`, `data/meminfo_free` (guest-writable): XenServer-style agents.
    public static let legacyKeys = ["data/meminfo_total", "data/meminfo_free"]
    /// The report keys, relative to a domain's home.
    public static let reportKeys = [pressureKey] + legacyKeys
    /// Special watch paths.
    public static let introduce = "@introduceDomain"
    public static let release = "@releaseDomain"
    /// The subtree watched for report writes.
    public static let domains = "/local/domain"

    /// Maps a watch event's path to (domid, report key), or nil for anything that is not exactly a
    /// report key of a guest domain: other keys, deeper or shallower paths, non-canonical domids
    /// ("05", "+5", "5 "), reserved domids, dot segments, over-long paths. Watches fire for every write
    /// under /local/domain (libxl's own included): only these paths become report events.
    public static func reportKey(fromWatchPath path: String) -> (DomID, String)? {
        guard path.utf8.count <= 128, path.hasPrefix(domains + "/") else { return nil }
        let rest = path.dropFirst(domains.count + 1)
        guard let slash = rest.firstIndex(of: "/") else { return nil }
        let key = String(rest[rest.index(after: slash)...])
        guard let domid = domid(rest[..<slash]), reportKeys.contains(key) else { return nil }
        return (domid, key)
    }

    /// A path segment that is a guest domain's domid in canonical form ("7", not "07", "+7" or "7 "),
    /// below the reserved domids; nil for anything else.
    static func domid(_ text: Substring) -> DomID? {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0 >= "0" && $0 <= "9" }),
              text == "0" || text.first != "0", let id = UInt16(text), id < DomID.firstReserved else { return nil }
        return DomID(id)
    }

    /// Parses a toolstack-written KiB value (decimal digits, bounded: `BoundedDecimal`); nil for anything else.
    public static func kib(_ raw: [UInt8]?) -> KiB? {
        guard let raw, raw.count <= 20, let v = BoundedDecimal.parse(raw, bound: 1 << 42) else { return nil }
        return KiB(Int64(v))
    }
}
