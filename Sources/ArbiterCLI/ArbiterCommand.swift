import ArgumentParser
import GuestModel

/// `arbiter`: the Xen memory arbiter, xl-style verbs (each in Commands/, what they share in Support/).
@main
struct ArbiterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "arbiter",
        abstract: "Xen host memory arbiter: fair-share balloon targets from guest memory pressure.",
        discussion: """
            With no verb, `demo`: our policy on the simulated host's default scenario for an hour, \
            printing its decisions (see README). The daemon is `arbiter daemon --config /etc/arbiter/config.toml` \
            (the file is described in arbiter.toml(5)); the guests run arbiter-reporter(8).
            """,
        version: ArbiterRelease.version,
        subcommands: [Demo.self, DaemonCommand.self, ListCommand.self, Top.self, SetCommand.self, ReserveCommand.self, UnreserveCommand.self,
                      StartCommand.self, Explain.self, History.self, Alerts.self, ReportCommand.self, Simulate.self,
                      ConfigCheck.self, ConfigExample.self, XenInfo.self],
        defaultSubcommand: Demo.self)
}
