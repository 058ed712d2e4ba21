import Arbiter
import Foundation
import GuestModel

/// `arbiter reserve`, `unreserve` and `start`: memory for VM starts, asked of the running daemon (as xapi
/// asks squeezed and qubesd asks qmemman before a domain is built). What they share (with `top`, which
/// shows the open reservations, and `set`, which names who asked): a reservation's one-line summary,
/// the wait for it, and the user.

extension ReservationInfo {
    var summary: String {
        let what = name.map { " for \($0)" } ?? ""
        return "reservation \(id): \(formatSize(KiB(sizeKiB)))\(what), \(status), \(formatSize(KiB(heldKiB))) held, "
            + "\(formatFixed(leftSeconds, decimals: 0)) s left"
    }
}

/// Polls a reservation until it is ready (or was used), and returns the seconds waited.
func waitForReservation(_ socket: SocketOptions, id: Int) throws -> Double {
    let start = Date()
    while true {
        let reply = try socket.request(ControlRequest(cmd: "reservation", id: id))
        guard let r = reply.reservations?.first else { throw CLIError("reservation \(id) is gone") }
        switch r.status {
        case "ready", "done":
            return Date().timeIntervalSince(start)
        case "expired":
            let free = reply.freeKiB.map { formatSize(KiB($0)) } ?? "?"
            let room = reply.roomKiB.map { formatSize(KiB($0)) } ?? "?"
            throw CLIError("\(formatSize(KiB(r.sizeKiB))) was not free before the reservation's deadline "
                           + "(Xen free \(free); the floors leave \(room) to give up)")
        case "cancelled":
            throw CLIError("reservation \(id) was cancelled")
        default:
            Thread.sleep(forTimeInterval: 0.25)
        }
    }
}

func currentUser() -> String {
    let env = ProcessInfo.processInfo.environment
    return String((env["SUDO_USER"] ?? env["USER"] ?? "root").prefix(64))
}
