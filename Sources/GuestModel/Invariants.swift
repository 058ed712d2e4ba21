/// The safety rules as code, used by the property tests, the simulator and the control loop's checks.

public struct Violation: Sendable, Equatable, CustomStringConvertible {
    public var domid: DomID?
    public var rule: String
    public var detail: String
    public var description: String { (domid.map { "dom\($0): " } ?? "") + rule + " (" + detail + ")" }
}

public enum Invariants {
    /// Every rule `decision` breaks. `staticMax` is per outcome, in the same order, when the caller has it.
    public static func violations(of decision: Decision, staticMax: [KiB]? = nil) -> [Violation] {
        var v = [Violation]()
        var sum: Int64 = 0
        for (i, o) in decision.outcomes.enumerated() {
            sum += o.allocation.value
            if o.floor > o.ceiling { v.append(Violation(domid: o.domid, rule: "floor ≤ ceiling", detail: "\(o.floor) > \(o.ceiling)")) }
            if o.allocation < o.floor { v.append(Violation(domid: o.domid, rule: "allocation ≥ floor", detail: "\(o.allocation) < \(o.floor)")) }
            if o.allocation > o.ceiling { v.append(Violation(domid: o.domid, rule: "allocation ≤ ceiling", detail: "\(o.allocation) > \(o.ceiling)")) }
            if o.target < o.previousTarget && o.target < o.floor {
                v.append(Violation(domid: o.domid, rule: "no shrink below floor", detail: "\(o.target) < \(o.floor)"))
            }
            if let sm = staticMax?[i], o.target > sm {
                v.append(Violation(domid: o.domid, rule: "target ≤ static-max", detail: "\(o.target) > \(sm)"))
            }
            if o.target.pageFloor != o.target && o.changed {
                v.append(Violation(domid: o.domid, rule: "targets are whole pages", detail: "\(o.target.value) KiB"))
            }
        }
        if decision.phase != .infeasible && sum > decision.budget.value {
            v.append(Violation(domid: nil, rule: "Σ allocation ≤ budget", detail: "\(KiB(sum)) > \(decision.budget)"))
        }
        var grown: Int64 = 0
        for o in decision.outcomes where o.target > o.previousTarget {
            grown += Swift.max(0, o.target.value - Swift.max(o.previousTarget.value, o.actual.value))
        }
        if grown > decision.growBudget.value {
            v.append(Violation(domid: nil, rule: "grows only from free memory", detail: "\(KiB(grown)) > \(decision.growBudget)"))
        }
        return v
    }
}
