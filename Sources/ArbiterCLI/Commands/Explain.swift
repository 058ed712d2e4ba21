import Arbiter
import ArgumentParser
import GuestModel

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Why a domain's target is what it is: the facts of its latest recorded decision.")

    @Argument(help: "Domain name or domid.")
    var domain: String

    @OptionGroup var store: StoreOptions

    func run() throws {
        guard let e = try store.open().explain(domain) else { throw CLIError("no recorded decisions for '\(domain)'") }
        let why = e.reason.value?.explanation ?? e.reason.description
        var out = "\(e.name) (domid \(e.domid)) at \(timeText(e.at)): target \(formatSize(e.target))"
        out += e.target == e.previousTarget ? " (unchanged)" : " (was \(formatSize(e.previousTarget)))"
        out += ", has \(formatSize(e.actual))\n"
        out += "  why:        \(e.reason): \(why)" + (e.policy == "arbiter" ? "" : " (policy \(e.policy))") + "\n"
        out += "  report:     \(e.status)" + (e.workingSet.map { ", working set \(formatSize($0))" } ?? "")
            + (e.stall.map { ", stall \(formatFixed($0 * 100, decimals: 2))%" } ?? "") + "\n"
        out += "  limits:     floor \(formatSize(e.floor)) (\(e.floorKind)), ceiling \(formatSize(e.ceiling)), weight \(formatFixed(e.weight, decimals: 2))\n"
        out += "  share:      demand \(formatSize(e.demand)), allocation \(formatSize(e.allocation)) (\(e.basis)); host \(e.phase), "
            + "budget \(formatSize(e.budget)), Xen free \(formatSize(e.free))\n"
        switch e.pushed {
        case true?: out += "  pushed:     yes\n"
        case false?: out += "  pushed:     FAILED: \(e.pushError ?? "?")\n"
        case nil: out += "  pushed:     nothing to push (or a dry run)\n"
        }
        for s in e.shadows {
            let gap = s.target.value - e.target.value
            let verdict = abs(gap) <= ShadowComparison.band.value ? "agrees" : gap > 0 ? "would give \(formatSize(KiB(gap))) more" : "would give \(formatSize(KiB(-gap))) less"
            out += "  shadow:     \(s.policy) would set \(formatSize(s.target)) (\(s.reason)): \(verdict)"
                + (s.at < e.at ? " (said at \(timeText(s.at)))" : "") + "\n"
        }
        print(out, terminator: "")
    }
}
