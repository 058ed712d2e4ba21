import GuestModel

/// Runs the decision core over the built-in example host: what `arbiter demo` prints.
public struct DemoRun: Sendable {
    public struct GuestSummary: Sendable {
        public var name: String
        public var domid: DomID
        public var bootTarget: KiB
        public var finalTarget: KiB
        public var minTarget: KiB
        public var maxTarget: KiB
        public var minFloorSeen: KiB
        public var targetChanges: Int
        public var rejectedReports: Int
        public var stallSeconds: Double
    }

    public var finalDecision: Decision
    public var guests: [GuestSummary]
    public var rounds: Int
    public var seconds: Double
    /// Rounds that raised an alert, and the last alert raised.
    public var alertRounds: Int
    public var lastAlert: Alert?
    /// Invariant violations seen in any round (must be empty).
    public var violations: [Violation]

    public var names: [DomID: String] { Dictionary(uniqueKeysWithValues: guests.map { ($0.domid, $0.name) }) }

    /// `rounds` rounds `interval` seconds apart, every guest reporting before each round.
    public static func run(config: PolicyConfig, rounds: Int, interval: Double = 2) -> DemoRun {
        var host = ExampleHost.builtIn()
        var arb = Arbitration(config: config)
        var summaries = host.guests.map {
            GuestSummary(name: $0.name, domid: $0.domid, bootTarget: $0.target, finalTarget: $0.target, minTarget: $0.target,
                         maxTarget: $0.target, minFloorSeen: KiB(Int64.max), targetChanges: 0, rejectedReports: 0, stallSeconds: 0)
        }
        var alertRounds = 0
        var lastAlert: Alert? = nil
        var violations = [Violation]()
        var last: Decision? = nil
        for round in 0..<max(1, rounds) {
            let staticMax = Dictionary(uniqueKeysWithValues: host.guests.map { ($0.domid, $0.staticMax) })
            for (domid, parsed) in host.reports(round: round) {
                if case .rejected = arb.ingest(domid, parsed: parsed, at: host.now, staticMax: staticMax[domid]) {
                    if let i = summaries.firstIndex(where: { $0.domid == domid }) { summaries[i].rejectedReports += 1 }
                }
            }
            let d = arb.step(host.snapshot, now: host.now)
            violations += Invariants.violations(of: d, staticMax: host.guests.map(\.staticMax))
            if let a = d.alerts.last { alertRounds += 1; lastAlert = a }
            for (i, o) in d.outcomes.enumerated() {
                summaries[i].finalTarget = o.target
                summaries[i].minTarget = min(summaries[i].minTarget, o.target)
                summaries[i].maxTarget = max(summaries[i].maxTarget, o.target)
                summaries[i].minFloorSeen = min(summaries[i].minFloorSeen, o.floor)
                if o.changed { summaries[i].targetChanges += 1 }
            }
            host.advance(interval, applying: d)
            last = d
        }
        for i in summaries.indices { summaries[i].stallSeconds = host.guests[i].stallSeconds }
        return DemoRun(finalDecision: last!, guests: summaries, rounds: max(1, rounds), seconds: host.seconds,
                       alertRounds: alertRounds, lastAlert: lastAlert, violations: violations)
    }

    /// The whole printout: the last round's table, then what happened over the run.
    public func render() -> String {
        var out = "Example host: 12G for guests, 6 guests, \(rounds) rounds every \(formatFixed(seconds / Double(rounds), decimals: 0)) s "
            + "(\(formatFixed(seconds, decimals: 0)) s of host time)\n\n"
        out += "Last round:\n" + DecisionTable.render(finalDecision, names: names) + "\n"
        out += DecisionTable.summary(finalDecision) + "\n\nOver the run:\n"
        var rows = [["Name", "Boot", "Final", "Min target", "Max target", "Changes", "Rejected", "Stall s"]]
        for g in guests {
            rows.append([g.name, formatSize(g.bootTarget), formatSize(g.finalTarget), formatSize(g.minTarget), formatSize(g.maxTarget),
                         String(g.targetChanges), String(g.rejectedReports), formatFixed(g.stallSeconds, decimals: 1)])
        }
        out += DecisionTable.table(rows, rightAligned: [1, 2, 3, 4, 5, 6, 7]) + "\n"
        out += "alerts: " + (lastAlert.map { "\(alertRounds) round(s); last: \($0)" } ?? "none") + "\n"
        out += "invariant violations: " + (violations.isEmpty ? "none" : violations.prefix(5).map(\.description).joined(separator: "; ")) + "\n"
        return out
    }
}
