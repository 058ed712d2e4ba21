import Arbiter
import ArgumentParser

struct UnreserveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unreserve", abstract: "Cancel a reservation: its memory goes back to the guests.")

    @Argument(help: "The reservation's number (from `arbiter reserve` or `arbiter top`).")
    var id: Int

    @OptionGroup var socket: SocketOptions

    func run() throws {
        print(try socket.request(ControlRequest(cmd: "unreserve", id: id)).message ?? "ok")
    }
}
