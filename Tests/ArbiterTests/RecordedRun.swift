import BundledScenarios
import Foundation
import Logging
@testable import Arbiter
import GuestModel
import HostSimulator

/// The default scenario through the control loop into an in-memory store: a startup round, then
/// `rounds` rounds `step` simulated seconds apart (each started by `trigger(k)`, and followed by a
/// second report round, with nothing new to read, when `again(k)`), the wall clock following.
func recordDefaultScenario(rounds: Int, step: Double, config: ArbiterConfig = ArbiterConfig(), clock: WallClock = WallClock(),
                           trigger: (Int) -> DecisionStore.Trigger = { _ in .report }, again: (Int) -> Bool = { _ in false }) async throws -> DecisionStore {
    let s = try ScenarioFile.parse(BundledScenarios.named("default")!)
    let host = SimulatedHost(scenario: s)
    let store = try DecisionStore()
    var logger = Logger(label: "test")
    logger.logLevel = .critical
    let loop = ControlLoop(backend: host, store: store, config: config, logger: logger,
                           now: { TimePoint(seconds: await host.seconds) }, wall: { clock.now() },
                           settings: { await host.adminSettings() })
    await loop.round(trigger: .startup)
    for k in 1...rounds {
        for e in await host.advance(by: step) { await loop.note(e) }
        clock.advance(step)
        await loop.round(trigger: trigger(k))
        if again(k) { await loop.round(trigger: .report) }
    }
    return store
}
