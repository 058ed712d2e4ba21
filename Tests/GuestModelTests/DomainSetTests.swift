import Testing
@testable import GuestModel

@Suite("DomainSet")
struct DomainSetTests {
    /// The bit set answers as a hashed Set<DomID> does, over random inserts and removes of every id range
    /// (0, the reserved ids above DOMID_FIRST_RESERVED, 65535), and clears completely.
    @Test func behavesLikeASetOfDomIDs() {
        var rng = SplitMix64(seed: 0xD05E7)
        var bits = DomainSet(), reference = Set<DomID>()
        let ids: [UInt16] = [0, 1, 63, 64, 65, 4095, DomID.firstReserved - 1, DomID.firstReserved, 65534, 65535]
        for round in 0..<20_000 {
            let d = DomID(Bool.random(using: &rng) ? ids[Int.random(in: 0..<ids.count, using: &rng)] : UInt16.random(in: 0...300, using: &rng))
            if Bool.random(using: &rng) {
                #expect(bits.insert(d) == reference.insert(d).inserted)
            } else {
                bits.remove(d); reference.remove(d)
            }
            #expect(bits.contains(d) == reference.contains(d))
            #expect(bits.count == reference.count && bits.isEmpty == reference.isEmpty)
            if round % 5_000 == 4_999 {
                bits.removeAll(); reference.removeAll()
                #expect(bits.isEmpty && !ids.contains { bits.contains(DomID($0)) })
            }
        }
        #expect(DomainSet([DomID(3), DomID(3), DomID(7)]).count == 2)
    }
}
