import CXen
import Foundation
import GuestModel

/// What `arbiter start` needs from an xl domain config file: the domain's name and the free memory its
/// build takes, as libxl computes it (`libxl_domain_need_memory`: the target, plus shadow and IOMMU
/// memory, plus 1 MiB for PV or more for HVM, rounded up to 2 MiB). The file is read with libxlutil, the
/// parser xl itself uses.
public struct XenDomainConfig: Sendable, Equatable {
    public var name: String
    public var type: String
    public var memory: KiB
    public var maxMemory: KiB
    /// Free memory the build needs.
    public var need: KiB

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads `path` and asks libxl (through `libxl`) what building it needs.
    public init(path: String, libxl: LibxlContext) throws(Failure) {
        // libxlutil prints parse errors (with file and line) to this stream: our stderr.
        guard let report = fdopen(dup(2), "w") else { throw Failure(description: "\(path): cannot set up the config parser") }
        defer { fclose(report) }
        guard let cfg = xlu_cfg_init(report, path) else { throw Failure(description: "\(path): cannot set up the config parser") }
        defer { xlu_cfg_destroy(cfg) }
        let rc = xlu_cfg_readfile(cfg, path)
        guard rc == 0 else { throw Failure(description: "\(path): \(String(cString: strerror(rc)))") }
        func string(_ key: String) -> String? {
            var v: UnsafePointer<CChar>? = nil
            guard xlu_cfg_get_string(cfg, key, &v, 1) == 0, let v else { return nil }
            return String(cString: v)
        }
        func long(_ key: String) -> Int? {
            var v = 0
            return xlu_cfg_get_long(cfg, key, &v, 1) == 0 ? v : nil
        }
        guard let name = string("name"), !name.isEmpty else { throw Failure(description: "\(path): no name = \"...\"") }
        guard let mib = long("memory"), mib > 0, mib < 1 << 30 else {
            throw Failure(description: "\(path): no memory = MiB (arbiter start needs the size the domain is built with)")
        }
        let maxMib = long("maxmem") ?? mib
        guard maxMib >= mib, maxMib < 1 << 30 else { throw Failure(description: "\(path): maxmem must be at least memory") }
        var type = string("type") ?? (string("builder") == "hvm" ? "hvm" : "pv")
        type = type.lowercased()
        self.name = name
        self.type = type
        memory = KiB(Int64(mib) * 1024)
        maxMemory = KiB(Int64(maxMib) * 1024)
        need = try Self.need(type: type, memory: memory, maxMemory: maxMemory, libxl: libxl)
    }

    /// libxl_domain_need_memory for a domain of `type` built with `memory` (maxmem `maxMemory`).
    static func need(type: String, memory: KiB, maxMemory: KiB, libxl: LibxlContext) throws(Failure) -> KiB {
        let t: libxl_domain_type
        switch type {
        case "pv": t = LIBXL_DOMAIN_TYPE_PV
        case "pvh": t = LIBXL_DOMAIN_TYPE_PVH
        case "hvm": t = LIBXL_DOMAIN_TYPE_HVM
        default: throw Failure(description: "unknown domain type '\(type)' (pv, pvh, hvm)")
        }
        var config = libxl_domain_config()
        libxl_domain_config_init(&config)
        defer { libxl_domain_config_dispose(&config) }
        config.c_info.type = t
        libxl_domain_build_info_init_type(&config.b_info, t)
        config.b_info.max_memkb = UInt64(maxMemory.value)
        config.b_info.target_memkb = UInt64(memory.value)
        var kib: UInt64 = 0
        let rc = libxl_domain_need_memory(libxl.ctx, &config, UInt32.max, &kib)
        guard rc == 0 else { throw Failure(description: "libxl_domain_need_memory failed (\(rc))") }
        return KiB(Int64(clamping: kib))
    }
}
