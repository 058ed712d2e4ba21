extension Duration {
    /// The duration in seconds, as a Double (the waits and timeouts the daemon computes with).
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
